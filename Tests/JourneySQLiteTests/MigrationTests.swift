import Foundation
import GRDB
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §3: the migrator creates the whole schema on an empty file, brings an existing
/// platform database up to date without losing a row, and a second run changes nothing.
@Suite("Migrations on real SQLite files")
struct MigrationTests {
    /// Whether the file exists (zero bytes) before the first open, or not at all.
    enum StartingFile: String, CaseIterable, Sendable { case absent, emptyFile }

    @Test("An empty file gets every table, the 15 indexes (one served by UNIQUE), the triggers and the journey tables", arguments: StartingFile.allCases)
    func migratesAnEmptyFile(start: StartingFile) async throws {
        try await withTemporaryDirectory { directory in
            // Given no database, or a zero-byte file
            let path = directory.appending(path: "empty.sqlite").path
            if start == .emptyFile { #expect(FileManager.default.createFile(atPath: path, contents: Data())) }

            // When it is opened with .migrate
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)

            // Then the platform tables, the journey tables, the indexes and the triggers exist
            try database.writer.readNow { db in
                for table in Fixture.platformTables + Fixture.journeyTables {
                    #expect(try db.tableExists(table), "table \(table) missing")
                }
                let userColumns = try db.columns(in: "users")
                let state = try #require(userColumns.first { $0.name == "customer_journey_state" })
                #expect(state.isNotNull)
                #expect(state.defaultValueSQL == "'J1_NEW_USER'")
                #expect(userColumns.contains { $0.name == "last_journey_update" })
                let followerCount = try #require(userColumns.first { $0.name == "follower_count" })
                #expect(followerCount.isNotNull && followerCount.defaultValueSQL == "0")

                // follows(follower_id, following_id) is the UNIQUE constraint's own index: no copy of it
                let indexes = try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'"))
                let expected = Set(JourneyMigrations.platformIndexes.map(\.name)).subtracting(["idx_follows_pair"])
                #expect(expected.count == 14)
                #expect(expected.subtracting(indexes).isEmpty, "missing indexes: \(expected.subtracting(indexes).sorted())")
                #expect(!indexes.contains("idx_follows_pair"))
                try expectSpecIndexes(db)

                let triggers = try Row.fetchAll(db, sql: "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
                #expect(
                    triggers.map { $0["name"] as String } == [
                        "journey_events_start_date_form_insert", "journey_events_start_date_form_update",
                        "journey_follows_delete", "journey_follows_insert", "journey_follows_update",
                        "journey_pins_delete_event", "journey_pins_insert_event", "journey_pins_update_event",
                        "journey_posts_created_at_form_insert", "journey_posts_created_at_form_update",
                        "journey_users_id_update", "journey_users_insert",
                    ])
                #expect(
                    triggers.map { $0["tbl_name"] as String } == [
                        "events", "events", "follows", "follows", "follows",
                        "journey_pins", "journey_pins", "journey_pins", "posts", "posts", "users", "users",
                    ])
                #expect(try platformCounts(db).values.allSatisfy { $0 == 0 })
            }
            let before = try DatabaseDump.read(database.writer)
            #expect(before.migrations.sorted() == JourneyMigrations.migrator(now: Fixture.now).migrations.sorted(), "\(before.migrations)")

            // When it is migrated a second time, later
            let again = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.now)

            // Then nothing changed: the same schema objects, rows and recorded migrations
            let after = try DatabaseDump.read(again.writer)
            #expect(before == after, "before:\n\(before)\nafter:\n\(after)")

