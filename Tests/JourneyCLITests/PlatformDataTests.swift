import Foundation
import GRDB
import Testing

/// SPEC §8 through the real binary: stages never evaluated (NULL, blank), a platform's own
/// nullable stage column, one user's bad row in a batch, and `migrate` on a schema that exists.
@Suite("Data written by the platform's own app")
struct PlatformDataTests {
    /// A small platform database as the platform's ORM made it: its own schema for `users`
    /// (the stage column nullable, without default, no follower count), written before any
    /// migrate. Users 1…6 fit J2 (onboarded, a post, a connection, signed up in 2020); user 7 does not.
    static func ormDatabase(_ workspace: Workspace, stageColumn: String = "customer_journey_state VARCHAR(32)", stages: [Int: String?] = [:]) throws -> String {
        let path = workspace.path("orm.sqlite")
        var sql = """
            CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT, subscription_tier TEXT,
                is_onboarding_complete INTEGER, created_at TEXT, \(stageColumn));
            CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT, created_at TEXT);
            CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
            CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
            CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at TEXT);
            """
        for id in 1...7 {
            let stage = stages[id].map { $0.map { "'\($0)'" } ?? "NULL" } ?? "'J1_NEW_USER'"
            sql += "INSERT INTO users VALUES (\(id), 'u\(id)@x', 'Paris', 'FR', 'user', 'free', \(id == 7 ? 0 : 1), '2020-01-01 00:00:00', \(stage));"
            sql += "INSERT INTO posts(user_id, created_at) VALUES (\(id), '2020-02-01 00:00:00');"
            sql += "INSERT INTO follows(follower_id, following_id) VALUES (\(id), \(id % 7 + 1));"
        }
        try Direct.execute(path, sql)
        return path
    }

