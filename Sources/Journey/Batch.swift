import Dispatch
public import Foundation
import JourneyCore
import JourneyStorage
import Synchronization

/// How to run the nightly re-evaluation.
public struct BatchOptions: Sendable {
    /// Users read, evaluated and persisted per transaction.
    public var chunkSize: Int
    /// Evaluate and count, write nothing (with other rules: the what-if of a rules change).
    public var dryRun: Bool
    /// Called after each chunk with the users done so far (for a progress bar).
    public var onChunk: (@Sendable (_ usersDone: Int, _ usersTotal: Int) async -> Void)?
    /// How long the batch lease holds without a renewal (see ``defaultLeaseSeconds``).
    public var leaseSeconds: TimeInterval
    /// Take the lease over even from a run whose lease still holds (the operator knows it is gone).
    public var takeOver: Bool
    /// Chunks read and decided ahead of the one being written (the default, 2, is the number of cores
    /// the benchmark's machine has). A SQLite store runs at most two of those reads at once, one on
    /// each of its reader connections; the others wait for one, decided as soon as they are read.
    public var readers: Int
    /// Workers in this process (`journey batch --workers N`). On a store that shares its batch
    /// (`ShardedBatchStore`: PostgreSQL), each claims shards of the run this process joins or starts,
    /// beside any other process's workers. On SQLite, one writer per file, it sets how many chunks are
    /// read and decided ahead instead: ``readers`` becomes at least `workers`.
    public var workers: Int
    /// Users per shard of a sharded run (`ShardedBatchStore`): the unit a worker claims, holds
    /// under its lease, and another worker resumes after its last committed chunk if it dies. Only
    /// the process that starts a run chooses it; nil is ten chunks.
    public var shardSize: Int?
    /// How stale the progress a single-lease run records (`journey_batch_runs`: last user, users
    /// seen, as `journey status` shows them) may grow while its chunks have nothing to move. A chunk
    /// with moves commits them with its progress, always; a chunk without commits nothing unless the
    /// last record is this old, since a commit is a WAL `fsync` and a write lock the platform's
    /// writers wait behind. A second run at 1M users (nothing to move) then commits a few times
    /// instead of 500. A run killed meanwhile loses nothing: a rerun re-evaluates from the start.
    public var progressInterval: Duration
    /// Asked before each chunk: a reason to stop (`"SIGTERM"`), or nil to go on. A run told to stop
    /// commits nothing more and throws ``JourneyError/stopped(reason:)``; what it committed stays,
    /// and the next run moves whoever is left. A single-lease run records itself as failed with
    /// the reason, which frees its lease at once; a worker of a shared PostgreSQL run gives its
    /// shard back at once, the reason recorded on the run (`ShardedBatchStore.releaseShard`).
    /// `journey batch` answers SIGINT and SIGTERM so.
    public var stopRequested: @Sendable () -> String? = { nil }

    /// The lease bound: a run renews with every chunk it commits and every third of this on a timer, so only a
    /// run that stopped (killed, frozen, its machine gone) lets it expire; the next run then takes over.
    public static let defaultLeaseSeconds: TimeInterval = 60

    /// Options for ``JourneyService/runBatch(_:)``; the defaults are those of `journey batch`.
    public init(
        chunkSize: Int = 2_000, dryRun: Bool = false, onChunk: (@Sendable (Int, Int) async -> Void)? = nil,
        leaseSeconds: TimeInterval = BatchOptions.defaultLeaseSeconds, takeOver: Bool = false, readers: Int = 2,
        workers: Int = 1, shardSize: Int? = nil, progressInterval: Duration = .seconds(1)
    ) {
        self.chunkSize = chunkSize
        self.dryRun = dryRun
        self.onChunk = onChunk
        self.leaseSeconds = leaseSeconds
        self.takeOver = takeOver
        self.readers = readers
        self.workers = workers
        self.shardSize = shardSize
        self.progressInterval = progressInterval
    }
}

