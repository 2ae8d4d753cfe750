import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneySQLite

/// `persist` writes a batch's moves set-based, up to 256 users' rows a statement: every row must
/// land where one-user-at-a-time writing would have put it, whatever the mix of moves.
@Suite("Set-based persist")
struct SetWritesTests {
    @Test(
        "700 users in one persist (blocks of 256, 64, 16, 4): each move's rows continue its history, returned ids are the stored rows, stale and pinned users are left alone"
    )
    func manyUsersInBlocks() async throws {
        try await withTemporaryDirectory { directory in
            // Given 700 more users in J1 (ids 1000…1699); 3 in 10 with two rows of history already,
            // every 50th pinned, every 70th moved to J2 by someone else
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let users = Array(Int64(1_000)...1_699)
            let withHistory = Set(users.filter { $0 % 10 < 3 })
            let pinned = users.filter { $0 % 50 == 7 }
            let stale = users.filter { $0 % 70 == 3 }
            try await database.writer.write { db in
                try db.execute(
                    sql: """
                        WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 1699)
                        INSERT INTO users(id, email, created_at) SELECT i, 'user' || i || '@example.com', '2025-01-01 00:00:00' FROM n
                        """)
                for user in withHistory {
                    for (seq, from, to) in [(1, "J1_NEW_USER", "J2_ACTIVE_USER"), (2, "J2_ACTIVE_USER", "J1_NEW_USER")] {
                        try db.execute(
                            sql: """
                                INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                                VALUES (?, ?, ?, ?, 'earlier', 'v0', '{}', 'api', '2025-02-01 00:00:00')
                                """, arguments: [user, seq, from, to])
                    }
                }
                for user in stale {
                    try db.execute(sql: "UPDATE users SET customer_journey_state = 'J2_ACTIVE_USER' WHERE id = ?", arguments: [user])
                }
            }
            for user in pinned { _ = try await database.pin(user: user, reason: "held", now: Fixture.now) }

            // When every user moves J1 → J2, every third on to J3, in one persist (1,166 rows)
            let metrics = try await database.snapshot(user: 1_000, now: Fixture.now).metrics
            let moves = users.map { user in
                PendingMove(
                    userID: user, expectedStage: "J1_NEW_USER",
                    transitions: user % 3 == 0 ? [move(.j1, .j2), move(.j2, .j3)] : [move(.j1, .j2)], metrics: metrics)
            }
            let result = try await database.persist(moves, rulesVersion: "v1", source: .batch, now: Fixture.now)

            // Then the stale and the pinned are reported in order and untouched
            #expect(result.conflicted == stale)
            #expect(result.pinned == pinned.filter { !stale.contains($0) })
            #expect(result.refused.isEmpty)
            let moved = users.filter { !stale.contains($0) && !pinned.contains($0) }
            #expect(result.recorded.map(\.userID) == moved.flatMap { $0 % 3 == 0 ? [$0, $0] : [$0] })

            // and every recorded row is the stored row of its id, numbered after the user's history
            let stored = try database.writer.readNow { db in
                try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT * FROM journey_transitions WHERE rules_version = 'v1'").map {
                        ($0["id"] as Int64, $0)
                    })
            }
            #expect(stored.count == result.recorded.count)
            for record in result.recorded {
                let row = try #require(stored[record.id], "no row \(record.id) for user \(record.userID)")
                #expect(row["user_id"] as Int64 == record.userID)
                #expect(row["seq"] as Int == record.seq)
                #expect(row["from_state"] as String == record.from.rawValue)
                #expect(row["to_state"] as String == record.to.rawValue)
                #expect(row["metrics"] as String == metrics.json(now: Fixture.now))
                #expect(row["created_at"] as Date == Fixture.now)
                let first = withHistory.contains(record.userID) ? 3 : 1
                #expect(record.seq == first + (record.from == .j1 ? 0 : 1))
            }

            // and each moved user's row holds the last stage of their moves, as of now
            let stages = try database.writer.readNow { db in
                try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, customer_journey_state, last_journey_update FROM users WHERE id >= 1000").map {
                        ($0["id"] as Int64, ($0["customer_journey_state"] as String, $0["last_journey_update"] as Date?))
                    })
            }
            for user in users {
                let (stage, updated) = try #require(stages[user])
                if stale.contains(user) {
                    #expect(stage == "J2_ACTIVE_USER" && updated != Fixture.now)
                } else if pinned.contains(user) {
                    #expect(stage == "J1_NEW_USER" && updated != Fixture.now)
                } else {
                    #expect(stage == (user % 3 == 0 ? "J3_POWER_USER" : "J2_ACTIVE_USER") && updated == Fixture.now, "user \(user)")
                }
            }
        }
    }

    @Test("A persist that names one user twice writes in order: the second move's compare-and-set sees the first's stage")
    func userTwice() async throws {
        try await withTemporaryDirectory { directory in
            // Given bob and carol in J1
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When bob's move J1 → J2 comes twice, then J2 → J3, beside carol's
            let result = try await database.persist(
                [
                    PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics()),
                    PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics()),
                    PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics()),
                    PendingMove(userID: 2, expectedStage: "J2_ACTIVE_USER", transitions: [move(.j2, .j3)], metrics: UserMetrics()),
                ], rulesVersion: "v", source: .batch, now: Fixture.now)

            // Then the repeat is a conflict, and the third move follows the first
            #expect(result.conflicted == [2])
            #expect(result.recorded.map { [$0.userID, Int64($0.seq)] } == [[2, 1], [3, 1], [2, 2]])
            #expect(try await database.history(user: 2).map(\.to) == [.j2, .j3])
            #expect(try await database.snapshot(user: 2, now: Fixture.now).storedStage == "J3_POWER_USER")
        }
    }

    @Test("A move rendered with its metrics' JSON stores that JSON only when persisted at the instant it was rendered for")
    func renderedMetrics() async throws {
        try await withTemporaryDirectory { directory in
            // Given alice's metrics, and two moves rendered for now: bob's persisted now, carol's a day later
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let metrics = try await database.snapshot(user: 1, now: Fixture.now).metrics
            let later = Fixture.now.addingTimeInterval(86_400)
            func rendered(_ user: Int64) -> PendingMove {
                PendingMove(userID: user, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: metrics, renderedAt: Fixture.now)
            }

            // When each is persisted
            _ = try await database.persist([rendered(2)], rulesVersion: "v", source: .batch, now: Fixture.now)
            _ = try await database.persist([rendered(3)], rulesVersion: "v", source: .batch, now: later)

            // Then each row holds the metrics as of its own write (days_in_stage and days_since_signup move on)
            #expect(metrics.json(now: Fixture.now) != metrics.json(now: later))
            #expect(try await database.history(user: 2).map(\.metrics) == [metrics.json(now: Fixture.now)])
            #expect(try await database.history(user: 3).map(\.metrics) == [metrics.json(now: later)])
        }
    }
}
