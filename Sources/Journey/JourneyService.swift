import Foundation
import GRDB
import JourneyCore
import JourneyStore
import Logging
import Metrics
import Synchronization

/// What the service needs beyond a database and rules.
public struct JourneyOptions: Sendable {
    /// How long an evaluation stays cached; nil takes the rules' `cache_ttl_seconds`, else 300 s.
    public var cacheTTL: TimeInterval?
    /// The most users kept in the cache; the least recently used leave first.
    public var cacheCapacity: Int
    /// An evaluation slower than this is logged as a warning (the platform's slow-query alarm).
    public var slowEvaluationThreshold: TimeInterval
    /// Where the service logs; silent unless the host gives a logger with a backend.
    public var logger: Logger
    /// Recorded as `journey_transitions.source` for moves this service makes.
    public var source: TransitionSource
    /// How many times a move is re-read and re-tried when another writer moved the user first.
    public var conflictRetries: Int
    /// Where counters and timers go; nil uses the host's bootstrapped `MetricsSystem` (no-op until then).
    public var metricsFactory: (any MetricsFactory)?
    /// Whether writes through the database's own connection invalidate the cache (TEMP triggers on
    /// the writer). A one-shot process that asks once per user (the command line) turns it off.
    public var tracksWrites: Bool

    public init(
        cacheTTL: TimeInterval? = nil, cacheCapacity: Int = 100_000, slowEvaluationThreshold: TimeInterval = 0.05,
        logger: Logger = Logger(label: "journey", factory: { _ in SwiftLogNoOpLogHandler() }),
        source: TransitionSource = .api, conflictRetries: Int = 8, metricsFactory: (any MetricsFactory)? = nil,
        tracksWrites: Bool = true
    ) {
        self.cacheTTL = cacheTTL
        self.cacheCapacity = cacheCapacity
        self.slowEvaluationThreshold = slowEvaluationThreshold
        self.logger = logger
        self.source = source
        self.conflictRetries = conflictRetries
        self.metricsFactory = metricsFactory
        self.tracksWrites = tracksWrites
    }
}

/// One user's journey as the service answers it.
public struct UserJourney: Hashable, Sendable {
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
/// ```swift
/// let journey = try JourneyService(path: "platform.sqlite")
/// let answer = try await journey.journey(of: 42)          // cached for five minutes
/// print(answer.evaluation.stage, answer.evaluation.next?.checks.map(\.summary) ?? [])
/// for await move in journey.transitionUpdates() { print(move.userID, move.to) }
/// ```
public final class JourneyService: Sendable {
    public let database: JourneyDatabase
    public let rules: RuleSet
    public let options: JourneyOptions
    let clock: any JourneyClock
    private let cache: EvaluationCache<UserJourney>
    private let inflight = Mutex<[Int64: (token: UInt64, task: Task<UserJourney, any Error>)]>([:])
    private let flightCounter = Atomic<UInt64>(0)
    private let broadcaster = TransitionBroadcaster()
    private let instruments: Instruments

    /// Serves `database` with `rules`; writes through `database` invalidate the cache.
    ///
    /// - throws: ``JourneyError/store(_:)`` if the write observation cannot be installed.
    public init(database: JourneyDatabase, rules: RuleSet, options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()) throws(JourneyError) {
        self.database = database
        self.rules = rules
        self.options = options
        self.clock = clock
        self.cache = EvaluationCache(capacity: max(1, options.cacheCapacity), ttl: options.cacheTTL ?? rules.cacheTTL ?? 300)
        self.instruments = Instruments(factory: options.metricsFactory ?? MetricsSystem.factory)
        guard options.tracksWrites, !database.isReadOnly else { return }
        let tracker = WriteTracker { [weak self] users in self?.invalidate(users: users) }
        do {
            try tracker.install(on: database.writer)
        } catch {
            throw .store(.sqlite(path: database.path, message: "cannot watch writes: \(error)"))
        }
    }

    /// Opens the platform database at `path`, migrates it, and loads the bundled rules or `rulesPath`.
    ///
    /// - parameter createIfMissing: false (the default) refuses a missing file rather than
    ///   serving an empty platform from a mistyped path.
    public convenience init(
        path: String, rulesPath: String? = nil, createIfMissing: Bool = false,
        options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()
    ) throws(JourneyError) {
        let rules = if let rulesPath { try Rules.load(path: rulesPath) } else { try Rules.bundledDefault() }
        if !createIfMissing, !FileManager.default.fileExists(atPath: path) { throw .store(.databaseMissing(path: path)) }
        let database: JourneyDatabase
        do {
            database = try JourneyDatabase.open(path: path, mode: .migrate, now: clock.now())
        } catch {
            throw .store(error)
        }
        try self.init(database: database, rules: rules, options: options, clock: clock)
    }

    /// Hits, misses, evictions and the hit rate of the cache.
    public var cacheStatistics: CacheStatistics { cache.statistics }

    // MARK: Reading

