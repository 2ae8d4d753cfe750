import ArgumentParser
import Foundation
import Journey

/// `journey generate`: a seeded, realistic platform database of any size (before migration).
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a seeded platform database (heavy-tailed activity) for tests, demos and benchmarks.")

    @Option(help: "How many users.") var users = 5_000
    @Option(help: "The seed; the same seed and size give the same rows.") var seed: UInt64 = 1
    @Option(name: .long, help: ArgumentHelp("The file to create; it must not exist.", valueName: "path")) var output: String

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func validate() throws {
        guard users >= 10 else { throw ValidationError("Please specify '--users' of at least 10.") }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw ValidationError("'\(output)' already exists; choose a new '--output' file.")
        }
    }

    func run() async throws {
        let counts = try DemoData.writePlatformDatabase(at: output, users: users, seed: seed)
        print(
            "\(output): \(counts.users) users, \(counts.posts) posts, \(counts.follows) follows, \(counts.events) events, \(counts.rsvps) RSVPs (seed \(seed))."
        )
    }
}
