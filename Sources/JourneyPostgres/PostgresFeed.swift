import Foundation
import PostgresNIO

extension PostgresStore {
    /// The committed transitions with ids above `id`, oldest first (SPEC §9's durable feed).
    ///
    /// Ids are handed out in commit order (the persist transaction holds an advisory lock from its
    /// first insert to its commit), so reading after the last id seen never skips a move.
    /// - parameter limit: at most this many rows.
    public func transitions(after id: Int64, limit: Int) async throws(PostgresStoreError) -> [RecordedTransition] {
        try await withConnection { connection in
            try await Self.transitions(from: connection.query("""
                SELECT id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at
                FROM journey_transitions WHERE id > \(id) ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: self.logger))
        }
    }

    /// Every transition committed after `id`, by any process, as it commits: replayed from the table,
    /// then followed with `LISTEN journey_transitions` (the insert trigger notifies at commit) and, as
    /// a fallback when LISTEN fails or a notification is lost with its connection, polling every
    /// `pollInterval`.
    ///
    /// Each committed move is yielded once, in id order. The sequence ends with an error when the
    /// database cannot be read; cancelling the consuming task (or dropping the sequence) stops it and
    /// returns its connections to the pool.
    /// - parameter batchSize: rows read per query while catching up.
    public func feed(after id: Int64, pollInterval: Duration = .seconds(1), batchSize: Int = 500) -> AsyncThrowingStream<RecordedTransition, any Error> {
        AsyncThrowingStream { continuation in
            let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let task = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.listen(waking: wake) }
                    group.addTask {
                        while !Task.isCancelled {
                            wake.yield()
                            try? await Task.sleep(for: pollInterval)
                        }
                    }
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

    /// Holds one pooled connection listening on the feed channel and wakes the reader on every
    /// notification (and once when listening starts, so nothing committed meanwhile is missed).
    /// Returns when cancelled; on a failure it retries after a second while polling carries on.
    private func listen(waking wake: AsyncStream<Void>.Continuation) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: PostgresMigrations.feedChannel) { notifications in
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