            // And the file now also opens as an already migrated database
            _ = try SQLiteStore.open(path: path, mode: .requireMigrated)
        }
    }

    @Test("A populated platform database keeps every row, gains the journey columns, the indexes and exact follower counts")
    func migratesAPopulatedPlatformDatabase() async throws {
        try await withTemporaryDirectory { directory in
            // Given a generated platform database: no journey columns, no indexes, some users without created_at
            let path = directory.appending(path: "platform.sqlite").path
            let generated = try PlatformDataGenerator(users: 300, seed: 1, now: Fixture.generatedAt).write(to: path)
            let platform = try DatabaseQueue(path: path)
            let (countsBefore, platformRowsBefore, nullSignups) = try platform.write { db in
                try db.execute(sql: "UPDATE users SET created_at = NULL WHERE id IN (5, 50, 150)")
                #expect(try db.columns(in: "users").map(\.name).contains("customer_journey_state") == false)
                #expect(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'").isEmpty)
                return try (
                    platformCounts(db), platformRows(db),
                    Int64.fetchAll(db, sql: "SELECT id FROM users WHERE created_at IS NULL ORDER BY id")
                )
            }
            try platform.close()
            #expect(
                countsBefore == [
                    "users": generated.users, "posts": generated.posts, "follows": generated.follows,
                    "events": generated.events, "event_rsvps": generated.rsvps,
                ])
            #expect(generated.follows > 300 && generated.posts > 300 && generated.rsvps > 300)
            #expect(nullSignups.count >= 3)

            // When it is migrated
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)

            // Then every row is still there, unchanged
            try database.writer.readNow { db in
                #expect(try platformCounts(db) == countsBefore)
                #expect(try platformRows(db) == platformRowsBefore, "a platform row changed")

                // and the journey columns are there and filled
                let columns = try Set(db.columns(in: "users").map(\.name))
                #expect(columns.isSuperset(of: ["customer_journey_state", "last_journey_update", "follower_count"]))
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE customer_journey_state IS NOT 'J1_NEW_USER'") == 0)
                #expect(
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM users WHERE created_at IS NOT NULL AND last_journey_update IS NOT created_at
                            """) == 0)
                let backfilled = try Row.fetchAll(db, sql: "SELECT id, last_journey_update FROM users WHERE created_at IS NULL ORDER BY id")
                #expect(backfilled.map { $0["id"] as Int64 } == nullSignups)
                for row in backfilled {
                    #expect(row["last_journey_update"] as Date? == Fixture.migrationNow, "user \(row["id"] as Int64)")
                }

                // and follower_count is the real count of follows of each user
                let drift = try followerCountDrift(db)
                #expect(drift.isEmpty, "follower_count drift: \(drift)")
                #expect(try Int.fetchOne(db, sql: "SELECT SUM(follower_count) FROM users") == generated.follows)
                #expect(try Int.fetchOne(db, sql: "SELECT MAX(follower_count) FROM users")! > 100, "the celebrities are followed by most users")

                // and the fifteen indexes, and the journey tables
                let indexes = try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'"))
                #expect(Set(JourneyMigrations.platformIndexes.map(\.name)).isSubset(of: indexes))
                try expectSpecIndexes(db)
                for table in Fixture.journeyTables { #expect(try db.tableExists(table)) }
            }
            let before = try DatabaseDump.read(database.writer)

            // When the migrator runs again, later, from another open
            let again = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.now)

            // Then nothing changed
            let after = try DatabaseDump.read(again.writer)
            #expect(before == after, "before:\n\(before)\nafter:\n\(after)")
            // And the metrics read the migrated data
            let snapshot = try await again.snapshot(user: 1, now: Fixture.generatedAt)
            #expect(snapshot.storedStage == "J1_NEW_USER")
        }
    }

    @Test("Platform users inserted after the migration get the stage default and count followers")
    func laterPlatformWritesFitTheSchema() async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated platform database
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When the platform (which knows nothing of the journey columns) inserts a user and a follow
            try database.writer.writeNow { db in
                try db.execute(sql: "INSERT INTO users(id, email, created_at) VALUES (10, 'new@example.org', '2025-06-14 00:00:00')")
                try db.execute(sql: "INSERT INTO follows(follower_id, following_id) VALUES (1, 10)")
            }

            // Then the new user starts in J1 with one follower
            let snapshot = try await database.snapshot(user: 10, now: Fixture.now)
            #expect(snapshot.storedStage == "J1_NEW_USER")
            #expect(snapshot.metrics.followers == 1)
        }
    }
}

/// Every row of the five platform tables, users restricted to the platform's own columns.
private func platformRows(_ db: Database) throws -> [String: [Row]] {
    var rows: [String: [Row]] = [:]
    rows["users"] = try Row.fetchAll(
        db,
        sql: """
            SELECT id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at FROM users ORDER BY id
            """)
    for table in ["posts", "follows", "events", "event_rsvps"] {
        rows[table] = try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY id")
    }
    return rows
}

/// Each index of SPEC §3 exists with the right columns and directions, whatever its name.
private func expectSpecIndexes(_ db: Database, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for spec in Fixture.specIndexes {
        let shapes = try indexShapes(db, table: spec.table)
        let found = shapes.values.contains { $0.columns == spec.columns && $0.descending == spec.descending }
        #expect(
            found, "no index on \(spec.table)(\(spec.columns.joined(separator: ", "))) desc \(spec.descending); have \(shapes.mapValues(\.columns))",
            sourceLocation: sourceLocation)
    }
}
