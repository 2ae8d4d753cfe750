public import Foundation
public import JourneyCore

/// Where the journey keeps every user's stage and every move: the seam between the service and a
/// database. `SQLiteStore` (JourneySQLite) and `PostgresStore` (JourneyPostgres) implement it; the
/// service, the command line and the hosts only ever talk to this protocol.
///
/// Every method is `async` and never holds a thread of Swift's cooperative pool while the database
/// waits for a lock or for I/O (SPEC §9). Every write keeps the journey's invariant in one
/// transaction: a stage is never stored without its transition rows, nor the reverse; a pinned user
/// is never moved. Values in and out are backend-neutral (``UserSnapshot``, ``RecordedTransition``,
/// ``StorageError``): no SQL type crosses the seam.
///
/// The contract suite (`Tests/JourneyContractTests`) holds every implementation to the same behaviour.
public protocol JourneyStore: Sendable {
    /// The database, for messages: a file path, or a URL without its password.
    var location: String { get }
    /// Whether the store was opened read-only: every write throws ``StorageError/readOnly(location:)``.
    var isReadOnly: Bool { get }
    /// What the migrator did when this store was opened; nil when it did not run.
    var migration: MigrationReport? { get }

    // MARK: Reading one user

    /// One user's stored stage, metrics (SPEC §2, the 30-day window ending at `now`) and pin, read
    /// in one statement.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    func snapshot(user: Int64, now: Date) async throws(StorageError) -> UserSnapshot

    /// Where the next `count` chunks of `limit` users after the id `after` end: ascending user ids,
    /// chunk k holding the users with ids in (end[k−1], end[k]] (end[−1] = `after`). Fewer than
    /// `count` near the end of `users`; empty when no user has an id above `after`.
    ///
    /// Cheap (it reads the primary key alone), so that a batch can read several chunks at once.
    func chunkEnds(after: Int64, limit: Int, count: Int) async throws(StorageError) -> [Int64]

    /// The snapshots of the users with ids in `ids`, by id, every metric aggregated over the range
    /// at once: one chunk of a batch (SPEC §7), equal to each user's ``snapshot(user:now:)``.
    func chunk(_ ids: ClosedRange<Int64>, now: Date) async throws(StorageError) -> [UserSnapshot]

    /// A user's recorded moves, oldest first.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    func history(user: Int64) async throws(StorageError) -> [RecordedTransition]

    // MARK: Writing

    /// One decision, one write: reads `user` under the write lock, lets `decide` choose the moves
    /// from that snapshot, and records them (the stage, `last_journey_update`, one transition row
    /// each) in the same transaction. No other writer can come between the read and the write, so
    /// nothing is compared-and-set and nothing retried.
    ///
    /// `decide` sees the pin too, and returns no moves for a pinned user. Its second value is
    /// handed back untouched, for the caller's own answer (an evaluation, a refusal).
    ///
    /// - throws: ``StorageError/unknownUser(id:)``; ``StorageError/writeRefused(userID:message:)``
    ///   when the database refuses the user's row (nothing is written then).
    func decide<Decision: Sendable>(
        user: Int64, now: Date, rulesVersion: String, source: TransitionSource,
        _ decide: @Sendable (UserSnapshot) -> (transitions: [Transition], decision: Decision)
    ) async throws(StorageError) -> (snapshot: UserSnapshot, decision: Decision, recorded: [RecordedTransition])