/// What a batch run did; `journey batch --json` prints it.
public struct BatchSummary: Sendable, Encodable {
    /// The `journey_batch_runs` id; nil for a dry run.
    public var runID: Int64?
    /// Whether nothing was written.
    public var dryRun: Bool
    /// The `version` of the rules evaluated with.
    public var rulesVersion: String
    /// Users read and evaluated.
    public var usersSeen = 0
    /// Moves recorded (or, in a dry run, that would be).
    public var transitions = 0
    /// Moves per edge, keyed `FROM->TO`.
    public var edges: [String: Int] = [:]
    /// Users left untouched because their stored stage is unknown to the rules, per stored value.
    public var unknownStages: [String: Int] = [:]
    /// Users skipped because an operator pinned them.
    public var pinned = 0
    /// Users another writer moved during the run, re-read and re-evaluated.
    public var conflicts = 0
    /// Stored timestamps that fit no form of SPEC §8 and were read as missing, by `table.column`
    /// (`users.created_at`, `users.last_journey_update`, `posts.created_at`, `events.start_date`).
    /// `journey doctor` lists samples.
    public var unreadableTimestamps: [String: Int] = [:]
    /// Per stage, the users who stay in it but no longer meet its criteria under these rules
    /// (`RuleSet.meetsCriteria(of:metrics:now:)`): the other direction of a what-if with raised rules.
    public var noLongerMeeting: [String: StageShortfall] = [:]
    /// Users the run could not move, per kind (``BatchSummary/UserFailure``); the run went on.
    public var failedUsers: [String: Int] = [:]
    /// The first ten user ids of each kind in ``failedUsers``, to look at with `journey evaluate`.
    public var failedUserSamples: [String: [Int64]] = [:]
    /// Wall time of the run.
    public var durationSeconds = 0.0
    /// Where the run's time went, in seconds (``BatchPhases``).
    public var phases = BatchPhases()
    /// Workers this process ran (``BatchOptions/workers``; 1 on a store without shards).
    public var workers = 1
    /// A sharded run's (`ShardedBatchStore`) totals over every shard, whoever worked on them; nil for
    /// a single-lease run or a dry run, whose own counts above are the run's. The counts above are
    /// this process's part.
    public var run: ShardedRunTotals?

    /// Users evaluated per second of ``durationSeconds``.
    public var usersPerSecond: Double { durationSeconds > 0 ? Double(usersSeen) / durationSeconds : 0 }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", dryRun = "dry_run", rulesVersion = "rules_version", usersSeen = "users_seen"
        case transitions, edges, unknownStages = "unknown_stages", pinned, conflicts, noLongerMeeting = "no_longer_meeting"
        case unreadableTimestamps = "unreadable_timestamps", failedUsers = "failed_users"
        case failedUserSamples = "failed_user_samples", durationSeconds = "duration_seconds", phases
        case usersPerSecond = "users_per_second", workers, run
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(runID, forKey: .runID)
        try container.encode(dryRun, forKey: .dryRun)
        try container.encode(rulesVersion, forKey: .rulesVersion)
        try container.encode(usersSeen, forKey: .usersSeen)
        try container.encode(transitions, forKey: .transitions)
        try container.encode(edges, forKey: .edges)
        try container.encode(unknownStages, forKey: .unknownStages)
        try container.encode(pinned, forKey: .pinned)
        try container.encode(conflicts, forKey: .conflicts)
        try container.encode(unreadableTimestamps, forKey: .unreadableTimestamps)
        try container.encode(noLongerMeeting, forKey: .noLongerMeeting)
        try container.encode(failedUsers, forKey: .failedUsers)
        try container.encode(failedUserSamples, forKey: .failedUserSamples)
        try container.encode(durationSeconds, forKey: .durationSeconds)
        try container.encode(phases, forKey: .phases)
        try container.encode(usersPerSecond, forKey: .usersPerSecond)
        try container.encode(workers, forKey: .workers)
        try container.encode(run, forKey: .run)
    }

    /// Why the batch could not move one user (the keys of ``failedUsers``).
    public enum UserFailure: String, Sendable {
        /// The database refused the user's row (a constraint or trigger of the platform).
        case writeRefused = "write_refused"
    }

    mutating func count(_ failure: UserFailure, user: Int64) {
        failedUsers[failure.rawValue, default: 0] += 1
        if failedUserSamples[failure.rawValue, default: []].count < 10 { failedUserSamples[failure.rawValue, default: []].append(user) }
    }

    /// Counts a decided chunk: its users, pins, unknown stages, shortfalls and unreadable timestamps.
    mutating func add(_ chunk: ChunkDecision) {
        usersSeen += chunk.users
        pinned += chunk.pinned
        unknownStages.merge(chunk.unknownStages, uniquingKeysWith: +)
        noLongerMeeting.merge(chunk.noLongerMeeting) { earlier, later in
            var merged = earlier
            merged.merge(later)
            return merged
        }
        unreadableTimestamps.merge(chunk.unreadableTimestamps, uniquingKeysWith: +)
        phases.evaluating += chunk.seconds
    }

    mutating func count(_ from: StageID, _ to: StageID) {
        transitions += 1
        edges["\(from)->\(to)", default: 0] += 1
    }

    /// Adds what another worker of the same process counted (its phases too: worker-seconds).
    mutating func merge(_ other: BatchSummary) {
        usersSeen += other.usersSeen
        transitions += other.transitions
        edges.merge(other.edges, uniquingKeysWith: +)
        unknownStages.merge(other.unknownStages, uniquingKeysWith: +)
        pinned += other.pinned
        conflicts += other.conflicts
        unreadableTimestamps.merge(other.unreadableTimestamps, uniquingKeysWith: +)
        noLongerMeeting.merge(other.noLongerMeeting) { mine, theirs in
            StageShortfall(users: mine.users + theirs.users, sample: Array((mine.sample + theirs.sample).sorted().prefix(StageShortfall.sampleSize)))
        }
        failedUsers.merge(other.failedUsers, uniquingKeysWith: +)
        failedUserSamples.merge(other.failedUserSamples) { Array(($0 + $1).sorted().prefix(10)) }
        phases.waitingForReads += other.phases.waitingForReads
        phases.evaluating += other.phases.evaluating
        phases.writing += other.phases.writing
        phases.committing += other.phases.committing
        phases.checkpointing += other.phases.checkpointing
        phases.conflicts += other.phases.conflicts
    }
}

