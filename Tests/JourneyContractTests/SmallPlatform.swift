import Foundation
import JourneyCore

/// `Fixtures/sql/small-platform.sql` as rows any backend can write: five users whose metrics at
/// ``Instants/now`` are computed by hand (the table at the top of that script), and rows that must
/// count for nobody (a post and a follow of users that do not exist, an RSVP to a missing event).
enum SmallPlatform {
    static func stamp(_ text: String) -> Stamp { .text(text) }

    static let platform = Platform(
        users: [
            .init(
                id: 1, email: "alice@example.org", city: "Berlin", country: "DE", role: "user", tier: "basic", onboarding: true,
                createdAt: stamp("2025-01-01 12:00:01")),
            .init(
                id: 2, email: "bob@example.org", city: "Paris", country: "FR", role: "admin", tier: "free", onboarding: false,
                createdAt: stamp("2025-06-10 00:00:00")),
            .init(
                id: 3, email: "carol@example.org", city: "Tokyo", country: "JP", role: "super-admin", tier: "professional",
                onboarding: true, createdAt: stamp("2020-02-29 08:00:00")),
            // No email, no city, no role, no tier, onboarding unknown, no signup date.
            .init(id: 4),
            // Signed up one hour before "now": zero completed days.
            .init(
                id: 5, email: "erin@example.org", city: "Athens", country: "GR", role: "user", tier: "free", onboarding: true,
                createdAt: stamp("2025-06-15 11:00:00")),
        ],
        posts: [
            // alice: 3 inside the 30-day window (one a second inside its start), one a second outside, one older, one undated.
            .init(userID: 1, createdAt: stamp("2025-06-15 11:59:59")),
            .init(userID: 1, createdAt: stamp("2025-06-01 09:00:00")),
            .init(userID: 1, visibility: "friends", createdAt: stamp("2025-05-16 12:00:01")),
            .init(userID: 1, createdAt: stamp("2025-05-16 11:59:59")),
            .init(userID: 1, createdAt: stamp("2025-04-01 10:00:00")),
            .init(userID: 1, createdAt: .null),
            .init(userID: 2, createdAt: stamp("2025-06-14 20:00:00")),
            .init(userID: 3, createdAt: stamp("2021-03-01 00:00:00")),
            .init(userID: 3, visibility: "friends", createdAt: stamp("2024-12-24 18:00:00")),
            .init(userID: 99, createdAt: stamp("2025-06-10 10:00:00")),
        ],
        follows: [
            .init(follower: 1, following: 2, createdAt: stamp("2025-06-10 01:00:00")),
            .init(follower: 1, following: 3, createdAt: stamp("2025-01-02 00:00:00")),
            .init(follower: 2, following: 1, createdAt: stamp("2025-06-10 02:00:00")),
            .init(follower: 2, following: 3, createdAt: stamp("2025-06-11 00:00:00")),
            .init(follower: 3, following: 1, createdAt: stamp("2025-01-03 00:00:00")),
            .init(follower: 4, following: 1),
            .init(follower: 99, following: 98, createdAt: stamp("2025-06-10 00:00:00")),
        ],
        events: [
            .init(id: 1, organizer: 1, title: "Past milonga", city: "Berlin", startDate: stamp("2025-05-01 20:00:00")),
            .init(id: 2, organizer: 1, title: "Future milonga", city: "Berlin", startDate: stamp("2025-07-01 20:00:00")),
            .init(id: 3, organizer: 2, title: "Practica now", city: "Paris", startDate: stamp("2025-06-15 12:00:00")),
            .init(id: 4, organizer: nil, title: "Festival TBA", city: "Athens", startDate: .null),
            .init(id: 5, organizer: 3, title: "Old marathon", city: "Tokyo", startDate: stamp("2024-11-11 11:00:00")),
        ],
        rsvps: [
            // alice: attended 1 (past) and 3 (starts exactly at now); not 2 (future), 5 (maybe), 4 (no date), 42 (no such event).
            .init(eventID: 1, userID: 1, status: "going", createdAt: stamp("2025-04-20 00:00:00")),
            .init(eventID: 2, userID: 1, status: "going", createdAt: stamp("2025-06-01 00:00:00")),
            .init(eventID: 3, userID: 1, status: "going", createdAt: stamp("2025-06-14 00:00:00")),
            .init(eventID: 5, userID: 1, status: "maybe", createdAt: stamp("2024-11-01 00:00:00")),
            .init(eventID: 4, userID: 1, status: "going", createdAt: stamp("2025-06-01 00:00:00")),
            .init(eventID: 42, userID: 1, status: "going", createdAt: stamp("2025-06-01 00:00:00")),
            // bob: attended 1; not 5 (not_going), not 2 (future).
            .init(eventID: 1, userID: 2, status: "going", createdAt: stamp("2025-04-21 00:00:00")),
            .init(eventID: 5, userID: 2, status: "not_going", createdAt: stamp("2024-11-02 00:00:00")),
            .init(eventID: 2, userID: 2, status: "going", createdAt: stamp("2025-06-12 00:00:00")),
            // carol: attended 5; not 1 (maybe).
            .init(eventID: 5, userID: 3, status: "going", createdAt: stamp("2024-11-01 00:00:00")),
            .init(eventID: 1, userID: 3, status: "maybe", createdAt: stamp("2025-04-22 00:00:00")),
            // user 4: a maybe only.
            .init(eventID: 1, userID: 4, status: "maybe"),
        ])

    /// One user's metrics as computed by hand.
    struct Expected: Sendable, CustomStringConvertible {
        var user: Int64
        var posts: Int, postsLast30Days: Int, followers: Int, following: Int
        var eventsOrganized: Int, eventsAttended: Int
        var daysSinceSignup: Int?, daysInStage: Int?
        var onboarding: Bool?, tier: String?, role: String?

        var description: String { "user \(user)" }

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
        Expected(
            user: 1, posts: 6, postsLast30Days: 3, followers: 3, following: 2, eventsOrganized: 2, eventsAttended: 2,
            daysSinceSignup: 164, daysInStage: 164, onboarding: true, tier: "basic", role: "user"),
        Expected(
            user: 2, posts: 1, postsLast30Days: 1, followers: 1, following: 2, eventsOrganized: 1, eventsAttended: 1,
            daysSinceSignup: 5, daysInStage: 5, onboarding: false, tier: "free", role: "admin"),
        Expected(
            user: 3, posts: 2, postsLast30Days: 0, followers: 2, following: 1, eventsOrganized: 1, eventsAttended: 1,
            daysSinceSignup: 1933, daysInStage: 1933, onboarding: true, tier: "professional", role: "super-admin"),
        // The stage was entered at the migration (10 d 6 h ago): no created_at to backfill from.
        Expected(
            user: 4, posts: 0, postsLast30Days: 0, followers: 0, following: 1, eventsOrganized: 0, eventsAttended: 0,
            daysSinceSignup: nil, daysInStage: 10, onboarding: nil, tier: nil, role: nil),
        Expected(
            user: 5, posts: 0, postsLast30Days: 0, followers: 0, following: 0, eventsOrganized: 0, eventsAttended: 0,
            daysSinceSignup: 0, daysInStage: 0, onboarding: true, tier: "free", role: "user"),
    ]
}
