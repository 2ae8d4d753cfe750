import Foundation
import GRDB
import Testing
@testable import Journey
import JourneyCore
import JourneyStore

/// SPEC §9: no database call that can wait on a lock runs on Swift's cooperative thread pool,
/// so a cached read never waits for a writer.
@Suite("The cooperative pool never waits on SQLite")
struct StallTests {
    @Test("While another connection holds the write lock and more writes than cores wait, reads still answer")
    func readsAnswerWhileWritesWait() async throws {
        // Given more users to move than the machine has cores, one user whose evaluation is
        // cached, and one who was never read
        let writers = ProcessInfo.processInfo.activeProcessorCount + 4
        let cached = Int64(writers + 1), uncached = Int64(writers + 2), follower = Int64(writers + 3)
        let database = try TemporaryDatabase(users: writers + 3)
        for user in 1...Int64(writers) { try makeActive(user, followedBy: follower, in: database) }
        let service = try database.service()
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

        // Then a cached read and a read that must query both answer in well under a second
        let clock = ContinuousClock()
        let cachedTime = try await clock.measure { _ = try await service.journey(of: cached) }
        let uncachedTime = try await clock.measure { _ = try await service.journey(of: uncached) }
        // (measured from the lock too: with the pool stalled, even this test's own code waits, for
        // as long as the busy timeout, 20 s with the blocking store of before)
        let answeredAfter = ContinuousClock.now - lockTaken
        #expect(cachedTime < .seconds(1), "cached read took \(cachedTime)")
        #expect(uncachedTime < .seconds(1), "uncached read took \(uncachedTime)")
        #expect(answeredAfter < .seconds(2), "the reads answered \(answeredAfter) after the lock was taken")

        // And once the lock is released after 3 s, every waiting write commits
        try await Task.sleep(until: lockTaken + .seconds(3))
        try await blocker.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
        let answers = try await moves.value
        #expect(answers.count == writers)
        #expect(answers.allSatisfy { $0.storedStage == "J2_ACTIVE_USER" })
    }
}
