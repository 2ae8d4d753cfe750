import ArgumentParser
import Foundation
import Journey

/// `journey history <user>`: each recorded move, when each stage was entered and how long it lasted.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show a user's recorded moves and the time spent in each stage.")

    @Argument(help: "The user's id.") var user: UserID
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: nil, access: .readOnly)
        let history = try await service.historyReport(user: user.value)
        if output.json {
            try printJSON(history)
            return
        }
        print("User \(user.value): \(history.stage), \(Format.count(history.moves, "recorded move"))")
        if let pin = history.pin { print(TextReport.pinned(pin)) }
        let rows = history.stays.map { stay in
            let entered = stay.enteredAt.map(Format.timestamp) ?? "unknown"
            let how = stay.seq.map { "#\($0) via \(stay.source ?? "?"): \(stay.reason ?? "")" } ?? "(signup)"
            // A stay under a second that ended: the next move was made in the same evaluation.
            let spent =
                stay.seconds.map { seconds in
                    stay.leftAt == nil ? "\(Format.duration(seconds)) so far" : seconds < 1 ? "same evaluation" : Format.duration(seconds)
                } ?? "?"
            return [stay.stage.printable, "entered \(entered)", spent, how]
        }
        Format.table(rows, indent: "  ").forEach { print($0) }
    }
}
