import Foundation
import Hummingbird
import Journey
import JourneyStore

// JourneyServer --db PATH [--port 8080] [--rules FILE]
// The database may also come from JOURNEY_DATABASE. The server listens on 127.0.0.1 only;
// with --port 0 the system picks a free port, printed on the first line of output.

struct ServerOptions {
    static let usage = "usage: JourneyServer --db PATH [--port N] [--rules FILE]   (or set JOURNEY_DATABASE)"

    var databasePath = ProcessInfo.processInfo.environment["JOURNEY_DATABASE"] ?? ""
    var port = 8080
    var rulesPath: String?

    init(arguments: [String]) {
        var arguments = arguments[...]
        while let flag = arguments.popFirst() {
            if flag == "--help" || flag == "-h" {
                print(Self.usage)
                exit(0)
            }
            guard ["--db", "--port", "--rules"].contains(flag) else { fail("unknown argument \(flag)\n\(Self.usage)") }
            guard let value = arguments.popFirst() else { fail("\(flag) needs a value\n\(Self.usage)") }
            switch flag {
            case "--db": databasePath = value
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
let journey: JourneyService
do {
    journey = try JourneyService(path: options.databasePath, rulesPath: options.rulesPath)
} catch {
    fail(error.description)
}

let app = Application(
    router: makeRouter(journey: journey),
    configuration: .init(address: .hostname("127.0.0.1", port: options.port), serverName: "JourneyServer"),
    onServerRunning: { [port = options.port] channel in
        let line = "JourneyServer listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
)
try await app.runService()