/// A sharded run's totals, summed over every shard by the database: what every worker of every
/// process that joined it did together.
public struct ShardedRunTotals: Sendable, Encodable, Equatable {
    /// `running` while shards are left (other processes still work on them), then `finished`.
    public var status: String
    /// Shards the id space was split into.
    public var shards: Int
    /// Shards done.
    public var shardsDone: Int
    /// Users evaluated in the committed chunks of every shard.
    public var usersSeen: Int
    /// Moves recorded in the committed chunks of every shard.
    public var transitions: Int

    enum CodingKeys: String, CodingKey {
        case status, shards, shardsDone = "shards_done", usersSeen = "users_seen", transitions
    }

    init(_ run: ShardedRun) {
        (status, shards, shardsDone, usersSeen, transitions) = (run.status, run.shardCount, run.shardsDone, run.usersSeen, run.transitions)
    }
}

/// Where a batch run's time went, in seconds. Chunks are read and evaluated beside the writes
/// (``BatchOptions/readers``): ``waitingForReads`` is only the time the run had no decided chunk to
/// write, and ``BatchSummary/durationSeconds`` is about ``waitingForReads`` + ``writing`` + ``conflicts``.
public struct BatchPhases: Sendable, Encodable, Equatable {
    /// Waiting for a chunk's snapshots that were not read yet (the read side's cost beyond the overlap).
    public var waitingForReads = 0.0
    /// Evaluating snapshots in memory (the rules, and the moves they allow), summed over the chunks:
    /// it runs in the reading tasks, beside the writes, so it is not part of the sum below.
    public var evaluating = 0.0
    /// Writing each chunk's moves and progress, commit (and any WAL checkpoint it runs) included.
    public var writing = 0.0
    /// Of ``writing``: the commits (`PersistResult.committing`; 0 where the store does not measure them).
    public var committing = 0.0
    /// Of ``writing``: the WAL checkpoints the commits ran (`PersistResult.checkpointing`; SQLite only).
    public var checkpointing = 0.0
    /// Re-reading and moving the users another writer changed meanwhile (``BatchSummary/conflicts``).
    public var conflicts = 0.0

    enum CodingKeys: String, CodingKey {
        case waitingForReads = "waiting_for_reads", evaluating, writing, committing, checkpointing, conflicts
    }
}

/// The users of one stage who no longer meet its criteria: how many, and the first few ids.
public struct StageShortfall: Sendable, Encodable, Equatable {
    /// How many users.
    public var users = 0
    /// The smallest ids among them, at most ``sampleSize``.
    public var sample: [Int64] = []

    /// How many ids the summary keeps per stage, so memory stays bounded whatever the number of users.
    public static let sampleSize = 10

    mutating func add(_ user: Int64) {
        users += 1
        if sample.count < Self.sampleSize { sample.append(user) }
    }

