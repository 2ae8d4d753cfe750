import Foundation
import GRDB
import JourneyCore

/// What the store refuses or fails at, each as one sentence naming the file or the user.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// A directory where a database file was expected.
    case isDirectory(path: String)
    /// No file at `path` (the store never creates a database unless asked to).
    case databaseMissing(path: String)
    /// The file exists but is not a SQLite database (or is damaged).
    case notADatabase(path: String)
    /// The file lacks the platform tables (`users`, `posts`, …).
    case platformTablesMissing(path: String, tables: [String])
    /// The platform tables are there but `journey migrate` has not run.
    case notMigrated(path: String)
    /// No row in `users` with this id.
    case unknownUser(id: Int64)
    /// Reading or writing failed at the SQLite level.
    case sqlite(path: String, message: String)
    /// Another process held the database's write lock longer than the busy timeout.
    case busy(path: String)
    /// SQLite cannot write next to the file: the directory is not writable, and WAL mode needs
    /// `-wal` and `-shm` files beside the database (even to read).
    case directoryNotWritable(path: String, directory: String)
    /// Another batch holds the lock: its lease has not expired.
    case batchRunning(runID: Int64, holder: String, startedAt: String, leaseExpiresAt: String)
    /// This batch run's lease was taken over by another run; it stopped without writing more.
    case leaseLost(runID: Int64)
    /// Another writer kept moving the user; the move was retried and gave up.
    case conflictRetriesExhausted(userID: Int64, attempts: Int)
    /// The database refused to store the user's move (a constraint or trigger on `users`).
    case writeRefused(userID: Int64, message: String)

    /// One sentence naming the file or user and, where there is one, the command or step that fixes it.
    public var description: String {
        switch self {
        case let .databaseMissing(path):
            "No database at \(path); pass --db PATH or set JOURNEY_DATABASE (journey migrate --create --db PATH creates one)."
        case let .isDirectory(path):
            "\(path) is a directory, not a database file."
        case let .notADatabase(path):
            "\(path) is not a SQLite database (or it is damaged)."
        case let .platformTablesMissing(path, tables):
            "\(path) lacks the platform tables \(tables.joined(separator: ", ")); run journey migrate --db \(path) on the platform database."
        case let .notMigrated(path):
            "\(path) lacks the journey schema of this version (columns, tables, triggers or indexes); run journey migrate --db \(path) first."
        case let .unknownUser(id):
            "There is no user \(id) in the users table."
        case let .sqlite(path, message):
            "SQLite failed on \(path): \(message)."
        case let .busy(path):
            "\(path) is locked by another process (waited \(Int(SQLiteStore.busyTimeout)) s); try again."
        case let .directoryNotWritable(path, directory):
            "SQLite must create \(path)-wal and \(path)-shm beside the database, but \(directory) is not writable; make the directory writable for this user."
        case let .batchRunning(runID, holder, startedAt, leaseExpiresAt):
            "Another batch (run \(runID), \(holder.printable), started \(startedAt)) holds the lease until \(leaseExpiresAt); "
                + "wait for it to finish (a run that stops renewing is taken over after its lease expires), or pass --take-over if it is gone."
        case let .leaseLost(runID):
            "Batch run \(runID) lost its lease to another run (it was taken over); it stopped without writing more."
        case let .conflictRetriesExhausted(userID, attempts):
            "User \(userID) was moved by another writer \(attempts) times in a row; try again."
        case let .writeRefused(userID, message):
            "The database refused to store the move of user \(userID): \(message.printable); fix the row or the constraint."
        }
    }

    /// Maps a GRDB error to the store's vocabulary.
    static func wrap(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return .notADatabase(path: path)
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return .busy(path: path)
            case .SQLITE_READONLY, .SQLITE_CANTOPEN:
                let directory = (path as NSString).deletingLastPathComponent
                let shown = directory.isEmpty ? "." : directory
                if !FileManager.default.isWritableFile(atPath: shown) {
                    return .directoryNotWritable(path: path, directory: shown)
                }
            default:
                break
            }
            return .sqlite(path: path, message: error.message ?? "\(error.resultCode)")
        }
        return .sqlite(path: path, message: "\(error)")
    }
}
