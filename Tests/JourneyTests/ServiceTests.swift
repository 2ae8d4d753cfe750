import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneySQLite
import JourneyStorage
import JourneyTestSupport
import MetricsTestKit
import Testing

@testable import Journey

@Suite("The service: moves, announcements, concurrency")
struct ServiceTests {
    @Test("Evaluate and persist records one row per move and announces them after commit")
    func persistAndAnnounce() async throws {
        // Given user 1 fits J2, and a subscriber listening
        let database = try TemporaryDatabase(users: 2)
        try makeActive(1, followedBy: 2, in: database)
        let service = try await database.service()
        let updates = service.transitionUpdates()

        // When the service evaluates and persists user 1
        let answer = try await service.evaluateAndPersist(user: 1)

        // Then the move is stored, and the subscriber hears exactly it, as stored
        #expect(answer.recorded.map(\.to) == [StageID("J2_ACTIVE_USER")])
        let stored = try await database.database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = 1")
        }
        #expect(stored == "J2_ACTIVE_USER")
        var iterator = updates.makeAsyncIterator()
        let heard = await iterator.next()
        #expect(heard == answer.recorded.first)
        // And the cache, invalidated by the move, now answers J2 with nothing pending
        let again = try await service.journey(of: 1)
        #expect(again.storedStage == "J2_ACTIVE_USER")
        #expect(again.evaluation.transitions.isEmpty)
    }

    @Test("A refused (rolled-back) move publishes nothing and writes nothing")
    func rollbackPublishesNothing() async throws {
        // Given a subscriber, and a move whose second row violates the schema (from == to)
        let database = try TemporaryDatabase(users: 1)
        let service = try await database.service()
        let updates = service.transitionUpdates()
        let broken = PendingMove(
            userID: 1, expectedStage: "J1_NEW_USER",
            transitions: [
                Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "ok"),
                Transition(from: "J2_ACTIVE_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "refused by CHECK"),
            ], metrics: UserMetrics())

        // When it is persisted
        let result = try await service.persist([broken], now: testNow)

        // Then the user's write is refused whole, with SQLite's reason
        #expect(result.refused[1]?.contains("CHECK") == true && result.recorded.isEmpty, "\(result)")

        // Then no row, no stage change, and nothing heard (a committed move afterwards comes first)
        let rows = try await database.database.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journey_transitions") }
        #expect(rows == 0)
        try makeActive(1, followedBy: 1, in: database)
        let committed = try await service.evaluateAndPersist(user: 1)
        var iterator = updates.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first == committed.recorded.first)
        #expect(first?.reason != "ok")
    }

    @Test("An explicit skip is refused with the stages skipped; a declared one is recorded")
    func explicitRequests() async throws {
        let database = try TemporaryDatabase(users: 2)
        try database.execute("UPDATE users SET role = 'super-admin' WHERE id = 2")
        let service = try await database.service()

        await #expect {
            try await service.requestTransition(user: 1, to: "J3_POWER_USER")
        } throws: { error in
            guard case .refused(1, .skipNotDeclared(_, _, let skipped)) = error as? JourneyError else { return false }
            return skipped == ["J2_ACTIVE_USER"]
        }
        await #expect {
            try await service.requestTransition(user: 1, to: "J2_ACTIVE_USER")
        } throws: { error in
            guard case .refused(1, .criteriaNotMet(_, _, let unmet)) = error as? JourneyError else { return false }
            return Set(unmet.map(\.metric)) == [.posts, .connections]
        }
        let move = try await service.requestTransition(user: 2, to: "J4_SUPER_ADMIN")
        #expect(move.from == "J1_NEW_USER" && move.to == "J4_SUPER_ADMIN" && move.seq == 1)
    }

    @Test("A pinned user is evaluated but not moved, and explicit moves are refused")
    func pinned() async throws {
        let database = try TemporaryDatabase(users: 2)
        try makeActive(1, followedBy: 2, in: database)
        _ = try await database.database.pin(user: 1, reason: "support ticket 12", now: testNow)
        let service = try await database.service()
        let answer = try await service.evaluateAndPersist(user: 1)
        #expect(answer.recorded.isEmpty)
        #expect(answer.evaluation.stage == "J1_NEW_USER")
        #expect(answer.pin?.reason == "support ticket 12")
        await #expect(throws: JourneyError.self) { try await service.requestTransition(user: 1, to: "J2_ACTIVE_USER") }
    }

    @Test("Unknown users and legacy stages are typed errors")
    func errors() async throws {
        let database = try TemporaryDatabase(users: 1)
        try database.execute("UPDATE users SET customer_journey_state = 'J1' WHERE id = 1")
        let service = try await database.service()
        await #expect {
            try await service.journey(of: 99)
        } throws: { error in
            guard case .store(.unknownUser(99)) = error as? JourneyError else { return false }
            return true
        }
        await #expect {
            try await service.journey(of: 1)
        } throws: { error in
            guard case .refused(1, .unknownStage("J1", _)) = error as? JourneyError else { return false }
            return true
        }
    }

    @Test("Two services on one file (two processes) moving one user record each move once")
    func concurrentWriters() async throws {
        let database = try TemporaryDatabase(users: 40)
        for user in Int64(1)...40 { try makeActive(user, followedBy: user == 1 ? 2 : 1, in: database) }
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        let rules = try Rules.bundledDefault()
        let first = try await JourneyService(store: database.database, rules: rules, clock: ManualClock(testNow))
        let second = try await JourneyService(store: other, rules: rules, clock: ManualClock(testNow))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for user in Int64(1)...40 {
                group.addTask { _ = try await first.evaluateAndPersist(user: user) }
                group.addTask { _ = try await second.evaluateAndPersist(user: user) }
            }
            try await group.waitForAll()
        }
        let rows = try database.database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT user_id, COUNT(*) AS moves, MAX(seq) AS last FROM journey_transitions GROUP BY user_id")
        }
        #expect(rows.count == 40)
        for row in rows {
            #expect(row["moves"] as Int == 1)
            #expect(row["last"] as Int == 1)
        }
    }

    /// One decision, one write (issue 14): the one-user path reads, decides and writes in one
    /// transaction under the write lock, so it has no retry loop to exhaust; what replaced the loop
    /// is checked here under the same pressure that used to make it retry.
    @Test(
        "evaluateAndPersist from tasks on two services and another connection's compare-and-set writes: each move once, none from a stale stage, one evaluation per call"
    )
    func oneDecisionOneWriteUnderConcurrency() async throws {
        // Given users with two posts each, under rules where one post makes J2 and two make J3
        let users = 30
        let database = try TemporaryDatabase(users: users)
        for user in Int64(1)...Int64(users) {
            try database.execute("INSERT INTO posts(user_id, content, created_at) VALUES (?, 'a', ?), (?, 'b', ?)", [user, testNow, user, testNow])
        }
        let rules = try RuleSetLoader.load(
            yaml: """
                version: two-steps
                stages:
                  - {id: J1_NEW_USER, title: New}
                  - {id: J2_ACTIVE_USER, title: Active, criteria: [posts >= 1]}
                  - {id: J3_POWER_USER, title: Power, criteria: [posts >= 2]}
                """, source: "two-steps.yaml")
        // and two services, the second on its own connection (as another process), each counting its evaluations
        let metrics = [TestMetrics(), TestMetrics()]
        let services = [
            try await JourneyService(store: database.database, rules: rules, options: JourneyOptions(metricsFactory: metrics[0]), clock: ManualClock(testNow)),
            try await JourneyService(
                store: try SQLiteStore.open(path: database.path, mode: .requireMigrated), rules: rules,
                options: JourneyOptions(metricsFactory: metrics[1]), clock: ManualClock(testNow)),
        ]
        // and a third connection that moves users J1→J2 with compare-and-set, as a batch elsewhere would
        let batch = try SQLiteStore.open(path: database.path, mode: .requireMigrated)

        // When three tasks per service evaluate and persist every user, in orders of their own, while the batch writes
        let answers = Collected<UserJourney>()
        let batchMoves = Collected<RecordedTransition>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<6 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(task))
                    for user in (Int64(1)...Int64(users)).shuffled(using: &random) {
                        answers.append(try await services[task % 2].evaluateAndPersist(user: user))
                    }
                }
            }
            group.addTask {
                for user in Int64(1)...Int64(users) {
                    let result = try await batch.persist(
                        [pendingMove(user, "J1_NEW_USER", "J2_ACTIVE_USER")], rulesVersion: "two-steps", source: .batch, now: testNow)
                    result.recorded.forEach(batchMoves.append)
                }
            }
            try await group.waitForAll()
        }

        // Then each call evaluated exactly once: no re-read, no retry
        #expect(answers.elements.count == 6 * users)
        #expect(metrics.map { $0.counterTotal(label: "journey_evaluations_total") }.reduce(0, +) == 6 * users)
        // and each answer's moves start from the stage its evaluation read, and are the moves it decided
        for answer in answers.elements where !answer.recorded.isEmpty {
            #expect(answer.recorded.first?.from == answer.evaluation.start, "user \(answer.userID)")
            #expect(answer.recorded.map(\.to) == answer.evaluation.transitions.map(\.to), "user \(answer.userID)")
            #expect(answer.storedStage == answer.recorded.last?.to.rawValue)
        }
        // and every user holds J3 with a history that chains, each move recorded once
        let recorded = answers.elements.flatMap(\.recorded) + batchMoves.elements
        for user in Int64(1)...Int64(users) {
            let history = try await database.database.history(user: user)
            #expect(history.map(\.seq) == Array(1...history.count), "user \(user): \(history)")
            #expect(history.map(\.to) == [StageID("J2_ACTIVE_USER"), StageID("J3_POWER_USER")], "user \(user): \(history)")
            #expect(history.first?.from == "J1_NEW_USER")
            #expect(zip(history, history.dropFirst()).allSatisfy { $0.to == $1.from }, "a move from a stale stage: \(history)")
            #expect(Set(recorded.filter { $0.userID == user }) == Set(history), "user \(user)")
        }
        #expect(try stagesMatchHistory(database.database.writer).isEmpty)
    }

    @Test("Hammered by readers while writers post and follow, every final answer equals a fresh evaluation")
    func hammer() async throws {
        // Given a generated platform database of 400 users, migrated
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journey-hammer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("h.sqlite").path
        try PlatformDataGenerator(users: 400, seed: 11, now: testNow).write(to: path)
        let clock = ManualClock(testNow)
        let service = try await JourneyService(path: path, clock: clock)

        // When 8 readers ask for random users while 2 writers insert posts and follows and persist moves
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<8 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(reader))
                    for _ in 0..<600 { _ = try await service.journey(of: Int64(1 + random.below(400))) }
                }
            }
            for writer in 0..<2 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(100 + writer))
                    for _ in 0..<300 {
                        let user = Int64(1 + random.below(400)), other = Int64(1 + random.below(400))
                        try await service.sqlite.writer.write { db in
                            try db.execute(sql: "INSERT INTO posts(user_id, content, created_at) VALUES (?, 'p', ?)", arguments: [user, testNow])
                            if user != other {
                                try db.execute(
                                    sql: "INSERT OR IGNORE INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)",
                                    arguments: [user, other, testNow])
                            }
                        }
                        _ = try await service.evaluateAndPersist(user: user)
                    }
                }
            }
            try await group.waitForAll()
        }

        // Then every cached answer equals an evaluation made from scratch on the final data
        for user in Int64(1)...400 {
            let cached = try await service.journey(of: user)
            let snapshot = try await service.sqlite.snapshot(user: user, now: testNow)
            let fresh = try service.rules.evaluate(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: testNow)
            #expect(cached.storedStage == snapshot.storedStage, "user \(user)")
            #expect(cached.evaluation == fresh, "user \(user)")
        }
        #expect(service.cacheStatistics.hits > 0)
    }
}
