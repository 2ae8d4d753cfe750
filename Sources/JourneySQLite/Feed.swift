import Foundation
import GRDB
import JourneyStorage

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
    /// - throws: ``StorageError`` when the connection cannot be opened or a poll fails.
    public func watch(_ changed: @Sendable () async -> Void) async throws(StorageError) {
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
            throw StorageError.wrap(error, path: path)
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
                throw StorageError.wrap(error, path: path)
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

extension SQLiteStore {
    /// Committed transitions with an id above `id`, in id order, at most `limit` of them.
    ///
    /// - throws: ``StorageError`` when SQLite fails.
    public func transitions(after id: Int64, limit: Int) async throws(StorageError) -> [RecordedTransition] {
        try await read { db in
            try RecordedTransition.fetchAll(
                db, sql: "SELECT * FROM journey_transitions WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [id, limit])
        }
    }

    /// The cursor at the head of the log: what a follower starting now has already seen.
    public func feedHead() async throws(StorageError) -> FeedCursor {
        try await read { db in try Self.head(db) }
    }

    /// What changed past `cursor`, in one read transaction.
    ///
    /// - parameter limit: the most users to list; past it ``FeedChanges/touchedUsers`` is nil.
    public func changes(after cursor: FeedCursor, limit: Int = 10_000) async throws(StorageError) -> FeedChanges {
        try await read { db in
            let head = try Self.head(db)
            let users = try Int64.fetchAll(
                db,
                sql: """
                    SELECT user_id FROM journey_transitions WHERE id > ? AND id <= ?
                    UNION SELECT user_id FROM journey_pin_events WHERE id > ? AND id <= ?
                    LIMIT ?
                    """, arguments: [cursor.transition, head.transition, cursor.pinEvent, head.pinEvent, limit + 1])
            return FeedChanges(
                cursor: head, touchedUsers: users.count > limit ? nil : Set(users),
                rulesAdopted: head.adoptedRules > cursor.adoptedRules)
        }
    }

    private static func head(_ db: Database) throws -> FeedCursor {
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT (SELECT COALESCE(MAX(id), 0) FROM journey_transitions),
                       (SELECT COALESCE(MAX(id), 0) FROM journey_pin_events),
                       (SELECT COALESCE(MAX(id), 0) FROM journey_rules)
                """)!
        return FeedCursor(transition: row[0], pinEvent: row[1], adoptedRules: row[2])
    }
}
