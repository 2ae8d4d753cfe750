public import Foundation
import JourneyCore
import JourneyStorage
public import Logging
public import Metrics
import Synchronization

/// What the service needs beyond a database and rules.
public struct JourneyOptions: Sendable {
    /// How long an evaluation stays cached; nil takes the rules' `cache_ttl_seconds`, else 300 s.
    public var cacheTTL: TimeInterval?
    /// The most users kept in the cache; the least recently used leave first.
    public var cacheCapacity: Int
    /// An evaluation slower than this is logged (the platform's slow-query alarm).
    public var slowEvaluationThreshold: TimeInterval
    /// The level of that log message: `warning` for a server; the command line logs it as `info`.
    public var slowEvaluationLevel: Logger.Level
    /// Where the service logs; silent unless the host gives a logger with a backend.
    public var logger: Logger
    /// Recorded as `journey_transitions.source` for moves this service makes.
    public var source: TransitionSource
    /// Where counters and timers go; nil uses the host's bootstrapped `MetricsSystem` (no-op until then).
    public var metricsFactory: (any MetricsFactory)?
    /// Whether writes through the store's own connection invalidate the cache at once
    /// (`JourneyStore/observeCommits(_:)`). A one-shot process that asks once per user (the
    /// command line) turns it off.
    public var tracksWrites: Bool
    /// How often ``JourneyService/run(signal:)`` asks the database whether another connection
    /// committed (SQLite: `PRAGMA data_version`): the feed's and the cache's worst-case lag behind
    /// another process, where the store has no notifications.
    public var feedPollInterval: Duration

    /// Options with the defaults a server wants: each one is the property of the same name.
    public init(
        cacheTTL: TimeInterval? = nil, cacheCapacity: Int = 100_000, slowEvaluationThreshold: TimeInterval = 0.05,
        slowEvaluationLevel: Logger.Level = .warning,
        logger: Logger = Logger(label: "journey", factory: { _ in SwiftLogNoOpLogHandler() }),
        source: TransitionSource = .api, metricsFactory: (any MetricsFactory)? = nil,
        tracksWrites: Bool = true, feedPollInterval: Duration = .milliseconds(200)
    ) {
        self.cacheTTL = cacheTTL
        self.cacheCapacity = cacheCapacity
        self.slowEvaluationThreshold = slowEvaluationThreshold
        self.slowEvaluationLevel = slowEvaluationLevel
        self.logger = logger
        self.source = source
        self.metricsFactory = metricsFactory
        self.tracksWrites = tracksWrites
        self.feedPollInterval = feedPollInterval
    }
}

/// One user's journey as the service answers it.
public struct UserJourney: Hashable, Sendable {
    /// The user's id (`users.id`).
    public let userID: Int64
    /// `customer_journey_state` once this answer was given: as read, or as written by
    /// ``JourneyService/evaluateAndPersist(user:)``.
    public let storedStage: String
    /// The evaluation from the stored stage: the moves the metrics allow and the checklist after them.
    public let evaluation: Evaluation
    /// The rows written when this answer came from ``JourneyService/evaluateAndPersist(user:)``.
    public let recorded: [RecordedTransition]
    /// The operator's pin, when one holds the user.
    public let pin: Pin?
}

/// The journey engine an API layer holds: cached evaluations, persisted moves, announcements.
///
/// Every database call runs on GRDB's dispatch queues, never on Swift's cooperative threads
/// (SPEC §9): a request waiting for another process's write lock is suspended, and cached
/// reads keep answering.
///
/// ```swift
/// let journey = try await JourneyService(path: "platform.sqlite")
/// async let following: Void = journey.run()               // the feed, the cache's ears, adoptions
/// let answer = try await journey.journey(of: 42)          // cached for five minutes
/// print(answer.evaluation.stage, answer.evaluation.next?.checks.map(\.summary) ?? [])
/// for try await move in journey.transitions(after: 0) { print(move.id, move.userID, move.to) }
/// ```
public final class JourneyService: Sendable {
    /// The store the service reads metrics from and records transitions in: the one door to it.
    package let store: any JourneyStore
    /// The options the service was made with (cache TTL and capacity, logging, retries, polling).
    public let options: JourneyOptions
    /// The rule set deciding now. It changes only for a service that follows the adopted set
    /// (`init(store:rules:options:clock:)` with ``RulesChoice/adopted``), when ``run(signal:)``
    /// sees a new adoption.
    public var rules: RuleSet { ruleState.withLock { $0.rules } }
    let clock: any JourneyClock
    private let cache: EvaluationCache<UserJourney>
    private let inflight = Mutex<[Int64: Flight]>([:])
    private let broadcaster = TransitionBroadcaster()
    private let instruments: Instruments
    private let ruleState: Mutex<RuleState>
    private let beacon = ChangeBeacon()
    private let followed = Mutex(FeedCursor())

