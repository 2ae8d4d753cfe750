import Foundation
import GRDB
import GRDBSQLite
import JourneySQLite

/// The raw SQLite C API (the libsqlite3 GRDB itself links), for the "same SQL without GRDB" figures.
final class RawDatabase {
    let handle: OpaquePointer

    init(path: String, readOnly: Bool = false) throws {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            throw SpawnError(description: "sqlite3_open_v2(\(path)) failed: \(rc)")
        }
        handle = db
        sqlite3_busy_timeout(db, 10_000)
        // The metrics statements read timestamps through the store's `journey_instant`.
        guard SQLiteStore.registerSQLFunctions(onConnection: db) == SQLITE_OK else {
            throw SpawnError(description: "registering the journey SQL functions on \(path) failed: \(errorMessage)")
        }
    }

    deinit { sqlite3_close_v2(handle) }

    var errorMessage: String { String(cString: sqlite3_errmsg(handle)) }

    func prepare(_ sql: String) throws -> RawStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw SpawnError(description: "prepare failed: \(errorMessage)\n\(sql)") }
        return RawStatement(statement)
    }

    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw SpawnError(description: "exec failed: \(errorMessage)") }
    }

    /// The rows of `sql`, every column as text (for EXPLAIN QUERY PLAN and small reports).
    func rows(_ sql: String) throws -> [[String]] {
        let statement = try prepare(sql)
        var out: [[String]] = []
        while try statement.step() {
            out.append((0..<statement.columnCount).map { statement.text($0) ?? "NULL" })
        }
        return out
    }

    static var version: String { String(cString: sqlite3_libversion()) }
}

private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

final class RawStatement {
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { sqlite3_finalize(handle) }

    func index(_ name: String) -> Int32 { sqlite3_bind_parameter_index(handle, name) }

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
    func bind(_ index: Int32, _ value: String) { sqlite3_bind_text(handle, index, value, -1, transient) }

    /// The statement's named parameters, without their `:` (`user`, `now`, `since_text`, …).
    var parameterNames: [String] {
        (1...max(1, sqlite3_bind_parameter_count(handle))).compactMap { index in
            sqlite3_bind_parameter_name(handle, index).map { String(String(cString: $0).dropFirst()) }
        }
    }

    /// Binds each value of `arguments` to the parameter of its name (`"now"` to `:now`), as GRDB
    /// would: a Double with `sqlite3_bind_double`, a String as text, an integer as int64, nil as NULL.
    /// Used with `SQLiteStore.windowArguments(now:)`, which is what the library binds.
    ///
    /// - parameter later: the parameters the caller binds itself afterwards (`user`, `low`, `high`).
    /// - throws: when the statement has a parameter that is neither in `arguments` nor in `later`
    ///   (it would run with NULL and count nothing), or when `arguments` names one it lacks.
    func bind(_ arguments: [String: (any DatabaseValueConvertible)?], later: Set<String>) throws {
        let names = parameterNames
        let unbound = Set(names).subtracting(arguments.keys).subtracting(later)
        let unknown = Set(arguments.keys).subtracting(names)
        guard unbound.isEmpty, unknown.isEmpty else {
            throw SpawnError(
                description: "binding \(arguments.keys.sorted()): the statement's parameters are \(names)"
                    + (unbound.isEmpty ? "" : "; none given for \(unbound.sorted())") + (unknown.isEmpty ? "" : "; it has no \(unknown.sorted())"))
        }
        for (name, value) in arguments {
            let index = self.index(":" + name)
            switch (value?.databaseValue ?? .null).storage {
            case .double(let number): bind(index, number)
            case .string(let text): bind(index, text)
            case .int64(let number): bind(index, number)
            case .null: sqlite3_bind_null(handle, index)
            case .blob: throw SpawnError(description: "binding :\(name): a blob")
            }
        }
    }

    /// Steps once: true when a row is ready.
    @inline(__always)
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw SpawnError(description: "step failed: \(String(cString: sqlite3_errmsg(sqlite3_db_handle(handle))))")
    }

    func reset() { sqlite3_reset(handle) }

    var columnCount: Int32 { sqlite3_column_count(handle) }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func text(_ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: pointer)
    }
}
