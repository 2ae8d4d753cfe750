import Foundation
import GRDB
import JourneyCore
import JourneySQLite
import JourneyStorage
import Synchronization
import Testing

@testable import Journey

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
        let service = try await database.service()
        _ = try await service.journey(of: cached)

        // And another connection holding SQLite's write lock (BEGIN IMMEDIATE), as another process would
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: database.path, configuration: configuration)
        try await blocker.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }

        // When that many requests that must write are in flight, waiting for the lock
        let finishedWrites = Counter()
        let writesStarted = ContinuousClock.now
        let moves = Task {
            await withTaskGroup(of: Result<UserJourney, any Error>.self) { group in
                for user in 1...Int64(writers) {
                    group.addTask {
                        defer { finishedWrites.add() }
                        do { return .success(try await service.evaluateAndPersist(user: user)) } catch { return .failure(error) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await Task.sleep(for: .milliseconds(500))

        // Then a cached read and a read that must query both answer while every write is still
        // waiting. The lock is held until the reads answer, so no write can commit before; and a
        // write gives up only after its 10 s busy timeout. Reads stalled behind the writes (a
        // cooperative pool blocked by them, or a read queued on the writer's connection) could
        // answer only once a write had failed: with the former blocking store they waited 20 s.
        // Counting finished writes, not seconds, keeps the test true on a loaded machine.
        let clock = ContinuousClock()
        let reads = Task {
            let cachedTime = try await clock.measure { _ = try await service.journey(of: cached) }
            let uncachedTime = try await clock.measure { _ = try await service.journey(of: uncached) }
            return (cachedTime, uncachedTime, finishedWrites.value)
        }
        let (cachedTime, uncachedTime, writesDone) = try await reads.value
        #expect(
            writesDone == 0,
            "the reads answered only after \(writesDone) write(s) had ended (cached: \(cachedTime), uncached: \(uncachedTime))")

        // And once the lock is released, every waiting write commits; one that had waited out the
        // busy timeout (a machine so loaded that the reads took that long) is refused as busy,
        // the store's documented answer, and nothing else
        try await blocker.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
        let released = ContinuousClock.now
        let answers = await moves.value
        #expect(answers.count == writers)
        for answer in answers {
            switch answer {
            case .success(let journey):
                #expect(journey.storedStage == "J2_ACTIVE_USER")
            case .failure(let error):
                let waited = released - writesStarted
                var isBusy = false
                if case .store(.busy)? = error as? JourneyError { isBusy = true }
                #expect(
                    waited >= .seconds(SQLiteStore.busyTimeout) && isBusy,
                    "a waiting write failed after \(waited) (reads: \(cachedTime), \(uncachedTime)): \(error)")
            }
        }
    }
}

/// How many of the waiting writes have ended, either way.
private final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
