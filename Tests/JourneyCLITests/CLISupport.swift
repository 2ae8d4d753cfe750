import Foundation
import GRDB
import Synchronization
import Testing

// Helpers for the CLI tests: find the built `journey` executable, run it as a subprocess in a
// fresh temporary directory, build fixture databases with it, and compare files byte for byte.

/// The `journey` executable built next to this test bundle (by whichever scratch path built it).
enum JourneyBinary {
    /// Where the executable may be, most specific first.
    static var candidates: [URL] {
        var starts: [URL] = []
        // An explicit override, for unusual layouts.
        if let override = ProcessInfo.processInfo.environment["JOURNEY_CLI_BINARY"], !override.isEmpty {
            return [URL(fileURLWithPath: override)]
        }
        // Linux: the test runner is the executable `<build>/debug/JourneyPackageTests.xctest`
        // (Bundle.main.bundleURL is its directory, executableURL the file itself).
        starts.append(Bundle.main.bundleURL)
        if let executable = Bundle.main.executableURL { starts.append(executable) }
        // Any `.xctest` bundle loaded (macOS: `<build>/debug/JourneyPackageTests.xctest/Contents/MacOS/...`).
        starts.append(contentsOf: Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" })
        // The command line: argv[0] on Linux, the bundle path given to `xctest` on macOS.
        starts.append(contentsOf: CommandLine.arguments.filter { $0.contains(".xctest") }.map { URL(fileURLWithPath: $0) })
        if let first = CommandLine.arguments.first { starts.append(URL(fileURLWithPath: first)) }
        // The running process itself.
        starts.append(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath())

        var seen = Set<String>()
        var result: [URL] = []
        for start in starts {
            // The directory holding the `.xctest` bundle, else the start itself when it is a directory,
            // else the directory of the file; then one level up: `<dir>/journey`.
            var directory = start.standardizedFileURL
            var isDirectory: ObjCBool = false
            if let bundle = directory.pathComponents.lastIndex(where: { $0.hasSuffix(".xctest") }) {
                directory = URL(fileURLWithPath: NSString.path(withComponents: Array(directory.pathComponents[..<bundle])))
            } else if !(FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) && isDirectory.boolValue) {
                directory = directory.deletingLastPathComponent()
            }
            for _ in 0..<2 {
                let candidate = directory.appendingPathComponent("journey")
                if seen.insert(candidate.path).inserted { result.append(candidate) }
                directory = directory.deletingLastPathComponent()
            }
        }
        return result
    }

    /// The first candidate that is an executable regular file.
    static let url: URL? = candidates.first { url in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
            && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: url.path)
    }

    /// The executable, or a test failure that says where it was looked for.
    static func require(sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        try #require(
            url,
            """
            The built `journey` executable was not found next to the test bundle. \
            Build it with `swift build --build-tests` (same --scratch-path as the tests). \
            Looked at: \(candidates.map(\.path).joined(separator: ", ")). \
            Set JOURNEY_CLI_BINARY to override.
            """, sourceLocation: sourceLocation)
    }
}

/// What one run of `journey` did.
struct CLIResult: Sendable, CustomStringConvertible {
    let arguments: [String]
    let status: Int32
    /// Whether the process exited normally (false: killed by a signal, e.g. a crash or the timeout).
    let exitedNormally: Bool
    let stdout: String
    let stderr: String

    /// The non-empty lines of stderr.
    var stderrLines: [String] {
        stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    var description: String {
        "journey \(arguments.joined(separator: " ")) → status \(status)\(exitedNormally ? "" : " (signal)")\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }

    /// The stdout, parsed as one JSON object.
    func jsonObject(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(value as? [String: Any], "stdout is not one JSON object: \(self)", sourceLocation: sourceLocation)
    }
}

/// A fresh temporary directory for one test: the child's working directory and its files.
struct Workspace: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("journey-cli-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the workspace.
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }

    /// Runs `journey arguments` with the workspace as working directory.
    ///
    /// `JOURNEY_DATABASE` is removed from the child's environment unless `environment` sets it.
    func journey(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)) async throws -> CLIResult {
        let result = try await run(JourneyBinary.require(), arguments, environment: environment, timeout: timeout)
        return CLIResult(
            arguments: arguments, status: result.status, exitedNormally: result.exitedNormally,
            stdout: result.stdout, stderr: result.stderr)
    }

