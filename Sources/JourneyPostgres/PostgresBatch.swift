import Foundation
import JourneyCore
import PostgresNIO

/// One row of `journey_batch_runs`, with the sums of its shards.
public struct BatchRun: Hashable, Sendable, Codable {
    /// The run's id.
    public var id: Int64
    /// When the run was started (the first worker's clock).
    public var startedAt: Date
    /// When the last shard was done, or the run failed.
    public var finishedAt: Date?
    /// `running`, `finished`, or `failed`.
    public var status: String
    /// The rule set's `version`; every worker of the run uses it.
    public var rulesVersion: String
    /// How many shards the id space was split into.
    public var shardCount: Int
    /// Shards done so far.
    public var shardsDone: Int
    /// Users evaluated, summed over the shards (each committed chunk adds its users).
    public var usersSeen: Int
    /// Transitions recorded, summed over the shards.
    public var transitions: Int
    /// Why the run failed.
    public var error: String?
}

/// A shard a worker holds: an inclusive range of user ids, and how far it came.
public struct BatchShard: Hashable, Sendable {
    /// The run the shard belongs to.
    public let runID: Int64
    /// The shard's number, from 0.
    public let shard: Int
    /// The first user id of the range.
    public let lowID: Int64
    /// The last user id of the range (inclusive).
    public let highID: Int64
    /// The last user whose chunk committed, when an earlier worker started the shard: resume after it.
    public let lastUserID: Int64?
    /// The worker holding the lease.
    public let owner: String
    /// When the lease ends unless renewed; another worker may claim the shard after it.
    public let leaseExpiresAt: Date
}

/// A chunk's progress within a shard, written in the same transaction as the chunk's moves
/// (``PostgresStore/persist(_:rulesVersion:source:now:progress:)``).
public struct ShardProgress: Sendable {
    /// The shard being worked on.
    public let shard: BatchShard
    /// The chunk's last user id.
    public let lastUserID: Int64
    /// The users the chunk evaluated.
    public let usersSeen: Int
    /// How long the renewed lease lasts from the chunk's commit time, in seconds.
    public let leaseSeconds: Double

    /// Creates a chunk's progress.
    public init(shard: BatchShard, lastUserID: Int64, usersSeen: Int, leaseSeconds: Double) {
        self.shard = shard
        self.lastUserID = lastUserID
        self.usersSeen = usersSeen
        self.leaseSeconds = leaseSeconds
    }
}

/// What one worker did in ``PostgresStore/work(run:owner:chunkSize:leaseSeconds:clock:decide:)``.
public struct WorkerSummary: Hashable, Sendable {
    /// The shards this worker finished.
    public var shards: [Int] = []
    /// Users this worker evaluated.
    public var usersSeen = 0
    /// Transitions this worker recorded.
    public var transitions = 0
    /// Moves refused by compare-and-set (another writer moved the user first) or by a pin.
    public var skipped = 0
}

extension PostgresStore {
    /// The advisory lock taken to start or join a run, so two workers never both create one.
    static let batchLockKey: Int64 = 0x6A6F_7572_6E65_62

