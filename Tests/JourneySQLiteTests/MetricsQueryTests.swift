import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §2: every metric of one user in one statement, checked against values computed by
/// hand on `Fixtures/sql/small-platform.sql`, and free of scans of the big tables.
@Suite("The one-statement metrics query")
struct MetricsQueryTests {
    /// One user's metrics as computed by hand (see the table at the top of the SQL script).
    struct Expected: Sendable, CustomTestStringConvertible {
        var user: Int64
        var posts: Int, postsLast30Days: Int, followers: Int, following: Int
        var eventsOrganized: Int, eventsAttended: Int
        var daysSinceSignup: Int?, daysInStage: Int?
        var onboarding: Bool?, tier: String?, role: String?

        var testDescription: String { "user \(user)" }

        func value(of metric: Metric) -> MetricValue {
            switch metric {
            case .posts: .integer(posts)
            case .postsLast30Days: .integer(postsLast30Days)
            case .followers: .integer(followers)
            case .following: .integer(following)
            case .connections: .integer(followers + following)
            case .eventsOrganized: .integer(eventsOrganized)
            case .eventsAttended: .integer(eventsAttended)
            case .daysSinceSignup: daysSinceSignup.map(MetricValue.integer) ?? .missing
            case .daysInStage: daysInStage.map(MetricValue.integer) ?? .missing
            case .onboardingComplete: onboarding.map(MetricValue.boolean) ?? .missing
            case .subscriptionTier: tier.map(MetricValue.text) ?? .missing
            case .role: role.map(MetricValue.text) ?? .missing
            }
        }
    }

    static let expectations: [Expected] = [
        // alice: 6 posts (one undated), 3 in the window; followed by 2, 3, 4; follows 2, 3;
        // organized 1 and 2; attended 1 and 3 (3 starts exactly at now); signed up 164 d 23:59:59 ago.
        Expected(
            user: 1, posts: 6, postsLast30Days: 3, followers: 3, following: 2, eventsOrganized: 2, eventsAttended: 2,
            daysSinceSignup: 164, daysInStage: 164, onboarding: true, tier: "basic", role: "user"),
        // bob: 5 d 12 h since signup.
        Expected(
            user: 2, posts: 1, postsLast30Days: 1, followers: 1, following: 2, eventsOrganized: 1, eventsAttended: 1,
            daysSinceSignup: 5, daysInStage: 5, onboarding: false, tier: "free", role: "admin"),
        // carol: signed up on a leap day, 1933 d 4 h ago.
        Expected(
            user: 3, posts: 2, postsLast30Days: 0, followers: 2, following: 1, eventsOrganized: 1, eventsAttended: 1,
            daysSinceSignup: 1933, daysInStage: 1933, onboarding: true, tier: "professional", role: "super-admin"),
        // user 4: NULL everywhere; the stage was entered at the migration (10 d 6 h ago).
        Expected(
            user: 4, posts: 0, postsLast30Days: 0, followers: 0, following: 1, eventsOrganized: 0, eventsAttended: 0,
            daysSinceSignup: nil, daysInStage: 10, onboarding: nil, tier: nil, role: nil),
        // erin: signed up an hour ago, no activity.
        Expected(
            user: 5, posts: 0, postsLast30Days: 0, followers: 0, following: 0, eventsOrganized: 0, eventsAttended: 0,
            daysSinceSignup: 0, daysInStage: 0, onboarding: true, tier: "free", role: "user"),
    ]

