import PostgresNIO

/// What the PostgreSQL store refuses or fails at, each as one sentence naming the server, the
/// database or the user.
public enum PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// The `--db` value is not a `postgresql://user[:password]@host[:port]/database` URL; `reason`
    /// says which part is wrong.
    case malformedURL(String, reason: String)
    /// Nothing answered at `host:port` (refused, timed out, unknown host); `message` is the system's.
    case unreachable(host: String, port: Int, message: String)
    /// The server answered but has no database of that name (SQLSTATE 3D000).
    case databaseMissing(database: String, host: String, port: Int)
    /// The server refused the user or the password (SQLSTATE 28000 / 28P01).
    case authenticationFailed(user: String, host: String, port: Int, message: String)
    /// The database lacks some platform tables (`journey migrate` creates the missing ones).
    case platformTablesMissing(tables: [String])
    /// The platform tables are there but `journey migrate` has not run (or not every step).
    case notMigrated(missingSteps: [String])
    /// No row in `users` with this id.
    case unknownUser(id: Int64)
    /// The run is not open for work: finished, failed, or unknown.
    case runNotRunning(runID: Int64)
    /// A `running` batch run uses another rule set; a worker never mixes two rule sets in one run.
    case runRulesMismatch(runID: Int64, running: String, requested: String)
    /// This worker's lease on the shard expired and another worker claimed it: the chunk was rolled
    /// back whole, and the worker must stop working on that shard.
    case leaseLost(runID: Int64, shard: Int, owner: String)
    /// The server refused a statement; `sqlState` is PostgreSQL's five-character code.
    case server(message: String, sqlState: String?)
    /// The connection failed or closed in the middle of the work.
    case connection(message: String)

    /// One sentence naming what is wrong, for a person; a password in a URL is shown as `***`.
    public var description: String {
        switch self {
        case let .malformedURL(url, reason):
            "\(Self.redacted(url)) is not a PostgreSQL URL (\(reason)); expected postgresql://user[:password]@host[:port]/database."
        case let .unreachable(host, port, message):
            "No PostgreSQL server answered at \(host):\(port) (\(message))."
        case let .databaseMissing(database, host, port):
            "The PostgreSQL server at \(host):\(port) has no database \"\(database)\"; create it first (createdb \(database))."
        case let .authenticationFailed(user, host, port, message):
            "The PostgreSQL server at \(host):\(port) refused user \"\(user)\": \(message)."
        case let .platformTablesMissing(tables):
            "The database lacks the platform tables \(tables.joined(separator: ", ")); run journey migrate on the platform's database."
        case let .notMigrated(steps):
            "The database is not migrated (missing: \(steps.joined(separator: ", "))); run journey migrate first."
        case let .unknownUser(id):
            "There is no user \(id) in the users table."
        case let .runNotRunning(runID):
            "Batch run \(runID) is not running (finished, failed or unknown)."
        case let .runRulesMismatch(runID, running, requested):
            "Batch run \(runID) is running with rules \(running), not \(requested); wait for it to finish, or mark it failed if its workers are gone."
        case let .leaseLost(runID, shard, owner):
            "Worker \(owner) lost its lease on shard \(shard) of batch run \(runID) to another worker; its last chunk was rolled back."
        case let .server(message, sqlState):
            "PostgreSQL refused a statement: \(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "")."
        case let .connection(message):
            "The connection to PostgreSQL failed: \(message)."
        }
    }

    /// `url` with its password replaced by `***`, for messages.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
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
}