    private struct RuleState {
        var rules: RuleSet
        /// The `journey_rules` id in force; nil when the service keeps the rules it was given.
        var adoption: Int64?
    }

    /// Serves `store` with `rules`; writes through `store` invalidate the cache at once (unless
    /// ``JourneyOptions/tracksWrites`` is off).
    ///
    /// ```swift
    /// let store = try SQLiteStore.open(path: "platform.sqlite", mode: .migrate)
    /// let journey = try await JourneyService(store: store, rules: Rules.bundledDefault())
    /// ```
    /// - throws: ``JourneyError/store(_:)`` if the write observation cannot be installed.
    public init(
        store: any JourneyStore, rules: RuleSet, options: JourneyOptions = JourneyOptions(),
        clock: any JourneyClock = SystemClock()
    ) async throws(JourneyError) {
        self.store = store
        self.ruleState = Mutex(RuleState(rules: rules, adoption: nil))
        self.options = options
        self.clock = clock
        self.cache = EvaluationCache(capacity: max(1, options.cacheCapacity), ttl: options.cacheTTL ?? rules.cacheTTL ?? 300)
        self.instruments = Instruments(factory: options.metricsFactory ?? MetricsSystem.factory)
        guard options.tracksWrites else { return }
        try await storeCall { () async throws(StorageError) in
            try await store.observeCommits { [weak self] users in self?.invalidate(users: users) }
        }
    }

    /// Serves `store` with the rule set `choice` names; with ``RulesChoice/adopted``, the service
    /// follows later adoptions while ``run(signal:)`` runs.
    ///
    /// - throws: ``JourneyError/rules(_:)`` for a bad or unreadable file or adopted text;
    ///   ``JourneyError/store(_:)`` when the store cannot be read.
    public convenience init(
        store: any JourneyStore, rules choice: RulesChoice,
        options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()
    ) async throws(JourneyError) {
        let (rules, adoption) = try await Rules.load(choice, from: store)
        try await self.init(store: store, rules: rules, options: options, clock: clock)
        if choice == .adopted { ruleState.withLock { $0.adoption = adoption?.id ?? 0 } }
    }

    /// Opens the platform database at `path`, migrates it, and serves it with the rules at
    /// `rulesPath`, else the set adopted in the database (followed), else the bundled default.
    ///
    /// Opening and migrating (which may wait for another process's lock) run on a dispatch
    /// queue, not on the caller's cooperative thread.
    /// - parameter createIfMissing: false (the default) refuses a missing file rather than
    ///   serving an empty platform from a mistyped path.
    public convenience init(
        path: String, rulesPath: String? = nil, createIfMissing: Bool = false,
        options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()
    ) async throws(JourneyError) {
        let store = try await Self.openStore(DatabaseLocation(path), access: .migrate, createIfMissing: createIfMissing, now: clock.now())
        try await self.init(store: store, rules: rulesPath.map(RulesChoice.file) ?? .adopted, options: options, clock: clock)
    }

    /// Hits, misses, evictions and the hit rate of the cache.
    public var cacheStatistics: CacheStatistics { cache.statistics }

    // MARK: Reading

    /// The user's evaluation, from the cache when fresh; concurrent misses share one query.
    ///
    /// The first caller to miss reads in its own task; the others wait for its answer (`Flight`).
    /// A task of the service's own for the read cost one more hand-off between threads per miss,
    /// which on an idle machine is a thread woken up (Benchmarks/HISTORY.md, "Issue 16: one user's evaluation").
    ///
    /// Nothing is written: `evaluation.transitions` are the moves the metrics allow now.
    public func journey(of user: Int64) async throws(JourneyError) -> UserJourney {
        if let hit = cache.value(for: user, now: clock.now()) {
            instruments.hits.increment()
            return hit
        }
        instruments.misses.increment()
        let (flight, leads) = inflight.withLock { flights in
            if let flight = flights[user] { return (flight, false) }
            let flight = Flight(generation: cache.generation(of: user))
            flights[user] = flight
            return (flight, true)
        }
        guard leads else { return try await flight.answer() }
        let result: Result<UserJourney, JourneyError>
        do {
            let answer = try await read(user: user)
            cache.store(answer, for: user, generation: flight.generation, now: clock.now())
            result = .success(answer)
        } catch {
            result = .failure(error)
        }
        inflight.withLock { if $0[user] === flight { $0[user] = nil } }
        flight.finish(result)
        return try result.get()
    }

