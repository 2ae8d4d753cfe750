import Synchronization

/// One read of a user's evaluation shared by every caller that misses while it runs (single
/// flight): the caller that started it reads in its own task and ``finish(_:)``es it; the others
/// wait in ``answer()`` and get the same answer or error.
final class Flight: Sendable {
    /// The user's cache generation when the read started: the answer is cached only if no write
    /// invalidated the user meanwhile (``EvaluationCache``).
    let generation: UInt64
    private let state = Mutex<State>(.running([]))

    private enum State {
        case running([CheckedContinuation<Result<UserJourney, JourneyError>, Never>])
        case finished(Result<UserJourney, JourneyError>)
    }

    init(generation: UInt64) {
        self.generation = generation
    }

    /// The read's answer, once its reader finishes it.
    ///
    /// - throws: the ``JourneyError`` the read failed with.
    func answer() async throws(JourneyError) -> UserJourney {
        let result = await withCheckedContinuation { (waiting: CheckedContinuation<Result<UserJourney, JourneyError>, Never>) in
            let finished = state.withLock { state -> Result<UserJourney, JourneyError>? in
                switch state {
                case .running(var waiters):
                    waiters.append(waiting)
                    state = .running(waiters)
                    return nil
                case .finished(let result):
                    return result
                }
            }
            if let finished { waiting.resume(returning: finished) }
        }
        return try result.get()
    }

    /// Hands `result` to every caller waiting, and to any that asks later.
    func finish(_ result: Result<UserJourney, JourneyError>) {
        let waiting = state.withLock { state -> [CheckedContinuation<Result<UserJourney, JourneyError>, Never>] in
            guard case .running(let waiting) = state else { return [] }
            state = .finished(result)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: result) }
    }
}
