import Foundation
import GRDB
import JourneyStorage

/// The schema of SPEC §3, as migrations that also upgrade an existing platform database.
///
/// Migrations are named by string literals and never edited once shipped (but for
/// `v1 platform indexes`, which now skips what used to fail); they name tables
/// by their SQL names, never by application types. Their statements are public so that other
/// tools (the benchmark's sqlite3-shell comparison) run exactly these.
public enum JourneyMigrations {
    /// The indexes the platform needs, by name: (table, columns).
    public static let platformIndexes: [(name: String, table: String, columns: String)] = [
        ("idx_posts_user_id", "posts", "user_id"),
        ("idx_posts_created_at", "posts", "created_at DESC"),
        ("idx_posts_user_created", "posts", "user_id, created_at DESC"),
        ("idx_posts_visibility", "posts", "visibility"),
        ("idx_users_journey_state", "users", "customer_journey_state"),
        ("idx_users_email", "users", "email"),
        ("idx_users_city_country", "users", "city, country"),
        ("idx_follows_follower", "follows", "follower_id"),
        ("idx_follows_following", "follows", "following_id"),
        ("idx_follows_pair", "follows", "follower_id, following_id"),
        ("idx_events_start_date", "events", "start_date"),
        ("idx_events_organizer", "events", "organizer_id"),
        ("idx_events_city", "events", "city"),
        ("idx_event_rsvps_user", "event_rsvps", "user_id"),
        ("idx_event_rsvps_event", "event_rsvps", "event_id"),
    ]

    /// The platform's five tables (SPEC §3). Migrating creates those missing (an empty file gets all
    /// five); opening a database that lacks any throws ``StorageError/platformTablesMissing(path:tables:)``.
    public static let platformTables = ["users", "posts", "follows", "events", "event_rsvps"]

    /// The platform's five tables, created only where missing (an empty file).
    public static let platformTablesSQL = """
        CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY,
            email TEXT, city TEXT, country TEXT, role TEXT, subscription_tier TEXT,
            is_onboarding_complete INTEGER, created_at TEXT,
            customer_journey_state TEXT NOT NULL DEFAULT 'J1_NEW_USER',
            last_journey_update TEXT,
            follower_count INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS posts (
            id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT,
            visibility TEXT, created_at TEXT);
        CREATE TABLE IF NOT EXISTS follows (
            id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL,
            created_at TEXT, UNIQUE(follower_id, following_id));
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
        CREATE TABLE IF NOT EXISTS event_rsvps (
            id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
            status TEXT, created_at TEXT);
        """

    /// The three journey columns of `users`, each added only where missing; then the backfill.
    public static let journeyColumnsSQL: [(column: String, sql: String)] = [
        ("customer_journey_state", "ALTER TABLE users ADD COLUMN customer_journey_state TEXT NOT NULL DEFAULT 'J1_NEW_USER'"),
        ("last_journey_update", "ALTER TABLE users ADD COLUMN last_journey_update TEXT"),
        ("follower_count", "ALTER TABLE users ADD COLUMN follower_count INTEGER NOT NULL DEFAULT 0"),
    ]

    /// `last_journey_update` backfilled with `created_at`, or the migration time (the argument).
    public static let backfillSQL = "UPDATE users SET last_journey_update = COALESCE(created_at, ?) WHERE last_journey_update IS NULL"

    /// Rewrites every `last_journey_update` that is not canonical as canonical UTC text
    /// (`YYYY-MM-DD HH:MM:SS.SSS`). An unreadable one that v1 copied from an unreadable `created_at`
    /// becomes the migration time (the argument), as SPEC §3 says for a missing `created_at`; any
    /// other unreadable value is left for `doctor` to report. Needs the store's SQL functions
    /// (``SQLiteStore/prepare(_:)``).
    public static let canonicalLastUpdateSQL = """
        UPDATE users SET last_journey_update = COALESCE(
            strftime('%Y-%m-%d %H:%M:%f', journey_instant(last_journey_update), 'unixepoch'),
            CASE WHEN last_journey_update IS created_at THEN ? ELSE last_journey_update END)
        WHERE last_journey_update IS NOT NULL AND journey_timestamp_form(last_journey_update) <> 'canonical'
        """