    /// Joins the running batch run, or starts one: the users' id space split into shards of
    /// `shardSize` users each (contiguous id ranges; the last one ends at the largest id, so a user
    /// inserted later with a larger id waits for the next run). A run whose workers all died is
    /// joined and resumed after their leases expire.
    ///
    /// Any number of workers, in any number of processes or machines, call this and then
    /// ``claimShard(run:owner:leaseSeconds:now:)`` until it returns nil.
    /// - throws: ``PostgresStoreError/runRulesMismatch(runID:running:requested:)`` when the running run
    ///   uses another rule set.
    public func joinOrStartRun(rulesVersion: String, shardSize: Int, now: Date) async throws(PostgresStoreError) -> BatchRun {
        let runID: Int64 = try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.batchLockKey))", logger: self.logger)
            let running = try await connection.query("SELECT id, rules_version FROM journey_batch_runs WHERE status = 'running'", logger: self.logger).collect()
            if let row = running.first {
                let (id, version) = try row.decode((Int64, String).self)
                guard version == rulesVersion else {
                    throw PostgresStoreError.runRulesMismatch(runID: id, running: version, requested: rulesVersion)
                }
                return id
            }
            let size = Int64(max(1, shardSize))
            let id = try await connection.query("""
                INSERT INTO journey_batch_runs (started_at, status, rules_version, shard_count)
                VALUES (\(now), 'running', \(rulesVersion), 0) RETURNING id
                """, logger: self.logger).collect().first!.decode(Int64.self)
            try await connection.query("""
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
            try await connection.query("""
                UPDATE journey_batch_runs SET shard_count = (SELECT count(*) FROM journey_batch_shards WHERE run_id = \(id))
                WHERE id = \(id)
                """, logger: self.logger)
            return id
        }
        try await finishRunIfDone(runID, now: now)
        return try await batchRun(id: runID)!
    }

    /// Claims the next shard of `run` that is pending, or whose lease expired before `now` (its worker
    /// died or stalled), with `SELECT … FOR UPDATE SKIP LOCKED`: concurrent workers never claim the same one.
    ///
    /// - parameter owner: this worker's token (unique per worker: a process id and a random suffix).
    /// - parameter leaseSeconds: how long the shard is this worker's without a renewal; each chunk renews it.
    ///   Leases are compared with the callers' clocks, so workers on several machines need clocks that
    ///   agree to well within a lease (NTP).
    /// - returns: the shard, or nil when none is left to claim (the run may still have shards in work).
    public func claimShard(run: Int64, owner: String, leaseSeconds: Double, now: Date) async throws(PostgresStoreError) -> BatchShard? {
        try await transaction { connection in
            let rows = try await connection.query("""
                UPDATE journey_batch_shards s
                SET status = 'claimed', owner = \(owner), lease_expires_at = \(now)::timestamptz + make_interval(secs => \(leaseSeconds))
                FROM (SELECT run_id, shard FROM journey_batch_shards
                      WHERE run_id = \(run) AND (status = 'pending' OR (status = 'claimed' AND lease_expires_at < \(now)))
                        AND EXISTS (SELECT 1 FROM journey_batch_runs r WHERE r.id = \(run) AND r.status = 'running')
                      ORDER BY shard LIMIT 1
                      FOR UPDATE SKIP LOCKED) c
                WHERE s.run_id = c.run_id AND s.shard = c.shard
                RETURNING s.shard, s.low_id, s.high_id, s.last_user_id, s.lease_expires_at
                """, logger: self.logger).collect()
            guard let row = rows.first else { return nil }
            let (shard, low, high, last, expires) = try row.decode((Int32, Int64, Int64, Int64?, Date).self)
            return BatchShard(runID: run, shard: Int(shard), lowID: low, highID: high, lastUserID: last, owner: owner, leaseExpiresAt: expires)
        }
    }

    /// Records a chunk's progress and renews the lease, inside the chunk's transaction.
    ///
    /// - throws: ``PostgresStoreError/leaseLost(runID:shard:owner:)`` when another worker holds the shard now.
    func record(_ progress: ShardProgress, transitions: Int, _ connection: PostgresConnection, now: Date) async throws {
        let shard = progress.shard
        let rows = try await connection.query("""
            UPDATE journey_batch_shards
            SET last_user_id = \(progress.lastUserID), users_seen = users_seen + \(Int64(progress.usersSeen)),
                transitions = transitions + \(Int64(transitions)),
                lease_expires_at = \(now)::timestamptz + make_interval(secs => \(progress.leaseSeconds))
            WHERE run_id = \(shard.runID) AND shard = \(Int32(shard.shard)) AND owner = \(shard.owner) AND status = 'claimed'
            RETURNING 1
            """, logger: logger).collect()
        if rows.isEmpty { throw PostgresStoreError.leaseLost(runID: shard.runID, shard: shard.shard, owner: shard.owner) }
    }

    /// Marks a shard done, then the run `finished` (with the shards' sums) when it was the last one.
    ///
    /// - throws: ``PostgresStoreError/leaseLost(runID:shard:owner:)`` when another worker holds the shard now.
    public func finishShard(_ shard: BatchShard, now: Date) async throws(PostgresStoreError) {
        try await transaction { connection in
            let rows = try await connection.query("""
                UPDATE journey_batch_shards SET status = 'done', finished_at = \(now), lease_expires_at = NULL
                WHERE run_id = \(shard.runID) AND shard = \(Int32(shard.shard)) AND owner = \(shard.owner) AND status = 'claimed'
                RETURNING 1
                """, logger: self.logger).collect()
            if rows.isEmpty { throw PostgresStoreError.leaseLost(runID: shard.runID, shard: shard.shard, owner: shard.owner) }
        }
        try await finishRunIfDone(shard.runID, now: now)
    }

    /// Closes a running run as `finished`, with its shards' sums, when every shard is done.
    private func finishRunIfDone(_ run: Int64, now: Date) async throws(PostgresStoreError) {
        try await withConnection { connection in
            _ = try await connection.query("""
                UPDATE journey_batch_runs r
                SET status = 'finished', finished_at = \(now),
                    users_seen = (SELECT COALESCE(sum(users_seen), 0) FROM journey_batch_shards WHERE run_id = r.id),
                    transitions = (SELECT COALESCE(sum(transitions), 0) FROM journey_batch_shards WHERE run_id = r.id)
                WHERE r.id = \(run) AND r.status = 'running'
                  AND NOT EXISTS (SELECT 1 FROM journey_batch_shards s WHERE s.run_id = r.id AND s.status <> 'done')
                """, logger: self.logger)
        }
    }

    /// Closes a running run as `failed`, with `error` and the shards' sums so far; its unfinished
    /// shards are left for no one (the next run starts over).
    public func failRun(_ run: Int64, error: String, now: Date) async throws(PostgresStoreError) {
        try await withConnection { connection in
            _ = try await connection.query("""
                UPDATE journey_batch_runs r
                SET status = 'failed', finished_at = \(now), error = \(error),
                    users_seen = (SELECT COALESCE(sum(users_seen), 0) FROM journey_batch_shards WHERE run_id = r.id),
                    transitions = (SELECT COALESCE(sum(transitions), 0) FROM journey_batch_shards WHERE run_id = r.id)
                WHERE r.id = \(run) AND r.status = 'running'
                """, logger: self.logger)
        }
    }

    /// The run `id` with its shards' sums (live while it runs), or nil when there is no such run.
    public func batchRun(id: Int64) async throws(PostgresStoreError) -> BatchRun? {
        try await batchRuns(where: "r.id = \(id)").first
    }

    /// The most recent runs, newest first, each with its shards' sums.
    public func batchRuns(limit: Int) async throws(PostgresStoreError) -> [BatchRun] {
        try await batchRuns(where: "true ORDER BY r.id DESC LIMIT \(max(0, limit))")
    }

    /// Runs matching a trusted SQL condition (built from integers only).
    private func batchRuns(where condition: String) async throws(PostgresStoreError) -> [BatchRun] {
        try await withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: """
                SELECT r.id, r.started_at, r.finished_at, r.status, r.rules_version, r.shard_count, r.error,
                       (SELECT count(*) FROM journey_batch_shards s WHERE s.run_id = r.id AND s.status = 'done'),
                       (SELECT COALESCE(sum(users_seen), 0)::bigint FROM journey_batch_shards s WHERE s.run_id = r.id),
                       (SELECT COALESCE(sum(transitions), 0)::bigint FROM journey_batch_shards s WHERE s.run_id = r.id)
                FROM journey_batch_runs r WHERE \(condition)
                """), logger: self.logger)
            var runs: [BatchRun] = []
            for try await (id, started, finished, status, version, shards, error, done, seen, moved) in rows.decode((Int64, Date, Date?, String, String, Int32, String?, Int64, Int64, Int64).self) {
                runs.append(BatchRun(
                    id: id, startedAt: started, finishedAt: finished, status: status, rulesVersion: version,
                    shardCount: Int(shards), shardsDone: Int(done), usersSeen: Int(seen), transitions: Int(moved), error: error))
            }
            return runs
        }
    }

    /// One worker of a sharded run: claims shards until none is left, and for each reads chunks of
    /// `chunkSize` users, asks `decide` for their moves, and persists each chunk's moves with the
    /// shard's progress in one transaction (renewing the lease). A shard an earlier worker started is
    /// resumed after its last committed chunk.
    ///
    /// - parameter clock: the time for each step (lease, `now` of the metrics, `created_at` of the moves).
    /// - parameter decide: the evaluation: the moves for a chunk's snapshots (pinned users left out by it or by
    ///   persist). It counts and skips a user it cannot evaluate (an unknown stage); an error it throws
    ///   stops this worker, and its shard is claimed again once the lease expires.
    /// - returns: what this worker did; the run's summary is ``batchRun(id:)``.
    /// - throws: ``PostgresStoreError/leaseLost(runID:shard:owner:)`` when this worker stalled past its lease
    ///   and another took its shard (its last chunk was rolled back); any store error.
    public func work(
        run: Int64, owner: String, chunkSize: Int, leaseSeconds: Double, clock: @Sendable () -> Date,
        decide: @Sendable ([UserSnapshot], Date) throws -> [PendingMove]
    ) async throws -> WorkerSummary {
        var summary = WorkerSummary()
        guard let version = try await batchRun(id: run)?.rulesVersion else { throw PostgresStoreError.runNotRunning(runID: run) }
        while let shard = try await claimShard(run: run, owner: owner, leaseSeconds: leaseSeconds, now: clock()) {
            var after = shard.lastUserID ?? (shard.lowID - 1)
            while true {
                let now = clock()
                let snapshots = try await chunk(after: after, through: shard.highID, limit: chunkSize, now: now)
                guard let last = snapshots.last else { break }
                let moves = try decide(snapshots, now)
                let result = try await persist(
                    moves, rulesVersion: version, source: .batch, now: now,
                    progress: ShardProgress(shard: shard, lastUserID: last.userID, usersSeen: snapshots.count, leaseSeconds: leaseSeconds))
                summary.usersSeen += snapshots.count
                summary.transitions += result.recorded.count
                summary.skipped += result.conflicted.count + result.pinned.count
                after = last.userID
            }
            try await finishShard(shard, now: clock())
            summary.shards.append(shard.shard)
        }
        return summary
    }
}
