public import Foundation
public import JourneyStorage
public import Logging
import PostgresNIO
import Synchronization

/// The journey's home in PostgreSQL (SPEC §10): a connection pool on one database, and one method
/// per use case, behind the same ``JourneyStore`` protocol as the SQLite store.
///
/// Every method that writes runs one transaction that keeps an invariant (a stage is never stored
/// without its transition rows, nor the reverse). Open it once per process and ``close()`` it:
///
/// ```swift
/// let database = try await PostgresStore.open(url: "postgresql://journey@db:5432/platform", mode: .migrate)
/// let snapshot = try await database.snapshot(user: 42, now: Date())
/// await database.close()
/// ```
public final class PostgresStore: Sendable {
    /// How to open a database.
    public enum OpenMode: Sendable {
        /// Run the migrator first (`journey migrate`, servers).
        case migrate
        /// The database must be migrated already; a database that is not is left untouched.
        case requireMigrated
        /// The database must be migrated already; every write is refused with
        /// ``StorageError/readOnly(location:)``, by the store before any statement and by the server
        /// too (every session starts with `default_transaction_read_only`). A hot standby opens so.
        case readOnly
    }

    /// Where the database is (with the password, if the URL had one).
    public let endpoint: PostgresLocation
    /// Whether the store was opened with ``OpenMode/readOnly``.
    public let isReadOnly: Bool
    /// What the migrator did when this store was opened; nil unless it ran (``OpenMode/migrate``).
    public let migration: MigrationReport?
    /// The connection pool every call leases a connection from.
    let pool: Pool
    /// The task running the pool's background work; cancelling it closes the pool.
    private let runner: Task<Void, Never>
    /// How the journey columns of `users` are written, as the platform declared them.
    let userColumnWrites: PostgresMigrations.UserColumnWrites
    /// The callbacks of ``observeCommits(_:)``, called after each commit of a write through this store.
    private let commitObservers = Mutex<[@Sendable (Set<Int64>) -> Void]>([])

    private init(
        endpoint: PostgresLocation, migration: MigrationReport?, pool: Pool, runner: Task<Void, Never>,
        userColumnWrites: PostgresMigrations.UserColumnWrites
    ) {
        self.endpoint = endpoint
        self.isReadOnly = pool.isReadOnly
        self.migration = migration
        self.pool = pool
        self.runner = runner
        self.userColumnWrites = userColumnWrites
    }

    /// The pool's client (the feed's LISTEN leases its own connection from it).
    var client: PostgresClient { pool.client }
    /// Where the pool and the queries log (postgres-nio logs at debug and trace levels).
    var logger: Logger { pool.logger }

    deinit { runner.cancel() }

    /// The database, for messages: the URL without its password.
    public var location: String { endpoint.description }

