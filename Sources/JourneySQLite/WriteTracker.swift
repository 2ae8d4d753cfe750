import Foundation
import GRDB
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
    func install(on writer: any DatabaseWriter) async throws {
        try await writer.writeWithoutTransaction { db in
            db.add(
                function: DatabaseFunction("journey_touched", argumentCount: 1, pure: false) { [self] values in
                    if let id = Int64.fromDatabaseValue(values[0]) {
                        _ = self.pending.withLock { $0.insert(id) }
                    }
                    return nil
                })
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
