import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §3 "Persisting a stage": the new stage, `last_journey_update` and one history row per
/// move, in one transaction, compare-and-set, never over an operator's pin.
@Suite("Persisting moves, history and pins")
struct PersistenceTests {
    @Test("A 2-hop evaluation writes rows seq 1 and 2 and the new stage, with the metrics as JSON")
    func twoHopMove() async throws {
        try await withTemporaryDirectory { directory in
            // Given alice in J1 since her signup
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let snapshot = try await database.snapshot(user: 1, now: Fixture.now)
            let pending = PendingMove(
                userID: 1, expectedStage: snapshot.storedStage,
                transitions: [move(.j1, .j2, "posted and followed"), move(.j2, .j3, "organizes events")],
                metrics: snapshot.metrics)

            // When the evaluation's two moves are persisted
            let result = try await database.persist([pending], rulesVersion: "mundo-tango@3", source: .cli, now: Fixture.now)

            // Then two rows, seq 1 and 2, in order, with what was decided
            #expect(result.conflicted.isEmpty && result.pinned.isEmpty)
            #expect(result.recorded.map(\.seq) == [1, 2])
            let rows = try database.writer.readNow { db in
                try Row.fetchAll(db, sql: "SELECT * FROM journey_transitions WHERE user_id = 1 ORDER BY seq")
            }
            #expect(rows.count == 2)
            #expect(rows.map { $0["seq"] as Int } == [1, 2])
            #expect(rows.map { $0["from_state"] as String } == ["J1_NEW_USER", "J2_ACTIVE_USER"])
            #expect(rows.map { $0["to_state"] as String } == ["J2_ACTIVE_USER", "J3_POWER_USER"])
            #expect(rows.map { $0["reason"] as String } == ["posted and followed", "organizes events"])
            #expect(rows.allSatisfy { $0["rules_version"] == "mundo-tango@3" && $0["source"] == "cli" })
            #expect(rows.allSatisfy { $0["created_at"] as Date == Fixture.now })

            // and the user's row is updated
            let user = try database.writer.readNow { db in
                try #require(try Row.fetchOne(db, sql: "SELECT customer_journey_state, last_journey_update FROM users WHERE id = 1"))
            }
            #expect(user["customer_journey_state"] == "J3_POWER_USER")
            #expect(user["last_journey_update"] as Date == Fixture.now)
            let after = try await database.snapshot(user: 1, now: Fixture.now)
            #expect(after.storedStage == "J3_POWER_USER")
            #expect(after.metrics.value(of: .daysInStage, now: Fixture.now) == .integer(0))

            // and the metrics snapshot is a JSON object keyed by every metric name
            for row in rows {
                let json = try #require(try JSONSerialization.jsonObject(with: Data((row["metrics"] as String).utf8)) as? [String: Any])
                #expect(Set(json.keys) == Set(Metric.allCases.map(\.rawValue)))
                #expect(json["posts"] as? Int == 6)
                #expect(json["posts_last_30_days"] as? Int == 3)
                #expect(json["followers"] as? Int == 3)
                #expect(json["connections"] as? Int == 5)
                #expect(json["days_since_signup"] as? Int == 164)
                #expect(json["subscription_tier"] as? String == "basic")
                #expect(json["onboarding_complete"] as? Bool == true)
            }
            try database.writer.readNow { db throws in
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journey_transitions WHERE json_valid(metrics) AND json_type(metrics) = 'object'") == 2)
            }
        }
    }

    @Test("Missing metrics are JSON null in the stored snapshot")
    func missingMetricsAreNull() async throws {
        try await withTemporaryDirectory { directory in
            // Given user 4, who has NULL everywhere
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let snapshot = try await database.snapshot(user: 4, now: Fixture.now)

            // When a move is persisted for them
            _ = try await database.persist(
                [PendingMove(userID: 4, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: snapshot.metrics)],
                rulesVersion: "v", source: .api, now: Fixture.now)

            // Then the missing metrics are null, the present ones numbers
            let text = try #require(try await database.history(user: 4).first?.metrics)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(Set(json.keys) == Set(Metric.allCases.map(\.rawValue)))
            for name in ["days_since_signup", "onboarding_complete", "subscription_tier", "role"] {
                #expect(json[name] is NSNull, "\(name) = \(String(describing: json[name]))")
            }
            #expect(json["following"] as? Int == 1)
            #expect(json["days_in_stage"] as? Int == 10)
        }
    }

