import Foundation
import JourneyStore

/// SQL text the benchmark runs outside the library: the library's own metrics statements (to run
/// them through the raw C API and the sqlite3 shell), and the platform's separate counts.
enum SQLText {
    static let snapshot = JourneyDatabase.snapshotSQL

    /// The same statement, but counting the user's follows rows instead of reading `users.follower_count`.
    static let snapshotCountingFollowers = snapshot.replacingOccurrences(
        of: "u.role, u.follower_count,",
        with: "u.role, (SELECT COUNT(*) FROM follows fw WHERE fw.following_id = u.id) AS follower_count,")

    /// Column positions in `snapshot` (and in `snapshotCountingFollowers`).
    enum Column {
        static let followerCount: Int32 = 7, posts: Int32 = 8, recent: Int32 = 9, following: Int32 = 10, organized: Int32 = 11, attended: Int32 = 12
    }

    static let chunk = JourneyDatabase.chunkSQL

    /// The platform's own detection: the user row, then one COUNT per metric, each its own statement.
    static let platformUser = "SELECT id, role, subscription_tier, is_onboarding_complete, created_at FROM users WHERE id = ?"
    static let platformCounts: [(metric: String, sql: String)] = [
        ("posts", "SELECT COUNT(*) FROM posts WHERE user_id = ?"),
        ("followers", "SELECT COUNT(*) FROM follows WHERE following_id = ?"),
        ("following", "SELECT COUNT(*) FROM follows WHERE follower_id = ?"),
        ("events_organized", "SELECT COUNT(*) FROM events WHERE organizer_id = ?"),
        ("events_attended", "SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id WHERE r.user_id = ? AND r.status = 'going' AND e.start_date <= ?"),
    ]

    /// The migrator's statements (Sources/JourneyStore/Migrations.swift), in its five transactions,
    /// for the sqlite3 shell. `now` is the backfill instant the library is given.
    static func migrationScript(now: String, pragmas: [String]) -> String {
        let indexes: [(String, String, String)] = [
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
        return pragmas.map { $0 + ";" }.joined(separator: "\n") + """

            BEGIN IMMEDIATE;
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
            COMMIT;
            BEGIN IMMEDIATE;
            ALTER TABLE users ADD COLUMN customer_journey_state TEXT NOT NULL DEFAULT 'J1_NEW_USER';
            ALTER TABLE users ADD COLUMN last_journey_update TEXT;
            UPDATE users SET last_journey_update = COALESCE(created_at, '\(now)') WHERE last_journey_update IS NULL;
            ALTER TABLE users ADD COLUMN follower_count INTEGER NOT NULL DEFAULT 0;
            COMMIT;
            BEGIN IMMEDIATE;
            \(indexes.map { "CREATE INDEX IF NOT EXISTS \($0.0) ON \($0.1)(\($0.2));" }.joined(separator: "\n"))
            COMMIT;
            BEGIN IMMEDIATE;
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
            COMMIT;
            BEGIN IMMEDIATE;
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
            COMMIT;

            """
    }
}
