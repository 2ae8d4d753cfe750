import Foundation
import JourneyCore
import JourneyStorage
import Testing

/// What `journey status` and `journey doctor` read: the funnel, the moves per edge, the checks of
/// every stage against its history and of every counter, and the repair of the counters.
@Suite("Contract: funnel, edge reports, doctor and repairs")
struct ReportsContractTests {
    static let stages: Set<String> = ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER", "J4_SUPER_ADMIN"]

    @Test("The funnel counts users per stored stage value, as stored", arguments: Backend.available)
    func funnel(_ backend: Backend) async throws {
        try await backend.with(.users(6)) { database in
            let store = database.store
            // Given two users moved to J2, one to J3, a legacy value, and one never evaluated
            _ = try await store.persist(
                [pending(1, [move(.j1, .j2)]), pending(2, [move(.j1, .j2)]), pending(3, [move(.j1, .j2), move(.j2, .j3)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            try await database.setStoredStage(user: 4, "J2")
            try await database.setStoredStage(user: 5, "")

            // Then each stored value is counted as it is
            let funnel = try await funnelCounts(store)
            #expect(funnel == ["J1_NEW_USER": 1, "J2_ACTIVE_USER": 2, "J3_POWER_USER": 1, "J2": 1, "": 1])
        }
    }

    @Test("Edge reports count moves in the last 7 and 30 days and in all, with the median stay before each move", arguments: Backend.available)
    func edgeReports(_ backend: Backend) async throws {
        // Given users signed up 100 days ago, who moved J1→J2 40, 10 and 1 days ago, and one who went on to J3 now
        try await backend.with(.users(4)) { database in
            let store = database.store
            for (user, daysAgo) in [(Int64(1), 40.0), (2, 10), (3, 1)] {
                _ = try await store.persist(
                    [pending(user, [move(.j1, .j2)])], rulesVersion: "v", source: .batch,
                    now: Instants.now.addingTimeInterval(-daysAgo * Instants.day), progress: nil)
            }
            _ = try await store.persist(
                [pending(3, from: "J2_ACTIVE_USER", [move(.j2, .j3)])], rulesVersion: "v", source: .api, now: Instants.now, progress: nil)

            // When the edges are reported at now
            let reports = try await store.edgeReports(now: Instants.now)

            // Then each edge has its counts and median stay (from signup for a first move, from the previous move else)
            let byEdge = Dictionary(reports.map { ("\($0.from)->\($0.to)", $0) }, uniquingKeysWith: { first, _ in first })
            #expect(reports.count == 2, "one report per edge: \(reports)")
            #expect(byEdge.count == 2)
            let first = try #require(byEdge["J1_NEW_USER->J2_ACTIVE_USER"])
            #expect(first.total == 3 && first.last30Days == 2 && first.last7Days == 1)
            let stays = [60.0, 90, 99].map { $0 * Instants.day }
            #expect(first.medianSeconds == stays[1], "median of \(stays)")
            let second = try #require(byEdge["J2_ACTIVE_USER->J3_POWER_USER"])
            #expect(second.total == 1 && second.last30Days == 1 && second.last7Days == 1)
            #expect(second.medianSeconds == Instants.day)
            // and at an instant a year later, nothing is recent
            let later = try await store.edgeReports(now: Instants.now.addingTimeInterval(365 * Instants.day))
            #expect(later.allSatisfy { $0.last7Days == 0 && $0.last30Days == 0 } && later.map(\.total).reduce(0, +) == 4)
        }
    }

    @Test("doctor finds nothing wrong in a database the store alone wrote", arguments: Backend.available)
    func doctorHealthy(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            _ = try await store.persist(
                [pending(1, [move(.j1, .j2), move(.j2, .j3)]), pending(2, [move(.j1, .j2)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            _ = try await store.decide(user: 3, now: Instants.now, rulesVersion: "v", source: .api) { _ in
                ([Transition(from: .j1, to: .j4, kind: .skip, reason: "admin")], ())
            }
            _ = try await store.pin(user: 4, reason: "held", now: Instants.now)
            let findings = try await store.doctor(stages: Self.stages, aliases: [:], initialStage: "J1_NEW_USER")
            #expect(findings.isHealthy, "\(findings)")
            #expect(findings.integrity.isEmpty && findings.unknownStages.isEmpty && findings.stageMismatches.isEmpty)
            #expect(findings.brokenHistories.isEmpty && findings.followerCountDrift.isEmpty)
            #expect(
                Set(findings.timestamps.map(\.column)).isSuperset(of: [
                    "users.created_at", "users.last_journey_update", "posts.created_at", "events.start_date",
                ]))
        }
    }

    @Test(
        "doctor finds unknown stages, stages that differ from their history, broken histories; aliases and never-evaluated users are fine",
        arguments: Backend.available)
    func doctorFindsStageProblems(_ backend: Backend) async throws {
        try await backend.with(.users(8)) { database in
            let store = database.store
            // Given user 1 moved J1→J2 properly, and then, behind the store's back:
            _ = try await store.persist(
                [pending(1, [move(.j1, .j2)]), pending(7, [move(.j1, .j2)])], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            // user 2 holds an unknown stage, user 3 a legacy alias of J1, user 4 is never evaluated (NULL), user 5 empty
            try await database.setStoredStage(user: 2, "J9_LEGACY")
            try await database.setStoredStage(user: 3, "new")
            try await database.setStoredStage(user: 4, nil)
            try await database.setStoredStage(user: 5, "")
            // user 6 is in J3 with no history; user 7's stage was set back to J1 though its history says J2
            try await database.setStoredStage(user: 6, "J3_POWER_USER")
            try await database.setStoredStage(user: 7, "J1_NEW_USER")
            // user 8's history skips a link: seq 1 J1→J2, then seq 2 J3→J4 (its stage set to match the last row)
            try await database.insertTransition(user: 8, seq: 1, from: "J1_NEW_USER", to: "J2_ACTIVE_USER")
            try await database.insertTransition(user: 8, seq: 2, from: "J3_POWER_USER", to: "J4_SUPER_ADMIN")
            try await database.setStoredStage(user: 8, "J4_SUPER_ADMIN")

            // When doctor checks with the default stages and the alias new → J1
            let findings = try await store.doctor(stages: Self.stages, aliases: ["new": "J1_NEW_USER"], initialStage: "J1_NEW_USER")

            // Then it names exactly those
            #expect(findings.unknownStages == ["J9_LEGACY": 1])
            #expect(findings.stageMismatches.sorted() == [2, 6, 7], "\(findings.stageMismatches)")
            #expect(findings.brokenHistories == [8])
            #expect(findings.followerCountDrift.isEmpty)
            #expect(!findings.isHealthy)
        }
    }

    @Test(
        "follower counts stay exact through the platform's follows writes; doctor finds drift made by hand and repairCounters fixes it",
        arguments: Backend.available)
    func followerCountsDriftAndRepair(_ backend: Backend) async throws {
        try await backend.with(.users(4)) { database in
            let store = database.store
            // Given the platform follows 2 from 1, 3 and 4, then unfollows 4 → 2, and moves 3 → 2 onto 1
            try await database.add(Platform(follows: [.init(follower: 1, following: 2), .init(follower: 3, following: 2), .init(follower: 4, following: 2)]))
            try await database.execute("DELETE FROM follows WHERE follower_id = 4 AND following_id = 2")
            try await database.execute("UPDATE follows SET following_id = 1 WHERE follower_id = 3 AND following_id = 2")

            // Then the metrics read exact counts, and doctor finds no drift
            #expect(try await store.snapshot(user: 2, now: Instants.now).metrics.followers == 1)
            #expect(try await store.snapshot(user: 1, now: Instants.now).metrics.followers == 1)
            #expect(try await store.doctor(stages: Self.stages, aliases: [:], initialStage: "J1_NEW_USER").followerCountDrift.isEmpty)
            #expect(try await store.repairCounters().isEmpty)

            // When a writer sets counts by hand, behind the triggers' back
            try await database.execute("UPDATE users SET follower_count = 40 WHERE id = 1")
            try await database.execute("UPDATE users SET follower_count = 0 WHERE id = 2")

            // Then doctor names the two users
            let findings = try await store.doctor(stages: Self.stages, aliases: [:], initialStage: "J1_NEW_USER")
            #expect(findings.followerCountDrift == [1, 2])
            #expect(!findings.isHealthy)

            // And repairCounters recounts them, and only them, leaving the history alone
            #expect(try await store.repairCounters().sorted() == [1, 2])
            #expect(try await store.doctor(stages: Self.stages, aliases: [:], initialStage: "J1_NEW_USER").isHealthy)
            #expect(try await store.snapshot(user: 1, now: Instants.now).metrics.followers == 1)
            #expect(try await store.snapshot(user: 2, now: Instants.now).metrics.followers == 1)
            #expect(try await store.repairCounters().isEmpty)
            #expect(try await database.integer("SELECT COUNT(*) FROM follows") == 2)
        }
    }

    @Test("Users inserted after the migration get the first stage and count their followers, even follows written before them", arguments: Backend.available)
    func usersInsertedLater(_ backend: Backend) async throws {
        try await backend.with(.users(1)) { database in
            // Given follows of users 2 and 3 written before those users exist
            try await database.add(Platform(follows: [.init(follower: 1, following: 2), .init(follower: 1, following: 3)]))
            // When the platform inserts them
            try await database.add(Platform(users: [.init(id: 2, createdAt: .at(Instants.now)), .init(id: 3)]))
            // Then they are in the first stage with their followers counted
            for user in Int64(2)...3 {
                let snapshot = try await database.store.snapshot(user: user, now: Instants.now)
                #expect(snapshot.storedStage == "J1_NEW_USER" && snapshot.metrics.followers == 1, "user \(user)")
            }
            #expect(try await database.store.doctor(stages: Self.stages, aliases: [:], initialStage: "J1_NEW_USER").isHealthy)
        }
    }
}
