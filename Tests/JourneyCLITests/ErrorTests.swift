import Foundation
import GRDB
import Testing

/// Every error of issue 4 item 7: one line on stderr naming the thing, the documented sysexits
/// status, no stack trace, and nothing written.
@Suite("journey errors")
struct ErrorTests {
    /// The commands that read a user from a database, without the user id.
    static let userCommands: [[String]] = [
        ["evaluate"], ["evaluate", "--dry-run"], ["evaluate", "--json"], ["explain"], ["history"],
        ["pin", "--reason", "x"], ["unpin"],
    ]

    /// Expects no byte written: the main file identical, no WAL frame.
    static func expectUnchanged(_ after: DatabaseFiles, _ before: DatabaseFiles, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(after.sameContent(as: before), "the file changed: before \(before), after \(after)", sourceLocation: sourceLocation)
    }

    /// `journey <command> <user> <options…> --db <db>`.
    static func arguments(_ command: [String], user: String, db: String) -> [String] {
        [command[0], user] + command.dropFirst() + ["--db", db]
    }

    /// A database path that is wrong in one way.
    enum BadDatabase: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case missing, directory, textFile, foreignSQLite, unmigrated

        var testDescription: String { rawValue }

        /// The exit status the CLI must give.
        var status: Int32 {
            switch self {
            case .missing, .directory: 66
            case .textFile, .foreignSQLite, .unmigrated: 65
            }
        }

        /// Words the one-line message must contain besides the path.
        var mentions: [String] {
            switch self {
            case .missing: ["no database at", "--db PATH", "JOURNEY_DATABASE"]
            case .directory: ["directory"]
            case .textFile: ["not a journey database"]
            case .foreignSQLite: ["users", "posts"]
            case .unmigrated: ["journey migrate"]
            }
        }

        /// Creates the bad database in `workspace` and returns its path.
        func make(in workspace: Workspace) async throws -> String {
            switch self {
            case .missing:
                return workspace.path("missing.sqlite")
            case .directory:
                let path = workspace.path("folder.sqlite")
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                return path
            case .textFile:
                let path = workspace.path("notes.txt")
                try Data(String(repeating: "These are not the rows you are looking for.\n", count: 200).utf8)
                    .write(to: URL(fileURLWithPath: path))
                return path
            case .foreignSQLite:
                let path = workspace.path("other.sqlite")
                try Direct.execute(
                    path,
                    """
                    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
                    INSERT INTO notes(body) VALUES ('a'), ('b');
                    """)
                return path
            case .unmigrated:
                return try await workspace.platformDatabase("unmigrated.sqlite", migrated: false)
            }
        }
    }

    @Test(
        "a bad --db: the documented status, one line naming the file, nothing written",
        arguments: BadDatabase.allCases, userCommands)
    func badDatabase(_ bad: BadDatabase, command: [String]) async throws {
        try await withWorkspace { workspace in
            // Given: a database path that is missing, a directory, a text file, a foreign SQLite file or un-migrated
            let path = try await bad.make(in: workspace)
            let fingerprint = bad == .foreignSQLite || bad == .unmigrated ? try Direct.fingerprint(path) : []
            let before = DatabaseFiles(path)

            // When: running the command on it
            let result = try await workspace.journey(Self.arguments(command, user: "1", db: path))
            let after = DatabaseFiles(path)

            // Then: the status, one line naming the file, and the file (or its absence) untouched
            expectCleanFailure(result, status: bad.status, mentions: [path] + bad.mentions)
            switch bad {
            case .missing:
                #expect(!FileManager.default.fileExists(atPath: path), "the missing database was created")
                #expect(after == before, "companion files appeared: \(after)")
            case .directory:
                #expect(try FileManager.default.contentsOfDirectory(atPath: path).isEmpty, "something was written in the directory")
            case .textFile:
                #expect(after == before, "the file changed: before \(before), after \(after)")
            case .foreignSQLite:
                // No table added, no row changed; and, byte for byte, the same file
                #expect(try Direct.fingerprint(path) == fingerprint)
                Self.expectUnchanged(after, before)
            case .unmigrated:
                // No journey column, no migration table; and, byte for byte, the same file
                #expect(try Direct.fingerprint(path) == fingerprint)
                #expect(try Direct.integer(path, "SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'customer_journey_state'") == 0)
                Self.expectUnchanged(after, before)
            }
        }
    }

    /// User ids that are not positive integers that fit in 64 bits.
    static let invalidUserIDs = ["abc", "0", "-5", "99999999999999999999", "", "1.5", "0x10"]

    @Test(
        "a user id that is not a positive integer is a usage error (64), nothing written",
        arguments: invalidUserIDs, userCommands)
    func invalidUserID(_ user: String, command: [String]) async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture database
            let db = try await workspace.platformDatabase()
            let before = DatabaseFiles(db)

            // When: passing the bad id
            let result = try await workspace.journey(Self.arguments(command, user: user, db: db))

            // Then: ArgumentParser's usage error, status 64, and the database untouched
            expectUsageFailure(result)
            #expect(DatabaseFiles(db) == before)
        }
    }

    @Test("an unknown user: 67 naming the id, nothing written", arguments: userCommands)
    func unknownUser(_ command: [String]) async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture of 200 users
            let db = try await workspace.platformDatabase()
            let fingerprint = try Direct.fingerprint(db)
            let before = DatabaseFiles(db)

            // When: asking for user 999999
            let result = try await workspace.journey(Self.arguments(command, user: "999999", db: db))
            let after = DatabaseFiles(db)

            // Then: 67, one line naming the user, and the database untouched (no row, no pin; same bytes)
            expectCleanFailure(result, status: 67, mentions: ["999999"])
            #expect(try Direct.fingerprint(db) == fingerprint)
            Self.expectUnchanged(after, before)
        }
    }

    @Test(
        "a legacy stage value the rules do not know: 65 naming the stage, nothing written",
        arguments: [["evaluate"], ["evaluate", "--dry-run"], ["evaluate", "--json"], ["explain"], ["explain", "--json"]])
    func legacyStage(_ command: [String]) async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture where user 5 holds the legacy value 'J9'
            let db = try await workspace.platformDatabase()
            try Direct.execute(db, "UPDATE users SET customer_journey_state = 'J9' WHERE id = 5")
            let fingerprint = try Direct.fingerprint(db)
            let before = DatabaseFiles(db)

            // When: evaluating or explaining them
            let result = try await workspace.journey(Self.arguments(command, user: "5", db: db))
            let after = DatabaseFiles(db)

            // Then: 65, one line naming the user and the stage, and nothing written
            expectCleanFailure(result, status: 65, mentions: ["'J9'", "User 5"])
            #expect(try Direct.fingerprint(db) == fingerprint)
            #expect(try Direct.integer(db, "SELECT customer_journey_state = 'J9' FROM users WHERE id = 5") == 1)
            Self.expectUnchanged(after, before)
        }
    }

    @Test(
        "an unknown subcommand or option is a usage error (64)",
        arguments: [["frobnicate"], ["evaluate"], ["evaluate", "1", "--colour"], ["rules"], ["history", "1", "2"]])
    func usageErrors(_ arguments: [String]) async throws {
        try await withWorkspace { workspace in
            // Given/When: a command line the parser refuses
            let result = try await workspace.journey(arguments)

            // Then: 64 with the usage, and no database appears in the working directory
            if arguments == ["rules"] {
                // `rules` alone prints its help (exit 0) in ArgumentParser; it must not crash either.
                #expect(result.status == 0 || result.status == 64, "\(result)")
                expectNoCrash(result)
            } else {
                expectUsageFailure(result)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.url.path).isEmpty)
        }
    }
}

