import CJourneySQLite
public import Foundation
public import GRDB
import GRDBSQLite
public import JourneyStorage
import Synchronization

/// The journey's home in SQLite: one `DatabaseWriter` on one file, and one method per use case.
///
/// Every method that writes runs one IMMEDIATE transaction that keeps an invariant
/// (a stage is never stored without its transition rows, nor the reverse).
///
/// ```swift
/// let database = try SQLiteStore.open(path: "journey.sqlite", mode: .migrate)
/// let snapshot = try database.snapshot(user: 42, now: Date())
/// ```
public struct SQLiteStore: Sendable {
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
    /// What the migrator did when this value opened the file; nil unless it ran (``OpenMode/migrate``, ``init(pool:now:)``).
    public let migration: MigrationReport?

    /// Connections that only read, beside ``writer`` (``open(path:mode:concurrentReads:now:)``); empty otherwise.
    private let readers: ReaderConnections

    /// Seconds a writer waits for another process's lock before giving up.
    public static let busyTimeout: TimeInterval = 10

    /// Opens the file at `path`.
    ///
    /// - parameter concurrentReads: with ``OpenMode/requireMigrated`` or ``OpenMode/readOnly``, open a
    ///   `DatabasePool` (after the schema check) instead of one connection, so that reads run on
    ///   connections of their own beside the writer: the nightly batch reads chunks while it writes.
    ///   Only for a file in WAL mode already (a pool would switch another); else one connection.
    ///   ``OpenMode/migrate`` always opens a pool.
    /// - throws: ``StorageError`` naming the file: missing, a directory, not SQLite, not migrated.
    public static func open(path: String, mode: OpenMode, concurrentReads: Bool = false, now: Date = Date()) throws(StorageError) -> SQLiteStore {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue { throw .isDirectory(path: path) }
        if !exists && mode != .migrate { throw .databaseMissing(location: path) }
        do {
            var config = Configuration()
            config.foreignKeysEnabled = false
            prepare(&config)
            if mode != .migrate {
                // One connection, which neither switches the journal mode nor creates tables
                // (a pool would), so a file refused by the schema check is left untouched. A
                // read-only SQLite connection would leave -wal and -shm files behind, so it is
                // used only where the file cannot be written anyway.
                config.readonly = mode == .readOnly && !FileManager.default.isWritableFile(atPath: path)
                let queue = try DatabaseQueue(path: path, configuration: config)
                let journalMode = try queue.read { db in
                    try checkSchema(db, path: path)
                    return try String.fetchOne(db, sql: "PRAGMA journal_mode")
                }
                // Readers beside the writer: more connections of the same kind, not a pool, which
                // writes to the file as it opens (GRDB creates and drops a table to make the WAL
                // exist), and only on a file in WAL mode, where readers never wait for the writer.
                // They map the file as a pool's readers do (``readerMapSize``): the batch's read
                // side reads most of the file's pages once each, so they keep a small page cache
                // of their own (``batchReaderCacheKiB``).
                let readers =
                    concurrentReads && journalMode?.lowercased() == "wal"
                    ? try (0..<concurrentReaders).map { _ -> DatabaseQueue in
                        let reader = try DatabaseQueue(path: path, configuration: config)
                        try reader.inDatabase { db in
                            try db.execute(sql: "PRAGMA mmap_size = \(readerMapSize); PRAGMA cache_size = -\(batchReaderCacheKiB)")
                        }
                        return reader
                    } : []
                return SQLiteStore(writer: queue, path: path, isReadOnly: mode == .readOnly, migration: nil, readers: readers)
            }
            if exists {
                // Before the pool, which switches the file to WAL: a refused file is left as it was.
                try DatabaseQueue(path: path, configuration: config).read { try checkPlatformTables($0, path: path) }
            } else {
                _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640])
            }
            let pool = try openPool(path: path, configuration: config)
            return SQLiteStore(writer: pool, path: path, isReadOnly: false, migration: try migrate(pool, now: now))
        } catch {
            throw StorageError.wrap(error, path: path)
        }
    }

    /// Sets what every connection to a journey database needs: the busy timeout, and the SQL
    /// functions that read timestamps in every form (`journey_instant`, SPEC §8). A read-only
    /// connection (a pool's reader: a server's reads) also maps the file (``readerMapSize``); one
    /// that writes checkpoints the WAL as SQLite would by default, timing it (``CheckpointClock``).
    /// Everything else (foreign keys, tracing) stays the host's choice.
    ///
    /// A host that opens its own `DatabasePool` calls this on the configuration first:
    ///
    /// ```swift
    /// var config = Configuration()
    /// SQLiteStore.prepare(&config)
    /// let pool = try DatabasePool(path: "platform.sqlite", configuration: config)
    /// let database = try SQLiteStore(pool: pool)
    /// ```
    public static func prepare(_ config: inout Configuration) {
        config.busyMode = .timeout(busyTimeout)
        config.prepareDatabase { db in
            try TimestampFunctions.register(db)
            if db.configuration.readonly {
                try db.execute(sql: "PRAGMA mmap_size = \(readerMapSize)")
            } else {
                CheckpointClock.install(on: db)
            }
        }
    }

    /// How much of the file a read-only connection maps (`PRAGMA mmap_size`; SQLite caps it at its
    /// build's maximum, 2 GB in Debian's): an uncached read of one user then takes its pages from
    /// the OS page cache without a `pread` copy each (measured: 42.0 µs → 33.0 µs median, pool
    /// reads of random users, 100k-user file, issue 16). Mapped pages are the page cache's, shared
    /// and file-backed: they count in the process's RSS, not in its anonymous memory. Connections
    /// that write (the command line's, the batch's, a pool's writer) do not map.
    public static let readerMapSize: Int64 = 2 << 30

    /// Registers the store's SQL functions (`journey_instant`, `journey_timestamp_form`) on a
    /// connection opened through SQLite's C API, so that it can run ``snapshotSQL`` and
    /// ``chunkSQL`` (the benchmark does). GRDB connections get them from ``prepare(_:)``.
    ///
    /// - returns: SQLite's result code, `SQLITE_OK` (0) on success.
    public static func registerSQLFunctions(onConnection connection: OpaquePointer) -> Int32 {
        TimestampFunctions.register(connection: connection)
    }

    /// Turns off SQLite's memory statistics for the whole process (`SQLITE_CONFIG_MEMSTATUS`), so
    /// that every allocation SQLite makes no longer takes its global mutex to count itself. SQLite's
    /// own advice for speed (https://sqlite.org/compile.html, `SQLITE_DEFAULT_MEMSTATUS=0`); here,
    /// the batch's dry run took 12% less time, its first run 4% (Benchmarks/HISTORY.md, "Issue 16, third pass").
    ///
    /// Process-wide, so it is the process's owner's choice: `journey` makes it at start, a host may.
    /// Afterwards `sqlite3_memory_used`, `sqlite3_status64` and the soft and hard heap limits no
    /// longer work, in every library of the process that uses SQLite.
    ///
    /// - returns: true when the statistics are off; false once the process has opened a SQLite
    ///   connection (SQLite is initialized and the setting can no longer change).
    @discardableResult
    public static func turnOffMemoryStatistics() -> Bool {
        journey_sqlite_config_memstatus(0) == SQLITE_OK
    }

    /// Uses a pool the host already owns (one pool per file per process); runs the migrator.
    ///
    /// - throws: ``StorageError/sqlite(path:message:)`` when the pool's configuration did not go
    ///   through ``prepare(_:)``, and any migration failure.
    public init(pool: DatabasePool, now: Date = Date()) throws(StorageError) {
        let report: MigrationReport
        do {
            guard try pool.read(TimestampFunctions.isRegistered) else {
                throw StorageError.failed(location: pool.path, message: "the pool was not configured with SQLiteStore.prepare(&configuration)")
            }
            report = try Self.migrate(pool, now: now)
        } catch {
            throw StorageError.wrap(error, path: pool.path)
        }
        self.init(writer: pool, path: pool.path, isReadOnly: false, migration: report)
    }

    /// How many reader connections ``open(path:mode:concurrentReads:now:)`` adds with `concurrentReads`.
    static let concurrentReaders = 2

    /// The page cache of each of those readers, in KiB (`PRAGMA cache_size = -N`; SQLite's default
    /// is 2,000). They read the pages past the map (``readerMapSize``, on a file over 2 GB) once each
    /// and in order, so a cache of SQLite's default size only filled with pages not read again: at
    /// 1M users (a 4.6 GB file) it was 4 MB of the batch's anonymous memory, which then grew 1.39×
    /// from 100k users. With 256 KiB: the 1M dry run's peak anonymous RSS 11.6–12.4 MB → 8.2–9.6 MB,
    /// its time 5.20–5.44 s → 5.15–5.36 s (three runs each, alternating; 64 KiB did no better). Issue 16.
    static let batchReaderCacheKiB = 256

    private init(writer: any DatabaseWriter, path: String, isReadOnly: Bool, migration: MigrationReport?, readers: [DatabaseQueue] = []) {
        self.writer = writer
        self.path = path
        self.isReadOnly = isReadOnly
        self.migration = migration
        self.readers = ReaderConnections(readers)
        self.readLanes = ReadLanes(count: (writer as? DatabasePool)?.configuration.maximumReaderCount ?? max(1, readers.count), path: path)
    }

    /// The dispatch queues ``read(_:)`` runs on.
    private let readLanes: ReadLanes

    /// A `DatabasePool` on `path`. Opening one switches a file that is not in WAL mode yet to WAL
    /// (`PRAGMA journal_mode = WAL`), which needs the file to itself: SQLite answers `SQLITE_BUSY` at
    /// once, without the busy timeout, while another process does the same. That process is done in
    /// milliseconds, so a busy switch is tried again, for up to about a second.
    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempt < 40 {
                Thread.sleep(forTimeInterval: Double.random(in: 0.005...0.05))
            }
        }
    }

    /// Runs the migrator. Two processes migrating one file at once can collide: GRDB reads the
    /// applied migrations before the transaction that applies the next one, so one process may
    /// re-run a migration the other just committed ("already exists", a UNIQUE failure). Each
    /// migration is its own transaction and rolls back whole, so trying again skips what the
    /// other process finished; a genuine failure fails every time and is thrown.
    ///
    /// - returns: what this process changed, as the migrations and the repair noted it (``MigrationLog``).
    private static func migrate(_ writer: any DatabaseWriter, now: Date) throws -> MigrationReport {
        let log = MigrationLog()
        let migrator = JourneyMigrations.migrator(now: now, log: log)
        try writer.read { db in try checkPlatformTables(db, path: writer.path) }
        for attempt in 1... {
            do {
                try migrator.migrate(writer)
                break
            } catch is DatabaseError where attempt < 40 {
                // The other process is mid-migration (a lock it holds, a snapshot it made stale):
                // let it finish its step, then see what is left.
                Thread.sleep(forTimeInterval: Double.random(in: 0.005...0.05))
                continue
            }
        }
        try writer.write { db in
            let before = try SchemaObjects.read(db)
            try JourneyMigrations.repairPlatformObjects(db)
            log.changed(nil, from: before, to: try SchemaObjects.read(db))
        }
        return log.report
    }

    /// Throws unless the platform tables exist, can serve Journey (``checkPlatformTables(_:path:)``),
    /// and every migration has run.
    ///
    /// One read of `sqlite_master` by name rather than GRDB's `tableExists` per table, which
    /// loads and caches the whole schema description (a fifth of opening the file, issue 16).
    private static func checkSchema(_ db: Database, path: String) throws {
        // Views count as present here, so that checkPlatformTables can say what they are.
        let present = Set(try String.fetchAll(db, sql: "SELECT lower(name) FROM sqlite_master WHERE type IN ('table', 'view')"))
        let missing = JourneyMigrations.platformTables.filter { !present.contains($0.lowercased()) }
        if !missing.isEmpty { throw StorageError.platformTablesMissing(location: path, tables: missing) }
        try checkPlatformTables(db, path: path)
        if try !JourneyMigrations.migrator(now: Date()).hasCompletedMigrations(db) {
            throw StorageError.notMigrated(location: path)
        }
    }

    /// The journey columns of a STRICT `users` table, with the declared types that hold what Journey writes.
    private static let strictJourneyColumnTypes: [String: Set<String>] = [
        "customer_journey_state": ["TEXT", "ANY"], "last_journey_update": ["TEXT", "ANY"], "follower_count": ["INT", "INTEGER", "REAL", "ANY"],
    ]

    /// Throws ``StorageError/platformTablesUnfit(location:problems:)`` when the platform tables that
    /// exist cannot serve Journey (``PlatformSchema/problems(_:)``), with SQLite's own findings: a
    /// `users.id` declared with TEXT affinity (SQLite's rule: a type naming CHAR, CLOB or TEXT and
    /// not INT), or declared without INT and holding text, whose values compare as text
    /// (`'10' < '9'`), so that no id range holds the users it should; and, in a STRICT `users`, a
    /// journey column declared with a type that refuses what Journey writes. One read of the
    /// platform tables' columns (and of `users.id`'s values, only where it lacks INTEGER affinity).
    private static func checkPlatformTables(_ db: Database, path: String) throws {
        let names = PlatformSchema.metricColumns.map { "'\($0.table)'" }.joined(separator: ", ")
        var tables: [String: PlatformSchema.Table] = [:]
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT lower(m.name), m.type = 'view', m.sql, lower(c.name), upper(c.type) FROM sqlite_master m, pragma_table_info(m.name) c
                WHERE m.type IN ('table', 'view') AND lower(m.name) IN (\(names))
                """)
        {
            let (name, column, type): (String, String, String) = (row[0], row[3], row[4])
            var table = tables[name] ?? PlatformSchema.Table(name: name, isView: row[1], columns: [])
            table.columns.insert(column)
            if name == "users" && column == "id" && !type.contains("INT") {
                if ["CHAR", "CLOB", "TEXT"].contains(where: type.contains) {
                    table.unfitColumns.append("users.id is declared \(type): its values compare as text, not as numbers")
                } else if let text = try String.fetchOne(db, sql: "SELECT id FROM users WHERE typeof(id) NOT IN ('integer', 'real', 'null') LIMIT 1") {
                    // Without INTEGER affinity nothing turns '10' into 10: look at the values (only here).
                    table.unfitColumns.append("users.id holds text ('\(text.prefix(20))'): its values compare as text, not as numbers")
                }
            }
            if name == "users", let allowed = strictJourneyColumnTypes[column], !allowed.contains(type),
                (row[2] as String?).flatMap(CreateTableSQL.init)?.tail.uppercased().contains("STRICT") == true
            {
                table.unfitColumns.append("users.\(column) is declared \(type) in a STRICT table, which refuses what Journey writes there")
            }
            tables[name] = table
        }
        let problems = PlatformSchema.problems(Array(tables.values))
        if !problems.isEmpty { throw StorageError.platformTablesUnfit(location: path, problems: problems) }
    }

    /// Thrown by a write's body when the database rolled its whole transaction back: SQLite ends
    /// the transaction, not only the statement, when a trigger raises `RAISE(ROLLBACK, …)`.
    /// ``timedImmediateWrite(_:)`` runs the body again, in a new transaction.
    struct TransactionRolledBack: Error {
        /// The user whose write the database refused so, when known.
        var userID: Int64?
        /// The database's message for that user's refusal.
        var message = ""
    }

    /// Runs `body` in one IMMEDIATE transaction, so that what it read is still true when it writes.
    ///
    /// The transaction runs on GRDB's writer dispatch queue: while SQLite waits for another
    /// process's lock (up to ``busyTimeout``), the calling task is suspended, and no thread of
    /// Swift's cooperative pool is held (SPEC §9). Writers of this process queue behind one
    /// another without holding threads either.
    func immediateWrite<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws(StorageError) -> T {
        try await timedImmediateWrite(body).value
    }

    /// ``immediateWrite(_:)``, and how long its commit took: `committing` the commit itself,
    /// `checkpointing` the WAL checkpoint it ran, if any (``CheckpointClock``), in seconds.
    ///
    /// A body that finds its whole transaction rolled back by the database (a trigger's
    /// `RAISE(ROLLBACK)`) throws ``TransactionRolledBack`` after noting what to leave out: it runs
    /// again, in a new transaction.
    func timedImmediateWrite<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws(StorageError)
        -> (value: T, committing: Double, checkpointing: Double)
    {
        if isReadOnly { throw .readOnly(location: path) }
        do {
            return try await writer.writeWithoutTransaction { db in
                while true {
                    let checkpointed = CheckpointClock.seconds(of: db)
                    var bodyEnded = ContinuousClock.now
                    let value: T
                    do {
                        value = try Self.transaction(.immediate, db) { db in
                            defer { bodyEnded = ContinuousClock.now }
                            return try body(db)
                        }
                    } catch is TransactionRolledBack where !db.isInsideTransaction {
                        continue
                    }
                    let checkpointing = CheckpointClock.seconds(of: db) - checkpointed
                    return (value, max(0, (ContinuousClock.now - bodyEnded).seconds - checkpointing), checkpointing)
                }
            }
        } catch {
            throw StorageError.wrap(error, path: path)
        }
    }

    /// Runs `body` in one read transaction on the store's read queue, a dispatch queue (never a
    /// cooperative thread): the calling task is suspended while it runs.
    ///
    /// A pool reads on its reader connections, which never wait for a writer (WAL); at most as many
    /// reads run at once as the pool has readers (``ReadLanes``), so a read queued behind others
    /// holds no thread and the synchronous read finds a reader free. One dispatch and one
    /// resumption: GRDB's async pool read takes more hops (one random user's snapshot and
    /// evaluation, 5,000 alternating calls, medians: 65.9 µs through it, 37.0 µs through this queue). A queue's
    /// `read` would wrap each read in `PRAGMA query_only = 1 … = 0`, which makes SQLite re-prepare
    /// every cached statement of the connection (measured: 296 µs instead of 44 µs a user); so a
    /// queue reads in a plain deferred transaction, and ``isReadOnly`` is what refuses writes on a
    /// read-only value.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StorageError) -> T {
        let (writer, readers) = (self.writer, self.readers)
        let result: Result<T, any Error> = await readLanes.run { lane in
            Result {
                if writer is DatabasePool { return try writer.read(body) }
                if let reader = readers.connection(lane: lane) { return try reader.unsafeRead { db in try Self.transaction(.deferred, db, body) } }
                return try writer.unsafeRead { db in try Self.transaction(.deferred, db, body) }
            }
        }
        do {
            return try result.get()
        } catch {
            throw StorageError.wrap(error, path: path)
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

extension SQLiteStore: JourneyStore {
    /// The file path (``path``).
    public var location: String { path }

    /// A ``DataVersionPoller`` on this file, polling every `interval`.
    public func changeSignal(interval: Duration) -> any ChangeSignal {
        DataVersionPoller(database: self, interval: interval)
    }

    /// Installs a ``WriteTracker`` on the writer connection: TEMP triggers name the users each
    /// write touches, and a commit hands them to `onCommit` (a rollback forgets them). Nothing
    /// is installed on a read-only store, which writes nothing.
    ///
    /// - throws: ``StorageError`` when the triggers cannot be created.
    public func observeCommits(_ onCommit: @escaping @Sendable (Set<Int64>) -> Void) async throws(StorageError) {
        guard !isReadOnly else { return }
        do {
            try await WriteTracker(onCommit: onCommit).install(on: writer)
        } catch {
            throw StorageError.wrap(error, path: path)
        }
    }
}

/// Reader connections, one per read lane (``ReadLanes``): reads that run at once run on different
/// connections. (Handed out in turn as reads were issued, two reads could meet on one connection,
/// the second waiting for the first, while the other connection sat idle.)
private final class ReaderConnections: Sendable {
    private let connections: [DatabaseQueue]

    init(_ connections: [DatabaseQueue]) {
        self.connections = connections
    }

    /// The connection of read lane `lane`; nil when there are none.
    func connection(lane: Int) -> DatabaseQueue? {
        connections.isEmpty ? nil : connections[lane % connections.count]
    }
}

/// Where ``SQLiteStore``'s reads run: `width` serial dispatch queues (a pool's reader count), one
/// read on each at a time. A read beyond that waits as a suspended task, holding no thread, so that
/// a burst of reads never blocks dispatch threads on the pool's readers.
///
/// Serial queues, not one concurrent queue: libdispatch runs a concurrent queue on its width-limited
/// pool (about one thread per core), which other blocking work of the process (an open, a migration
/// waiting for a lock) can fill, and a read would wait behind it; a serial queue gets a thread of
/// its own (the stall test, `StallTests`, caught it in a full parallel test run).
private final class ReadLanes: Sendable {
    private let lanes: [DispatchQueue]
    private let state: Mutex<(free: [Int], waiting: [CheckedContinuation<Int, Never>])>

    init(count: Int, path: String) {
        let width = max(1, count)
        lanes = (0..<width).map { DispatchQueue(label: "journey.read.\($0) \(path)") }
        state = Mutex((Array(0..<width), []))
    }

    /// `work`'s result, computed on a free lane once there is one; `work` is given the lane's index.
    func run<T: Sendable>(_ work: @escaping @Sendable (Int) -> T) async -> T {
        let lane = await acquire()
        // The block lets go of `work` (and what it holds: the store's connections) before the caller
        // resumes, so that a process that ends right after its last read still closes its files.
        let pending = Mutex<(@Sendable (Int) -> T)?>(work)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            lanes[lane].async {
                let result: T = {
                    let work = pending.withLock { pending in
                        defer { pending = nil }
                        return pending!
                    }
                    return work(lane)
                }()
                continuation.resume(returning: result)
            }
        }
        release(lane)
        return result
    }

    private func acquire() async -> Int {
        if let lane = state.withLock({ $0.free.popLast() }) { return lane }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
            let lane = state.withLock { state -> Int? in
                if let lane = state.free.popLast() { return lane }
                state.waiting.append(continuation)
                return nil
            }
            if let lane { continuation.resume(returning: lane) }
        }
    }

    /// Hands the lane to the next waiting read, if any, else frees it.
    private func release(_ lane: Int) {
        let next = state.withLock { state -> CheckedContinuation<Int, Never>? in
            guard !state.waiting.isEmpty else {
                state.free.append(lane)
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume(returning: lane)
    }
}
