import Foundation
import GRDB

/// How a store learns that the database may have changed, whichever process committed.
///
/// The feed never trusts a signal for content: after each one it reads the rows past its last
/// id. A spurious signal costs one query; what a signal must guarantee is that it fires after
/// every commit, eventually. SQLite polls `PRAGMA data_version` (``DataVersionPoller``); a
/// PostgreSQL store would `LISTEN` on a channel that a trigger on `journey_transitions`,
/// `journey_pin_events` and `journey_rules` `NOTIFY`s, and call `changed` for each notification.
public protocol ChangeSignal: Sendable {
    /// Calls `changed` after each change it detects, one call at a time, until the calling task
    /// is cancelled; then returns.
    ///
    /// - throws: ``StoreError`` when the database cannot be watched at all (the file vanished,
    ///   a connection cannot be opened).
    func watch(_ changed: @Sendable () async -> Void) async throws(StoreError)
}

/// The SQLite ``ChangeSignal``: one dedicated connection asks `PRAGMA data_version` at an interval.
///
/// `data_version` changes when any *other* connection, of this process or another, commits to
/// the file; a poll is one statement that reads no table (measured in BENCHMARKS.md). The
/// connection is its own, not one of the pool's readers: the value is per connection, and the
/// pool's writer never sees its own commits in it.
public struct DataVersionPoller: ChangeSignal {
    /// The database file.
    public let path: String
    /// Time between two polls: the feed's worst-case lag beyond the reading itself.
    public let interval: Duration

    /// Polls the file of `database` every `interval` (default 200 ms).
    public init(database: SQLiteStore, interval: Duration = .milliseconds(200)) {
        self.path = database.path
        self.interval = interval
    }

    /// Opens the feed's connection, notes `data_version`, then polls every ``interval`` and calls
    /// `changed` when the value moved; returns when the task is cancelled.
    ///
    /// - throws: ``StoreError`` when the connection cannot be opened or a poll fails.
    public func watch(_ changed: @Sendable () async -> Void) async throws(StoreError) {
        let connection: DatabaseQueue
        var last: Int
        do {
            var configuration = Configuration()
            configuration.readonly = !FileManager.default.isWritableFile(atPath: path)
            configuration.busyMode = .timeout(SQLiteStore.busyTimeout)
            configuration.label = "journey.feed"
            connection = try DatabaseQueue(path: path, configuration: configuration)
            last = try await Self.version(connection)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return  // cancelled
            }
            let version: Int
            do {
                version = try await Self.version(connection)
            } catch is CancellationError {
                return
            } catch {
                throw StoreError.wrap(error, path: path)
            }
            if version != last {
                last = version
                await changed()
            }
        }
    }

    /// One `PRAGMA data_version`, outside any transaction (no `query_only` toggling).
    private static func version(_ connection: DatabaseQueue) async throws -> Int {
        try await connection.unsafeRead { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }
}

/// Where a follower of the database stands: the last transition, pin event and adopted rule set seen.
public struct FeedCursor: Hashable, Sendable {
    /// The highest `journey_transitions.id` seen (0: none).
    public var transition: Int64
    /// The highest `journey_pin_events.id` seen (0: none).
    public var pinEvent: Int64
    /// The highest `journey_rules.id` seen (0: none adopted).
    public var adoptedRules: Int64

    /// A cursor at the given ids (all 0: before anything was recorded).
    public init(transition: Int64 = 0, pinEvent: Int64 = 0, adoptedRules: Int64 = 0) {
        self.transition = transition
        self.pinEvent = pinEvent
        self.adoptedRules = adoptedRules
    }
}

/// What changed past a ``FeedCursor``: the users whose cached answers are stale, and whether a
/// new rule set was adopted.
public struct FeedChanges: Sendable {
    /// Where the next call starts.
    public var cursor: FeedCursor
    /// Users moved, pinned or unpinned since the previous cursor; nil when more than the limit
    /// asked for (drop every cached answer instead).
    public var touchedUsers: Set<Int64>?
    /// Whether `journey_rules` has a newer adoption than the previous cursor.
    public var rulesAdopted: Bool
}

extension SQLiteStore {
    /// Committed transitions with an id above `id`, in id order, at most `limit` of them.
    ///
    /// - throws: ``StoreError`` when SQLite fails.
    public func transitions(after id: Int64, limit: Int) async throws(StoreError) -> [RecordedTransition] {
        try await read { db in
            try RecordedTransition.fetchAll(db, sql: "SELECT * FROM journey_transitions WHERE id > ? ORDER BY id LIMIT ?",
                                            arguments: [id, limit])
        }
    }

    /// The cursor at the head of the log: what a follower starting now has already seen.
    public func feedHead() async throws(StoreError) -> FeedCursor {
        try await read { db in try Self.head(db) }
    }

    /// What changed past `cursor`, in one read transaction.
    ///
    /// - parameter limit: the most users to list; past it ``FeedChanges/touchedUsers`` is nil.
    public func changes(after cursor: FeedCursor, limit: Int = 10_000) async throws(StoreError) -> FeedChanges {
        try await read { db in
            let head = try Self.head(db)
            let users = try Int64.fetchAll(db, sql: """
                SELECT user_id FROM journey_transitions WHERE id > ? AND id <= ?
                UNION SELECT user_id FROM journey_pin_events WHERE id > ? AND id <= ?
                LIMIT ?
                """, arguments: [cursor.transition, head.transition, cursor.pinEvent, head.pinEvent, limit + 1])
            return FeedChanges(cursor: head, touchedUsers: users.count > limit ? nil : Set(users),
                               rulesAdopted: head.adoptedRules > cursor.adoptedRules)
        }
    }

    private static func head(_ db: Database) throws -> FeedCursor {
        let row = try Row.fetchOne(db, sql: """
            SELECT (SELECT COALESCE(MAX(id), 0) FROM journey_transitions),
                   (SELECT COALESCE(MAX(id), 0) FROM journey_pin_events),
                   (SELECT COALESCE(MAX(id), 0) FROM journey_rules)
            """)!
        return FeedCursor(transition: row[0], pinEvent: row[1], adoptedRules: row[2])
    }
}