    /// The checklist toward the user's next stage (cached like ``journey(of:)``); nil in the last stage.
    public func explain(user: Int64) async throws(JourneyError) -> Checklist? {
        try await journey(of: user).evaluation.next
    }

    /// The user's recorded moves, oldest first.
    public func history(user: Int64) async throws(JourneyError) -> [RecordedTransition] {
        try await storeCall { () async throws(StorageError) in try await store.history(user: user) }
    }

    /// A stream of every transition committed through this service from now on, at once.
    ///
    /// In-process and lossy past `limit` unread moves; for moves by any process, durable and
    /// resumable, read ``transitions(after:pageSize:)``.
    public func transitionUpdates(bufferingNewest limit: Int = 1024) -> AsyncStream<RecordedTransition> {
        broadcaster.subscribe(bufferingNewest: limit)
    }

    /// The durable feed: every committed transition with an id above `id`, from the table, then
    /// live as any process commits more (SPEC §9). Live delivery needs ``run(signal:)`` running; moves
    /// this service commits wake the feed at once, others within ``JourneyOptions/feedPollInterval``.
    ///
    /// - parameter id: the last id already received; 0 replays the whole history.
    /// - parameter pageSize: rows read per query while catching up.
    public func transitions(after id: Int64, pageSize: Int = 500) -> TransitionFeed {
        TransitionFeed(store: store, beacon: beacon, after: id, pageSize: max(1, pageSize))
    }

    /// The id of the last committed transition (0 when none): where a feed that wants only new moves starts.
    public func lastTransitionID() async throws(JourneyError) -> Int64 {
        try await storeCall { () async throws(StorageError) in try await store.feedHead().transition }
    }

    /// Follows the database until the calling task is cancelled (a host runs it beside its server,
    /// e.g. in a `ServiceGroup`): polls for commits by any process, then wakes the feeds, drops the
    /// cached answers of users moved, pinned or unpinned elsewhere, and, for a service that follows
    /// the adopted rules, switches to a newly adopted set (dropping every cached answer).
    ///
    /// Metric writes by other processes (posts, follows) are not in any log: their effect on a
    /// cached answer stays bounded by the cache's TTL, as SPEC §4 says. Run it once per service.
    ///
    /// - parameter signal: how commits are noticed; the default polls `PRAGMA data_version` every
    ///   ``JourneyOptions/feedPollInterval``.
    /// - throws: ``JourneyError/store(_:)`` when the database cannot be watched at all. A failed
    ///   read of the changes is logged, and tried again at the next commit.
    public func run(signal: (any ChangeSignal)? = nil) async throws(JourneyError) {
        let head = try await storeCall { () async throws(StorageError) in try await store.feedHead() }
        followed.withLock { $0 = head }
        // What was cached before the head was read may predate a move the head already covers.
        invalidateAll()
        // An adoption between init and now counts as a new one.
        if let adoption = ruleState.withLock({ $0.adoption }), adoption != head.adoptedRules { await switchToAdoptedRules() }
        let signal = signal ?? store.changeSignal(interval: options.feedPollInterval)
        try await storeCall { () async throws(StorageError) in
            try await signal.watch { [self] in await self.catchUp() }
        }
    }

    /// Drops the cached evaluation of `user`, for writes the service could not see.
    public func invalidate(user: Int64) {
        invalidate(users: [user])
    }

    /// Drops the cached evaluations of `users`; reads in flight for them will not be cached.
    public func invalidate<Users: Sequence<Int64>>(users: Users) {
        cache.invalidate(users)
        inflight.withLock { flights in for user in users { flights[user] = nil } }
    }

    /// Drops every cached evaluation.
    public func invalidateAll() {
        cache.invalidateAll()
        inflight.withLock { $0.removeAll() }
    }

    // MARK: Writing

