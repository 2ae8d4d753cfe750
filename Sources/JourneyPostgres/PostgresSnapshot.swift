public import Foundation
public import JourneyCore
public import JourneyStorage
import PostgresNIO

/// The metrics statements: one user, and one id range for the batch.
///
/// Both select the same eighteen leading columns, decoded by ``UserSnapshot/init(cells:extra:)``;
/// `now` and `since` (`now` − 30 days) are bound as epoch seconds and compared with
/// `journey_instant(column)` (``PostgresTimestampSQL``), whatever type the platform gave the column.
enum PostgresMetricsSQL {
    /// The columns of `users` and `journey_pins` both statements read first, in this order.
    static let userColumns = """
        u.id::bigint, COALESCE(u.customer_journey_state::text, ''),
        journey_instant(u.last_journey_update), u.last_journey_update IS NOT NULL,
        journey_instant(u.created_at), u.created_at IS NOT NULL,
        CASE lower(u.is_onboarding_complete::text) WHEN 'true' THEN true WHEN 't' THEN true WHEN '1' THEN true
            WHEN 'false' THEN false WHEN 'f' THEN false WHEN '0' THEN false END,
        u.subscription_tier::text, u.role::text, u.follower_count::bigint
        """

    /// Every metric of SPEC §2 for user `$1`, in one statement that only seeks indexes:
    /// `posts(user_id, created_at)` (both counts in one pass), `follows(follower_id)`,
    /// `events(organizer_id)`, `event_rsvps(user_id)` joined to the event's primary key, and
    /// `users.follower_count` for the followers. Binds: user id, now, since.
    static let snapshot = """
        SELECT \(userColumns),
               p.posts, p.recent, f.following, e.organized, a.attended,
               pin.stage, pin.reason, pin.created_at
        FROM users u
        LEFT JOIN journey_pins pin ON pin.user_id = u.id
        CROSS JOIN LATERAL (SELECT count(*) AS posts,
                                   count(*) FILTER (WHERE journey_instant(p.created_at) >= $3) AS recent
                            FROM posts p WHERE p.user_id = u.id) p
        CROSS JOIN LATERAL (SELECT count(*) AS following FROM follows f WHERE f.follower_id = u.id) f
        CROSS JOIN LATERAL (SELECT count(*) AS organized FROM events e WHERE e.organizer_id = u.id) e
        CROSS JOIN LATERAL (SELECT count(*) AS attended FROM event_rsvps r JOIN events ev ON ev.id = r.event_id
                            WHERE r.user_id = u.id AND r.status = 'going' AND journey_instant(ev.start_date) <= $2) a
        WHERE u.id = $1
        """

    /// Every metric of the users with ids in [`$1`, `$2`], each table aggregated once over its index
    /// range, plus the unreadable `posts.created_at` and `events.start_date` values per user.
    /// Binds: low id, high id, now, since.
    static let chunk = """
        SELECT \(userColumns),
               COALESCE(p.posts, 0), COALESCE(p.recent, 0), COALESCE(f.following, 0),
               COALESCE(e.organized, 0), COALESCE(a.attended, 0),
               pin.stage, pin.reason, pin.created_at,
               COALESCE(p.unreadable, 0), COALESCE(a.unreadable, 0)
        FROM users u
        LEFT JOIN (SELECT user_id, count(*) AS posts,
                          count(*) FILTER (WHERE journey_instant(created_at) >= $4) AS recent,
                          count(created_at) - count(journey_instant(created_at)) AS unreadable
                   FROM posts WHERE user_id BETWEEN $1 AND $2 GROUP BY user_id) p ON p.user_id = u.id
        LEFT JOIN (SELECT follower_id, count(*) AS following
                   FROM follows WHERE follower_id BETWEEN $1 AND $2 GROUP BY follower_id) f ON f.follower_id = u.id
        LEFT JOIN (SELECT organizer_id, count(*) AS organized
                   FROM events WHERE organizer_id BETWEEN $1 AND $2 GROUP BY organizer_id) e ON e.organizer_id = u.id
        LEFT JOIN (SELECT r.user_id, count(*) FILTER (WHERE journey_instant(ev.start_date) <= $3) AS attended,
                          count(ev.start_date) - count(journey_instant(ev.start_date)) AS unreadable
                   FROM event_rsvps r JOIN events ev ON ev.id = r.event_id
                   WHERE r.user_id BETWEEN $1 AND $2 AND r.status = 'going'
                   GROUP BY r.user_id) a ON a.user_id = u.id
        LEFT JOIN journey_pins pin ON pin.user_id = u.id
        WHERE u.id BETWEEN $1 AND $2
        ORDER BY u.id
        """

    /// The bindings of a metrics statement: the leading values, then `now` and `since` as epoch seconds.
    static func binds(_ leading: [Int64], now: Date) -> PostgresBindings {
        var binds = PostgresBindings(capacity: leading.count + 2)
        for value in leading { binds.append(value) }
        binds.append(now.timeIntervalSince1970)
        binds.append(now.addingTimeInterval(-30 * 86_400).timeIntervalSince1970)
        return binds
    }
}