    /// The fifteen platform indexes, each created only where missing.
    public static var platformIndexSQL: [String] {
        platformIndexes.map { "CREATE INDEX IF NOT EXISTS \($0.name) ON \($0.table)(\($0.columns))" }
    }

    /// `follower_count` filled, and the triggers that keep it exact for every writer.
    public static let followerCountSQL = """
        UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = users.id);
        CREATE TRIGGER journey_follows_insert AFTER INSERT ON follows BEGIN
            UPDATE users SET follower_count = follower_count + 1 WHERE id = NEW.following_id;
        END;
        CREATE TRIGGER journey_follows_delete AFTER DELETE ON follows BEGIN
            UPDATE users SET follower_count = follower_count - 1 WHERE id = OLD.following_id;
        END;
        CREATE TRIGGER journey_follows_update AFTER UPDATE OF following_id ON follows
        WHEN OLD.following_id IS NOT NEW.following_id BEGIN
            UPDATE users SET follower_count = follower_count - 1 WHERE id = OLD.following_id;
            UPDATE users SET follower_count = follower_count + 1 WHERE id = NEW.following_id;
        END;
        """

    /// Triggers on `users` that keep `follower_count` exact whatever writes the user row: an
    /// insert (a new user, a follows row written first, an `INSERT OR REPLACE` that deleted the
    /// row and inserted it again with the default 0) and a change of id recount the user's
    /// followers through the `follows(following_id)` index; then every count is made exact once.
    public static let userCountTriggersSQL = """
        CREATE TRIGGER journey_users_insert AFTER INSERT ON users BEGIN
            UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = NEW.id) WHERE id = NEW.id;
        END;
        CREATE TRIGGER journey_users_id_update AFTER UPDATE OF id ON users
        WHEN OLD.id IS NOT NEW.id BEGIN
            UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = NEW.id) WHERE id = NEW.id;
        END;
        UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
        WHERE follower_count IS NOT (SELECT COUNT(*) FROM follows WHERE following_id = users.id);
        """

    /// The journey's own tables: history, pins, batch runs.
    public static let journeyTablesSQL = """
        CREATE TABLE journey_transitions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            from_state TEXT NOT NULL,
            to_state TEXT NOT NULL CHECK (to_state <> from_state),
            reason TEXT NOT NULL,
            rules_version TEXT NOT NULL,
            metrics TEXT NOT NULL CHECK (json_valid(metrics)),
            source TEXT NOT NULL CHECK (source IN ('api', 'cli', 'batch')),
            created_at TEXT NOT NULL,
            UNIQUE (user_id, seq));
        CREATE INDEX idx_journey_transitions_created ON journey_transitions(created_at);
        CREATE TABLE journey_pins (
            user_id INTEGER PRIMARY KEY,
            stage TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (length(reason) > 0),
            created_at TEXT NOT NULL);
        CREATE TABLE journey_batch_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
            rules_version TEXT NOT NULL,
            users_seen INTEGER NOT NULL DEFAULT 0,
            transitions INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            pid INTEGER,
            last_user_id INTEGER);
        """

    /// The batch lease: an owner token, who holds it, and until when. At most one run is `running`
    /// (a partial unique index); runs left `running` from before leases, all but the newest, are
    /// closed as interrupted first (the newest has no lease and is taken over by the next run).
    public static let batchLeaseSQL = """
        ALTER TABLE journey_batch_runs ADD COLUMN owner TEXT;
        ALTER TABLE journey_batch_runs ADD COLUMN holder TEXT;
        ALTER TABLE journey_batch_runs ADD COLUMN lease_expires_at TEXT;
        UPDATE journey_batch_runs SET status = 'interrupted', error = 'left running before batch leases existed'
        WHERE status = 'running' AND id < (SELECT MAX(id) FROM journey_batch_runs WHERE status = 'running');
        CREATE UNIQUE INDEX journey_batch_runs_one_running ON journey_batch_runs(status) WHERE status = 'running';
        """

