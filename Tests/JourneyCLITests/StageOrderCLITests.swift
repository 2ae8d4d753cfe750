import Foundation
import Testing

/// status, doctor, batch and graph list stages in the rules' order: with eleven stages, J10 and J11 after J9.
@Suite("Stage order from the rules: status, doctor, batch summary, graph")
struct StageOrderCLITests {
    /// Eleven stages J1_NEW_USER, J2_S2 … J11_S11, each entered with one more post than the last.
    static let rules: String = {
        var lines = ["version: \"eleven-1\"", "stages:", "  - {id: J1_NEW_USER, title: S1}"]
        for number in 2...11 { lines.append("  - {id: J\(number)_S\(number), title: S\(number), criteria: [posts >= \(number - 1)]}") }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// Users 1…11 with 0…10 posts (user n can walk to stage n), and user 12 in a stage the rules do not know.
    static let rows: String = {
        var sql = ""
        for user in 1...12 {
            sql += "INSERT INTO users(id, email, created_at) VALUES (\(user), 'u\(user)@x', '2025-01-01 00:00:00');\n"
            for post in 0..<max(0, user - 1) where user <= 11 {
                sql += "INSERT INTO posts(user_id, created_at) VALUES (\(user), '2025-02-0\(1 + post % 9) 00:00:00');\n"
            }
        }
        return sql + "UPDATE users SET customer_journey_state = 'J10_RETIRED' WHERE id = 12;\n"
    }()

    @Test("the reported case: after a batch with eleven stages, status lists J1…J11 in order, then the unknown stage")
    func statusFunnel() async throws {
        try await withWorkspace { workspace in
            // Given the eleven-stage rules and users spread over them by a batch
            let db = workspace.path("eleven.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let rules = try SmallDatabase.write(Self.rules, to: "eleven.yaml", in: workspace)
            let batch = try await workspace.journey(["batch", "--db", db, "--rules", rules])
            #expect(batch.status == 0, "\(batch)")

            // When status is asked with the same rules
            let text = try await workspace.journey(["status", "--db", db, "--rules", rules])
            let json = try await workspace.journey(["status", "--db", db, "--rules", rules, "--json"])

            // Then the funnel is in the rules' order, every stage shown, the unknown one last and marked
            let expected = ["J1_NEW_USER"] + (2...11).map { "J\($0)_S\($0)" } + ["J10_RETIRED"]
            let funnel = try #require(try json.jsonObject()["funnel"] as? [[String: Any]])
            #expect(funnel.map { $0["stage"] as? String } == expected)
            #expect(funnel.map { $0["users"] as? Int } == Array(repeating: 1, count: 12))
            #expect(funnel.map { $0["known"] as? Bool } == Array(repeating: true, count: 11) + [false])
            let lines = text.stdout.split(separator: "\n").map(String.init)
            let positions = expected.map { stage in lines.firstIndex { $0.hasPrefix("  \(stage) ") } ?? -1 }
            #expect(positions == positions.sorted() && !positions.contains(-1), "\(text)")
            #expect(lines.contains { $0.hasPrefix("  J10_RETIRED") && $0.contains("(unknown to the rules)") }, "\(text)")
            #expect(text.stdout.contains("Stages unknown to the rules eleven-1: 'J10_RETIRED' (1 user)"), "\(text)")

            // And the edges too: J1→J2 … J9→J10, J10→J11, never J10 before J2
            let edges = try #require(try json.jsonObject()["edges"] as? [[String: Any]])
            let froms = edges.map { $0["from"] as? String ?? "?" }
            #expect(froms == ["J1_NEW_USER"] + (2...10).map { "J\($0)_S\($0)" }, "\(froms)")
        }
    }

    @Test("the batch summary lists its edges in the rules' order")
    func batchSummary() async throws {
        try await withWorkspace { workspace in
            let db = workspace.path("eleven.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let rules = try SmallDatabase.write(Self.rules, to: "eleven.yaml", in: workspace)
            let batch = try await workspace.journey(["batch", "--db", db, "--rules", rules, "--dry-run"])
            let edgeLines = batch.stdout.split(separator: "\n").filter { $0.contains(" → ") }.map { $0.trimmingCharacters(in: .whitespaces) }
            let froms = edgeLines.map { String($0.split(separator: " ").first ?? "") }
            #expect(froms == ["J1_NEW_USER"] + (2...10).map { "J\($0)_S\($0)" }, "\(batch)")
        }
    }

    @Test("doctor takes --rules like the batch: J10 and J11 are known with the eleven-stage rules, unknown (in J order) without")
    func doctorRules() async throws {
        try await withWorkspace { workspace in
            // Given users moved into J2…J11 by a batch with the eleven-stage rules, and no unknown stage
            let db = workspace.path("eleven.sqlite")
            try SmallDatabase.create(db, Self.rows + "DELETE FROM users WHERE id = 12;")
            let rules = try SmallDatabase.write(Self.rules, to: "eleven.yaml", in: workspace)
            #expect(try await workspace.journey(["batch", "--db", db, "--rules", rules]).status == 0)

            // When doctor checks with the same rules, Then all is well
            let same = try await workspace.journey(["doctor", "--db", db, "--rules", rules])
            #expect(same.status == 0, "\(same)")

            // When it checks with the default rules, Then the ten unknown stages are listed J2…J11, J10 after J9
            let other = try await workspace.journey(["doctor", "--db", db])
            #expect(other.status == 1, "\(other)")
            let line = try #require(other.stdout.split(separator: "\n").first { $0.contains("stages unknown to the rules") })
            let named = (2...11).map { "'J\($0)_S\($0)'" }
            let positions = named.map { line.range(of: $0)?.lowerBound }
            #expect(!positions.contains(nil) && positions.map { $0! } == positions.map { $0! }.sorted(), "\(line)")
        }
    }

    @Test("rules graph draws the stages in the rules' order")
    func graph() async throws {
        try await withWorkspace { workspace in
            let rules = try SmallDatabase.write(Self.rules, to: "eleven.yaml", in: workspace)
            for format in ["mermaid", "dot"] {
                let graph = try await workspace.journey(["rules", "graph", rules, "--format", format])
                #expect(graph.status == 0, "\(graph)")
                let lines = graph.stdout.split(separator: "\n").map(String.init)
                let stages = ["J1_NEW_USER"] + (2...11).map { "J\($0)_S\($0)" }
                let positions = stages.map { stage in lines.firstIndex { $0.hasPrefix("    \(stage)[") || $0.hasPrefix("    \(stage) [") } ?? -1 }
                #expect(positions == positions.sorted() && !positions.contains(-1), "\(format): \(graph)")
            }
        }
    }
}
