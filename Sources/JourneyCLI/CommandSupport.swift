import ArgumentParser
import Foundation
import Journey
import JourneyCore
import JourneySQLite

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
    func open(_ mode: SQLiteStore.OpenMode) throws -> SQLiteStore {
        do {
            return try SQLiteStore.open(path: path, mode: mode)
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
    func load(from database: SQLiteStore) async throws -> RuleSet {
        try await Rules.load(choice, from: database).0
    }
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object per line instead of text; errors too, on stderr.")
    var json = false
}

/// Opens the service on the database and rules the options name.
func makeService(database: DatabaseOptions, rules: RulesOptions, mode: SQLiteStore.OpenMode, source: TransitionSource = .cli) async throws -> JourneyService {
    let opened = try database.open(mode)
    let options = JourneyOptions(cacheCapacity: 16, slowEvaluationLevel: .info, logger: cliLogger, source: source, tracksWrites: false)
    let service = try await JourneyService(database: opened, rules: rules.choice, options: options)
    cliLogger.info("opened the database", metadata: ["database": "\(opened.path)", "read_only": "\(opened.isReadOnly)", "rules": "\(service.rules.source)", "rules_version": "\(service.rules.version)"])
    return service
}

/// `value` as one line of JSON (JSON Lines): keys sorted, no spaces, dates as ``Format/timestamp(_:)``.
func jsonLine(_ value: some Encodable) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(Format.timestamp(date))
    }
    return try encoder.encode(value) + Data("\n".utf8)
}

/// Writes a JSON value on stdout as one line (JSON Lines: a stream prints one line per object).
func printJSON(_ value: some Encodable) throws {
    FileHandle.standardOutput.write(try jsonLine(value))
}

/// A command that takes ``OutputOptions``: under `--json`, `main` reports its failure as JSON on stderr.
/// (`SendableMetatype`, as for ``LoggingCommand``.)
protocol JSONOutputCommand: SendableMetatype {
    var output: OutputOptions { get }
}

extension EvaluateCommand: JSONOutputCommand {}
extension ExplainCommand: JSONOutputCommand {}
extension HistoryCommand: JSONOutputCommand {}
extension BatchCommand: JSONOutputCommand {}
extension StatusCommand: JSONOutputCommand {}
extension DoctorCommand: JSONOutputCommand {}
extension MigrateCommand: JSONOutputCommand {}

/// A failure as `--json` reports it on stderr: `{"error":{"message":"…","status":65}}`, one line.
struct JSONFailure: Encodable {
    /// The `error` object: the one-line message and the exit status.
    struct Body: Encodable {
        let message: String
        let status: Int32
    }

    let error: Body

    init(message: String, status: Int32) {
        error = Body(message: message, status: status)
    }
}

/// Reports a failure on stderr, as one `journey: MESSAGE` line or, under `--json`, one line of
/// ``JSONFailure``, and exits with `status`.
func fail(_ message: String, status: Int32, json: Bool) -> Never {
    let line = json ? (try? jsonLine(JSONFailure(message: message, status: status))) : nil
    FileHandle.standardError.write(line ?? Data("journey: \(message.printable)\n".utf8))
    exit(status)
}
