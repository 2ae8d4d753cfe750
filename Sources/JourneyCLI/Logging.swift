import ArgumentParser
import Foundation
import Logging

/// `--quiet`, `--verbose`, `--log-level`: how much a command logs on stderr (its output on stdout
/// does not change). Every subcommand takes them.
struct LoggingOptions: ParsableArguments {
    /// The levels `--log-level` accepts, those of swift-log.
    enum Level: String, ExpressibleByArgument, CaseIterable {
        case trace, debug, info, notice, warning, error, critical

        var swiftLog: Logger.Level {
            switch self {
            case .trace: .trace
            case .debug: .debug
            case .info: .info
            case .notice: .notice
            case .warning: .warning
            case .error: .error
            case .critical: .critical
            }
        }
    }

    @Flag(name: .shortAndLong, help: "Log errors only.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Also log what the command does: moves, runs, the database and rules used.")
    var verbose = false

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp(
            "The least severe level logged on stderr.", discussion: "Defaults to warning; --verbose is info, --quiet is error.", valueName: "level"))
    var logLevel: Level?

    /// The level the options ask for.
    var level: Logger.Level {
        if let logLevel { return logLevel.swiftLog }
        return quiet ? .error : verbose ? .info : .warning
    }

    func validate() throws {
        if [quiet, verbose, logLevel != nil].filter({ $0 }).count > 1 {
            throw ValidationError("--quiet, --verbose and --log-level exclude each other.")
        }
    }
}

/// A command that takes ``LoggingOptions``; `main` bootstraps swift-log with its level.
/// (`SendableMetatype`: no main-actor-isolated conformance, so `main` may cast and then run it.)
protocol LoggingCommand: SendableMetatype {
    var logging: LoggingOptions { get }
}

extension EvaluateCommand: LoggingCommand {}
extension ExplainCommand: LoggingCommand {}
extension HistoryCommand: LoggingCommand {}
extension PinCommand: LoggingCommand {}
extension UnpinCommand: LoggingCommand {}
extension BatchCommand: LoggingCommand {}
extension StatusCommand: LoggingCommand {}
extension DoctorCommand: LoggingCommand {}
extension MigrateCommand: LoggingCommand {}
extension RulesCommand.Check: LoggingCommand {}
extension RulesCommand.Graph: LoggingCommand {}
extension GenerateCommand: LoggingCommand {}
extension DemoCommand: LoggingCommand {}

/// The command line's logger, handed to the service through `JourneyOptions`.
let cliLogger = Logger(label: "journey")

/// Sends every logger of the process to stderr at `level`, one line per message.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StderrLogHandler(label: label)
        handler.logLevel = level
        return handler
    }
}

/// One line per message on stderr: `2026-11-28T05:04:09Z warning journey: message key=value …`,
/// metadata sorted by key, control characters escaped so a line stays one line.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .warning
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        var line = "\(Date.now.formatted(.iso8601)) \(event.level) \(label): \(Self.escaped(event.message.description))"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.escaped(value.description))"
        }
        if let error = event.error { line += " error=\(Self.escaped(String(describing: error)))" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// `text` with control characters written as `\n`, `\u{1B}`, … .
    static func escaped(_ text: String) -> String {
        text.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }
}
