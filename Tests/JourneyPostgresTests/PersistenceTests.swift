import Foundation
import JourneyCore
import JourneyStorage
import PostgresNIO
import Testing

@testable import JourneyPostgres

@Suite("PostgreSQL persistence", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct PersistenceTests {
    static let toActive = Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "active")
    static let toPower = Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "power")

    /// A platform database with three users in J1 and one post each.
    static func withUsers(_ body: (ScratchDatabase, PostgresStore) async throws -> Void) async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.withStore { store in
                try await scratch.execute(
                    "INSERT INTO users (id, email, created_at) VALUES (1, 'a', '2025-01-01'), (2, 'b', '2025-01-01'), (3, 'c', '2025-01-01')",
                    "INSERT INTO posts (user_id) VALUES (1), (2), (3)")
                try await body(scratch, store)
            }
        }
    }

    @Test func persistsMovesWithTheirHistoryInOneTransaction() async throws {
        try await Self.withUsers { scratch, store in
            let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
            let result = try await store.persist(
                [PendingMove(userID: 1, expectedStage: snapshot.storedStage, transitions: [Self.toActive, Self.toPower], metrics: snapshot.metrics)],
                rulesVersion: "test-1", source: .cli, now: TestServer.now)
            #expect(result.recorded.map(\.seq) == [1, 2])
            #expect(result.recorded.map(\.to) == ["J2_ACTIVE_USER", "J3_POWER_USER"])
            #expect(result.conflicted.isEmpty && result.pinned.isEmpty)
            #expect(try await store.history(user: 1) == result.recorded)
            #expect(try await store.snapshot(user: 1, now: TestServer.now).storedStage == "J3_POWER_USER")
            #expect(try await store.snapshot(user: 1, now: TestServer.now).metrics.stageEnteredAt == TestServer.now)
            // The metrics are a jsonb object keyed by metric name.
            #expect(try await scratch.value("SELECT (metrics->>'posts')::int FROM journey_transitions WHERE seq = 1", as: Int32.self) == 1)
            #expect(
                try await scratch.value(
                    "SELECT metrics ? 'subscription_tier' AND metrics->'subscription_tier' = 'null'::jsonb FROM journey_transitions WHERE seq = 1",
                    as: Bool.self))
            #expect(try await store.history(user: 2).isEmpty)
            await #expect(throws: StorageError.unknownUser(id: 99)) { try await store.history(user: 99) }
        }
    }

    /// Compare-and-set: a move decided on a stage another writer changed since is refused, and
    /// nothing of it is written.
    @Test func aStaleMoveIsRefused() async throws {
        try await Self.withUsers { scratch, store in
            let stale = try await store.snapshot(user: 1, now: TestServer.now)
            // Another writer moves user 1 first.
            _ = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: stale.metrics)],
                rulesVersion: "test-1", source: .api, now: TestServer.now)
            let result = try await store.persist(
                [
                    PendingMove(userID: 1, expectedStage: stale.storedStage, transitions: [Self.toActive], metrics: stale.metrics),
                    PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: stale.metrics),
                ],
                rulesVersion: "test-1", source: .batch, now: TestServer.now)
            #expect(result.conflicted == [1])
            #expect(result.recorded.map(\.userID) == [2])
            #expect(try await store.history(user: 1).count == 1)
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 2)
            // The same move twice in one call: the second started from a stage the first left.
            let twice = PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: stale.metrics)
            let doubled = try await store.persist([twice, twice], rulesVersion: "test-1", source: .batch, now: TestServer.now)
            #expect(doubled.recorded.map(\.seq) == [1] && doubled.conflicted == [3])
        }
    }

    /// A stored stage of NULL is "never evaluated" (SPEC §8): compared as "".
    @Test func aNullStageIsComparedAsEmpty() async throws {
        try await Self.withUsers { scratch, store in
            try await scratch.execute(
                "ALTER TABLE users ALTER COLUMN customer_journey_state DROP NOT NULL",
                "UPDATE users SET customer_journey_state = NULL WHERE id = 3")
            let snapshot = try await store.snapshot(user: 3, now: TestServer.now)
            #expect(snapshot.storedStage == "")
            let result = try await store.persist(
                [PendingMove(userID: 3, expectedStage: "", transitions: [Self.toActive], metrics: snapshot.metrics)],
                rulesVersion: "test-1", source: .api, now: TestServer.now)
            #expect(result.recorded.count == 1)
        }
    }

    @Test func pinsHoldAUser() async throws {
        try await Self.withUsers { _, store in
            #expect(try await store.pin(user: 1, reason: "VIP", now: TestServer.now) == "J1_NEW_USER")
            let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
            #expect(snapshot.pin == Pin(stage: "J1_NEW_USER", reason: "VIP", createdAt: TestServer.now))
            let result = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: snapshot.metrics)],
                rulesVersion: "test-1", source: .batch, now: TestServer.now)
            #expect(result.pinned == [1] && result.recorded.isEmpty)
            await #expect(throws: StorageError.self) { try await store.pin(user: 1, reason: "", now: TestServer.now) }
            await #expect(throws: StorageError.unknownUser(id: 99)) { try await store.pin(user: 99, reason: "x", now: TestServer.now) }
            #expect(try await store.unpin(user: 1))
            #expect(try await !store.unpin(user: 1))
            #expect(try await store.snapshot(user: 1, now: TestServer.now).pin == nil)
        }
    }

    /// A pin committed while a move waited for the user's row wins: the move sees it and leaves the user alone.
    @Test func aPinCommittedWhileAMoveWaitsHoldsTheUser() async throws {
        try await Self.withUsers { scratch, store in
            let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
            try await scratch.execute(
                "BEGIN", "SELECT 1 FROM users WHERE id = 1 FOR UPDATE",
                "INSERT INTO journey_pins (user_id, stage, reason, created_at) VALUES (1, 'J1_NEW_USER', 'hold', now())")
            let move = Task {
                try await store.persist(
                    [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: snapshot.metrics)],
                    rulesVersion: "test-1", source: .batch, now: TestServer.now)
            }
            try await Task.sleep(for: .milliseconds(300))
            try await scratch.execute("COMMIT")
            let result = try await move.value
            #expect(result.pinned == [1] && result.recorded.isEmpty)
            #expect(try await store.snapshot(user: 1, now: TestServer.now).storedStage == "J1_NEW_USER")
        }
    }

    /// A platform `last_journey_update` of type `timestamp` (without time zone) is written and read as UTC.
    @Test func aTimestampWithoutTimeZoneIsWrittenAsUTC() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            try await scratch.execute(
                "ALTER TABLE users ADD COLUMN last_journey_update timestamp",
                "INSERT INTO users (id, email, created_at, customer_journey_state) VALUES (1, 'a', '2025-01-01 10:00:00', 'J1_NEW_USER')",
                "SET TimeZone = 'America/New_York'")
            try await scratch.withStore { store in
                let before = try await store.snapshot(user: 1, now: TestServer.now)
                #expect(before.metrics.stageEnteredAt == Date(timeIntervalSince1970: 1_735_725_600))  // backfilled from created_at, UTC
                _ = try await store.persist(
                    [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: before.metrics)],
                    rulesVersion: "test-1", source: .cli, now: TestServer.now)
                #expect(try await store.snapshot(user: 1, now: TestServer.now).metrics.stageEnteredAt == TestServer.now)
            }
            #expect(try await scratch.value("SELECT last_journey_update::text FROM users WHERE id = 1", as: String.self) == "2025-06-15 12:00:00")
        }
    }

    /// The database itself refuses a move recorded twice, whoever writes it.
    @Test func uniqueUserSeqRefusesADuplicate() async throws {
        try await Self.withUsers { scratch, store in
            let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
            _ = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: snapshot.metrics)],
                rulesVersion: "test-1", source: .api, now: TestServer.now)
            await #expect {
                try await scratch.execute(
                    """
                    INSERT INTO journey_transitions (user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                    VALUES (1, 1, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'again', 'test-1', '{}', 'api', now())
                    """)
            } throws: { error in
                PostgresStoreError.sqlState(of: error) == "23505"
            }
            // The CHECKs too: a move to the same stage, a seq of 0, an unknown source, metrics that are not an object.
            for values in [
                "(1, 2, 'J2_ACTIVE_USER', 'J2_ACTIVE_USER', 'r', 'v', '{}', 'api', now())",
                "(1, 0, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'r', 'v', '{}', 'api', now())",
                "(1, 2, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'r', 'v', '{}', 'cron', now())",
                "(1, 2, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'r', 'v', '[1]', 'api', now())",
            ] {
                await #expect {
                    try await scratch.execute(
                        "INSERT INTO journey_transitions (user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at) VALUES \(values)"
                    )
                } throws: { error in
                    PostgresStoreError.sqlState(of: error) == "23514"
                }
            }
        }
    }

    /// Two writers persisting the same user at once: one wins, the other is refused by
    /// compare-and-set; exactly one transition row exists.
    @Test func concurrentWritersRecordAMoveOnce() async throws {
        try await Self.withUsers { scratch, store in
            let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
            let move = PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: snapshot.metrics)
            let results = try await withThrowingTaskGroup(of: PersistResult.self) { group in
                for _ in 0..<8 { group.addTask { try await store.persist([move], rulesVersion: "test-1", source: .api, now: TestServer.now) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.map(\.recorded.count).reduce(0, +) == 1)
            #expect(results.map(\.conflicted.count).reduce(0, +) == 7)
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 1)
        }
    }
}