    @Test("Metrics equal the hand-computed values, NULLs as missing", arguments: expectations)
    func metricsMatchHandComputedValues(expected: Expected) async throws {
        try await withTemporaryDirectory { directory in
            // Given the small platform database, migrated at 2025-06-05 06:00
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When one user's snapshot is read at 2025-06-15 12:00
            let snapshot = try await database.snapshot(user: expected.user, now: Fixture.now)

            // Then every metric is the hand-computed one
            #expect(snapshot.userID == expected.user)
            #expect(snapshot.storedStage == "J1_NEW_USER")
            #expect(snapshot.pin == nil)
            for metric in Metric.allCases {
                #expect(snapshot.metrics.value(of: metric, now: Fixture.now) == expected.value(of: metric), "\(metric.rawValue)")
            }
            // and missing data is nil, not zero or empty
            #expect((snapshot.metrics.signedUpAt == nil) == (expected.daysSinceSignup == nil))
            #expect(snapshot.metrics.onboardingComplete == expected.onboarding)
            #expect(snapshot.metrics.subscriptionTier == expected.tier)
            #expect(snapshot.metrics.role == expected.role)
        }
    }

    @Test("days_in_stage restarts at last_journey_update and the stored stage is read as is")
    func stageAndStageDateComeFromTheUsersRow() async throws {
        try await withTemporaryDirectory { directory in
            // Given carol moved to J2 on 2025-06-01 12:00 (14 days before now), and user 4 holds a legacy value
            let database = try Fixture.smallMigratedDatabase(in: directory)
            try database.writer.writeNow { db in
                try db.execute(sql: "UPDATE users SET customer_journey_state = 'J2_ACTIVE_USER', last_journey_update = '2025-06-01 12:00:00' WHERE id = 3")
                try db.execute(sql: "UPDATE users SET customer_journey_state = 'active', last_journey_update = NULL WHERE id = 4")
            }

            // When their snapshots are read
            let carol = try await database.snapshot(user: 3, now: Fixture.now)
            let legacy = try await database.snapshot(user: 4, now: Fixture.now)

            // Then the stage and the days in it come from the row
            #expect(carol.storedStage == "J2_ACTIVE_USER")
            #expect(carol.metrics.value(of: .daysInStage, now: Fixture.now) == .integer(14))
            #expect(carol.metrics.value(of: .daysSinceSignup, now: Fixture.now) == .integer(1933))
            #expect(legacy.storedStage == "active")
            #expect(legacy.metrics.value(of: .daysInStage, now: Fixture.now) == .missing)
        }
    }

    @Test("The window moves with the injected now")
    func windowFollowsTheClock() async throws {
        try await withTemporaryDirectory { directory in
            // Given the small database
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When alice is read at three instants
            let atNow = try await database.snapshot(user: 1, now: Fixture.now).metrics
            let dayLater = try await database.snapshot(user: 1, now: Fixture.now.addingTimeInterval(86_400)).metrics
            let yearEarlier = try await database.snapshot(user: 1, now: Fixture.utc("2024-06-15 12:00:00")).metrics

            // Then the recent posts and the attended events depend on that instant only
            #expect(atNow.postsLast30Days == 3)
            // a day later the post of 2025-05-16 12:00:01 left the window
            #expect(dayLater.postsLast30Days == 2)
            #expect(dayLater.eventsAttended == 2)
            // a year earlier every dated post is "recent" (>= the window start) and no event had started
            #expect(yearEarlier.postsLast30Days == 5)
            #expect(yearEarlier.eventsAttended == 0)
            #expect(yearEarlier.posts == 6)
        }
    }

