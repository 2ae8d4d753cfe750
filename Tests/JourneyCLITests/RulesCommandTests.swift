import Foundation
import Testing

/// `journey rules check` and `journey rules graph`.
@Suite("journey rules")
struct RulesCommandTests {
    /// `Rules/mundo-tango.yaml` in this repository, found from this file.
    static let defaultRulesPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Rules/mundo-tango.yaml").path

    @Test("rules check validates the bundled default set from any working directory")
    func checkDefault() async throws {
        try await withWorkspace { workspace in
            // Given: a working directory with no rule files
            // When: checking the default set
            let result = try await workspace.journey(["rules", "check"])

            // Then: exit 0, "valid", the version and the four stages
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains(": valid, version mundo-tango-1, 4 stages"), "\(result)")
            for stage in ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER", "J4_SUPER_ADMIN"] {
                #expect(result.stdout.contains(stage), "\(result)")
            }
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    @Test("rules check PATH validates that file")
    func checkFile() async throws {
        try await withWorkspace { workspace in
            // Given: the repository's default rules file, named by path
            try #require(FileManager.default.fileExists(atPath: Self.defaultRulesPath))

            // When: checking it
            let result = try await workspace.journey(["rules", "check", Self.defaultRulesPath])

            // Then: exit 0, valid, and the file is named
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("mundo-tango.yaml: valid"), "\(result)")
        }
    }

    /// Rule files that must be refused, each with a word the message must contain.
    static let badRules: [(name: String, yaml: String, mentions: String)] = [
        ("syntax.yaml", "version: \"1\"\nstages: [\n  - id: J1\n", "syntax.yaml"),
        (
            "unknown-metric.yaml",
            """
            version: "1"
            stages:
              - id: J1_A
                title: A
              - id: J2_B
                title: B
                criteria:
                  - karma >= 3
            """, "karma"
        ),
        ("no-stages.yaml", "version: \"1\"\nstages: []\n", "no-stages.yaml"),
        ("empty.yaml", "", "empty.yaml"),
    ]

    @Test("rules check refuses a malformed file with status 65 naming the file", arguments: badRules)
    func checkBadFile(_ bad: (name: String, yaml: String, mentions: String)) async throws {
        try await withWorkspace { workspace in
            // Given: a malformed rule file
            try Data(bad.yaml.utf8).write(to: workspace.url.appendingPathComponent(bad.name))

            // When: checking it (relative to the working directory)
            let result = try await workspace.journey(["rules", "check", bad.name])

            // Then: 65, one line naming the file and the problem
            expectCleanFailure(result, status: 65, mentions: [bad.name, bad.mentions])
        }
    }

    @Test("rules check on a missing file: 66 naming it")
    func checkMissingFile() async throws {
        try await withWorkspace { workspace in
            // Given: no file named missing.yaml
            // When: checking it
            let result = try await workspace.journey(["rules", "check", "missing.yaml"])

            // Then: 66, one line naming the file
            expectCleanFailure(result, status: 66, mentions: ["missing.yaml"])
        }
    }

    @Test("rules graph draws mermaid by default and dot on request")
    func graph() async throws {
        try await withWorkspace { workspace in
            // Given/When: the default set drawn in both formats
            let mermaid = try await workspace.journey(["rules", "graph"])
            let dot = try await workspace.journey(["rules", "graph", "--format", "dot"])

            // Then: a mermaid flowchart with every stage and the dashed declared skip
            #expect(mermaid.status == 0, "\(mermaid)")
            #expect(mermaid.stdout.hasPrefix("flowchart LR\n"), "\(mermaid)")
            #expect(mermaid.stdout.contains("J1_NEW_USER -->"), "\(mermaid)")
            #expect(mermaid.stdout.contains("-.->|\"skip: "), "\(mermaid)")

            // Then: a Graphviz digraph, closed, with the same edges
            #expect(dot.status == 0, "\(dot)")
            #expect(dot.stdout.hasPrefix("digraph"), "\(dot)")
            #expect(dot.stdout.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("}"), "\(dot)")
            #expect(dot.stdout.contains("J1_NEW_USER -> J2_ACTIVE_USER"), "\(dot)")
            #expect(dot.stdout.contains("style=dashed"), "\(dot)")
        }
    }

    @Test("rules graph refuses an unknown format (usage error)")
    func graphUnknownFormat() async throws {
        try await withWorkspace { workspace in
            // Given/When: an unknown format
            let result = try await workspace.journey(["rules", "graph", "--format", "svg"])

            // Then: 64 with the usage
            expectUsageFailure(result, mentions: ["svg"])
        }
    }
}
