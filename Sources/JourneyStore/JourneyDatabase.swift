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
        /// Create the file if needed and run the migrator, in a `DatabasePool` (`journey migrate`, servers).
        case migrate
        /// The file must exist and be migrated already; one connection that reads and writes
        /// (a command-line process). A file refused here is left untouched.
        case requireMigrated
        /// The file must exist and be migrated already; every write through this value is refused
        /// (dry runs, reports). Opens read-only at the SQLite level when the file is not writable.
        case readOnly
    }

    /// The connection(s) to the file: a `DatabasePool` for `.migrate`, a `DatabaseQueue` otherwise.
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
            if mode != .migrate {
                // One connection, which neither switches the journal mode nor creates tables
                // (a pool would), so a file refused by the schema check is left untouched. A
                // read-only SQLite connection would leave -wal and -shm files behind, so it is
                // used only where the file cannot be written anyway.
                config.readonly = mode == .readOnly && !FileManager.default.isWritableFile(atPath: path)
                let queue = try DatabaseQueue(path: path, configuration: config)
                try queue.read { db in try checkSchema(db, path: path) }
                return JourneyDatabase(writer: queue, path: path, isReadOnly: mode == .readOnly)
            }
            if !exists { _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) }
            let pool = try DatabasePool(path: path, configuration: config)
            if mode == .migrate { try migrate(pool, now: now) }
            return JourneyDatabase(writer: pool, path: path, isReadOnly: false)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    /// Uses a pool the host already owns (one pool per file per process); runs the migrator.
    public init(pool: DatabasePool, now: Date = Date()) throws(StoreError) {
        do {
            try Self.migrate(pool, now: now)
        } catch {
            throw StoreError.wrap(error, path: pool.path)
        }
        self.init(writer: pool, path: pool.path, isReadOnly: false)
    }

    private init(writer: any DatabaseWriter, path: String, isReadOnly: Bool) {
        self.writer = writer
        self.path = path
        self.isReadOnly = isReadOnly
    }

    /// Runs the migrator. Two processes migrating one file at once can collide: GRDB reads the
    /// applied migrations before the transaction that applies the next one, so one process may
    /// re-run a migration the other just committed ("already exists", a UNIQUE failure). Each
    /// migration is its own transaction and rolls back whole, so trying again skips what the
    /// other process finished; a genuine failure fails every time and is thrown.
    private static func migrate(_ writer: any DatabaseWriter, now: Date) throws {
        let migrator = JourneyMigrations.migrator(now: now)
        for attempt in 1... {
            do {
                return try migrator.migrate(writer)
            } catch is DatabaseError where attempt < 5 {
                continue
            }
        }
    }

    /// Throws unless the platform tables exist and every migration has run.
    private static func checkSchema(_ db: Database, path: String) throws {
        let missing = try JourneyMigrations.platformTables.filter { try !db.tableExists($0) }
        if !missing.isEmpty { throw StoreError.platformTablesMissing(path: path, tables: missing) }
        if try !JourneyMigrations.migrator(now: Date()).hasCompletedMigrations(db) {
            throw StoreError.notMigrated(path: path)
        }
    }

    /// Runs `body` in one IMMEDIATE transaction, so that what it read is still true when it writes.
    ///
    /// The transaction runs on GRDB's writer dispatch queue: while SQLite waits for another
    /// process's lock (up to ``busyTimeout``), the calling task is suspended, and no thread of
    /// Swift's cooperative pool is held (SPEC §9). Writers of this process queue behind one
    /// another without holding threads either.
    func immediateWrite<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        if isReadOnly { throw .sqlite(path: path, message: "the database was opened read-only; nothing was written") }
        do {
            return try await writer.writeWithoutTransaction { db in try Self.transaction(.immediate, db, body) }
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    /// Runs `body` in one read transaction, on a GRDB dispatch queue (never a cooperative thread).
    ///
    /// A pool reads on its reader connections, which never wait for a writer (WAL). A queue's
    /// `read` would wrap each read in `PRAGMA query_only = 1 … = 0`, which makes SQLite re-prepare
    /// every cached statement of the connection (measured: 296 µs instead of 44 µs a user); so a
    /// queue reads in a plain deferred transaction, and ``isReadOnly`` is what refuses writes on a
    /// read-only value.
    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        do {
            if writer is DatabasePool { return try await writer.read(body) }
            return try await writer.unsafeRead { db in try Self.transaction(.deferred, db, body) }
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    private static func transaction<T>(_ kind: Database.TransactionKind, _ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(kind) {
            result = try body(db)
            return .commit
        }
        return result!
    }
}
