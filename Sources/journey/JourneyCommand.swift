import ArgumentParser
import Foundation
import Journey

/// `journey`: the journey engine from the terminal.
@main
struct JourneyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journey",
        abstract: "Decide, move and record the customer-journey stage of every user.",
        discussion: """
            Exit status: 0 success, 1 problems found (doctor), 64 usage, 65 bad data (rules, \
            database content, a refused move), 66 missing input (database or rules file), \
            67 unknown user, 74 I/O error, 75 try again (busy, another batch running).
            """,
        version: "0.1.0",
        subcommands: [
            EvaluateCommand.self, ExplainCommand.self, HistoryCommand.self,
            PinCommand.self, UnpinCommand.self, BatchCommand.self, StatusCommand.self, WatchCommand.self, DoctorCommand.self,
            MigrateCommand.self, RulesCommand.self, GenerateCommand.self, DemoCommand.self,
        ]
    )

    /// Runs the command; a failure prints one line on stderr and exits with its sysexits status.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            bootstrapLogging(level: (command as? any LoggingCommand)?.logging.level ?? .warning)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data("journey: \(failure.message)\n".utf8))
            Foundation.exit(failure.status.rawValue)
        } catch let error as JourneyError {
            let failure = CommandFailure(error)
            FileHandle.standardError.write(Data("journey: \(failure.message)\n".utf8))
            Foundation.exit(failure.status.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
