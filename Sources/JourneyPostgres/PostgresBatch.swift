public import Foundation
import JourneyCore
public import JourneyStorage
import PostgresNIO

// Two ways to run the nightly batch on one `journey_batch_runs` table, at most one `running` run at a time:
// - the protocol's single-process run (``PostgresStore/beginBatchRun(rulesVersion:owner:holder:now:leaseSeconds:takeOver:)``):
//   one lease on the run's row for an owner token, renewed by every chunk, as in SQLite;
// - the sharded run (``PostgresStore/joinOrStartRun(rulesVersion:shardSize:leaseSeconds:holder:takeOver:now:)``), PostgreSQL's own
//   (``ShardedBatchStore``, driven by the service's `runBatch`):
//   the id space split into shards that any number of workers claim with `FOR UPDATE SKIP LOCKED`,
//   each holding a lease on its shard. Its row has no owner.
// Each kind sees the other: a live run of either kind refuses the other, and one whose leases all
// expired is marked `interrupted` by the next run, of either kind.

extension PostgresStore: ShardedBatchStore {
    /// The advisory lock taken to start, join or take over a run, so two callers never both create one.
    static let batchLockKey: Int64 = 0x6A6F_7572_6E65_62

    /// The `running` run, locked, with what tells whether it is alive: its own lease and, for a
    /// sharded run, the latest lease among its claimed shards. Call it holding ``batchLockKey``.
    private struct RunningRun {
        let id: Int64
        let startedAt: Date
        let rulesVersion: String
        let owner: String?
        let holder: String?
        /// The run's lease, or the latest of its shards' (a sharded run): the run is alive until then.
        let leaseExpiresAt: Date?

        var isSharded: Bool { owner == nil }

        func isLive(at now: Date) -> Bool { leaseExpiresAt.map { $0 > now } ?? false }

        /// The refusal of a new run while this one is alive.
        var busy: StorageError {
            .batchRunning(
                runID: id, holder: holder ?? (isSharded ? "sharded workers" : "unknown"),
                startedAt: startedAt.formatted(.iso8601), leaseExpiresAt: leaseExpiresAt.map { $0.formatted(.iso8601) } ?? "")
        }

        static func fetch(_ connection: PostgresConnection, logger: Logger) async throws -> RunningRun? {
            let rows = try await connection.query(
                """
                SELECT r.id, r.started_at, r.rules_version, r.owner, r.holder,
                       GREATEST(r.lease_expires_at,
                                (SELECT max(s.lease_expires_at) FROM journey_batch_shards s WHERE s.run_id = r.id AND s.status = 'claimed'))
                FROM journey_batch_runs r WHERE r.status = 'running' ORDER BY r.id FOR UPDATE OF r
                """, logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (id, started, version, owner, holder, lease) = try row.decode((Int64, Date, String, String?, String?, Date?).self)
            return RunningRun(id: id, startedAt: started, rulesVersion: version, owner: owner, holder: holder, leaseExpiresAt: lease)
        }

        /// Marks the run `interrupted` (a sharded one with its shards' sums so far), saying why and by whom.
        func interrupt(by holder: String, now: Date, _ connection: PostgresConnection, logger: Logger) async throws {
            let why =
                isLive(at: now)
                ? "taken over by hand (--take-over) while its lease held"
                : leaseExpiresAt.map { "its lease expired at \($0.formatted(.iso8601)) (killed, or stopped renewing)" }
                    ?? "it never took a lease"
            let message = "\(why); taken over by \(holder)"
            try await connection.query(
                """
                UPDATE journey_batch_runs r SET status = 'interrupted', finished_at = \(now), error = \(message),
                    users_seen = CASE WHEN r.owner IS NULL
                        THEN (SELECT COALESCE(sum(users_seen), 0) FROM journey_batch_shards WHERE run_id = r.id) ELSE r.users_seen END,
                    transitions = CASE WHEN r.owner IS NULL
                        THEN (SELECT COALESCE(sum(transitions), 0) FROM journey_batch_shards WHERE run_id = r.id) ELSE r.transitions END
                WHERE r.id = \(id)
                """, logger: logger)
        }
    }

