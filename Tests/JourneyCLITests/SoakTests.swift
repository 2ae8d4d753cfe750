import Foundation
import GRDB
import Journey
import Testing

// Issue 8 item 3: the soak test. Off in `swift test`; `scripts/soak.sh [SECONDS]` runs it with
// JOURNEY_SOAK_SECONDS set. For that long, on a generated and migrated database:
// - 6 reader tasks read stages: through an in-process `JourneyService` (the API layer: its cache,
//   write tracking and single flight, with the other writers in other connections), through
//   `journey evaluate --dry-run --json` subprocesses, through a GRDB connection of their own (a
//   stage and its last transition in one snapshot), and one in ten persisting an evaluation
//   (the service's or the CLI's evaluate-and-persist, racing the batch);
// - 2 writer tasks insert and delete posts and follows through a separate GRDB connection each;
// - a `journey batch` subprocess is started, SIGKILLed at a random moment, and started again.
// At the end a last batch runs to completion and: integrity_check is ok, every stage matches its
// history (SQL and `journey doctor`, which also checks follower_count against the follows that the
// writers changed), every stage equals a fresh evaluation (every user through the service with its
// cache dropped, a sample through `journey evaluate --dry-run --json`), no stderr said
// "database is locked", and no operation failed. The counts are printed.

/// The soak's settings, from the environment.
private enum SoakSettings {
    static var seconds: Double? {
        ProcessInfo.processInfo.environment["JOURNEY_SOAK_SECONDS"].flatMap(Double.init)
    }
    /// Users in the generated database (JOURNEY_SOAK_USERS, default 5,000).
    static var users: Int {
        ProcessInfo.processInfo.environment["JOURNEY_SOAK_USERS"].flatMap(Int.init) ?? 5_000
    }
    static let readers = 6
    static let stages: Set<String> = ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER", "J4_SUPER_ADMIN"]
}

/// What the soak did, shared by its tasks.
private final class SoakLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private(set) var failures: [String] = []
    private(set) var lockedMessages = 0

    func count(_ name: String, _ amount: Int = 1) {
        lock.withLock { counts[name, default: 0] += amount }
    }

    subscript(name: String) -> Int { lock.withLock { counts[name] ?? 0 } }

    /// Records a failure (kept short); counts "database is locked" separately.
    func fail(_ message: String) {
        lock.withLock {
            if message.localizedCaseInsensitiveContains("database is locked") { lockedMessages += 1 }
            if failures.count < 50 { failures.append(String(message.prefix(2_000))) }
            counts["errors", default: 0] += 1
        }
    }

    /// Checks a subprocess's stderr for "database is locked" even when it succeeded.
    func scan(_ stderr: String, _ what: String) {
        if stderr.localizedCaseInsensitiveContains("database is locked") { fail("\(what): \(stderr)") }
    }

    var summary: String {
        lock.withLock { counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
    }
}

/// A `journey batch` subprocess whose stderr goes to a file.
private struct BatchProcess {
    let process: Subprocess
    let stderrURL: URL

    static func start(_ arguments: [String], in workspace: Workspace) throws -> BatchProcess {
        let stderrURL = workspace.url.appendingPathComponent("batch-stderr-\(UUID().uuidString)")
        let process = try Subprocess(JourneyBinary.require(), arguments, in: workspace.url, stderr: stderrURL)
        return BatchProcess(process: process, stderrURL: stderrURL)
    }

    var stderr: String {
        String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
    }
}

/// A GRDB connection that waits for locks like journey does (10 s) and never blocks the cooperative pool.
private func connection(_ path: String, readOnly: Bool = false) throws -> DatabaseQueue {
    var config = Configuration()
    config.busyMode = .timeout(10)
    if readOnly { config.prepareDatabase { db in try db.execute(sql: "PRAGMA query_only = 1") } }
    return try DatabaseQueue(path: path, configuration: config)
}