    /// Adds a later chunk's users (ids above these), keeping the smallest ids in the sample.
    mutating func merge(_ later: StageShortfall) {
        users += later.users
        sample = Array((sample + later.sample).prefix(Self.sampleSize))
    }
}

extension JourneyService {
    /// Re-evaluates every user: chunks read set-based by id, evaluated in memory, and each
    /// chunk's moves persisted in one transaction with the compare-and-set of the one-user path.
    ///
    /// Holds the batch lease for the run (a second batch fails with `batchRunning` until the lease
    /// expires), renewing it with every chunk it commits (a chunk with nothing to move commits only
    /// every ``BatchOptions/progressInterval``) and on a timer. A run whose lease was taken over
    /// stops with `leaseLost` before writing another chunk. A run killed at any moment leaves every
    /// committed chunk whole and nothing of the others; running again simply re-evaluates.
    /// Pinned users, unknown stages and users whose move fails alone (``BatchSummary/failedUsers``)
    /// are counted, not moved, and the run goes on.
    public func runBatch(_ batch: BatchOptions = BatchOptions()) async throws(JourneyError) -> BatchSummary {
        if !batch.dryRun, let sharded = store as? any ShardedBatchStore {
            return try await runShardedBatch(on: sharded, batch)
        }
        let started = ContinuousClock.now
        let now = clock.now()
        let rules = self.rules  // one rule set for the whole run, even if another is adopted meanwhile
        var summary = BatchSummary(dryRun: batch.dryRun, rulesVersion: rules.version)
        let total = (try? await store.funnel().reduce(0) { $0 + $1.count }) ?? 0
        let lease: BatchLease?
        do {
            lease =
                batch.dryRun
                ? nil
                : try await store.beginBatchRun(
                    rulesVersion: rules.version, owner: UUID().uuidString, holder: Self.holderName(),
                    now: now, leaseSeconds: batch.leaseSeconds, takeOver: batch.takeOver)
        } catch {
            throw .store(error)
        }
        let renewer = lease.map { LeaseRenewer(lease: $0, store: store, clock: clock) }
        defer { renewer?.stop() }
        summary.runID = lease?.runID
        // The next chunks are read while this one is evaluated and written, `readers` at a time,
        // each on a connection of its own (WAL: readers never wait for the writer), so the run
        // uses every core it is given. Chunks hold disjoint id ranges, and every read uses the
        // same `now`, so the answer is the one a single reader would give. One writer per file:
        // more workers here are more readers.
        let readers = max(1, batch.readers, batch.workers)
        var reads = ChunkReads(
            store: store, rules: rules, chunkSize: max(1, batch.chunkSize), readers: readers, now: now, rendersMetrics: !batch.dryRun)
        defer { reads.cancel() }
        do throws(JourneyError) {
            try await runChunks(
                &reads, rules: rules, now: now, write: lease.map { .run($0, progressInterval: batch.progressInterval) } ?? .nothing, summary: &summary,
                stillHeld: { () throws(JourneyError) in
                    if let reason = batch.stopRequested() { throw JourneyError.stopped(reason: reason) }
                    if let renewer, renewer.isLost { throw JourneyError.store(.leaseLost(runID: renewer.lease.runID)) }
                },
                afterChunk: { summary in await batch.onChunk?(summary.usersSeen, max(total, summary.usersSeen)) })
        } catch {
            summary.durationSeconds = (ContinuousClock.now - started).seconds
            if let lease {
                // A run that lost its lease leaves the row as the run that took over marked it.
                try? await store.finishBatchRun(lease, failed: "\(error)", usersSeen: summary.usersSeen, transitions: summary.transitions, now: clock.now())
            }
            throw error
        }
        summary.durationSeconds = (ContinuousClock.now - started).seconds
        if let lease {
            try await storeCall { () async throws(StorageError) in
                try await store.finishBatchRun(lease, failed: nil, usersSeen: summary.usersSeen, transitions: summary.transitions, now: clock.now())
            }
        }
        options.logger.info(
            "journey batch finished",
            metadata: [
                "users": "\(summary.usersSeen)", "transitions": "\(summary.transitions)", "seconds": "\(summary.durationSeconds)",
            ])
        return summary
    }

    /// How ``runChunks(_:rules:now:write:summary:stillHeld:afterChunk:)`` writes a chunk's moves.
    enum ChunkWrite {
        /// A dry run: count what would move, write nothing.
        case nothing
        /// The single-lease run: each chunk with moves renews the run's lease and records its
        /// progress; a chunk without does so only once the last record is `progressInterval` old.
        case run(BatchLease, progressInterval: Duration)
        /// One shard of a sharded run: each chunk renews the worker's lease on the shard and records its progress.
        case shard(BatchShard, leaseSeconds: Double, store: any ShardedBatchStore)
    }

