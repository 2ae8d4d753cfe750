import Foundation
import JourneyStorage
import Synchronization

/// Wakes feed readers when the database may have changed: a counter, and the readers waiting
/// for it to pass a value.
final class ChangeBeacon: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    /// The current generation; pass it to ``wait(past:)`` after reading.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Something may have committed: wakes every waiter.
    func signal() {
        let waiting = state.withLock { state in
            state.generation += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once the generation has passed `generation`, or when the task is cancelled.
    func wait(past generation: UInt64) async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.generation != generation || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// The durable transition feed (SPEC §9): every committed row of `journey_transitions` after a
/// given id, in id order, each once; first those already in the table, then each new commit by
/// any process, as ``JourneyService/run(signal:)`` notices it.
///
/// Resuming is starting a new feed after the last id received: nothing is lost in between,
/// because the table is the feed. Ending is cancelling the task that iterates it (`next()`
/// then returns nil).
///
/// ```swift
/// for try await move in journey.transitions(after: lastSeenID) {
///     send(move)                 // move.id is the position to resume from
///     lastSeenID = move.id
/// }
/// ```
public struct TransitionFeed: AsyncSequence, Sendable {
    /// Each element is one committed `journey_transitions` row, its `id` the position to resume after.
    public typealias Element = RecordedTransition
    /// Iteration throws a ``JourneyError`` (`.store`) when a page of the table cannot be read.
    public typealias Failure = JourneyError

    let store: any JourneyStore
    let beacon: ChangeBeacon
    let after: Int64
    let pageSize: Int

    /// An iterator that starts after the feed's id; each iterator reads the table on its own.
    public func makeAsyncIterator() -> Iterator {
        Iterator(feed: self, cursor: after)
    }

    /// Reads a page of rows at a time; waits for the service's change signal when caught up.
    public struct Iterator: AsyncIteratorProtocol {
        let feed: TransitionFeed
        var cursor: Int64
        var buffer: [RecordedTransition] = []
        var index = 0

        /// The next committed transition, waiting for one if needed; nil once the task is cancelled.
        ///
        /// - throws: ``JourneyError/store(_:)`` when the table cannot be read; the feed can be
        ///   resumed after the last id received.
        public mutating func next() async throws(JourneyError) -> RecordedTransition? {
            while true {
                if index < buffer.count {
                    let transition = buffer[index]
                    index += 1
                    cursor = transition.id
                    return transition
                }
                if Task.isCancelled { return nil }
                let generation = feed.beacon.generation
                let (after, limit) = (cursor, feed.pageSize)
                do {
                    buffer = try await feed.store.transitions(after: after, limit: limit)
                } catch {
                    if Task.isCancelled { return nil }
                    throw .store(error)
                }
                index = 0
                if buffer.isEmpty { await feed.beacon.wait(past: generation) }
            }
        }
    }
}