    /// A platform database of 200 users (seed 3), generated by `journey generate` and, unless
    /// `migrated` is false, brought up to the journey schema by `journey migrate`.
    func platformDatabase(_ name: String = "p.sqlite", migrated: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let path = path(name)
        let generated = try await journey(["generate", "--users", "200", "--seed", "3", "--output", path])
        try #require(generated.status == 0, "generate failed: \(generated)", sourceLocation: sourceLocation)
        if migrated {
            let migration = try await journey(["migrate", "--db", path])
            try #require(migration.status == 0, "migrate failed: \(migration)", sourceLocation: sourceLocation)
        }
        return path
    }
}

/// Runs `body` in a fresh workspace and removes it afterwards.
func withWorkspace<T>(_ body: (Workspace) async throws -> T) async throws -> T {
    let workspace = try Workspace()
    defer { workspace.remove() }
    return try await body(workspace)
}

/// The bytes of a database file and of its `-wal` and `-shm` companions (nil when absent).
///
/// SQLite readers of a WAL database create an empty `-wal` and a `-shm` (the shared-memory index,
/// where they also take read marks) and, when read-only, cannot delete them. So "nothing written"
/// is ``sameContent(as:)``: the main file byte-identical and no frame added to the `-wal`.
struct DatabaseFiles: Equatable, CustomStringConvertible {
    let main: Data?
    let wal: Data?
    let shm: Data?

    init(_ path: String) {
        main = FileManager.default.contents(atPath: path)
        wal = FileManager.default.contents(atPath: path + "-wal")
        shm = FileManager.default.contents(atPath: path + "-shm")
    }

    /// The main file byte-identical, and the `-wal` absent, empty or unchanged (no frame written).
    func sameContent(as before: DatabaseFiles) -> Bool {
        main == before.main && (wal == nil || wal?.isEmpty == true || wal == before.wal)
    }

    var description: String {
        "main \(main.map { "\($0.count) bytes" } ?? "absent"), -wal \(wal.map { "\($0.count) bytes" } ?? "absent"), -shm \(shm.map { "\($0.count) bytes" } ?? "absent")"
    }
}

/// Expects a failure reported the documented way: the exit status, one line on stderr starting
/// `journey: ` (under `--json`: one line of JSON, ``jsonError(_:status:sourceLocation:)``) that
/// mentions each of `mentions`, nothing on stdout, and no crash or stack trace.
func expectCleanFailure(_ result: CLIResult, status: Int32, mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.exitedNormally, "the process was killed: \(result)", sourceLocation: sourceLocation)
    #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderrLines.count == 1, "stderr is not exactly one line: \(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "a failure printed on stdout: \(result)", sourceLocation: sourceLocation)
    expectNoCrash(result, sourceLocation: sourceLocation)
    let message: String
    if result.arguments.contains("--json") {
        message = jsonError(result, status: status, sourceLocation: sourceLocation) ?? ""
    } else {
        #expect(result.stderr.hasPrefix("journey: "), "stderr does not start with 'journey: ': \(result)", sourceLocation: sourceLocation)
        message = result.stderr
    }
    for mention in mentions {
        #expect(message.contains(mention), "stderr does not mention \(mention): \(result)", sourceLocation: sourceLocation)
    }
}