    /// Evaluates the user and stores the moves it allows: one decision, one write. The user is
    /// read, evaluated and moved under the store's write lock in one transaction
    /// (`JourneyStore/decide(user:now:rulesVersion:source:_:)`), so no other writer comes between.
    ///
    /// A pinned user is evaluated but not moved.
    /// - throws: ``JourneyError/refused(user:_:)`` for a stored stage the rules do not know;
    ///   `StorageError/writeRefused(userID:message:)` (in ``JourneyError/store(_:)``) when the
    ///   database refuses the user's row; `StorageError/unknownUser(id:)`.
    public func evaluateAndPersist(user: Int64) async throws(JourneyError) -> UserJourney {
        let now = clock.now()
        let rules = self.rules
        let instruments = self.instruments
        let started = ContinuousClock.now
        let (snapshot, decision, recorded) = try await storeCall { () async throws(StorageError) in
            try await store.decide(user: user, now: now, rulesVersion: rules.version, source: options.source) { [self] snapshot in
                // The read, timed as ``journey(of:)``'s is: from the call to the snapshot in hand
                // (here the wait for the write lock is part of it).
                recordQuery(ContinuousClock.now - started, user: user)
                instruments.evaluations.increment()
                let result = Result { () throws(TransitionRefusal) in
                    try rules.evaluate(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: now, moving: snapshot.pin == nil)
                }
                return ((try? result.get())?.transitions ?? [], result)
            }
        }
        let evaluation: Evaluation
        do {
            evaluation = try decision.get()
        } catch {
            throw .refused(user: user, error)
        }
        announce(recorded)
        return UserJourney(
            userID: user, storedStage: recorded.last?.to.rawValue ?? snapshot.storedStage,
            evaluation: evaluation, recorded: recorded, pin: snapshot.pin)
    }

    /// Moves the user to `target` by an explicit request, validated like an automatic move, and
    /// decided and written in one transaction under the store's write lock.
    ///
    /// A refusal made on a fresher read than the cached answer (the user was moved, pinned or
    /// unpinned elsewhere) drops that cached answer.
    /// - throws: ``JourneyError/refused(user:_:)`` naming skipped stages or unmet criteria;
    ///   ``JourneyError/pinned(user:stage:reason:)`` for a pinned user; ``JourneyError/store(_:)``.
    public func requestTransition(user: Int64, to target: StageID) async throws(JourneyError) -> RecordedTransition {
        let now = clock.now()
        let rules = self.rules
        let answer = try await storeCall { () async throws(StorageError) in
            try await store.decide(user: user, now: now, rulesVersion: rules.version, source: options.source) {
                (snapshot: UserSnapshot) -> (transitions: [Transition], decision: Result<Transition, JourneyError>) in
                if let pin = snapshot.pin { return ([], .failure(.pinned(user: user, stage: pin.stage, reason: pin.reason))) }
                do throws(TransitionRefusal) {
                    let transition = try rules.requestTransition(storedStage: snapshot.storedStage, to: target, metrics: snapshot.metrics, now: now)
                    return ([transition], .success(transition))
                } catch {
                    return ([], .failure(.refused(user: user, error)))
                }
            }
        }
        cache.invalidate(user) { $0.storedStage == answer.snapshot.storedStage && $0.pin == answer.snapshot.pin }
        if case .failure(let error) = answer.decision { throw error }
        announce(answer.recorded)
        guard let first = answer.recorded.first else {
            throw .store(.failed(location: store.location, message: "the move of user \(user) was decided but not recorded"))
        }
        return first
    }

    /// Stores moves decided elsewhere with the current ``rules`` version, then announces what committed.
    package func persist(_ moves: [PendingMove], now: Date, progress: BatchProgress? = nil) async throws(JourneyError) -> PersistResult {
        try await persist(moves, rules: rules, now: now, progress: progress)
    }

    /// Stores moves decided by `rules` (recorded as their version), then announces what committed.
    ///
    /// Users the compare-and-set found moved or pinned by another writer are dropped from the cache.
    func persist(_ moves: [PendingMove], rules: RuleSet, now: Date, progress: BatchProgress? = nil) async throws(JourneyError) -> PersistResult {
        try await persist(moves, rules: rules, now: now) { () async throws(StorageError) in
            try await store.persist(moves, rulesVersion: rules.version, source: options.source, now: now, progress: progress)
        }
    }

    /// Stores moves by `write` (the store's persist with a run's or a shard's progress), then
    /// announces what committed, as ``persist(_:rules:now:progress:)`` does.
    func persist(
        _ moves: [PendingMove], rules: RuleSet, now: Date, writing write: () async throws(StorageError) -> PersistResult
    ) async throws(JourneyError) -> PersistResult {
        let result = try await storeCall(write)
        invalidate(users: result.conflicted + result.pinned)
        announce(result.recorded)
        return result
    }

