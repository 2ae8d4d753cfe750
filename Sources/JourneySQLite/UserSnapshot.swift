import Foundation
import GRDB
import JourneyStorage
import JourneyCore

extension SQLiteStore {
    /// Every metric of SPEC §2 for one user, in one statement that only seeks indexes.
    ///
    /// The 30-day window and the events already started compare each stored timestamp with the
    /// window's bounds as text where the column holds canonical text alone (an index range), and
    /// through `journey_instant` where another form was ever written (``TimestampForms``): one
    /// answer either way.
    ///
    /// Followers come from the trigger-maintained `users.follower_count` (counted from `follows`
    /// for a row whose count is not an integer, which doctor reports as drift); the other counts
    /// are correlated subqueries on `posts(user_id, created_at)`, `follows(follower_id)`,
    /// `events(organizer_id)` and `event_rsvps(user_id)` joined to the event's primary key.
    public static let snapshotSQL = """
        SELECT u.id, u.customer_journey_state, u.last_journey_update, u.created_at,
               u.is_onboarding_complete, u.subscription_tier, u.role, \(followersSQL),
               (SELECT COUNT(*) FROM posts p WHERE p.user_id = u.id) AS posts,
               (SELECT COUNT(*) FROM journey_timestamp_columns tc CROSS JOIN posts p
                 WHERE tc.table_name = 'posts' AND tc.column_name = 'created_at' AND tc.noncanonical = 0
                   AND p.user_id = u.id AND p.created_at >= :since_text)
               + (SELECT COUNT(*) FROM journey_timestamp_columns tc CROSS JOIN posts p
                 WHERE tc.table_name = 'posts' AND tc.column_name = 'created_at' AND tc.noncanonical > 0
                   AND p.user_id = u.id AND journey_instant(p.created_at) >= :since) AS posts_recent,
               (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) AS following,
               (SELECT COUNT(*) FROM events e WHERE e.organizer_id = u.id) AS organized,
               (SELECT COUNT(*) FROM journey_timestamp_columns tc CROSS JOIN event_rsvps r JOIN events e ON e.id = r.event_id
                 WHERE tc.table_name = 'events' AND tc.column_name = 'start_date' AND tc.noncanonical = 0
                   AND r.user_id = u.id AND r.status = 'going' AND e.start_date <= :now_text)
               + (SELECT COUNT(*) FROM journey_timestamp_columns tc CROSS JOIN event_rsvps r JOIN events e ON e.id = r.event_id
                 WHERE tc.table_name = 'events' AND tc.column_name = 'start_date' AND tc.noncanonical > 0
                   AND r.user_id = u.id AND r.status = 'going' AND journey_instant(e.start_date) <= :now) AS attended,
               pin.stage AS pin_stage, pin.reason AS pin_reason, pin.created_at AS pin_created_at
        FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id
        WHERE u.id = :user
        """

    /// The arguments of the metrics statements at `now`: the window's bounds as seconds since the
    /// Unix epoch (`:now`, `:since`, for `journey_instant`) and as canonical text (`:now_text`,
    /// `:since_text`, for columns that hold canonical text alone).
    ///
    /// `now` is taken to the whole second, and the text bounds are written so that text order and
    /// time order agree on every canonical value: `:since_text` without a fraction
    /// (`…:19` ≤ `…:19.250`) and `:now_text` with `.000` (`…:19` and `…:19.000` ≤ `…:19.000`).
    public static func windowArguments(now: Date) -> [String: (any DatabaseValueConvertible)?] {
        let second = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let since = second.addingTimeInterval(-30 * 86_400)
        return ["now": second.timeIntervalSince1970, "since": since.timeIntervalSince1970,
                "now_text": SQLTimestamp.text(second, milliseconds: true), "since_text": SQLTimestamp.text(since, milliseconds: false)]
    }

