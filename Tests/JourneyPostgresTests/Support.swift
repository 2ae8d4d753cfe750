import Foundation
import JourneyCore
import JourneyStorage
import Logging
import PostgresNIO
import Testing

@testable import JourneyPostgres

/// The server the suites run against: `JOURNEY_TEST_POSTGRES_URL`, set from
/// `scripts/postgres-test-cluster.sh start`. Without it every server suite is skipped with this note.
enum TestServer {
    static let url = ProcessInfo.processInfo.environment["JOURNEY_TEST_POSTGRES_URL"]
    static var isAvailable: Bool { url != nil }
    static let skipNote: Comment = "JOURNEY_TEST_POSTGRES_URL is not set: export JOURNEY_TEST_POSTGRES_URL=$(scripts/postgres-test-cluster.sh start)"
    static let logger = Logger(label: "journey.postgres.tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The instant the fixtures' metrics are read at: 2025-06-15 12:00:00 UTC.
    static let now = Date(timeIntervalSince1970: 1_749_988_800)

    /// The repository root, found from this file: …/Tests/JourneyPostgresTests/Support.swift.
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The default rule set of `Rules/`.
    static func defaultRules() throws -> RuleSet {
        let path = repositoryRoot.appending(path: "Rules/mundo-tango.yaml")
        return try RuleSetLoader.load(yaml: String(contentsOf: path, encoding: .utf8), source: path.path)
    }
}

/// A database of its own for one test, created on the test server and dropped afterwards, with a
/// plain connection for the test's own SQL (the platform's writes).
struct ScratchDatabase {
    let url: String
    let connection: PostgresConnection
    /// The database's name.
    var name: String { String(url.split(separator: "/").last!) }

    /// Runs `body` with a fresh, empty database.
    @discardableResult
    static func with<T>(_ body: (ScratchDatabase) async throws -> T) async throws -> T {
        let base = try PostgresLocation(url: try #require(TestServer.url))
        let name = "journey_t_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try await connect(base)
        let connection: PostgresConnection
        do {
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: TestServer.logger)
            var location = base
            location.database = name
            connection = try await connect(location)
        } catch {
            try? await admin.close()
            throw PostgresStoreError.wrap(error)
        }
        let url = "postgresql://\(base.user)@\(base.host):\(base.port)/\(name)"
        do {
            let result = try await body(ScratchDatabase(url: url, connection: connection))
            try await connection.close()
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: TestServer.logger)
            try await admin.close()
            return result
        } catch {
            try? await connection.close()
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: TestServer.logger)
            try? await admin.close()
            throw error
        }
    }

    static func connect(_ location: PostgresLocation) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            configuration: .init(
                host: location.host, port: location.port, username: location.user,
                password: location.password, database: location.database, tls: .disable),
            id: 1, logger: TestServer.logger)
    }

    /// Runs each statement, in order; a server error is thrown with its message (postgres-nio hides it).
    func execute(_ statements: String...) async throws {
        for sql in statements {
            do {
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestServer.logger)
            } catch {
                throw PostgresStoreError.wrap(error)
            }
        }
    }

    /// The first column of the first row, decoded as `T`.
    func value<T: PostgresDecodable>(_ sql: String, as type: T.Type = T.self) async throws -> T {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestServer.logger).collect()
        return try #require(rows.first).decode(T.self)
    }

    /// Every row's first column, decoded as `T`.
    func values<T: PostgresDecodable>(_ sql: String, as type: T.Type = T.self) async throws -> [T] {
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestServer.logger).collect().map { try $0.decode(T.self) }
    }

    /// Opens the store on this database (migrating first unless told not to) and closes it after `body`.
    func withStore<T>(mode: PostgresStore.OpenMode = .migrate, now: Date = TestServer.now, _ body: (PostgresStore) async throws -> T) async throws -> T {
        let store = try await PostgresStore.open(url: url, mode: mode, now: now)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    /// The platform's own PostgreSQL schema, un-migrated: serial ids, boolean onboarding, a
    /// `timestamp` (without time zone) signup, `timestamptz` elsewhere, a `varchar(50)` stage that
    /// may be NULL, and indexes of its own under other names.
    func createPlatformSchema() async throws {
        try await execute(
            """
            CREATE TABLE users (id serial PRIMARY KEY, email varchar(255), city varchar(100), country varchar(100),
                role varchar(50), subscription_tier varchar(50), is_onboarding_complete boolean DEFAULT false,
                created_at timestamp DEFAULT now(), customer_journey_state varchar(50))
            """,
            "CREATE TABLE posts (id serial PRIMARY KEY, user_id integer NOT NULL, content text, visibility varchar(20), created_at timestamptz DEFAULT now())",
            "CREATE TABLE follows (id serial PRIMARY KEY, follower_id integer NOT NULL, following_id integer NOT NULL, created_at timestamptz DEFAULT now())",
            "CREATE TABLE events (id serial PRIMARY KEY, organizer_id integer, title varchar(255), city varchar(100), start_date timestamp)",
            "CREATE TABLE event_rsvps (id serial PRIMARY KEY, event_id integer NOT NULL, user_id integer NOT NULL, status varchar(20), created_at timestamptz DEFAULT now())",
            // Equivalent to SPEC §3's indexes, under the platform's names: reused.
            "CREATE INDEX posts_author_idx ON posts (user_id)",
            "CREATE UNIQUE INDEX follows_pair_unique ON follows (follower_id, following_id)",
            "CREATE INDEX users_email_lookup ON users (email) INCLUDE (city)",
            // Not equivalent: wrong direction, partial, expression, another collation. Never reused.
            "CREATE INDEX posts_created_asc ON posts (created_at)",
            "CREATE INDEX events_city_partial ON events (city) WHERE city IS NOT NULL",
            "CREATE INDEX events_organizer_expr ON events ((organizer_id + 0))",
            #"CREATE INDEX users_city_country_c ON users (city COLLATE "C", country)"#)
    }
}

extension PostgresStore {
    /// One user's moves decided by `rules` on a snapshot, as the service would.
    static func decide(_ rules: RuleSet, _ snapshots: [UserSnapshot], now: Date) throws -> [PendingMove] {
        try snapshots.compactMap { snapshot in
            guard snapshot.pin == nil else { return nil }
            let evaluation = try rules.evaluate(storedStage: snapshot.storedStage, metrics: snapshot.metrics, now: now)
            guard !evaluation.transitions.isEmpty else { return nil }
            return PendingMove(userID: snapshot.userID, expectedStage: snapshot.storedStage, transitions: evaluation.transitions, metrics: snapshot.metrics)
        }
    }
}
