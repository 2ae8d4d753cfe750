import Foundation
import Testing

/// A platform whose tables lack columns SPEC §3 names, through the real `journey` binary, on a
/// SQLite file and (with `JOURNEY_TEST_POSTGRES_URL`) a PostgreSQL database written by psql: a
/// column only a platform index needs is no reason to refuse, a column the metrics read is, before
/// anything is changed.
@Suite("A platform's tables without some of SPEC §3's columns")
struct PlatformColumnsTests {
    /// Where the platform lives, as a test argument.
    enum Database: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgresql

        var testDescription: String { rawValue }

        static var available: [Database] { PostgresPlatform.server == nil ? [.sqlite] : allCases }
    }

    /// A platform database of `database`'s kind holding `sql` (portable SQL), made in `workspace`;
    /// `body` gets its location. A PostgreSQL database is dropped afterwards.
    static func withPlatform(
        _ database: Database, _ workspace: Workspace, _ sql: String, _ body: (String, PlatformFiles) async throws -> Void
    ) async throws {
        switch database {
        case .sqlite:
            let path = workspace.path("platform.sqlite")
            try Direct.execute(path, sql)
            try await body(path, PlatformFiles.sqlite(path))
        case .postgresql:
            let name = "journey_cols_\(UInt32.random(in: 0...UInt32.max))"
            let platform = PostgresPlatform(workspace: workspace, template: try PostgresPlatform.url(name), name: name)
            try await platform.sql(try #require(PostgresPlatform.server), "CREATE DATABASE \(name)")
            do {
                try await platform.sql(platform.template, sql)
                try await body(platform.template, PlatformFiles.postgres(platform))
            } catch {
                await platform.dropAll()
                throw error
            }
            await platform.dropAll()
        }
    }

    /// What a refused migrate must leave as it was: a SQLite file's bytes (and no `-wal`), or a
    /// PostgreSQL database's relations, functions and triggers.
    enum PlatformFiles {
        case sqlite(String)
        case postgres(PostgresPlatform)

        func snapshot() async throws -> [String] {
            switch self {
            case .sqlite(let path):
                let files = DatabaseFiles(path)
                return [files.main?.base64EncodedString() ?? "absent", "wal \(files.wal?.count ?? -1)", "shm \(files.shm?.count ?? -1)"]
            case .postgres(let platform):
                return try await platform.lines(
                    platform.template,
                    """
                    SELECT 'rel ' || relname || ' ' || relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE nspname = 'public'
                    UNION ALL SELECT 'fn ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'public'
                    UNION ALL SELECT 'col ' || table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'
                    ORDER BY 1
                    """)
            }
        }
    }

    /// The five platform tables, as `columns` gives them (table → column definitions), users 1 and
    /// 2 onboarded in 2020 with a post each and following each other (both fit J2), and an event.
    static func platformSQL(_ columns: [String: String]) -> String {
        """
        CREATE TABLE users (\(columns["users"]!));
        CREATE TABLE posts (\(columns["posts"]!));
        CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL);
        CREATE TABLE events (\(columns["events"]!));
        CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT);
        INSERT INTO users (id, email, role, subscription_tier, is_onboarding_complete, created_at) VALUES
            (1, 'a@x', 'user', 'free', TRUE, '2020-01-01 00:00:00'), (2, 'b@x', 'user', 'free', TRUE, '2020-01-01T00:00:00Z');
        INSERT INTO posts (id, user_id) VALUES (1, 1), (2, 2);
        INSERT INTO follows (id, follower_id, following_id) VALUES (1, 1, 2), (2, 2, 1);
        """
    }

    @Test(
        "no posts.visibility, users.city, users.country or events.city: migrate skips their indexes and says so; evaluate and batch work",
        arguments: Database.available)
    func indexOnlyColumnsMissing(_ database: Database) async throws {
        let sql = Self.platformSQL([
            "users": "id INTEGER PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT",
            "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, created_at TEXT",
            "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, start_date TEXT",
        ])
        try await withWorkspace { workspace in
            try await Self.withPlatform(database, workspace, sql) { db, _ in
                let migrated = try await workspace.journey(["migrate", "--db", db])
                try #require(migrated.status == 0, "\(migrated)")
                for line in [
                    "index skipped    idx_posts_visibility on posts(visibility): no column posts.visibility",
                    "index skipped    idx_users_city_country on users(city, country): no column users.city, users.country",
                    "index skipped    idx_events_city on events(city): no column events.city",
                ] {
                    #expect(migrated.stdout.contains(line), "\(migrated)")
                }
                #expect(migrated.stdout.contains("idx_posts_user_created"), "the other indexes are created: \(migrated)")

                let again = try await workspace.journey(["migrate", "--db", db, "--json"])
                let nothingToDo = try again.jsonObject()["nothing_to_do"] as? Bool
                #expect(again.status == 0 && nothingToDo == true, "\(again)")

                let evaluated = try await workspace.journey(["evaluate", "1", "--db", db, "--json"])
                let stage = try evaluated.jsonObject()["stage"] as? String
                #expect(evaluated.status == 0 && stage == "J2_ACTIVE_USER", "\(evaluated)")
                let batch = try await workspace.journey(["batch", "--db", db, "--json"])
                #expect(batch.status == 0, "\(batch)")
                let transitions = try batch.jsonObject()["transitions"] as? Int
                #expect(transitions == 1, "user 2 moves too: \(batch)")
            }
        }
    }

    /// Platform tables Journey cannot use as they are, what the refusal names, and the databases
    /// that can hold them (STRICT is SQLite's).
    static let unfitTables: [(name: String, sql: String, mentions: [String], databases: [Database])] = [
        (
            "no users.role and no posts.created_at",
            platformSQL([
                "users": "id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT",
                "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT",
                "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT",
            ]).replacingOccurrences(of: "(id, email, role, subscription_tier", with: "(id, email, city, subscription_tier"),
            ["no column users.role; no column posts.created_at"], Database.allCases
        ),
        (
            "ids declared as text",
            platformSQL([
                "users": "id VARCHAR(20) PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT",
                "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, visibility TEXT, created_at TEXT",
                "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, city TEXT, start_date TEXT",
            ]), ["users.id is declared"], Database.allCases
        ),
        (
            "uuid user ids",
            """
            CREATE TABLE users (id uuid PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT);
            CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id uuid NOT NULL, visibility TEXT, created_at TEXT);
            CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id uuid NOT NULL, following_id uuid NOT NULL);
            CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id uuid, city TEXT, start_date TEXT);
            CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id uuid NOT NULL, status TEXT);
            """, ["users.id is declared uuid", "integer ids"], [.postgresql]
        ),
        (
            "posts as a view",
            platformSQL([
                "users": "id INTEGER PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT",
                "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, visibility TEXT, created_at TEXT",
                "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, city TEXT, start_date TEXT",
            ]).replacingOccurrences(of: "CREATE TABLE posts (", with: "CREATE TABLE all_posts (")
                .replacingOccurrences(of: "INSERT INTO posts ", with: "INSERT INTO all_posts ")
                + "CREATE VIEW posts AS SELECT * FROM all_posts;", ["posts is a view"], Database.allCases
        ),
        (
            "a STRICT users table whose last_journey_update is INTEGER",
            platformSQL([
                "users":
                    "id INTEGER PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT, last_journey_update INTEGER) STRICT; SELECT (1",
                "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, visibility TEXT, created_at TEXT",
                "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, city TEXT, start_date TEXT",
            ]).replacingOccurrences(of: "TRUE", with: "1"), ["users.last_journey_update is declared INTEGER in a STRICT table"], [.sqlite]
        ),
    ]

    @Test("tables Journey cannot use as they are: migrate and evaluate refuse with one line naming why, and nothing is changed", arguments: unfitTables.indices)
    func unfitTablesAreRefused(_ index: Int) async throws {
        let unfit = Self.unfitTables[index]
        for database in Database.available where unfit.databases.contains(database) {
            try await withWorkspace { workspace in
                try await Self.withPlatform(database, workspace, unfit.sql) { db, files in
                    let before = try await files.snapshot()
                    expectCleanFailure(try await workspace.journey(["migrate", "--db", db]), status: 65, mentions: unfit.mentions + ["journey migrate"])
                    expectCleanFailure(try await workspace.journey(["migrate", "--db", db, "--json"]), status: 65, mentions: unfit.mentions)
                    expectCleanFailure(try await workspace.journey(["evaluate", "1", "--db", db]), status: 65, mentions: unfit.mentions)
                    let after = try await files.snapshot()
                    #expect(after == before, "\(unfit.name) on \(database): the refused database was changed")
                }
            }
        }
    }

    @Test(
        "PostgreSQL: a stage column of an enum type and a text last_journey_update are written as declared: the stage cast, the time canonical",
        .enabled(if: PostgresPlatform.server != nil, "JOURNEY_TEST_POSTGRES_URL is not set"))
    func enumStageAndTextLastUpdate() async throws {
        let sql =
            "CREATE TYPE journey_stage AS ENUM ('J1_NEW_USER', 'J2_ACTIVE_USER');"
            + Self.platformSQL([
                "users":
                    "id INTEGER PRIMARY KEY, email TEXT, role TEXT, subscription_tier TEXT, is_onboarding_complete BOOLEAN, created_at TEXT, customer_journey_state journey_stage NOT NULL DEFAULT 'J1_NEW_USER', last_journey_update TEXT",
                "posts": "id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, visibility TEXT, created_at TEXT",
                "events": "id INTEGER PRIMARY KEY, organizer_id INTEGER, city TEXT, start_date TEXT",
            ])
        try await withWorkspace { workspace in
            try await Self.withPlatform(.postgresql, workspace, sql) { db, files in
                guard case .postgres(let platform) = files else { Issue.record("not a PostgreSQL database"); return }
                let migrated = try await workspace.journey(["migrate", "--db", db])
                try #require(migrated.status == 0, "\(migrated)")
                let batch = try await workspace.journey(["batch", "--db", db, "--json"])
                #expect(batch.status == 0, "\(batch)")
                let rows = try await platform.lines(db, "SELECT id || ' ' || customer_journey_state || ' ' || last_journey_update FROM users ORDER BY id")
                #expect(rows.count == 2 && rows.allSatisfy { $0.contains(" J2_ACTIVE_USER ") }, "\(rows)")
                // canonical UTC text, milliseconds: YYYY-MM-DD HH:MM:SS.SSS
                #expect(
                    rows.allSatisfy {
                        $0.split(separator: " ").suffix(2).joined(separator: " ").wholeMatch(of: /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}/) != nil
                    },
                    "\(rows)")
            }
        }
    }
}
