import Foundation
import GRDB
import Testing
@testable import Journey
import JourneyCore
import JourneySQLite
import JourneyStorage

/// SPEC §9: no database call that can wait on a lock runs on Swift's cooperative thread pool,
/// so a cached read never waits for a writer.
@Suite("The cooperative pool never waits on SQLite")
struct StallTests {
    /// The bound on the reads, counted from the lock: under the writes' 10 s busy timeout, the
    /// earliest a stalled read could answer. The lock is released as soon as the reads answer.
    static let hold: Duration = .seconds(9)

    @Test("While another connection holds the write lock and more writes than cores wait, reads still answer")
    func readsAnswerWhileWritesWait() async throws {
        // Given more users to move than the machine has cores, one user whose evaluation is
        // cached, and one who was never read
        let writers = ProcessInfo.processInfo.activeProcessorCount + 4
        let cached = Int64(writers + 1), uncached = Int64(writers + 2), follower = Int64(writers + 3)
        let database = try TemporaryDatabase(users: writers + 3)
        for user in 1...Int64(writers) { try makeActive(user, followedBy: follower, in: database) }
        let service = try await database.service()
        _ = try await service.journey(of: cached)

        // And another connection holding SQLite's write lock (BEGIN IMMEDIATE), as another process would
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: database.path, configuration: configuration)
        try await blocker.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
        let lockTaken = ContinuousClock.now

        // When that many requests that must write are in flight, waiting for the lock
        let moves = Task {
            try await withThrowingTaskGroup(of: UserJourney.self) { group in
                for user in 1...Int64(writers) { group.addTask { try await service.evaluateAndPersist(user: user) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await Task.sleep(for: .milliseconds(500))

        // Then a cached read answers in well under a second, and a read that must query answers
        // too, both while the lock is still held. (Measured from the lock: with the pool stalled,
        // even this test's own code waits; with the former blocking store it waited 20 s, until
        // the busy timeouts. The uncached read is only bounded by the hold, because a full parallel
        // test run on two cores can make one query slow.)
        // The lock is held until the reads answer: reads that needed it, or a thread the waiting
        // writes hold, would answer only after the writes' busy timeouts freed them (10 s).
        let clock = ContinuousClock()
        let reads = Task {
            let cachedTime = try await clock.measure { _ = try await service.journey(of: cached) }
            let uncachedTime = try await clock.measure { _ = try await service.journey(of: uncached) }
            return (cachedTime, uncachedTime, ContinuousClock.now)
        }
        let (cachedTime, uncachedTime, answeredAt) = try await reads.value
        #expect(cachedTime < .seconds(1), "cached read took \(cachedTime)")
        #expect(answeredAt < lockTaken + Self.hold,
                "the reads answered \(answeredAt - lockTaken) after the lock was taken, not while it was held (uncached: \(uncachedTime))")

        // And once the lock is released, every waiting write commits
        try await blocker.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
        let answers = try await moves.value
        #expect(answers.count == writers)
        #expect(answers.allSatisfy { $0.storedStage == "J2_ACTIVE_USER" })
    }
}