@Suite("Soak: readers, writers and a killed batch on one database", .serialized)
struct SoakTests {
    @Test(
        "soak for JOURNEY_SOAK_SECONDS: no error, no lock surfaced, every stage matches its history and a fresh evaluation",
        .enabled(if: SoakSettings.seconds != nil, "set JOURNEY_SOAK_SECONDS (scripts/soak.sh) to run the soak"))
    func soak() async throws {
        let seconds = try #require(SoakSettings.seconds)
        let users = SoakSettings.users
        try await withWorkspace { workspace in
            // Given: a generated platform database, migrated
            let db = workspace.path("soak.sqlite")
            let generate = try await workspace.journey(["generate", "--users", String(users), "--seed", "21", "--output", db])
            try #require(generate.status == 0, "\(generate)")
            let migrate = try await workspace.journey(["migrate", "--db", db])
            try #require(migrate.status == 0, "\(migrate)")
            let postsBefore = try Direct.integer(db, "SELECT COUNT(*) FROM posts") ?? 0
            let followsBefore = try Direct.integer(db, "SELECT COUNT(*) FROM follows") ?? 0

            let ledger = SoakLedger()
            let service = try await JourneyService(path: db)
            let started = ContinuousClock.now
            let deadline = started + .milliseconds(Int(seconds * 1_000))
            print("soak: \(users) users, \(postsBefore) posts, \(followsBefore) follows; running for \(seconds) s")

            // When: readers, writers and the killed batch run together until the deadline
            await withTaskGroup(of: Void.self) { group in
                for reader in 0..<SoakSettings.readers {
                    group.addTask {
                        await Self.read(db: db, service: service, users: users, until: deadline, workspace: workspace, ledger: ledger, seed: reader)
                    }
                }
                group.addTask { await Self.writePosts(db: db, users: users, until: deadline, ledger: ledger) }
                group.addTask { await Self.writeFollows(db: db, users: users, until: deadline, ledger: ledger) }
                group.addTask { await Self.killBatches(db: db, until: deadline, workspace: workspace, ledger: ledger) }
            }
            let ran = ContinuousClock.now - started

            // Then: a last batch completes without error
            let final = try await workspace.journey(["batch", "--db", db, "--json"])
            #expect(final.status == 0, "\(final)")
            ledger.scan(final.stderr, "final batch")

            // And: the file is sound, every stage matches its history, nothing is left running or failed
            let queue = try connection(db, readOnly: true)
            let integrity = try await queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"])
            let mismatches = try await queue.read { db in
                try Int.fetchOne(db, sql: stagesWithoutHistorySQL)
            }
            #expect(mismatches == 0, "users whose stage is not their last transition's")
            let twice = try await queue.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (SELECT 1 FROM journey_transitions GROUP BY user_id, to_state HAVING COUNT(*) > 1)")
            }
            #expect(twice == 0, "forward-only rules: no user entered a stage twice")
            let runs = try await queue.read { db in
                try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM journey_batch_runs GROUP BY status")
                    .map { ($0["status"] as String, $0["n"] as Int) }
            }
            let byStatus = Dictionary(uniqueKeysWithValues: runs)
            #expect(byStatus["running"] == nil && byStatus["failed"] == nil, "\(byStatus)")
            let transitions = try await queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journey_transitions") } ?? 0
            try queue.close()

            let doctor = try await workspace.journey(["doctor", "--db", db])
            #expect(doctor.status == 0, "\(doctor)")
            ledger.scan(doctor.stderr, "doctor")

            // And: a fresh evaluation of every user moves no one (the batch path, then every user one by one)
            let whatIf = try await workspace.journey(["batch", "--dry-run", "--db", db, "--json"])
            #expect(whatIf.status == 0, "\(whatIf)")
            #expect((try whatIf.jsonObject()["transitions"] as? NSNumber)?.intValue == 0, "\(whatIf)")
            service.invalidateAll()
            var checked = 0
            for user in 1...users {
                do {
                    let answer = try await service.journey(of: Int64(user))
                    if answer.pin == nil, answer.evaluation.transitions.isEmpty, answer.storedStage == answer.evaluation.stage.rawValue {
                        checked += 1
                    } else {
                        ledger.fail("user \(user) differs from a fresh evaluation: stored \(answer.storedStage), pending \(answer.evaluation.transitions)")
                    }
                } catch {
                    ledger.fail("final service read \(user): \(error)")
                }
            }
            #expect(checked == users)
            let sampled = await Self.evaluateThroughCLI(
                db: db, users: Array(stride(from: 1, through: users, by: max(1, users / 200))), workspace: workspace, ledger: ledger)
            #expect(sampled == (users + max(1, users / 200) - 1) / max(1, users / 200))

            // And: nothing failed and no "database is locked" surfaced anywhere
            let summary = """
                soak result: \(String(format: "%.0f", Double(ran.components.seconds))) s, \(users) users; \(ledger.summary); \
                batch runs by status \(byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \
                transitions recorded \(transitions); users checked against a fresh evaluation \(checked); \
                "database is locked" seen \(ledger.lockedMessages); errors \(ledger["errors"])
                """
            print(summary)
            try? Data((summary + "\n").utf8).write(to: URL(fileURLWithPath: ProcessInfo.processInfo.environment["JOURNEY_SOAK_REPORT"] ?? "/dev/null"))
            #expect(ledger.failures.isEmpty, "\(ledger.failures.joined(separator: "\n"))")
            #expect(ledger.lockedMessages == 0)
            #expect(
                ledger["reads.service"] > 0 && ledger["reads.cli"] > 0 && ledger["reads.direct"] > 0 && ledger["posts.inserted"] > 0
                    && ledger["follows.inserted"] > 0)
            #expect(ledger["batch.started"] > 0)
        }
    }

    /// One reader: service reads, dry-run evaluations, consistency reads, and now and then a persisting evaluation.
    private static func read(
        db: String, service: JourneyService, users: Int, until deadline: ContinuousClock.Instant, workspace: Workspace, ledger: SoakLedger, seed: Int
    ) async {
        var random = SystemRandomNumberGenerator()
        let queue: DatabaseQueue
        do { queue = try connection(db, readOnly: true) } catch { return ledger.fail("reader \(seed): \(error)") }
        defer { try? queue.close() }
        while ContinuousClock.now < deadline {
            let user = Int.random(in: 1...users, using: &random)
            let roll = Int.random(in: 0..<20, using: &random)
            do {
                if roll < 8 {
                    // The API layer's read: the service's cached evaluation
                    let answer = try await service.journey(of: Int64(user))
                    guard SoakSettings.stages.contains(answer.storedStage) else {
                        ledger.fail("service read \(user): bad stored stage \(answer.storedStage)"); continue
                    }
                    ledger.count("reads.service")
                } else if roll < 12 {
                    // The CLI's read: a dry-run evaluation
                    let result = try await workspace.journey(["evaluate", String(user), "--dry-run", "--json", "--db", db])
                    ledger.scan(result.stderr, "evaluate --dry-run \(user)")
                    guard result.status == 0, result.stderr.isEmpty else { ledger.fail("evaluate --dry-run: \(result)"); continue }
                    let report = try result.jsonObject()
                    guard let stage = report["stored_stage"] as? String, SoakSettings.stages.contains(stage) else {
                        ledger.fail("evaluate --dry-run \(user): bad stored_stage \(result)"); continue
                    }
                    ledger.count("reads.cli")
                } else if roll < 18 {
                    // A read through GRDB: the stage and the last transition, in one snapshot, agree
                    let (stage, last) = try await queue.read { db in
                        (
                            try String.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = ?", arguments: [user]),
                            try String.fetchOne(
                                db, sql: "SELECT to_state FROM journey_transitions WHERE user_id = ? ORDER BY seq DESC LIMIT 1", arguments: [user])
                        )
                    }
                    guard stage == (last ?? "J1_NEW_USER") else {
                        ledger.fail("user \(user): stage \(stage ?? "nil") but last transition \(last ?? "none")"); continue
                    }
                    ledger.count("reads.direct")
                } else if roll == 18 {
                    // The service's evaluate-and-persist, racing the batch's compare-and-set
                    let answer = try await service.evaluateAndPersist(user: Int64(user))
                    ledger.count("evaluations.persisted")
                    ledger.count("evaluations.moves", answer.recorded.count)
                } else {
                    // The CLI's evaluate-and-persist, racing the batch's compare-and-set
                    let result = try await workspace.journey(["evaluate", String(user), "--json", "--db", db])
                    ledger.scan(result.stderr, "evaluate \(user)")
                    guard result.status == 0, result.stderr.isEmpty else { ledger.fail("evaluate: \(result)"); continue }
                    ledger.count("evaluations.persisted")
                    ledger.count("evaluations.moves", (try result.jsonObject()["transitions"] as? [Any])?.count ?? 0)
                }
            } catch {
                ledger.fail("reader \(seed), user \(user): \(error)")
            }
        }
    }

    /// Runs `body` in one IMMEDIATE transaction on the connection's own queue.
    private static func write(_ queue: DatabaseQueue, _ body: @escaping @Sendable (Database) throws -> Int) async throws -> Int {
        try await queue.writeWithoutTransaction { db in
            var changes = 0
            try db.inTransaction(.immediate) {
                changes = try body(db)
                return .commit
            }
            return changes
        }
    }

    /// Inserts and deletes posts (about half each) until the deadline.
    private static func writePosts(db: String, users: Int, until deadline: ContinuousClock.Instant, ledger: SoakLedger) async {
        var random = SystemRandomNumberGenerator()
        let queue: DatabaseQueue
        do { queue = try connection(db) } catch { return ledger.fail("post writer: \(error)") }
        defer { try? queue.close() }
        while ContinuousClock.now < deadline {
            let user = Int.random(in: 1...users, using: &random)
            let insert = Bool.random(using: &random)
            do {
                let changed = try await write(queue) { db in
                    if insert {
                        try db.execute(
                            sql: "INSERT INTO posts(user_id, content, visibility, created_at) VALUES (?, 'soak', 'public', ?)", arguments: [user, Date()])
                    } else {
                        try db.execute(sql: "DELETE FROM posts WHERE id = (SELECT id FROM posts WHERE user_id = ? ORDER BY id DESC LIMIT 1)", arguments: [user])
                    }
                    return db.changesCount
                }
                ledger.count(insert ? "posts.inserted" : "posts.deleted", changed)
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...5, using: &random)))
            } catch is CancellationError {
                return
            } catch {
                ledger.fail("post writer, user \(user): \(error)")
            }
        }
    }

    /// Inserts and deletes follows (about half each) until the deadline; the triggers keep follower_count.
    private static func writeFollows(db: String, users: Int, until deadline: ContinuousClock.Instant, ledger: SoakLedger) async {
        var random = SystemRandomNumberGenerator()
        let queue: DatabaseQueue
        do { queue = try connection(db) } catch { return ledger.fail("follow writer: \(error)") }
        defer { try? queue.close() }
        while ContinuousClock.now < deadline {
            let follower = Int.random(in: 1...users, using: &random)
            let followee = Int.random(in: 1...users, using: &random)
            let insert = Bool.random(using: &random)
            do {
                let changed = try await write(queue) { db in
                    if insert {
                        try db.execute(
                            sql: """
                                INSERT INTO follows(follower_id, following_id, created_at) SELECT ?1, ?2, ?3
                                WHERE ?1 <> ?2 AND NOT EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND following_id = ?2)
                                """, arguments: [follower, followee, Date()])
                    } else {
                        try db.execute(
                            sql: "DELETE FROM follows WHERE id = (SELECT id FROM follows WHERE follower_id = ? ORDER BY id DESC LIMIT 1)", arguments: [follower]
                        )
                    }
                    return db.changesCount
                }
                ledger.count(insert ? "follows.inserted" : "follows.deleted", changed)
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...5, using: &random)))
            } catch is CancellationError {
                return
            } catch {
                ledger.fail("follow writer, \(follower) → \(followee): \(error)")
            }
        }
    }

    /// Starts `journey batch`, kills it with SIGKILL at a random moment (or lets it finish), again and again.
    private static func killBatches(db: String, until deadline: ContinuousClock.Instant, workspace: Workspace, ledger: SoakLedger) async {
        var random = SystemRandomNumberGenerator()
        while ContinuousClock.now < deadline {
            do {
                let batch = try BatchProcess.start(["batch", "--db", db, "--chunk-size", "250"], in: workspace)
                ledger.count("batch.started")
                try? await Task.sleep(for: .milliseconds(Int.random(in: 50...2_500, using: &random)))
                let killed = batch.process.terminate(SIGKILL)
                let (status, normally) = await batch.process.waitForExit()
                let stderr = batch.stderr
                try? FileManager.default.removeItem(at: batch.stderrURL)
                ledger.scan(stderr, "batch")
                if killed && !normally {
                    ledger.count("batch.killed")
                } else if normally && status == 0 && stderr.isEmpty {
                    ledger.count("batch.finished")
                } else {
                    ledger.fail("batch exited \(status) (normally: \(normally)): \(stderr)")
                }
            } catch {
                ledger.fail("batch launcher: \(error)")
            }
        }
    }

    /// Evaluates `users` with `journey evaluate --dry-run --json`, four at a time; returns how many
    /// had their stored stage equal to the evaluated one and no move pending.
    private static func evaluateThroughCLI(db: String, users: [Int], workspace: Workspace, ledger: SoakLedger) async -> Int {
        await withTaskGroup(of: Bool.self) { group in
            var next = 0
            var agreed = 0
            func add() {
                let user = users[next]
                next += 1
                group.addTask {
                    do {
                        let result = try await workspace.journey(["evaluate", String(user), "--dry-run", "--json", "--db", db])
                        ledger.scan(result.stderr, "final evaluate \(user)")
                        let report = try result.jsonObject()
                        let pending = (report["transitions"] as? [Any])?.count ?? -1
                        guard result.status == 0, report["pin"] is NSNull, pending == 0,
                            report["stored_stage"] as? String == report["stage"] as? String
                        else {
                            ledger.fail("user \(user) differs from a fresh evaluation: \(result)")
                            return false
                        }
                        return true
                    } catch {
                        ledger.fail("final evaluate \(user): \(error)")
                        return false
                    }
                }
            }
            for _ in 0..<min(4, users.count) { add() }
            while let ok = await group.next() {
                if ok { agreed += 1 }
                if next < users.count { add() }
            }
            return agreed
        }
    }
}
