import Foundation
import Synchronization

/// Where the service reads "now": the wall clock in production, a manual one in tests.
///
/// Evaluation needs wall time (`days_since_signup`), so the clock gives `Date`s.
public protocol JourneyClock: Sendable {
    func now() -> Date
}

/// The system's wall clock.
public struct SystemClock: JourneyClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that moves only when told to, for tests and what-if runs.
public final class ManualClock: JourneyClock {
    private let current: Mutex<Date>

    public init(_ start: Date) { current = Mutex(start) }

    public func now() -> Date { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    public func set(_ date: Date) { current.withLock { $0 = date } }
}