    /// `journey_pin_events`: one row per pin, re-pin or unpin, written by triggers so that every
    /// writer, in any process, records it; the feed reads it by id to invalidate caches.
    public static let pinEventsSQL = """
        CREATE TABLE journey_pin_events (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL,
            pinned INTEGER NOT NULL CHECK (pinned IN (0, 1)),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')));
        CREATE TRIGGER journey_pins_insert_event AFTER INSERT ON journey_pins BEGIN
            INSERT INTO journey_pin_events(user_id, pinned) VALUES (NEW.user_id, 1);
        END;
        CREATE TRIGGER journey_pins_update_event AFTER UPDATE ON journey_pins BEGIN
            INSERT INTO journey_pin_events(user_id, pinned) VALUES (OLD.user_id, 0);
            INSERT INTO journey_pin_events(user_id, pinned) VALUES (NEW.user_id, 1);
        END;
        CREATE TRIGGER journey_pins_delete_event AFTER DELETE ON journey_pins BEGIN
            INSERT INTO journey_pin_events(user_id, pinned) VALUES (OLD.user_id, 0);
        END;
        """

    /// `journey_rules`: every adopted rule set (version, YAML text, file, time); the highest id is in force.
    public static let adoptedRulesSQL = """
        CREATE TABLE journey_rules (
            id INTEGER PRIMARY KEY,
            version TEXT NOT NULL,
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            adopted_at TEXT NOT NULL);
        """

    /// The triggers that keep `users.follower_count` exact: on `follows`, and on `users` itself.
    static let followerCountTriggers = [
        "journey_follows_insert", "journey_follows_delete", "journey_follows_update", "journey_users_insert", "journey_users_id_update",
    ]

    /// Journey's triggers on the platform's tables, in the sets made together, each with the SQL
    /// that makes its set again and recounts what the set keeps exact. A platform that rebuilds
    /// one of its tables (SQLite's "new table, copy, drop, rename") drops the triggers on it, and
    /// one that renames a table rewrites the triggers that name it: the metrics then stop trusting
    /// what they kept (``TimestampForms``), `doctor` names them, and `migrate` makes those sets
    /// again (``repairPlatformObjects(_:)``).
    static let platformTriggerSets: [(names: [String], sql: String)] =
        [
            (Array(followerCountTriggers[..<3]), followerCountSQL),
            (Array(followerCountTriggers[3...]), userCountTriggersSQL),
        ]
        + TimestampForms.watched.map { table, column in
            (
                TimestampForms.triggerNames(table: table, column: column),
                "DELETE FROM journey_timestamp_columns WHERE table_name = '\(table)' AND column_name = '\(column)';\n"
                    + TimestampForms.countSQL(table: table, column: column)
            )
        }

    /// Each trigger of ``platformTriggerSets`` by name, with the `CREATE TRIGGER` statement SQLite
    /// keeps for it in `sqlite_master` (the text as written, without its semicolon).
    static let platformTriggerSQL: [String: String] = Dictionary(
        uniqueKeysWithValues: platformTriggerSets.flatMap { set in
            set.sql.matches(of: /CREATE TRIGGER (\w+)[\s\S]*?\bEND(?=;)/).map { (String($0.output.1), String($0.output.0)) }
        })

