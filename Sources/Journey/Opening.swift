import Dispatch
public import Foundation
internal import JourneySQLite

#if PostgreSQL
internal import JourneyPostgres
#endif

/// Where a journey database is, parsed from the one string a caller gives (`--db`,
/// `$JOURNEY_DATABASE`, a server's configuration): a `postgresql://` (or `postgres://`) URL names a
/// PostgreSQL database (SPEC §10), anything else the path of a SQLite file.
///
/// ```swift
/// DatabaseLocation("platform.sqlite").backend                        // .sqlite
/// DatabaseLocation("postgresql://app:secret@db/platform").description // postgresql://app@db/platform
/// ```
public struct DatabaseLocation: Hashable, Sendable, CustomStringConvertible {
    /// The kinds of database a location can name.
    public enum Backend: String, Hashable, Sendable {
        /// A SQLite file, named by its path (relative to the working directory, or absolute).
        case sqlite
        /// A PostgreSQL database, named by a `postgresql://user[:password]@host[:port]/database` URL.
        case postgreSQL
    }

    /// The string as given, password included: what a store is opened with.
    public let string: String
    /// The kind of database ``string`` names.
    public let backend: Backend

    /// Parses `string`: a URL whose scheme is `postgresql` or `postgres` (any case) is PostgreSQL,
    /// anything else a SQLite path. Never fails; a malformed URL fails when it is opened.
    public init(_ string: String) {
        self.string = string
        let scheme = string.prefix { $0 != ":" }.lowercased()
        backend = string.contains("://") && (scheme == "postgresql" || scheme == "postgres") ? .postgreSQL : .sqlite
    }

    /// The location for people and messages: the path, or the URL without its password.
    public var description: String {
        guard backend == .postgreSQL, var components = URLComponents(string: string), components.password != nil else { return string }
        components.password = nil
        return components.string ?? string
    }
}

/// What a caller means to do with a database, which decides how its store opens it.
public enum DatabaseAccess: String, Hashable, Sendable {
    /// Bring the journey schema up to date first (SPEC §3; `journey migrate`, a server), then read
    /// and write. A SQLite file is opened as a `DatabasePool` (WAL), which a long-lived process wants.
    case migrate
    /// Read and write a database that is already migrated; its schema is checked, never changed,
    /// and a database refused by the check is left untouched (a command-line process).
    case readWrite
    /// Read a migrated database; every write is refused with `StorageError/readOnly(location:)`
    /// (dry runs, reports, `journey watch`).
    case readOnly
}

extension JourneyService {
    /// Turns off SQLite's memory statistics for the whole process, before it opens its first
    /// SQLite file: SQLite then counts no allocation under its global mutex (the batch's dry run
    /// took 12% less time, its first run 4%: Benchmarks/HISTORY.md, "Issue 16, third pass"). `journey`
    /// does it at start. A host may, if nothing in its process reads SQLite's memory figures:
    /// afterwards `sqlite3_memory_used`, `sqlite3_status64` and SQLite's heap limits no longer
    /// work for any library in the process. PostgreSQL stores are unaffected.
    ///
    /// - returns: true when the statistics are off; false once the process has opened a SQLite
    ///   connection, after which the setting can no longer change.
    @discardableResult
    public static func turnOffSQLiteMemoryStatistics() -> Bool {
        SQLiteStore.turnOffMemoryStatistics()
    }

    /// Opens the store at `location` for `access`: a `SQLiteStore` for a path, a `PostgresStore` for
    /// a `postgresql://` URL (with the package's `PostgreSQL` trait, on by default).
    ///
    /// Opening (and migrating, which may wait for another process's lock) runs on a dispatch queue,
    /// never on Swift's cooperative threads (SPEC §9).
    ///
    /// ```swift
    /// let store = try await JourneyService.openStore(DatabaseLocation("platform.sqlite"), access: .readOnly)
    /// ```
    /// - parameter createIfMissing: only with ``DatabaseAccess/migrate``: create a missing SQLite
    ///   file (mode 0640) and the whole schema in it. False refuses a missing file rather than
    ///   serving an empty platform from a mistyped path.
    /// - parameter concurrentReads: read on connections of their own beside the writer, as the nightly
    ///   batch does (``BatchOptions/readers``); a one-shot command reads on its one connection. A
    ///   PostgreSQL store always has a pool; `.migrate` always opens a SQLite pool too.
    /// - parameter now: the instant the migrator backfills `last_journey_update` with where a user
    ///   has no `created_at`.
    /// - throws: ``JourneyError/store(_:)``: `StorageError/databaseMissing(location:)`,
    ///   `StorageError/isDirectory(path:)`, `StorageError/notADatabase(location:)`,
    ///   `StorageError/platformTablesMissing(location:tables:)`, `StorageError/notMigrated(location:)`
    ///   (not with `.migrate`), `StorageError/notWritable(location:what:)`, `StorageError/busy(location:)`;
    ///   `StorageError/unreachable(location:message:)` for a server that does not answer (or a build
    ///   without the `PostgreSQL` trait).
    public static func openStore(
        _ location: DatabaseLocation, access: DatabaseAccess, createIfMissing: Bool = false, concurrentReads: Bool = false,
        now: Date = Date()
    ) async throws(JourneyError) -> any JourneyStore {
        switch location.backend {
        case .sqlite:
            let path = location.string
            if access == .migrate, !createIfMissing, !FileManager.default.fileExists(atPath: path) {
                throw .store(.databaseMissing(location: path))
            }
            let mode: SQLiteStore.OpenMode =
                switch access {
                case .migrate: .migrate
                case .readWrite: .requireMigrated
                case .readOnly: .readOnly
                }
            return try await offCooperativePool { () throws(StorageError) in
                try SQLiteStore.open(path: path, mode: mode, concurrentReads: concurrentReads, now: now)
            }
        case .postgreSQL:
            #if PostgreSQL
            let mode: PostgresStore.OpenMode =
                switch access {
                case .migrate: .migrate
                case .readWrite: .requireMigrated
                case .readOnly: .readOnly
                }
            // A PostgreSQL database is never created here (`createIfMissing` is for SQLite files): `CREATE DATABASE` is its owner's act.
            return try await storeCall { () async throws(StorageError) in
                try await PostgresStore.open(url: location.string, mode: mode, now: now)
            }
            #else
            throw .store(.unreachable(location: location.description, message: "this build of Journey was made without its PostgreSQL trait"))
            #endif
        }
    }

