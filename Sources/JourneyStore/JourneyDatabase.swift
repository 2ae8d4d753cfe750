import Foundation
import GRDB

/// The journey's home in SQLite: one `DatabaseWriter` on one file, and one method per use case.
///
/// Every method that writes runs one IMMEDIATE transaction that keeps an invariant
/// (a stage is never stored without its transition rows, nor the reverse).
///
/// ```swift
/// let database = try JourneyDatabase.open(path: "journey.sqlite", mode: .migrate)
/// let snapshot = try database.snapshot(user: 42, now: Date())
/// ```
public struct JourneyDatabase: Sendable {
    /// How to open a file.
    public enum OpenMode: Sendable {
        /// Create the file if needed and run the migrator (`journey migrate`, the API server).
        case migrate
        /// The file must exist and be migrated already; reads and writes.
        case requireMigrated
        /// The file must exist and be migrated already; nothing can be written (dry runs, reports).
        case readOnly
    }

    /// The connection(s) to the file: a `DatabasePool` in WAL mode, or a read-only queue.
    public let writer: any DatabaseWriter
    /// The file path, for messages.
    public let path: String
    /// Whether the file was opened with ``OpenMode/readOnly``: every write fails.
    public let isReadOnly: Bool

    /// Seconds a writer waits for another process's lock before giving up.
    public static let busyTimeout: TimeInterval = 10

    /// Opens the file at `path`.
    ///
    /// - throws: ``StoreError`` naming the file: missing, a directory, not SQLite, not migrated.
    public static func open(path: String, mode: OpenMode, now: Date = Date()) throws(StoreError) -> JourneyDatabase {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue { throw .isDirectory(path: path) }
        if !exists && mode != .migrate { throw .databaseMissing(path: path) }
        do {
            var config = Configuration()
            config.busyMode = .timeout(busyTimeout)
            config.foreignKeysEnabled = false
            let writer: any DatabaseWriter
            if mode == .readOnly {
                config.readonly = true
                writer = try DatabaseQueue(path: path, configuration: config)
            } else {
                if !exists { _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) }
                writer = try DatabasePool(path: path, configuration: config)
            }
            return try JourneyDatabase(writer: writer, path: path, mode: mode, now: now)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    /// Uses a pool the host already owns (one pool per file per process); runs the migrator.
    public init(pool: DatabasePool, now: Date = Date()) throws(StoreError) {
        do {
            try self.init(writer: pool, path: pool.path, mode: .migrate, now: now)
        } catch {
            throw StoreError.wrap(error, path: pool.path)
        }
    }

    private init(writer: any DatabaseWriter, path: String, mode: OpenMode, now: Date) throws {
        self.writer = writer
        self.path = path
        self.isReadOnly = mode == .readOnly
        if mode == .migrate {
            try JourneyMigrations.migrator(now: now).migrate(writer)
        } else {
            try checkSchema()
        }
    }

    /// Whether every migration has run; lists what is missing otherwise.
    private func checkSchema() throws {
        try writer.read { db in
            let missing = try JourneyMigrations.platformTables.filter { try !db.tableExists($0) }
            if !missing.isEmpty { throw StoreError.platformTablesMissing(path: path, tables: missing) }
            let done = try JourneyMigrations.migrator(now: Date()).hasCompletedMigrations(db)
            if !done { throw StoreError.notMigrated(path: path) }
        }
    }

    /// Runs `body` in one IMMEDIATE transaction, so that what it read is still true when it writes.
    func immediateWrite<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    /// Runs `body` in one read transaction.
    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }
}