/// Expects stderr to be the one line of JSON `--json` reports a failure with,
/// `{"error":{"message":"…","status":N}}`, its status the exit status; returns the message.
@discardableResult
func jsonError(_ result: CLIResult, status: Int32, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderrLines.count == 1, "stderr is not exactly one line: \(result)", sourceLocation: sourceLocation)
    let object = (try? JSONSerialization.jsonObject(with: Data(result.stderr.utf8))) as? [String: Any]
    let error = object?["error"] as? [String: Any]
    #expect(
        object?.count == 1 && (error?["status"] as? NSNumber)?.int32Value == status, "stderr is not the JSON error: \(result)", sourceLocation: sourceLocation)
    let message = error?["message"] as? String
    #expect(message?.isEmpty == false, "the JSON error has no message: \(result)", sourceLocation: sourceLocation)
    return message
}

/// Expects ArgumentParser's usage error: status 64, an `Error:` line and the usage (under `--json`:
/// the JSON error with status 64), no crash.
func expectUsageFailure(_ result: CLIResult, mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.exitedNormally, "the process was killed: \(result)", sourceLocation: sourceLocation)
    #expect(result.status == 64, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "a failure printed on stdout: \(result)", sourceLocation: sourceLocation)
    expectNoCrash(result, sourceLocation: sourceLocation)
    let message: String
    if result.arguments.contains("--json") {
        message = jsonError(result, status: 64, sourceLocation: sourceLocation) ?? ""
    } else {
        #expect(result.stderr.hasPrefix("Error: "), "no usage error on stderr: \(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains("Usage: journey"), "no usage on stderr: \(result)", sourceLocation: sourceLocation)
        message = result.stderr
    }
    for mention in mentions {
        #expect(message.contains(mention), "stderr does not mention \(mention): \(result)", sourceLocation: sourceLocation)
    }
}

/// Expects no trace of a crash in either stream.
func expectNoCrash(_ result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) {
    for marker in ["Fatal error", "Stack dump", "Backtrace", "Current stack trace", "Thread 0", "💣"] {
        #expect(!result.stderr.contains(marker) && !result.stdout.contains(marker), "a crash marker '\(marker)': \(result)", sourceLocation: sourceLocation)
    }
}

/// Small database chores done directly with GRDB (each connection closed before returning).
enum Direct {
    /// Runs `sql` on the file and closes the connection (checkpointing any WAL).
    static func execute(_ path: String, _ sql: String, arguments: StatementArguments = StatementArguments()) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql, arguments: arguments) }
        try queue.close()
    }

    /// A connection that cannot write (`PRAGMA query_only`) but, unlike a read-only one, removes the
    /// empty `-wal` and the `-shm` when it closes, so that checks leave the files as they found them.
    static func reader(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA query_only = 1") }
        return try DatabaseQueue(path: path, configuration: config)
    }

    /// The schema and every row of every table, as text: equal fingerprints mean equal contents.
    static func fingerprint(_ path: String) throws -> [String] {
        let queue = try reader(path)
        let lines = try queue.read { db -> [String] in
            var lines = try Row.fetchAll(db, sql: "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
                .map { "schema \($0)" }
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            for table in tables {
                lines += try Row.fetchAll(db, sql: "SELECT * FROM \(table.quotedDatabaseIdentifier) ORDER BY rowid").map { "\(table) \($0)" }
            }
            return lines
        }
        try queue.close()
        return lines
    }

    /// The integer the query returns.
    static func integer(_ path: String, _ sql: String, arguments: StatementArguments = StatementArguments()) throws -> Int? {
        let queue = try reader(path)
        let value = try queue.read { db in try Int.fetchOne(db, sql: sql, arguments: arguments) }
        try queue.close()
        return value
    }
}

/// Finds the first user (ascending id) whose dry-run evaluation satisfies `predicate`.
func firstUser(in workspace: Workspace, db: String, through last: Int = 200, where predicate: ([String: Any]) -> Bool) async throws -> (
    id: Int, report: [String: Any]
)? {
    for id in 1...last {
        let result = try await workspace.journey(["evaluate", String(id), "--db", db, "--dry-run", "--json"])
        try #require(result.status == 0, "\(result)")
        let report = try result.jsonObject()
        if predicate(report) { return (id, report) }
    }
    return nil
}

