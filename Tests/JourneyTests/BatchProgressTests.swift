import Foundation
import JourneyStorage
import Synchronization
import Testing

@testable import Journey

/// A single-lease run records its progress with every chunk that moves someone, and with a chunk
/// that moves no one only once the last record is `progressInterval` old.
@Suite("The batch's progress records")
struct BatchProgressTests {
    /// Runs a batch in chunks of 2 over `database`, and returns, after each chunk, the users done and
    /// the running row's recorded last user and users seen.
    private func progressSeen(_ database: TemporaryDatabase, interval: Duration) async throws -> (BatchSummary, [(done: Int, last: Int64?, seen: Int)]) {
        let service = try await database.service()
        let store = database.database
        let seen = Mutex<[(done: Int, last: Int64?, seen: Int)]>([])
        let summary = try await service.runBatch(
            BatchOptions(
                chunkSize: 2,
                onChunk: { done, _ in
                    let row = try? await store.batchRuns(limit: 1).first
                    seen.withLock { $0.append((done, row?.lastUserID, row?.usersSeen ?? -1)) }
                }, progressInterval: interval))
        return (summary, seen.withLock { $0 })
    }

    @Test("chunks that move users record their progress whatever the interval; chunks that move no one only once it has passed")
    func quietChunksRecordLess() async throws {
        // Given ten users who all fit J2
        let database = try TemporaryDatabase(users: 10)
        for user in Int64(1)...10 { try makeActive(user, followedBy: user == 1 ? 2 : 1, in: database) }

        // When a first run moves them, with an hour between the records of quiet chunks
        let (first, moving) = try await progressSeen(database, interval: .seconds(3_600))

        // Then every chunk recorded its last user and the users seen so far
        #expect(first.transitions == 10)
        #expect(moving.map(\.done) == [2, 4, 6, 8, 10])
        #expect(moving.map(\.last) == [2, 4, 6, 8, 10])
        #expect(moving.map(\.seen) == [2, 4, 6, 8, 10])

        // When a second run finds nothing to move, with the same interval
        let (second, quiet) = try await progressSeen(database, interval: .seconds(3_600))

        // Then no chunk recorded anything while it ran, and the finished row has the run's totals
        #expect(second.transitions == 0 && second.usersSeen == 10)
        #expect(quiet.map(\.done) == [2, 4, 6, 8, 10])
        #expect(quiet.allSatisfy { $0.last == nil && $0.seen == 0 })
        let finished = try #require(try await database.database.batchRuns(limit: 1).first)
        #expect(finished.id == second.runID && finished.status == "finished" && finished.usersSeen == 10)

        // When a third run finds nothing to move, with no interval
        let (_, every) = try await progressSeen(database, interval: .zero)

        // Then every quiet chunk recorded its progress, as a moving one does
        #expect(every.map(\.last) == [2, 4, 6, 8, 10])
        #expect(every.map(\.seen) == [2, 4, 6, 8, 10])
    }
}
