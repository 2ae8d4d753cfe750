import ArgumentParser
import Foundation
import Journey

/// `journey migrate`: bring a platform database (or, with `--create`, a new file) up to the journey schema.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Add the journey columns, tables, indexes and counters to a database; safe to run twice.",
        discussion: "A missing file is an error (exit 66) unless --create is given.")

    @OptionGroup var database: DatabaseOptions
    @Flag(name: .long, help: "Create the database file when it does not exist.") var create = false
    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let report = try await JourneyService.migrate(database: database.location, createIfMissing: create)
        let shown = DatabaseLocation(database.location).description
        if output.json {
            try printJSON(Report(database: shown, nothingToDo: report.nothingToDo, migration: report))
            return
        }
        guard !report.nothingToDo else {
            print("\(shown) is up to date: nothing to do.")
            return
        }
        print("Migrated \(shown):")
        for (label, names) in [
            ("tables created", report.tablesCreated), ("columns added", report.columnsAdded),
            ("columns rebuilt", report.columnsRebuilt), ("indexes created", report.indexesCreated),
            ("triggers created", report.triggersCreated),
        ] where !names.isEmpty {
            print("  \(label.padding(toLength: 17, withPad: " ", startingAt: 0))\(names.joined(separator: ", "))")
        }
        for reused in report.indexesReused {
            print("  index reused     \(reused.existing) serves \(reused.keys) (\(reused.wanted) not created)")
        }
        for skipped in report.indexesSkipped {
            print("  index skipped    \(skipped.name) on \(skipped.keys): no column \(skipped.missing.joined(separator: ", "))")
        }
        print("\(shown) is up to date.")
    }

    /// `migrate --json`: the file, and what the run did.
    struct Report: Encodable {
        let database: String
        let nothingToDo: Bool
        let migration: MigrationReport

        enum CodingKeys: String, CodingKey {
            case database, nothingToDo = "nothing_to_do", migration
        }
    }
}
