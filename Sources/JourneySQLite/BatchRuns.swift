public import Foundation
import GRDB
public import JourneyCore
public import JourneyStorage

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
    /// - throws: ``StorageError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while another run's lease holds.
    public func beginBatchRun(
        rulesVersion: String, owner: String, holder: String, now: Date,
        leaseSeconds: TimeInterval, takeOver: Bool
    ) async throws(StorageError) -> BatchLease {
        try await immediateWrite { db in
            for run in try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs WHERE status = 'running'") {
                if run.isLive(at: now), !takeOver {
                    throw StorageError.batchRunning(
                        runID: run.id, holder: run.holder ?? "unknown", startedAt: SQLTimestamp.iso8601(run.startedAt),
                        leaseExpiresAt: run.leaseExpiresAt.map(SQLTimestamp.iso8601) ?? "")
                }
                let why =
                    run.isLive(at: now)
                    ? "taken over by hand (--take-over) while its lease held"
                    : run.leaseExpiresAt.map { "its lease expired at \(SQLTimestamp.iso8601($0)) (killed, or stopped renewing)" }
                        ?? "it started before batch leases existed and did not finish"
                try db.execute(
                    sql: """
                        UPDATE journey_batch_runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?
                        """, arguments: [now, "\(why); taken over by \(holder)", run.id])
            }
            try db.execute(
                sql: """
                    INSERT INTO journey_batch_runs(started_at, status, rules_version, owner, holder, lease_expires_at)
                    VALUES (?, 'running', ?, ?, ?, ?)
                    """, arguments: [now, rulesVersion, owner, holder, now.addingTimeInterval(leaseSeconds)])
            return BatchLease(runID: db.lastInsertedRowID, owner: owner, seconds: leaseSeconds)
        }
    }

    /// Extends the lease to `now` plus its length, if this run still holds it.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over.
    public func renewBatchLease(_ lease: BatchLease, now: Date) async throws(StorageError) {
        try await immediateWrite { db in try Self.renew(lease, now: now, db) }
    }

    /// Closes a run as `finished` or `failed`, if it still holds its lease.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over (its row says `interrupted`).
    public func finishBatchRun(_ lease: BatchLease, failed error: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StorageError) {
        try await immediateWrite { db in
            try db.execute(
                sql: """
                    UPDATE journey_batch_runs SET status = ?, finished_at = ?, users_seen = ?, transitions = ?, error = ?
                    WHERE id = ? AND owner = ? AND status = 'running'
                    """, arguments: [error == nil ? "finished" : "failed", now, usersSeen, transitions, error, lease.runID, lease.owner])
            if db.changesCount == 0 { throw StorageError.leaseLost(runID: lease.runID) }
        }
    }

    /// The most recent runs, newest first.
    public func batchRuns(limit: Int) async throws(StorageError) -> [BatchRun] {
        try await read { db in
            try BatchRun.fetchAll(db, sql: "SELECT * FROM journey_batch_runs ORDER BY id DESC LIMIT ?", arguments: [limit])
        }
    }

    /// Records a chunk's progress and renews the lease, in the chunk's transaction.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took the lease over: the
    ///   transaction rolls back, and the chunk's moves with it.
    static func record(_ progress: BatchProgress, recorded: Int, _ db: Database) throws {
        try renew(progress.lease, now: progress.now, db)
        try db.execute(
            sql: """
                UPDATE journey_batch_runs SET last_user_id = ?, users_seen = ?, transitions = ? WHERE id = ?
                """, arguments: [progress.lastUserID, progress.usersSeen, progress.transitions + recorded, progress.lease.runID])
    }

    private static func renew(_ lease: BatchLease, now: Date, _ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE journey_batch_runs SET lease_expires_at = ? WHERE id = ? AND owner = ? AND status = 'running'
                """, arguments: [now.addingTimeInterval(lease.seconds), lease.runID, lease.owner])
        if db.changesCount == 0 { throw StorageError.leaseLost(runID: lease.runID) }
    }

    /// Where the next `count` chunks of `limit` users after `after` end, read from the primary key.
    /// Only numeric ids: a value that is not a number (`'abc'` in an `id` column that is not the
    /// rowid) sorts after every number, and no id range can hold it; such a row is no user the
    /// batch or the command line can name.
    public func chunkEnds(after: Int64, limit: Int, count: Int) async throws(StorageError) -> [Int64] {
        let limit = max(1, limit)
        return try await read { db in
            let ids = try Int64.fetchAll(
                db, sql: "SELECT id FROM users WHERE id > ? AND typeof(id) IN ('integer', 'real') ORDER BY id LIMIT ?",
                arguments: [after, limit * max(1, count)])
            return Self.chunkEnds(of: ids, limit: limit)
        }
    }

    /// The snapshots of the users with ids in `ids`, by id, in one statement (``chunkSQL``).
    public func chunk(_ ids: ClosedRange<Int64>, now: Date) async throws(StorageError) -> [UserSnapshot] {
        try await read { db in
            let forms = try TimestampForms.current(db)
            var arguments = Window.at(now).arguments(forms)
            arguments["low"] = ids.lowerBound
            arguments["high"] = ids.upperBound
            // Decoded as the statement steps (a cursor), not from a copy of every row first.
            var snapshots: [UserSnapshot] = []
            let (span, overflowed) = ids.upperBound.subtractingReportingOverflow(ids.lowerBound)
            snapshots.reserveCapacity(overflowed ? 4_096 : min(4_095, Int(clamping: span)) + 1)
            let statement = try db.cachedStatement(sql: Self.chunkSQL(forms))
            let rows = try Row.fetchCursor(statement, arguments: StatementArguments(arguments))
            let handle = statement.sqliteStatement
            func count(_ column: MetricsColumn) -> Int? { Int.fromDatabaseValue(DatabaseValue(sqliteStatement: handle, index: Int32(column.rawValue))) }
            // Each row is read from the statement while the cursor stands on it.
            while try rows.next() != nil {
                var unreadable: [String: Int] = [:]
                if let posts = count(.postsUnreadable), posts > 0 { unreadable["posts.created_at"] = posts }
                if let events = count(.eventsUnreadable), events > 0 { unreadable["events.start_date"] = events }
                snapshots.append(UserSnapshot(statement: handle, unreadableTimestamps: unreadable))
            }
            return snapshots
        }
    }

    /// Every metric of the users with ids in [`:low`, `:high`], in id order, each count sought on
    /// the user's index, for a file whose timestamp columns hold `forms`: the same metrics as
    /// ``snapshotSQL(_:)``, from the same definitions (``MetricsSQL``), in the columns of
    /// ``MetricsColumn``. Where a column is not canonical, it also counts the values
    /// `journey_instant` could not read (`posts_unreadable`, `events_unreadable`).
    public static func chunkSQL(_ forms: TimestampForms) -> String {
        chunkStatements[forms.index]
    }

    private static let chunkStatements = TimestampForms.all.map(MetricsSQL.chunk)
}
