import ArgumentParser
import Foundation
import Journey
import JourneyCore
import JourneyStore

/// The exit statuses of `journey`, from sysexits(3).
enum ExitStatus: Int32 {
    case problemsFound = 1
    case usage = 64
    case dataError = 65
    case noInput = 66
    case noUser = 67
    case ioError = 74
    case tryAgain = 75
}

/// A failure to report as one line on stderr with its exit status.
struct CommandFailure: Error {
    let message: String
    let status: ExitStatus

    init(_ message: String, status: ExitStatus) {
        self.message = message
        self.status = status
    }

    init(_ error: JourneyError) {
        message = error.description
        switch error {
        case .rules, .refused, .pinned: status = .dataError
        case .rulesUnreadable: status = .noInput
        case .store(let store):
            switch store {
            case .databaseMissing, .isDirectory: status = .noInput
            case .notADatabase, .platformTablesMissing, .notMigrated, .writeRefused: status = .dataError
            case .unknownUser: status = .noUser
            case .sqlite, .directoryNotWritable: status = .ioError
            case .conflictRetriesExhausted, .batchRunning, .leaseLost, .busy: status = .tryAgain
            }
        }
    }
}

/// A user id: a positive integer.
struct UserID: ExpressibleByArgument {
    let value: Int64

    init?(argument: String) {
        guard let value = Int64(argument), value > 0 else { return nil }
        self.value = value
    }

    static var defaultValueDescription: String { "a positive user id" }
}

/// `--db`: the database file.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The SQLite database.", discussion: "Defaults to $JOURNEY_DATABASE, then journey.sqlite.", valueName: "path"))
    var db: String?

    var path: String {
        db ?? ProcessInfo.processInfo.environment["JOURNEY_DATABASE"].flatMap { $0.isEmpty ? nil : $0 } ?? "journey.sqlite"
    }

    /// Opens the database; a missing file is an error unless `mode` is `.migrate`.
    func open(_ mode: JourneyDatabase.OpenMode) throws -> JourneyDatabase {
        do {
            return try JourneyDatabase.open(path: path, mode: mode)
        } catch {
            throw JourneyError.store(error)
        }
    }
}

/// `--rules`: the rule set.
struct RulesOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A rules file (YAML).",
        discussion: "Defaults to $JOURNEY_RULES, then the set adopted in the database (journey rules adopt), then Rules/mundo-tango.yaml, compiled into journey.",
        valueName: "path"))
    var rules: String?

    /// `--rules`, else `$JOURNEY_RULES`, else the adopted set (SPEC §5).
    var choice: RulesChoice { RulesChoice.resolve(explicit: rules) }

    /// The rule set the options choose, on `database` for the adopted one.
    func load(from database: JourneyDatabase) async throws -> RuleSet {
        try await Rules.load(choice, from: database).0
    }
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false
}

/// Opens the service on the database and rules the options name.
func makeService(database: DatabaseOptions, rules: RulesOptions, mode: JourneyDatabase.OpenMode, source: TransitionSource = .cli) async throws -> JourneyService {
    let opened = try database.open(mode)
    let options = JourneyOptions(cacheCapacity: 16, slowEvaluationLevel: .info, logger: cliLogger, source: source, tracksWrites: false)
    let service = try await JourneyService(database: opened, rules: rules.choice, options: options)
    cliLogger.info("opened the database", metadata: ["database": "\(opened.path)", "read_only": "\(opened.isReadOnly)", "rules": "\(service.rules.source)", "rules_version": "\(service.rules.version)"])
    return service
}

/// Writes a JSON value on stdout, keys sorted: one indented object, or with `line`, one line
/// (JSON Lines, written at once even into a pipe).
func printJSON(_ value: some Encodable, line: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = line ? [.sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(Format.timestamp(date))
    }
    let data = try encoder.encode(value)
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