// MARK: - Appended for the reliability, doctor, security and soak tests

extension Workspace {
    /// Runs any executable (`/bin/sh`, `setpriv` …) with the workspace as working directory,
    /// capturing stdout and stderr like ``journey(_:environment:timeout:)``.
    ///
    /// `JOURNEY_DATABASE` is removed from the child's environment unless `environment` sets it.
    func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)) async throws -> CLIResult {
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("journey-cli-out-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: outputs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outputs) }
        let stdoutURL = outputs.appendingPathComponent("stdout")
        let stderrURL = outputs.appendingPathComponent("stderr")
        var childEnvironment = ProcessInfo.processInfo.environment
        childEnvironment["JOURNEY_DATABASE"] = nil
        for (key, value) in environment { childEnvironment[key] = value }
        let process = try Subprocess(executable, arguments, in: url, environment: childEnvironment, stdout: stdoutURL, stderr: stderrURL)
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            process.terminate()
        }
        defer { watchdog.cancel() }
        let status = await process.waitForExit()
        return CLIResult(
            arguments: [executable.path] + arguments, status: status.status, exitedNormally: status.exitedNormally,
            stdout: String(decoding: (try? Data(contentsOf: stdoutURL)) ?? Data(), as: UTF8.self),
            stderr: String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self))
    }

    /// Runs `journey arguments` as an unprivileged user: directly when the tests do not run as
    /// root, else as `nobody` (65534) through `setpriv`. Nil when neither is possible.
    func journeyUnprivileged(_ arguments: [String], environment: [String: String] = [:]) async throws -> CLIResult? {
        if !Unprivileged.testsRunAsRoot { return try await journey(arguments, environment: environment) }
        guard let setpriv = Unprivileged.setpriv else { return nil }
        let binary = try JourneyBinary.require()
        return try await run(
            setpriv, ["--reuid=\(Unprivileged.uid)", "--regid=\(Unprivileged.gid)", "--clear-groups", binary.path] + arguments,
            environment: environment)
    }

    /// Runs `journey arguments` under `umask mask` (through `/bin/sh -c 'umask …; exec …'`).
    func journey(_ arguments: [String], umask mask: String) async throws -> CLIResult {
        let binary = try JourneyBinary.require()
        return try await run(URL(fileURLWithPath: "/bin/sh"), ["-c", "umask \(mask) && exec \"$0\" \"$@\"", binary.path] + arguments)
    }
}

/// A process shared with the watchdog task (it is only terminated there).
/// Running `journey` as a user other than root, so that file permissions apply.
enum Unprivileged {
    /// `nobody`.
    static let uid: UInt32 = 65_534
    static let gid: UInt32 = 65_534

    /// Whether the tests run as root, for whom SQLite ignores the permission bits of files and directories.
    static var testsRunAsRoot: Bool { geteuid() == 0 }

    /// `setpriv` (util-linux), which runs a command with another uid and gid.
    static let setpriv: URL? = ["/usr/bin/setpriv", "/bin/setpriv"].map { URL(fileURLWithPath: $0) }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    /// Whether ``Workspace/journeyUnprivileged(_:environment:)`` can run.
    static var available: Bool { !testsRunAsRoot || setpriv != nil }

    /// Gives `path` to the unprivileged user (a no-op when the tests are not root).
    static func giveAway(_ path: String) throws {
        guard testsRunAsRoot else { return }
        try FileManager.default.setAttributes([.ownerAccountID: NSNumber(value: uid), .groupOwnerAccountID: NSNumber(value: gid)], ofItemAtPath: path)
    }
}

/// The file mode bits of `path` (permissions only).
func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return try #require(attributes[.posixPermissions] as? NSNumber).intValue & 0o7777
}