    /// Stores moves decided elsewhere (the batch) in one transaction, each only where the stored
    /// stage is still the ``PendingMove/expectedStage`` it was decided on and no pin holds the
    /// user (compare-and-set). A row the database refuses is rolled back alone and listed in
    /// ``PersistResult/refused``; the others are written.
    ///
    /// - parameter progress: a batch run's progress, recorded and its lease renewed in the same transaction.
    /// - throws: ``StorageError/leaseLost(runID:)`` when `progress`'s lease was taken over (nothing
    ///   is written); any other failure of the database as a whole.
    func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date,
        progress: BatchProgress?
    ) async throws(StorageError) -> PersistResult

    /// Holds `user` in their current stage until ``unpin(user:)``; returns the stage pinned, as
    /// stored (empty for a user never evaluated, held in the first stage).
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    func pin(user: Int64, reason: String, now: Date) async throws(StorageError) -> String

    /// Releases a pin; returns whether there was one.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    func unpin(user: Int64) async throws(StorageError) -> Bool

    // MARK: The feed (SPEC §9)

    /// Committed transitions with an id above `id`, in id order, at most `limit` of them.
    func transitions(after id: Int64, limit: Int) async throws(StorageError) -> [RecordedTransition]

    /// The cursor at the head of the log: what a follower starting now has already seen.
    func feedHead() async throws(StorageError) -> FeedCursor

    /// What changed past `cursor` (users moved, pinned or unpinned; a new adoption), read at once.
    ///
    /// - parameter limit: the most users to list; past it ``FeedChanges/touchedUsers`` is nil.
    func changes(after cursor: FeedCursor, limit: Int) async throws(StorageError) -> FeedChanges

    /// How this database tells that any process committed: a poll every `interval` (SQLite's
    /// `PRAGMA data_version`), or a notification (PostgreSQL's `LISTEN`).
    func changeSignal(interval: Duration) -> any ChangeSignal

    /// Calls `onCommit` with the users a committed write *through this store* touched (their
    /// posts, follows, events, RSVPs, row or pin), so that a cache drops them at once; writes by
    /// other processes reach it through the feed. A store that cannot tell does nothing.
    ///
    /// - throws: ``StorageError`` when the observation cannot be installed.
    func observeCommits(_ onCommit: @escaping @Sendable (Set<Int64>) -> Void) async throws(StorageError)

    // MARK: Rules (SPEC §9)

    /// Records `text` (already validated) as the rule set every caller uses from now on.
    func adoptRules(version: String, text: String, source: String, now: Date) async throws(StorageError) -> AdoptedRules

    /// The rule set in force: the latest adoption, or nil when none was ever adopted.
    func adoptedRules() async throws(StorageError) -> AdoptedRules?

    /// Transitions recorded at or after `since`, counted per `rules_version`, most used first.
    func rulesVersions(since: Date) async throws(StorageError) -> [(version: String, transitions: Int)]

    // MARK: The nightly batch

    /// Takes the batch lock: records a `running` run holding a lease of `leaseSeconds` for `owner`.
    /// A run whose lease expired (or, with `takeOver`, any running run) is marked `interrupted`.
    ///
    /// - parameter holder: who runs it, for people (`host pid 42`).
    /// - throws: ``StorageError/batchRunning(runID:holder:startedAt:leaseExpiresAt:)`` while another run's lease holds.
    func beginBatchRun(
        rulesVersion: String, owner: String, holder: String, now: Date,
        leaseSeconds: TimeInterval, takeOver: Bool
    ) async throws(StorageError) -> BatchLease

    /// Extends the lease to `now` plus its length, if this run still holds it.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over.
    func renewBatchLease(_ lease: BatchLease, now: Date) async throws(StorageError)

    /// Closes a run as `finished` (`failed` nil) or `failed`, if it still holds its lease.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another run took it over.
    func finishBatchRun(_ lease: BatchLease, failed: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StorageError)

    /// The most recent batch runs, newest first.
    func batchRuns(limit: Int) async throws(StorageError) -> [BatchRun]

    // MARK: Reports and repairs

    /// Users per stored stage value (as stored: empty for never evaluated), in no particular order.
    func funnel() async throws(StorageError) -> [(stage: String, count: Int)]

    /// Every edge users moved along, with counts for the 7 and 30 days before `now` and the median stay.
    func edgeReports(now: Date) async throws(StorageError) -> [EdgeReport]

    /// Checks the database, every stored stage against `stages` and `aliases` and its history
    /// (a user with none is in `initialStage`), the follower counters and the timestamp forms.
    func doctor(stages: Set<String>, aliases: [String: String], initialStage: String) async throws(StorageError) -> DoctorFindings

    /// Recounts `follower_count` from `follows` where it drifted; returns the users repaired.
    func repairCounters() async throws(StorageError) -> [Int64]
}

extension JourneyStore {
    /// The ends of chunks of `limit` ids over `ids` (ascending): every `limit`-th id, and the last
    /// one; what ``chunkEnds(after:limit:count:)`` returns for the ids a store read.
    public static func chunkEnds(of ids: [Int64], limit: Int) -> [Int64] {
        let limit = max(1, limit)
        var ends = stride(from: limit - 1, to: ids.count, by: limit).map { ids[$0] }
        if let last = ids.last, ends.last != last { ends.append(last) }
        return ends
    }

    /// The snapshots of the next `limit` users with ids above `after`, by id (an empty array when
    /// none is left): ``chunkEnds(after:limit:count:)`` and ``chunk(_:now:)`` in one call.
    public func chunk(after: Int64, limit: Int, now: Date) async throws(StorageError) -> [UserSnapshot] {
        guard let end = try await chunkEnds(after: after, limit: limit, count: 1).first else { return [] }
        return try await chunk(after + 1...end, now: now)
    }
}
