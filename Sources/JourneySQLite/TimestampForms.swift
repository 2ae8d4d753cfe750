import Foundation
public import GRDB
import GRDBSQLite
import JourneyStorage
import Synchronization

/// Which platform timestamp columns hold canonical text alone, as the triggers of
/// `journey_timestamp_columns` count them: the metrics statements compare such a column as text
/// and pay for ``TimestampFunctions`` only where another form was ever written (SPEC §8).
///
/// For canonical text (`YYYY-MM-DD HH:MM:SS[.SSS]`, a real UTC date and time) text order is time
/// order, so `created_at >= '2026-10-30 07:03:19'` is an index range that gives the same answer as
/// `journey_instant(created_at) >= 1793343799` for every row, and costs nothing per row. Any other form
/// needs the parser on every row (BENCHMARKS.md, "Timestamps in every form", measured it at up to 2.25× the
/// batch's read side). `journey_timestamp_columns` holds, for each column the set-based metrics read,
/// how many non-canonical values were ever written; migration counts the existing ones once, and
/// triggers on insert and update add each new one. The count only grows (a deleted value is not
/// subtracted): a column that once held another form keeps the parser, which is right for every form.
///
/// The metrics statements are written once per value of this type (``SQLiteStore/snapshotSQL(_:)``,
/// ``SQLiteStore/chunkSQL(_:)``), and a read picks the one for the forms its own transaction sees
/// (``current(_:)``). The triggers use SQLite's built-in functions only, so every writer, in any
/// process, fires them.
///
/// What the counts say holds only while their triggers exist, and so for `users.follower_count`
/// (``followerCountKept``): a platform that rebuilds a table (SQLite's "new table, copy, drop,
/// rename") drops the triggers on it. A column whose triggers are gone is read through the parser,
/// and followers are counted from `follows`, until `journey migrate` makes the triggers again;
/// `doctor` names the missing triggers meanwhile.
public struct TimestampForms: Hashable, Sendable {
    /// Whether `posts.created_at` holds canonical text alone (or NULL).
    public var postsCreatedAt: Bool
    /// Whether `events.start_date` holds canonical text alone (or NULL).
    public var eventsStartDate: Bool
    /// Whether every trigger that keeps `users.follower_count` exact exists, so that the statements
    /// may read the count instead of counting `follows`.
    public var followerCountKept: Bool

    /// Forms with each column canonical (`true`) or not, and `follower_count` kept by its triggers or not.
    public init(postsCreatedAt: Bool, eventsStartDate: Bool, followerCountKept: Bool = true) {
        self.postsCreatedAt = postsCreatedAt
        self.eventsStartDate = eventsStartDate
        self.followerCountKept = followerCountKept
    }

    /// Every watched column canonical: what a file written by Journey's generator holds.
    public static let canonical = TimestampForms(postsCreatedAt: true, eventsStartDate: true)

    /// The eight values, in ``index`` order.
    static let all = [true, false].flatMap { kept in
        [false, true].flatMap { posts in [false, true].map { TimestampForms(postsCreatedAt: posts, eventsStartDate: $0, followerCountKept: kept) } }
    }

    /// The position of this value in ``all``.
    var index: Int { (followerCountKept ? 0 : 4) + (postsCreatedAt ? 2 : 0) + (eventsStartDate ? 1 : 0) }

    /// The columns the set-based metrics compare with the window: `(table, column)`.
    static let watched: [(table: String, column: String)] = [("posts", "created_at"), ("events", "start_date")]