/// Counts the users whose stored stage is not the `to_state` of their last transition (the first
/// stage when they have none): 0 on a database every writer left consistent.
let stagesWithoutHistorySQL = """
    SELECT COUNT(*) FROM users u
    LEFT JOIN journey_transitions t ON t.user_id = u.id
        AND t.seq = (SELECT MAX(seq) FROM journey_transitions WHERE user_id = u.id)
    WHERE u.customer_journey_state IS NOT COALESCE(t.to_state, 'J1_NEW_USER')
    """

// MARK: - Child processes

/// A child process started with `posix_spawn`, in place of Foundation's `Process`.
///
/// On Linux, Swift 6.3.1's `Process.run()` now and then dies of SIGSEGV: it copies a whole
/// 256-byte `dirent` name while listing `/proc/self/fd`, and reads past glibc's buffer
/// (swiftlang/swift-corelibs-foundation#5472, merged after 6.3.1). These tests start hundreds of
/// children, and the suite met it. The child gets the working directory, the environment and the
/// three standard streams asked for, and no other descriptor of ours.
final class Subprocess: Sendable {
    /// The child's process id.
    let pid: pid_t
    private let exit = ExitBox()
    private let exited: Task<(status: Int32, exitedNormally: Bool), Never>

    /// Starts `executable` with `arguments` in `directory`. `stdout`/`stderr` are files (created or
    /// truncated); nil is `/dev/null`. Stdin is `/dev/null`. Throws when the spawn fails.
    init(
        _ executable: URL, _ arguments: [String], in directory: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
        stdout: URL? = nil, stderr: URL? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout?.path ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr?.path ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = Spawn.closeFrom(&actions, 3)
        _ = Spawn.changeDirectory(&actions, directory.path)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        // As `Process` does: the child starts with no signal blocked and every signal at its default
        // (this process ignores SIGPIPE, and a thread may block others).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var spawned: pid_t = 0
        let rc = posix_spawn(&spawned, executable.path, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable.path): \(String(cString: strerror(rc)))"])
        }
        let pid = spawned
        self.pid = pid
        let exit = self.exit
        // `waitpid` blocks: it runs on a thread of its own, never on the cooperative pool.
        let (stream, continuation) = AsyncStream.makeStream(of: (status: Int32, exitedNormally: Bool).self)
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let normal = (status & 0x7f) == 0
            let result = (status: normal ? (status >> 8) & 0xff : status & 0x7f, exitedNormally: normal)
            exit.value.withLock { $0 = result }
            continuation.yield(result)
            continuation.finish()
        }
        waiter.start()
        exited = Task { await stream.first { _ in true } ?? (status: -1, exitedNormally: false) }
    }

    /// True until the child has exited and been reaped.
    var isRunning: Bool { exit.value.withLock { $0 == nil } }

    /// Sends `signal` (SIGTERM by default) unless the child has already been reaped; true when it was sent.
    @discardableResult
    func terminate(_ signal: Int32 = SIGTERM) -> Bool {
        exit.value.withLock { $0 == nil && kill(pid, signal) == 0 }
    }

    /// Waits for the child to exit: its exit status, or its signal number when `exitedNormally` is false.
    func waitForExit() async -> (status: Int32, exitedNormally: Bool) { await exited.value }
}

/// How a ``Subprocess`` ended; nil until its waiter has reaped it.
private final class ExitBox: Sendable {
    let value = Mutex<(status: Int32, exitedNormally: Bool)?>(nil)
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29) and `addclosefrom_np` (2.34), which the
/// Swift Glibc module does not import; looked up once by name.
private enum Spawn {
    typealias Actions = UnsafeMutablePointer<posix_spawn_file_actions_t>
    static let changeDirectory = unsafeBitCast(
        dlsym(nil, "posix_spawn_file_actions_addchdir_np")!, to: (@convention(c) (Actions, UnsafePointer<CChar>) -> Int32).self)
    static let closeFrom = unsafeBitCast(
        dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")!, to: (@convention(c) (Actions, Int32) -> Int32).self)
}
