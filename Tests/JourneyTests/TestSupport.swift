import Foundation
import GRDB
import JourneyCore
import JourneySQLite
import JourneyStorage
import JourneyTestSupport

@testable import Journey

/// A fixed "now" for every test: 2026-06-01 12:00:00 UTC.
let testNow = Date(timeIntervalSince1970: 1_780_315_200)

/// A migrated database in a fresh temporary directory, removed when the value goes away.
final class TemporaryDatabase {
    let directory: URL
    let path: String
    let database: SQLiteStore

    init(users: Int = 0) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("journey-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("test.sqlite").path
        database = try SQLiteStore.open(path: path, mode: .migrate, now: testNow)
        if users > 0 { try addUsers(1...Int64(users)) }
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Users signed up 100 days before `testNow`, onboarded, on the free tier.
    func addUsers(_ ids: ClosedRange<Int64>, tier: String = "free", role: String = "user") throws {
        try database.writer.write { db in
            for id in ids {
                try db.execute(
                    sql: """
                        INSERT INTO users(id, email, role, subscription_tier, is_onboarding_complete, created_at, last_journey_update)
                        VALUES (?, ?, ?, ?, 1, ?, ?)
                        """,
                    arguments: [id, "u\(id)@example.org", role, tier, testNow.addingTimeInterval(-100 * 86_400), testNow.addingTimeInterval(-100 * 86_400)])
            }
        }
    }

    func service(clock: ManualClock = ManualClock(testNow), options: JourneyOptions = JourneyOptions()) async throws -> JourneyService {
        try await JourneyService(store: database, rules: try Rules.bundledDefault(), options: options, clock: clock)
    }

    func execute(_ sql: String, _ arguments: StatementArguments = []) throws {
        try database.writer.write { try $0.execute(sql: sql, arguments: arguments) }
    }
}

/// Makes `user` fit J2 (one post, one follow) through `database`.
func makeActive(_ user: Int64, followedBy other: Int64, in database: TemporaryDatabase) throws {
    try database.execute("INSERT INTO posts(user_id, content, created_at) VALUES (?, 'hello', ?)", [user, testNow.addingTimeInterval(-86_400)])
    try database.execute("INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)", [other, user, testNow])
}

/// A ``ChangeSignal`` that fires only when a test says so, and lets it wait until the service
/// has acted on the change (the feed's analogue of a manual clock).
final class ManualSignal: ChangeSignal {
    private let requests: AsyncStream<CheckedContinuation<Void, Never>>
    private let requester: AsyncStream<CheckedContinuation<Void, Never>>.Continuation

    init() {
        (requests, requester) = AsyncStream.makeStream()
    }

    func watch(_ changed: @Sendable () async -> Void) async throws(StorageError) {
        for await done in requests {
            await changed()
            done.resume()
        }
    }

    /// Signals a change and returns once the service has read and applied it.
    func fire() async {
        await withCheckedContinuation { requester.yield($0) }
    }
}

/// A transition from `from` to `to` for `user`, as another process's writer would store it.
func pendingMove(_ user: Int64, _ from: StageID, _ to: StageID) -> PendingMove {
    PendingMove(
        userID: user, expectedStage: from.rawValue,
        transitions: [Transition(from: from, to: to, kind: .next, reason: "moved elsewhere")], metrics: UserMetrics())
}

extension JourneyService {
    /// The SQLite store behind the service, for the raw SQL of the tests in this package.
    var sqlite: SQLiteStore { store as! SQLiteStore }
}
