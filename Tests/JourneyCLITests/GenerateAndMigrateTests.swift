import Foundation
import Testing

/// `journey generate` and `journey migrate`, run as the built executable.
@Suite("journey generate and migrate")
struct GenerateAndMigrateTests {
    @Test("generate writes a platform database without journey columns; migrate adds them")
    func generateThenMigrate() async throws {
        try await withWorkspace { workspace in
            // Given: an empty workspace
            let path = workspace.path("p.sqlite")

            // When: generating 200 users with seed 3
            let generated = try await workspace.journey(["generate", "--users", "200", "--seed", "3", "--output", path])

            // Then: exit 0, the file exists, the summary names the counts, and it is not migrated yet
            #expect(generated.status == 0, "\(generated)")
            #expect(FileManager.default.fileExists(atPath: path))
            #expect(generated.stdout.contains("200 users"), "\(generated)")
            #expect(generated.stderr.isEmpty, "\(generated)")
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM users") == 200)
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'customer_journey_state'") == 0)

            // When: migrating it
            let migrated = try await workspace.journey(["migrate", "--db", path])

            // Then: exit 0, "up to date", the rows kept, every user in J1 with a journey table and 15 platform indexes
            #expect(migrated.status == 0, "\(migrated)")
            #expect(migrated.stdout.contains("is up to date"), "\(migrated)")
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM users") == 200)
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM users WHERE customer_journey_state = 'J1_NEW_USER'") == 200)
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journey_transitions'") == 1)
            #expect(
                try Direct.integer(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%' AND name NOT LIKE 'idx_journey_%'")
                    == 15)
        }
    }

    @Test("the same seed and size give the same rows")
    func generateIsDeterministic() async throws {
        try await withWorkspace { workspace in
            // Given/When: two databases generated with the same seed and size
            let first = try await workspace.platformDatabase("a.sqlite", migrated: false)
            let second = try await workspace.platformDatabase("b.sqlite", migrated: false)

            // Then: the same row counts in every table
            for table in ["users", "posts", "follows", "events", "event_rsvps"] {
                let count = "SELECT COUNT(*) FROM \(table)"
                #expect(try Direct.integer(first, count) == Direct.integer(second, count), "table \(table)")
            }
        }
    }

    @Test("generate refuses to overwrite an existing file (usage error, file untouched)")
    func generateRefusesExistingFile() async throws {
        try await withWorkspace { workspace in
            // Given: a file already at the output path
            let path = workspace.path("taken.sqlite")
            try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))

            // When: generating to it
            let result = try await workspace.journey(["generate", "--users", "50", "--output", path])

            // Then: 64 with the usage, and the file is unchanged
            expectUsageFailure(result, mentions: ["already exists"])
            #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
        }
    }

    @Test("migrate twice succeeds and the second run changes no schema and no row")
    func migrateTwice() async throws {
        try await withWorkspace { workspace in
            // Given: a generated, migrated platform database
            let path = try await workspace.platformDatabase()
            let before = try Direct.fingerprint(path)

            // When: migrating again
            let again = try await workspace.journey(["migrate", "--db", path])

            // Then: exit 0, the same schema and the same rows in every table (migrations recorded once)
            #expect(again.status == 0, "\(again)")
            #expect(again.stdout.contains("is up to date"), "\(again)")
            let after = try Direct.fingerprint(path)
            #expect(after.count == before.count)
            #expect(after == before, "first difference: \(zip(before, after).first { $0 != $1 }.map { "\($0) → \($1)" } ?? "in length")")
        }
    }

    @Test("migrate without --create refuses a missing file (66) and creates nothing")
    func migrateRefusesMissingFile() async throws {
        try await withWorkspace { workspace in
            // Given: no file at the path (a mistyped --db)
            let path = workspace.path("typo.sqlite")

            // When: migrating it without --create
            let result = try await workspace.journey(["migrate", "--db", path])

            // Then: 66, one line naming the file and --create, and no file or companion appears
            expectCleanFailure(result, status: 66, mentions: [path, "--create"])
            for file in [path, path + "-wal", path + "-shm"] { #expect(!FileManager.default.fileExists(atPath: file), "\(file)") }
        }
    }

    @Test("migrate --create creates a new, empty journey database; evaluate then knows no users")
    func migrateCreatesEmptyDatabase() async throws {
        try await withWorkspace { workspace in
            // Given: no file at the path
            let path = workspace.path("new.sqlite")

            // When: migrating it with --create
            let result = try await workspace.journey(["migrate", "--create", "--db", path])

            // Then: the file exists with the platform tables, and evaluating a user reports an unknown user
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("tables created"), "\(result)")
            #expect(FileManager.default.fileExists(atPath: path))
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM users") == 0)
            let evaluate = try await workspace.journey(["evaluate", "1", "--db", path])
            expectCleanFailure(evaluate, status: 67, mentions: ["1"])
        }
    }
}
