public import Foundation
import GRDB
import JourneyCore

/// Writes a realistic platform database (the five platform tables, as the platform has them:
/// no journey columns, no indexes) from a seed, at any size.
///
/// Activity is heavy-tailed: most users post and follow a handful of times, a few post
/// thousands of times, and a few "celebrities" are followed by most of the platform.
/// The same seed and size always give the same rows.
///
/// ```swift
/// try PlatformDataGenerator(users: 5_000, seed: 7, now: now).write(to: "demo.sqlite")
/// ```
public struct PlatformDataGenerator: Sendable {
    public let users: Int
    public let seed: UInt64
    /// The instant the data is generated as of: signups lie in the five years before it.
    public let now: Date
    /// Mean posts per user (the tail makes the median far lower).
    public var meanPosts: Double = 30
    /// Mean accounts a user follows, besides the celebrities.
    public var meanFollowing: Double = 22
    /// Mean RSVPs per user.
    public var meanRSVPs: Double = 5

    public init(users: Int, seed: UInt64, now: Date) {
        self.users = users
        self.seed = seed
        self.now = now
    }

    /// How many rows each table received.
    public struct Counts: Hashable, Sendable, Codable {
        public var users = 0, posts = 0, follows = 0, events = 0, rsvps = 0
    }

    static let tiers: [(String?, Double)] = [("free", 0.68), ("basic", 0.12), ("enthusiast", 0.08), ("professional", 0.06), ("enterprise", 0.02), (nil, 0.04)]
    static let cities = [
        ("Buenos Aires", "AR"), ("Berlin", "DE"), ("Paris", "FR"), ("Istanbul", "TR"), ("New York", "US"), ("Tokyo", "JP"), ("Montevideo", "UY"),
        ("Athens", "GR"),
    ]
    static let statuses = ["going", "going", "going", "maybe", "not_going"]