    /// Reads one user's stage, metrics and pin in one statement.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    public func snapshot(user: Int64, now: Date) async throws(StorageError) -> UserSnapshot {
        try await read { db in try Self.snapshot(db, user: user, now: now) }
    }

    /// ``snapshot(user:now:)`` inside a transaction the caller already holds, for a host (or the
    /// benchmark) that reads on its own connection and times the statement alone.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user; GRDB's error when SQLite fails.
    public static func snapshot(_ db: Database, user: Int64, now: Date) throws -> UserSnapshot {
        var arguments = windowArguments(now: now)
        arguments["user"] = user
        guard let row = try Row.fetchOne(db.cachedStatement(sql: snapshotSQL), arguments: StatementArguments(arguments)) else {
            throw StorageError.unknownUser(id: user)
        }
        return UserSnapshot(row: row)
    }
}

extension UserSnapshot {
    /// Reads the columns of ``SQLiteStore/snapshotSQL`` (and of the batch's chunk statement).
    ///
    /// Platform columns are read leniently: a value of the wrong type counts as missing. Timestamps
    /// are read by ``Timestamp`` in every form of SPEC §8; an unreadable one is missing and counted.
    /// `last_journey_update` falls back to `created_at` only when it is NULL (a user the platform
    /// inserted after the migration), never when it is unreadable.
    init(row: Row, unreadableTimestamps counted: [String: Int] = [:]) {
        // By position: both statements select these sixteen columns in this order, and a lookup by
        // name lowercases the name on every call (12% of a snapshot's time).
        let pinStage = String.fromDatabaseValue(row[13])
        var unreadable = counted
        func read(_ value: DatabaseValue, _ column: String) -> Date? {
            let date = Self.date(value)
            if date == nil, !value.isNull { unreadable[column, default: 0] += 1 }
            return date
        }
        let signedUpAt = read(row[3], "users.created_at")
        let lastUpdate: DatabaseValue = row[2]
        let stageEnteredAt = lastUpdate.isNull ? signedUpAt : read(lastUpdate, "users.last_journey_update")
        self.init(
            userID: row[0],
            storedStage: Self.storedStage(row[1]),
            metrics: UserMetrics(
                posts: row[8],
                postsLast30Days: row[9],
                followers: row[7],
                following: row[10],
                eventsOrganized: row[11],
                eventsAttended: row[12],
                onboardingComplete: Bool.fromDatabaseValue(row[4]),
                subscriptionTier: String.fromDatabaseValue(row[5]),
                role: String.fromDatabaseValue(row[6]),
                signedUpAt: signedUpAt,
                stageEnteredAt: stageEnteredAt),
            pin: pinStage.map { Pin(stage: $0, reason: String.fromDatabaseValue(row[14]) ?? "", createdAt: Self.date(row[15]) ?? .distantPast) },
            unreadableTimestamps: unreadable)
    }

    /// A timestamp column as a date, read by ``Timestamp`` in any form of SPEC §8; nil when NULL or unreadable.
    static func date(_ value: DatabaseValue) -> Date? {
        switch value.storage {
        case .null, .blob: nil
        case .int64(let number): Timestamp.date(epoch: Double(number))
        case .double(let number): Timestamp.date(epoch: number)
        case .string(let text): Timestamp.date(text: text)
        }
    }
}


/// UTC timestamps in SQLite's text format, without Foundation's (ICU) date formatter.
public enum SQLTimestamp {
    /// `YYYY-MM-DD HH:MM:SS` or, with `milliseconds`, `YYYY-MM-DD HH:MM:SS.SSS`.
    public static func text(_ date: Date, milliseconds: Bool) -> String {
        // Rounded to the millisecond first, as GRDB stores dates, so both agree to the digit.
        let totalMilliseconds = Int64((date.timeIntervalSince1970 * 1_000).rounded())
        var seconds = time_t(totalMilliseconds.floorDivided(by: 1_000))
        let millis = Int(totalMilliseconds - Int64(seconds) * 1_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var text = "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        if milliseconds {
            text += millis < 10 ? ".00\(millis)" : millis < 100 ? ".0\(millis)" : ".\(millis)"
        }
        return text
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, ISO-8601 in UTC: the form every output of `journey` shows (text,
    /// JSON and error messages alike).
    public static func iso8601(_ date: Date) -> String {
        text(date, milliseconds: false).replacingOccurrences(of: " ", with: "T") + "Z"
    }
}

extension Int64 {
    /// Division rounding toward negative infinity (dates before 1970 included).
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