extension UserSnapshot {
    /// Decodes the eighteen leading columns of ``PostgresMetricsSQL``; `extra` adds the batch's
    /// per-table unreadable counts.
    ///
    /// `last_journey_update` falls back to `created_at` only when it is NULL (a user the platform
    /// inserted after the migration), never when it is unreadable.
    ///
    /// - parameter cells: the row's cells in order (`Array(row)`: by position, no lookup by name).
    init(cells: [PostgresCell], extra unreadable: [String: Int] = [:]) throws {
        func column<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T {
            try cells[index].decode(T.self)
        }
        var unreadable = unreadable
        func instant(_ index: Int, present: Int, _ name: String) throws -> Date? {
            let seconds = try column(index, Double?.self)
            if seconds == nil, try column(present, Bool.self) { unreadable[name, default: 0] += 1 }
            return seconds.map { Date(timeIntervalSince1970: $0) }
        }
        let signedUpAt = try instant(4, present: 5, "users.created_at")
        let stageEnteredAt: Date?
        if try column(3, Bool.self) {
            stageEnteredAt = try instant(2, present: 3, "users.last_journey_update")
        } else {
            stageEnteredAt = signedUpAt
        }
        let pinStage = try column(15, String?.self)
        self.init(
            userID: try column(0, Int64.self),
            storedStage: try column(1, String.self),
            metrics: UserMetrics(
                posts: Int(try column(10, Int64.self)),
                postsLast30Days: Int(try column(11, Int64.self)),
                followers: Int(try column(9, Int64.self)),
                following: Int(try column(12, Int64.self)),
                eventsOrganized: Int(try column(13, Int64.self)),
                eventsAttended: Int(try column(14, Int64.self)),
                onboardingComplete: try column(6, Bool?.self),
                subscriptionTier: try column(7, String?.self),
                role: try column(8, String?.self),
                signedUpAt: signedUpAt,
                stageEnteredAt: stageEnteredAt),
            pin: try pinStage.map { Pin(stage: $0, reason: try column(16, String.self), createdAt: try column(17, Date.self)) },
            unreadableTimestamps: unreadable)
    }
}

extension PostgresStore {
    /// Reads one user's stage, metrics and pin in one statement (one round trip).
    ///
    /// - parameter now: the clock's instant; `posts_last_30_days` and `events_attended` are counted at it.
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    public func snapshot(user: Int64, now: Date) async throws(StorageError) -> UserSnapshot {
        try await withConnection { connection in try await self.snapshot(user: user, now: now, on: connection) }
    }

    /// ``snapshot(user:now:)`` on `connection`, inside whatever transaction it is in.
    func snapshot(user: Int64, now: Date, on connection: PostgresConnection) async throws -> UserSnapshot {
        let rows = try await connection.query(
            PostgresQuery(unsafeSQL: PostgresMetricsSQL.snapshot, binds: PostgresMetricsSQL.binds([user], now: now)),
            logger: logger
        ).collect()
        guard let row = rows.first else { throw StorageError.unknownUser(id: user) }
        return try UserSnapshot(cells: Array(row))
    }

    /// Where the next `count` chunks of `limit` users after `after` end, read from the primary key.
    public func chunkEnds(after: Int64, limit: Int, count: Int) async throws(StorageError) -> [Int64] {
        let limit = max(1, limit)
        return try await withConnection { connection in
            var ids: [Int64] = []
            let rows = try await connection.query(
                """
                SELECT id::bigint FROM users WHERE id > \(after) ORDER BY id LIMIT \(Int64(limit * max(1, count)))
                """, logger: self.logger)
            for try await id in rows.decode(Int64.self) { ids.append(id) }
            return Self.chunkEnds(of: ids, limit: limit)
        }
    }

    /// The snapshots of the users with ids in `ids`, by id, every metric aggregated over the range
    /// in one statement.
    public func chunk(_ ids: ClosedRange<Int64>, now: Date) async throws(StorageError) -> [UserSnapshot] {
        try await withConnection { connection in try await self.chunk(ids, now: now, on: connection) }
    }

    /// The snapshots of the next `limit` users with ids in (`after`, `through`], by id, in two
    /// statements: the chunk's last id, then ``chunk(_:now:)``'s statement over the id range.
    ///
    /// - returns: at most `limit` snapshots in id order; empty when no user is left in the range.
    func chunk(after: Int64, through high: Int64, limit: Int, now: Date) async throws(StorageError) -> [UserSnapshot] {
        try await withConnection { connection in
            let last =
                try await connection.query(
                    """
                    SELECT max(id)::bigint FROM (SELECT id FROM users WHERE id > \(after) AND id <= \(high) ORDER BY id LIMIT \(Int64(max(0, limit)))) s
                    """, logger: self.logger
                ).collect().first?.decode(Int64?.self) ?? nil
            guard let last else { return [] }
            return try await self.chunk(after + 1...last, now: now, on: connection)
        }
    }

    /// ``chunk(_:now:)`` on `connection`.
    private func chunk(_ ids: ClosedRange<Int64>, now: Date, on connection: PostgresConnection) async throws -> [UserSnapshot] {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: PostgresMetricsSQL.chunk,
                binds: PostgresMetricsSQL.binds([ids.lowerBound, ids.upperBound], now: now)),
            logger: logger)
        var snapshots: [UserSnapshot] = []
        for try await row in rows {
            let cells = Array(row)
            var extra: [String: Int] = [:]
            // The two trailing columns: unreadable `posts.created_at` and `events.start_date` values.
            let posts = try cells[18].decode(Int64.self), events = try cells[19].decode(Int64.self)
            if posts > 0 { extra["posts.created_at"] = Int(posts) }
            if events > 0 { extra["events.start_date"] = Int(events) }
            snapshots.append(try UserSnapshot(cells: cells, extra: extra))
        }
        return snapshots
    }
}
