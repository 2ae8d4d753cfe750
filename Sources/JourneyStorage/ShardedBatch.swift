public import Foundation
public import JourneyCore

/// A store whose nightly batch can be shared by many workers, in any number of processes or
/// machines: the users' id space split into shards that workers claim one at a time, each under a
/// lease of its own (PostgreSQL's `FOR UPDATE SKIP LOCKED`, SPEC §10). `PostgresStore` adopts it;
/// `SQLiteStore` does not (one writer per file), and the service runs its single-lease batch there.
///
/// The service drives it (`JourneyService.runBatch` with `BatchOptions.workers`): join or start a
/// run, then in each worker claim shards until none is left, persisting each chunk with its
/// ``ShardProgress`` (which renews the shard's lease in the chunk's transaction), and finish each shard.
public protocol ShardedBatchStore: JourneyStore {
    /// Joins the running sharded run of `rulesVersion`, or starts one with shards of `shardSize`
    /// users. A run whose workers all died is joined and resumed; a dead run of another rule set, or
    /// a single-process run whose lease expired (any running run, with `takeOver`), is marked
    /// `interrupted` and a new run starts.
    ///
    /// - parameter holder: who started it, for people (`journey status`).
    /// - throws: ``StorageError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while a
    ///   single-process run, or a sharded run of another rule set, is alive (and `takeOver` is false).
    func joinOrStartRun(
        rulesVersion: String, shardSize: Int, leaseSeconds: Double, holder: String, takeOver: Bool, now: Date
    ) async throws(StorageError) -> ShardedRun

    /// Claims the next shard of `run` that is pending, or whose lease expired before `now`; nil when
    /// none is left to claim (other workers may still hold some).
    ///
    /// - parameter owner: this worker's token, unique per worker.
    func claimShard(run: Int64, owner: String, leaseSeconds: Double, now: Date) async throws(StorageError) -> BatchShard?

    /// ``JourneyStore/persist(_:rulesVersion:source:now:progress:)`` for one chunk of a shard: the
    /// shard's progress is recorded, and the worker's lease renewed, in the same transaction.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another worker holds the shard now, or the run
    ///   was interrupted (nothing is written).
    func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: ShardProgress
    ) async throws(StorageError) -> PersistResult

    /// Marks a shard done, then the run `finished` (with the shards' sums) when it was the last one.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another worker holds the shard now.
    func finishShard(_ shard: BatchShard, now: Date) async throws(StorageError)

    /// Gives `shard` up after its worker failed with `error` (a refused permission, a type the
    /// writes cannot store): the shard's lease ends at `now`, so that the next worker claims it at
    /// once instead of after the lease, and `error` is recorded on the run, which stays running (its
    /// other workers go on) so that `journey status` can say why. Nothing when another worker holds
    /// the shard already.
    func releaseShard(_ shard: BatchShard, error: String, now: Date) async throws(StorageError)

    /// The run `id` with its shards' progress, or nil when there is no such run.
    func batchRun(id: Int64) async throws(StorageError) -> ShardedRun?
}

/// A sharded run: its ``BatchRun`` row (users and transitions summed over its shards), and how far its shards came.
@dynamicMemberLookup
public struct ShardedRun: Hashable, Sendable {
    /// The run, as ``JourneyStore/batchRuns(limit:)`` lists it.
    public var run: BatchRun
    /// How many shards the id space was split into (0 for a run of the single-process lease).
    public var shardCount: Int
    /// Shards done so far.
    public var shardsDone: Int

    /// A run with its shards' progress.
    public init(run: BatchRun, shardCount: Int, shardsDone: Int) {
        self.run = run
        self.shardCount = shardCount
        self.shardsDone = shardsDone
    }

    /// The run's own properties: `id`, `status`, `usersSeen`, `transitions`, …
    public subscript<Value>(dynamicMember keyPath: KeyPath<BatchRun, Value>) -> Value { run[keyPath: keyPath] }
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

    /// A shard as ``ShardedBatchStore/claimShard(run:owner:leaseSeconds:now:)`` hands it out.
    public init(runID: Int64, shard: Int, lowID: Int64, highID: Int64, lastUserID: Int64?, owner: String, leaseExpiresAt: Date) {
        self.runID = runID
        self.shard = shard
        self.lowID = lowID
        self.highID = highID
        self.lastUserID = lastUserID
        self.owner = owner
        self.leaseExpiresAt = leaseExpiresAt
    }
}

/// A chunk's progress within a shard, written in the same transaction as the chunk's moves
/// (``ShardedBatchStore/persist(_:rulesVersion:source:now:progress:)``).
public struct ShardProgress: Sendable {
    /// The shard being worked on.
    public let shard: BatchShard
    /// The chunk's last user id.
    public let lastUserID: Int64
    /// The users the chunk evaluated.
    public let usersSeen: Int
    /// How long the renewed lease lasts from ``now``, in seconds.
    public let leaseSeconds: Double
    /// When the chunk commits: the lease is renewed from this instant (nil: the `now` of the persist
    /// call, which is also the moves' time).
    public let now: Date?

    /// Creates a chunk's progress.
    public init(shard: BatchShard, lastUserID: Int64, usersSeen: Int, leaseSeconds: Double, now: Date? = nil) {
        self.shard = shard
        self.lastUserID = lastUserID
        self.usersSeen = usersSeen
        self.leaseSeconds = leaseSeconds
        self.now = now
    }
}
