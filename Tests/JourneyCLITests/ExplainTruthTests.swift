import Foundation
import Testing

/// `journey explain` tells the truth: an any-of group is one criterion, numbered alike in text and JSON; a pin shows.
@Suite("explain counts an any-of group once, numbers alike in text and JSON, and shows a pin (explain, history)")
struct ExplainTruthTests {
    static let rules = """
        version: "groups-1"
        stages:
          - {id: J1_NEW_USER, title: New}
          - id: J2_ACTIVE_USER
            title: Active
            criteria:
              - posts >= 1
              - days_since_signup >= 7
              - any: [followers >= 10, following >= 10, events_organized >= 1]
              - onboarding_complete
        """

    /// User 1: two posts, one event organized, signed up long ago, not onboarded: the group holds through
    /// its third member, onboarding does not.
    static let rows = """
        INSERT INTO users(id, email, is_onboarding_complete, created_at, last_journey_update) VALUES
            (1, 'a@x', 0, '2020-01-01 00:00:00', '2020-01-01 00:00:00');
        INSERT INTO posts(user_id, created_at) VALUES (1, '2020-02-01 00:00:00'), (1, '2020-03-01 00:00:00');
        INSERT INTO events(organizer_id, title, start_date) VALUES (1, 'milonga', '2020-04-01 00:00:00');
        """

    @Test("the reported case: the group that holds through its third member shows [x], and 3 of 4 criteria are met")
    func groupThroughThirdMember() async throws {
        try await withWorkspace { workspace in
            // Given the user and the rules above
            let db = workspace.path("groups.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let rules = try SmallDatabase.write(Self.rules, to: "groups.yaml", in: workspace)

            // When explained, as text and as JSON
            let text = try await workspace.journey(["explain", "1", "--db", db, "--rules", rules])
            let json = try await workspace.journey(["explain", "1", "--db", db, "--rules", rules, "--json"])

            // Then the text counts the group once and marks it met, its members each with their own mark
            #expect(text.status == 0, "\(text)")
            let lines = text.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("Next: J2_ACTIVE_USER (Active): 3 of 4 criteria met"), "\(text)")
            #expect(lines.contains("  1. [x] posts 2 / 1"), "\(text)")
            #expect(lines.contains("  3. [x] any of:"), "\(text)")
            #expect(lines.contains("       [ ] followers 0 / 10"), "\(text)")
            #expect(lines.contains("       [x] events_organized 1 / 1"), "\(text)")
            #expect(lines.contains("  4. [ ] onboarding_complete false (needs == true)"), "\(text)")

            // And the JSON gives the same numbers and counts
            let next = try #require(try json.jsonObject()["next"] as? [String: Any])
            #expect(next["criteria_met"] as? Int == 3)
            #expect(next["criteria_count"] as? Int == 4)
            let criteria = try #require(next["criteria"] as? [[String: Any]])
            #expect(criteria.map { $0["criterion"] as? Int } == [1, 2, 3, 3, 3, 4])
            #expect(criteria.map { $0["any_of_group"] as? Int } == [nil, nil, 3, 3, 3, nil])
            #expect(criteria.map { $0["met"] as? Bool } == [true, true, false, false, true, false])
            #expect(criteria.map { $0["criterion_met"] as? Bool } == [true, true, true, true, true, false])
        }
    }

    @Test("every numbered text line matches the JSON's criterion and criterion_met")
    func textAndJSONAgree() async throws {
        try await withWorkspace { workspace in
            // Given a user whose group does not hold at all (no event), with the same rules
            let db = workspace.path("groups.sqlite")
            try SmallDatabase.create(db, Self.rows + "DELETE FROM events;")
            let rules = try SmallDatabase.write(Self.rules, to: "groups.yaml", in: workspace)

            // When explained both ways
            let text = try await workspace.journey(["explain", "1", "--db", db, "--rules", rules])
            let json = try await workspace.journey(["explain", "1", "--db", db, "--rules", rules, "--json"])

            // Then each JSON criterion number has one text line with the same mark
            let next = try #require(try json.jsonObject()["next"] as? [String: Any])
            let criteria = try #require(next["criteria"] as? [[String: Any]])
            var seen = Set<Int>()
            for criterion in criteria {
                let number = try #require(criterion["criterion"] as? Int)
                guard seen.insert(number).inserted else { continue }
                let mark = criterion["criterion_met"] as? Bool == true ? "[x]" : "[ ]"
                #expect(text.stdout.contains("  \(number). \(mark) "), "criterion \(number): \(text)")
            }
            #expect(text.stdout.contains("2 of 4 criteria met"), "\(text)")
            #expect(next["criteria_met"] as? Int == 2)
        }
    }

    @Test("a pin shows in explain (text and JSON) and in history (text and JSON)")
    func pinShows() async throws {
        try await withWorkspace { workspace in
            // Given the user, pinned by an operator
            let db = workspace.path("groups.sqlite")
            try SmallDatabase.create(db, Self.rows)
            let pin = try await workspace.journey(["pin", "1", "--reason", "VIP account", "--db", db])
            #expect(pin.status == 0, "\(pin)")

            // When explained and its history read
            let explain = try await workspace.journey(["explain", "1", "--db", db])
            let explainJSON = try await workspace.journey(["explain", "1", "--db", db, "--json"])
            let history = try await workspace.journey(["history", "1", "--db", db])
            let historyJSON = try await workspace.journey(["history", "1", "--db", db, "--json"])

            // Then each says the user is pinned, where and why
            #expect(explain.stdout.contains("Pinned in J1_NEW_USER since "), "\(explain)")
            #expect(explain.stdout.contains("VIP account"), "\(explain)")
            #expect(history.stdout.contains("Pinned in J1_NEW_USER since "), "\(history)")
            for result in [explainJSON, historyJSON] {
                let pinInfo = try #require(try result.jsonObject()["pin"] as? [String: Any], "\(result)")
                #expect(pinInfo["stage"] as? String == "J1_NEW_USER")
                #expect(pinInfo["reason"] as? String == "VIP account")
                #expect(pinInfo["pinned_at"] is String)
            }

            // And after unpinning, neither shows a pin
            _ = try await workspace.journey(["unpin", "1", "--db", db])
            let after = try await workspace.journey(["history", "1", "--db", db, "--json"])
            #expect(try after.jsonObject()["pin"] is NSNull, "\(after)")
            let explainAfter = try await workspace.journey(["explain", "1", "--db", db])
            #expect(!explainAfter.stdout.contains("Pinned"), "\(explainAfter)")
        }
    }
}
