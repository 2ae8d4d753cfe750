import Foundation
import GRDB
public import JourneyStorage

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

    /// Opens the feed's connection, notes `data_version` and calls `changed` once, then polls every
    /// ``interval`` and calls `changed` when the value moved; returns when the task is cancelled. An open or a poll that
    /// finds the file busy is tried again after an interval.
    ///
    /// - throws: ``StorageError`` when the connection cannot be opened or a poll fails otherwise.
    public func watch(_ changed: @Sendable () async -> Void) async throws(StorageError) {
        var opened: (connection: DatabaseQueue, version: Int)?
        while opened == nil {
            do {
                var configuration = Configuration()
                configuration.readonly = !FileManager.default.isWritableFile(atPath: path)
                configuration.busyMode = .timeout(SQLiteStore.busyTimeout)
                configuration.label = "journey.feed"
                let connection = try DatabaseQueue(path: path, configuration: configuration)
                opened = (connection, try await Self.version(connection))
            } catch {
                // Busy past the timeout (another process recovering the WAL or switching the journal
                // mode): tried again after an interval, like a poll.
                let failure = StorageError.wrap(error, path: path)
                guard failure.category == .busy else { throw failure }
                do { try await Task.sleep(for: interval) } catch { return }  // cancelled
            }
        }
        guard let (connection, first) = opened else { return }
        var last = first
        await changed()  // what committed before the baseline (ChangeSignal's contract)
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
                // A poll that found the file busy past the timeout (a checkpoint or WAL recovery by
                // another process on a loaded machine) is tried again at the next interval: a reader
                // whose feed stopped here would wait for a signal that never comes.
                let failure = StorageError.wrap(error, path: path)
                if failure.category == .busy { continue }
                throw failure
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
