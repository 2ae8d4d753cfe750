import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneySQLite
import JourneyStorage
import Synchronization
import Testing

@testable import Journey

/// Every user's stage equals the `to_state` of their last transition, or J1 with none.
func stagesMatchHistory(_ writer: any DatabaseWriter) throws -> [Int64] {
    try writer.read { db in
        try Int64.fetchAll(
            db,
            sql: """
                SELECT u.id FROM users u
                LEFT JOIN journey_transitions t ON t.user_id = u.id
                    AND t.seq = (SELECT MAX(seq) FROM journey_transitions WHERE user_id = u.id)
                WHERE u.customer_journey_state IS NOT COALESCE(t.to_state, 'J1_NEW_USER')
                """)
    }
}

@Suite("The nightly batch")
struct BatchTests {
    /// A generated, migrated platform database in a temporary directory.
    struct Generated {
        let directory: URL
        let path: String

        init(users: Int, seed: UInt64) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("journey-batch-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent("b.sqlite").path
            try PlatformDataGenerator(users: users, seed: seed, now: testNow).write(to: path)
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test("The batch reaches the stage the one-user path reaches, for every user; a second run moves no one")
    func equalsOneUserPath() async throws {
        // Given two copies of one generated database of 3,000 users
        let data = try Generated(users: 3_000, seed: 21)
        defer { data.remove() }
        let copy = data.directory.appendingPathComponent("copy.sqlite").path
        try FileManager.default.copyItem(atPath: data.path, toPath: copy)
        let batchService = try await JourneyService(path: data.path, options: JourneyOptions(source: .batch), clock: ManualClock(testNow))
        let loopService = try await JourneyService(path: copy, clock: ManualClock(testNow))

        // When one runs the batch in small chunks and the other evaluates each user in turn
        let summary = try await batchService.runBatch(BatchOptions(chunkSize: 257))
        for user in Int64(1)...3_000 { _ = try await loopService.evaluateAndPersist(user: user) }

        // Then every user has the same stage and the same moves
        let read: @Sendable (Database) throws -> [Row] = { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT u.id, u.customer_journey_state,
                           (SELECT group_concat(from_state || '>' || to_state, ',') FROM
                              (SELECT from_state, to_state FROM journey_transitions WHERE user_id = u.id ORDER BY seq)) AS moves
                    FROM users u ORDER BY u.id
                    """)
        }
        let batched = try batchService.sqlite.writer.read(read)
        let looped = try loopService.sqlite.writer.read(read)
        #expect(batched.count == 3_000)
        #expect(batched == looped)
        #expect(summary.usersSeen == 3_000)
        #expect(summary.transitions > 100, "the generated data should move many users")
        #expect(summary.edges.keys.allSatisfy { !$0.hasPrefix("J1_NEW_USER->J3") }, "no J1→J3 skip")
        #expect(try stagesMatchHistory(batchService.sqlite.writer).isEmpty)

        // And a second run moves no one
        let again = try await batchService.runBatch(BatchOptions(chunkSize: 1_000))
        #expect(again.transitions == 0)
        #expect(again.usersSeen == 3_000)
    }

    @Test("A dry run writes nothing and counts the same moves; other rules give the what-if")
    func dryRun() async throws {
        let data = try Generated(users: 800, seed: 4)
        defer { data.remove() }
        _ = try SQLiteStore.open(path: data.path, mode: .migrate, now: testNow)
        let before = try Data(contentsOf: URL(fileURLWithPath: data.path))
        let readOnly = try SQLiteStore.open(path: data.path, mode: .readOnly)
        let dry = try await JourneyService(store: readOnly, rules: try Rules.bundledDefault(), clock: ManualClock(testNow))
        let preview = try await dry.runBatch(BatchOptions(dryRun: true))
        #expect(try Data(contentsOf: URL(fileURLWithPath: data.path)) == before)
        #expect(preview.runID == nil)

        // A stricter rule set (J2 needs 5 posts) would move fewer users
        let stricter = try RuleSetLoader.load(
            yaml: """
                version: strict
                stages:
                  - {id: J1_NEW_USER, title: New}
                  - id: J2_ACTIVE_USER
                    title: Active
                    criteria: [onboarding_complete, posts >= 5, connections >= 1, days_since_signup >= 7]
                """, source: "strict.yaml")
        let whatIf = try await JourneyService(store: readOnly, rules: stricter, clock: ManualClock(testNow)).runBatch(BatchOptions(dryRun: true))
        #expect(whatIf.edges["J1_NEW_USER->J2_ACTIVE_USER", default: 0] < preview.edges["J1_NEW_USER->J2_ACTIVE_USER", default: 0])

        let real = try await JourneyService(path: data.path, clock: ManualClock(testNow)).runBatch()
        #expect(real.edges == preview.edges)
    }

    @Test("Pinned users keep their stage and unknown stages are counted, not touched")
    func pinsAndUnknownStages() async throws {
        let database = try TemporaryDatabase(users: 5)
        for user in Int64(1)...5 { try makeActive(user, followedBy: user == 1 ? 2 : 1, in: database) }
        _ = try await database.database.pin(user: 2, reason: "held by support", now: testNow)
        try database.execute("UPDATE users SET customer_journey_state = 'J9_LEGACY' WHERE id = 3")
        let service = try await database.service()
        let summary = try await service.runBatch()
        #expect(summary.pinned == 1)
        #expect(summary.unknownStages == ["J9_LEGACY": 1])
        #expect(summary.transitions == 3)
        let stages = try await database.database.writer.read { db in
            try Dictionary(
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, customer_journey_state FROM users").map {
                    ($0["id"] as Int64, $0["customer_journey_state"] as String)
                })
        }
        #expect(stages[2] == "J1_NEW_USER")
        #expect(stages[3] == "J9_LEGACY")
        #expect(stages[1] == "J2_ACTIVE_USER")
    }

    /// The batch keeps compare-and-set per chunk (issue 14): a user moved or pinned by another
    /// process between the chunk's read and its commit is not written over.
    @Test("Users another process moves or pins between a chunk's read and its commit are conflicted or pinned, re-read, and never moved twice")
    func compareAndSetPerChunk() async throws {
        // Given twelve users who fit J2, and another process's connection
        let database = try TemporaryDatabase(users: 12)
        for user in Int64(1)...12 { try makeActive(user, followedBy: user == 1 ? 2 : 1, in: database) }
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        // and, before each chunk commits, that process moves every third user of the chunk to J2 and pins user 5
        let store = InterleavingStore(base: database.database) { moves in
            for move in moves where move.userID % 3 == 0 {
                _ = try await other.persist([pendingMove(move.userID, "J1_NEW_USER", "J2_ACTIVE_USER")], rulesVersion: "elsewhere", source: .cli, now: testNow)
            }
            if moves.contains(where: { $0.userID == 5 }) { _ = try await other.pin(user: 5, reason: "support ticket 9", now: testNow) }
        }
        let service = try await JourneyService(
            store: store, rules: try Rules.bundledDefault(), options: JourneyOptions(source: .batch), clock: ManualClock(testNow))

        // When the batch runs in chunks of four
        let summary = try await service.runBatch(BatchOptions(chunkSize: 4))

        // Then the four users moved elsewhere were conflicted, re-read and re-evaluated from J2 (nothing more to do),
        // the pinned one was left alone, and the seven others moved once
        #expect(summary.conflicts == 4)
        #expect(summary.pinned == 1)
        #expect(summary.edges == ["J1_NEW_USER->J2_ACTIVE_USER": 7])
        #expect(summary.usersSeen == 12 && summary.failedUsers.isEmpty)
        for user in Int64(1)...12 {
            let history = try await database.database.history(user: user)
            if user % 3 == 0 {
                #expect(history.map(\.rulesVersion) == ["elsewhere"], "user \(user): \(history)")
            } else if user == 5 {
                #expect(history.isEmpty)
            } else {
                #expect(history.map(\.source) == [.batch] && history.map(\.to) == [StageID("J2_ACTIVE_USER")], "user \(user): \(history)")
            }
        }
        #expect(try stagesMatchHistory(database.database.writer).isEmpty)
        let run = try #require(try await database.database.batchRuns(limit: 1).first)
        #expect(run.status == "finished" && run.transitions == 7 && run.usersSeen == 12)

        // And a second run finds nothing to do
        let again = try await service.runBatch(BatchOptions(chunkSize: 4))
        #expect(again.transitions == 0 && again.conflicts == 0 && again.pinned == 1)
    }

    @Test("The batch runs while another connection writes: no lock error, stages match history")
    func besideLiveWrites() async throws {
        let data = try Generated(users: 2_000, seed: 9)
        defer { data.remove() }
        let service = try await JourneyService(path: data.path, options: JourneyOptions(source: .batch), clock: ManualClock(testNow))
        // A second pool on the file, as the API process would have
        let api = try SQLiteStore.open(path: data.path, mode: .requireMigrated)
        let written = Atomic<Int>(0)
        let writes = Task.detached {
            var random = SplitMix64(seed: 5)
            while !Task.isCancelled {
                let user = 1 + random.below(2_000), other = 1 + random.below(2_000)
                // Awaited: a blocking write would hold a cooperative thread through every busy wait,
                // and starve the tests running beside this one. Cancelling the task ends the loop.
                do {
                    try await api.writer.write { db in
                        try db.execute(sql: "INSERT INTO posts(user_id, content, created_at) VALUES (?, 'live', ?)", arguments: [user, testNow])
                        try db.execute(sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)", arguments: [user, other, testNow])
                    }
                } catch  where Task.isCancelled {
                    return
                }
                written.add(1, ordering: .relaxed)
            }
        }
        // The writer is under way before the batch starts, and keeps going through three runs
        while written.load(ordering: .relaxed) < 20 { try await Task.sleep(for: .milliseconds(5)) }
        for _ in 0..<3 { _ = try await service.runBatch(BatchOptions(chunkSize: 100)) }
        let duringBatches = written.load(ordering: .relaxed)
        writes.cancel()
        try await writes.value
        #expect(duringBatches > 20)
        #expect(try stagesMatchHistory(service.sqlite.writer).isEmpty)
        let drift = try await service.sqlite.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE follower_count <> (SELECT COUNT(*) FROM follows WHERE following_id = users.id)")
        }
        #expect(drift == 0)
    }
}