    /// The triggers of ``platformTriggerSets`` that are gone, or whose SQL is no longer what
    /// Journey made: SQLite rewrites a trigger's table names when a table it names is renamed
    /// (a platform that renames `follows` away before dropping it leaves Journey's trigger on
    /// `users` reading the dropped table, and every insert into `users` failing).
    static func brokenPlatformTriggers(_ db: Database) throws -> [String] {
        var stored: [String: String] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT lower(name), sql FROM sqlite_master WHERE type = 'trigger'")) {
            stored[row[0]] = row[1]
        }
        return platformTriggerSets.flatMap(\.names).filter { stored[$0] != platformTriggerSQL[$0] }
    }

    /// Makes again what a rebuild of a platform table dropped, after every migration has run: each
    /// trigger set of ``platformTriggerSets`` with a trigger gone or changed (``brokenPlatformTriggers(_:)``;
    /// its counts recomputed), and the
    /// platform indexes of SPEC §3 (``reuseEquivalentIndexes(_:log:)``, whose notes, made when the
    /// indexes were first made, are not repeated). Changes nothing on a file that lost nothing.
    static func repairPlatformObjects(_ db: Database) throws {
        let broken = Set(try brokenPlatformTriggers(db))
        for set in platformTriggerSets where set.names.contains(where: broken.contains) {
            for name in set.names { try db.execute(sql: "DROP TRIGGER IF EXISTS \(name)") }
            try db.execute(sql: set.sql)
        }
        try reuseEquivalentIndexes(db, log: MigrationLog())
    }

    /// The migrations in order; `log` collects what they note for the ``MigrationReport``.
    static func migrator(now: Date, log: MigrationLog = MigrationLog()) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Each migration notes its own change to the schema, read in its own transaction, once that
        // transaction commits (MigrationLog): a try that another process's migration makes fail (a
        // UNIQUE failure on GRDB's own record of it) rolls back, and is not this process's change.
        func register(
            _ identifier: String, foreignKeyChecks: DatabaseMigrator.ForeignKeyChecks = .deferred,
            _ migrate: @escaping @Sendable (Database) throws -> Void
        ) {
            migrator.registerMigration(identifier, foreignKeyChecks: foreignKeyChecks) { db in
                let before = try SchemaObjects.read(db)
                try migrate(db)
                let after = try SchemaObjects.read(db)
                db.afterNextTransaction { _ in log.changed(identifier, from: before, to: after) }
            }
        }

        // An empty file gets the platform's tables; an existing platform database keeps its own.
        register("v1 platform tables") { db in
            try db.execute(sql: platformTablesSQL)
        }

        // SQLite cannot add a column whose default is not constant: add, then backfill.
        register("v1 journey columns") { db in
            let columns = Set(try db.columns(in: "users").map { $0.name.lowercased() })
            for (column, sql) in journeyColumnsSQL where !columns.contains(column) {
                try db.execute(sql: sql)
            }
            try db.execute(sql: backfillSQL, arguments: [now])
        }

        // An index on a column the platform lacks is skipped, not an error: none of the
        // metrics' columns (``PlatformSchema/metricColumns``, checked before migrating) is one.
        // This step once failed on such a platform; where it ran, it created every index.
        register("v1 platform indexes") { db in
            for (index, statement) in zip(platformIndexes, platformIndexSQL) where try !skipsIndex(index, db, log: log) {
                try db.execute(sql: statement)
            }
        }

        // The denormalized follower count: filled once, then kept exact by triggers for every writer.
        register("v1 follower count") { db in
            try db.execute(sql: followerCountSQL)
        }

        register("v1 journey tables") { db in
            try db.execute(sql: journeyTablesSQL)
        }

        // Journey's own column is always canonical text (SPEC §8): the v1 backfill copied
        // `created_at` as the platform stored it (an epoch number, ISO-8601 with an offset).
        register("v2 canonical last_journey_update") { db in
            try db.execute(sql: canonicalLastUpdateSQL, arguments: [now])
        }

        // The batch lock as a lease instead of a process id (see BatchLease).
        register("v2 batch lease") { db in
            try db.execute(sql: batchLeaseSQL)
        }

        // A platform table that already had a nullable stage or count column: the schema a fresh file gets.
        register("v2 journey column schema", foreignKeyChecks: .deferred) { db in
            try repairUserColumns(db, log: log)
        }

        // follower_count exact when the user row itself is replaced, re-inserted or renumbered.
        register("v2 follower count on user writes") { db in
            try db.execute(sql: userCountTriggersSQL)
        }

        // One index per need: the platform's own equivalent index is reused, the journey's copy dropped.
        register("v2 reuse equivalent indexes") { db in
            try reuseEquivalentIndexes(db, log: log)
        }

        // Which timestamp columns hold only canonical text, so the metrics compare those as text.
        register("v2 timestamp form counts") { db in
            try db.execute(sql: TimestampForms.installSQL)
        }

        // Pins made by any process reach the feed: triggers log every change to journey_pins.
        register("v2 pin events") { db in
            try db.execute(sql: pinEventsSQL)
        }

        // One rule set for every caller: each adoption is a row, the newest is in force.
        register("v2 adopted rules") { db in
            try db.execute(sql: adoptedRulesSQL)
        }
        return migrator
    }
}
