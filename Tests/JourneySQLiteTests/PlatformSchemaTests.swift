import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §3 and §8 on real files: the users table rebuilt losslessly where its journey columns
/// were declared otherwise, `follower_count` exact under every writer of the user row, and the
/// reuse of indexes on a file that was migrated before reuse existed.
@Suite("A platform's own schema")
struct PlatformSchemaTests {
    /// A platform `users` table with its own columns, CHECKs, UNIQUE, index, trigger, view,
    /// AUTOINCREMENT, generated column, a foreign key from `posts` with ON DELETE CASCADE, and
    /// nullable journey columns without defaults (as an ORM that knew them would write them).
    static let platformSQL = """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL UNIQUE,
            city TEXT, country TEXT,
            role TEXT CHECK (role IN ('user', 'admin', 'super-admin')),
            subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT,
            "display, name" TEXT DEFAULT 'a (b), c', -- a quoted name with a comma; a comment, with one too
            customer_journey_state VARCHAR(40) /* nullable, no default */,
            follower_count INT,
            score REAL GENERATED ALWAYS AS (length(email) * 1.5) STORED,
            bio BLOB,
            CONSTRAINT email_shape CHECK (email LIKE '%@%'));
        CREATE INDEX users_by_country ON users(country, city);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER, what TEXT);
        CREATE TRIGGER users_email_audit AFTER UPDATE OF email ON users BEGIN
            INSERT INTO audit(user_id, what) VALUES (NEW.id, 'email ' || NEW.email);
        END;
        CREATE VIEW admins AS SELECT id, email FROM users WHERE role = 'admin';
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                            content TEXT, visibility TEXT, created_at TEXT);
        CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
        CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at TEXT);
        INSERT INTO users(id, email, city, country, role, created_at, "display, name", customer_journey_state, follower_count, bio) VALUES
            (1, 'a@x', 'Paris', 'FR', 'user', '2025-01-01 00:00:00', 'Ann', NULL, NULL, x'00ff'),
            (2, 'b@x', 'Lyon', 'FR', 'admin', NULL, NULL, '', 7, NULL),
            (3, 'c@x', NULL, NULL, 'user', '2025-02-01', 'Cy', 'J2_ACTIVE_USER', 0, NULL),
            (4, 'd@x', 'Rome', 'IT', NULL, '2025-03-01', 'Di', '   ', NULL, NULL),
            (90, 'gone@x', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        DELETE FROM users WHERE id = 90;
        INSERT INTO posts(user_id, content) VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
        INSERT INTO follows(follower_id, following_id) VALUES (2, 1), (3, 1), (1, 3);
        """

