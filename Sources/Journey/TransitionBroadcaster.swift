import Foundation
import JourneyStorage
import Synchronization

/// Hands committed transitions to every in-process subscriber.
///
/// The service calls ``publish(_:)`` only after the transaction that wrote them committed,
/// so a subscriber never sees a stage the database does not hold.
final class TransitionBroadcaster: Sendable {
    private let subscribers = Mutex<[UInt64: AsyncStream<RecordedTransition>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// A new stream of every transition committed from now on, until the stream is dropped.
    func subscribe(bufferingNewest limit: Int) -> AsyncStream<RecordedTransition> {
        let (stream, continuation) = AsyncStream.makeStream(of: RecordedTransition.self, bufferingPolicy: .bufferingNewest(limit))
        let id = nextID.add(1, ordering: .relaxed).newValue
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { _ = $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    func publish(_ transitions: [RecordedTransition]) {
        guard !transitions.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets {
            for transition in transitions { continuation.yield(transition) }
        }
    }
}
