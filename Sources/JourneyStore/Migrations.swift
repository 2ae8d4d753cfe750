import GRDB
import Foundation

/// The schema of SPEC §3, as migrations that also upgrade an existing platform database.
///
/// Migrations are named by string literals and never edited once shipped; they name tables
/// by their SQL names, never by application types.
enum JourneyMigrations {
    /// The indexes the platform needs, by name: (table, columns).
    static let platformIndexes: [(name: String, table: String, columns: String)] = [
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

    static let platformTables = ["users", "posts", "follows", "events", "event_rsvps"]

    static func migrator(now: Date) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()

        // An empty file gets the platform's tables; an existing platform database keeps its own.
        migrator.registerMigration("v1 platform tables") { db in
            try db.execute(sql: """
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
                """)
        }

        // SQLite cannot add a column whose default is not constant: add, then backfill.
        migrator.registerMigration("v1 journey columns") { db in
            let columns = Set(try db.columns(in: "users").map { $0.name.lowercased() })
            if !columns.contains("customer_journey_state") {
                try db.execute(sql: "ALTER TABLE users ADD COLUMN customer_journey_state TEXT NOT NULL DEFAULT 'J1_NEW_USER'")
            }
            if !columns.contains("last_journey_update") {
                try db.execute(sql: "ALTER TABLE users ADD COLUMN last_journey_update TEXT")
            }
            try db.execute(sql: "UPDATE users SET last_journey_update = COALESCE(created_at, ?) WHERE last_journey_update IS NULL",
                           arguments: [now])
            if !columns.contains("follower_count") {
                try db.execute(sql: "ALTER TABLE users ADD COLUMN follower_count INTEGER NOT NULL DEFAULT 0")
            }
        }

        migrator.registerMigration("v1 platform indexes") { db in
            for index in platformIndexes {
                try db.execute(sql: "CREATE INDEX IF NOT EXISTS \(index.name) ON \(index.table)(\(index.columns))")
            }
        }

        // The denormalized follower count: filled once, then kept exact by triggers for every writer.
        migrator.registerMigration("v1 follower count") { db in
            try db.execute(sql: """
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
                """)
        }

        migrator.registerMigration("v1 journey tables") { db in
            try db.execute(sql: """
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
                """)
        }
        return migrator
    }
}
