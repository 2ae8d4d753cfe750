import Foundation
import GRDB
import JourneySQLite
import JourneyStorage

/// The SQLite backend: a file in a fresh temporary directory, the platform tables as the platform
/// writes them (no journey columns), opened with `SQLiteStore.open(path:mode: .migrate)`.
struct SQLiteFixture: StoreFixture {
    var name: String { "SQLite" }

    /// SQLite keeps any value in any column: every form of SPEC §8.
    func canStore(_ stamp: Stamp) -> Bool { true }

    /// The write tracker's TEMP triggers report every commit through the store's writer.
    var reportsCommits: Bool { true }

    /// The platform's tables before Journey arrives (those of `Fixtures/sql/small-platform.sql`).
    static let platformSchema = """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT,
            subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT, created_at TEXT);
        CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
        CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at TEXT);
        """

    func makeDatabase(_ platform: Platform, migratedAt: Date) async throws -> any FixtureDatabase {
        let directory = FileManager.default.temporaryDirectory
            .appending(path: "JourneyContractTests-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appending(path: "platform.sqlite").path
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: Self.platformSchema)
            try SQLiteFixtureDatabase.insert(platform, db)
        }
        try queue.close()
        let store = try SQLiteStore.open(path: path, mode: .migrate, now: migratedAt)
        return SQLiteFixtureDatabase(directory: directory, path: path, sqlite: store)
    }
}

/// One SQLite file under test. The platform's writes go through a connection of their own, as
/// another application's would.
struct SQLiteFixtureDatabase: FixtureDatabase {
    let directory: URL
    let path: String
    let sqlite: SQLiteStore

    var store: any JourneyStore { sqlite }

    func openStore(readOnly: Bool) async throws -> any JourneyStore {
        try SQLiteStore.open(path: path, mode: readOnly ? .readOnly : .requireMigrated)
    }

    /// A plain connection with a busy timeout, like the platform application's.
    private func platformConnection() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(SQLiteStore.busyTimeout)
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    private func write(_ body: @escaping @Sendable (Database) throws -> Void) async throws {
        let queue = try platformConnection()
        try await queue.write(body)
        try queue.close()
    }

    func add(_ platform: Platform) async throws {
        try await write { db in try Self.insert(platform, db) }
    }

    func execute(_ sql: String) async throws {
        try await write { db in try db.execute(sql: sql) }
    }

    func integer(_ sql: String) async throws -> Int? {
        let queue = try platformConnection()
        defer { try? queue.close() }
        return try await queue.read { db in try Int.fetchOne(db, sql: sql) }
    }

    func setStoredStage(user: Int64, _ stage: String?) async throws {
        try await write { db in
            if stage == nil { try Self.makeStageNullable(db) }
            try db.execute(sql: "UPDATE users SET customer_journey_state = ? WHERE id = ?", arguments: [stage, user])
        }
    }

    func tamper(with tampered: TamperedWrite, of user: Int64) async throws {
        try await write { db in try db.execute(sql: tampered.sqliteTrigger(user: user)) }
    }

    func insertTransition(user: Int64, seq: Int, from: String, to: String, createdAt: Date, source: String, metrics: String) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                    VALUES (?, ?, ?, ?, 'inserted by the test', 'v', ?, ?, ?)
                    """, arguments: [user, seq, from, to, metrics, source, Stamp.canonical(createdAt)])
        }
    }

    func remove() async {
        try? sqlite.writer.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `platform`'s rows into the platform tables.
    static func insert(_ platform: Platform, _ db: Database) throws {
        for user in platform.users {
            try db.execute(
                sql: """
                    INSERT INTO users(id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [user.id, user.email, user.city, user.country, user.role, user.tier, user.onboarding, user.createdAt.databaseValue])
        }
        for post in platform.posts {
            try db.execute(
                sql: "INSERT INTO posts(user_id, content, visibility, created_at) VALUES (?, 'text', ?, ?)",
                arguments: [post.userID, post.visibility, post.createdAt.databaseValue])
        }
        for follow in platform.follows {
            try db.execute(
                sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)",
                arguments: [follow.follower, follow.following, follow.createdAt.databaseValue])
        }
        for event in platform.events {
            try db.execute(
                sql: "INSERT INTO events(id, organizer_id, title, city, start_date) VALUES (?, ?, ?, ?, ?)",
                arguments: [event.id, event.organizer, event.title, event.city, event.startDate.databaseValue])
        }
        for rsvp in platform.rsvps {
            try db.execute(
                sql: "INSERT INTO event_rsvps(event_id, user_id, status, created_at) VALUES (?, ?, ?, ?)",
                arguments: [rsvp.eventID, rsvp.userID, rsvp.status, rsvp.createdAt.databaseValue])
        }
    }

    /// Rebuilds `users` with a nullable `customer_journey_state`, as an ORM's schema push does to a
    /// migrated file, keeping every row, index and trigger (SQLite's twelve-step table change).
    static func makeStageNullable(_ db: Database) throws {
        guard let create = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'") else { return }
        let nullable = create.replacingOccurrences(of: "customer_journey_state TEXT NOT NULL", with: "customer_journey_state TEXT")
        guard nullable != create else { return }
        let dependents = try String.fetchAll(
            db,
            sql: """
                SELECT sql FROM sqlite_master WHERE tbl_name = 'users' AND type IN ('index', 'trigger') AND sql IS NOT NULL
                """)
        try db.execute(sql: "PRAGMA legacy_alter_table = ON")
        defer { try? db.execute(sql: "PRAGMA legacy_alter_table = OFF") }
        try db.execute(sql: nullable.replacingOccurrences(of: "CREATE TABLE users", with: "CREATE TABLE users_nullable"))
        try db.execute(sql: "INSERT INTO users_nullable SELECT * FROM users")
        try db.execute(sql: "DROP TABLE users")
        try db.execute(sql: "ALTER TABLE users_nullable RENAME TO users")
        for sql in dependents { try db.execute(sql: sql) }
    }
}

extension Stamp {
    /// The value as SQLite stores it: text and numbers as they are.
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .text(let text): text.databaseValue
        case .integer(let number): number.databaseValue
        case .real(let number): number.databaseValue
        }
    }
}
