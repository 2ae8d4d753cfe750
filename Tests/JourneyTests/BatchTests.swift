import Foundation
import GRDB
import Synchronization
import Testing
@testable import Journey
import JourneyCore
import JourneyFixtures
import JourneySQLite

/// Every user's stage equals the `to_state` of their last transition, or J1 with none.
func stagesMatchHistory(_ writer: any DatabaseWriter) throws -> [Int64] {
    try writer.read { db in
        try Int64.fetchAll(db, sql: """
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
            try Row.fetchAll(db, sql: """
                SELECT u.id, u.customer_journey_state,
                       (SELECT group_concat(from_state || '>' || to_state, ',') FROM
                          (SELECT from_state, to_state FROM journey_transitions WHERE user_id = u.id ORDER BY seq)) AS moves
                FROM users u ORDER BY u.id
                """)
        }
        let batched = try batchService.database.writer.read(read)
        let looped = try loopService.database.writer.read(read)
        #expect(batched.count == 3_000)
        #expect(batched == looped)
        #expect(summary.usersSeen == 3_000)
        #expect(summary.transitions > 100, "the generated data should move many users")
        #expect(summary.edges.keys.allSatisfy { !$0.hasPrefix("J1_NEW_USER->J3") }, "no J1→J3 skip")
        #expect(try stagesMatchHistory(batchService.database.writer).isEmpty)

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
        let dry = try JourneyService(database: readOnly, rules: try Rules.bundledDefault(), clock: ManualClock(testNow))
        let preview = try await dry.runBatch(BatchOptions(dryRun: true))
        #expect(try Data(contentsOf: URL(fileURLWithPath: data.path)) == before)
        #expect(preview.runID == nil)

        // A stricter rule set (J2 needs 5 posts) would move fewer users
        let stricter = try RuleSetLoader.load(yaml: """
            version: strict
            stages:
              - {id: J1_NEW_USER, title: New}
              - id: J2_ACTIVE_USER
                title: Active
                criteria: [onboarding_complete, posts >= 5, connections >= 1, days_since_signup >= 7]
            """, source: "strict.yaml")
        let whatIf = try await JourneyService(database: readOnly, rules: stricter, clock: ManualClock(testNow)).runBatch(BatchOptions(dryRun: true))
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
        let service = try database.service()
        let summary = try await service.runBatch()
        #expect(summary.pinned == 1)
        #expect(summary.unknownStages == ["J9_LEGACY": 1])
        #expect(summary.transitions == 3)
        let stages = try await database.database.writer.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, customer_journey_state FROM users").map { ($0["id"] as Int64, $0["customer_journey_state"] as String) })
        }
        #expect(stages[2] == "J1_NEW_USER")
        #expect(stages[3] == "J9_LEGACY")
        #expect(stages[1] == "J2_ACTIVE_USER")
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
                } catch where Task.isCancelled {
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
        #expect(try stagesMatchHistory(service.database.writer).isEmpty)
        let drift = try await service.database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE follower_count <> (SELECT COUNT(*) FROM follows WHERE following_id = users.id)")
        }
        #expect(drift == 0)
    }
}
