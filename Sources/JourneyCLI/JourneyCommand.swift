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
            Exit status: 0 success, 1 problems found (doctor, status --check, batch --strict), 64 usage, 65 bad data (rules, \
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

    /// Runs the command; a failure prints one line on stderr (under `--json`, one JSON object) and
    /// exits with its sysexits status.
    static func main() async {
        // Before any SQLite file is opened: this process reads none of SQLite's memory figures.
        JourneyService.turnOffSQLiteMemoryStatistics()
        // Until the arguments parse, `--json` is known only from the words given.
        var json = CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains("--json")
        do {
            var command = try await asyncParseAsRoot()
            json = (command as? any JSONOutputCommand)?.output.json ?? false
            bootstrapLogging(level: (command as? any LoggingCommand)?.logging.level ?? .warning)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            fail(failure.message, status: failure.status.rawValue, json: json)
        } catch let error as JourneyError {
            let failure = CommandFailure(error)
            fail(failure.message, status: failure.status.rawValue, json: json)
        } catch {
            let status = exitCode(for: error)
            guard json, status != .success else { exit(withError: error) }
            fail(message(for: error), status: status.rawValue, json: true)
        }
    }
}
