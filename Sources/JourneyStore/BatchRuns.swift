import Foundation
import GRDB

/// One row of `journey_batch_runs`.
public struct BatchRun: Hashable, Sendable, Codable, FetchableRecord {
    public var id: Int64
    public var startedAt: Date
    public var finishedAt: Date?
    /// `running`, `finished`, `failed`, or `interrupted` (its process died; seen by the next run).
    public var status: String
    public var rulesVersion: String
    public var usersSeen: Int
    public var transitions: Int
    public var error: String?
    public var pid: Int32?
    /// The last user whose chunk committed.
    public var lastUserID: Int64?

    enum CodingKeys: String, CodingKey {
        case id, startedAt = "started_at", finishedAt = "finished_at", status, rulesVersion = "rules_version"
        case usersSeen = "users_seen", transitions, error, pid, lastUserID = "last_user_id"
    }
}

/// How far a batch run has come; written in the same transaction as each chunk's moves.
public struct BatchProgress: Sendable {
    public let runID: Int64
    public let lastUserID: Int64
    public let usersSeen: Int
    public let transitions: Int

    public init(runID: Int64, lastUserID: Int64, usersSeen: Int, transitions: Int) {
        self.runID = runID
        self.lastUserID = lastUserID
        self.usersSeen = usersSeen
        self.transitions = transitions
    }
}

extension JourneyDatabase {
    /// Takes the batch lock: records a `running` run for this process.
    ///
    /// A `running` run whose process is gone is marked `interrupted` and taken over.
    /// - throws: ``StoreError/batchRunning(runID:pid:startedAt:)`` while another batch is alive.
    public func beginBatchRun(rulesVersion: String, pid: Int32, now: Date, isAlive: @Sendable (Int32) -> Bool) async throws(StoreError) -> Int64 {
        try await immediateWrite { db in
            for run in try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs WHERE status = 'running'") {
                if let other = run.pid, other != pid, isAlive(other) {
                    throw StoreError.batchRunning(runID: run.id, pid: other, startedAt: String(describing: run.startedAt))
                }
                try db.execute(sql: """
                    UPDATE journey_batch_runs SET status = 'interrupted', error = ? WHERE id = ?
                    """, arguments: ["process \(run.pid ?? 0) ended before the run finished (killed?)", run.id])
            }
            try db.execute(sql: """
                INSERT INTO journey_batch_runs(started_at, status, rules_version, pid) VALUES (?, 'running', ?, ?)
                """, arguments: [now, rulesVersion, pid])
            return db.lastInsertedRowID
        }
    }

    /// Closes a run as `finished` or `failed`.
    public func finishBatchRun(id: Int64, failed error: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StoreError) {
        try await immediateWrite { db in
            try db.execute(sql: """
                UPDATE journey_batch_runs SET status = ?, finished_at = ?, users_seen = ?, transitions = ?, error = ?
                WHERE id = ?
                """, arguments: [error == nil ? "finished" : "failed", now, usersSeen, transitions, error, id])
        }
    }

    /// The most recent runs, newest first.
    public func batchRuns(limit: Int) async throws(StoreError) -> [BatchRun] {
        try await read { db in
            try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs ORDER BY id DESC LIMIT ?", arguments: [limit])
        }
    }

    static func record(_ progress: BatchProgress, recorded: Int, _ db: Database) throws {
        try db.execute(sql: """
            UPDATE journey_batch_runs SET last_user_id = ?, users_seen = ?, transitions = ? WHERE id = ?
            """, arguments: [progress.lastUserID, progress.usersSeen, progress.transitions + recorded, progress.runID])
    }

    /// The snapshots of the next `limit` users after `after`, by id, in two statements:
    /// the chunk's last id, then every metric aggregated over the id range at once.
    public func chunk(after: Int64, limit: Int, now: Date) async throws(StoreError) -> [UserSnapshot] {
        try await read { db in
            guard let last = try Int64.fetchOne(db, sql: """
                SELECT MAX(id) FROM (SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?)
                """, arguments: [after, limit]) else { return [] }
            var arguments = Self.windowArguments(now: now)
            arguments["low"] = after + 1
            arguments["high"] = last
            return try Row.fetchAll(db.cachedStatement(sql: Self.chunkSQL), arguments: StatementArguments(arguments)).map(UserSnapshot.init(row:))
        }
    }

    /// Every metric of the users with ids in [low, high], each table read once by index range.
    public static let chunkSQL = """
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
}
