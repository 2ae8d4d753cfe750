import Foundation
import Logging
import PostgresNIO

/// The journey's home in PostgreSQL (SPEC §10): a connection pool on one database, and one method
/// per use case, mirroring the SQLite store's `SQLiteStore`.
///
/// Every method that writes runs one transaction that keeps an invariant (a stage is never stored
/// without its transition rows, nor the reverse). Open it once per process and ``close()`` it:
///
/// ```swift
/// let database = try await PostgresStore.open(url: "postgresql://journey@db:5432/platform", migrate: true)
/// let snapshot = try await database.snapshot(user: 42, now: Date())
/// await database.close()
/// ```
public final class PostgresStore: Sendable {
    /// Where the database is.
    public let location: PostgresLocation
    /// The pool every call leases a connection from.
    let client: PostgresClient
    /// The task running the pool's background work; cancelling it closes the pool.
    private let runner: Task<Void, Never>
    /// Where the pool and the queries log (postgres-nio logs at debug and trace levels).
    let logger: Logger

    private init(location: PostgresLocation, client: PostgresClient, logger: Logger) {
        self.location = location
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// The default logger: postgres-nio's messages are dropped unless the host passes its own.
    public static let silentLogger = Logger(label: "journey.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects to the database at `url` (`postgresql://user[:password]@host[:port]/database`).
    ///
    /// One connection is made first, so a wrong URL, a server that does not answer, a refused user or
    /// a missing database fails here with its own error rather than later on a query.
    /// - parameter migrate: run ``migrate(now:)`` before returning (servers); otherwise the database must
    ///   be migrated already, and a database that is not is left untouched.
    /// - parameter maximumConnections: the pool's size; a sharded batch needs one per worker (and one per feed).
    /// - throws: ``PostgresStoreError`` (malformed URL, unreachable, database missing, authentication,
    ///   platform tables missing, not migrated, or a migration failure).
    public static func open(
        url: String, migrate: Bool = false, maximumConnections: Int = 8, now: Date = Date(),
        logger: Logger = silentLogger
    ) async throws(PostgresStoreError) -> PostgresStore {
        try await open(location: PostgresLocation(url: url), migrate: migrate, maximumConnections: maximumConnections, now: now, logger: logger)
    }

    /// Connects to the database at `location`; see ``open(url:migrate:maximumConnections:now:logger:)``.
    public static func open(
        location: PostgresLocation, migrate: Bool = false, maximumConnections: Int = 8, now: Date = Date(),
        logger: Logger = silentLogger
    ) async throws(PostgresStoreError) -> PostgresStore {
        let database = try await open(location: location, maximumConnections: maximumConnections, logger: logger)
        do {
            if migrate {
                try await database.migrate(now: now)
            } else {
                try await database.checkMigrated()
            }
        } catch {
            await database.close()
            throw error
        }
        return database
    }

    /// Probes the server, then makes the pool; looks at no table.
    static func open(location: PostgresLocation, maximumConnections: Int, logger: Logger) async throws(PostgresStoreError) -> PostgresStore {
        try await probe(location, logger: logger)
        let tls: PostgresClient.Configuration.TLS = switch location.tls {
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
        return PostgresStore(location: location, client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger)
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
            tls = switch location.tls {
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

    /// Runs `body` on one leased connection, outside any transaction.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(PostgresStoreError) -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw PostgresStoreError.wrap(error)
        }
    }

    /// Runs `body` in one transaction (READ COMMITTED, PostgreSQL's default), committed when it
    /// returns and rolled back when it throws.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws(PostgresStoreError) -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch {
            throw PostgresStoreError.wrap(error)
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