    @Test("A user's moves and stage are written whole or not at all: a refused second row leaves nothing of that user, and the others are written")
    func movesAreAtomic() async throws {
        try await withTemporaryDirectory { directory in
            // Given bob in J1, and a move whose second row breaks a CHECK (to_state <> from_state)
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let before = try database.writer.readNow { try Row.fetchOne($0, sql: "SELECT * FROM users WHERE id = 2") }
            let broken = PendingMove(
                userID: 2, expectedStage: "J1_NEW_USER",
                transitions: [move(.j1, .j2), move(.j2, .j2)], metrics: UserMetrics())

            // When it is persisted
            let alone = try await database.persist([broken], rulesVersion: "v", source: .api, now: Fixture.now)

            // Then it is refused with SQLite's reason, and neither the first row nor the stage was written
            #expect(alone.refused[2]?.contains("CHECK constraint failed") == true, "\(alone)")
            #expect(alone.recorded.isEmpty)
            #expect(try await database.history(user: 2).isEmpty)
            #expect(try database.writer.readNow { try Row.fetchOne($0, sql: "SELECT * FROM users WHERE id = 2") } == before)

            // And in a batch, the broken user does not stop the others: their moves are written
            let good = PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics())
            let batch = try await database.persist([broken, good], rulesVersion: "v", source: .batch, now: Fixture.now)
            #expect(Array(batch.refused.keys) == [2], "\(batch.refused)")
            #expect(batch.recorded.map(\.userID) == [3])
            #expect(try await database.history(user: 2).isEmpty)
            #expect(try await database.history(user: 3).count == 1)
            #expect(try await database.snapshot(user: 3, now: Fixture.now).storedStage == "J2_ACTIVE_USER")
        }
    }

    @Test("A stale expected stage is a conflict and writes nothing")
    func staleExpectedStage() async throws {
        try await withTemporaryDirectory { directory in
            // Given carol was moved to J2 by someone else
            let database = try Fixture.smallMigratedDatabase(in: directory)
            _ = try await database.persist(
                [PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics())],
                rulesVersion: "v", source: .api, now: Fixture.now)

            // When a move decided on the old stage is persisted, together with a valid one for bob
            let later = Fixture.now.addingTimeInterval(60)
            let result = try await database.persist(
                [
                    PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2, "stale")], metrics: UserMetrics()),
                    PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics()),
                    PendingMove(userID: 5, expectedStage: "J1_NEW_USER", transitions: [], metrics: UserMetrics()),
                ], rulesVersion: "v", source: .batch, now: later)

            // Then carol is reported as conflicted and untouched; bob moved; erin (no move) is neither
            #expect(result.conflicted == [3])
            #expect(result.recorded.map(\.userID) == [2])
            #expect(try await database.history(user: 3).map(\.reason) == ["criteria met"])
            #expect(try database.writer.readNow { try Date.fetchOne($0, sql: "SELECT last_journey_update FROM users WHERE id = 3") } == Fixture.now)
            #expect(try await database.history(user: 5).isEmpty)
            #expect(try await database.snapshot(user: 5, now: later).storedStage == "J1_NEW_USER")
        }
    }

    @Test("A pinned user is reported as pinned and left alone until unpinned")
    func pinnedUserIsUntouched() async throws {
        try await withTemporaryDirectory { directory in
            // Given an operator pinned bob in J1
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let pinnedAt = Fixture.utc("2025-06-14 09:30:00")
            #expect(try await database.pin(user: 2, reason: "ambassador, keep in J1", now: pinnedAt) == "J1_NEW_USER")
            let snapshot = try await database.snapshot(user: 2, now: Fixture.now)
            #expect(snapshot.pin == Pin(stage: "J1_NEW_USER", reason: "ambassador, keep in J1", createdAt: pinnedAt))
            let before = try database.writer.readNow { try Row.fetchOne($0, sql: "SELECT * FROM users WHERE id = 2") }

            // When a move for bob is persisted
            let pending = PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: snapshot.metrics)
            let result = try await database.persist([pending], rulesVersion: "v", source: .batch, now: Fixture.now)

            // Then bob is reported as pinned, with nothing written
            #expect(result.pinned == [2])
            #expect(result.recorded.isEmpty && result.conflicted.isEmpty)
            #expect(try await database.history(user: 2).isEmpty)
            #expect(try database.writer.readNow { try Row.fetchOne($0, sql: "SELECT * FROM users WHERE id = 2") } == before)

            // When the pin is released (twice)
            #expect(try await database.unpin(user: 2) == true)
            #expect(try await database.unpin(user: 2) == false)
            #expect(try await database.snapshot(user: 2, now: Fixture.now).pin == nil)

            // Then the same move goes through
            let retried = try await database.persist([pending], rulesVersion: "v", source: .batch, now: Fixture.now)
            #expect(retried.recorded.map(\.seq) == [1])
        }
    }

    @Test("History is ordered by seq, and the database refuses a seq recorded twice")
    func historyOrderAndUniqueSeq() async throws {
        try await withTemporaryDirectory { directory in
            // Given rows written out of seq order (ids ascending, seq 3, 1, 2) and another user's row in between
            let database = try Fixture.smallMigratedDatabase(in: directory)
            try database.writer.writeNow { db in
                for (user, seq, from, to) in [
                    (1, 3, "J3_POWER_USER", "J2_ACTIVE_USER"), (2, 1, "J1_NEW_USER", "J2_ACTIVE_USER"),
                    (1, 1, "J1_NEW_USER", "J2_ACTIVE_USER"), (1, 2, "J2_ACTIVE_USER", "J3_POWER_USER"),
                ] {
                    try db.execute(
                        sql: """
                            INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                            VALUES (?, ?, ?, ?, 'r', 'v', '{}', 'batch', ?)
                            """, arguments: [user, seq, from, to, Fixture.now.addingTimeInterval(Double(seq))])
                }
            }

            // When alice's history is read
            let history = try await database.history(user: 1)

            // Then it is in seq order, hers only
            #expect(history.map(\.seq) == [1, 2, 3])
            #expect(history.map(\.to) == [.j2, .j3, .j2])
            #expect(history.allSatisfy { $0.userID == 1 && $0.source == .batch })
            // and a user without moves has an empty history
            #expect(try await database.history(user: 5).isEmpty)

            // And a second row with the same (user, seq) is refused by SQLite itself
            #expect(throws: DatabaseError.self) {
                try database.writer.writeNow { db in
                    try db.execute(
                        sql: """
                            INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                            VALUES (1, 2, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'again', 'v', '{}', 'api', '2025-06-15 12:00:00')
                            """)
                }
            }
            // and so is metrics that are not JSON, or an unknown source
            #expect(throws: DatabaseError.self) {
                try database.writer.writeNow { db in
                    try db.execute(
                        sql: """
                            INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                            VALUES (1, 4, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'r', 'v', 'not json', 'api', '2025-06-15 12:00:00')
                            """)
                }
            }
            #expect(throws: DatabaseError.self) {
                try database.writer.writeNow { db in
                    try db.execute(
                        sql: """
                            INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                            VALUES (1, 4, 'J1_NEW_USER', 'J2_ACTIVE_USER', 'r', 'v', '{}', 'cron', '2025-06-15 12:00:00')
                            """)
                }
            }
            // And the next persisted move continues after the highest seq
            let next = try await database.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics())],
                rulesVersion: "v", source: .api, now: Fixture.now)
            #expect(next.recorded.map(\.seq) == [4])
        }
    }

    @Test("An unknown user is StorageError.unknownUser for every read and pin")
    func unknownUser() async throws {
        try await withTemporaryDirectory { directory in
            // Given the small database, which has no user 404
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When each entry point is asked about user 404
            // Then each throws unknownUser(404)
            await expectUnknownUser(404) { () async throws(StorageError) in _ = try await database.snapshot(user: 404, now: Fixture.now) }
            await expectUnknownUser(404) { () async throws(StorageError) in _ = try await database.history(user: 404) }
            await expectUnknownUser(404) { () async throws(StorageError) in _ = try await database.pin(user: 404, reason: "r", now: Fixture.now) }
            await expectUnknownUser(404) { () async throws(StorageError) in _ = try await database.unpin(user: 404) }
            // and a move for them is a conflict (re-reading reports the unknown user), writing nothing
            let result = try await database.persist(
                [PendingMove(userID: 404, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics())],
                rulesVersion: "v", source: .api, now: Fixture.now)
            #expect(result.conflicted == [404] && result.recorded.isEmpty)
            #expect(try database.writer.readNow { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journey_transitions") } == 0)
            #expect(try database.writer.readNow { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journey_pins") } == 0)
        }
    }

    @Test("A database opened read-only refuses to persist and writes nothing")
    func readOnlyRefusesWrites() async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated database, opened again read-only
            let migrated = try Fixture.smallMigratedDatabase(in: directory)
            let readOnly = try SQLiteStore.open(path: migrated.path, mode: .readOnly)
            #expect(readOnly.isReadOnly)

            // When a move is persisted through it
            await #expect(throws: StorageError.readOnly(location: migrated.path)) {
                try await readOnly.persist(
                    [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: UserMetrics())],
                    rulesVersion: "v", source: .cli, now: Fixture.now)
            }

            // Then nothing was written
            #expect(try await migrated.history(user: 1).isEmpty)
            #expect(try await migrated.snapshot(user: 1, now: Fixture.now).storedStage == "J1_NEW_USER")
            // while reads work
            #expect(try await readOnly.snapshot(user: 1, now: Fixture.now).metrics.posts == 6)
        }
    }
}

