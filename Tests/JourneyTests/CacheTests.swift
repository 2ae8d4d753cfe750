import Foundation
import GRDB
import JourneyCore
import JourneySQLite
import JourneyStorage
import Testing

@testable import Journey

@Suite("The service's cache")
struct CacheTests {
    @Test("A hit inside the TTL, a miss after it")
    func ttl() async throws {
        // Given a service with a manual clock and the default five-minute TTL
        let database = try TemporaryDatabase(users: 3)
        let clock = ManualClock(testNow)
        let service = try await database.service(clock: clock)

        // When the same user is asked for three times, the clock moving in between
        _ = try await service.journey(of: 1)
        clock.advance(by: 299)
        _ = try await service.journey(of: 1)
        clock.advance(by: 2)
        _ = try await service.journey(of: 1)

        // Then the second was a hit and the third a miss: the entry expired at 300 s
        let statistics = service.cacheStatistics
        #expect(statistics.hits == 1)
        #expect(statistics.misses == 2)
        #expect(statistics.loads == 2)
    }

    @Test("The TTL comes from the caller when given")
    func callerTTL() async throws {
        let database = try TemporaryDatabase(users: 1)
        let clock = ManualClock(testNow)
        let service = try await database.service(clock: clock, options: JourneyOptions(cacheTTL: 10))
        _ = try await service.journey(of: 1)
        clock.advance(by: 11)
        _ = try await service.journey(of: 1)
        #expect(service.cacheStatistics.hits == 0)
        #expect(service.cacheStatistics.loads == 2)
    }

    /// A write and the users whose entries it must drop.
    struct WriteCase: CustomTestStringConvertible, Sendable {
        let name: String
        let sql: String
        let invalidated: Set<Int64>
        var testDescription: String { name }
    }

    static let writes: [WriteCase] = [
        WriteCase(name: "a post", sql: "INSERT INTO posts(user_id, content, created_at) VALUES (1, 'x', '2026-05-30 10:00:00')", invalidated: [1]),
        WriteCase(
            name: "a follow (both users)", sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (2, 3, '2026-05-30 10:00:00')",
            invalidated: [2, 3]),
        WriteCase(name: "an unfollow (both users)", sql: "DELETE FROM follows WHERE follower_id = 4 AND following_id = 5", invalidated: [4, 5]),
        WriteCase(
            name: "an RSVP", sql: "INSERT INTO event_rsvps(event_id, user_id, status, created_at) VALUES (1, 6, 'going', '2026-05-30 10:00:00')",
            invalidated: [6]),
        WriteCase(
            name: "an event organized", sql: "INSERT INTO events(organizer_id, title, start_date) VALUES (7, 'Milonga', '2026-05-01 20:00:00')",
            invalidated: [7]),
        WriteCase(name: "a change of the user row", sql: "UPDATE users SET subscription_tier = 'basic' WHERE id = 8", invalidated: [8]),
        WriteCase(name: "a deleted post", sql: "DELETE FROM posts WHERE user_id = 9", invalidated: [9]),
    ]

    @Test("Each kind of write drops the right entries and only those", arguments: writes)
    func invalidation(_ write: WriteCase) async throws {
        // Given ten cached users, with a follow 4→5, an event 1 and a post by 9 already there
        let database = try TemporaryDatabase(users: 10)
        try database.execute("INSERT INTO follows(follower_id, following_id) VALUES (4, 5)")
        try database.execute("INSERT INTO events(id, organizer_id, title, start_date) VALUES (1, 10, 'Past', '2026-01-01 20:00:00')")
        try database.execute("INSERT INTO posts(user_id, content, created_at) VALUES (9, 'old', '2026-01-01 10:00:00')")
        let service = try await database.service()
        for user in Int64(1)...10 { _ = try await service.journey(of: user) }
        let loadsBefore = service.cacheStatistics.loads

        // When the write goes through the service's own pool
        try database.execute(write.sql)

        // Then exactly the named users are loaded again
        for user in Int64(1)...10 { _ = try await service.journey(of: user) }
        #expect(service.cacheStatistics.loads - loadsBefore == write.invalidated.count)
        for user in write.invalidated {
            let before = service.cacheStatistics.loads
            _ = try await service.journey(of: user)
            #expect(service.cacheStatistics.loads == before, "user \(user) should be cached again")
        }
    }

