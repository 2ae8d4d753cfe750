import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import JourneyTestSupport

@testable import JourneySQLite

/// Shared fixtures for the store tests: fixed instants, temporary directories, schema dumps.
enum Fixture {
    /// The instant the small fixture's metrics are read at: 2025-06-15 12:00:00 UTC.
    static let now = utc("2025-06-15 12:00:00")
    /// The instant the migrator runs at (backfills `last_journey_update` where `created_at` is NULL).
    static let migrationNow = utc("2025-06-05 06:00:00")
    /// The instant the generator's data is generated as of.
    static let generatedAt = utc("2025-06-01 00:00:00")

    /// The repository root, found from this file: …/Tests/JourneySQLiteTests/Support.swift.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // JourneySQLiteTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root

    /// A UTC timestamp in the database's own format (`YYYY-MM-DD HH:MM:SS[.SSS]`), as a date.
    static func utc(_ text: String) -> Date {
        guard let date = Date.fromDatabaseValue(text.databaseValue) else {
            fatalError("not a timestamp: \(text)")
        }
        return date
    }

    /// The text of a script under `Fixtures/sql/`.
    static func sqlScript(_ name: String) throws -> String {
        try String(contentsOf: repositoryRoot.appending(path: "Fixtures/sql/\(name)"), encoding: .utf8)
    }

    /// Writes the platform database of `Fixtures/sql/<name>` (un-migrated) at `path`.
    static func writeScript(_ name: String, to path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sqlScript(name)) }
        try queue.close()
    }

    /// The small hand-written platform database, migrated at ``migrationNow``.
    static func smallMigratedDatabase(in directory: URL, name: String = "small.sqlite") throws -> SQLiteStore {
        let path = directory.appending(path: name).path
        try writeScript("small-platform.sql", to: path)
        return try SQLiteStore.open(path: path, mode: .migrate, now: migrationNow)
    }

    /// The five platform tables, and the journey tables the migrator adds.
    static let platformTables = ["users", "posts", "follows", "events", "event_rsvps"]
    static let journeyTables = ["journey_transitions", "journey_pins", "journey_batch_runs", "journey_pin_events", "journey_rules"]

    /// The fifteen indexes of SPEC §3, written down independently of the migrator:
    /// (table, key columns, whether each column is descending).
    static let specIndexes: [(table: String, columns: [String], descending: [Bool])] = [
        ("posts", ["user_id"], [false]),
        ("posts", ["created_at"], [true]),
        ("posts", ["user_id", "created_at"], [false, true]),
        ("posts", ["visibility"], [false]),
        ("users", ["customer_journey_state"], [false]),
        ("users", ["email"], [false]),
        ("users", ["city", "country"], [false, false]),
        ("follows", ["follower_id"], [false]),
        ("follows", ["following_id"], [false]),
        ("follows", ["follower_id", "following_id"], [false, false]),
        ("events", ["start_date"], [false]),
        ("events", ["organizer_id"], [false]),
        ("events", ["city"], [false]),
        ("event_rsvps", ["user_id"], [false]),
        ("event_rsvps", ["event_id"], [false]),
    ]
}

/// Runs `body` with a fresh, unique temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appending(path: "JourneySQLiteTests-\(UUID().uuidString)", directoryHint: .isDirectory)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// Everything a migration could change, to compare before and after a second run.
struct DatabaseDump: Equatable, CustomStringConvertible {
    /// `name: sql` of every schema object, by name.
    var schema: [String]
    /// Rows per table.
    var counts: [String: Int]
    /// The migrations GRDB recorded as done.
    var migrations: [String]
    /// Every row of `users` (the table migrations alter and backfill).
    var users: [Row]

    init(_ db: Database) throws {
        schema = try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master ORDER BY name").map {
            "\($0["name"] as String): \(($0["sql"] as String?) ?? "NULL")"
        }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        counts = [:]
        for table in tables {
            counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table.quotedDatabaseIdentifier)")
        }
        migrations =
            try db.tableExists("grdb_migrations")
            ? String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") : []
        users = try db.tableExists("users") ? Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY id") : []
    }

    static func read(_ writer: any DatabaseReader) throws -> DatabaseDump {
        try writer.read { try DatabaseDump($0) }
    }

    var description: String { "schema:\n  " + schema.joined(separator: "\n  ") + "\ncounts: \(counts)\nmigrations: \(migrations)" }
}

/// The rows in each platform table.
func platformCounts(_ db: Database) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for table in Fixture.platformTables {
        counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)")
    }
    return counts
}

/// The key columns and their direction of every index on `table` (`PRAGMA index_xinfo`).
func indexShapes(_ db: Database, table: String) throws -> [String: (columns: [String], descending: [Bool])] {
    var shapes: [String: (columns: [String], descending: [Bool])] = [:]
    for name in try String.fetchAll(db, sql: "SELECT name FROM pragma_index_list(?)", arguments: [table]) {
        let keys = try Row.fetchAll(db, sql: "SELECT name, desc FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno", arguments: [name])
        shapes[name] = (keys.map { $0["name"] as String }, keys.map { $0["desc"] as Bool })
    }
    return shapes
}

/// Users whose `follower_count` differs from the real count of `follows` rows pointing at them.
func followerCountDrift(_ db: Database) throws -> [Row] {
    try Row.fetchAll(
        db,
        sql: """
            SELECT id, follower_count, (SELECT COUNT(*) FROM follows WHERE following_id = users.id) AS real
            FROM users WHERE follower_count <> (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
            ORDER BY id
            """)
}

/// A transition between two stages of the default journey, with a reason.
func move(_ from: StageID, _ to: StageID, _ reason: String = "criteria met") -> Transition {
    Transition(from: from, to: to, kind: .next, reason: reason)
}

extension StageID {
    static let j1: StageID = "J1_NEW_USER"
    static let j2: StageID = "J2_ACTIVE_USER"
    static let j3: StageID = "J3_POWER_USER"
}

/// Runs `body(0)`, …, `body(count - 1)` at the same time in a task group; the results in index order.
func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async -> T) async -> [T] {
    await withTaskGroup(of: (Int, T).self) { group in
        for index in 0..<count { group.addTask { (index, await body(index)) } }
        var results: [(Int, T)] = []
        for await result in group { results.append(result) }
        return results.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

extension DatabaseWriter {
    /// The synchronous `read`, where an async context would pick GRDB's async one (a test may block).
    func readNow<T>(_ body: (Database) throws -> T) throws -> T { try read(body) }
    /// The synchronous `write`, where an async context would pick GRDB's async one (a test may block).
    func writeNow<T>(_ body: (Database) throws -> T) throws -> T { try write(body) }
}