private func expectUnknownUser(_ id: Int64, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws(StorageError) -> Void) async {
    do throws(StorageError) {
        try await body()
        Issue.record("expected unknownUser(\(id))", sourceLocation: sourceLocation)
    } catch {
        guard case .unknownUser(let got) = error else {
            Issue.record("expected unknownUser(\(id)), got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(got == id, sourceLocation: sourceLocation)
    }
}

@Suite("The metrics snapshot of a transition")
struct MetricsJSONTests {
    @Test("It is a JSON object of every metric, and text with quotes, backslashes and control characters survives")
    func roundTrip() async throws {
        // Given metrics whose texts hold everything JSON must escape, and NULLs
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let hostile = "a\"b\\c\nd\re\tf\u{01}g\u{1F}h é 🎉"
        let metrics = UserMetrics(
            posts: 7, followers: 2, following: 3, onboardingComplete: true,
            subscriptionTier: hostile, role: nil,
            signedUpAt: now.addingTimeInterval(-10 * 86_400), stageEnteredAt: nil)

        // When it is written and parsed back
        let text = metrics.json(now: now)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])

        // Then every metric is there with its value, in sorted order
        #expect(Set(object.keys) == Set(Metric.allCases.map(\.rawValue)))
        #expect(object["subscription_tier"] as? String == hostile)
        #expect((object["posts"] as? NSNumber)?.intValue == 7)
        #expect((object["connections"] as? NSNumber)?.intValue == 5)
        #expect((object["days_since_signup"] as? NSNumber)?.intValue == 10)
        #expect(object["onboarding_complete"] as? Bool == true)
        #expect(object["role"] is NSNull)
        #expect(object["days_in_stage"] is NSNull)
        let keys = Metric.allCases.map(\.rawValue).sorted()
        let positions = keys.compactMap { text.range(of: "\"\($0)\":")?.lowerBound }
        #expect(positions == positions.sorted() && positions.count == keys.count)
    }
}

@Suite("Timestamps bound to the metrics statements")
struct SQLTimestampTests {
    @Test("The window bounds are written exactly as GRDB stores dates (UTC, milliseconds), without a formatter")
    func sameAsGRDB() async throws {
        var random = SplitMix64(seed: 3)
        for _ in 0..<2_000 {
            // Any instant from 1970 to 2100, with a fraction of a second
            let date = Date(timeIntervalSince1970: random.unit() * 4_102_444_800)
            let grdb = try #require(String.fromDatabaseValue(date.databaseValue))
            #expect(SQLTimestamp.text(date, milliseconds: true) == grdb, "\(date.timeIntervalSince1970)")
            #expect(SQLTimestamp.text(date, milliseconds: false) == String(grdb.prefix(19)))
        }
    }
}