    /// The default logger: postgres-nio's messages are dropped unless the host passes its own.
    public static let silentLogger = Logger(label: "journey.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects to the database at `url` (`postgresql://user[:password]@host[:port]/database`).
    ///
    /// One connection is made first, so a wrong URL, a server that does not answer, a refused user or
    /// a missing database fails here with its own error rather than later on a query.
    /// - parameter mode: whether to migrate, require a migrated database, or open it read-only.
    /// - parameter maximumConnections: the pool's size; a sharded batch needs one per worker (and one per feed).
    /// - throws: ``StorageError``: `failed` for a malformed URL (``PostgresLocation/init(url:)`` tells
    ///   it apart first), `unreachable` (no server, or the user refused), `databaseMissing`,
    ///   `platformTablesMissing`, `notMigrated`, or a migration failure.
    public static func open(
        url: String, mode: OpenMode = .requireMigrated, maximumConnections: Int = 8, now: Date = Date(),
        logger: Logger = silentLogger
    ) async throws(StorageError) -> PostgresStore {
        let location: PostgresLocation
        do {
            location = try PostgresLocation(url: url)
        } catch {
            throw .failed(location: error.url, message: "not a PostgreSQL URL (\(error.reason))")
        }
        return try await open(location: location, mode: mode, maximumConnections: maximumConnections, now: now, logger: logger)
    }

    /// Connects to the database at `location`; see ``open(url:mode:maximumConnections:now:logger:)``.
    public static func open(
        location: PostgresLocation, mode: OpenMode = .requireMigrated, maximumConnections: Int = 8, now: Date = Date(),
        logger: Logger = silentLogger
    ) async throws(StorageError) -> PostgresStore {
        do {
            try await probe(location, logger: logger)
        } catch {
            throw error.storageError(at: location.description)
        }
        let (pool, runner) = makePool(location, readOnly: mode == .readOnly, maximumConnections: maximumConnections, logger: logger)
        var report: MigrationReport?
        let writes: PostgresMigrations.UserColumnWrites
        do {
            if mode == .migrate {
                report = try await pool.migrate(now: now)
            } else {
                try await pool.checkMigrated()
            }
            writes = try await pool.withConnection { connection in try await PostgresMigrations.UserColumnWrites.read(connection, logger) }
        } catch {
            runner.cancel()
            _ = await runner.result
            throw error
        }
        return PostgresStore(endpoint: location, migration: report, pool: pool, runner: runner, userColumnWrites: writes)
    }

    /// Connects to the database at `url`, migrates it and closes the connections: `journey migrate`.
    ///
    /// - returns: what was done (``MigrationReport/nothingToDo`` on an up-to-date database).
    /// - throws: ``StorageError``: the URL, the connection, or the failing step (rolled back whole).
    public static func migrate(url: String, now: Date = Date(), logger: Logger = silentLogger) async throws(StorageError) -> MigrationReport {
        let database = try await open(url: url, mode: .migrate, maximumConnections: 2, now: now, logger: logger)
        await database.close()
        return database.migration ?? MigrationReport()
    }

    /// The pool on `location`, and the task that runs it.
    private static func makePool(_ location: PostgresLocation, readOnly: Bool, maximumConnections: Int, logger: Logger) -> (Pool, Task<Void, Never>) {
        let tls: PostgresClient.Configuration.TLS =
            switch location.tls {
            case .disable: .disable
            case .prefer: .prefer(location.tls.configuration)
            case .require, .verifyFull: .require(location.tls.configuration)
            }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        configuration.options.maximumConnections = max(2, maximumConnections)
        // Timestamps without a time zone are UTC (SPEC §3); every session agrees.
        configuration.options.additionalStartupParameters = [("TimeZone", "UTC")]
        if readOnly { configuration.options.additionalStartupParameters.append(("default_transaction_read_only", "on")) }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return (Pool(client: client, logger: logger, location: location.description, isReadOnly: readOnly), Task { await client.run() })
    }

    /// Closes the pool: running calls fail, and no new call can be made.
    public func close() async {
        runner.cancel()
        _ = await runner.result
    }

    /// Opens and closes one connection, turning each way of failing into its own error.
    private static func probe(_ location: PostgresLocation, logger: Logger) async throws(PostgresStoreError) {
        let tls: PostgresConnection.Configuration.TLS
        do {
            tls =
                switch location.tls {
                case .disable: .disable
                case .prefer: .prefer(try NIOSSLContext(configuration: location.tls.configuration))
                case .require, .verifyFull: .require(try NIOSSLContext(configuration: location.tls.configuration))
                }
        } catch {
            throw .connection(message: "TLS could not be set up: \(error)")
        }
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try? await connection.close()
        } catch let error as PSQLError {
            if let info = error.serverInfo {
                let message = info[.message] ?? "refused"
                switch info[.sqlState] {
                case "3D000": throw .databaseMissing(database: location.database, host: location.host, port: location.port)
                case "28000", "28P01": throw .authenticationFailed(user: location.user, host: location.host, port: location.port, message: message)
                default: throw .server(message: message, sqlState: info[.sqlState])
                }
            }
            throw .unreachable(host: location.host, port: location.port, message: error.underlying.map { "\($0)" } ?? "\(error.code)")
        } catch {
            throw .unreachable(host: location.host, port: location.port, message: "\(error)")
        }
    }

    /// Throws ``StorageError/readOnly(location:)`` on a read-only store, before any statement.
    func refuseIfReadOnly() throws(StorageError) {
        try pool.refuseIfReadOnly()
    }

    /// Runs `body` on one leased connection, outside any transaction.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(StorageError) -> T {
        try await pool.withConnection(body)
    }

    /// Runs `body` in one transaction; see ``Pool/transaction(_:)``.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(StorageError) -> T {
        try await pool.transaction(body)
    }

    /// Calls `onCommit` with the users each later write through this store touched (a move, a pin or
    /// an unpin, a repaired counter), right after its commit.
    ///
    /// PostgreSQL has no cheap way to see other writes of this process (the host writes the platform
    /// tables through its own connections, not this store): those, like every other process's, reach
    /// a cache through the feed (``changes(after:limit:)``: moves and pins) or its TTL (metrics).
    public func observeCommits(_ onCommit: @escaping @Sendable (Set<Int64>) -> Void) async throws(StorageError) {
        guard !isReadOnly else { return }
        commitObservers.withLock { $0.append(onCommit) }
    }

    /// Tells the observers of ``observeCommits(_:)`` that `users` were written (after the commit).
    func committed(_ users: some Sequence<Int64>) {
        let touched = Set(users)
        guard !touched.isEmpty else { return }
        for observer in commitObservers.withLock({ $0 }) { observer(touched) }
    }
}

/// The connection pool and what every call through it needs: where to log, what to name in errors,
/// and whether writes are refused.
struct Pool: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// The URL without its password.
    let location: String
    let isReadOnly: Bool

    func refuseIfReadOnly() throws(StorageError) {
        if isReadOnly { throw .readOnly(location: location) }
    }

    /// Runs `body` on one leased connection, outside any transaction.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(StorageError) -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw StorageError.wrap(error, location: location)
        }
    }

    /// Runs `body` in one transaction (READ COMMITTED, PostgreSQL's default), committed when it
    /// returns and rolled back when it throws. Refused on a read-only store.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(StorageError) -> T {
        try refuseIfReadOnly()
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch {
            throw StorageError.wrap(error, location: location)
        }
    }
}

extension PostgresLocation.TLSMode {
    /// The TLS settings of this mode: certificates are verified only in ``verifyFull`` (as libpq).
    fileprivate var configuration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if self != .verifyFull { configuration.certificateVerification = .none }
        return configuration
    }
}

/// Every requirement is met by a method of the same name in this module (PostgresSnapshot, PostgresTransitions,
/// PostgresFeed, PostgresBatch, PostgresReports): the same semantics as the SQLite store, checked by the
/// contract suite; where PostgreSQL differs, the method's documentation says how.
extension PostgresStore: JourneyStore {}
