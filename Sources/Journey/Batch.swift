import Foundation
import JourneyCore
import JourneyStore

/// How to run the nightly re-evaluation.
public struct BatchOptions: Sendable {
    /// Users read, evaluated and persisted per transaction.
    public var chunkSize: Int
    /// Evaluate and count, write nothing (with other rules: the what-if of a rules change).
    public var dryRun: Bool
    /// Called after each chunk with the users done so far (for a progress bar).
    public var onChunk: (@Sendable (_ usersDone: Int, _ usersTotal: Int) -> Void)?

    public init(chunkSize: Int = 2_000, dryRun: Bool = false, onChunk: (@Sendable (Int, Int) -> Void)? = nil) {
        self.chunkSize = chunkSize
        self.dryRun = dryRun
        self.onChunk = onChunk
    }
}

/// What a batch run did; `journey batch --json` prints it.
public struct BatchSummary: Sendable, Encodable {
    /// The `journey_batch_runs` id; nil for a dry run.
    public var runID: Int64?
    public var dryRun: Bool
    public var rulesVersion: String
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
    public var durationSeconds = 0.0

    public var usersPerSecond: Double { durationSeconds > 0 ? Double(usersSeen) / durationSeconds : 0 }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", dryRun = "dry_run", rulesVersion = "rules_version", usersSeen = "users_seen"
        case transitions, edges, unknownStages = "unknown_stages", pinned, conflicts, durationSeconds = "duration_seconds"
        case usersPerSecond = "users_per_second"
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
        try container.encode(durationSeconds, forKey: .durationSeconds)
        try container.encode(usersPerSecond, forKey: .usersPerSecond)
    }

    mutating func count(_ from: StageID, _ to: StageID) {
        transitions += 1
        edges["\(from)->\(to)", default: 0] += 1
    }
}

extension JourneyService {
    /// Re-evaluates every user: chunks read set-based by id, evaluated in memory, and each
    /// chunk's moves persisted in one transaction with the compare-and-set of the one-user path.
    ///
    /// Holds the batch lock for the run (a second batch fails with `batchRunning`). A run
    /// killed at any moment leaves every committed chunk whole and nothing of the others;
    /// running again simply re-evaluates. Pinned users and unknown stages are counted, not moved.
    public func runBatch(_ batch: BatchOptions = BatchOptions(), isAlive: @escaping @Sendable (Int32) -> Bool = JourneyService.processIsAlive) async throws(JourneyError) -> BatchSummary {
        let started = ContinuousClock.now
        let now = clock.now()
        let rules = self.rules  // one rule set for the whole run, even if another is adopted meanwhile
        var summary = BatchSummary(dryRun: batch.dryRun, rulesVersion: rules.version)
        let total = (try? await database.funnel().reduce(0) { $0 + $1.count }) ?? 0
        let runID: Int64?
        do {
            runID = batch.dryRun ? nil : try await database.beginBatchRun(rulesVersion: rules.version, pid: getpid(), now: now, isAlive: isAlive)
        } catch {
            throw .store(error)
        }
        summary.runID = runID
        do {
            var after: Int64 = 0
            while true {
                let snapshots = try await storeCall { () async throws(StoreError) in try await database.chunk(after: after, limit: max(1, batch.chunkSize), now: now) }
                guard let last = snapshots.last else { break }
                var moves: [PendingMove] = []
                for snapshot in snapshots {
                    if snapshot.pin != nil {
                        summary.pinned += 1
                        continue
                    }
                    guard let evaluation = try? rules.evaluate(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: now) else {
                        summary.unknownStages[snapshot.storedStage, default: 0] += 1
                        continue
                    }
                    guard !evaluation.transitions.isEmpty else { continue }
                    moves.append(PendingMove(userID: snapshot.userID, expectedStage: snapshot.storedStage,
                                             transitions: evaluation.transitions, metrics: snapshot.metrics))
                }
                summary.usersSeen += snapshots.count
                if let runID {
                    let progress = BatchProgress(runID: runID, lastUserID: last.userID, usersSeen: summary.usersSeen, transitions: summary.transitions)
                    let result = try await persist(moves, rules: rules, now: now, progress: progress)
                    for record in result.recorded { summary.count(record.from, record.to) }
                    summary.pinned += result.pinned.count
                    // Another writer changed these users since the chunk was read: re-read, re-evaluate.
                    for user in result.conflicted {
                        summary.conflicts += 1
                        do {
                            for record in try await evaluateAndPersist(user: user).recorded { summary.count(record.from, record.to) }
                        } catch .refused(_, .unknownStage(let value, _)) {
                            summary.unknownStages[value, default: 0] += 1
                        } catch .store(.unknownUser) {
                            continue  // deleted meanwhile: nothing to move
                        }
                    }
                } else {
                    for move in moves { for transition in move.transitions { summary.count(transition.from, transition.to) } }
                }
                after = last.userID
                batch.onChunk?(summary.usersSeen, max(total, summary.usersSeen))
            }
        } catch {
            summary.durationSeconds = (ContinuousClock.now - started).seconds
            if let runID {
                try? await database.finishBatchRun(id: runID, failed: "\(error)", usersSeen: summary.usersSeen, transitions: summary.transitions, now: clock.now())
            }
            throw error
        }
        summary.durationSeconds = (ContinuousClock.now - started).seconds
        if let runID {
            try await storeCall { () async throws(StoreError) in
                try await database.finishBatchRun(id: runID, failed: nil, usersSeen: summary.usersSeen, transitions: summary.transitions, now: clock.now())
            }
        }
        options.logger.info("journey batch finished", metadata: [
            "users": "\(summary.usersSeen)", "transitions": "\(summary.transitions)", "seconds": "\(summary.durationSeconds)",
        ])
        return summary
    }

    /// Whether a process with this id exists on this machine (the batch lock's liveness test).
    public static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Runs a store call, reporting its failure as the service does (``JourneyError/store(_:)``).
public func storeCall<T>(_ body: () async throws(StoreError) -> T) async throws(JourneyError) -> T {
    do {
        return try await body()
    } catch {
        throw .store(error)
    }
}
