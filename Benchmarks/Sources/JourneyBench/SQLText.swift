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

    /// `snapshot` for the sqlite3 shell, which lacks the store's `journey_instant`: timestamps
    /// compared as text, as the platform's own queries do (right on canonical data only, which
    /// is what the benchmark generates).
    static let snapshotForShell = snapshot
        .replacingOccurrences(of: "journey_instant(p.created_at) >= :since", with: "p.created_at >= :since")
        .replacingOccurrences(of: "journey_instant(e.start_date) <= :now", with: "e.start_date <= :now")

    /// The platform's own detection: the user row, then one COUNT per metric, each its own statement.
    static let platformUser = "SELECT id, role, subscription_tier, is_onboarding_complete, created_at FROM users WHERE id = ?"
    static let platformCounts: [(metric: String, sql: String)] = [
        ("posts", "SELECT COUNT(*) FROM posts WHERE user_id = ?"),
        ("followers", "SELECT COUNT(*) FROM follows WHERE following_id = ?"),
        ("following", "SELECT COUNT(*) FROM follows WHERE follower_id = ?"),
        ("events_organized", "SELECT COUNT(*) FROM events WHERE organizer_id = ?"),
        ("events_attended", "SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id WHERE r.user_id = ? AND r.status = 'going' AND e.start_date <= ?"),
    ]

    /// The migrator's statements (`JourneyMigrations`), in its transactions (less the schema repair and index reuse, no-ops on a generated file), for the sqlite3
    /// shell, on a platform file that lacks the three journey columns. `now` is the backfill instant.
    static func migrationScript(now: String, pragmas: [String]) -> String {
        let transactions = [
            JourneyMigrations.platformTablesSQL,
            (JourneyMigrations.journeyColumnsSQL.map(\.sql) + [JourneyMigrations.backfillSQL.replacingOccurrences(of: "?", with: "'\(now)'")])
                .joined(separator: ";\n"),
            JourneyMigrations.platformIndexSQL.joined(separator: ";\n"),
            JourneyMigrations.followerCountSQL,
            JourneyMigrations.journeyTablesSQL,
            JourneyMigrations.userCountTriggersSQL,
        ]
        return pragmas.map { $0 + ";\n" }.joined() + transactions.map { "BEGIN IMMEDIATE;\n\($0);\nCOMMIT;\n" }.joined()
    }
}
