import Foundation
import JourneyCore
import JourneyPostgres
import JourneyStorage
import JourneyTestSupport
import Logging
import PostgresNIO

/// The PostgreSQL backend: a fresh database on the server named by `JOURNEY_TEST_POSTGRES_URL`
/// (`scripts/postgres-test-cluster.sh start`), the platform's own PostgreSQL schema as the platform
/// creates it (`serial` ids, `boolean` onboarding, `timestamp` and `timestamptz` columns, a
/// `varchar(50)` stage, indexes of its own under other names), opened with
/// `PostgresStore.open(url:mode: .migrate)`. Each database is dropped by ``PostgresFixtureDatabase/remove()``.
struct PostgresFixture: StoreFixture {
    /// The server's URL; its database is where the fixture connects to create and drop its own.
    let url: String

    var name: String { "PostgreSQL" }

    /// `timestamp` and `timestamptz` columns hold instants: NULL, or text in a form of SPEC §8 that
    /// names one (canonical, ISO-8601, a date alone). Epoch numbers, epoch digits as text and
    /// unreadable text cannot be written there (PostgreSQL refuses them, or reads `yesterday` as an
    /// instant of its own).
    func canStore(_ stamp: Stamp) -> Bool { Self.canStore(stamp) }

    static func canStore(_ stamp: Stamp) -> Bool {
        switch stamp {
        case .null: return true
        case .integer, .real: return false
        case .text(let text):
            let (seconds, form) = Timestamp.read(text: text)
            return seconds != nil && ![.unreadable, .epochSeconds, .epochMilliseconds].contains(form)
        }
    }

    /// The store tells its own observers after each of its commits (moves, pins).
    var reportsCommits: Bool { true }