    @Test("a file migrated by an older journey: commands say to migrate (65); migrate applies the new steps and says which; then all works")
    func olderMigration() async throws {
        try await withWorkspace { workspace in
            // Given: a file as a journey without the three steps of this change left it
            let db = try Self.ormDatabase(workspace, stageColumn: "customer_journey_state TEXT NOT NULL DEFAULT 'J1_NEW_USER'")
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(
                db,
                """
                DROP TRIGGER journey_users_insert; DROP TRIGGER journey_users_id_update;
                DELETE FROM grdb_migrations
                WHERE identifier IN ('v2 journey column schema', 'v2 follower count on user writes', 'v2 reuse equivalent indexes');
                """)

            // When: evaluating a user
            let refused = try await workspace.journey(["evaluate", "1", "--db", db])

            // Then: 65, naming the file and the way out
            expectCleanFailure(refused, status: 65, mentions: [db, "journey migrate --db"])

            // When: migrating, then evaluating
            let migrate = try await workspace.journey(["migrate", "--db", db, "--json"])
            let evaluate = try await workspace.journey(["evaluate", "1", "--db", db])

            // Then: the three new steps ran, the two users triggers are reported, and evaluate works
            #expect(migrate.status == 0, "\(migrate)")
            let report = try #require(try migrate.jsonObject()["migration"] as? [String: Any])
            #expect(
                report["migrations_applied"] as? [String] == ["v2 journey column schema", "v2 follower count on user writes", "v2 reuse equivalent indexes"],
                "\(migrate)")
            #expect(report["triggers_created"] as? [String] == ["journey_users_id_update", "journey_users_insert"], "\(migrate)")
            #expect(evaluate.status == 0, "\(evaluate)")
        }
    }

    @Test("an existing nullable stage column holding NULL: migrate rebuilds it NOT NULL DEFAULT 'J1_NEW_USER', NULL reads J1, evaluate and batch work")
    func nullableStageColumn() async throws {
        try await withWorkspace { workspace in
            // Given: the platform's users table with a nullable stage column and one NULL (user 1)
            let db = try Self.ormDatabase(workspace, stages: [1: nil])

            // When: migrating
            let migrate = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: the column is reported rebuilt, has the fresh file's schema, and the NULL became J1
            #expect(migrate.status == 0, "\(migrate)")
            let report = try #require(try migrate.jsonObject()["migration"] as? [String: Any])
            #expect(report["columns_rebuilt"] as? [String] == ["users.customer_journey_state"], "\(migrate)")
            #expect(report["columns_added"] as? [String] == ["users.last_journey_update", "users.follower_count"], "\(migrate)")
            #expect(
                try Direct.integer(
                    db,
                    "SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'customer_journey_state' AND \"notnull\" = 1 AND dflt_value = '''J1_NEW_USER'''"
                ) == 1)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE customer_journey_state = 'J1_NEW_USER'") == 7)

            // When: evaluating user 1, then running the batch
            let evaluate = try await workspace.journey(["evaluate", "1", "--db", db, "--json"])
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])

            // Then: user 1 moved J1→J2; the batch moved the five others that fit, failed nobody, finished
            #expect(evaluate.status == 0, "\(evaluate)")
            #expect(try evaluate.jsonObject()["stage"] as? String == "J2_ACTIVE_USER", "\(evaluate)")
            #expect(batch.status == 0, "\(batch)")
            let summary = try batch.jsonObject()
            #expect(summary["transitions"] as? Int == 5, "\(batch)")
            #expect((summary["failed_users"] as? [String: Any])?.isEmpty == true, "\(batch)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE status = 'finished'") == 1)

            // And: migrating again has nothing to do
            let again = try await workspace.journey(["migrate", "--db", db])
            #expect(again.status == 0 && again.stdout.contains("nothing to do"), "\(again)")
        }
    }

    @Test(
        "NULL and blank stages after migration (the platform's schema made the column nullable again): evaluate, pin and batch start from J1, with no conflict")
    func nullAndBlankAfterMigration() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated file whose users table the platform rebuilt with a nullable stage
            // column, and users holding NULL, '', '   ' and a tab
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(
                db,
                """
                PRAGMA legacy_alter_table = ON;
                CREATE TABLE users_orm (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT, subscription_tier TEXT,
                    is_onboarding_complete INTEGER, created_at TEXT, customer_journey_state TEXT, last_journey_update TEXT,
                    follower_count INTEGER NOT NULL DEFAULT 0);
                INSERT INTO users_orm SELECT * FROM users;
                DROP TABLE users;
                ALTER TABLE users_orm RENAME TO users;
                UPDATE users SET customer_journey_state = NULL WHERE id IN (1, 2, 7);
                UPDATE users SET customer_journey_state = '' WHERE id = 3;
                UPDATE users SET customer_journey_state = '   ' WHERE id = 4;
                UPDATE users SET customer_journey_state = char(9) WHERE id = 5;
                """)

            // When: evaluating the NULL user 1 (persisting) and explaining user 3
            let evaluate = try await workspace.journey(["evaluate", "1", "--db", db, "--json"])
            let explain = try await workspace.journey(["explain", "3", "--db", db])

            // Then: user 1 moved J1→J2 in one try, recorded from J1_NEW_USER; user 3 is shown in J1
            #expect(evaluate.status == 0, "\(evaluate)")
            #expect(try evaluate.jsonObject()["stage"] as? String == "J2_ACTIVE_USER", "\(evaluate)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = 1 AND from_state = 'J1_NEW_USER' AND seq = 1") == 1)
            #expect(explain.status == 0 && explain.stdout.contains("J1_NEW_USER"), "\(explain)")

            // When: pinning the NULL user 7, then running the batch and doctor
            let pin = try await workspace.journey(["pin", "7", "--db", db, "--reason", "vip"])
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])
            let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])

            // Then: the pin holds the first stage; the batch moved 2…5 with no unknown stage, conflict or failure
            #expect(pin.status == 0 && pin.stdout.contains("first stage"), "\(pin)")
            #expect(batch.status == 0, "\(batch)")
            let summary = try batch.jsonObject()
            #expect(summary["transitions"] as? Int == 5, "\(batch)")  // users 2, 3, 4, 5, 6
            #expect((summary["unknown_stages"] as? [String: Any])?.isEmpty == true, "\(batch)")
            #expect(summary["conflicts"] as? Int == 0, "\(batch)")
            #expect(summary["pinned"] as? Int == 1, "\(batch)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE customer_journey_state = 'J2_ACTIVE_USER'") == 6)
            // And: doctor finds nothing wrong with a never-evaluated user (7) who has no history; it
            // names the triggers on users the rebuild dropped, which migrate makes again
            let findings = try #require(try doctor.jsonObject()["findings"] as? [String: Any], "\(doctor)")
            #expect((findings["stage_mismatches"] as? [Int])?.isEmpty == true, "\(doctor)")
            #expect(findings["missing_triggers"] as? [String] == ["journey_users_insert", "journey_users_id_update"], "\(doctor)")
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            let healthy = try await workspace.journey(["doctor", "--db", db])
            #expect(healthy.status == 0, "\(healthy)")
        }
    }

    /// The ways a trigger of the platform's refuses one row, and a word of what the refusal says:
    /// ABORT and FAIL end the statement, ROLLBACK ends the whole transaction (every user written in
    /// it so far), IGNORE skips the row without an error.
    static let refusals: [(raise: String, says: String)] = [
        ("RAISE(ABORT, 'user 3 is frozen')", "frozen"), ("RAISE(FAIL, 'user 3 is frozen')", "frozen"),
        ("RAISE(ROLLBACK, 'user 3 is frozen')", "frozen"), ("RAISE(IGNORE)", "did not store the new stage"),
    ]

    @Test(
        "one user's write refused by the platform (a trigger RAISE): the batch counts it, moves the others and finishes; evaluate of that user is 65",
        arguments: refusals)
    func refusedWriteDoesNotStopTheBatch(_ refusal: (raise: String, says: String)) async throws {
        try await withWorkspace { workspace in
            // Given: a migrated file where the platform forbids any stage change of user 3
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(
                db,
                """
                CREATE TRIGGER frozen BEFORE UPDATE OF customer_journey_state ON users WHEN OLD.id = 3
                BEGIN SELECT \(refusal.raise); END;
                """)

            // When: the batch runs in chunks of two (user 3 is in the second of four)
            let batch = try await workspace.journey(["batch", "--db", db, "--json", "--chunk-size", "2"])
            let text = try await workspace.journey(["batch", "--db", db, "--dry-run"])

            // Then: it finishes; 5 users moved, user 3 counted under write_refused and named; no row of user 3
            #expect(batch.status == 0, "\(batch)")
            let summary = try batch.jsonObject()
            #expect(summary["users_seen"] as? Int == 7, "\(batch)")
            #expect(summary["transitions"] as? Int == 5, "\(batch)")
            #expect(summary["failed_users"] as? [String: Int] == ["write_refused": 1], "\(batch)")
            #expect(summary["failed_user_samples"] as? [String: [Int]] == ["write_refused": [3]], "\(batch)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = 3") == 0)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE status = 'finished'") == 1)
            #expect(text.status == 0 && text.stdout.contains("failed users"), "\(text)")

            // When: evaluating user 3 alone
            let evaluate = try await workspace.journey(["evaluate", "3", "--db", db])

            // Then: 65, one line naming the user and the platform's message; nothing written
            expectCleanFailure(evaluate, status: 65, mentions: ["user 3", refusal.says])
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = 3") == 0)

            // And: a second batch moves no one, and every stage is its last transition's
            let again = try await workspace.journey(["batch", "--db", db, "--json"])
            let movedAgain = try again.jsonObject()["transitions"] as? Int
            #expect(again.status == 0 && movedAgain == 0, "\(again)")
            let doctor = try await workspace.journey(["doctor", "--db", db])
            #expect(doctor.status == 0, "\(doctor)")
        }
    }

    @Test("a follower_count that is not an integer is never read as one: metrics count the follows, doctor reports the drift")
    func followerCountNotAnInteger() async throws {
        try await withWorkspace { workspace in
            // Given: user 2's follower_count overwritten with text by another application
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(db, "UPDATE users SET follower_count = 'many' WHERE id = 2")

            // When: evaluating it, running the batch and doctor
            let evaluate = try await workspace.journey(["evaluate", "2", "--db", db, "--json", "--dry-run"])
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])
            let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])

            // Then: followers is the real count (1), the batch finishes with 6 moves, doctor names user 2
            #expect(evaluate.status == 0, "\(evaluate)")
            #expect((try evaluate.jsonObject()["metrics"] as? [String: Any])?["followers"] as? Int == 1, "\(evaluate)")
            #expect(batch.status == 0, "\(batch)")
            #expect(try batch.jsonObject()["transitions"] as? Int == 6, "\(batch)")
            #expect(doctor.status == 1, "\(doctor)")
            #expect((try doctor.jsonObject()["findings"] as? [String: Any])?["follower_count_drift"] as? [Int] == [2], "\(doctor)")
        }
    }

    @Test("INSERT OR REPLACE of a user (the profile upsert) keeps follower_count exact, and the stage decided on it")
    func insertOrReplaceUser() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated file where user 2 has three followers
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(db, "INSERT INTO follows(follower_id, following_id) VALUES (3, 2), (4, 2)")
            #expect(try Direct.integer(db, "SELECT follower_count FROM users WHERE id = 2") == 3)

            // When: the platform upserts user 2's profile the usual way
            try Direct.execute(
                db,
                """
                INSERT OR REPLACE INTO users(id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at)
                VALUES (2, 'new@x', 'Lyon', 'FR', 'user', 'free', 1, '2020-01-01 00:00:00')
                """)

            // Then: the count is still 3, evaluate reads 3, doctor finds no drift
            #expect(try Direct.integer(db, "SELECT follower_count FROM users WHERE id = 2") == 3)
            let evaluate = try await workspace.journey(["evaluate", "2", "--db", db, "--json", "--dry-run"])
            #expect((try evaluate.jsonObject()["metrics"] as? [String: Any])?["followers"] as? Int == 3, "\(evaluate)")
            #expect(try await workspace.journey(["doctor", "--db", db]).status == 0)
        }
    }

    @Test("the platform renames follows away before dropping it: doctor names the journey trigger SQLite rewrote, migrate makes it again, signups work again")
    func renamedTableRewritesATrigger() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated file whose platform rebuilds follows by renaming it away first
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(
                db,
                """
                ALTER TABLE follows RENAME TO follows_old;
                CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
                INSERT INTO follows SELECT * FROM follows_old;
                DROP TABLE follows_old;
                """)
            // (SQLite rewrote journey_users_insert to read follows_old: the platform's signups now fail)
            #expect(throws: (any Error).self) {
                try Direct.execute(db, "INSERT INTO users(id, email, created_at) VALUES (100, 'new@x', '2026-01-01 00:00:00')")
            }

            // When: doctor, then migrate
            let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])
            let migrated = try await workspace.journey(["migrate", "--db", db])

            // Then: doctor names the rewritten trigger; after migrate a signup works and counts its followers
            #expect(doctor.status == 1, "\(doctor)")
            let broken = (try doctor.jsonObject()["findings"] as? [String: Any])?["missing_triggers"] as? [String] ?? []
            #expect(broken.contains("journey_users_insert"), "\(doctor)")
            #expect(migrated.status == 0, "\(migrated)")
            try Direct.execute(db, "INSERT INTO follows(follower_id, following_id) VALUES (1, 100), (2, 100)")
            try Direct.execute(db, "INSERT INTO users(id, email, created_at) VALUES (100, 'new@x', '2026-01-01 00:00:00')")
            #expect(try Direct.integer(db, "SELECT follower_count FROM users WHERE id = 100") == 2)
            #expect(try await workspace.journey(["doctor", "--db", db]).status == 0)
        }
    }

    @Test("users with ids of 0 and below are users too: the batch sees them and moves them like the others")
    func idsOfZeroAndBelow() async throws {
        try await withWorkspace { workspace in
            // Given: users −5 and 0, as user 1 (fit for J2), besides users 1…7
            let db = try Self.ormDatabase(workspace)
            try Direct.execute(
                db,
                """
                INSERT INTO users SELECT -5, 'm5@x', city, country, role, subscription_tier, is_onboarding_complete, created_at, customer_journey_state FROM users WHERE id = 1;
                INSERT INTO users SELECT 0, 'z@x', city, country, role, subscription_tier, is_onboarding_complete, created_at, customer_journey_state FROM users WHERE id = 1;
                INSERT INTO posts(user_id, created_at) VALUES (-5, '2020-02-01 00:00:00'), (0, '2020-02-01 00:00:00');
                INSERT INTO follows(follower_id, following_id) VALUES (-5, 0), (0, -5);
                """)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)

            // When: the batch runs, in chunks of two
            let batch = try await workspace.journey(["batch", "--db", db, "--json", "--chunk-size", "2"])

            // Then: it saw all nine users and moved the eight that fit
            #expect(batch.status == 0, "\(batch)")
            let summary = try batch.jsonObject()
            #expect(summary["users_seen"] as? Int == 9 && summary["transitions"] as? Int == 8, "\(batch)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE id <= 0 AND customer_journey_state = 'J2_ACTIVE_USER'") == 2)
        }
    }

    @Test(
        "the platform rebuilds posts and follows (new table, copy, drop, rename): metrics stay right, doctor names the lost triggers, migrate makes them and the indexes again and recounts"
    )
    func rebuiltTablesLoseNothing() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated file whose platform then rebuilds posts and follows the way SQLite
            // requires to change a column, and writes meanwhile: a post of yesterday as epoch
            // seconds, and a follow of user 2
            let db = try Self.ormDatabase(workspace)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            try Direct.execute(
                db,
                """
                CREATE TABLE posts_new (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT, created_at TEXT, likes INTEGER);
                INSERT INTO posts_new(id, user_id, content, visibility, created_at) SELECT id, user_id, content, visibility, created_at FROM posts;
                DROP TABLE posts; ALTER TABLE posts_new RENAME TO posts;
                PRAGMA legacy_alter_table = ON;
                CREATE TABLE follows_new (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
                INSERT INTO follows_new SELECT * FROM follows;
                DROP TABLE follows; ALTER TABLE follows_new RENAME TO follows;
                INSERT INTO posts(user_id, created_at) VALUES (1, CAST(strftime('%s', 'now', '-1 day') AS INTEGER));
                INSERT INTO follows(follower_id, following_id) VALUES (5, 2);
                """)
            #expect(try Direct.integer(db, "SELECT follower_count FROM users WHERE id = 2") == 1, "the count went stale")

            // When: commands read it before anyone migrates
            let before = try await workspace.journey(["evaluate", "1", "--db", db, "--dry-run", "--json"])
            let follower = try await workspace.journey(["evaluate", "2", "--db", db, "--dry-run", "--json"])
            let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])

            // Then: the metrics are right (the slower way: the post parsed, followers counted), and
            // doctor names the dropped triggers
            #expect((try before.jsonObject()["metrics"] as? [String: Any])?["posts_last_30_days"] as? Int == 1, "\(before)")
            #expect((try follower.jsonObject()["metrics"] as? [String: Any])?["followers"] as? Int == 2, "\(follower)")
            #expect(doctor.status == 1, "\(doctor)")
            let missing = (try doctor.jsonObject()["findings"] as? [String: Any])?["missing_triggers"] as? [String]
            #expect(
                missing == [
                    "journey_follows_insert", "journey_follows_delete", "journey_follows_update",
                    "journey_posts_created_at_form_insert", "journey_posts_created_at_form_update",
                ], "\(doctor)")

            // When: migrate runs, then a second time
            let migrated = try await workspace.journey(["migrate", "--db", db, "--json"])
            let again = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: the triggers and the indexes are back, the counts exact, the post of yesterday counted
            #expect(migrated.status == 0, "\(migrated)")
            let migration = try #require(try migrated.jsonObject()["migration"] as? [String: Any])
            let triggers = Set(try #require(migration["triggers_created"] as? [String]))
            #expect(
                triggers.isSuperset(of: [
                    "journey_follows_insert", "journey_follows_delete", "journey_follows_update",
                    "journey_posts_created_at_form_insert", "journey_posts_created_at_form_update",
                ]), "\(migrated)")
            #expect(Set(try #require(migration["indexes_created"] as? [String])).isSuperset(of: ["idx_posts_user_created", "idx_follows_following"]))
            #expect(try again.jsonObject()["nothing_to_do"] as? Bool == true, "\(again)")
            #expect(try Direct.integer(db, "SELECT follower_count FROM users WHERE id = 2") == 2)
            let evaluate = try await workspace.journey(["evaluate", "1", "--db", db, "--dry-run", "--json"])
            #expect((try evaluate.jsonObject()["metrics"] as? [String: Any])?["posts_last_30_days"] as? Int == 1, "\(evaluate)")
            #expect(try await workspace.journey(["doctor", "--db", db]).status == 0)
        }
    }
}

