import Foundation
import JourneyCore
import JourneyStorage
import PostgresNIO
import Testing

@testable import JourneyPostgres

@Suite("PostgreSQL follower_count and metrics", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct MetricsTests {
    /// The count follows every way the platform's app writes `follows` and `users`.
    @Test func followerCountStaysExactForEveryWriter() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            try await scratch.execute("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            _ = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            func counts() async throws -> [Int32] {
                try await scratch.values("SELECT follower_count FROM users ORDER BY id", as: Int32.self)
            }
            try await scratch.execute("INSERT INTO follows (follower_id, following_id) VALUES (2, 1), (3, 1), (1, 2)")
            #expect(try await counts() == [2, 1, 0])
            try await scratch.execute("DELETE FROM follows WHERE follower_id = 3")
            #expect(try await counts() == [1, 1, 0])
            // An update that moves a follow to another user.
            try await scratch.execute("UPDATE follows SET following_id = 3 WHERE follower_id = 2")
            #expect(try await counts() == [0, 1, 1])
            // Follows written before their user; the user inserted after them is recounted.
            try await scratch.execute(
                "INSERT INTO follows (follower_id, following_id) VALUES (1, 4), (2, 4)",
                "INSERT INTO users (id, email) VALUES (4, 'd')")
            #expect(try await counts() == [0, 1, 1, 2])
            // A user row replaced: deleted and inserted again, then upserted.
            try await scratch.execute("DELETE FROM users WHERE id = 4", "INSERT INTO users (id, email) VALUES (4, 'd2')")
            #expect(try await counts() == [0, 1, 1, 2])
            try await scratch.execute(
                """
                INSERT INTO users (id, email, follower_count) VALUES (4, 'd3', 0)
                ON CONFLICT (id) DO UPDATE SET email = excluded.email, follower_count = excluded.follower_count
                """)
            #expect(try await counts() == [0, 1, 1, 2])
            try await scratch.execute("TRUNCATE follows")
            #expect(try await counts() == [0, 0, 0, 0])
        }
    }

    /// Every metric of SPEC §2, against values counted by hand, with timestamps of every column type.
    @Test func metricsEqualHandComputedValues() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            // Posts' created_at as text in mixed forms, events' start_date as epoch milliseconds.
            try await scratch.execute(
                "ALTER TABLE posts ALTER COLUMN created_at TYPE text USING created_at::text",
                "ALTER TABLE events ALTER COLUMN start_date TYPE bigint USING (extract(epoch FROM start_date) * 1000)::bigint")
            try await scratch.execute(
                """
                INSERT INTO users (id, email, role, subscription_tier, is_onboarding_complete, created_at, customer_journey_state)
                VALUES (1, 'a', 'user', 'basic', true, '2025-06-01 12:00:00', 'J1_NEW_USER'),
                       (2, 'b', NULL, NULL, NULL, NULL, NULL), (3, 'c', NULL, NULL, false, NULL, NULL)
                """,
                // Within the 30 days before 2025-06-15 12:00 UTC: 3 of 5 (one unreadable, one too old).
                """
                INSERT INTO posts (user_id, created_at) VALUES
                    (1, '2025-06-14 10:00:00'), (1, '2025-06-10T08:00:00+02:00'), (1, '1749800000'),
                    (1, '2025-01-01'), (1, 'last tuesday'), (2, '2025-06-14')
                """,
                "INSERT INTO follows (follower_id, following_id) VALUES (1, 2), (1, 3), (2, 1)",
                // Event 1 started, event 2 is in the future; user 1 organized both.
                "INSERT INTO events (id, organizer_id, start_date) VALUES (1, 1, 1749900000000), (2, 1, 1750100000000), (3, 2, NULL)",
                """
                INSERT INTO event_rsvps (event_id, user_id, status) VALUES
                    (1, 1, 'going'), (2, 1, 'going'), (1, 2, 'maybe'), (1, 3, 'going')
                """)
            try await scratch.withStore(mode: .migrate) { store in
                let one = try await store.snapshot(user: 1, now: TestServer.now)
                #expect(one.storedStage == "J1_NEW_USER")
                #expect(
                    one.metrics
                        == UserMetrics(
                            posts: 5, postsLast30Days: 3, followers: 1, following: 2, eventsOrganized: 2, eventsAttended: 1,
                            onboardingComplete: true, subscriptionTier: "basic", role: "user",
                            signedUpAt: Date(timeIntervalSince1970: 1_748_779_200), stageEnteredAt: Date(timeIntervalSince1970: 1_748_779_200)))
                #expect(one.pin == nil && one.unreadableTimestamps.isEmpty)
                #expect(one.metrics.value(of: .daysSinceSignup, now: TestServer.now) == .integer(14))

                let two = try await store.snapshot(user: 2, now: TestServer.now)
                #expect(two.storedStage == "")
                #expect(two.metrics.onboardingComplete == nil && two.metrics.signedUpAt == nil)
                #expect(two.metrics.stageEnteredAt == TestServer.now)  // backfilled with the migration time
                #expect(two.metrics.posts == 1 && two.metrics.followers == 1 && two.metrics.eventsOrganized == 1 && two.metrics.eventsAttended == 0)

                await #expect { _ = try await store.snapshot(user: 99, now: TestServer.now) } throws: { error in
                    guard case .unknownUser(99) = error as? StorageError else { return false }
                    return true
                }

                // The batch's statement agrees with the one-user statement, and counts unreadable values.
                let chunk = try await store.chunk(after: 0, limit: 10, now: TestServer.now)
                #expect(chunk.map(\.userID) == [1, 2, 3])
                for snapshot in chunk {
                    #expect(snapshot.metrics == (try await store.snapshot(user: snapshot.userID, now: TestServer.now)).metrics)
                }
                #expect(chunk[0].unreadableTimestamps == ["posts.created_at": 1])
                #expect(try await store.chunk(after: 1, through: 2, limit: 10, now: TestServer.now).map(\.userID) == [2])
            }
        }
    }

    /// `journey_instant(text)` reads every form of SPEC §8 as JourneyCore's parser does.
    @Test func journeyInstantAgreesWithTheCoreParser() async throws {
        let samples = [
            "2026-10-30 07:03:19", "2026-10-30 07:03:19.250", "2026-10-30T07:03:19Z", "2026-10-30t07:03:19z",
            "2026-10-30T07:03:19.123456789+02:00", "2026-10-30T07:03:19+0200", "2026-10-30T07:03:19-05",
            "2026-10-30 07:03:19 +0000", "2026-10-30 07:03", "2026-10-30", "2024-02-29", "0000-01-01",
            "1793343799", "1793343799.25", "1793343799250", "-5", "5.", ".5",
            "2026-02-30", "2026-13-01", "2026-10-30T24:00", "2026-10-30T07:60", "2026-10-30T07:03:60",
            "2026-10-30T07:03:19+24:00", "2026-10-30T07:03:19+05:", "2026-10-30T07:03:19.", " 2026-10-30",
            "yesterday", "", "1e9", "12:00",
        ]
        try await ScratchDatabase.with { scratch in
            _ = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            for sample in samples {
                let rows = try await scratch.connection.query("SELECT journey_instant(\(sample)::text)", logger: TestServer.logger).collect()
                let found = try #require(rows.first).decode(Double?.self)
                let expected = Timestamp.read(text: sample).seconds
                if let found, let expected {
                    #expect(abs(found - expected) < 1e-6, "\(sample)")
                } else {
                    #expect(found == nil && expected == nil, "\(sample): \(String(describing: found)) vs \(String(describing: expected))")
                }
            }
            #expect(try await scratch.value("SELECT journey_instant(timestamp '2026-10-30 07:03:19')", as: Double.self) == 1_793_343_799)
            #expect(try await scratch.value("SELECT journey_instant(timestamptz '2026-10-30 09:03:19+02')", as: Double.self) == 1_793_343_799)
            #expect(try await scratch.value("SELECT journey_instant(date '2026-10-30')", as: Double.self) == 1_793_318_400)
            #expect(try await scratch.value("SELECT journey_instant(1793343799250::bigint)", as: Double.self) == 1_793_343_799.25)
            #expect(try await scratch.value("SELECT journey_instant(1793343799::integer)", as: Double.self) == 1_793_343_799)
            #expect(try await scratch.value("SELECT journey_instant('NaN'::float8) IS NULL", as: Bool.self))
            #expect(try await scratch.value("SELECT count(*) FROM pg_proc WHERE proname = 'journey_instant' AND provolatile = 'i'", as: Int64.self) == 6)
            // The timestamp overloads are SQL functions the planner inlines: the plan shows the built-in.
            for column in ["created_at", "created_at::timestamp"] {
                let plan = try await scratch.value("EXPLAIN (VERBOSE, FORMAT JSON) SELECT journey_instant(\(column)) FROM posts", as: String.self)
                #expect(plan.contains("date_part") && !plan.contains("journey_instant"), "\(plan)")
            }
        }
    }

    /// SPEC §2: the one-user statement seeks indexes, never scans posts, follows, events or
    /// event_rsvps, on analyzed tables of a realistic size (the planner's own choice, no setting forced).
    @Test func theMetricsStatementScansNoBigTable() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            try await scratch.execute(
                "INSERT INTO users (email, created_at) SELECT 'u' || n, now() - n * interval '1 hour' FROM generate_series(1, 20000) n",
                "INSERT INTO posts (user_id, visibility, created_at) SELECT 1 + (n * 7919) % 20000, 'public', now() - (n % 90) * interval '1 day' FROM generate_series(1, 100000) n",
                "INSERT INTO follows (follower_id, following_id) SELECT 1 + n % 20000, 1 + (n * 31) % 20000 FROM generate_series(1, 100000) n ON CONFLICT DO NOTHING",
                "INSERT INTO events (organizer_id, city, start_date) SELECT 1 + (n * 13) % 20000, 'x', now() - (n % 60 - 30) * interval '1 day' FROM generate_series(1, 20000) n",
                "INSERT INTO event_rsvps (event_id, user_id, status) SELECT 1 + n % 20000, 1 + (n * 17) % 20000, CASE WHEN n % 3 = 0 THEN 'maybe' ELSE 'going' END FROM generate_series(1, 100000) n"
            )
            _ = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            try await scratch.execute("VACUUM ANALYZE")
            let binds = PostgresMetricsSQL.binds([4242], now: TestServer.now)
            let plan = try await scratch.connection.query(
                PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + PostgresMetricsSQL.snapshot, binds: binds), logger: TestServer.logger
            ).collect()
            let json = try #require(plan.first).decode(String.self)
            let scanned = Self.sequentialScans(in: try JSONSerialization.jsonObject(with: Data(json.utf8)))
            #expect(scanned.isDisjoint(with: ["posts", "follows", "events", "event_rsvps"]), "sequential scans on \(scanned): \(json)")

            // The batch's statement over a chunk of 500 users reads each table by its index range.
            let chunkPlan = try await scratch.connection.query(
                PostgresQuery(
                    unsafeSQL: "EXPLAIN (FORMAT JSON) " + PostgresMetricsSQL.chunk, binds: PostgresMetricsSQL.binds([1000, 1499], now: TestServer.now)),
                logger: TestServer.logger
            ).collect()
            let chunkJSON = try #require(chunkPlan.first).decode(String.self)
            let chunkScanned = Self.sequentialScans(in: try JSONSerialization.jsonObject(with: Data(chunkJSON.utf8)))
            #expect(chunkScanned.isDisjoint(with: ["posts", "follows", "event_rsvps"]), "sequential scans on \(chunkScanned)")
        }
    }

    /// The relations an `EXPLAIN (FORMAT JSON)` plan reads with a "Seq Scan" node.
    static func sequentialScans(in plan: Any) -> Set<String> {
        var found = Set<String>()
        if let object = plan as? [String: Any] {
            if object["Node Type"] as? String == "Seq Scan", let relation = object["Relation Name"] as? String { found.insert(relation) }
            for value in object.values { found.formUnion(sequentialScans(in: value)) }
        } else if let array = plan as? [Any] {
            for value in array { found.formUnion(sequentialScans(in: value)) }
        }
        return found
    }
}