    /// SPEC §3 allows timestamps with or without milliseconds; the same instant must count the same.
    @Test("Window boundaries do not depend on whether a timestamp has milliseconds")
    func boundariesIgnoreTimestampFormat() async throws {
        try await withTemporaryDirectory { directory in
            // Given erin with two posts at exactly now - 30 days, in both formats, and two RSVPs to
            // events that start exactly at now, in both formats
            let database = try Fixture.smallMigratedDatabase(in: directory)
            try database.writer.writeNow { db in
                try db.execute(
                    sql: """
                        INSERT INTO posts(user_id, content, created_at) VALUES (5, 'short', '2025-05-16 12:00:00'), (5, 'long', '2025-05-16 12:00:00.000');
                        INSERT INTO events(id, organizer_id, title, start_date) VALUES (6, 2, 'short', '2025-06-15 12:00:00'), (7, 2, 'long', '2025-06-15 12:00:00.000');
                        INSERT INTO event_rsvps(event_id, user_id, status) VALUES (6, 5, 'going'), (7, 5, 'going');
                        """)
            }

            // When her metrics are read at now (a whole second)
            let metrics = try await database.snapshot(user: 5, now: Fixture.now).metrics

            // Then an event that starts at now has started, in either format
            #expect(metrics.eventsAttended == 2)
            #expect(metrics.posts == 2)
            // and both posts are in the window, or neither is: never one of the two
            #expect(metrics.postsLast30Days != 1, "posts_last_30_days = \(metrics.postsLast30Days)")
        }
    }

    @Test("An unknown user is an error, not a row of zeros")
    func unknownUser() async throws {
        try await withTemporaryDirectory { directory in
            // Given the small database
            let database = try Fixture.smallMigratedDatabase(in: directory)

            // When a user that does not exist is read
            // Then the store says so, naming the id
            do throws(StorageError) {
                _ = try await database.snapshot(user: 99, now: Fixture.now)
                Issue.record("expected unknownUser")
            } catch {
                guard case .unknownUser(let id) = error else { Issue.record("got \(error)"); return }
                #expect(id == 99)
            }
        }
    }

    // MARK: - EXPLAIN QUERY PLAN

    /// The aliases the statement gives the big tables, and the tables themselves.
    static let bigTables = ["posts", "follows", "events", "event_rsvps", "p", "f", "e", "r"]

    enum PlanDatabase: String, CaseIterable, Sendable { case emptyMigrated, populatedAndAnalyzed }

    @Test("The metrics statement seeks indexes and never scans a big table", arguments: PlanDatabase.allCases)
    func queryPlanHasNoScanOfBigTables(kind: PlanDatabase) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated database: empty, or populated and ANALYZEd so the planner knows the skew
            let path = directory.appending(path: "plan.sqlite").path
            if kind == .populatedAndAnalyzed {
                try PlatformDataGenerator(users: 400, seed: 3, now: Fixture.generatedAt).write(to: path)
            }
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            if kind == .populatedAndAnalyzed {
                try database.writer.writeNow { try $0.execute(sql: "ANALYZE") }
            }

            // When SQLite explains the statement
            var arguments = SQLiteStore.windowArguments(now: Fixture.now)
            arguments["user"] = Int64(1)
            let plan = try database.writer.readNow { db in
                try Row.fetchAll(
                    db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.snapshotSQL(TimestampForms.read(db)),
                    arguments: StatementArguments(arguments)
                ).map { $0["detail"] as String }
            }
            let planText = plan.joined(separator: "\n")

            // Then no line scans posts, follows, events or event_rsvps (by name or alias)
            let scans = plan.filter { line in
                let words = line.split(separator: " ")
                return words.count >= 2 && words[0] == "SCAN" && Self.bigTables.contains(String(words[1]))
            }
            #expect(scans.isEmpty, "the metrics statement scans a big table:\n\(planText)")
            // and each big table is reached through the index the issue names
            #expect(plan.contains { $0.hasPrefix("SEARCH u USING INTEGER PRIMARY KEY") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH p USING") && $0.contains("user_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH f USING") && $0.contains("follower_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH e USING") && $0.contains("organizer_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH r USING") && $0.contains("user_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH e USING INTEGER PRIMARY KEY") }, "\(planText)")
            // and followers come from users.follower_count: follows by following_id appear only in the
            // fallback for a count that is not an integer, and through the index even there
            #expect(plan.filter { $0.contains("following_id") }.allSatisfy { $0.hasPrefix("SEARCH") && $0.contains("INDEX") }, "\(planText)")
            // and no line at all is a SCAN (users and pins are reached by primary key too)
            #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(planText)")
        }
    }
}