    // MARK: The protocol's single-process run

    /// Takes the batch lock: records a `running` run holding a lease of `leaseSeconds` for `owner`.
    ///
    /// A run whose lease expired (a sharded run: every shard's lease too), or with `takeOver` any
    /// running run, is marked `interrupted`; it notices at its next renewal and stops without writing more.
    ///
    /// - parameter holder: who runs it, for people (`host pid 42`).
    /// - throws: ``StorageError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while another run's lease holds.
    public func beginBatchRun(
        rulesVersion: String, owner: String, holder: String, now: Date,
        leaseSeconds: TimeInterval, takeOver: Bool
    ) async throws(StorageError) -> BatchLease {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.batchLockKey))", logger: self.logger)
            if let running = try await RunningRun.fetch(connection, logger: self.logger) {
                if running.isLive(at: now), !takeOver { throw running.busy }
                try await running.interrupt(by: holder, now: now, connection, logger: self.logger)
            }
            let id = try await connection.query(
                """
                INSERT INTO journey_batch_runs (started_at, status, rules_version, owner, holder, lease_expires_at)
                VALUES (\(now), 'running', \(rulesVersion), \(owner), \(holder), \(now.addingTimeInterval(leaseSeconds)))
                RETURNING id
                """, logger: self.logger
            ).collect().first!.decode(Int64.self)
            return BatchLease(runID: id, owner: owner, seconds: leaseSeconds)
        }
    }

    /// Extends the lease to `now` plus its length, if this run still holds it.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over.
    public func renewBatchLease(_ lease: BatchLease, now: Date) async throws(StorageError) {
        try await transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE journey_batch_runs SET lease_expires_at = \(now.addingTimeInterval(lease.seconds))
                WHERE id = \(lease.runID) AND owner = \(lease.owner) AND status = 'running' RETURNING 1
                """, logger: self.logger
            ).collect()
            if rows.isEmpty { throw StorageError.leaseLost(runID: lease.runID) }
        }
    }

    /// Closes a run as `finished` (`failed` nil) or `failed`, if it still holds its lease.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over (its row says `interrupted`).
    public func finishBatchRun(_ lease: BatchLease, failed error: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StorageError) {
        try await transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE journey_batch_runs
                SET status = \(error == nil ? "finished" : "failed"), finished_at = \(now), users_seen = \(Int64(usersSeen)),
                    transitions = \(Int64(transitions)), error = \(error)
                WHERE id = \(lease.runID) AND owner = \(lease.owner) AND status = 'running' RETURNING 1
                """, logger: self.logger
            ).collect()
            if rows.isEmpty { throw StorageError.leaseLost(runID: lease.runID) }
        }
    }

    /// Records a chunk's progress and renews the lease, inside the chunk's transaction.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took the lease over: the
    ///   transaction rolls back, and the chunk's moves with it.
    func record(_ progress: BatchProgress, recorded: Int, _ connection: PostgresConnection) async throws {
        let lease = progress.lease
        let rows = try await connection.query(
            """
            UPDATE journey_batch_runs
            SET lease_expires_at = \(progress.now.addingTimeInterval(lease.seconds)), last_user_id = \(progress.lastUserID),
                users_seen = \(Int64(progress.usersSeen)), transitions = \(Int64(progress.transitions + recorded))
            WHERE id = \(lease.runID) AND owner = \(lease.owner) AND status = 'running' RETURNING 1
            """, logger: logger
        ).collect()
        if rows.isEmpty { throw StorageError.leaseLost(runID: lease.runID) }
    }

    /// The most recent runs, newest first; a sharded run's users and transitions are its shards' sums
    /// (live while it runs), and while it runs its lease is the latest of its own and its shards'.
    public func batchRuns(limit: Int) async throws(StorageError) -> [BatchRun] {
        try await shardedRuns(where: "true ORDER BY r.id DESC LIMIT \(max(0, limit))").map(\.run)
    }

    // MARK: PostgreSQL's sharded run (`journey batch --workers N`)

    /// Joins the running sharded run, or starts one: the users' id space split into shards of
    /// `shardSize` users each (contiguous id ranges; the last one ends at the largest id, so a user
    /// inserted later with a larger id waits for the next run). A run whose workers all died is
    /// joined and resumed; a dead run of another rule set, or a single-process run whose lease
    /// expired, is marked `interrupted` and a new run starts.
    ///
    /// Any number of workers, in any number of processes or machines, call this and then
    /// ``claimShard(run:owner:leaseSeconds:now:)`` until it returns nil.
    /// - parameter leaseSeconds: how long the new run counts as alive before a worker claims a shard.
    /// - parameter holder: who started it, for people (`journey status`).
    /// - throws: ``StorageError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while a
    ///   single-process run, or a sharded run of another rule set, is alive; with `takeOver` such a run
    ///   is marked `interrupted` instead (a sharded run of the same rules is always joined).
    public func joinOrStartRun(
        rulesVersion: String, shardSize: Int, leaseSeconds: Double = 60, holder: String = "sharded workers",
        takeOver: Bool = false, now: Date
    ) async throws(StorageError) -> ShardedRun {
        let runID: Int64 = try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.batchLockKey))", logger: self.logger)
            if let running = try await RunningRun.fetch(connection, logger: self.logger) {
                if running.isSharded, running.rulesVersion == rulesVersion { return running.id }
                if running.isLive(at: now), !takeOver { throw running.busy }
                try await running.interrupt(by: holder, now: now, connection, logger: self.logger)
            }
            let size = Int64(max(1, shardSize))
            let id = try await connection.query(
                """
                INSERT INTO journey_batch_runs (started_at, status, rules_version, shard_count, holder, lease_expires_at)
                VALUES (\(now), 'running', \(rulesVersion), 0, \(holder), \(now.addingTimeInterval(leaseSeconds))) RETURNING id
                """, logger: self.logger
            ).collect().first!.decode(Int64.self)
            try await connection.query(
                """
                WITH starts AS (
                    SELECT id::bigint AS low, row_number() OVER (ORDER BY id) - 1 AS position
                    FROM users),
                boundaries AS (
                    SELECT low, (position / \(size))::int AS shard FROM starts WHERE position % \(size) = 0)
                INSERT INTO journey_batch_shards (run_id, shard, low_id, high_id)
                SELECT \(id), shard, low,
                       COALESCE(lead(low) OVER (ORDER BY low) - 1, (SELECT max(id)::bigint FROM users))
                FROM boundaries
                """, logger: self.logger)
            try await connection.query(
                """
                UPDATE journey_batch_runs SET shard_count = (SELECT count(*) FROM journey_batch_shards WHERE run_id = \(id))
                WHERE id = \(id)
                """, logger: self.logger)
            return id
        }
        try await finishRunIfDone(runID, now: now)
        return try await batchRun(id: runID)!
    }

    /// Claims the next shard of `run` that is pending, or whose lease expired before `now` (its worker
    /// died or stalled), with `SELECT … FOR UPDATE SKIP LOCKED`: concurrent workers never claim the same
    /// one. The run's own lease is extended to the shard's, so that the run counts as alive between
    /// two claims.
    ///
    /// - parameter owner: this worker's token (unique per worker: a process id and a random suffix).
    /// - parameter leaseSeconds: how long the shard is this worker's without a renewal; each chunk renews it.
    ///   Leases are compared with the callers' clocks, so workers on several machines need clocks that
    ///   agree to well within a lease (NTP).
    /// - returns: the shard, or nil when none is left to claim (the run may still have shards in work).
    public func claimShard(run: Int64, owner: String, leaseSeconds: Double, now: Date) async throws(StorageError) -> BatchShard? {
        try await transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE journey_batch_shards s
                SET status = 'claimed', owner = \(owner), lease_expires_at = \(now)::timestamptz + make_interval(secs => \(leaseSeconds))
                FROM (SELECT run_id, shard FROM journey_batch_shards
                      WHERE run_id = \(run) AND (status = 'pending' OR (status = 'claimed' AND lease_expires_at < \(now)))
                        AND EXISTS (SELECT 1 FROM journey_batch_runs r WHERE r.id = \(run) AND r.status = 'running')
                      ORDER BY shard LIMIT 1
                      FOR UPDATE SKIP LOCKED) c
                WHERE s.run_id = c.run_id AND s.shard = c.shard
                RETURNING s.shard, s.low_id, s.high_id, s.last_user_id, s.lease_expires_at
                """, logger: self.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (shard, low, high, last, expires) = try row.decode((Int32, Int64, Int64, Int64?, Date).self)
            try await connection.query(
                """
                UPDATE journey_batch_runs SET lease_expires_at = GREATEST(lease_expires_at, \(expires)) WHERE id = \(run)
                """, logger: self.logger)
            return BatchShard(runID: run, shard: Int(shard), lowID: low, highID: high, lastUserID: last, owner: owner, leaseExpiresAt: expires)
        }
    }

    /// Records a chunk's progress and renews the lease, inside the chunk's transaction.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another worker holds the shard now, or the run
    ///   was interrupted.
    func record(_ progress: ShardProgress, transitions: Int, _ connection: PostgresConnection, now: Date) async throws {
        let shard = progress.shard
        let rows = try await connection.query(
            """
            UPDATE journey_batch_shards
            SET last_user_id = \(progress.lastUserID), users_seen = users_seen + \(Int64(progress.usersSeen)),
                transitions = transitions + \(Int64(transitions)),
                lease_expires_at = \(now)::timestamptz + make_interval(secs => \(progress.leaseSeconds))
            WHERE run_id = \(shard.runID) AND shard = \(Int32(shard.shard)) AND owner = \(shard.owner) AND status = 'claimed'
              AND EXISTS (SELECT 1 FROM journey_batch_runs r WHERE r.id = \(shard.runID) AND r.status = 'running')
            RETURNING 1
            """, logger: logger
        ).collect()
        if rows.isEmpty { throw PostgresStoreError.shardLeaseLost(runID: shard.runID, shard: shard.shard, owner: shard.owner) }
    }

    /// Marks a shard done, then the run `finished` (with the shards' sums) when it was the last one.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another worker holds the shard now.
    public func finishShard(_ shard: BatchShard, now: Date) async throws(StorageError) {
        try await transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE journey_batch_shards SET status = 'done', finished_at = \(now), lease_expires_at = NULL
                WHERE run_id = \(shard.runID) AND shard = \(Int32(shard.shard)) AND owner = \(shard.owner) AND status = 'claimed'
                RETURNING 1
                """, logger: self.logger
            ).collect()
            if rows.isEmpty { throw PostgresStoreError.shardLeaseLost(runID: shard.runID, shard: shard.shard, owner: shard.owner) }
        }
        try await finishRunIfDone(shard.runID, now: now)
    }

    /// Ends the shard's lease now, and records `error` on its run (``ShardedBatchStore/releaseShard(_:error:now:)``).
    public func releaseShard(_ shard: BatchShard, error: String, now: Date) async throws(StorageError) {
        try await transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE journey_batch_shards SET lease_expires_at = \(now)
                WHERE run_id = \(shard.runID) AND shard = \(Int32(shard.shard)) AND owner = \(shard.owner) AND status = 'claimed'
                RETURNING 1
                """, logger: self.logger
            ).collect()
            guard !rows.isEmpty else { return }
            try await connection.query(
                "UPDATE journey_batch_runs SET error = \(error) WHERE id = \(shard.runID) AND status = 'running'", logger: self.logger)
        }
    }

    /// Closes a running sharded run as `finished`, with its shards' sums, when every shard is done.
    private func finishRunIfDone(_ run: Int64, now: Date) async throws(StorageError) {
        try await transaction { connection in
            _ = try await connection.query(
                """
                UPDATE journey_batch_runs r
                SET status = 'finished', finished_at = \(now),
                    users_seen = (SELECT COALESCE(sum(users_seen), 0) FROM journey_batch_shards WHERE run_id = r.id),
                    transitions = (SELECT COALESCE(sum(transitions), 0) FROM journey_batch_shards WHERE run_id = r.id)
                WHERE r.id = \(run) AND r.status = 'running' AND r.owner IS NULL
                  AND NOT EXISTS (SELECT 1 FROM journey_batch_shards s WHERE s.run_id = r.id AND s.status <> 'done')
                """, logger: self.logger)
        }
    }

    /// The run `id` with its shards' progress, or nil when there is no such run.
    public func batchRun(id: Int64) async throws(StorageError) -> ShardedRun? {
        try await shardedRuns(where: "r.id = \(id)").first
    }

    /// Runs matching a trusted SQL condition (built from integers only).
    private func shardedRuns(where condition: String) async throws(StorageError) -> [ShardedRun] {
        try await withConnection { connection in
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT r.id, r.started_at, r.finished_at, r.status, r.rules_version, r.error, r.last_user_id, r.owner, r.holder,
                               CASE WHEN r.owner IS NULL AND r.status = 'running'
                                    THEN GREATEST(r.lease_expires_at, (SELECT max(s.lease_expires_at) FROM journey_batch_shards s
                                                                       WHERE s.run_id = r.id AND s.status = 'claimed'))
                                    ELSE r.lease_expires_at END,
                               r.shard_count,
                               (SELECT count(*) FROM journey_batch_shards s WHERE s.run_id = r.id AND s.status = 'done'),
                               CASE WHEN r.owner IS NULL
                                    THEN (SELECT COALESCE(sum(users_seen), 0)::bigint FROM journey_batch_shards s WHERE s.run_id = r.id)
                                    ELSE r.users_seen END,
                               CASE WHEN r.owner IS NULL
                                    THEN (SELECT COALESCE(sum(transitions), 0)::bigint FROM journey_batch_shards s WHERE s.run_id = r.id)
                                    ELSE r.transitions END
                        FROM journey_batch_runs r WHERE \(condition)
                        """), logger: self.logger)
            var runs: [ShardedRun] = []
            for try await row in rows {
                let (id, started, finished, status, version, error, last, owner, holder, lease, shards, done, seen, moved) =
                    try row.decode((Int64, Date, Date?, String, String, String?, Int64?, String?, String?, Date?, Int32, Int64, Int64, Int64).self)
                var run = BatchRun.blank
                (run.id, run.startedAt, run.finishedAt, run.status, run.rulesVersion) = (id, started, finished, status, version)
                (run.usersSeen, run.transitions, run.error, run.lastUserID) = (Int(seen), Int(moved), error, last)
                (run.owner, run.holder, run.leaseExpiresAt) = (owner, holder, lease)
                runs.append(ShardedRun(run: run, shardCount: Int(shards), shardsDone: Int(done)))
            }
            return runs
        }
    }
}

extension BatchRun {
    /// A run with every property zero, empty or nil, to set the properties of: `BatchRun` has no
    /// public memberwise initializer (JourneyStorage), so this one is decoded, once, from a constant.
    static let blank: BatchRun = {
        let json = #"{"id": 0, "started_at": 0, "status": "", "rules_version": "", "users_seen": 0, "transitions": 0}"#
        do {
            return try JSONDecoder().decode(BatchRun.self, from: Data(json.utf8))
        } catch {
            preconditionFailure("BatchRun no longer decodes from \(json): \(error)")
        }
    }()
}