    /// Creates the platform tables in the (new or empty) file at `path` and fills them.
    @discardableResult
    public func write(to path: String) throws -> Counts {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")
        }
        let queue = try DatabaseQueue(path: path, configuration: config)
        return try queue.inDatabase { db in
            try db.execute(sql: Self.platformSchema)
            var counts = Counts()
            try db.inTransaction {
                counts = try fill(db)
                return .commit
            }
            return counts
        }
    }

    /// The platform's own tables, as they exist before `journey migrate`.
    public static let platformSchema = """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT,
            subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT, created_at TEXT);
        CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
        CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at TEXT);
        """

    private func fill(_ db: Database) throws -> Counts {
        var random = SplitMix64(seed: seed)
        var counts = Counts()
        let insertUser = try db.makeStatement(sql: "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let insertPost = try db.makeStatement(sql: "INSERT INTO posts(user_id, content, visibility, created_at) VALUES (?, ?, ?, ?)")
        let insertFollow = try db.makeStatement(sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)")
        let insertEvent = try db.makeStatement(sql: "INSERT INTO events(organizer_id, title, city, start_date) VALUES (?, ?, ?, ?)")
        let insertRSVP = try db.makeStatement(sql: "INSERT INTO event_rsvps(event_id, user_id, status, created_at) VALUES (?, ?, ?, ?)")
        let span: TimeInterval = 5 * 365 * 86_400
        var signups: [Date] = []
        signups.reserveCapacity(users)
        // A minority of engaged users post, follow and organize far more than the rest.
        var engaged: [Bool] = []
        engaged.reserveCapacity(users)

        for id in 1...max(users, 1) {
            let signup = now.addingTimeInterval(-random.unit() * span)
            signups.append(signup)
            engaged.append(random.unit() < 0.08)
            let (city, country) = Self.cities[random.below(Self.cities.count)]
            let roll = random.unit()
            let role = id % 9973 == 17 || id == 3 ? "super-admin" : (roll < 0.002 ? "admin" : "user")
            let onboarding: Int? = roll > 0.97 ? nil : (random.unit() < 0.8 ? 1 : 0)
            try insertUser.execute(arguments: [
                id, "user\(id)@example.org", city, country, role, pick(Self.tiers, &random), onboarding,
                random.unit() < 0.005 ? nil : signup,
            ])
        }
        counts.users = users

        // Posts: a Pareto tail, so a few users write thousands.
        for id in 1...users {
            let count = heavyTail(mean: engaged[id - 1] ? meanPosts * 5 : meanPosts * 0.65, &random)
            let signup = signups[id - 1]
            for _ in 0..<count {
                let at = signup.addingTimeInterval(random.unit() * now.timeIntervalSince(signup))
                try insertPost.execute(arguments: [id, "memory", random.unit() < 0.8 ? "public" : "friends", at])
            }
            counts.posts += count
        }

        // Follows: everyone may follow the few celebrities; the rest go to Zipf-ranked users.
        let celebrities = (0..<min(5, users / 10)).map { 1 + ($0 * 7919) % users }
        let celebrityReach = [0.97, 0.9, 0.75, 0.5, 0.3]
        var followed = Set<Int>()
        for id in 1...users {
            followed.removeAll(keepingCapacity: true)
            for (rank, celebrity) in celebrities.enumerated() where celebrity != id && random.unit() < celebrityReach[rank] {
                followed.insert(celebrity)
            }
            let count = min(heavyTail(mean: engaged[id - 1] ? meanFollowing * 4 : meanFollowing * 0.75, &random), users - 1)
            let goal = followed.count + count
            var attempts = 0
            while followed.count < goal, attempts < count * 3 {
                attempts += 1
                let target = zipfUser(&random)
                if target != id { followed.insert(target) }
            }
            for target in followed {
                try insertFollow.execute(arguments: [id, target, signups[id - 1].addingTimeInterval(random.unit() * 86_400 * 30)])
            }
            counts.follows += followed.count
        }

        // Events: organized mostly by a small active minority; half in the past.
        let eventCount = max(1, users / 10)
        let organizers = (1...users).filter { engaged[$0 - 1] }
        for index in 0..<eventCount {
            let organizer = random.unit() < 0.8 && !organizers.isEmpty ? organizers[zipfIndex(organizers.count, &random)] : 1 + random.below(users)
            let start = now.addingTimeInterval((random.unit() - 0.5) * 2 * 365 * 86_400)
            try insertEvent.execute(arguments: [organizer, "Milonga \(index + 1)", Self.cities[random.below(Self.cities.count)].0, start])
        }
        counts.events = eventCount

        for id in 1...users {
            let count = heavyTail(mean: meanRSVPs, &random)
            for _ in 0..<count {
                try insertRSVP.execute(arguments: [1 + random.below(eventCount), id, Self.statuses[random.below(Self.statuses.count)], signups[id - 1]])
            }
            counts.rsvps += count
        }
        return counts
    }

    /// A count with the given mean whose tail is heavy (Pareto, shape 1.6), capped for sanity.
    private func heavyTail(mean: Double, _ random: inout SplitMix64) -> Int {
        let shape = 1.6
        let scale = mean * (shape - 1) / shape
        let draw = scale / pow(1 - random.unit(), 1 / shape) - scale
        return min(Int(draw.rounded()), 20_000)
    }

    /// A user id drawn so that low ranks are far more popular (Zipf-like, exponent ~1).
    private func zipfUser(_ random: inout SplitMix64) -> Int {
        1 + (zipfIndex(users, &random) &* 48_271) % users
    }

    /// An index in 0..<count, log-uniform in rank, so that the first few are drawn most.
    private func zipfIndex(_ count: Int, _ random: inout SplitMix64) -> Int {
        min(count - 1, Int(pow(Double(count), random.unit())) - 1)
    }

    private func pick<T>(_ weighted: [(T, Double)], _ random: inout SplitMix64) -> T {
        var roll = random.unit()
        for (value, weight) in weighted {
            if roll < weight { return value }
            roll -= weight
        }
        return weighted[weighted.count - 1].0
    }
}