    /// The chunk loop every batch runs, single-lease or one worker's shard: read a chunk (decided in
    /// the task that read it), persist its moves with compare-and-set and the run's or the shard's
    /// progress in one transaction (a single-lease run's chunk with nothing to move: only every
    /// `progressInterval`), count it into `summary`, and re-evaluate the users another writer moved
    /// meanwhile. Ends after the last chunk `reads` hands out.
    ///
    /// - parameter stillHeld: throws when the run's lease was taken over; checked before each chunk
    ///   and each re-evaluation.
    /// - throws: ``JourneyError/store(_:)`` (`leaseLost` when the lease or the shard was taken over:
    ///   the chunk in flight was rolled back).
    func runChunks(
        _ reads: inout ChunkReads, rules: RuleSet, now: Date, write: ChunkWrite, summary: inout BatchSummary,
        stillHeld: () throws(JourneyError) -> Void, afterChunk: (BatchSummary) async -> Void
    ) async throws(JourneyError) {
        var progressRecorded = ContinuousClock.now
        while true {
            try stillHeld()
            var phase = ContinuousClock.now
            func lap() -> Double {
                let now = ContinuousClock.now
                defer { phase = now }
                return (now - phase).seconds
            }
            guard let chunk = try await reads.next() else { break }
            summary.phases.waitingForReads += lap()
            guard let last = chunk.lastUserID else { continue }
            let result: PersistResult
            switch write {
            case .nothing:
                summary.add(chunk)
                for move in chunk.moves { for transition in move.transitions { summary.count(transition.from, transition.to) } }
                await afterChunk(summary)
                continue
            case .run(let lease, let progressInterval):
                if chunk.moves.isEmpty && ContinuousClock.now - progressRecorded < progressInterval {
                    summary.add(chunk)
                    await afterChunk(summary)
                    continue
                }
                let progress = BatchProgress(
                    lease: lease, lastUserID: last, usersSeen: summary.usersSeen + chunk.users, transitions: summary.transitions, now: clock.now())
                result = try await persist(chunk.moves, rules: rules, now: now, progress: progress)
                progressRecorded = ContinuousClock.now
            case .shard(let shard, let seconds, let store):
                let progress = ShardProgress(shard: shard, lastUserID: last, usersSeen: chunk.users, leaseSeconds: seconds, now: clock.now())
                result = try await persist(chunk.moves, rules: rules, now: now) { () async throws(StorageError) in
                    try await store.persist(chunk.moves, rulesVersion: rules.version, source: options.source, now: now, progress: progress)
                }
            }
            // Counted once committed: a chunk rolled back (its lease lost) counts nowhere.
            summary.add(chunk)
            summary.phases.writing += lap()
            summary.phases.committing += result.committing
            summary.phases.checkpointing += result.checkpointing
            for record in result.recorded { summary.count(record.from, record.to) }
            summary.pinned += result.pinned.count
            for user in result.refused.keys.sorted() { summary.count(.writeRefused, user: user) }
            // Another writer changed these users since the chunk was read: re-read, re-evaluate.
            for user in result.conflicted {
                try stillHeld()  // taken over since the chunk committed: write nothing more
                summary.conflicts += 1
                do {
                    for record in try await evaluateAndPersist(user: user).recorded { summary.count(record.from, record.to) }
                } catch .refused(_, .unknownStage(let value, _)) {
                    summary.unknownStages[value, default: 0] += 1
                } catch .store(.unknownUser) {
                    continue  // deleted meanwhile: nothing to move
                } catch .store(.writeRefused) {
                    summary.count(.writeRefused, user: user)
                }
            }
            summary.phases.conflicts += lap()
            await afterChunk(summary)
        }
    }

