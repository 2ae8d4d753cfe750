import Foundation
import GRDB
import JourneySQLite

/// SQL text the benchmark runs outside the library: the library's own metrics statements (to run
/// them through the raw C API and the sqlite3 shell), and the platform's separate counts.
enum SQLText {
    /// The library's one-user statement for canonical columns: the variant it runs on the generated
    /// files, which hold canonical text alone (EvaluateBench checks it against `snapshot(user:now:)`,
    /// which picks the variant from the file's own counts). Bind ``window``.
    static let snapshot = SQLiteStore.snapshotSQL(.canonical)

    /// The window arguments of ``snapshot`` and ``chunk`` at the data's `now`.
    static var window: [String: (any DatabaseValueConvertible)?] { SQLiteStore.windowArguments(now: dataNow, forms: .canonical) }

    /// The same statement, but counting the user's follows rows instead of reading `users.follower_count`
    /// (the column, or the count where the column is not an integer: the library's `followersSQL`).
    ///
    /// - throws: when the followers expression is not found exactly once in `snapshot`.
    static var snapshotCountingFollowers: String {
        get throws {
            try replacingOnce(
                in: snapshot, what: "snapshotSQL's followers expression",
                pattern:
                    #"CASE WHEN typeof\(u\.follower_count\) = 'integer' THEN u\.follower_count\s+ELSE \(SELECT COUNT\(\*\) FROM follows WHERE following_id = u\.id\) END AS follower_count,"#,
                with: "(SELECT COUNT(*) FROM follows fw WHERE fw.following_id = u.id) AS follower_count,")
        }
    }

    /// Column positions in `snapshot`, `snapshotCountingFollowers`, `legacySnapshot`, and in the chunk statements.
    enum Column {
        static let followerCount: Int32 = 7, posts: Int32 = 8, recent: Int32 = 9, following: Int32 = 10, organized: Int32 = 11, attended: Int32 = 12
    }

    /// The library's chunk statement for canonical columns (see ``snapshot``).
    static let chunk = SQLiteStore.chunkSQL(.canonical)

    /// `sql` with the one match of `pattern` (a regular expression) replaced by `replacement`.
    ///
    /// - throws: when `pattern` matches no text or more than once: the library's SQL changed, and
    ///   the statement derived from it would silently be something else.
    static func replacingOnce(in sql: String, what: String, pattern: String, with replacement: String) throws -> String {
        let matches = sql.matches(of: try Regex(pattern))
        guard matches.count == 1, let match = matches.first else {
            throw SpawnError(
                description:
                    "SQLText: \(what) (/\(pattern)/) occurs \(matches.count) times in the library's statement (expected once); update Benchmarks/Sources/JourneyBench/SQLText.swift:\n\(sql)"
            )
        }
        return sql.replacingCharacters(in: match.range, with: replacement)
    }

    // MARK: - The statements before SPEC §8

    // The library's two metrics statements exactly as they were before the SPEC §8 work (timestamps in
    // every form), at commit f9e1598 (`git show f9e1598:Sources/JourneySQLite/UserSnapshot.swift` and
    // `…/BatchRuns.swift`): timestamps compared as text with text bounds, `:now` with milliseconds and
    // `:since` in whole seconds (`legacyWindowArguments`). Right on canonical data only. Kept as literal
    // text, not derived from the library's statements, so that they stay the same baseline whatever the
    // library becomes; they select the same sixteen columns in the same order (no unreadable counts).

    /// `snapshotSQL` at f9e1598. Also what the sqlite3 shell runs (CLIBench): the shell lacks
    /// `journey_instant`, which the library's statement names even in the branch it does not take.
    static let legacySnapshot = """
        SELECT u.id, u.customer_journey_state, COALESCE(u.last_journey_update, u.created_at) AS last_journey_update, u.created_at,
               u.is_onboarding_complete, u.subscription_tier, u.role, u.follower_count,
               (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id) AS posts,
               (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id AND p.created_at >= :since) AS posts_recent,
               (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) AS following,
               (SELECT COUNT(*) FROM events e WHERE e.organizer_id = u.id) AS organized,
               (SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id
                 WHERE r.user_id = u.id AND r.status = 'going' AND e.start_date <= :now) AS attended,
               pin.stage AS pin_stage, pin.reason AS pin_reason, pin.created_at AS pin_created_at
        FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id
        WHERE u.id = :user
        """

    /// `chunkSQL` at f9e1598.
    static let legacyChunk = """
        SELECT u.id, u.customer_journey_state, COALESCE(u.last_journey_update, u.created_at) AS last_journey_update, u.created_at,
               u.is_onboarding_complete, u.subscription_tier, u.role, u.follower_count,
               COALESCE(p.posts, 0) AS posts, COALESCE(p.recent, 0) AS posts_recent,
               COALESCE(f.following, 0) AS following, COALESCE(e.organized, 0) AS organized,
               COALESCE(a.attended, 0) AS attended,
               pin.stage AS pin_stage, pin.reason AS pin_reason, pin.created_at AS pin_created_at
        FROM users u
        LEFT JOIN (SELECT user_id, COUNT(*) AS posts, SUM(created_at >= :since) AS recent
                   FROM posts WHERE user_id BETWEEN :low AND :high GROUP BY user_id) p ON p.user_id = u.id
        LEFT JOIN (SELECT follower_id, COUNT(*) AS following
                   FROM follows WHERE follower_id BETWEEN :low AND :high GROUP BY follower_id) f ON f.follower_id = u.id
        LEFT JOIN (SELECT organizer_id, COUNT(*) AS organized
                   FROM events WHERE organizer_id BETWEEN :low AND :high GROUP BY organizer_id) e ON e.organizer_id = u.id
        LEFT JOIN (SELECT r.user_id, COUNT(*) AS attended
                   FROM event_rsvps r JOIN events ev ON ev.id = r.event_id
                   WHERE r.user_id BETWEEN :low AND :high AND r.status = 'going' AND ev.start_date <= :now
                   GROUP BY r.user_id) a ON a.user_id = u.id
        LEFT JOIN journey_pins pin ON pin.user_id = u.id
        WHERE u.id BETWEEN :low AND :high
        ORDER BY u.id
        """

    /// What `legacySnapshot` and `legacyChunk` bind at `now`, as the library bound them at f9e1598:
    /// `:now` as text with milliseconds, `:since` (30 days before) in whole seconds: the library's
    /// own `:now_text` and `:since_text` today.
    static func legacyWindowArguments(now: Date) -> [String: (any DatabaseValueConvertible)?] {
        let window = SQLiteStore.windowArguments(now: now)
        return ["now": window["now_text"] ?? nil, "since": window["since_text"] ?? nil]
    }

    /// The platform's own detection: the user row, then one COUNT per metric, each its own statement.
    static let platformUser = "SELECT id, role, subscription_tier, is_onboarding_complete, created_at FROM users WHERE id = ?"
    static let platformCounts: [(metric: String, sql: String)] = [
        ("posts", "SELECT COUNT(*) FROM posts WHERE user_id = ?"),
        ("followers", "SELECT COUNT(*) FROM follows WHERE following_id = ?"),
        ("following", "SELECT COUNT(*) FROM follows WHERE follower_id = ?"),
        ("events_organized", "SELECT COUNT(*) FROM events WHERE organizer_id = ?"),
        (
            "events_attended",
            "SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id WHERE r.user_id = ? AND r.status = 'going' AND e.start_date <= ?"
        ),
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