    static let logger = Logger(label: "journey.contract.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The platform's tables before Journey arrives, as `Tests/JourneyPostgresTests` creates them: a
    /// `timestamp` (without time zone) signup and event start, `timestamptz` elsewhere, a nullable
    /// `varchar(50)` stage, and indexes of the platform's own, three of them equivalent to those of
    /// SPEC §3 (reused by the migrator) and one not.
    ///
    /// The stage's default is the first stage, as a platform that already tracks the journey has it.
    /// The PostgreSQL migrator keeps the platform's stage column as it is (SQLite's rebuilds it
    /// `NOT NULL DEFAULT 'J1_NEW_USER'`); without that default every row here, and every user the
    /// platform inserts later, would hold NULL (never evaluated, read as empty) where the suite
    /// expects the first stage.
    static let platformSchema: [String] = [
        """
        CREATE TABLE users (id serial PRIMARY KEY, email varchar(255), city varchar(100), country varchar(100),
            role varchar(50), subscription_tier varchar(50), is_onboarding_complete boolean DEFAULT false,
            created_at timestamp DEFAULT now(), customer_journey_state varchar(50) DEFAULT 'J1_NEW_USER')
        """,
        "CREATE TABLE posts (id serial PRIMARY KEY, user_id integer NOT NULL, content text, visibility varchar(20), created_at timestamptz DEFAULT now())",
        "CREATE TABLE follows (id serial PRIMARY KEY, follower_id integer NOT NULL, following_id integer NOT NULL, created_at timestamptz DEFAULT now())",
        "CREATE TABLE events (id serial PRIMARY KEY, organizer_id integer, title varchar(255), city varchar(100), start_date timestamp)",
        "CREATE TABLE event_rsvps (id serial PRIMARY KEY, event_id integer NOT NULL, user_id integer NOT NULL, status varchar(20), created_at timestamptz DEFAULT now())",
        "CREATE INDEX posts_author_idx ON posts (user_id)",
        "CREATE UNIQUE INDEX follows_pair_unique ON follows (follower_id, following_id)",
        "CREATE INDEX users_email_lookup ON users (email) INCLUDE (city)",
        "CREATE INDEX posts_created_asc ON posts (created_at)",
    ]

    func makeDatabase(_ platform: Platform, migratedAt: Date) async throws -> any FixtureDatabase {
        let server = try PostgresLocation(url: url)
        var location = server
        location.database = "journey_c_\(UInt32.random(in: 0...UInt32.max))"
        try await Self.withConnection(server) { admin in
            try await Self.run(admin, PostgresQuery(unsafeSQL: "CREATE DATABASE \(location.database)"))
        }
        do {
            try await Self.withConnection(location) { connection in
                for sql in Self.platformSchema { try await Self.run(connection, PostgresQuery(unsafeSQL: sql)) }
                try await PostgresFixtureDatabase.insert(platform, connection)
            }
            let store = try await PostgresStore.open(location: location, mode: .migrate, now: migratedAt)
            return PostgresFixtureDatabase(server: server, location: location, postgres: store)
        } catch {
            await Self.drop(location, server: server)
            throw error
        }
    }

    /// A plain connection to `location`, as the platform's application has: timestamp literals and
    /// `timestamp` columns are UTC (the session's time zone).
    static func connect(_ location: PostgresLocation) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        configuration.options.additionalStartupParameters = [("TimeZone", "UTC")]
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw FixtureError(error)
        }
    }

    /// Runs `body` on a new connection to `location`, closed afterwards.
    @discardableResult
    static func withConnection<T>(_ location: PostgresLocation, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await connect(location)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs `query`; a server error is thrown with its message (postgres-nio's own description hides it).
    @discardableResult
    static func run(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await connection.query(query, logger: logger).collect()
        } catch {
            throw FixtureError(error)
        }
    }

    /// Drops the database at `location`, closing whatever connection is still on it.
    static func drop(_ location: PostgresLocation, server: PostgresLocation) async {
        _ = try? await withConnection(server) { admin in
            try await run(admin, PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(location.database) WITH (FORCE)"))
        }
    }
}

/// One PostgreSQL database under test. The platform's writes go through connections of their own,
/// as another application's would.
struct PostgresFixtureDatabase: FixtureDatabase {
    let server: PostgresLocation
    let location: PostgresLocation
    let postgres: PostgresStore
    /// The stores ``openStore(readOnly:)`` opened, closed by ``remove()``.
    private let opened = Collected<PostgresStore>()

    init(server: PostgresLocation, location: PostgresLocation, postgres: PostgresStore) {
        self.server = server
        self.location = location
        self.postgres = postgres
    }

    var store: any JourneyStore { postgres }

    func openStore(readOnly: Bool) async throws -> any JourneyStore {
        let store = try await PostgresStore.open(location: location, mode: readOnly ? .readOnly : .requireMigrated)
        opened.append(store)
        return store
    }

    func add(_ platform: Platform) async throws {
        try await PostgresFixture.withConnection(location) { connection in try await Self.insert(platform, connection) }
    }

    func execute(_ sql: String) async throws {
        try await PostgresFixture.withConnection(location) { connection in
            try await PostgresFixture.run(connection, PostgresQuery(unsafeSQL: sql))
        }
    }

    func integer(_ sql: String) async throws -> Int? {
        try await PostgresFixture.withConnection(location) { connection in
            guard let row = try await PostgresFixture.run(connection, PostgresQuery(unsafeSQL: sql)).first else { return nil }
            return try row.decode(Int?.self)
        }
    }

    func setStoredStage(user: Int64, _ stage: String?) async throws {
        try await PostgresFixture.withConnection(location) { connection in
            if stage == nil {
                try await PostgresFixture.run(connection, "ALTER TABLE users ALTER COLUMN customer_journey_state DROP NOT NULL")
            }
            try await PostgresFixture.run(connection, "UPDATE users SET customer_journey_state = \(stage) WHERE id = \(user)")
        }
    }

    func tamper(with tampered: TamperedWrite, of user: Int64) async throws {
        let (body, trigger) = tampered.postgresTrigger(user: user)
        try await execute("CREATE FUNCTION platform_tampers() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \(body) END $$")
        try await execute(trigger)
    }

    func insertTransition(user: Int64, seq: Int, from: String, to: String, createdAt: Date, source: String, metrics: String) async throws {
        try await PostgresFixture.withConnection(location) { connection in
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO journey_transitions (user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                VALUES (\(user), \(seq), \(from), \(to), 'inserted by the test', 'v', \(metrics)::jsonb, \(source), \(createdAt))
                """)
        }
    }

    func remove() async {
        for store in opened.elements { await store.close() }
        await postgres.close()
        await PostgresFixture.drop(location, server: server)
    }

    /// Writes `platform`'s rows into the platform tables; each timestamp is cast from its text by
    /// the server, as an ORM's literal would be.
    static func insert(_ platform: Platform, _ connection: PostgresConnection) async throws {
        for user in platform.users {
            let createdAt = try user.createdAt.timestampText()
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO users (id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at)
                VALUES (\(user.id), \(user.email), \(user.city), \(user.country), \(user.role), \(user.tier), \(user.onboarding),
                        \(createdAt)::timestamptz)
                """)
        }
        for post in platform.posts {
            let createdAt = try post.createdAt.timestampText()
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO posts (user_id, content, visibility, created_at) VALUES (\(post.userID), 'text', \(post.visibility), \(createdAt)::timestamptz)
                """)
        }
        for follow in platform.follows {
            let createdAt = try follow.createdAt.timestampText()
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO follows (follower_id, following_id, created_at) VALUES (\(follow.follower), \(follow.following), \(createdAt)::timestamptz)
                """)
        }
        for event in platform.events {
            let startDate = try event.startDate.timestampText()
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO events (id, organizer_id, title, city, start_date)
                VALUES (\(event.id), \(event.organizer), \(event.title), \(event.city), \(startDate)::timestamptz)
                """)
        }
        for rsvp in platform.rsvps {
            let createdAt = try rsvp.createdAt.timestampText()
            try await PostgresFixture.run(
                connection,
                """
                INSERT INTO event_rsvps (event_id, user_id, status, created_at) VALUES (\(rsvp.eventID), \(rsvp.userID), \(rsvp.status), \(createdAt)::timestamptz)
                """)
        }
    }
}

extension Stamp {
    /// The text the server casts to the column's type: nil for NULL. A stamp that
    /// ``PostgresFixture/canStore(_:)`` refuses is an error (the test should have skipped it).
    fileprivate func timestampText() throws -> String? {
        switch self {
        case .null: return nil
        case .text(let text) where PostgresFixture.canStore(self): return text
        default: throw FixtureError(message: "a PostgreSQL timestamp column cannot hold \(self)")
        }
    }
}

/// A fixture's failure, with the server's message when there is one.
struct FixtureError: Error, CustomStringConvertible {
    let message: String

    init(message: String) { self.message = message }

    init(_ error: any Error) {
        if let error = error as? PSQLError, let info = error.serverInfo {
            message = "\(info[.sqlState] ?? "?"): \(info[.message] ?? "refused")\(info[.detail].map { " (\($0))" } ?? "")"
        } else {
            message = "\(error)"
        }
    }

    var description: String { message }
}
