public import Foundation

/// A value the criteria can test (SPEC §2).
public enum Metric: String, CaseIterable, Hashable, Sendable, Codable {
    case posts
    case postsLast30Days = "posts_last_30_days"
    case followers
    case following
    case connections
    case eventsOrganized = "events_organized"
    case eventsAttended = "events_attended"
    case daysSinceSignup = "days_since_signup"
    case daysInStage = "days_in_stage"
    case onboardingComplete = "onboarding_complete"
    case subscriptionTier = "subscription_tier"
    case role

    /// The type of value the metric holds, which decides the comparisons it accepts.
    public enum Kind: String, Sendable {
        case integer, boolean, text
    }

    /// The type of value this metric holds: `boolean` for `onboarding_complete`, `text` for
    /// `subscription_tier` and `role`, `integer` (counts, or whole days) for the rest.
    public var kind: Kind {
        switch self {
        case .onboardingComplete: .boolean
        case .subscriptionTier, .role: .text
        default: .integer
        }
    }
}

/// The value of one metric for one user; `missing` where the data is NULL.
public enum MetricValue: Hashable, Sendable, CustomStringConvertible {
    case integer(Int)
    case boolean(Bool)
    case text(String)
    case missing

    /// The value as an explain line shows it: the number, `true`/`false`, the text, or `missing` for NULL.
    public var description: String {
        switch self {
        case .integer(let value): String(value)
        case .boolean(let value): String(value)
        case .text(let value): value
        case .missing: "missing"
        }
    }
}

/// Everything the criteria can test about one user, as read from the database.
///
/// Counts are plain values; the two durations are kept as the instants they start from,
/// so that evaluation can compute them for any `now` and restart `days_in_stage` after a move.
public struct UserMetrics: Hashable, Sendable, Codable {
    /// Rows in `posts` with `user_id` = the user (SPEC §2 `posts`).
    public var posts: Int
    /// The user's posts with `created_at` at or after now − 30 × 86 400 s, now taken to the whole
    /// second (SPEC §2 `posts_last_30_days`); a post whose `created_at` cannot be read is not counted.
    public var postsLast30Days: Int
    /// Users following this one: rows in `follows` with `following_id` = the user, read from
    /// `users.follower_count` (SPEC §2, §3).
    public var followers: Int
    /// Users this one follows: rows in `follows` with `follower_id` = the user (SPEC §2).
    public var following: Int
    /// Rows in `events` with `organizer_id` = the user (SPEC §2 `events_organized`).
    public var eventsOrganized: Int
    /// The user's `event_rsvps` with status `going` whose event has started (`start_date` ≤ now) (SPEC §2).
    public var eventsAttended: Int
    /// `users.is_onboarding_complete`; nil when NULL, which meets no criterion.
    public var onboardingComplete: Bool?
    /// `users.subscription_tier`, such as `basic` or `enterprise`; nil when NULL, which meets no criterion.
    public var subscriptionTier: String?
    /// `users.role`, such as `super-admin`; nil when NULL, which meets no criterion.
    public var role: String?
    /// `users.created_at`; nil when NULL or unparseable.
    public var signedUpAt: Date?
    /// `users.last_journey_update`; nil when NULL or unparseable.
    public var stageEnteredAt: Date?

    /// Metrics with every count given, 0 by default, and the optional values nil (missing) by default.
    public init(
        posts: Int = 0, postsLast30Days: Int = 0, followers: Int = 0, following: Int = 0,
        eventsOrganized: Int = 0, eventsAttended: Int = 0, onboardingComplete: Bool? = nil,
        subscriptionTier: String? = nil, role: String? = nil, signedUpAt: Date? = nil, stageEnteredAt: Date? = nil
    ) {
        self.posts = posts
        self.postsLast30Days = postsLast30Days
        self.followers = followers
        self.following = following
        self.eventsOrganized = eventsOrganized
        self.eventsAttended = eventsAttended
        self.onboardingComplete = onboardingComplete
        self.subscriptionTier = subscriptionTier
        self.role = role
        self.signedUpAt = signedUpAt
        self.stageEnteredAt = stageEnteredAt
    }

    /// `followers + following`, in users (SPEC §2 `connections`); a mutual follow counts twice.
    public var connections: Int { followers + following }

    /// The value of `metric` at `now`.
    public func value(of metric: Metric, now: Date) -> MetricValue {
        switch metric {
        case .posts: .integer(posts)
        case .postsLast30Days: .integer(postsLast30Days)
        case .followers: .integer(followers)
        case .following: .integer(following)
        case .connections: .integer(connections)
        case .eventsOrganized: .integer(eventsOrganized)
        case .eventsAttended: .integer(eventsAttended)
        case .daysSinceSignup: Self.completedDays(since: signedUpAt, now: now)
        case .daysInStage: Self.completedDays(since: stageEnteredAt, now: now)
        case .onboardingComplete: onboardingComplete.map(MetricValue.boolean) ?? .missing
        case .subscriptionTier: subscriptionTier.map(MetricValue.text) ?? .missing
        case .role: role.map(MetricValue.text) ?? .missing
        }
    }

    /// Every metric by its rule-file name at `now`, for snapshots and display.
    public func values(now: Date) -> [(Metric, MetricValue)] {
        Metric.allCases.map { ($0, value(of: $0, now: now)) }
    }

    /// Every metric at `now` as one JSON object keyed by metric name, keys sorted, a missing value
    /// `null` (`{"connections":61,"days_in_stage":null,…}`): what each store records with a move.
    ///
    /// Written by hand: `JSONSerialization` cost 158 µs a transition, half of a batch's time
    /// (Benchmarks/HISTORY.md), and a third of a PostgreSQL chunk's.
    public func json(now: Date) -> String {
        var out = "{"
        out.reserveCapacity(320)
        for (index, (metric, key)) in Self.metricsByName.enumerated() {
            if index > 0 { out += "," }
            out += key
            switch value(of: metric, now: now) {
            case .integer(let number): out += String(number)
            case .boolean(let flag): out += flag ? "true" : "false"
            case .text(let text): out += Self.jsonString(text)
            case .missing: out += "null"
            }
        }
        return out + "}"
    }

    /// Every metric in the order of its name, with its key as ``json(now:)`` writes it (`"posts":`):
    /// sorted and written once.
    private static let metricsByName = Metric.allCases.sorted { $0.rawValue < $1.rawValue }.map { ($0, "\"\($0.rawValue)\":") }

    /// `text` as a JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        // Most text needs no escape (stage names, reasons): copied whole, not a scalar at a time,
        // which cost as much as the rest of the metrics' JSON (perf of the batch, 100k users).
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
            return "\"" + text + "\""
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Completed 24-hour periods from `start` to `now`; an instant in the future counts as 0.
    static func completedDays(since start: Date?, now: Date) -> MetricValue {
        guard let start else { return .missing }
        let seconds = now.timeIntervalSince(start)
        return .integer(seconds <= 0 ? 0 : Int(seconds / 86_400))
    }
}