    /// Every column of every user, as stored, without the two journey columns that change.
    static func platformUserRows(_ db: Database) throws -> [Row] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at, "display, name", score, bio
                FROM users ORDER BY id
                """)
    }

    @Test("nullable stage and count columns: users is rebuilt with the fresh schema, losing no row, column, constraint, index, trigger or view")
    func rebuildIsLossless() async throws {
        try await withTemporaryDirectory { directory in
            // Given the platform database, written with foreign keys on (as the platform's app would)
            let path = directory.appending(path: "platform.sqlite").path
            let platform = try DatabaseQueue(path: path)
            let (rowsBefore, postsBefore) = try platform.write { db in
                try db.execute(sql: Self.platformSQL)
                return (try Self.platformUserRows(db), try Row.fetchAll(db, sql: "SELECT * FROM posts ORDER BY id"))
            }
            try platform.close()

            // When it is migrated through a pool the host owns, foreign keys on (GRDB's default)
            var configuration = Configuration()
            SQLiteStore.prepare(&configuration)
            let pool = try DatabasePool(path: path, configuration: configuration)
            #expect(configuration.foreignKeysEnabled)
            let database = try SQLiteStore(pool: pool, now: Fixture.migrationNow)

            // Then the report names both rebuilt columns
            #expect(database.migration?.columnsRebuilt == ["users.customer_journey_state", "users.follower_count"])
            try pool.read { db in
                // and both columns have the fresh file's schema
                let columns = try db.columns(in: "users")
                let stage = try #require(columns.first { $0.name == "customer_journey_state" })
                #expect(stage.isNotNull && stage.defaultValueSQL == "'J1_NEW_USER'" && stage.type == "TEXT")
                let count = try #require(columns.first { $0.name == "follower_count" })
                #expect(count.isNotNull && count.defaultValueSQL == "0")
                // every platform value is kept, every row and no cascade deleted a post
                #expect(try Self.platformUserRows(db) == rowsBefore)
                #expect(try Row.fetchAll(db, sql: "SELECT * FROM posts ORDER BY id") == postsBefore)
                // NULL, '' and blank stages became the first stage; the known one stayed
                #expect(
                    try String.fetchAll(db, sql: "SELECT customer_journey_state FROM users ORDER BY id")
                        == ["J1_NEW_USER", "J1_NEW_USER", "J2_ACTIVE_USER", "J1_NEW_USER"])
                // the counts are exact
                #expect(try Int.fetchAll(db, sql: "SELECT follower_count FROM users ORDER BY id") == [2, 0, 1, 0])
                // the platform's index, trigger and view are there, with their own SQL
                let objects = try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master"))
                #expect(objects.isSuperset(of: ["users_by_country", "users_email_audit", "admins", "idx_users_journey_state", "journey_users_insert"]))
                #expect(
                    try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'users'")?.contains("\"display, name\" TEXT DEFAULT 'a (b), c'")
                        == true)
                #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
                #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
                // AUTOINCREMENT still remembers the deleted id 90
                #expect(try Int.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'users'") == 90)
            }
            try pool.write { db in
                // and the constraints and the trigger still act
                #expect(throws: DatabaseError.self) { try db.execute(sql: "INSERT INTO users(email) VALUES ('no-at-sign')") }
                #expect(throws: DatabaseError.self) { try db.execute(sql: "INSERT INTO users(email) VALUES ('a@x')") }
                #expect(throws: DatabaseError.self) { try db.execute(sql: "INSERT INTO users(email, role) VALUES ('e@x', 'king')") }
                try db.execute(sql: "UPDATE users SET email = 'a2@x' WHERE id = 1")
                #expect(try String.fetchAll(db, sql: "SELECT what FROM audit") == ["email a2@x"])
                try db.execute(sql: "INSERT INTO users(email) VALUES ('new@x')")
                #expect(try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM users") == 91)
                #expect(try String.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = 91") == "J1_NEW_USER")
            }
            try pool.close()

            // And a second open changes nothing
            let again = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.now)
            #expect(again.migration?.nothingToDo == true)
        }
    }

    @Test("a NULL stage read through the store is never evaluated: snapshot '' and a compare-and-set that matches the NULL")
    func nullStageCompareAndSet() async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated file whose users table the platform later made nullable again, with a NULL stage
            let database = try Fixture.smallMigratedDatabase(in: directory)
            try await database.writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA legacy_alter_table = ON")
                let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('users')")
                let definitions = columns.map { $0 == "customer_journey_state" ? "\($0) TEXT" : $0 == "id" ? "id INTEGER PRIMARY KEY" : $0 }
                try db.execute(sql: "CREATE TABLE users_orm (\(definitions.joined(separator: ", ")))")
                try db.execute(sql: "INSERT INTO users_orm SELECT * FROM users; DROP TABLE users; ALTER TABLE users_orm RENAME TO users")
                try db.execute(sql: "UPDATE users SET customer_journey_state = NULL WHERE id = 1")
            }

            // When user 1 is read and a move from what was read is persisted
            let snapshot = try await database.snapshot(user: 1, now: Fixture.now)
            let move = PendingMove(
                userID: 1, expectedStage: snapshot.storedStage,
                transitions: [Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "test")],
                metrics: snapshot.metrics)
            let result = try await database.persist([move], rulesVersion: "v", source: .api, now: Fixture.now)

            // Then the snapshot read '' and the compare-and-set matched the NULL: one row, no conflict
            #expect(snapshot.storedStage == "")
            #expect(result.conflicted.isEmpty && result.recorded.count == 1)
            #expect(
                try await database.writer.read { db in try String.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = 1") }
                    == "J2_ACTIVE_USER")
        }
    }

    @Test(
        "stored stages of other types read as their text",
        arguments: [
            (DatabaseValue.null, ""), ("".databaseValue, ""), (2.databaseValue, "2"), (2.5.databaseValue, "2.5"),
            (Data("J2_ACTIVE_USER".utf8).databaseValue, "J2_ACTIVE_USER"),
        ])
    func storedStageReading(_ value: DatabaseValue, _ text: String) {
        #expect(UserSnapshot.storedStage(value) == text)
    }

    /// Each way the platform writes a user row, and the follower count it must leave.
    enum UserWrite: String, CaseIterable, Sendable {
        case insertOrReplace, replaceWithExplicitZero, upsert, followsBeforeUser, deleteAndReinsert, idChanged, idChangedWithCascade
    }

    @Test("follower_count is exact after every way of writing the user row", arguments: UserWrite.allCases)
    func followerCountUnderUserWrites(_ write: UserWrite) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated file with users 1…3; user 2 followed by 1 and 3
            let path = directory.appending(path: "f.sqlite").path
            if write == .idChangedWithCascade {
                try await DatabaseQueue(path: path).write { db in
                    try db.execute(
                        sql: """
                            CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT, subscription_tier TEXT,
                                                is_onboarding_complete INTEGER, created_at TEXT);
                            CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL,
                                                  following_id INTEGER NOT NULL REFERENCES users(id) ON UPDATE CASCADE, created_at TEXT);
                            """)
                }
            }
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO users(id, email) VALUES (1, 'a@x'), (3, 'c@x')")
                if write != .followsBeforeUser { try db.execute(sql: "INSERT INTO users(id, email) VALUES (2, 'b@x')") }
                try db.execute(sql: "INSERT INTO follows(follower_id, following_id) VALUES (1, 2), (3, 2), (2, 1)")
            }

            // When the platform writes user 2's row that way (foreign keys on, as its app has them)
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            let platform = try DatabaseQueue(path: path, configuration: configuration)
            let counted: Int64 = try await platform.write { db in
                var counted: Int64 = 2
                switch write {
                case .insertOrReplace:
                    try db.execute(sql: "INSERT OR REPLACE INTO users(id, email, city) VALUES (2, 'b2@x', 'Oslo')")
                case .replaceWithExplicitZero:
                    try db.execute(sql: "REPLACE INTO users(id, email, follower_count) VALUES (2, 'b2@x', 0)")
                case .upsert:
                    try db.execute(sql: "INSERT INTO users(id, email) VALUES (2, 'b2@x') ON CONFLICT(id) DO UPDATE SET email = excluded.email")
                case .followsBeforeUser:
                    try db.execute(sql: "INSERT INTO users(id, email) VALUES (2, 'b@x')")
                case .deleteAndReinsert:
                    try db.execute(sql: "DELETE FROM users WHERE id = 2")
                    try db.execute(sql: "INSERT INTO users(id, email) VALUES (2, 'b@x')")
                case .idChanged:
                    // Its follows still name 2 (no foreign key): a new user 2 gets them, 7 has none.
                    try db.execute(sql: "UPDATE users SET id = 7 WHERE id = 2")
                    counted = 7
                case .idChangedWithCascade:
                    try db.execute(sql: "UPDATE users SET id = 7 WHERE id = 2")
                    counted = 7
                }
                return counted
            }
            try platform.close()

            // Then every user's count is the real count of their follows, and doctor finds no drift
            let expected = write == .idChanged ? 0 : 2
            let (count, drift) = try database.writer.read { db in
                (try Int.fetchOne(db, sql: "SELECT follower_count FROM users WHERE id = ?", arguments: [counted]), try followerCountDrift(db))
            }
            #expect(count == expected)
            #expect(drift.isEmpty, "\(drift)")
            let findings = try await database.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
            #expect(findings.followerCountDrift.isEmpty)
        }
    }

    @Test("drift made behind the triggers' back (a direct write of the count, a follows REPLACE) is still found by doctor")
    func driftBehindTheTriggers() async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated file where user 2 has one follower
            let database = try SQLiteStore.open(path: directory.appending(path: "d.sqlite").path, mode: .migrate, now: Fixture.migrationNow)
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO users(id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')")
                try db.execute(sql: "INSERT INTO follows(id, follower_id, following_id) VALUES (10, 1, 2)")
                // When a writer sets a count by hand and another REPLACEs the follow onto user 3
                try db.execute(sql: "UPDATE users SET follower_count = 40 WHERE id = 1")
                try db.execute(sql: "REPLACE INTO follows(id, follower_id, following_id) VALUES (10, 1, 3)")
            }

            // Then doctor names users 1 and 2 (3 was counted by the insert trigger)
            let findings = try await database.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
            #expect(findings.followerCountDrift == [1, 2])
        }
    }

    @Test("a file migrated before reuse existed: the journey's duplicate of a platform index is dropped, the platform's kept")
    func duplicatesOfAnEarlierMigrationAreDropped() async throws {
        try await withTemporaryDirectory { directory in
            // Given a file migrated when the journey still created its own copy of every index
            // (idx_posts_user_created, and idx_follows_pair beside the UNIQUE pair), to which the
            // platform then added posts_user_created
            let path = directory.appending(path: "old.sqlite").path
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            try database.writer.write { db in
                try db.execute(
                    sql: """
                        CREATE INDEX idx_follows_pair ON follows(follower_id, following_id);
                        CREATE INDEX posts_user_created ON posts(user_id, created_at DESC);
                        DELETE FROM grdb_migrations WHERE identifier = 'v2 reuse equivalent indexes';
                        """)
            }
            try (database.writer as? DatabasePool)?.close()

            // When it is migrated again
            let again = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.now)

            // Then the journey's copies are gone, the platform's indexes serve, and the report says so
            let names = try again.writer.read { db in try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'")) }
            #expect(!names.contains("idx_posts_user_created") && !names.contains("idx_follows_pair"))
            #expect(names.isSuperset(of: ["posts_user_created", "sqlite_autoindex_follows_1"]))
            #expect(again.migration?.indexesReused.map(\.existing).sorted() == ["posts_user_created", "sqlite_autoindex_follows_1"])
        }
    }
}
