import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Invalidates cache entries when a write through the service's own pool touches a user.
///
/// TEMP triggers on the writer connection call the SQL function `journey_touched(user_id)`
/// for every insert, update and delete on the tables the metrics read (with the OLD and NEW
/// values, so a delete names its user too). The ids wait in `pending` until the transaction
/// ends: a commit invalidates them, a rollback forgets them.
final class WriteTracker: TransactionObserver, Sendable {
    private let pending = Mutex<Set<Int64>>([])
    private let onCommit: @Sendable (Set<Int64>) -> Void

    init(onCommit: @escaping @Sendable (Set<Int64>) -> Void) {
        self.onCommit = onCommit
    }

    /// (table, columns naming a user) for every table a metric depends on.
    static let watched: [(table: String, columns: [String])] = [
        ("posts", ["user_id"]),
        ("follows", ["follower_id", "following_id"]),
        ("events", ["organizer_id"]),
        ("event_rsvps", ["user_id"]),
        ("users", ["id"]),
        ("journey_pins", ["user_id"]),
    ]

    /// Registers the function, the triggers and the observer on `writer`'s connection.
    ///
    /// The function goes through SQLite's C API rather than GRDB's `DatabaseFunction`, which
    /// boxes its argument into an array of `DatabaseValue`s: the triggers call it twice for every
    /// user a write moves. What tracking costs a batch run through such a service, on the
    /// benchmark's 100k users: 0.60 s with GRDB's function (2.01 s against 1.41 s untracked, two
    /// runs), 0.54 s with this one (1.88 s against 1.34 s, one run); the rest is the triggers
    /// themselves (BENCHMARKS.md, `set-tracked`).
    func install(on writer: any DatabaseWriter) async throws {
        try await writer.writeWithoutTransaction { db in
            // The observer is retained for the connection's lifetime (below), so the pointer stays valid.
            let code = sqlite3_create_function_v2(
                db.sqliteConnection, "journey_touched", 1, SQLITE_UTF8, Unmanaged.passUnretained(self).toOpaque(), Self.touched,
                nil, nil, nil)
            guard code == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "could not register journey_touched")
            }
            for (table, columns) in Self.watched {
                for (event, rows) in [("INSERT", ["NEW"]), ("DELETE", ["OLD"]), ("UPDATE", ["OLD", "NEW"])] {
                    let calls = rows.flatMap { row in columns.map { "journey_touched(\(row).\($0))" } }
                    try db.execute(
                        sql: """
                            CREATE TEMP TRIGGER IF NOT EXISTS journey_touch_\(table)_\(event.lowercased())
                            AFTER \(event) ON main.\(table) BEGIN SELECT \(calls.joined(separator: ", ")); END
                            """)
                }
            }
            db.add(transactionObserver: self, extent: .databaseLifetime)
        }
    }

    /// `journey_touched(id)`: notes `id` for the commit when it is an integer (or a whole REAL, as
    /// GRDB's `Int64` reads one); returns NULL.
    private static let touched: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
        context, _, arguments in
        defer { sqlite3_result_null(context) }
        guard let value = arguments?[0], let tracker = sqlite3_user_data(context) else { return }
        let id: Int64? =
            switch sqlite3_value_type(value) {
            case SQLITE_INTEGER: sqlite3_value_int64(value)
            case SQLITE_FLOAT: Int64(exactly: sqlite3_value_double(value))
            default: nil
            }
        if let id { _ = Unmanaged<WriteTracker>.fromOpaque(tracker).takeUnretainedValue().pending.withLock { $0.insert(id) } }
    }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }

    func databaseDidChange(with event: DatabaseEvent) {}

    func databaseDidCommit(_ db: Database) {
        let touched = pending.withLock { ids in
            defer { ids.removeAll() }
            return ids
        }
        if !touched.isEmpty { onCommit(touched) }
    }

    func databaseDidRollback(_ db: Database) {
        pending.withLock { $0.removeAll() }
    }
}
