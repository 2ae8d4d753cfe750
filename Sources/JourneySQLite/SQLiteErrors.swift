import Foundation
import GRDB
import JourneyStorage

extension StorageError {
    /// Maps a GRDB or SQLite error on the file at `path` to the storage protocol's vocabulary.
    static func wrap(_ error: any Error, path: String) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return .notADatabase(location: path)
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return .busy(location: path)
            case .SQLITE_READONLY, .SQLITE_CANTOPEN:
                let directory = (path as NSString).deletingLastPathComponent
                let shown = directory.isEmpty ? "." : directory
                if !FileManager.default.isWritableFile(atPath: shown) {
                    return .notWritable(
                        location: path,
                        what: "SQLite must create \(path)-wal and \(path)-shm beside the database "
                            + "(WAL mode, even to read), and the directory \(shown) is not writable")
                }
            default:
                break
            }
            return .failed(location: path, message: error.message ?? "\(error.resultCode)")
        }
        return .failed(location: path, message: "\(error)")
    }
}
