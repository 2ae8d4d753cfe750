import Foundation
import GRDB
import JourneyCore

/// One user as the journey sees them: the stored stage, the metrics, and any operator pin.
public struct UserSnapshot: Hashable, Sendable {
    public let userID: Int64
    /// `users.customer_journey_state` exactly as stored (possibly a legacy alias).
    public let storedStage: String
    public let metrics: UserMetrics
    /// The operator's pin, when the user is held in a stage.
    public let pin: Pin?
}

/// An operator's hold on a user's stage (`journey_pins`).
public struct Pin: Hashable, Sendable, Codable {
    public let stage: String
    public let reason: String
    public let createdAt: Date
}

extension JourneyDatabase {
    /// Every metric of SPEC §2 for one user, in one statement that only seeks indexes.
    ///
    /// Followers come from the trigger-maintained `users.follower_count`; the other counts
    /// are correlated subqueries on `posts(user_id, created_at)`, `follows(follower_id)`,
    /// `events(organizer_id)` and `event_rsvps(user_id)` joined to the event's primary key.
    public static let snapshotSQL = """
        SELECT u.id, u.customer_journey_state, COALESCE(u.last_journey_update, u.created_at) AS last_journey_update, u.created_at,
               u.is_onboarding_complete, u.subscription_tier, u.role, u.follower_count,
               (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id) AS posts,
               (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id AND p.created_at >= :since) AS posts_recent,
               (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) AS following,
               (SELECT COUNT(*) FROM events e WHERE e.organizer_id = u.id) AS organized,
               (SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id
                 WHERE r.user_id = u.id AND r.status = 'going' AND e.start_date <= :now) AS attended,
               pin.stage AS pin_stage, pin.reason AS pin_reason, pin.created_at AS pin_created_at
        FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id
        WHERE u.id = :user
        """

    /// The arguments of the metrics statements at `now`.
    ///
    /// `since`, the start of the 30-day window, is bound in whole seconds without a fraction,
    /// so that `created_at >= :since` holds for a post at that instant whether it was stored
    /// as `…:00` or `…:00.000` (text comparison, which keeps the index range search).
    static func windowArguments(now: Date) -> [String: (any DatabaseValueConvertible)?] {
        let since = String.fromDatabaseValue(now.addingTimeInterval(-30 * 86_400).databaseValue) ?? ""
        return ["now": now, "since": String(since.prefix(19))]
    }

    /// Reads one user's stage, metrics and pin in one statement.
    ///
    /// - throws: ``StoreError/unknownUser(id:)`` when there is no such user.
    public func snapshot(user: Int64, now: Date) throws(StoreError) -> UserSnapshot {
        try read { db in try Self.snapshot(db, user: user, now: now) }
    }

    static func snapshot(_ db: Database, user: Int64, now: Date) throws -> UserSnapshot {
        var arguments = windowArguments(now: now)
        arguments["user"] = user
        guard let row = try Row.fetchOne(db.cachedStatement(sql: snapshotSQL), arguments: StatementArguments(arguments)) else {
            throw StoreError.unknownUser(id: user)
        }
        return UserSnapshot(row: row)
    }
}

extension UserSnapshot {
    /// Reads the columns of ``JourneyDatabase/snapshotSQL`` (and of the batch's chunk statement).
    ///
    /// Platform columns are read leniently: a value of the wrong type counts as missing.
    init(row: Row) {
        let pinStage: String? = row["pin_stage"]
        self.init(
            userID: row["id"],
            storedStage: String.fromDatabaseValue(row["customer_journey_state"]) ?? "",
            metrics: UserMetrics(
                posts: row["posts"],
                postsLast30Days: row["posts_recent"],
                followers: row["follower_count"],
                following: row["following"],
                eventsOrganized: row["organized"],
                eventsAttended: row["attended"],
                onboardingComplete: Bool.fromDatabaseValue(row["is_onboarding_complete"]),
                subscriptionTier: String.fromDatabaseValue(row["subscription_tier"]),
                role: String.fromDatabaseValue(row["role"]),
                signedUpAt: Self.date(row["created_at"]),
                stageEnteredAt: Self.date(row["last_journey_update"])),
            pin: pinStage.map { Pin(stage: $0, reason: row["pin_reason"], createdAt: Self.date(row["pin_created_at"]) ?? .distantPast) })
    }

    /// A timestamp column as a date; nil when NULL or not a date SQLite would understand.
    static func date(_ value: DatabaseValue) -> Date? {
        Date.fromDatabaseValue(value)
    }
}

