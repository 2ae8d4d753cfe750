import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

/// SPEC §2: every metric of one user, read at an injected now, checked against values computed by
/// hand; SPEC §8: stored stages and timestamps as other applications write them.
@Suite("Contract: snapshots and their metrics")
struct SnapshotContractTests {
    @Test("Metrics equal the hand-computed values, NULLs as missing, one user at a time and by chunk", arguments: Backend.available)
    func metricsMatchHandComputedValues(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let chunk = try await database.store.chunk(after: 0, limit: 100, now: Instants.now)
            #expect(chunk.map(\.userID) == [1, 2, 3, 4, 5])
            for expected in SmallPlatform.expectations {
                // When one user's snapshot is read at 2025-06-15 12:00
                let snapshot = try await database.store.snapshot(user: expected.user, now: Instants.now)

                // Then every metric is the hand-computed one
                #expect(snapshot.userID == expected.user)
                #expect(snapshot.storedStage == "J1_NEW_USER")
                #expect(snapshot.pin == nil)
                for metric in Metric.allCases {
                    #expect(snapshot.metrics.value(of: metric, now: Instants.now) == expected.value(of: metric), "\(expected) \(metric.rawValue)")
                }
                // and missing data is nil, not zero or empty
                #expect((snapshot.metrics.signedUpAt == nil) == (expected.daysSinceSignup == nil), "\(expected)")
                #expect(snapshot.metrics.onboardingComplete == expected.onboarding, "\(expected)")
                #expect(snapshot.metrics.subscriptionTier == expected.tier, "\(expected)")
                #expect(snapshot.metrics.role == expected.role, "\(expected)")
                #expect(snapshot.unreadableTimestamps.isEmpty, "\(expected)")
                // and the batch's chunk reads the same user the same way
                #expect(chunk.first { $0.userID == expected.user } == snapshot, "\(expected)")
            }
        }
    }

    @Test("days_in_stage restarts at last_journey_update, and the stored stage is read as it is", arguments: Backend.available)
    func stageAndStageDateComeFromTheUsersRow(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given carol moved to J2 on 2025-06-01 12:00 (14 days before now), and user 4 holds a legacy value
            try await database.execute("UPDATE users SET customer_journey_state = 'J2_ACTIVE_USER', last_journey_update = '2025-06-01 12:00:00' WHERE id = 3")
            try await database.execute("UPDATE users SET customer_journey_state = 'active', last_journey_update = NULL WHERE id = 4")

            // When their snapshots are read
            let carol = try await database.store.snapshot(user: 3, now: Instants.now)
            let legacy = try await database.store.snapshot(user: 4, now: Instants.now)

            // Then the stage and the days in it come from the row
            #expect(carol.storedStage == "J2_ACTIVE_USER")
            #expect(carol.metrics.value(of: .daysInStage, now: Instants.now) == .integer(14))
            #expect(carol.metrics.value(of: .daysSinceSignup, now: Instants.now) == .integer(1933))
            #expect(legacy.storedStage == "active")
            #expect(legacy.metrics.value(of: .daysInStage, now: Instants.now) == .missing)
        }
    }

    @Test("The 30-day window and the events already started move with the injected now", arguments: Backend.available)
    func windowFollowsTheClock(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // When alice is read at three instants
            let atNow = try await database.store.snapshot(user: 1, now: Instants.now).metrics
            let dayLater = try await database.store.snapshot(user: 1, now: Instants.now.addingTimeInterval(Instants.day)).metrics
            let yearEarlier = try await database.store.snapshot(user: 1, now: Instants.now.addingTimeInterval(-365 * Instants.day)).metrics

            // Then the recent posts and the attended events depend on that instant only
            #expect(atNow.postsLast30Days == 3)
            // a day later the post of 2025-05-16 12:00:01 left the window
            #expect(dayLater.postsLast30Days == 2)
            #expect(dayLater.eventsAttended == 2)
            // a year earlier every dated post is "recent" (>= the window start) and no event had started
            #expect(yearEarlier.postsLast30Days == 5)
            #expect(yearEarlier.eventsAttended == 0)
            #expect(yearEarlier.posts == 6)
            // and the chunk agrees at each instant
            for now in [Instants.now, Instants.now.addingTimeInterval(Instants.day), Instants.now.addingTimeInterval(-365 * Instants.day)] {
                let one = try await database.store.snapshot(user: 1, now: now)
                #expect(try await database.store.chunk(after: 0, limit: 1, now: now) == [one])
            }
        }
    }

    @Test("The window's bounds do not depend on whether a timestamp has milliseconds", arguments: Backend.available)
    func boundariesIgnoreMilliseconds(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given erin with two posts at exactly now - 30 days, with and without milliseconds, and
            // RSVPs to two events that start exactly at now, written both ways
            try await database.add(
                Platform(
                    posts: [.init(userID: 5, createdAt: .text("2025-05-16 12:00:00")), .init(userID: 5, createdAt: .text("2025-05-16 12:00:00.000"))],
                    events: [
                        .init(id: 6, organizer: 2, startDate: .text("2025-06-15 12:00:00")),
                        .init(id: 7, organizer: 2, startDate: .text("2025-06-15 12:00:00.000")),
                    ],
                    rsvps: [.init(eventID: 6, userID: 5, status: "going"), .init(eventID: 7, userID: 5, status: "going")]))

            for snapshot in [
                try await database.store.snapshot(user: 5, now: Instants.now),
                try #require(try await database.store.chunk(after: 4, limit: 1, now: Instants.now).first),
            ] {
                // Then an event that starts at now has started, in either form
                #expect(snapshot.metrics.eventsAttended == 2)
                #expect(snapshot.metrics.posts == 2)
                // and both posts are in the window, or neither is: never one of the two
                #expect(snapshot.metrics.postsLast30Days != 1, "posts_last_30_days = \(snapshot.metrics.postsLast30Days)")
            }
        }
    }

    @Test("A stage stored as NULL or empty is never evaluated: read as empty, matched by compare-and-set, counted as empty", arguments: Backend.available)
    func neverEvaluatedStages(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given alice's stage NULL and bob's empty
            try await database.setStoredStage(user: 2, "")
            try await database.setStoredStage(user: 1, nil)

            // When they are read
            let alice = try await database.store.snapshot(user: 1, now: Instants.now)
            let bob = try await database.store.snapshot(user: 2, now: Instants.now)

            // Then both read as empty (the first stage, no history), in the chunk too
            #expect(alice.storedStage == "" && bob.storedStage == "")
            let chunk = try await database.store.chunk(after: 0, limit: 2, now: Instants.now)
            #expect(chunk.map(\.storedStage) == ["", ""])
            #expect(try await database.store.history(user: 1).isEmpty)
            let funnel = try await funnelCounts(database.store)
            #expect(funnel == ["": 2, "J1_NEW_USER": 3])

            // And a move decided on the empty reading matches the stored NULL and the stored '' (compare-and-set)
            let result = try await database.store.persist(
                [
                    pending(1, from: alice.storedStage, [move(.j1, .j2)]),
                    pending(2, from: bob.storedStage, [move(.j1, .j2)]),
                ],
                rulesVersion: "v", source: .api, now: Instants.now, progress: nil)
            #expect(result.conflicted.isEmpty && result.recorded.map(\.userID) == [1, 2], "\(result)")
            #expect(try await database.store.snapshot(user: 1, now: Instants.now).storedStage == "J2_ACTIVE_USER")
            #expect(try await database.store.snapshot(user: 2, now: Instants.now).storedStage == "J2_ACTIVE_USER")
        }
    }

    @Test("An unknown user is unknownUser for every read, decide and pin; a move for them writes nothing", arguments: Backend.available)
    func unknownUser(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            // When each entry point is asked about user 404, Then each throws unknownUser(404)
            #expect(await storageError { _ = try await store.snapshot(user: 404, now: Instants.now) } == .unknownUser(id: 404))
            #expect(await storageError { _ = try await store.history(user: 404) } == .unknownUser(id: 404))
            #expect(await storageError { _ = try await store.pin(user: 404, reason: "r", now: Instants.now) } == .unknownUser(id: 404))
            #expect(await storageError { _ = try await store.unpin(user: 404) } == .unknownUser(id: 404))
            let decided = Collected<Int64>()
            #expect(
                await storageError {
                    _ = try await store.decide(user: 404, now: Instants.now, rulesVersion: "v", source: .api) { snapshot in
                        decided.append(snapshot.userID)
                        return ([move(.j1, .j2)], ())
                    }
                } == .unknownUser(id: 404))
            #expect(decided.elements.isEmpty, "nothing to decide on")
            #expect(StorageError.unknownUser(id: 404).category == .notFound)
            // and a pending move for them is a conflict (re-reading reports the unknown user), writing nothing
            let result = try await store.persist([pending(404, [move(.j1, .j2)])], rulesVersion: "v", source: .api, now: Instants.now, progress: nil)
            #expect(result.conflicted == [404] && result.recorded.isEmpty)
            #expect(try await store.transitions(after: 0, limit: 10).isEmpty)
            #expect(try await store.feedHead() == FeedCursor())
        }
    }

    // MARK: SPEC §8: timestamps in other forms

    /// How another application may store an instant.
    enum Form: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case canonical, canonicalMilliseconds, isoZ, isoMillisZ, isoMicros, isoColonOffset, isoCompactOffset, isoHourOffset
        case isoNoSeconds, dateOnly, epochSeconds, epochMilliseconds, epochSecondsReal, epochMillisecondsReal, epochText
        var testDescription: String { rawValue }

        /// Whether this form can hold the instant exactly.
        func holds(_ date: Date) -> Bool {
            let seconds = date.timeIntervalSince1970
            switch self {
            case .dateOnly: return seconds.truncatingRemainder(dividingBy: 86_400) == 0
            case .isoNoSeconds: return seconds.truncatingRemainder(dividingBy: 60) == 0
            default: return true
            }
        }

        /// The value as that application writes it, rendered by Foundation (not by the parser under test).
        func stamp(_ date: Date) -> Stamp {
            func text(_ pattern: String, offsetMinutes: Int = 0) -> Stamp {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)
                formatter.dateFormat = pattern
                return .text(formatter.string(from: date))
            }
            let seconds = date.timeIntervalSince1970
            switch self {
            case .canonical: return text("yyyy-MM-dd HH:mm:ss")
            case .canonicalMilliseconds: return text("yyyy-MM-dd HH:mm:ss.SSS")
            case .isoZ: return text("yyyy-MM-dd'T'HH:mm:ss'Z'")
            case .isoMillisZ: return text("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            case .isoMicros: return text("yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXXXX", offsetMinutes: 60)
            case .isoColonOffset: return text("yyyy-MM-dd'T'HH:mm:ssxxx", offsetMinutes: 330)
            case .isoCompactOffset: return text("yyyy-MM-dd'T'HH:mm:ss.SSSxx", offsetMinutes: -480)
            case .isoHourOffset: return text("yyyy-MM-dd HH:mm:ssx", offsetMinutes: -300)
            case .isoNoSeconds: return text("yyyy-MM-dd'T'HH:mm")
            case .dateOnly: return text("yyyy-MM-dd")
            case .epochSeconds: return .integer(Int64(seconds))
            case .epochMilliseconds: return .integer(Int64(seconds * 1_000))
            case .epochSecondsReal: return .real(seconds)
            case .epochMillisecondsReal: return .real(seconds * 1_000)
            case .epochText: return .text(String(Int64(seconds)))
            }
        }
    }

    /// One user's rows at chosen instants; `near` puts each instant 10 minutes from a bound, else 12 hours (midnights).
    static func formPlatform(_ form: Form, near: Bool) -> Platform? {
        let margin: TimeInterval = near ? 600 : 43_200
        let since = Instants.now.addingTimeInterval(-30 * Instants.day)
        let signup = Instants.now.addingTimeInterval(-8 * Instants.day - margin)
        let postOut = since.addingTimeInterval(-margin), postIn = since.addingTimeInterval(margin)
        let eventPast = Instants.now.addingTimeInterval(-margin), eventFuture = Instants.now.addingTimeInterval(5 * Instants.day + margin)
        guard [signup, postOut, postIn, eventPast, eventFuture].allSatisfy(form.holds) else { return nil }
        return Platform(
            users: [.init(id: 1, role: "user", createdAt: form.stamp(signup))],
            posts: [.init(userID: 1, createdAt: form.stamp(postOut)), .init(userID: 1, createdAt: form.stamp(postIn))],
            events: [.init(id: 1, organizer: 1, startDate: form.stamp(eventPast)), .init(id: 2, organizer: 1, startDate: form.stamp(eventFuture))],
            rsvps: [.init(eventID: 1, userID: 1, status: "going"), .init(eventID: 2, userID: 1, status: "going")])
    }

    @Test("Each timestamp form gives the canonical metrics, one user at a time and by chunk", arguments: Backend.available, Form.allCases)
    func formsGiveCanonicalMetrics(_ backend: Backend, form: Form) async throws {
        for near in [true, false] {
            guard let platform = Self.formPlatform(form, near: near), platform.stamps.allSatisfy(backend.fixture.canStore) else { continue }
            try await backend.with(platform, migratedAt: Instants.now.addingTimeInterval(-Instants.day)) { database in
                let one = try await database.store.snapshot(user: 1, now: Instants.now)
                let chunk = try #require(try await database.store.chunk(after: 0, limit: 10, now: Instants.now).first)
                for snapshot in [one, chunk] {
                    let values = Dictionary(uniqueKeysWithValues: snapshot.metrics.values(now: Instants.now))
                    #expect(values[.posts] == .integer(2))
                    #expect(values[.postsLast30Days] == .integer(1), "post 30 days + \(near ? "10 min" : "12 h") before now is outside the window")
                    #expect(values[.eventsAttended] == .integer(1), "the future event is not attended")
                    #expect(values[.daysSinceSignup] == .integer(8))
                    #expect(values[.daysInStage] == .integer(8), "last_journey_update backfilled from created_at")
                    #expect(snapshot.unreadableTimestamps.isEmpty)
                }
                // and doctor finds every value readable
                let findings = try await database.store.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
                #expect(findings.timestamps.allSatisfy { $0.unreadable == 0 }, "\(findings.timestamps)")
                #expect(findings.isHealthy, "\(findings)")
            }
        }
    }

    static let unreadableValues: [Stamp] = [
        .text("yesterday"), .text("2026-02-30 10:00:00"), .text("0000-00-00 00:00:00"), .text("2026-10-30T25:00:00Z"), .text(""),
    ]

    @Test(
        "An unreadable timestamp is missing for the criteria, counted, reported by doctor; the user's other metrics still read",
        arguments: Backend.available, unreadableValues)
    func unreadableIsMissingAndCounted(_ backend: Backend, value: Stamp) async throws {
        guard backend.fixture.canStore(value) else { return }
        var platform = SmallPlatform.platform
        platform.users[0].createdAt = value
        for index in platform.posts.indices where platform.posts[index].userID == 1 { platform.posts[index].createdAt = value }
        platform.events[0].startDate = value
        try await backend.with(platform) { database in
            let reference = try await database.store.snapshot(user: 2, now: Instants.now)
            let one = try await database.store.snapshot(user: 1, now: Instants.now)
            #expect(one.metrics.signedUpAt == nil && one.metrics.postsLast30Days == 0 && one.metrics.posts == 6)
            #expect(one.unreadableTimestamps["users.created_at"] == 1, "\(one.unreadableTimestamps)")
            let chunk = try await database.store.chunk(after: 0, limit: 10, now: Instants.now)
            #expect(chunk.first { $0.userID == 1 }?.unreadableTimestamps["posts.created_at"] == 6)
            #expect(chunk.first { $0.userID == 2 }?.metrics == reference.metrics, "the other users read as before")

            let findings = try await database.store.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
            let posts = try #require(findings.timestamps.first { $0.column == "posts.created_at" })
            #expect(posts.unreadable == 6 && posts.samples["unreadable"]?.isEmpty == false)
            #expect(!findings.isHealthy)
        }
    }

    @Test("doctor counts each form per column, with samples, and stays healthy when every value is readable", arguments: Backend.available)
    func doctorCountsForms(_ backend: Backend) async throws {
        guard let platform = Self.formPlatform(.epochMilliseconds, near: true), platform.stamps.allSatisfy(backend.fixture.canStore) else { return }
        try await backend.with(platform) { database in
            let findings = try await database.store.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
            let posts = try #require(findings.timestamps.first { $0.column == "posts.created_at" })
            #expect(posts.forms == ["epoch_milliseconds": 2])
            #expect(posts.samples["epoch_milliseconds"]?.count == 2)
            let stage = try #require(findings.timestamps.first { $0.column == "users.last_journey_update" })
            #expect(stage.forms == ["canonical": 1], "Journey's own column is written canonical")
            #expect(findings.isHealthy)
        }
    }
}
