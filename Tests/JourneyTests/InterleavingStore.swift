import Foundation
import JourneyCore
import JourneySQLite
import JourneyStorage

/// A real SQLite store that lets a test act between the batch's reading of a chunk and the commit
/// of its moves: `beforePersist` runs first (another connection's writes, say), then the store
/// persists as usual. Every other call goes straight to the SQLite store.
struct InterleavingStore: JourneyStore {
    let base: SQLiteStore
    let beforePersist: @Sendable ([PendingMove]) async throws -> Void

    var location: String { base.location }
    var isReadOnly: Bool { base.isReadOnly }
    var migration: MigrationReport? { base.migration }

    func snapshot(user: Int64, now: Date) async throws(StorageError) -> UserSnapshot {
        try await base.snapshot(user: user, now: now)
    }

    func chunkEnds(after: Int64, limit: Int, count: Int) async throws(StorageError) -> [Int64] {
        try await base.chunkEnds(after: after, limit: limit, count: count)
    }

    func chunk(_ ids: ClosedRange<Int64>, now: Date) async throws(StorageError) -> [UserSnapshot] {
        try await base.chunk(ids, now: now)
    }

    func history(user: Int64) async throws(StorageError) -> [RecordedTransition] {
        try await base.history(user: user)
    }

    func decide<Decision: Sendable>(
        user: Int64, now: Date, rulesVersion: String, source: TransitionSource,
        _ decide: @Sendable (UserSnapshot) -> (transitions: [Transition], decision: Decision)
    ) async throws(StorageError) -> (snapshot: UserSnapshot, decision: Decision, recorded: [RecordedTransition]) {
        try await base.decide(user: user, now: now, rulesVersion: rulesVersion, source: source, decide)
    }

    func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date,
        progress: BatchProgress?
    ) async throws(StorageError) -> PersistResult {
        do {
            try await beforePersist(moves)
        } catch {
            throw .failed(location: location, message: "the test's interleaved write failed: \(error)")
        }
        return try await base.persist(moves, rulesVersion: rulesVersion, source: source, now: now, progress: progress)
    }

    func pin(user: Int64, reason: String, now: Date) async throws(StorageError) -> String {
        try await base.pin(user: user, reason: reason, now: now)
    }

    func unpin(user: Int64) async throws(StorageError) -> Bool { try await base.unpin(user: user) }

    func transitions(after id: Int64, limit: Int) async throws(StorageError) -> [RecordedTransition] {
        try await base.transitions(after: id, limit: limit)
    }

    func feedHead() async throws(StorageError) -> FeedCursor { try await base.feedHead() }

    func changes(after cursor: FeedCursor, limit: Int) async throws(StorageError) -> FeedChanges {
        try await base.changes(after: cursor, limit: limit)
    }

    func changeSignal(interval: Duration) -> any ChangeSignal { base.changeSignal(interval: interval) }

    func observeCommits(_ onCommit: @escaping @Sendable (Set<Int64>) -> Void) async throws(StorageError) {
        try await base.observeCommits(onCommit)
    }

    func adoptRules(version: String, text: String, source: String, now: Date) async throws(StorageError) -> AdoptedRules {
        try await base.adoptRules(version: version, text: text, source: source, now: now)
    }

    func adoptedRules() async throws(StorageError) -> AdoptedRules? { try await base.adoptedRules() }

    func rulesVersions(since: Date) async throws(StorageError) -> [(version: String, transitions: Int)] {
        try await base.rulesVersions(since: since)
    }

    func beginBatchRun(
        rulesVersion: String, owner: String, holder: String, now: Date,
        leaseSeconds: TimeInterval, takeOver: Bool
    ) async throws(StorageError) -> BatchLease {
        try await base.beginBatchRun(rulesVersion: rulesVersion, owner: owner, holder: holder, now: now, leaseSeconds: leaseSeconds, takeOver: takeOver)
    }

    func renewBatchLease(_ lease: BatchLease, now: Date) async throws(StorageError) {
        try await base.renewBatchLease(lease, now: now)
    }

    func finishBatchRun(_ lease: BatchLease, failed: String?, usersSeen: Int, transitions: Int, now: Date) async throws(StorageError) {
        try await base.finishBatchRun(lease, failed: failed, usersSeen: usersSeen, transitions: transitions, now: now)
    }

    func batchRuns(limit: Int) async throws(StorageError) -> [BatchRun] { try await base.batchRuns(limit: limit) }

    func funnel() async throws(StorageError) -> [(stage: String, count: Int)] { try await base.funnel() }

    func edgeReports(now: Date) async throws(StorageError) -> [EdgeReport] { try await base.edgeReports(now: now) }

    func doctor(stages: Set<String>, aliases: [String: String], initialStage: String) async throws(StorageError) -> DoctorFindings {
        try await base.doctor(stages: stages, aliases: aliases, initialStage: initialStage)
    }

    func repairCounters() async throws(StorageError) -> [Int64] { try await base.repairCounters() }
}