/// SPEC §3 and §8: `migrate` reuses an index of the platform with the same table, keys, order
/// and collation, and says so; anything else is not the same index.
@Suite("journey migrate on indexes that already exist")
struct MigrateIndexReuseTests {
    /// Ten of the platform indexes, under the platform's own names (one of them UNIQUE).
    static let equivalents = [
        "CREATE INDEX posts_user ON posts(user_id)",
        "CREATE INDEX posts_recent ON posts(created_at DESC)",
        "CREATE INDEX posts_user_created ON posts(user_id, created_at DESC)",
        "CREATE INDEX posts_vis ON posts(visibility COLLATE BINARY)",
        "CREATE INDEX users_email ON users(email)",
        "CREATE INDEX users_place ON users(city ASC, country)",
        "CREATE INDEX follows_by_follower ON follows(follower_id)",
        "CREATE UNIQUE INDEX follows_pair ON follows(follower_id, following_id)",
        "CREATE INDEX events_when ON events(start_date)",
        "CREATE INDEX rsvps_user ON event_rsvps(user_id)",
    ]

    @Test("ten platform indexes under other names are reused, not duplicated, and named in the report; a second run has nothing to do")
    func reusesTen() async throws {
        try await withWorkspace { workspace in
            // Given: a platform database with ten of the fifteen indexes under its own names
            let db = try await workspace.platformDatabase(migrated: false)
            try Direct.execute(db, Self.equivalents.joined(separator: ";\n"))

            // When: migrating with --json
            let result = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: each of the ten is reported reused (naming it); only the five others are created
            #expect(result.status == 0, "\(result)")
            let report = try #require(try result.jsonObject()["migration"] as? [String: Any])
            let reused = try #require(report["indexes_reused"] as? [[String: String]])
            #expect(
                Set(reused.compactMap { $0["existing"] }) == [
                    "posts_user", "posts_recent", "posts_user_created", "posts_vis", "users_email",
                    "users_place", "follows_by_follower", "follows_pair", "events_when", "rsvps_user",
                ], "\(result)")
            #expect(
                Set(report["indexes_created"] as? [String] ?? []) == [
                    "idx_users_journey_state", "idx_follows_following", "idx_events_organizer",
                    "idx_events_city", "idx_event_rsvps_event", "idx_journey_transitions_created",
                    "journey_batch_runs_one_running",
                ], "\(result)")
            // And: no two indexes of the file have the same table and keys
            #expect(
                try Direct.integer(
                    db,
                    """
                    SELECT COUNT(*) FROM (SELECT m.tbl_name, group_concat(x.name || ':' || x."desc" || ':' || x.coll, ',') AS keys
                                          FROM sqlite_master m, pragma_index_xinfo(m.name) x
                                          WHERE m.type = 'index' AND x.key = 1 GROUP BY m.name)
                    GROUP BY tbl_name, keys HAVING COUNT(*) > 1
                    """) == nil)

            // When: migrating again, as text
            let again = try await workspace.journey(["migrate", "--db", db])

            // Then: nothing to do
            #expect(again.status == 0 && again.stdout.contains("nothing to do"), "\(again)")
        }
    }

    /// Indexes on the right columns that are not the same index, and the journey index each must not be replaced by.
    static let lookalikes: [(sql: String, notReplacing: String)] = [
        ("CREATE INDEX posts_user_created_asc ON posts(user_id, created_at)", "idx_posts_user_created"),  // ASC, wanted DESC
        ("CREATE INDEX posts_recent_asc ON posts(created_at)", "idx_posts_created_at"),  // ASC, wanted DESC
        ("CREATE INDEX posts_public ON posts(visibility) WHERE visibility = 'public'", "idx_posts_visibility"),  // partial
        ("CREATE INDEX users_email_nocase ON users(email COLLATE NOCASE)", "idx_users_email"),  // another collation
        ("CREATE INDEX users_city_lower ON users(lower(city), country)", "idx_users_city_country"),  // an expression
        ("CREATE INDEX follows_pair_prefix ON follows(follower_id, following_id, created_at)", "idx_follows_pair"),  // more keys
        ("CREATE INDEX follows_following_rev ON follows(following_id, follower_id)", "idx_follows_following"),  // other leading key
    ]

    @Test("an index in the other order, partial, with another collation, on an expression or with other keys is not reused")
    func lookalikesAreNotReused() async throws {
        try await withWorkspace { workspace in
            // Given: a platform database with seven look-alike indexes
            let db = try await workspace.platformDatabase(migrated: false)
            try Direct.execute(db, Self.lookalikes.map(\.sql).joined(separator: ";\n"))

            // When: migrating
            let result = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: nothing is reused; each journey index is created beside its look-alike, which stays
            #expect(result.status == 0, "\(result)")
            let report = try #require(try result.jsonObject()["migration"] as? [String: Any])
            #expect((report["indexes_reused"] as? [Any])?.isEmpty == true, "\(result)")
            for lookalike in Self.lookalikes {
                #expect((report["indexes_created"] as? [String] ?? []).contains(lookalike.notReplacing), "\(lookalike.sql): \(result)")
                let name = String(lookalike.sql.split(separator: " ")[2])
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = ?", arguments: [name]) == 1)
            }
        }
    }

    @Test("an index of the platform under the journey's name but on other keys is kept, and the journey's is made as journey_<name>")
    func journeyNameTaken() async throws {
        try await withWorkspace { workspace in
            // Given: the platform's own idx_posts_user_id, on posts(visibility)
            let db = try await workspace.platformDatabase(migrated: false)
            try Direct.execute(db, "CREATE INDEX idx_posts_user_id ON posts(visibility)")

            // When: migrating
            let result = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: posts(user_id) gets journey_idx_posts_user_id; the platform's index stays and serves posts(visibility)
            #expect(result.status == 0, "\(result)")
            let report = try #require(try result.jsonObject()["migration"] as? [String: Any])
            #expect((report["indexes_created"] as? [String] ?? []).contains("journey_idx_posts_user_id"), "\(result)")
            let reused = try #require(report["indexes_reused"] as? [[String: String]])
            #expect(reused.map { $0["existing"] } == ["idx_posts_user_id"] && reused.map { $0["wanted"] } == ["idx_posts_visibility"], "\(result)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM pragma_index_info('journey_idx_posts_user_id') WHERE name = 'user_id'") == 1)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM pragma_index_info('idx_posts_user_id') WHERE name = 'visibility'") == 1)
        }
    }

    @Test("a column declared COLLATE NOCASE: its NOCASE index is the same index (SQLite would build ours NOCASE too)")
    func declaredCollation() async throws {
        try await withWorkspace { workspace in
            // Given: a platform users table whose email column is declared NOCASE, with an index on it
            let db = workspace.path("nocase.sqlite")
            try Direct.execute(
                db,
                """
                CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, city TEXT, country TEXT, role TEXT,
                    subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT);
                CREATE INDEX users_email ON users(email);
                """)

            // When: migrating
            let result = try await workspace.journey(["migrate", "--db", db, "--json"])

            // Then: users_email is reused for idx_users_email
            #expect(result.status == 0, "\(result)")
            let reused = try #require((try result.jsonObject()["migration"] as? [String: Any])?["indexes_reused"] as? [[String: String]])
            #expect(reused.contains { $0["existing"] == "users_email" && $0["wanted"] == "idx_users_email" }, "\(result)")
        }
    }
}