    /// Reads the counts and the triggers in `db`'s current transaction (a column without a row, or
    /// whose triggers are gone or changed, ``JourneyMigrations/brokenPlatformTriggers(_:)``, counts
    /// as non-canonical).
    ///
    /// - throws: GRDB's error when SQLite fails (a file migrated before the counts existed has no table).
    public static func read(_ db: Database) throws -> TimestampForms {
        var counts: [String: Int64] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT table_name, column_name, noncanonical FROM journey_timestamp_columns")) {
            counts["\(row[0] as String).\(row[1] as String)"] = row[2]
        }
        let broken = Set(try JourneyMigrations.brokenPlatformTriggers(db))
        func canonical(_ table: String, _ column: String) -> Bool {
            counts["\(table).\(column)"] == 0 && !triggerNames(table: table, column: column).contains(where: broken.contains)
        }
        return TimestampForms(
            postsCreatedAt: canonical("posts", "created_at"), eventsStartDate: canonical("events", "start_date"),
            followerCountKept: !JourneyMigrations.followerCountTriggers.contains(where: broken.contains))
    }

    /// The forms as `db`'s current transaction sees them, read from the table once per change of
    /// the file: kept per connection with SQLite's data version, which moves with every commit by
    /// this connection or any other, in any process (`SQLITE_FCNTL_DATA_VERSION`).
    ///
    /// `PRAGMA data_version` runs first so that the transaction's snapshot is taken (a deferred
    /// transaction reads nothing until its first statement) and the version is the one the metrics
    /// statement will read. Inside a write transaction, whose own uncommitted writes do not move
    /// the version, or outside any transaction, the counts are read each time.
    static func current(_ db: Database) throws -> TimestampForms {
        guard let connection = db.sqliteConnection, db.isInsideTransaction, sqlite3_txn_state(connection, "main") != SQLITE_TXN_WRITE else {
            return try read(db)
        }
        _ = try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version"))
        var version: UInt32 = 0
        guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_DATA_VERSION, &version) == SQLITE_OK else { return try read(db) }
        let key = ObjectIdentifier(db)
        if let known = known.withLock({ $0[key] }), known.connection === db, known.version == version { return known.forms }
        let forms = try read(db)
        Self.known.withLock { known in
            if known.count >= 64 { known = known.filter { $0.value.connection != nil } }
            known[key] = Known(connection: db, version: version, forms: forms)
        }
        return forms
    }

    /// What ``current(_:)`` last read on one connection, and at which data version.
    private struct Known: @unchecked Sendable {
        /// The connection: weak, so that a new connection at the same address is never taken for it.
        /// Compared by identity only, never used (hence `@unchecked Sendable`).
        weak var connection: Database?
        let version: UInt32
        let forms: TimestampForms
    }

    private static let known = Mutex<[ObjectIdentifier: Known]>([:])

    /// True (never NULL) when `value` is canonical text that SQLite's own `strftime` writes back
    /// unchanged once normalized (`'+0 days'`): a real date and time (no February 30, no hour 24, no
    /// second 60), with no fraction or exactly three digits of it. Every such value reads as the same instant through ``Timestamp``, form `canonical`.
    static func isCanonical(_ value: String) -> String {
        """
        (typeof(\(value)) = 'text'
         AND (length(\(value)) = 19 OR (length(\(value)) = 23 AND substr(\(value), 20, 1) = '.' AND substr(\(value), 21) GLOB '[0-9][0-9][0-9]'))
         AND substr(\(value), 1, 19) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
         AND strftime('%Y-%m-%d %H:%M:%S', substr(\(value), 1, 19), '+0 days') IS substr(\(value), 1, 19))
        """
    }

    /// The table, the first count of each column, and the triggers that keep the counts.
    static var installSQL: String {
        """
        CREATE TABLE journey_timestamp_columns (
            table_name TEXT NOT NULL,
            column_name TEXT NOT NULL,
            noncanonical INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (table_name, column_name));

        """ + watched.map { countSQL(table: $0.table, column: $0.column) }.joined()
    }

    /// The names of the two triggers that count `table.column`'s values as they are written.
    static func triggerNames(table: String, column: String) -> [String] {
        ["journey_\(table)_\(column)_form_insert", "journey_\(table)_\(column)_form_update"]
    }

    /// `table.column`'s first count of values that are not canonical, and its two triggers.
    static func countSQL(table: String, column: String) -> String {
        let counted = "UPDATE journey_timestamp_columns SET noncanonical = noncanonical + 1 WHERE table_name = '\(table)' AND column_name = '\(column)';"
        let odd = "NEW.\(column) IS NOT NULL AND NOT \(isCanonical("NEW.\(column)"))"
        let names = triggerNames(table: table, column: column)
        return """
            INSERT INTO journey_timestamp_columns(table_name, column_name, noncanonical)
            SELECT '\(table)', '\(column)', COUNT(*) FROM \(table) WHERE \(column) IS NOT NULL AND NOT \(isCanonical(column));
            CREATE TRIGGER \(names[0]) AFTER INSERT ON \(table) WHEN \(odd) BEGIN
                \(counted)
            END;
            CREATE TRIGGER \(names[1]) AFTER UPDATE OF \(column) ON \(table) WHEN \(odd) BEGIN
                \(counted)
            END;

            """
    }
}
