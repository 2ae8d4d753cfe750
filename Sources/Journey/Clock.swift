public import Foundation
import Synchronization

/// Where the service reads "now": the wall clock in production, a manual one in tests.
///
/// Evaluation needs wall time (`days_since_signup`), so the clock gives `Date`s.
public protocol JourneyClock: Sendable {
    /// The current wall-clock instant; read for `days_since_signup` and for cache expiry.
    func now() -> Date
}

/// The system's wall clock.
public struct SystemClock: JourneyClock {
    /// A clock reading the system time; it holds no state.
    public init() {}
    /// The system's current time (`Date()`), as the process's wall clock gives it.
    public func now() -> Date { Date() }
}

/// A clock that moves only when told to, for tests and what-if runs.
public final class ManualClock: JourneyClock {
    private let current: Mutex<Date>

    /// A clock that reads `start` until ``advance(by:)`` or ``set(_:)`` moves it.
    public init(_ start: Date) { current = Mutex(start) }

    /// The instant the clock was last set or advanced to; it never moves by itself.
    public func now() -> Date { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    /// Jumps the clock to `date`, which may be before the current reading (time can go back).
    public func set(_ date: Date) { current.withLock { $0 = date } }
}
