import Foundation
import JourneyCore
import GRDB

/// One row of `journey_batch_runs`.
public struct BatchRun: Hashable, Sendable, Codable, FetchableRecord {
    /// The run's id, shown as `#N` by `journey status`.
    public var id: Int64
    /// When the run took the lease.
    public var startedAt: Date
    /// When it finished, failed, or was found interrupted; nil while running.
    public var finishedAt: Date?
    /// `running`, `finished`, `failed`, or `interrupted` (its lease expired or was taken over).
    public var status: String
    /// The `version` of the rules the run evaluated with.
    public var rulesVersion: String
    /// Users evaluated in the chunks committed so far.
    public var usersSeen: Int
    /// Moves recorded in the chunks committed so far.
    public var transitions: Int
    /// Why the run failed or was interrupted.
    public var error: String?
    /// The last user whose chunk committed.
    public var lastUserID: Int64?
    /// The random token of the process that holds (or held) the run's lease; nil for runs from before leases.
    public var owner: String?
    /// Who holds the lease, for people: `host pid 42`.
    public var holder: String?
    /// Until when the lease holds unless renewed; a `running` run past it is stale and taken over.
    public var leaseExpiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, startedAt = "started_at", finishedAt = "finished_at", status, rulesVersion = "rules_version"
        case usersSeen = "users_seen", transitions, error, lastUserID = "last_user_id"
        case owner, holder, leaseExpiresAt = "lease_expires_at"
    }

    /// Whether the run still holds the batch lock at `now`: `running` with a lease not yet expired.
    /// A `running` run from before leases (no expiry) holds nothing.
    public func isLive(at now: Date) -> Bool {
        status == "running" && (leaseExpiresAt.map { $0 > now } ?? false)
    }
}

/// The batch lock: a lease on one `running` row of `journey_batch_runs`, held by a random owner token.
///
/// No process id is trusted: a run proves it is alive by renewing its lease (with every chunk it
/// commits, and on a timer between), so the lock works across process-id namespaces and machines,
/// and a lease not renewed in time is taken over by the next run.
public struct BatchLease: Sendable {
    /// The run that holds the lease.
    public let runID: Int64
    /// The random token (a UUID) only this run knows.
    public let owner: String
    /// How long the lease holds after each renewal.
    public let seconds: TimeInterval

    /// A lease as ``SQLiteStore/beginBatchRun(rulesVersion:owner:holder:now:leaseSeconds:takeOver:)`` gives it.
    public init(runID: Int64, owner: String, seconds: TimeInterval) {
        self.runID = runID
        self.owner = owner
        self.seconds = seconds
    }
}

/// How far a batch run has come; written in the same transaction as each chunk's moves, and renews the lease.
public struct BatchProgress: Sendable {
    /// The run's lease, renewed by the chunk's commit.
    public let lease: BatchLease
    /// The chunk's last user: where a resumed reading would start.
    public let lastUserID: Int64
    /// Users evaluated so far, this chunk included.
    public let usersSeen: Int
    /// Moves recorded before this chunk (the chunk's own are added as it commits).
    public let transitions: Int
    /// When the chunk commits: the lease is renewed from this instant.
    public let now: Date

    /// The progress to record with a chunk's moves.
    public init(lease: BatchLease, lastUserID: Int64, usersSeen: Int, transitions: Int, now: Date) {
        self.lease = lease
        self.lastUserID = lastUserID
        self.usersSeen = usersSeen
        self.transitions = transitions
        self.now = now
    }
}