/// `--db` defaults to `$JOURNEY_DATABASE`, then `journey.sqlite` in the working directory.
@Suite("journey database defaults")
struct DatabaseDefaultTests {
    @Test("JOURNEY_DATABASE is used when --db is absent")
    func environmentVariable() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture named only by JOURNEY_DATABASE
            let db = try await workspace.platformDatabase()

            // When: evaluating and reading the history without --db
            let evaluate = try await workspace.journey(["evaluate", "7", "--dry-run", "--json"], environment: ["JOURNEY_DATABASE": db])
            let history = try await workspace.journey(["history", "7"], environment: ["JOURNEY_DATABASE": db])

            // Then: both read that file
            #expect(evaluate.status == 0, "\(evaluate)")
            #expect((try evaluate.jsonObject()["user"] as? NSNumber)?.intValue == 7)
            #expect(history.status == 0, "\(history)")
            #expect(history.stdout.hasPrefix("User 7: J1_NEW_USER"), "\(history)")
            #expect(!FileManager.default.fileExists(atPath: workspace.path("journey.sqlite")))
        }
    }

    @Test("--db wins over JOURNEY_DATABASE")
    func optionWinsOverEnvironment() async throws {
        try await withWorkspace { workspace in
            // Given: JOURNEY_DATABASE names a missing file, --db a real one
            let db = try await workspace.platformDatabase()
            let elsewhere = workspace.path("elsewhere.sqlite")

            // When: evaluating with both
            let result = try await workspace.journey(["evaluate", "7", "--dry-run", "--db", db], environment: ["JOURNEY_DATABASE": elsewhere])

            // Then: --db is used, and the other file is not created
            #expect(result.status == 0, "\(result)")
            #expect(!FileManager.default.fileExists(atPath: elsewhere))
        }
    }

    @Test("JOURNEY_DATABASE naming a missing file: 66 naming it, not created")
    func environmentVariableMissingFile() async throws {
        try await withWorkspace { workspace in
            // Given: JOURNEY_DATABASE names a file that does not exist
            let path = workspace.path("gone.sqlite")

            // When: evaluating without --db
            let result = try await workspace.journey(["evaluate", "1"], environment: ["JOURNEY_DATABASE": path])

            // Then: 66 naming that file, which is still absent
            expectCleanFailure(result, status: 66, mentions: [path])
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("without --db or JOURNEY_DATABASE: journey.sqlite in the working directory")
    func defaultFileName() async throws {
        try await withWorkspace { workspace in
            // Given: no journey.sqlite in the working directory, and no JOURNEY_DATABASE
            // When: evaluating
            let missing = try await workspace.journey(["evaluate", "1"])

            // Then: 66 naming journey.sqlite, which evaluate does not create
            expectCleanFailure(missing, status: 66, mentions: ["journey.sqlite"])
            #expect(!FileManager.default.fileExists(atPath: workspace.path("journey.sqlite")))

            // Given: a migrated fixture named journey.sqlite in the working directory
            _ = try await workspace.platformDatabase("journey.sqlite")

            // When: evaluating without --db (an empty JOURNEY_DATABASE counts as unset)
            let found = try await workspace.journey(["evaluate", "1", "--dry-run", "--json"], environment: ["JOURNEY_DATABASE": ""])

            // Then: it is read
            #expect(found.status == 0, "\(found)")
            #expect((try found.jsonObject()["user"] as? NSNumber)?.intValue == 1)
        }
    }
}
