import Foundation

/// What a store refuses or fails at, whichever database is behind it: one sentence that says what
/// is wrong and names the database, the file or the user, with no advice of any front end's.
///
/// Each front end maps ``category`` to its own answer (the command line to an exit status, an HTTP
/// host to a status code) and adds its own advice (`journey migrate`, `--db`), so that an HTTP body
/// never tells its client to pass a command-line option.
public enum StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No database at `location` (a store never creates one unless asked to).
    case databaseMissing(location: String)
    /// A directory where a database file was expected.
    case isDirectory(path: String)
    /// What is at `location` is not a database of this kind, or it is damaged.
    case notADatabase(location: String)
    /// The database lacks the platform tables (`users`, `posts`, …).
    case platformTablesMissing(location: String, tables: [String])
    /// The platform tables cannot serve Journey as they are (``PlatformSchema/problems(_:)``: a
    /// column the metrics read missing, a view, an id column whose values sort as text), one phrase
    /// each; `migrate` refuses to start then, and changes nothing.
    case platformTablesUnfit(location: String, problems: [String])
    /// The platform tables are there but the journey schema of this version is not (not migrated).
    case notMigrated(location: String)
    /// No row in `users` with this id.
    case unknownUser(id: Int64)
    /// The store was opened read-only and was asked to write; nothing was written.
    case readOnly(location: String)
    /// Another process held the database's write lock longer than the store waits.
    case busy(location: String)
    /// The database cannot be reached (a server that refuses or drops the connection).
    case unreachable(location: String, message: String)
    /// The process may not write where the database needs to (SQLite's `-wal` and `-shm` files
    /// beside the file, even to read; a role without the grants on a server).
    case notWritable(location: String, what: String)
    /// Another batch holds the lock: its lease has not expired (times as ISO 8601 UTC text).
    case batchRunning(runID: Int64, holder: String, startedAt: String, leaseExpiresAt: String)
    /// This batch run's lease was taken over by another run; it stopped without writing more.
    case leaseLost(runID: Int64)
    /// The database refused to store the user's move (a constraint or trigger on `users`), with its message.
    case writeRefused(userID: Int64, message: String)
    /// Reading or writing failed otherwise, with the database's own message.
    case failed(location: String, message: String)

    /// The kinds of failure a front end answers differently; coarse on purpose.
    public enum Category: String, Sendable, Hashable, CaseIterable {
        /// The database or the user asked for does not exist.
        case notFound
        /// The database exists but cannot serve: not a database, damaged, or not migrated.
        case invalidDatabase
        /// Another writer holds what this one needs, for now: trying again later may succeed.
        case busy
        /// The process lacks a permission: a read-only store, a directory it cannot write.
        case permission
        /// The data refused the write (a constraint of the platform's).
        case refused
        /// The database failed or cannot be reached.
        case failure
    }

    /// What kind of failure this is, for a front end to choose its exit or HTTP status.
    public var category: Category {
        switch self {
        case .databaseMissing, .unknownUser: .notFound
        case .isDirectory, .notADatabase, .platformTablesMissing, .platformTablesUnfit, .notMigrated: .invalidDatabase
        case .busy, .batchRunning, .leaseLost: .busy
        case .readOnly, .notWritable: .permission
        case .writeRefused: .refused
        case .unreachable, .failed: .failure
        }
    }

    /// One sentence naming the database or the user: what is wrong, not what to type.
    public var description: String {
        switch self {
        case let .databaseMissing(location): "There is no database at \(location)."
        case let .isDirectory(path): "\(path) is a directory, not a database file."
        case let .notADatabase(location): "\(location) is not a journey database (or it is damaged)."
        case let .platformTablesMissing(location, tables):
            "\(location) lacks the platform tables \(tables.joined(separator: ", "))."
        case let .platformTablesUnfit(location, problems):
            "\(location) has platform tables Journey cannot use: \(problems.joined(separator: "; "))."
        case let .notMigrated(location):
            "\(location) lacks the journey schema of this version (columns, tables, triggers or indexes)."
        case let .unknownUser(id): "There is no user \(id) in the users table."
        case let .readOnly(location): "\(location) was opened read-only; nothing was written."
        case let .busy(location): "\(location) is locked by another process."
        case let .unreachable(location, message): "Cannot reach \(location): \(message)."
        case let .notWritable(location, what): "\(location) cannot be written: \(what)."
        case let .batchRunning(runID, holder, startedAt, leaseExpiresAt):
            "Another batch (run \(runID), \(holder.printable), started \(startedAt)) holds the lease until \(leaseExpiresAt)."
        case let .leaseLost(runID):
            "Batch run \(runID) lost its lease to another run (it was taken over); it stopped without writing more."
        case let .writeRefused(userID, message):
            "The database refused to store the move of user \(userID): \(message.printable)."
        case let .failed(location, message): "The database \(location) failed: \(message)."
        }
    }
}

extension Duration {
    /// The duration in seconds, as the stores' and the batch's timings report it (``PersistResult/committing``).
    /// Package-wide, not public: a host's own `Duration` extensions stay unambiguous.
    package var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
