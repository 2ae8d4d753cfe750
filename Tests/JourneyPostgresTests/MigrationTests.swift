import Foundation
import JourneyStorage
import PostgresNIO
import Testing

@testable import JourneyPostgres

@Suite("PostgreSQL migrate", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct MigrationTests {
    /// The platform's own schema with rows in it: every row survives, the journey columns appear,
    /// and a second run does nothing.
    @Test func completesThePlatformSchemaWithoutLosingARow() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            try await scratch.execute(
                """
                INSERT INTO users (email, is_onboarding_complete, created_at, customer_journey_state)
                VALUES ('a@x', true, '2025-01-02 03:04:05', 'J2_ACTIVE_USER'), ('b@x', false, NULL, NULL)
                """,
                "INSERT INTO follows (follower_id, following_id) VALUES (2, 1)")
            let report = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            #expect(report.migrationsApplied == PostgresMigrations.steps)
            #expect(report.tablesCreated.allSatisfy { $0.hasPrefix("journey_") })
            #expect(report.columnsAdded.filter { $0.hasPrefix("users.") } == ["users.last_journey_update", "users.follower_count"])

            let rerun = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            #expect(rerun.nothingToDo && rerun.indexesCreated.isEmpty && rerun.columnsAdded.isEmpty && rerun.tablesCreated.isEmpty)
            #expect(report.indexesReused.contains(.init(wanted: "idx_posts_user_id", existing: "posts_author_idx", keys: "posts(user_id)")))

            #expect(try await scratch.values("SELECT email FROM users ORDER BY id", as: String.self) == ["a@x", "b@x"])
            // The platform's varchar(50) stage is kept as it is, NULL included.
            #expect(
                try await scratch.value(
                    """
                    SELECT data_type || coalesce(character_maximum_length::text, '') FROM information_schema.columns
                    WHERE table_name = 'users' AND column_name = 'customer_journey_state'
                    """, as: String.self) == "character varying50")
            #expect(
                try await scratch.values("SELECT coalesce(customer_journey_state, '<null>') FROM users ORDER BY id", as: String.self) == [
                    "J2_ACTIVE_USER", "<null>",
                ])
            // Backfilled from created_at (a timestamp read as UTC), or the migration time.
            #expect(
                try await scratch.values("SELECT extract(epoch FROM last_journey_update)::float8 FROM users ORDER BY id", as: Double.self)
                    == [1_735_787_045, TestServer.now.timeIntervalSince1970])
            #expect(try await scratch.values("SELECT follower_count FROM users ORDER BY id", as: Int32.self) == [1, 0])
            #expect(try await scratch.value("SELECT count(*) FROM journey_migrations", as: Int64.self) == Int64(PostgresMigrations.steps.count))
        }
    }

    @Test func reusesEquivalentIndexesOnly() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            let report = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            let reused = Dictionary(uniqueKeysWithValues: report.indexesReused.map { ($0.wanted, $0.existing) })
            #expect(
                reused == [
                    "idx_posts_user_id": "posts_author_idx",
                    "idx_follows_pair": "follows_pair_unique",
                    "idx_users_email": "users_email_lookup",
                ])
            // Wrong direction, partial, expression, other collation: created anew.
            #expect(Set(report.indexesCreated).isSuperset(of: ["idx_posts_created_at", "idx_events_city", "idx_events_organizer", "idx_users_city_country"]))
            #expect(report.indexesCreated.filter { $0 != "idx_journey_transitions_created" }.count + report.indexesReused.count == 15)
            // No two indexes of a table share a definition (apart from the name).
            let duplicates = try await scratch.value(
                """
                SELECT count(*) FROM (
                    SELECT regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') AS definition
                    FROM pg_indexes WHERE schemaname = 'public'
                    GROUP BY 1 HAVING count(*) > 1) d
                """, as: Int64.self)
            #expect(duplicates == 0)
        }
    }

    @Test func createsTheWholeSchemaInAnEmptyDatabase() async throws {
        try await ScratchDatabase.with { scratch in
            let report = try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            #expect(
                report.tablesCreated == [
                    "users", "posts", "follows", "events", "event_rsvps", "journey_transitions", "journey_pins",
                    "journey_batch_runs", "journey_batch_shards", "journey_pin_events", "journey_rules",
                ])
            #expect(report.indexesReused.map(\.existing) == ["follows_follower_id_following_id_key"])
            #expect(report.indexesCreated.count == 14 + 1)  // and idx_journey_transitions_created
            let tables = try await scratch.values("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", as: String.self)
            #expect(
                tables == [
                    "event_rsvps", "events", "follows", "journey_batch_runs", "journey_batch_shards", "journey_migrations",
                    "journey_pin_events", "journey_pins", "journey_rules", "journey_transitions", "posts", "users",
                ])
            // The store opens it without migrating again.
            try await scratch.withStore(mode: .requireMigrated) { _ in }
        }
    }

    /// Two processes migrating one database at once: the advisory lock makes one wait for the other,
    /// and between them every step runs exactly once.
    @Test func twoConcurrentMigratesNeverRace() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            async let first = PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            async let second = PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            let reports = try await [first, second]
            #expect(reports.flatMap(\.migrationsApplied).sorted() == PostgresMigrations.steps.sorted())
            #expect(try await scratch.value("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'journey_%'", as: Int64.self) == 11)
        }
    }

    @Test func stepsRollBackWhole() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            // A platform object in the way of the journey tables step.
            try await scratch.execute("CREATE TABLE journey_pins (user_id integer)")
            await #expect(throws: StorageError.self) {
                try await PostgresStore.migrate(url: scratch.url, now: TestServer.now)
            }
            // The steps before it committed; its own left nothing behind.
            #expect(try await scratch.value("SELECT count(*) FROM journey_migrations", as: Int64.self) == 5)
            #expect(try await scratch.value("SELECT to_regclass('journey_transitions') IS NULL", as: Bool.self))
        }
    }
}
