import Foundation
import GRDB
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// Issue 4, "Errors": each bad file is refused with the error naming it, and nothing is
/// created or written.
@Suite("Opening files that are not (yet) journey databases")
struct OpenErrorTests {
    @Test("A missing file is databaseMissing and is not created", arguments: [SQLiteStore.OpenMode.requireMigrated, .readOnly])
    func missingFile(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory throws in
            // Given no file at the path
            let path = directory.appending(path: "nothing.sqlite").path

            // When it is opened without .migrate
            let error = openError(path, mode)

            // Then the store says it is missing, and did not create it (nor a -wal or -shm)
            guard case .databaseMissing(let named)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(named == path)
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        }
    }

    @Test("A directory is isDirectory, whatever the mode", arguments: [SQLiteStore.OpenMode.migrate, .requireMigrated, .readOnly])
    func directory(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory throws in
            // Given a directory where the database should be
            let path = directory.appending(path: "db.sqlite").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)

            // When it is opened
            let error = openError(path, mode)

            // Then it is reported as a directory and left empty
            guard case .isDirectory(let named)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(named == path)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).isEmpty)
        }
    }

    @Test("A text file is notADatabase and is left byte-identical", arguments: [SQLiteStore.OpenMode.migrate, .requireMigrated, .readOnly])
    func textFile(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory throws in
            // Given a text file long enough to look like a SQLite header's size
            let path = directory.appending(path: "notes.txt").path
            let text = Data(String(repeating: "journey notes, not a database\n", count: 200).utf8)
            #expect(FileManager.default.createFile(atPath: path, contents: text))

            // When it is opened
            let error = openError(path, mode)

            // Then it is not a database, and the file is untouched
            guard case .notADatabase(let named)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(named == path)
            #expect(FileManager.default.contents(atPath: path) == text)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["notes.txt"])
        }
    }

    @Test("A SQLite file without the platform tables is platformTablesMissing, naming them")
    func noPlatformTables() async throws {
        try await withTemporaryDirectory { directory throws in
            // Given SQLite files with another application's table, and with only two of the five tables
            let other = directory.appending(path: "other.sqlite").path
            let partial = directory.appending(path: "partial.sqlite").path
            try writeSQLite(other, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('hi')")
            try writeSQLite(partial, "CREATE TABLE users(id INTEGER PRIMARY KEY); CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER)")

            // When they are opened as migrated databases
            // Then the missing tables are named
            guard case .platformTablesMissing(let path, let tables)? = openError(other, .requireMigrated) else {
                Issue.record("expected platformTablesMissing"); return
            }
            #expect(path == other)
            #expect(tables == ["users", "posts", "follows", "events", "event_rsvps"])
            guard case .platformTablesMissing(_, let missing)? = openError(partial, .readOnly) else {
                Issue.record("expected platformTablesMissing"); return
            }
            #expect(missing == ["follows", "events", "event_rsvps"])
        }
    }

    @Test("An un-migrated platform database is notMigrated", arguments: [SQLiteStore.OpenMode.requireMigrated, .readOnly])
    func unmigratedPlatformDatabase(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory throws in
            // Given a platform database that was never migrated
            let path = directory.appending(path: "platform.sqlite").path
            try PlatformDataGenerator(users: 30, seed: 9, now: Fixture.generatedAt).write(to: path)

            // When it is opened as migrated
            let error = openError(path, mode)

            // Then it is reported as not migrated, and no journey column or table appeared
            guard case .notMigrated(let named)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(named == path)
            let queue = try DatabaseQueue(path: path, configuration: readOnlyConfiguration)
            try queue.read { db throws in
                #expect(try !db.columns(in: "users").contains { $0.name == "customer_journey_state" })
                #expect(try !db.tableExists("journey_transitions"))
                #expect(try !db.tableExists("grdb_migrations"))
            }
        }
    }

    /// Issue 4: "each [error] a one-line message …, nothing written". Opening read-write
    /// (what `journey evaluate` does) must not change a file it then refuses.
    @Test("A refused open leaves the file byte-identical", arguments: [SQLiteStore.OpenMode.requireMigrated, .readOnly])
    func refusedOpenWritesNothing(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory throws in
            // Given an un-migrated platform database and a SQLite file of another application
            let platform = directory.appending(path: "platform.sqlite").path
            try PlatformDataGenerator(users: 30, seed: 9, now: Fixture.generatedAt).write(to: platform)
            let other = directory.appending(path: "other.sqlite").path
            try writeSQLite(other, "CREATE TABLE notes(id INTEGER PRIMARY KEY)")
            let platformBytes = FileManager.default.contents(atPath: platform)
            let otherBytes = FileManager.default.contents(atPath: other)

            // When each is opened and refused
            #expect(openError(platform, mode) != nil)
            #expect(openError(other, mode) != nil)

            // Then both files are byte-identical, with no -wal or -shm left behind
            let expectUnchanged = {
                #expect(FileManager.default.contents(atPath: platform) == platformBytes, "platform.sqlite changed")
                #expect(FileManager.default.contents(atPath: other) == otherBytes, "other.sqlite changed")
            }
            expectUnchanged()
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["other.sqlite", "platform.sqlite"])
        }
    }
}

/// The error `open` throws, or nil when it opens.
private func openError(_ path: String, _ mode: SQLiteStore.OpenMode) -> StorageError? {
    do throws(StorageError) {
        _ = try SQLiteStore.open(path: path, mode: mode, now: Fixture.migrationNow)
        return nil
    } catch {
        return error
    }
}

/// Writes a SQLite file with `sql`, in the default (rollback journal) mode.
private func writeSQLite(_ path: String, _ sql: String) throws {
    let queue = try DatabaseQueue(path: path)
    try queue.write { db in try db.execute(sql: sql) }
    try queue.close()
}

private var readOnlyConfiguration: Configuration {
    var configuration = Configuration()
    configuration.readonly = true
    return configuration
}
