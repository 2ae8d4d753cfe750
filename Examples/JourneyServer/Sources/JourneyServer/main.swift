import Foundation
import Hummingbird
import Journey
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

// JourneyServer --db PATH|URL [--host 127.0.0.1] [--port 8080] [--rules FILE]
// The database may also come from JOURNEY_DATABASE, the rules from JOURNEY_RULES; without
// either, the set adopted in the database (journey rules adopt), followed while running.
// With --port 0 the system picks a free port, printed on the first line of output.

struct ServerOptions {
    static let usage = "usage: JourneyServer --db PATH [--host ADDRESS] [--port N] [--rules FILE]   (or set JOURNEY_DATABASE)"

    var databasePath = ProcessInfo.processInfo.environment["JOURNEY_DATABASE"] ?? ""
    var host = "127.0.0.1"
    var port = 8080
    var rulesPath: String?

    init(arguments: [String]) {
        var arguments = arguments[...]
        while let flag = arguments.popFirst() {
            if flag == "--help" || flag == "-h" {
                print(Self.usage)
                exit(0)
            }
            guard ["--db", "--host", "--port", "--rules"].contains(flag) else { fail("unknown argument \(flag)\n\(Self.usage)") }
            guard let value = arguments.popFirst() else { fail("\(flag) needs a value\n\(Self.usage)") }
            switch flag {
            case "--db": databasePath = value
            case "--host": host = value
            case "--rules": rulesPath = value
            default:
                guard let number = Int(value), (0...65_535).contains(number) else { fail("--port \(value) is not a port number") }
                port = number
            }
        }
        if databasePath.isEmpty { fail("no database; pass --db PATH or set JOURNEY_DATABASE\n\(Self.usage)") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("JourneyServer: \(message)\n".utf8))
    exit(2)
}

let options = ServerOptions(arguments: Array(CommandLine.arguments.dropFirst()))
// The host chooses the backends: logs on stderr, metrics in a Prometheus registry (before the
// service is made, which creates its instruments from the bootstrapped factory).
LoggingSystem.bootstrap(StreamLogHandler.standardError)
let registry = PrometheusCollectorRegistry()
MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
let logger = Logger(label: "JourneyServer")

// A mistyped --db must not serve an empty platform: the database must exist (no createIfMissing).
let journey: JourneyService
do throws(JourneyError) {
    journey = try await JourneyService.open(
        database: options.databasePath, access: .migrate,
        rules: RulesChoice.resolve(explicit: options.rulesPath),
        options: JourneyOptions(logger: logger))
} catch .store(.databaseMissing(let location)) {
    // The server's own advice, at its own command line; an HTTP answer never carries any.
    fail("There is no database at \(location); pass --db PATH or set JOURNEY_DATABASE (journey migrate --create --db PATH creates one).")
} catch {
    fail(error.description)
}

let app = Application(
    router: makeRouter(journey: journey, registry: registry),
    configuration: .init(address: .hostname(options.host, port: options.port), serverName: "JourneyServer"),
    onServerRunning: { [options] channel in
        let line = "JourneyServer listening on http://\(options.host):\(channel.localAddress?.port ?? options.port)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    },
    logger: logger
)
let services = ServiceGroup(
    configuration: .init(
        services: [.init(service: app), .init(service: JourneyFollower(journey: journey))],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
try await services.run()