    /// Opens the database at `database` (a SQLite path or a `postgresql://` URL, ``DatabaseLocation``)
    /// and serves it with the rule set `rules` names: the one way a host or the command line starts.
    ///
    /// ```swift
    /// let journey = try await JourneyService.open(database: "platform.sqlite")           // migrates; adopted rules, followed
    /// let report = try await JourneyService.open(database: path, access: .readOnly,
    ///                                            rules: .file("Rules/raised.yaml"))        // a what-if that writes nothing
    /// ```
    /// - parameter access: how to open it (``DatabaseAccess``); `.migrate` by default, as a server wants.
    /// - parameter createIfMissing: with `.migrate`, create a missing SQLite file; see ``openStore(_:access:createIfMissing:concurrentReads:now:)``.
    /// - parameter concurrentReads: read on connections beside the writer (the batch); see ``openStore(_:access:createIfMissing:concurrentReads:now:)``.
    /// - parameter rules: ``RulesChoice/adopted`` (the default: the set adopted in the database,
    ///   followed while ``run(signal:)`` runs, else the bundled default) or a file.
    /// - throws: ``JourneyError/store(_:)`` as ``openStore(_:access:createIfMissing:concurrentReads:now:)`` does;
    ///   ``JourneyError/rules(_:)`` for a rules file (or adopted text) that cannot be read or is malformed.
    public static func open(
        database: String, access: DatabaseAccess = .migrate, createIfMissing: Bool = false, concurrentReads: Bool = false,
        rules: RulesChoice = .adopted, options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()
    ) async throws(JourneyError) -> JourneyService {
        let store = try await openStore(
            DatabaseLocation(database), access: access, createIfMissing: createIfMissing,
            concurrentReads: concurrentReads, now: clock.now())
        return try await JourneyService(store: store, rules: rules, options: options, clock: clock)
    }

    /// Opens the database at `database` and serves it with `rules`, fixed for the service's life:
    /// for callers whose work does not depend on the rules in force (a history, a pin, the feed)
    /// or that decide with a set of their own.
    ///
    /// - throws: ``JourneyError/store(_:)`` as ``openStore(_:access:createIfMissing:concurrentReads:now:)`` does.
    public static func open(
        database: String, access: DatabaseAccess = .migrate, createIfMissing: Bool = false, concurrentReads: Bool = false,
        rules: RuleSet, options: JourneyOptions = JourneyOptions(), clock: any JourneyClock = SystemClock()
    ) async throws(JourneyError) -> JourneyService {
        let store = try await openStore(
            DatabaseLocation(database), access: access, createIfMissing: createIfMissing,
            concurrentReads: concurrentReads, now: clock.now())
        return try await JourneyService(store: store, rules: rules, options: options, clock: clock)
    }

    /// Brings the database at `database` up to the journey schema (SPEC §3) and says what changed:
    /// `journey migrate`. Loads no rules, so a database whose adopted rules this build cannot read
    /// can still be migrated. Running it twice changes nothing the second time.
    ///
    /// - parameter createIfMissing: create a missing SQLite file and the whole schema in it; false
    ///   refuses a missing file with `StorageError/databaseMissing(location:)`.
    /// - returns: what the migrator did (`MigrationReport/nothingToDo` when the database was up to date).
    /// - throws: ``JourneyError/store(_:)`` as ``openStore(_:access:createIfMissing:concurrentReads:now:)`` does.
    public static func migrate(database: String, createIfMissing: Bool = false, now: Date = Date()) async throws(JourneyError) -> MigrationReport {
        let store = try await openStore(DatabaseLocation(database), access: .migrate, createIfMissing: createIfMissing, now: now)
        return store.migration ?? MigrationReport()
    }

    /// The database, for messages: a file path, or a URL without its password.
    public var location: String { store.location }

    /// Whether the store was opened with ``DatabaseAccess/readOnly``: every write throws
    /// `StorageError/readOnly(location:)`.
    public var isReadOnly: Bool { store.isReadOnly }

    /// What the migrator did when the store was opened with ``DatabaseAccess/migrate``; nil otherwise.
    public var migration: MigrationReport? { store.migration }
}

/// Runs blocking work (opening a file, migrating it) on a dispatch queue and waits for it without
/// holding a cooperative thread.
func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws(StorageError) -> T) async throws(JourneyError) -> T {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, StorageError>, Never>) in
        DispatchQueue.global().async { continuation.resume(returning: Result { () throws(StorageError) in try body() }) }
    }
    do {
        return try result.get()
    } catch {
        throw .store(error)
    }
}
