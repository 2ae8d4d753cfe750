import ArgumentParser
import Foundation
import Journey

/// `journey pin <user> --reason TEXT`: hold a user's stage against automatic moves.
struct PinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Hold a user in their current stage; evaluation and the batch leave them alone.")

    @Argument(help: "The user's id.") var user: UserID
    @Option(help: "Why the user is pinned (shown by evaluate).") var reason: String
    @OptionGroup var database: DatabaseOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("Please give a non-empty '--reason'.")
        }
    }

    func run() async throws {
        let service = try await makeService(database: database, rules: nil, access: .readWrite)
        let stage = try await service.pin(user: user.value, reason: reason)
        print(
            RuleSet.isNeverEvaluated(stage)
                ? "User \(user.value) pinned in the first stage (never evaluated)." : "User \(user.value) pinned in \(stage.printable).")
    }
}

/// `journey unpin <user>`: release a pin.
struct UnpinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Release a user's pin.")

    @Argument(help: "The user's id.") var user: UserID
    @OptionGroup var database: DatabaseOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: nil, access: .readWrite)
        let released = try await service.unpin(user: user.value)
        print(released ? "User \(user.value) unpinned." : "User \(user.value) was not pinned.")
    }
}
