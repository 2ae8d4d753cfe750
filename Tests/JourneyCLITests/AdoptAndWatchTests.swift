import Foundation
import GRDB
import Testing

/// The bundled rules file of the repository.
private let bundledRules = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Rules/mundo-tango.yaml").path

/// SPEC §9 and §5: `journey rules adopt`, the precedence of the rule sets, `status`, `journey watch`.
@Suite("Adopted rules and journey watch")
struct AdoptAndWatchTests {
    @Test("An adopted set is used by every command unless --rules or $JOURNEY_RULES say otherwise; status shows it and warns")
    func adoptionAndPrecedence() async throws {
        try await withWorkspace { workspace in
            // Given a migrated database and a second version of the rules
            let db = try await workspace.platformDatabase()
            let raised = workspace.path("raised.yaml")
            try String(contentsOfFile: bundledRules, encoding: .utf8)
                .replacingOccurrences(of: "version: \"mundo-tango-1\"", with: "version: \"mundo-tango-raised\"")
                .write(toFile: raised, atomically: true, encoding: .utf8)

            // When it is adopted
            let adopt = try await workspace.journey(["rules", "adopt", raised, "--db", db])
            #expect(adopt.status == 0, "\(adopt)")
            #expect(adopt.stdout.contains("Adopted rules mundo-tango-raised"), "\(adopt)")

            // Then commands use it, unless --rules or $JOURNEY_RULES name another file
            func version(_ arguments: [String], environment: [String: String] = [:]) async throws -> String? {
                let run = try await workspace.journey(["batch", "--db", db, "--dry-run", "--json"] + arguments, environment: environment)
                return try run.jsonObject()["rules_version"] as? String
            }
            #expect(try await version([]) == "mundo-tango-raised")
            #expect(try await version([], environment: ["JOURNEY_RULES": bundledRules]) == "mundo-tango-1")
            #expect(try await version(["--rules", bundledRules], environment: ["JOURNEY_RULES": raised]) == "mundo-tango-1")

            // And when a batch decides with another version, status names the adopted set and warns
            let batch = try await workspace.journey(["batch", "--db", db, "--rules", bundledRules])
            #expect(batch.status == 0, "\(batch)")
            let status = try await workspace.journey(["status", "--db", db, "--json"])
            let report = try status.jsonObject()
            #expect((report["adopted_rules"] as? [String: Any])?["version"] as? String == "mundo-tango-raised")
            let warnings = report["warnings"] as? [String] ?? []
            #expect(warnings.contains { $0.contains("other rules than the adopted mundo-tango-raised: mundo-tango-1") }, "\(warnings)")
            let text = try await workspace.journey(["status", "--db", db])
            #expect(text.stdout.contains("Rules in force: mundo-tango-raised"), "\(text)")

            // And a malformed file is refused (65) and adopts nothing
            try "version: x\nstages: []\n".write(toFile: workspace.path("bad.yaml"), atomically: true, encoding: .utf8)
            let bad = try await workspace.journey(["rules", "adopt", workspace.path("bad.yaml"), "--db", db])
            #expect(bad.status == 65, "\(bad)")
            let adoptions = try await DatabaseQueue(path: db).read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journey_rules") }
            #expect(adoptions == 1)
        }
    }

    @Test("watch prints the moves another process commits, as JSON lines; --since resumes after an id")
    func watchFollowsAndResumes() async throws {
        try await withWorkspace { workspace in
            // Given a migrated database, and `journey watch --since 0 --json` running
            let db = try await workspace.platformDatabase()
            let watching = Task { try await workspace.journey(["watch", "--db", db, "--since", "0", "--json", "--interval", "50"], timeout: .seconds(4)) }
            try await Task.sleep(for: .milliseconds(500))

            // When a batch (another process) moves users
            let batch = try await workspace.journey(["batch", "--db", db, "--chunk-size", "25"])
            #expect(batch.status == 0, "\(batch)")
            let watched = try await watching.value

            // Then watch printed one JSON object per committed move, in id order
            let written = try await DatabaseQueue(path: db).read { try Int64.fetchAll($0, sql: "SELECT id FROM journey_transitions ORDER BY id") }
            #expect(!written.isEmpty)
            let lines = watched.stdout.split(separator: "\n").map(String.init)
            let objects = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
            #expect(objects.compactMap { ($0["id"] as? NSNumber)?.int64Value } == written, "\(watched)")
            #expect(objects.allSatisfy { $0["source"] as? String == "batch" && $0["to_state"] is String && $0["user_id"] is NSNumber })

            // And a watch resumed after the middle id replays exactly the rest, as text lines
            let middle = written[written.count / 2]
            let resumed = try await workspace.journey(["watch", "--db", db, "--since", String(middle)], timeout: .seconds(1))
            let shown = resumed.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Int64($0.dropFirst()) } }
            #expect(shown == Array(written.drop { $0 <= middle }), "\(resumed)")

            // And a bad --since is a usage error
            #expect(try await workspace.journey(["watch", "--db", db, "--since", "-1"]).status == 64)
            #expect(try await workspace.journey(["watch", "--db", db, "--interval", "5"]).status == 64)
        }
    }
}
