import GRDB
import GRDBSQLite
import JourneyCore
import JourneyStorage

/// The SQL side of ``Timestamp``: the same parser, callable from the metrics statements.
///
/// Two functions are registered on every connection the store opens (SPEC §8):
/// - `journey_instant(value)`: seconds since 1970-01-01 UTC as a REAL, or NULL when the value is
///   NULL or unreadable. The metrics compare it with the window bounds, so a post stored as
///   `2026-10-30T07:03:19.000Z` and one stored as `1793343799000` read as the same instant as
///   `2026-10-30 07:03:19`.
/// - `journey_timestamp_form(value)`: the ``Timestamp/Form`` of a non-NULL value (`canonical`,
///   `iso8601`, …, `unreadable`), NULL for NULL; `doctor` groups by it.
///
/// They go through SQLite's C API rather than GRDB's `DatabaseFunction`, which boxes every argument
/// into an array of `DatabaseValue`s: these run once for every post of every user in the batch.
/// Only Journey's own reads use them; no schema object (index, trigger, view) names them, so other
/// applications and the `sqlite3` shell keep working on the file.
enum TimestampFunctions {
    /// Registers both functions on `db`. Called from every connection's `prepareDatabase`.
    static func register(_ db: Database) throws {
        let code = register(connection: db.sqliteConnection)
        guard code == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "could not register the journey timestamp functions")
        }
    }

    /// Registers both functions on a raw SQLite connection; returns SQLite's result code.
    static func register(connection: OpaquePointer?) -> Int32 {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS
        for (name, function) in [("journey_instant", instant), ("journey_timestamp_form", form)] {
            let code = sqlite3_create_function_v2(connection, name, 1, flags, nil, function, nil, nil, nil)
            guard code == SQLITE_OK else { return code }
        }
        return SQLITE_OK
    }

    /// Whether `db` can run the metrics statements (a host's own pool must be configured with
    /// ``SQLiteStore/prepare(_:)``).
    static func isRegistered(_ db: Database) -> Bool {
        (try? Double.fetchOne(db, sql: "SELECT journey_instant(0)")) != nil
    }

    private typealias Function = @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void

    /// Reads one SQLite value: nil for NULL, else the parse of its text or number.
    private static func read(_ value: OpaquePointer?) -> (seconds: Double?, form: Timestamp.Form)? {
        switch sqlite3_value_type(value) {
        case SQLITE_NULL:
            return nil
        case SQLITE_INTEGER:
            let number = Double(sqlite3_value_int64(value))
            return (Timestamp.unixSeconds(epoch: number), Timestamp.form(epoch: number))
        case SQLITE_FLOAT:
            let number = sqlite3_value_double(value)
            return (Timestamp.unixSeconds(epoch: number), Timestamp.form(epoch: number))
        case SQLITE_TEXT:
            guard let text = sqlite3_value_text(value) else { return (nil, .unreadable) }
            let count = Int(sqlite3_value_bytes(value))
            return Timestamp.read(bytes: UnsafeBufferPointer(start: text, count: count))
        default:
            return (nil, .unreadable)
        }
    }

    private static let instant: Function = { context, _, arguments in
        if let seconds = read(arguments?[0])?.seconds {
            sqlite3_result_double(context, seconds)
        } else {
            sqlite3_result_null(context)
        }
    }

    private static let form: Function = { context, _, arguments in
        if let form = read(arguments?[0])?.form {
            // SQLITE_TRANSIENT (-1): SQLite copies the text before the buffer goes away.
            form.rawValue.utf8CString.withUnsafeBufferPointer { buffer in
                sqlite3_result_text(context, buffer.baseAddress, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
        } else {
            sqlite3_result_null(context)
        }
    }
}
