import ArgumentParser
import Foundation
import Journey

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

    /// The service's error with the command line's own advice, and its exit status.
    init(_ error: JourneyError) {
        message = Self.advised(error.description, Self.advice(for: error))
        status = Self.status(for: error)
    }

    /// The exit status of each kind of failure; for the store, of its coarse category (README, "Errors").
    static func status(for error: JourneyError) -> ExitStatus {
        switch error {
        case .rules(.unreadable): .noInput
        case .rules, .refused, .pinned: .dataError
        case .store(let store): status(for: store)
        case .stopped: .tryAgain
        }
    }

    /// The store's category as an exit status, with the two finer answers `journey` has always
    /// given: an unknown user (67, not a missing database) and a directory where the database file
    /// should be (66: the file is missing, as for no file at all).
    static func status(for error: StorageError) -> ExitStatus {
        switch error {
        case .unknownUser: return .noUser
        case .isDirectory: return .noInput
        default: break
        }
        switch error.category {
        case .notFound: return .noInput
        case .invalidDatabase, .refused: return .dataError
        case .busy: return .tryAgain
        case .permission, .failure: return .ioError
        }
    }

    /// What to type or do about `error`, for a person at a terminal; nil where the message says it all.
    /// The store's and the service's messages say only what is wrong (an HTTP host shows them too).
    static func advice(for error: JourneyError) -> String? {
        switch error {
        case .pinned(let user, _, _):
            return "run journey unpin \(user) before moving them"
        case .store(let store):
            switch store {
            case .databaseMissing:
                return "pass --db PATH or set JOURNEY_DATABASE (journey migrate --create --db PATH creates one)"
            case .platformTablesMissing(let location, _):
                return "run journey migrate --db \(DemoCommand.shellQuoted(location)) on the platform database"
            case .platformTablesUnfit(let location, _):
                return "change the platform's tables (README, \"Platform tables\"), then run journey migrate --db \(DemoCommand.shellQuoted(location))"
            case .notMigrated(let location):
                return "run journey migrate --db \(DemoCommand.shellQuoted(location)) first"
            case .busy:
                return "try again"
            case .batchRunning:
                return "wait for it to finish (a run that stops renewing is taken over after its lease expires), or pass --take-over if it is gone"
            case .notWritable(let location, _):
                return DatabaseLocation(location).backend == .postgreSQL
                    ? "grant this role the privileges Journey needs on the platform's and the journey's tables"
                    : "make the directory writable for this user"
            case .writeRefused:
                return "fix the row or the constraint"
            default:
                return nil
            }
        default:
            return nil
        }
    }

    /// `message` (one sentence ending in a period) with `advice` after a semicolon.
    static func advised(_ message: String, _ advice: String?) -> String {
        guard let advice else { return message }
        let sentence = message.hasSuffix(".") ? String(message.dropLast()) : message
        return "\(sentence); \(advice)."
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

/// `--db`: the database.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The database: a SQLite file, or a postgresql:// URL.",
            discussion: "Defaults to $JOURNEY_DATABASE, then journey.sqlite.", valueName: "path"))
    var db: String?

    /// `--db`, else `$JOURNEY_DATABASE`, else `journey.sqlite` (SPEC §5).
    var location: String {
        db ?? ProcessInfo.processInfo.environment["JOURNEY_DATABASE"].flatMap { $0.isEmpty ? nil : $0 } ?? "journey.sqlite"
    }
}

/// `--rules`: the rule set.
struct RulesOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A rules file (YAML).",
            discussion:
                "Defaults to $JOURNEY_RULES, then the set adopted in the database (journey rules adopt), then Rules/mundo-tango.yaml, compiled into journey.",
            valueName: "path"))
    var rules: String?

    /// `--rules`, else `$JOURNEY_RULES`, else the adopted set (SPEC §5).
    var choice: RulesChoice { RulesChoice.resolve(explicit: rules) }
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object per line instead of text; errors too, on stderr.")
    var json = false
}

/// Opens the service on the database and the rules `rules` names (from ``RulesOptions/choice``:
/// `--rules`, `$JOURNEY_RULES`, the adopted set), tuned for a one-shot process: a small cache, no
/// write tracking. A command whose work does not depend on the rules passes nil: the bundled set,
/// and the database's adopted text is not read.
func makeService(
    database: DatabaseOptions, rules: RulesChoice?, access: DatabaseAccess, concurrentReads: Bool = false,
    source: TransitionSource = .cli, feedPollInterval: Duration = .milliseconds(200)
) async throws(JourneyError) -> JourneyService {
    let options = JourneyOptions(
        cacheCapacity: 16, slowEvaluationLevel: .info, logger: cliLogger, source: source, tracksWrites: false,
        feedPollInterval: feedPollInterval)
    let service =
        if let rules {
            try await JourneyService.open(database: database.location, access: access, concurrentReads: concurrentReads, rules: rules, options: options)
        } else {
            try await JourneyService.open(
                database: database.location, access: access, concurrentReads: concurrentReads,
                rules: Rules.bundledDefault(), options: options)
        }
    cliLogger.info(
        "opened the database",
        metadata: [
            "database": "\(service.location)", "read_only": "\(service.isReadOnly)",
            "rules": "\(service.rules.source)", "rules_version": "\(service.rules.version)",
        ])
    return service
}

/// `value` as one line of JSON (JSON Lines): keys sorted, no spaces, dates as ``Format/timestamp(_:)``
/// (Journey's reports write their own instants as that text already; this covers the store's records).
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
extension WatchCommand: JSONOutputCommand {}
extension RulesCommand.Adopt: JSONOutputCommand {}

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
