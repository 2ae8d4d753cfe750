import Foundation
public import JourneyStorage
import PostgresNIO

extension PostgresStore {
    /// The committed transitions with ids above `id`, oldest first (SPEC §9's durable feed).
    ///
    /// Ids are handed out in commit order (every transaction that inserts transitions holds an
    /// advisory lock from its first insert to its commit), so reading after the last id seen never
    /// skips a move.
    /// - parameter limit: at most this many rows.
    public func transitions(after id: Int64, limit: Int) async throws(StorageError) -> [RecordedTransition] {
        try await withConnection { connection in
            try await Self.transitions(
                from: connection.query(
                    """
                    SELECT id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at
                    FROM journey_transitions WHERE id > \(id) ORDER BY id LIMIT \(Int64(max(0, limit)))
                    """, logger: self.logger))
        }
    }

    /// The cursor at the head of the log: what a follower starting now has already seen.
    public func feedHead() async throws(StorageError) -> FeedCursor {
        try await withConnection { connection in
            let row = try await connection.query(
                """
                SELECT (SELECT COALESCE(max(id), 0) FROM journey_transitions)::bigint,
                       (SELECT COALESCE(max(id), 0) FROM journey_pin_events)::bigint,
                       (SELECT COALESCE(max(id), 0) FROM journey_rules)::bigint
                """, logger: self.logger
            ).collect().first!
            let (transition, pinEvent, adopted) = try row.decode((Int64, Int64, Int64).self)
            return FeedCursor(transition: transition, pinEvent: pinEvent, adoptedRules: adopted)
        }
    }

    /// What changed past `cursor` (users moved, pinned or unpinned; a new adoption), read by one
    /// statement, so from one snapshot of the database.
    ///
    /// Pin event ids, like transition ids, are handed out in commit order (the pin trigger holds an
    /// advisory lock to the commit).
    /// - parameter limit: the most users to list; past it ``FeedChanges/touchedUsers`` is nil.
    public func changes(after cursor: FeedCursor, limit: Int = 10_000) async throws(StorageError) -> FeedChanges {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                WITH head AS (
                    SELECT (SELECT COALESCE(max(id), 0) FROM journey_transitions) AS transition,
                           (SELECT COALESCE(max(id), 0) FROM journey_pin_events) AS pin_event,
                           (SELECT COALESCE(max(id), 0) FROM journey_rules) AS adopted)
                SELECT h.transition::bigint, h.pin_event::bigint, h.adopted::bigint, touched.user_id
                FROM head h
                LEFT JOIN LATERAL (
                    SELECT user_id FROM journey_transitions WHERE id > \(cursor.transition) AND id <= h.transition
                    UNION
                    SELECT user_id FROM journey_pin_events WHERE id > \(cursor.pinEvent) AND id <= h.pin_event
                    LIMIT \(Int64(max(0, limit)) + 1)) touched ON true
                """, logger: self.logger
            ).collect()
            var head = FeedCursor(), users = Set<Int64>(), count = 0
            for row in rows {
                let (transition, pinEvent, adopted, user) = try row.decode((Int64, Int64, Int64, Int64?).self)
                head = FeedCursor(transition: transition, pinEvent: pinEvent, adoptedRules: adopted)
                if let user {
                    users.insert(user)
                    count += 1
                }
            }
            return FeedChanges(cursor: head, touchedUsers: count > limit ? nil : users, rulesAdopted: head.adoptedRules > cursor.adoptedRules)
        }
    }

    /// A ``PostgresChangeSignal`` on this database: `LISTEN`, with a poll every `interval` as a fallback.
    public func changeSignal(interval: Duration) -> any ChangeSignal {
        PostgresChangeSignal(store: self, interval: interval)
    }

    /// Every transition committed after `id`, by any process, as it commits: replayed from the table,
    /// then followed with `LISTEN journey_transitions` (the insert trigger notifies at commit) and, as
    /// a fallback when LISTEN fails or a notification is lost with its connection, polling every
    /// `pollInterval`.
    ///
    /// Each committed move is yielded once, in id order. The sequence ends with a ``StorageError``
    /// when the database cannot be read; cancelling the consuming task (or dropping the sequence)
    /// stops it and returns its connections to the pool.
    /// - parameter batchSize: rows read per query while catching up.
    public func feed(after id: Int64, pollInterval: Duration = .seconds(1), batchSize: Int = 500) -> AsyncThrowingStream<RecordedTransition, any Error> {
        AsyncThrowingStream { continuation in
            let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let task = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.listen(on: PostgresMigrations.feedChannel, waking: wake) }
                    group.addTask { await Self.tick(every: pollInterval, waking: wake) }
                    group.addTask {
                        var last = id
                        do {
                            for await _ in wakes {
                                while true {
                                    let rows = try await self.transitions(after: last, limit: batchSize)
                                    for row in rows { continuation.yield(row) }
                                    last = rows.last?.id ?? last
                                    if rows.count < batchSize { break }
                                }
                            }
                            continuation.finish()
                        } catch {
                            continuation.finish(throwing: error)
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            continuation.onTermination = { _ in
                wake.finish()
                task.cancel()
            }
        }
    }

    /// Wakes the reader at once, then every `interval`, until cancelled: the polling fallback.
    static func tick(every interval: Duration, waking wake: AsyncStream<Void>.Continuation) async {
        while !Task.isCancelled {
            wake.yield()
            try? await Task.sleep(for: interval)
        }
    }

    /// Holds one pooled connection listening on `channel` and wakes the reader on every notification
    /// (and once when listening starts, so nothing committed meanwhile is missed). Returns when
    /// cancelled; on a failure it retries after a second while polling carries on.
    func listen(on channel: String, waking wake: AsyncStream<Void>.Continuation) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        wake.yield()
                        for try await _ in notifications { wake.yield() }
                    }
                }
            } catch {
                logger.debug("journey feed: LISTEN failed, polling meanwhile", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// The PostgreSQL ``ChangeSignal``: `LISTEN journey_changes`, which triggers on `journey_transitions`,
/// `journey_pin_events` and `journey_rules` notify at every commit of any process, and a poll of the
/// feed's head (three index lookups) every `interval` in case a notification is lost (LISTEN
/// refused, as on a hot standby, or its connection dropped). `changed` is called when the head moved.
public struct PostgresChangeSignal: ChangeSignal {
    /// The database watched.
    public let store: PostgresStore
    /// Time between two polls of the head: the signal's worst-case lag when notifications are lost.
    public let interval: Duration

    /// Watches `store`, polling every `interval` besides listening.
    public init(store: PostgresStore, interval: Duration = .seconds(1)) {
        self.store = store
        self.interval = interval
    }

    /// Notes the head, then calls `changed` each time a notification or a poll finds it moved;
    /// returns when the task is cancelled.
    ///
    /// - throws: ``StorageError`` when the head cannot be read.
    public func watch(_ changed: @Sendable () async -> Void) async throws(StorageError) {
        var last = try await store.feedHead()
        await changed()  // what committed before the baseline (ChangeSignal's contract)
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        var failure: StorageError?
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await store.listen(on: PostgresMigrations.changesChannel, waking: wake) }
            group.addTask { await PostgresStore.tick(every: interval, waking: wake) }
            for await _ in wakes {
                do {
                    let head = try await store.feedHead()
                    if head != last {
                        last = head
                        await changed()
                    }
                } catch {
                    if !Task.isCancelled { failure = StorageError.wrap(error, location: store.location) }
                    break
                }
            }
            group.cancelAll()
        }
        if let failure { throw failure }
    }
}