    /// The user's evaluation, from the cache when fresh; concurrent misses share one query.
    ///
    /// Nothing is written: `evaluation.transitions` are the moves the metrics allow now.
    public func journey(of user: Int64) async throws(JourneyError) -> UserJourney {
        if let hit = cache.value(for: user, now: clock.now()) {
            instruments.hits.increment()
            return hit
        }
        instruments.misses.increment()
        let token = flightCounter.add(1, ordering: .relaxed).newValue
        let task = inflight.withLock { flights -> Task<UserJourney, any Error> in
            if let flight = flights[user] { return flight.task }
            let generation = cache.generation(of: user)
            let task = Task { [self] in
                defer { inflight.withLock { if $0[user]?.token == token { $0[user] = nil } } }
                let answer = try await self.read(user: user)
                cache.store(answer, for: user, generation: generation, now: clock.now())
                return answer
            }
            flights[user] = (token, task)
            return task
        }
        do {
            return try await task.value
        } catch let error as JourneyError {
            throw error
        } catch {
            throw .store(.sqlite(path: database.path, message: "\(error)"))
        }
    }

    /// The checklist toward the user's next stage (cached like ``journey(of:)``); nil in the last stage.
    public func explain(user: Int64) async throws(JourneyError) -> Checklist? {
        try await journey(of: user).evaluation.next
    }

    /// The user's recorded moves, oldest first.
    public func history(user: Int64) async throws(JourneyError) -> [RecordedTransition] {
        try await storeCall { () async throws(StoreError) in try await database.history(user: user) }
    }

    /// A stream of every transition committed through this service from now on.
    public func transitionUpdates(bufferingNewest limit: Int = 1024) -> AsyncStream<RecordedTransition> {
        broadcaster.subscribe(bufferingNewest: limit)
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

    /// Evaluates the user and stores the moves, compare-and-set on the stage read; retried on conflict.
    ///
    /// A pinned user is evaluated but not moved.
    public func evaluateAndPersist(user: Int64) async throws(JourneyError) -> UserJourney {
        for _ in 0..<max(1, options.conflictRetries) {
            let now = clock.now()
            let answer = try await read(user: user, now: now)
            guard answer.pin == nil, !answer.evaluation.transitions.isEmpty else { return answer }
            let move = PendingMove(userID: user, expectedStage: answer.storedStage,
                                   transitions: answer.evaluation.transitions, metrics: answer.evaluation.metrics)
            let result = try await persist([move], now: now)
            if let last = result.recorded.last {
                return UserJourney(userID: user, storedStage: last.to.rawValue, evaluation: answer.evaluation,
                                   recorded: result.recorded, pin: nil)
            }
            options.logger.debug("another writer moved the user first; re-reading", metadata: ["user": "\(user)"])
        }
        throw .store(.conflictRetriesExhausted(userID: user, attempts: options.conflictRetries))
    }

    /// Moves the user to `target` by an explicit request, validated like an automatic move.
    ///
    /// - throws: ``JourneyError/refused(user:_:)`` naming skipped stages or unmet criteria;
    ///   ``JourneyError/pinned(user:stage:reason:)`` for a pinned user.
    public func requestTransition(user: Int64, to target: StageID) async throws(JourneyError) -> RecordedTransition {
        for _ in 0..<max(1, options.conflictRetries) {
            let now = clock.now()
            let snapshot = try await snapshot(user: user, now: now)
            if let pin = snapshot.pin { throw .pinned(user: user, stage: pin.stage, reason: pin.reason) }
            let transition: Transition
            do {
                transition = try rules.requestTransition(storedStage: snapshot.storedStage, to: target, metrics: snapshot.metrics, now: now)
            } catch {
                throw .refused(user: user, error)
            }
            let move = PendingMove(userID: user, expectedStage: snapshot.storedStage, transitions: [transition], metrics: snapshot.metrics)
            if let recorded = try await persist([move], now: now).recorded.first { return recorded }
        }
        throw .store(.conflictRetriesExhausted(userID: user, attempts: options.conflictRetries))
    }

    /// Stores moves decided elsewhere (the batch), then announces what committed.
    public func persist(_ moves: [PendingMove], now: Date, progress: BatchProgress? = nil) async throws(JourneyError) -> PersistResult {
        let result = try await storeCall { () async throws(StoreError) in
            try await database.persist(moves, rulesVersion: rules.version, source: options.source, now: now, progress: progress)
        }
        // The transaction has committed: only now may anyone hear of these moves.
        for record in result.recorded {
            instruments.transition(from: record.from, to: record.to)
            options.logger.info("journey transition", metadata: [
                "user": "\(record.userID)", "from": "\(record.from)", "to": "\(record.to)", "source": "\(record.source.rawValue)",
            ])
        }
        broadcaster.publish(result.recorded)
        return result
    }

    // MARK: Internals

    private func snapshot(user: Int64, now: Date) async throws(JourneyError) -> UserSnapshot {
        let started = ContinuousClock.now
        let snapshot = try await storeCall { () async throws(StoreError) in try await database.snapshot(user: user, now: now) }
        let elapsed = ContinuousClock.now - started
        instruments.queryTime.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        if elapsed > .seconds(options.slowEvaluationThreshold) {
            options.logger.warning("slow journey evaluation", metadata: ["user": "\(user)", "duration": "\(elapsed)"])
        }
        return snapshot
    }

    private func read(user: Int64, now: Date? = nil) async throws(JourneyError) -> UserJourney {
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
