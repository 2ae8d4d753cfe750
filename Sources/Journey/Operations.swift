public import Foundation

// What an operator does besides evaluating: pins, histories, the funnel and the reports of
// `journey status`, the checks of `journey doctor`, adopting rules. The command line reaches the
// database only through these methods and those of JourneyService.swift and Batch.swift.

/// What `journey rules adopt` did: the set now in force and the one it replaced.
public struct RulesAdoption: Hashable, Sendable, Codable {
    /// The adoption just recorded (its id, version, text, file and time).
    public var adopted: AdoptedRules
    /// The adoption in force before; nil when the callers used their default until now.
    public var replaced: AdoptedRules?

    /// An adoption and the one it replaced.
    public init(adopted: AdoptedRules, replaced: AdoptedRules?) {
        self.adopted = adopted
        self.replaced = replaced
    }
}

extension JourneyService {
    // MARK: Pins

    /// Holds `user` in their current stage: evaluation and the batch leave them alone until
    /// ``unpin(user:)``, and ``requestTransition(user:to:)`` refuses with ``JourneyError/pinned(user:stage:reason:)``.
    /// Pinning again replaces the reason. Drops the user's cached answer.
    ///
    /// - parameter reason: why, shown with the pin (not empty).
    /// - returns: the stage pinned, as stored (empty for a user never evaluated, held in the first stage).
    /// - throws: ``JourneyError/store(_:)``: `StorageError/unknownUser(id:)`, `StorageError/readOnly(location:)`, …
    public func pin(user: Int64, reason: String) async throws(JourneyError) -> String {
        let now = clock.now()
        let stage = try await storeCall { () async throws(StorageError) in try await store.pin(user: user, reason: reason, now: now) }
        invalidate(user: user)
        return stage
    }

    /// Releases the pin on `user`; drops the user's cached answer.
    ///
    /// - returns: whether there was a pin.
    /// - throws: ``JourneyError/store(_:)``: `StorageError/unknownUser(id:)`, `StorageError/readOnly(location:)`, …
    public func unpin(user: Int64) async throws(JourneyError) -> Bool {
        let released = try await storeCall { () async throws(StorageError) in try await store.unpin(user: user) }
        invalidate(user: user)
        return released
    }

    // MARK: History

    /// The user's stays, stage by stage, from their row and recorded moves, as of the clock's now
    /// (never cached): what `journey history` prints.
    ///
    /// - throws: ``JourneyError/store(_:)`` with `StorageError/unknownUser(id:)` when there is no such user.
    public func historyReport(user: Int64) async throws(JourneyError) -> UserHistory {
        let now = clock.now()
        let moves = try await storeCall { () async throws(StorageError) in try await store.history(user: user) }
        let snapshot = try await storeCall { () async throws(StorageError) in try await store.snapshot(user: user, now: now) }
        return UserHistory(snapshot: snapshot, moves: moves, now: now)
    }

    // MARK: Reports (`journey status`)

    /// Users per stored stage, in the order of ``rules`` (``FunnelRow/rows(_:rules:)``): every stage
    /// with 0 where no user is, aliases after their stage, unknown values last.
    public func funnel() async throws(JourneyError) -> [FunnelRow] {
        let counts = try await storeCall { () async throws(StorageError) in try await store.funnel() }
        return FunnelRow.rows(counts, rules: rules)
    }

    /// Every edge users moved along, with moves in the 7 and 30 days before the clock's now, in
    /// all, and the median stay before the move (seconds), in the order of ``rules``' stages.
    public func edgeReports() async throws(JourneyError) -> [EdgeReport] {
        let now = clock.now()
        let rules = self.rules
        return try await storeCall { () async throws(StorageError) in try await store.edgeReports(now: now) }
            .sorted { (rules.order(of: $0.from), rules.order(of: $0.to)) < (rules.order(of: $1.from), rules.order(of: $1.to)) }
    }

    /// The most recent runs of the nightly batch, newest first, at most `limit`.
    public func batchRuns(limit: Int = 5) async throws(JourneyError) -> [BatchRun] {
        try await storeCall { () async throws(StorageError) in try await store.batchRuns(limit: max(1, limit)) }
    }

    /// The rule set adopted in the database (`journey rules adopt`); nil when none ever was.
    public func adoptedRules() async throws(JourneyError) -> AdoptedRules? {
        try await storeCall { () async throws(StorageError) in try await store.adoptedRules() }
    }

    /// Transitions recorded at or after `since`, counted per `rules_version`, most used first: which
    /// rule sets decided recent moves.
    public func rulesVersions(since: Date) async throws(JourneyError) -> [(version: String, transitions: Int)] {
        try await storeCall { () async throws(StorageError) in try await store.rulesVersions(since: since) }
    }

    /// Records the rule file at `path` (validated first) as the set every caller of the database
    /// uses from now on (SPEC §9): a service following the adopted set switches within its poll interval.
    ///
    /// - throws: ``JourneyError/rules(_:)`` for a file that cannot be read or is malformed (nothing
    ///   is adopted then); ``JourneyError/store(_:)``.
    public func adoptRules(fromFile path: String) async throws(JourneyError) -> RulesAdoption {
        let (rules, text) = try Rules.read(path: path)
        let now = clock.now()
        let replaced = try await storeCall { () async throws(StorageError) in try await store.adoptedRules() }
        let adopted = try await storeCall { () async throws(StorageError) in
            try await store.adoptRules(version: rules.version, text: text, source: path, now: now)
        }
        return RulesAdoption(adopted: adopted, replaced: replaced)
    }

    // MARK: Doctor

    /// Checks the database against ``rules``: integrity, stored stages the rules do not know,
    /// stages that differ from their last transition, histories that do not chain, follower
    /// counters that drifted, and the forms of every timestamp the metrics read (SPEC §8).
    public func doctor() async throws(JourneyError) -> DoctorFindings {
        let rules = self.rules
        let stages = Set(rules.stages.map(\.id.rawValue))
        let aliases = rules.aliases.mapValues(\.rawValue)
        return try await storeCall { () async throws(StorageError) in
            try await store.doctor(stages: stages, aliases: aliases, initialStage: rules.initialStage.rawValue)
        }
    }

    /// Recounts `users.follower_count` from `follows` where it drifted (never history), and drops
    /// every cached answer.
    ///
    /// - returns: the users repaired, by id.
    /// - throws: ``JourneyError/store(_:)``: `StorageError/readOnly(location:)` for a read-only store, …
    public func repairCounters() async throws(JourneyError) -> [Int64] {
        let repaired = try await storeCall { () async throws(StorageError) in try await store.repairCounters() }
        if !repaired.isEmpty { invalidateAll() }
        return repaired
    }
}
