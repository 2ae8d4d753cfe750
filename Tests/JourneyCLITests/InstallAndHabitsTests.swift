import Foundation
import Testing

/// Issue 12: one file to install (the rules are compiled in), and the habits of a command line:
/// log levels on stderr, shell completions.
@Suite("Install and habits")
struct InstallAndHabitsTests {
    @Test("the binary copied alone into an empty folder works from another working directory")
    func binaryAlone() async throws {
        try await withWorkspace { workspace in
            // Given: the executable alone in an empty folder (no resource bundle beside it),
            // and a demo database elsewhere
            let folder = workspace.url.appendingPathComponent("bin", isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let alone = folder.appendingPathComponent("journey")
            // (copied by cp: a write handle of this process would be inherited by the children that
            // parallel tests fork, and exec would then fail with "Text file busy")
            let copy = try await workspace.run(URL(fileURLWithPath: "/bin/cp"), [try JourneyBinary.require().path, alone.path])
            try #require(copy.status == 0, "\(copy)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["journey"])
            let db = workspace.path("demo.sqlite")
            let demo = try await workspace.run(alone, ["demo", "--users", "100", "--output", db])
            try #require(demo.status == 0, "\(demo)")

            // When: it checks the default rules, evaluates, runs the batch and the status
            for arguments in [["rules", "check"], ["evaluate", "5", "--db", db], ["batch", "--db", db], ["status", "--db", db]] {
                let result = try await workspace.run(alone, arguments)

                // Then: each succeeds with the default rules, nothing on stderr
                #expect(result.status == 0 && result.exitedNormally, "\(result)")
                #expect(result.stderr.isEmpty, "\(result)")
            }
        }
    }

    @Test("logs go to stderr: nothing by default, info with --verbose, debug with --log-level debug")
    func logLevels() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated platform database
            let db = try await workspace.platformDatabase()

            // When: the same read runs at the default level, with --verbose and with --log-level debug
            let quietByDefault = try await workspace.journey(["evaluate", "7", "--db", db, "--dry-run", "--json"])
            let verbose = try await workspace.journey(["evaluate", "7", "--db", db, "--dry-run", "--json", "--verbose"])
            let debug = try await workspace.journey(["batch", "--db", db, "--json", "--log-level", "debug"])

            // Then: stdout is the same report; stderr is empty, then one info line naming the
            // database and the rules (ISO-8601 UTC time), then the batch's own info line
            #expect(quietByDefault.status == 0 && quietByDefault.stderr.isEmpty, "\(quietByDefault)")
            #expect(verbose.status == 0, "\(verbose)")
            #expect(try verbose.jsonObject()["stage"] as? String == quietByDefault.jsonObject()["stage"] as? String, "\(verbose)")
            // (A loaded machine may add the slow-evaluation line, which --verbose shows too.)
            let lines = verbose.stderrLines.filter { !$0.contains("slow journey evaluation") }
            let line = try #require(lines.first, "\(verbose)")
            #expect(lines.count == 1, "\(verbose)")
            #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info journey: opened the database "#, options: .regularExpression) != nil, "\(line)")
            #expect(line.contains("database=\(db)") && line.contains("rules=Rules/mundo-tango.yaml") && line.contains("rules_version=mundo-tango-1"), "\(line)")
            #expect(debug.status == 0, "\(debug)")
            #expect(debug.stderrLines.contains { $0.contains(" info journey: journey batch finished ") }, "\(debug)")
        }
    }

    @Test("--quiet keeps the one-line errors; --quiet with --verbose is a usage error")
    func quiet() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated platform database
            let db = try await workspace.platformDatabase()

            // When: an unknown user is evaluated quietly, and the level options are combined
            let missing = try await workspace.journey(["evaluate", "9999", "--db", db, "--quiet"])
            let both = try await workspace.journey(["status", "--db", db, "--quiet", "--verbose"])

            // Then: the error is still reported (67, one line); the combination is refused (64)
            expectCleanFailure(missing, status: 67, mentions: ["9999"])
            expectUsageFailure(both, mentions: ["--quiet, --verbose and --log-level exclude each other"])
        }
    }

    @Test(
        "every subcommand takes --quiet, --verbose and --log-level",
        arguments: [
            ["evaluate"], ["explain"], ["history"], ["pin"], ["unpin"], ["batch"], ["status"], ["doctor"],
            ["migrate"], ["rules", "check"], ["rules", "graph"], ["generate"], ["demo"],
        ])
    func everyCommand(_ command: [String]) async throws {
        try await withWorkspace { workspace in
            // When: asking for the subcommand's help
            let help = try await workspace.journey(["help"] + command)

            // Then: the logging options are listed
            #expect(help.status == 0, "\(help)")
            for option in ["--quiet", "--verbose", "--log-level <level>"] {
                #expect(help.stdout.contains(option), "\(command): \(help)")
            }
        }
    }

    @Test("shell completion scripts are generated", arguments: ["bash", "zsh", "fish"])
    func completions(_ shell: String) async throws {
        try await withWorkspace { workspace in
            // When: asking for the completion script of a shell
            let script = try await workspace.journey(["--generate-completion-script", shell])

            // Then: a script that knows the subcommands
            #expect(script.status == 0, "\(script)")
            #expect(script.stdout.contains("evaluate") && script.stdout.contains("batch"), "\(script)")
        }
    }
}