    /// The sharded batch (`ShardedBatchStore`): joins the running run of these rules or starts one,
    /// then runs ``BatchOptions/workers`` workers that each claim shards until none is left, running
    /// the chunk loop of the single-lease batch over each shard (resuming a dead worker's shard after
    /// its last committed chunk). A worker whose shard was taken over (it stalled past its lease)
    /// drops it and claims the next.
    ///
    /// - returns: this process's part, and in ``BatchSummary/run`` the run's totals over every shard
    ///   (`finished` once this process or another did the last one).
    private func runShardedBatch(on sharded: any ShardedBatchStore, _ batch: BatchOptions) async throws(JourneyError) -> BatchSummary {
        let started = ContinuousClock.now
        let now = clock.now()
        let rules = self.rules
        let workers = max(1, batch.workers)
        let chunkSize = max(1, batch.chunkSize)
        let run = try await storeCall { () async throws(StorageError) in
            try await sharded.joinOrStartRun(
                rulesVersion: rules.version, shardSize: max(1, batch.shardSize ?? chunkSize * 10), leaseSeconds: batch.leaseSeconds,
                holder: Self.holderName(), takeOver: batch.takeOver, now: now)
        }
        let total = (try? await store.funnel().reduce(0) { $0 + $1.count }) ?? 0
        let done = UsersDone()
        let process = String(UUID().uuidString.prefix(8))
        // The pool's connections are shared by the workers: each reads ahead by one chunk at most
        // when there are several, so that reads and writes never wait long for a connection.
        let readers = workers == 1 ? max(1, batch.readers) : 1
        let result = await withTaskGroup(of: Result<BatchSummary, JourneyError>.self) { group in
            for worker in 0..<workers {
                group.addTask { [self] in
                    do throws(JourneyError) {
                        return .success(
                            try await work(
                                run: run.id, owner: "\(Self.holderName()) \(process) worker \(worker)", on: sharded, rules: rules, now: now,
                                chunkSize: chunkSize, readers: readers, leaseSeconds: batch.leaseSeconds, stopRequested: batch.stopRequested
                            ) { users in
                                let sum = done.add(users)
                                await batch.onChunk?(sum, max(total, sum))
                            })
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var summary = BatchSummary(dryRun: false, rulesVersion: rules.version)
            var failure: JourneyError?
            for await outcome in group {
                switch outcome {
                case .success(let part): summary.merge(part)
                case .failure(let error): failure = failure ?? error
                }
            }
            return failure.map { Result<BatchSummary, JourneyError>.failure($0) } ?? .success(summary)
        }
        // A process that fails leaves its shards to the others (or to the next `journey batch`) once
        // their leases expire: the run is shared, so one process does not close it as failed.
        var summary = try result.get()
        summary.runID = run.id
        summary.workers = workers
        summary.durationSeconds = (ContinuousClock.now - started).seconds
        if let after = try await storeCall({ () async throws(StorageError) in try await sharded.batchRun(id: run.id) }) {
            summary.run = ShardedRunTotals(after)
        }
        options.logger.info(
            "journey batch finished",
            metadata: [
                "run": "\(run.id)", "workers": "\(workers)", "users": "\(summary.usersSeen)", "transitions": "\(summary.transitions)",
                "seconds": "\(summary.durationSeconds)", "run_status": "\(summary.run?.status ?? "unknown")",
            ])
        return summary
    }

    /// One worker of a sharded run: claims shards until none is left, and runs the chunk loop over each.
    private func work(
        run: Int64, owner: String, on sharded: any ShardedBatchStore, rules: RuleSet, now: Date, chunkSize: Int, readers: Int,
        leaseSeconds: Double, stopRequested: @escaping @Sendable () -> String?, afterChunk: @escaping @Sendable (Int) async -> Void
    ) async throws(JourneyError) -> BatchSummary {
        var summary = BatchSummary(dryRun: false, rulesVersion: rules.version)
        while let shard = try await storeCall({ () async throws(StorageError) in
            try await sharded.claimShard(run: run, owner: owner, leaseSeconds: leaseSeconds, now: clock.now())
        }) {
            var reads = ChunkReads(
                store: store, rules: rules, chunkSize: chunkSize, readers: readers, now: now,
                // From the shard's first id (exclusive bounds: the one id below −2⁶³ + 1 is never read).
                after: shard.lastUserID ?? (shard.lowID == .min ? .min : shard.lowID - 1), through: shard.highID)
            defer { reads.cancel() }
            var part = BatchSummary(dryRun: false, rulesVersion: rules.version)
            var reported = 0
            do throws(JourneyError) {
                try await runChunks(
                    &reads, rules: rules, now: now, write: .shard(shard, leaseSeconds: leaseSeconds, store: sharded), summary: &part,
                    stillHeld: { () throws(JourneyError) in
                        if let reason = stopRequested() { throw JourneyError.stopped(reason: reason) }
                    },
                    afterChunk: { part in
                        let users = part.usersSeen - reported
                        reported = part.usersSeen
                        await afterChunk(users)
                    })
                try await storeCall { () async throws(StorageError) in try await sharded.finishShard(shard, now: clock.now()) }
            } catch .store(.leaseLost) {
                // Stalled past the lease: another worker holds the shard now, and this one's last
                // chunk was rolled back. What committed before counts; the rest is the other's.
                summary.merge(part)
                continue
            } catch {
                // Failed otherwise: the shard goes back at once, with the reason on the run, so the
                // next worker neither waits out the lease nor finds nothing to do.
                try? await sharded.releaseShard(shard, error: error.description, now: clock.now())
                throw error
            }
            summary.merge(part)
        }
        return summary
    }

    /// `host pid N`, naming the lease's holder for people. `gethostname` only: `ProcessInfo.hostName`
    /// may ask DNS, which can hang in a container without a network.
    static func holderName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count - 1) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown host"
        return "\(host) pid \(getpid())"
    }
}

/// One chunk read and decided in memory, in the task that read it (so that reading and deciding
/// use as many cores as there are readers): the moves to persist and what to count.
struct ChunkDecision: Sendable {
    /// The chunk's last user (nil for an empty chunk).
    var lastUserID: Int64?
    /// Users read.
    var users = 0
    /// The moves the rules allow now, compare-and-set on each stage read.
    var moves: [PendingMove] = []
    /// Users left alone because an operator pinned them.
    var pinned = 0
    /// Users whose stored stage the rules do not know, per value.
    var unknownStages: [String: Int] = [:]
    /// Users who stay but no longer meet their stage's criteria, per stage.
    var noLongerMeeting: [String: StageShortfall] = [:]
    /// Timestamps read as missing, by `table.column`.
    var unreadableTimestamps: [String: Int] = [:]
    /// Seconds spent deciding.
    var seconds = 0.0

