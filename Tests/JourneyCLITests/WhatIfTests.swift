import Foundation
import Testing

/// `batch --dry-run --rules raised.yaml` shows both directions: the moves, and per stage who would no longer qualify.
@Suite("The what-if of a rules change shows who would no longer meet their stage's criteria")
struct WhatIfTests {
    static let base = """
        version: "base-1"
        stages:
          - {id: J1_NEW_USER, title: New}
          - {id: J2_ACTIVE_USER, title: Active, criteria: [posts >= 1]}
          - {id: J3_POWER_USER, title: Power, criteria: [posts >= 5]}
        """

    /// A higher bar for J2 and J3; J3 also wants a month in J2 (a criterion about the stay before the move).
    static let raised = """
        version: "raised-1"
        stages:
          - {id: J1_NEW_USER, title: New}
          - {id: J2_ACTIVE_USER, title: Active, criteria: [posts >= 2]}
          - {id: J3_POWER_USER, title: Power, criteria: [posts >= 10, days_in_stage >= 30]}
        """

    /// User 1: J3 with 6 posts (short of the raised J3). User 2: J3 with 12 posts, entered yesterday.
    /// User 3: J2 with 1 post (short of the raised J2). User 4: J2 with 3 posts. User 5: J3 with 6 posts,
    /// pinned. User 6: J1 with no post.
    static let rows: String = {
        let posts = [1: 6, 2: 12, 3: 1, 4: 3, 5: 6, 6: 0]
        let stages = [1: "J3_POWER_USER", 2: "J3_POWER_USER", 3: "J2_ACTIVE_USER", 4: "J2_ACTIVE_USER", 5: "J3_POWER_USER", 6: "J1_NEW_USER"]
        var sql = ""
        for user in 1...6 {
            let entered = user == 2 ? "datetime('now', '-1 day')" : "'2025-01-01 00:00:00'"
            sql += """
                INSERT INTO users(id, email, created_at, customer_journey_state, last_journey_update)
                VALUES (\(user), 'u\(user)@x', '2024-01-01 00:00:00', '\(stages[user]!)', \(entered));

                """
            for _ in 0..<posts[user]! { sql += "INSERT INTO posts(user_id, created_at) VALUES (\(user), '2025-01-02 00:00:00');\n" }
        }
        return sql + "INSERT INTO journey_pins(user_id, stage, reason, created_at) VALUES (5, 'J3_POWER_USER', 'kept', '2025-01-03 00:00:00');\n"
    }()

    @Test("the reported case: a raised bar moves no one, and names per stage the users who would no longer qualify")
    func raisedBar() async throws {
        try await withWorkspace { workspace in
            // Given the users above and the raised rules
            let db = workspace.path("whatif.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let raised = try SmallDatabase.write(Self.raised, to: "raised.yaml", in: workspace)
            let before = try Direct.fingerprint(db)

            // When the what-if runs, as text and JSON
            let text = try await workspace.journey(["batch", "--db", db, "--rules", raised, "--dry-run"])
            let json = try await workspace.journey(["batch", "--db", db, "--rules", raised, "--dry-run", "--json"])

            // Then no one would move, and J2 and J3 each lose one user (the pinned one and the recent J3 apart)
            #expect(text.status == 0, "\(text)")
            #expect(text.stdout.contains("would move      0"), "\(text)")
            #expect(text.stdout.contains("would no longer meet their stage's criteria  2"), "\(text)")
            let lines = text.stdout.split(separator: "\n").map(String.init)
            let j2 = try #require(lines.firstIndex { $0.hasPrefix("    J2_ACTIVE_USER") && $0.hasSuffix("1  users 3") }, "\(text)")
            let j3 = try #require(lines.firstIndex { $0.hasPrefix("    J3_POWER_USER") && $0.hasSuffix("1  users 1") }, "\(text)")
            #expect(j2 < j3)
            let report = try json.jsonObject()
            #expect(report["transitions"] as? Int == 0)
            let shortfall = try #require(report["no_longer_meeting"] as? [String: [String: Any]], "\(json)")
            #expect(shortfall.keys.sorted() == ["J2_ACTIVE_USER", "J3_POWER_USER"])
            #expect(shortfall["J2_ACTIVE_USER"]?["users"] as? Int == 1 && shortfall["J2_ACTIVE_USER"]?["sample"] as? [Int] == [3])
            #expect(shortfall["J3_POWER_USER"]?["users"] as? Int == 1 && shortfall["J3_POWER_USER"]?["sample"] as? [Int] == [1])
            // And nothing was written
            #expect(try Direct.fingerprint(db) == before)
        }
    }

    @Test("with the rules in force nobody falls short; a lowered bar shows moves forward and no shortfall")
    func otherDirections() async throws {
        try await withWorkspace { workspace in
            let db = workspace.path("whatif.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let base = try SmallDatabase.write(Self.base, to: "base.yaml", in: workspace)
            let lowered = try SmallDatabase.write(Self.base.replacingOccurrences(of: "posts >= 5", with: "posts >= 3"), to: "lowered.yaml", in: workspace)

            // When the what-if runs with the rules in force, Then nobody moves or falls short
            let same = try await workspace.journey(["batch", "--db", db, "--rules", base, "--dry-run", "--json"])
            #expect(try same.jsonObject()["transitions"] as? Int == 0, "\(same)")
            #expect((try same.jsonObject()["no_longer_meeting"] as? [String: Any])?.isEmpty == true, "\(same)")

            // When the bar is lowered, Then user 4 (3 posts) would move to J3, and nobody falls short
            let low = try await workspace.journey(["batch", "--db", db, "--rules", lowered, "--dry-run", "--json"])
            #expect(try low.jsonObject()["edges"] as? [String: Int] == ["J2_ACTIVE_USER->J3_POWER_USER": 1], "\(low)")
            #expect((try low.jsonObject()["no_longer_meeting"] as? [String: Any])?.isEmpty == true, "\(low)")
        }
    }
}
