import ArgumentParser
import Journey
import JourneyStore

/// `journey migrate`: bring a platform database (or an empty file) up to the journey schema.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Add the journey columns, tables, indexes and counters to a database; safe to run twice.")

    @OptionGroup var database: DatabaseOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let database = try self.database.open(.migrate)
        print("\(database.path) is up to date.")
    }
}