    /// Decides every snapshot of a chunk with `rules` at `now`; with `rendersMetrics`, renders each
    /// move's metrics JSON for the writer (``PendingMove/init(userID:expectedStage:transitions:metrics:renderedAt:)``),
    /// which a dry run does not need (without it the 1M-user dry run took 5.53–5.92 s instead of
    /// 6.31–7.16 s, three runs each, alternating; BENCHMARKS.md).
    init(_ snapshots: [UserSnapshot], rules: RuleSet, now: Date, rendersMetrics: Bool) {
        let started = ContinuousClock.now
        lastUserID = snapshots.last?.userID
        users = snapshots.count
        for snapshot in snapshots {
            if !snapshot.unreadableTimestamps.isEmpty { unreadableTimestamps.merge(snapshot.unreadableTimestamps, uniquingKeysWith: +) }
            if snapshot.pin != nil {
                pinned += 1
                continue
            }
            guard let (start, transitions) = try? rules.moves(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: now) else {
                unknownStages[snapshot.storedStage, default: 0] += 1
                continue
            }
            guard !transitions.isEmpty else {
                if !rules.meetsCriteria(of: start, metrics: snapshot.metrics, now: now) {
                    noLongerMeeting[start.rawValue, default: StageShortfall()].add(snapshot.userID)
                }
                continue
            }
            moves.append(
                rendersMetrics
                    ? PendingMove(
                        userID: snapshot.userID, expectedStage: snapshot.storedStage, transitions: transitions, metrics: snapshot.metrics, renderedAt: now)
                    : PendingMove(userID: snapshot.userID, expectedStage: snapshot.storedStage, transitions: transitions, metrics: snapshot.metrics))
        }
        seconds = (ContinuousClock.now - started).seconds
    }
}

/// The batch's reads: chunk ranges from `JourneyStore/chunkEnds(after:limit:count:)`, and up to
/// `readers` ranges read at once in tasks of their own, handed out in id order.
struct ChunkReads {
    let store: any JourneyStore
    let rules: RuleSet
    let chunkSize: Int
    let readers: Int
    let now: Date
    /// Whether each chunk's moves carry their metrics JSON, rendered by the reading task (not in a dry run).
    let rendersMetrics: Bool
    private var ends: [Int64] = []
    private var scheduled: Int64 = 0
    private var exhausted = false
    private var inFlight: [Task<ChunkDecision, any Error>] = []
    /// The last id to read (a shard's end); nil reads to the end of `users`.
    private let through: Int64?