    @Test("A cached answer reflects the write that invalidated it")
    func freshAfterWrite() async throws {
        let database = try TemporaryDatabase(users: 2)
        let service = try await database.service()
        let before = try await service.journey(of: 1)
        try database.execute("INSERT INTO posts(user_id, content, created_at) VALUES (1, 'x', '2026-05-30 10:00:00')")
        let after = try await service.journey(of: 1)
        #expect(before.evaluation.metrics.posts == 0)
        #expect(after.evaluation.metrics.posts == 1)
    }

    @Test("A rolled-back write invalidates nothing")
    func rollbackKeepsEntries() async throws {
        let database = try TemporaryDatabase(users: 2)
        let service = try await database.service()
        _ = try await service.journey(of: 1)
        try await database.database.writer.writeWithoutTransaction { db in
            try db.inTransaction {
                try db.execute(sql: "INSERT INTO posts(user_id, content) VALUES (1, 'x')")
                return .rollback
            }
        }
        let before = service.cacheStatistics.loads
        _ = try await service.journey(of: 1)
        #expect(service.cacheStatistics.loads == before)
    }

    @Test("An explicit invalidate drops one user")
    func explicitInvalidate() async throws {
        let database = try TemporaryDatabase(users: 2)
        let service = try await database.service()
        _ = try await service.journey(of: 1)
        _ = try await service.journey(of: 2)
        service.invalidate(user: 1)
        _ = try await service.journey(of: 1)
        _ = try await service.journey(of: 2)
        #expect(service.cacheStatistics.loads == 3)
    }

    @Test("100 concurrent requests for one cold user run the metrics query once")
    func singleFlight() async throws {
        let database = try TemporaryDatabase(users: 1)
        let service = try await database.service()
        let stages = try await withThrowingTaskGroup(of: StageID.self) { group in
            for _ in 0..<100 { group.addTask { try await service.journey(of: 1).evaluation.stage } }
            return try await group.reduce(into: [StageID]()) { $0.append($1) }
        }
        #expect(stages.count == 100)
        #expect(Set(stages) == [StageID("J1_NEW_USER")])
        #expect(service.cacheStatistics.loads == 1)
        #expect(service.cacheStatistics.hits + service.cacheStatistics.misses == 100)
    }

    @Test("Concurrent requests for a user who does not exist all get the shared read's error, and nothing is cached")
    func singleFlightError() async throws {
        let database = try TemporaryDatabase(users: 1)
        let service = try await database.service()
        let errors = await withTaskGroup(of: JourneyError?.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    do {
                        _ = try await service.journey(of: 99)
                        return nil
                    } catch {
                        return error as? JourneyError
                    }
                }
            }
            return await group.reduce(into: [JourneyError?]()) { $0.append($1) }
        }
        #expect(errors.count == 50)
        for error in errors {
            guard case .store(.unknownUser(id: 99)) = error else {
                Issue.record("expected unknownUser(99), got \(String(describing: error))")
                continue
            }
        }
        #expect(service.cacheStatistics.loads == 0)
        #expect(service.cacheStatistics.count == 0)
    }

    @Test("The bound holds under churn, least recently used out first")
    func bounded() async throws {
        let database = try TemporaryDatabase(users: 200)
        let service = try await database.service(options: JourneyOptions(cacheCapacity: 50))
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            _ = try await service.journey(of: Int64.random(in: 1...200, using: &random))
            #expect(service.cacheStatistics.count <= 50)
        }
        #expect(service.cacheStatistics.evictions > 0)
        // The most recently used user survives 49 others; the first one does not survive 50.
        service.invalidateAll()
        _ = try await service.journey(of: 1)
        for user in Int64(2)...50 { _ = try await service.journey(of: user) }
        let loads = service.cacheStatistics.loads
        _ = try await service.journey(of: 1)
        #expect(service.cacheStatistics.loads == loads, "user 1 is still cached after 49 others")
        for user in Int64(51)...100 { _ = try await service.journey(of: user) }
        _ = try await service.journey(of: 2)
        #expect(service.cacheStatistics.loads == loads + 51, "user 2 was evicted")
    }
}
