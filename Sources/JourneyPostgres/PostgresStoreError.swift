import JourneyStorage
import PostgresNIO

/// What goes wrong inside the PostgreSQL store, before it crosses the seam as a ``StorageError``
/// (``storageError(at:)``): every public method of ``PostgresStore`` throws `StorageError` only.
enum PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// Nothing answered at `host:port` (refused, timed out, unknown host); `message` is the system's.
    case unreachable(host: String, port: Int, message: String)
    /// The server answered but has no database of that name (SQLSTATE 3D000).
    case databaseMissing(database: String, host: String, port: Int)
    /// The server refused the user or the password (SQLSTATE 28000 / 28P01).
    case authenticationFailed(user: String, host: String, port: Int, message: String)
    /// The database lacks some platform tables.
    case platformTablesMissing(tables: [String])
    /// The platform tables cannot serve Journey as they are (``PlatformSchema/problems(_:)``).
    case platformTablesUnfit(problems: [String])
    /// The platform tables are there but the migrator has not run (or not every step).
    case notMigrated(missingSteps: [String])
    /// The run is not open for work: finished, failed, interrupted, or unknown.
    case runNotRunning(runID: Int64)
    /// This worker's lease on the shard expired and another worker claimed it: the chunk was rolled
    /// back whole, and the worker must stop working on that shard.
    case shardLeaseLost(runID: Int64, shard: Int, owner: String)
    /// A write did not store what was written, without an error: a `BEFORE` trigger of the
    /// platform's returned NULL for the user's stage update or transition row, or a trigger
    /// changed the stage or removed the row. `what` says which. Refused like a row the server
    /// refuses (``refusesOneRow(_:)``).
    case writeIgnored(what: String)
    /// The server refused a statement; `sqlState` is PostgreSQL's five-character code.
    case server(message: String, sqlState: String?)
    /// The connection failed or closed in the middle of the work.
    case connection(message: String)

    var description: String {
        switch self {
        case let .unreachable(host, port, message):
            "No PostgreSQL server answered at \(host):\(port) (\(message))"
        case let .databaseMissing(database, host, port):
            "The PostgreSQL server at \(host):\(port) has no database \"\(database)\""
        case let .authenticationFailed(user, host, port, message):
            "The PostgreSQL server at \(host):\(port) refused user \"\(user)\": \(message)"
        case let .platformTablesMissing(tables):
            "The database lacks the platform tables \(tables.joined(separator: ", "))"
        case let .platformTablesUnfit(problems):
            "The database has platform tables Journey cannot use: \(problems.joined(separator: "; "))"
        case let .notMigrated(steps):
            "The database is not migrated (missing: \(steps.joined(separator: ", ")))"
        case let .runNotRunning(runID):
            "Batch run \(runID) is not running (finished, failed, interrupted or unknown)"
        case let .shardLeaseLost(runID, shard, owner):
            "Worker \(owner) lost its lease on shard \(shard) of batch run \(runID) to another worker; its last chunk was rolled back"
        case let .writeIgnored(what):
            "the database did not store \(what)"
        case let .server(message, sqlState):
            "\(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "")"
        case let .connection(message):
            "the connection failed: \(message)"
        }
    }

    /// Maps a postgres-nio error (or a transaction error wrapping one) to the store's vocabulary.
    static func wrap(_ error: any Error) -> PostgresStoreError {
        if let error = error as? PostgresStoreError { return error }
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.beginError ?? error.commitError { return wrap(inner) }
        }
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                return .server(message: info[.message] ?? "unknown error", sqlState: info[.sqlState])
            }
            return .connection(message: error.underlying.map { "\($0)" } ?? "\(error.code)")
        }
        return .connection(message: "\(error)")
    }

    /// The SQLSTATE of a server error, when `error` is one.
    static func sqlState(of error: any Error) -> String? {
        if case .server(_, let state) = wrap(error) { return state }
        return nil
    }

    /// Whether the server refused one row rather than failed as a whole: a constraint (class 23), a
    /// value the column cannot hold (class 22: a stage longer than the platform's `varchar(50)`), an
    /// exception raised by a trigger of the platform's (P0001), or a stage update a trigger skipped
    /// (``writeIgnored(what:)``). Rolled back alone by a savepoint.
    static func refusesOneRow(_ error: any Error) -> (refused: Bool, message: String) {
        let error = wrap(error)
        if case .writeIgnored = error { return (true, error.description) }
        guard case .server(let message, let state?) = error else { return (false, "") }
        return (state.hasPrefix("23") || state.hasPrefix("22") || state == "P0001", message)
    }

    /// The same failure in the storage protocol's vocabulary, naming the database at `location`.
    func storageError(at location: String) -> StorageError {
        switch self {
        case let .unreachable(_, _, message):
            return .unreachable(location: location, message: message)
        case .databaseMissing:
            return .databaseMissing(location: location)
        case let .authenticationFailed(user, _, _, message):
            return .unreachable(location: location, message: "the server refused user \"\(user)\": \(message)")
        case let .platformTablesMissing(tables):
            return .platformTablesMissing(location: location, tables: tables)
        case let .platformTablesUnfit(problems):
            return .platformTablesUnfit(location: location, problems: problems)
        case .notMigrated:
            return .notMigrated(location: location)
        case .runNotRunning, .writeIgnored:
            return .failed(location: location, message: description)
        case let .shardLeaseLost(runID, _, _):
            return .leaseLost(runID: runID)
        case let .connection(message):
            return .unreachable(location: location, message: message)
        case let .server(message, sqlState):
            let state = sqlState ?? ""
            switch state {
            // serialization_failure, deadlock_detected, lock_not_available (lock_timeout), query_canceled (statement_timeout)
            case "40001", "40P01", "55P03", "57014":
                return .busy(location: location)
            case "3D000":
                return .databaseMissing(location: location)
            // undefined_table, undefined_column: a schema not migrated (or dropped since)
            case "42P01", "42703":
                return .notMigrated(location: location)
            // undefined_function: the journey's own functions missing; any other is a bug, with its message
            case "42883" where message.contains("journey_"):
                return .notMigrated(location: location)
            case "25006":  // read_only_sql_transaction: a read-only store, or a hot standby
                return .readOnly(location: location)
            case "42501":  // insufficient_privilege
                return .notWritable(location: location, what: message)
            case "28000", "28P01":
                return .unreachable(location: location, message: message)
            default:
                // admin_shutdown, crash_shutdown, cannot_connect_now; connection exceptions
                if ["57P01", "57P02", "57P03"].contains(state) || state.hasPrefix("08") {
                    return .unreachable(location: location, message: message)
                }
                return .failed(location: location, message: description)
            }
        }
    }
}

extension StorageError {
    /// Any error met inside the store (a ``StorageError`` already, a ``PostgresStoreError``, a
    /// postgres-nio error) as a ``StorageError`` naming the database at `location`.
    static func wrap(_ error: any Error, location: String) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? PostgresTransactionError,
            let inner = error.closureError ?? error.beginError ?? error.commitError
        {
            return wrap(inner, location: location)
        }
        return PostgresStoreError.wrap(error).storageError(at: location)
    }
}