    /// Reads the users with ids above `after`, up to `through` (inclusive) when given. By default
    /// from the smallest id a platform can hold but one (−2⁶³, the one id the batch never reads):
    /// ids of 0 and below are users too.
    init(
        store: any JourneyStore, rules: RuleSet, chunkSize: Int, readers: Int, now: Date, after: Int64 = .min, through: Int64? = nil,
        rendersMetrics: Bool = true
    ) {
        self.store = store
        self.rules = rules
        self.chunkSize = chunkSize
        self.readers = readers
        self.now = now
        self.rendersMetrics = rendersMetrics
        self.scheduled = after
        self.through = through
        exhausted = through.map { after >= $0 } ?? false
    }

    /// The next chunk in id order, decided (possibly empty: its users were deleted meanwhile), or nil after the last.
    mutating func next() async throws(JourneyError) -> ChunkDecision? {
        try await fill()
        guard !inFlight.isEmpty else { return nil }
        let read = inFlight.removeFirst()
        try await fill()
        do {
            return try await read.value
        } catch let error as StorageError {
            throw .store(error)
        } catch {
            throw .store(.failed(location: store.location, message: "\(error)"))
        }
    }

    /// Starts reads until `readers` are in flight or no user is left.
    private mutating func fill() async throws(JourneyError) {
        while inFlight.count < readers && !exhausted {
            if ends.isEmpty {
                let (store, after, limit) = (self.store, scheduled, chunkSize)
                ends = try await storeCall { () async throws(StorageError) in
                    try await store.chunkEnds(after: after, limit: limit, count: 16)
                }
                if let through {
                    // A shard's end cuts the chunk it falls in (that chunk holds fewer users), and the reads stop there.
                    let within = ends.filter { $0 <= through }
                    ends = within.count < ends.count && within.last != through ? within + [through] : within
                }
                if ends.isEmpty {
                    exhausted = true
                    return
                }
            }
            let end = ends.removeFirst()
            guard end > scheduled else {
                // A store that breaks its contract (ids out of order) fails the run with a line, not a trap.
                throw .store(.failed(location: store.location, message: "the users' ids came back out of order (\(end) after \(scheduled))"))
            }
            let range = (scheduled + 1)...end
            scheduled = range.upperBound
            if let through, scheduled >= through {
                exhausted = true
                ends = []
            }
            let (store, rules, now, rendersMetrics) = (self.store, self.rules, self.now, self.rendersMetrics)
            inFlight.append(Task { ChunkDecision(try await store.chunk(range, now: now), rules: rules, now: now, rendersMetrics: rendersMetrics) })
        }
    }

    /// Cancels the reads in flight (a run that stops early).
    func cancel() {
        for read in inFlight { read.cancel() }
    }
}

/// Users done by every worker of a process, for the progress bar.
final class UsersDone: Sendable {
    private let value = Mutex(0)

    /// Adds `count`; returns the new total.
    func add(_ count: Int) -> Int {
        value.withLock { total in
            total += count
            return total
        }
    }
}

/// Renews a batch lease every third of its length in a task of its own (the store's writes wait on
/// GRDB's queue, off Swift's cooperative pool), so a chunk slower than the lease does not lose it.
/// Notes when another run has taken the lease over; the batch checks ``isLost`` before each chunk.
final class LeaseRenewer: Sendable {
    let lease: BatchLease
    private let renewing: Task<Void, Never>
    private let lost: Flag

    /// A flag the renewing task sets and the batch reads.
    private final class Flag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    init(lease: BatchLease, store: any JourneyStore, clock: any JourneyClock) {
        self.lease = lease
        let lost = Flag()
        self.lost = lost
        let interval = max(0.05, lease.seconds / 3)
        renewing = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(interval))
                if Task.isCancelled { return }
                do throws(StorageError) {
                    try await store.renewBatchLease(lease, now: clock.now())
                } catch .leaseLost {
                    lost.set()
                    return
                } catch {
                    // Busy or I/O: the next tick, or the next chunk's commit, renews instead.
                }
            }
        }
    }

    /// Whether a renewal found the lease taken over by another run.
    var isLost: Bool { lost.isSet }

    func stop() { renewing.cancel() }
}

/// Runs a store call, reporting its failure as the service does (``JourneyError/store(_:)``).
func storeCall<T>(_ body: () async throws(StorageError) -> T) async throws(JourneyError) -> T {
    do {
        return try await body()
    } catch {
        throw .store(error)
    }
}