    /// Tells the metrics, the log, the cache, the in-process stream and the feed of moves that
    /// have committed: only now may anyone hear of them.
    private func announce(_ recorded: [RecordedTransition]) {
        guard !recorded.isEmpty else { return }
        for record in recorded {
            instruments.transition(from: record.from, to: record.to)
            options.logger.info(
                "journey transition",
                metadata: [
                    "id": "\(record.id)", "user": "\(record.userID)", "from": "\(record.from)", "to": "\(record.to)",
                    "source": "\(record.source.rawValue)",
                ])
        }
        invalidate(users: Set(recorded.map(\.userID)))
        broadcaster.publish(recorded)
        beacon.signal()
    }

    // MARK: Internals

    /// One step of ``run(signal:)``: reads what changed past the followed cursor and acts on it.
    private func catchUp() async {
        let cursor = followed.withLock { $0 }
        do {
            let changes = try await store.changes(after: cursor, limit: 10_000)
            if let users = changes.touchedUsers { invalidate(users: users) } else { invalidateAll() }
            followed.withLock { $0 = changes.cursor }
            if changes.rulesAdopted, ruleState.withLock({ $0.adoption }) != nil { await switchToAdoptedRules() }
        } catch {
            if Task.isCancelled { return }
            options.logger.error("journey feed: cannot read the changes; trying again at the next commit", metadata: ["error": "\(error)"])
        }
        beacon.signal()
    }

    /// Loads the adopted set in force and, if it differs from the one deciding now, decides with it from now on.
    private func switchToAdoptedRules() async {
        do {
            let (rules, adoption) = try await Rules.load(.adopted, from: store)
            let previous = ruleState.withLock { state in
                defer { state = RuleState(rules: rules, adoption: adoption?.id ?? 0) }
                return state.rules.version
            }
            invalidateAll()
            options.logger.notice(
                "journey rules adopted",
                metadata: [
                    "from": "\(previous)", "to": "\(rules.version)", "adoption": "\(adoption?.id ?? 0)",
                ])
        } catch {
            options.logger.error("journey rules: cannot load the adopted set; keeping \(rules.version)", metadata: ["error": "\(error)"])
        }
    }

    private func snapshot(user: Int64, now: Date) async throws(JourneyError) -> UserSnapshot {
        let started = ContinuousClock.now
        let snapshot = try await storeCall { () async throws(StorageError) in try await store.snapshot(user: user, now: now) }
        recordQuery(ContinuousClock.now - started, user: user)
        return snapshot
    }

    /// Times one read of a user's metrics, and logs it when slower than the threshold.
    private func recordQuery(_ elapsed: Duration, user: Int64) {
        instruments.queryTime.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        if elapsed > .seconds(options.slowEvaluationThreshold) {
            options.logger.log(level: options.slowEvaluationLevel, "slow journey evaluation", metadata: ["user": "\(user)", "duration": "\(elapsed)"])
        }
    }

    private func read(user: Int64, rules: RuleSet? = nil, now: Date? = nil) async throws(JourneyError) -> UserJourney {
        let rules = rules ?? self.rules
        let now = now ?? clock.now()
        let snapshot = try await snapshot(user: user, now: now)
        instruments.evaluations.increment()
        do {
            let evaluation = try rules.evaluate(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: now, moving: snapshot.pin == nil)
            return UserJourney(userID: user, storedStage: snapshot.storedStage, evaluation: evaluation, recorded: [], pin: snapshot.pin)
        } catch {
            throw .refused(user: user, error)
        }
    }
}

/// The swift-metrics instruments, made once (the per-edge counter when a move happens).
private struct Instruments: Sendable {
    let factory: any MetricsFactory
    let evaluations: Counter
    let hits: Counter
    let misses: Counter
    let queryTime: Metrics.Timer

    init(factory: any MetricsFactory) {
        self.factory = factory
        evaluations = Counter(label: "journey_evaluations_total", factory: factory)
        hits = Counter(label: "journey_cache_hits_total", factory: factory)
        misses = Counter(label: "journey_cache_misses_total", factory: factory)
        queryTime = Metrics.Timer(label: "journey_metrics_query_duration", factory: factory)
    }

    func transition(from: StageID, to: StageID) {
        Counter(label: "journey_transitions_total", dimensions: [("from", from.rawValue), ("to", to.rawValue)], factory: factory).increment()
    }
}