extension SQLiteStore {
    /// Takes the batch lock: records a `running` run holding a lease of `leaseSeconds` for `owner`.
    ///
    /// A `running` run whose lease expired (or, with `takeOver`, any `running` run) is marked
    /// `interrupted`; it notices at its next renewal and stops without writing more.
    ///
    /// ```swift
    /// let lease = try await database.beginBatchRun(rulesVersion: "v1", owner: UUID().uuidString, holder: "host pid 42",
    ///                                        now: Date(), leaseSeconds: 60, takeOver: false)
    /// ```
    /// - parameter holder: who runs it, for people (`status`, error messages).
    /// - throws: ``StoreError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while another run's lease holds.
    public func beginBatchRun(rulesVersion: String, owner: String, holder: String, now: Date,
                              leaseSeconds: TimeInterval, takeOver: Bool) async throws(StoreError) -> BatchLease {
        try await immediateWrite { db in
            for run in try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs WHERE status = 'running'") {
                if run.isLive(at: now), !takeOver {
                    throw StoreError.batchRunning(runID: run.id, holder: run.holder ?? "unknown", startedAt: SQLTimestamp.iso8601(run.startedAt),
                                                  leaseExpiresAt: run.leaseExpiresAt.map(SQLTimestamp.iso8601) ?? "")
                }
                let why = run.isLive(at: now) ? "taken over by hand (--take-over) while its lease held"
                    : run.leaseExpiresAt.map { "its lease expired at \(SQLTimestamp.iso8601($0)) (killed, or stopped renewing)" }
                    ?? "it started before batch leases existed and did not finish"
                try db.execute(sql: """
                    UPDATE journey_batch_runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?
                    """, arguments: [now, "\(why); taken over by \(holder)", run.id])
            }
            try db.execute(sql: """
                INSERT INTO journey_batch_runs(started_at, status, rules_version, owner, holder, lease_expires_at)
                VALUES (?, 'running', ?, ?, ?, ?)
                """, arguments: [now, rulesVersion, owner, holder, now.addingTimeInterval(leaseSeconds)])
            return BatchLease(runID: db.lastInsertedRowID, owner: owner, seconds: leaseSeconds)
        }
    }

    /// Extends the lease to `now` plus its length, if this run still holds it.
    ///
    /// - throws: ``StoreError/leaseLost(runID:)`` when another run took it over.
    public func renewBatchLease(_ lease: BatchLease, now: Date) async throws(StoreError) {
        try await immediateWrite { db in try Self.renew(lease, now: now, db) }
    }

    /// Closes a run as `finished` or `failed`, if it still holds its lease.
    ///
    /// - throws: ``StoreError/leaseLost(runID:)`` when another run took it over (its row says `interrupted`).
    public func finishBatchRun(_ lease: BatchLease, failed error: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StoreError) {
        try await immediateWrite { db in
            try db.execute(sql: """
                UPDATE journey_batch_runs SET status = ?, finished_at = ?, users_seen = ?, transitions = ?, error = ?
                WHERE id = ? AND owner = ? AND status = 'running'
                """, arguments: [error == nil ? "finished" : "failed", now, usersSeen, transitions, error, lease.runID, lease.owner])
            if db.changesCount == 0 { throw StoreError.leaseLost(runID: lease.runID) }
        }
    }

    /// The most recent runs, newest first.
    public func batchRuns(limit: Int) async throws(StoreError) -> [BatchRun] {
        try await read { db in
            try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs ORDER BY id DESC LIMIT ?", arguments: [limit])
        }
    }

    /// Records a chunk's progress and renews the lease, in the chunk's transaction.
    ///
    /// - throws: ``StoreError/leaseLost(runID:)`` when another run took the lease over: the
    ///   transaction rolls back, and the chunk's moves with it.
    static func record(_ progress: BatchProgress, recorded: Int, _ db: Database) throws {
        try renew(progress.lease, now: progress.now, db)
        try db.execute(sql: """
            UPDATE journey_batch_runs SET last_user_id = ?, users_seen = ?, transitions = ? WHERE id = ?
            """, arguments: [progress.lastUserID, progress.usersSeen, progress.transitions + recorded, progress.lease.runID])
    }

    private static func renew(_ lease: BatchLease, now: Date, _ db: Database) throws {
        try db.execute(sql: """
            UPDATE journey_batch_runs SET lease_expires_at = ? WHERE id = ? AND owner = ? AND status = 'running'
            """, arguments: [now.addingTimeInterval(lease.seconds), lease.runID, lease.owner])
        if db.changesCount == 0 { throw StoreError.leaseLost(runID: lease.runID) }
    }

    /// The snapshots of the next `limit` users after `after`, by id, in two statements:
    /// the chunk's last id, then every metric aggregated over the id range at once.
    public func chunk(after: Int64, limit: Int, now: Date) async throws(StoreError) -> [UserSnapshot] {
        try await read { db in
            guard let last = try Int64.fetchOne(db, sql: """
                SELECT MAX(id) FROM (SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?)
                """, arguments: [after, limit]) else { return [] }
            let forms = try TimestampForms.current(db)
            var arguments = Window.at(now).arguments(forms)
            arguments["low"] = after + 1
            arguments["high"] = last
            return try Row.fetchAll(db.cachedStatement(sql: Self.chunkSQL(forms)), arguments: StatementArguments(arguments)).map { row in
                var unreadable: [String: Int] = [:]
                if let posts = Int.fromDatabaseValue(row[MetricsColumn.postsUnreadable.rawValue]), posts > 0 { unreadable["posts.created_at"] = posts }
                if let events = Int.fromDatabaseValue(row[MetricsColumn.eventsUnreadable.rawValue]), events > 0 { unreadable["events.start_date"] = events }
                return UserSnapshot(row: row, unreadableTimestamps: unreadable)
            }
        }
    }

    /// Every metric of the users with ids in [`:low`, `:high`], each table read once by index range
    /// and grouped by user, for a file whose timestamp columns hold `forms`: the same metrics as
    /// ``snapshotSQL(_:)``, from the same definitions (``MetricsSQL``), in the columns of
    /// ``MetricsColumn``. Where a column is not canonical, it also counts the values
    /// `journey_instant` could not read (`posts_unreadable`, `events_unreadable`).
    public static func chunkSQL(_ forms: TimestampForms) -> String {
        chunkStatements[forms.index]
    }

    private static let chunkStatements = TimestampForms.all.map(MetricsSQL.chunk)
}
