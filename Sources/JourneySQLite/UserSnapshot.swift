public import Foundation
public import GRDB
public import JourneyCore
public import JourneyStorage
import Synchronization

extension SQLiteStore {
    /// Every metric of SPEC §2 for one user, in one statement that only seeks indexes, for a file
    /// whose timestamp columns hold `forms` (``TimestampForms/read(_:)``): the 30-day window and the
    /// events already started compare each stored timestamp with the window's bounds as text where
    /// the column holds canonical text alone (an index range), and through `journey_instant`
    /// where another form was ever written; one answer either way. It selects the columns of
    /// ``MetricsColumn`` (all but the chunk's unreadable counts) in that order, and binds `:user`
    /// and the window's bounds it names (``windowArguments(now:forms:)``).
    ///
    /// Followers come from the trigger-maintained `users.follower_count` (counted from `follows`
    /// for a row whose count is not an integer, which doctor reports as drift); the other counts
    /// are correlated subqueries on `posts(user_id, created_at)`, `follows(follower_id)`,
    /// `events(organizer_id)` and `event_rsvps(user_id)` joined to the event's primary key. Each
    /// metric is defined once, for this statement and ``chunkSQL(_:)`` alike (``MetricsSQL``).
    public static func snapshotSQL(_ forms: TimestampForms) -> String {
        snapshotStatements[forms.index]
    }

    private static let snapshotStatements = TimestampForms.all.map(MetricsSQL.snapshot)

    /// The arguments of the metrics statements at `now`: the window's bounds as seconds since the
    /// Unix epoch (`:now`, `:since`, for `journey_instant`) and as canonical text (`:now_text`,
    /// `:since_text`, for columns that hold canonical text alone).
    ///
    /// `now` is taken to the whole second, and the text bounds are written so that text order and
    /// time order agree on every canonical value: `:since_text` without a fraction
    /// (`…:19` ≤ `…:19.250`) and `:now_text` with `.000` (`…:19` and `…:19.000` ≤ `…:19.000`).
    public static func windowArguments(now: Date) -> [String: (any DatabaseValueConvertible)?] {
        let window = Window.at(now)
        return ["now": window.now, "since": window.since, "now_text": window.nowText, "since_text": window.sinceText]
    }

    /// The window's bounds that ``snapshotSQL(_:)`` and ``chunkSQL(_:)`` for `forms` name (as text
    /// for a canonical column, as seconds otherwise), for a host that runs them itself.
    public static func windowArguments(now: Date, forms: TimestampForms) -> [String: (any DatabaseValueConvertible)?] {
        Window.at(now).arguments(forms)
    }

    /// The window's bounds at one whole second, in both forms. Every read within a second asks for
    /// the same bounds, so the last ones made are kept rather than formatted again.
    struct Window: Sendable {
        let second: Double
        let now: Double
        let since: Double
        let nowText: String
        let sinceText: String

        private static let last = Mutex<Window?>(nil)

        static func at(_ date: Date) -> Window {
            let second = date.timeIntervalSince1970.rounded(.down)
            if let last = last.withLock({ $0 }), last.second == second { return last }
            let now = Date(timeIntervalSince1970: second)
            let since = now.addingTimeInterval(-30 * 86_400)
            let window = Window(
                second: second, now: second, since: since.timeIntervalSince1970,
                nowText: SQLTimestamp.text(now, milliseconds: true), sinceText: SQLTimestamp.text(since, milliseconds: false))
            Self.last.withLock { $0 = window }
            return window
        }

        /// The bounds the statements for `forms` name: as text for canonical columns, as seconds otherwise.
        func arguments(_ forms: TimestampForms) -> [String: (any DatabaseValueConvertible)?] {
            var arguments: [String: (any DatabaseValueConvertible)?] = [:]
            if forms.postsCreatedAt { arguments["since_text"] = sinceText } else { arguments["since"] = since }
            if forms.eventsStartDate { arguments["now_text"] = nowText } else { arguments["now"] = now }
            return arguments
        }
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
        // The forms and the statement must see one snapshot of the file.
        guard db.isInsideTransaction else {
            var snapshot: UserSnapshot?
            try db.inTransaction(.deferred) {
                snapshot = try Self.snapshot(db, user: user, now: now)
                return .commit
            }
            return snapshot!
        }
        let forms = try TimestampForms.current(db)
        var arguments = Window.at(now).arguments(forms)
        arguments["user"] = user
        let statement = try db.cachedStatement(sql: snapshotSQL(forms))
        let rows = try Row.fetchCursor(statement, arguments: StatementArguments(arguments))
        guard try rows.next() != nil else { throw StorageError.unknownUser(id: user) }
        // Read while the cursor lives: it resets the statement when it goes.
        return withExtendedLifetime(rows) { UserSnapshot(statement: statement.sqliteStatement) }
    }
}

extension UserSnapshot {
    /// Reads the columns of ``SQLiteStore/snapshotSQL(_:)`` and ``SQLiteStore/chunkSQL(_:)``, by their
    /// position in ``MetricsColumn``, from the row `statement` is on.
    ///
    /// Platform columns are read leniently: a value of the wrong type counts as missing. Timestamps
    /// are read by ``Timestamp`` in every form of SPEC §8; an unreadable one is missing and counted.
    /// `last_journey_update` falls back to `created_at` only when it is NULL (a user the platform
    /// inserted after the migration), never when it is unreadable.
    ///
    /// Each column is read from the statement as a `DatabaseValue`, not through GRDB's `Row`
    /// subscripts, whose generic decoding looked up generic metadata on every call: 5% of a dry
    /// run's time (perf, `journey batch --dry-run`, 100k users).
    init(statement: SQLiteStatement, unreadableTimestamps counted: [String: Int] = [:]) {
        func column(_ column: MetricsColumn) -> DatabaseValue { DatabaseValue(sqliteStatement: statement, index: Int32(column.rawValue)) }
        // Ids and counts are integers by the statement's making (a range of `users.id`, `COUNT(*)`,
        // an integer `follower_count`).
        func count(_ metric: MetricsColumn) -> Int { Int.fromDatabaseValue(column(metric)) ?? 0 }
        let pinStage = String.fromDatabaseValue(column(.pinStage))
        var unreadable = counted
        func read(_ value: DatabaseValue, _ column: String) -> Date? {
            let date = Self.date(value)
            if date == nil, !value.isNull { unreadable[column, default: 0] += 1 }
            return date
        }
        let signedUpAt = read(column(.signedUpAt), "users.created_at")
        let lastUpdate = column(.lastUpdate)
        let stageEnteredAt = lastUpdate.isNull ? signedUpAt : read(lastUpdate, "users.last_journey_update")
        self.init(
            userID: Int64.fromDatabaseValue(column(.id)) ?? 0,
            storedStage: Self.storedStage(column(.stage)),
            metrics: UserMetrics(
                posts: count(.posts),
                postsLast30Days: count(.postsLast30Days),
                followers: count(.followers),
                following: count(.following),
                eventsOrganized: count(.eventsOrganized),
                eventsAttended: count(.eventsAttended),
                onboardingComplete: Bool.fromDatabaseValue(column(.onboardingComplete)),
                subscriptionTier: String.fromDatabaseValue(column(.subscriptionTier)),
                role: String.fromDatabaseValue(column(.role)),
                signedUpAt: signedUpAt,
                stageEnteredAt: stageEnteredAt),
            pin: pinStage.map {
                Pin(stage: $0, reason: String.fromDatabaseValue(column(.pinReason)) ?? "", createdAt: Self.date(column(.pinCreatedAt)) ?? .distantPast)
            },
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
