import Foundation
import JourneyCore
import Testing

/// `rules check` refuses a rule set that could move a user out of a stage and back on unchanged metrics.
@Suite("No oscillation: a cycle of edges whose criteria can all hold is refused; exclusive ones are accepted")
struct OscillationTests {
    /// A three-stage rule set whose J3 needs `j3` and whose declared backward edge J3→J2 needs `back`.
    static func demotion(j3: String, back: String) -> String {
        """
        version: "cycle"
        stages:
          - {id: J1_A, title: A}
          - {id: J2_B, title: B, criteria: [posts >= 1]}
          - {id: J3_C, title: C, criteria: [\(j3)]}
        edges:
          - {from: J3_C, to: J2_B, kind: backward, reason: back, criteria: [\(back)]}
        """
    }

    @Test("the reported case: J3 on posts >= 50, back to J2 on posts_last_30_days < 1 — a user with 60 old posts would cycle")
    func reportedCase() throws {
        // Given the rules of the report
        let yaml = Self.demotion(j3: "posts >= 50", back: "posts_last_30_days < 1")

        // When they are checked
        let error = try #require(Fixture.loadError(yaml, source: "demote.yaml"))

        // Then they are refused at the backward edge's line, naming both edges and values that cycle
        guard case let .invalid(source, line, place, problem) = error else {
            Issue.record("expected .invalid, got \(error)")
            return
        }
        #expect(source == "demote.yaml")
        #expect(line == 7)
        #expect(place == "edges J3_C → J2_B → J3_C")
        #expect(problem.contains("posts = 50, posts_last_30_days = 0"), "\(problem)")
        #expect(problem.contains("J3_C → J2_B (declared, line 7)"), "\(problem)")
        #expect(problem.contains("J2_B → J3_C (criteria of J3_C, line 5)"), "\(problem)")
    }

    /// Rule sets where some metrics meet every edge of a cycle: each must be refused.
    static let cycling: [(name: String, j3: String, back: String)] = [
        ("integers that overlap", "posts >= 10", "posts <= 10"),
        ("a minimum stay on the way back only slows the cycle", "posts >= 10", "'days_in_stage >= 30'"),
        ("a minimum stay on both edges", "'days_in_stage >= 7'", "'days_in_stage < 3'"),
        ("a boolean both ways", "onboarding_complete", "role == admin"),
        ("texts that share a value", "'subscription_tier in [basic, pro]'", "subscription_tier != basic"),
        ("an any-of group that holds through its second member", "'posts >= 10'", "{any: [posts < 10, followers >= 1]}"),
        ("an integer list", "'events_organized in [2, 3]'", "'events_organized in [3, 4]'"),
        ("no criteria on the way back", "posts >= 10", "'days_since_signup >= 0'"),
    ]

    @Test("a cycle whose criteria can all hold at once is refused", arguments: cycling.indices)
    func cyclesRefused(_ index: Int) throws {
        let (name, j3, back) = Self.cycling[index]
        // Given a demotion whose criteria overlap the way back up
        let yaml = Self.demotion(j3: j3, back: back)

        // When it is checked, Then it is refused as a cycle
        let error = Fixture.loadError(yaml, source: "cycle.yaml")
        guard case let .invalid(_, _, place, _)? = error else {
            Issue.record("\(name): accepted or wrong error \(String(describing: error))\n\(yaml)")
            return
        }
        #expect(place == "edges J3_C → J2_B → J3_C", "\(name)")
    }

    /// Rule sets whose backward edge excludes the way back: each must load, and no user cycles.
    static let exclusive: [(name: String, j3: String, back: String)] = [
        ("integers on both sides of a bound", "posts >= 50", "posts < 50"),
        ("recent activity required up, its absence down", "'posts >= 50', 'posts_last_30_days >= 1'", "posts_last_30_days < 1"),
        ("a boolean flipped", "onboarding_complete", "onboarding_complete == false"),
        ("texts in disjoint sets", "'subscription_tier in [basic, pro]'", "'subscription_tier in [free]'"),
        ("a text excluded", "role == admin", "role != admin"),
        ("an any-of group whose every member clashes", "'posts >= 10'", "{any: [posts < 10, posts == 3]}"),
        ("integer lists without a common value", "'events_organized in [2, 3]'", "'events_organized in [0, 1]'"),
        ("an equality that the interval excludes", "'followers > 5'", "followers == 5"),
    ]

    @Test("a backward edge exclusive with the way back is accepted", arguments: exclusive.indices)
    func exclusiveAccepted(_ index: Int) throws {
        let (name, j3, back) = Self.exclusive[index]
        let yaml = Self.demotion(j3: j3, back: back)
        #expect(Fixture.loadError(yaml, source: "exclusive.yaml") == nil, "\(name)\n\(yaml)")
    }

    @Test("a longer cycle through 'from: any' backward edges is refused at the first one that can turn")
    func longerCycle() throws {
        // Given every later stage sent back to J1 when it has no posts, and J2, J3 needing only followers
        let yaml = """
            version: "any-back"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B, criteria: [followers >= 1]}
              - {id: J3_C, title: C, criteria: [followers >= 5]}
            edges:
              - {from: any, to: J1_A, kind: backward, reason: silent, criteria: [posts == 0]}
            """
        // When checked, Then the first cycle J2 → J1 → J2 is named
        guard case let .invalid(_, _, place, problem)? = Fixture.loadError(yaml, source: "any.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(place == "edges J2_B → J1_A → J2_B")
        #expect(problem.contains("followers = 1, posts = 0"), "\(problem)")
    }

    @Test("an accepted demotion settles: a user with unchanged data moves back once and stays, night after night")
    func demotionSettles() throws {
        // Given J3 needing recent posts, and the way back when there are none
        let rules = try Fixture.rules(Self.demotion(j3: "'posts >= 50', 'posts_last_30_days >= 1'", back: "posts_last_30_days < 1"))
        // And a power user with 60 old posts and none in the last 30 days
        var metrics = UserMetrics(posts: 60, postsLast30Days: 0, stageEnteredAt: Fixture.daysAgo(100))
        var stage = "J3_C"
        var path: [String] = []

        // When six nightly runs evaluate the unchanged data
        for night in 0..<6 {
            let now = Fixture.now.addingTimeInterval(Double(night) * 86_400)
            let evaluation = try rules.evaluate(storedStage: stage, metrics: metrics, now: now)
            path += evaluation.path
            if !evaluation.transitions.isEmpty { metrics.stageEnteredAt = now }
            stage = evaluation.stage.rawValue
        }

        // Then the user went back to J2 once and stayed there
        #expect(path == ["J3_C→J2_B"])
        #expect(stage == "J2_B")
    }

    /// `count` stages, each entered on `metric(k) >= k`, a skip from every earlier stage into each, and a way
    /// back from the last to J1 that clashes only with the last edge (so every path up must be looked at).
    static func manyPaths(_ count: Int, metrics: [String], back: String, last: String) -> String {
        var lines = ["version: \"many\"", "stages:", "  - {id: J1_A, title: A}"]
        for k in 2...count {
            lines.append("  - {id: J\(k)_A, title: A, criteria: [\(k == count ? last : "\(metrics[k % metrics.count]) >= \(k)")]}")
        }
        lines.append("edges:")
        for k in 3..<count { lines.append("  - {from: any, to: J\(k)_A, kind: skip, reason: r, criteria: [\(metrics[k % metrics.count]) >= \(k)]}") }
        lines.append("  - {from: J\(count)_A, to: J1_A, kind: backward, reason: b, criteria: [\(back)]}")
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("forty stages with a skip into each from every earlier one (2^38 paths up) are checked at once")
    func manyPathsStayFast() throws {
        // Given paths up that all reach the same values on the way (posts >= k), clashing only at the end
        let yaml = Self.manyPaths(40, metrics: ["posts"], back: "posts < 40", last: "posts >= 40")

        // When checked, Then the rules load, quickly: each (stage, values) state is visited once
        let clock = ContinuousClock()
        let elapsed = try clock.measure { _ = try Fixture.rules(yaml) }
        #expect(elapsed < .seconds(5), "\(elapsed)")
    }

    @Test("rules whose ways back are too many to check are refused at the backward edge, never accepted unchecked")
    func tooIntricateRefused() throws {
        // Given forty stages whose skips constrain eight different counts, so the values on the way multiply
        let yaml = Self.manyPaths(
            40,
            metrics: [
                "posts", "posts_last_30_days", "followers", "following", "connections",
                "events_organized", "events_attended", "days_since_signup",
            ],
            back: "role == x", last: "role == y")

        // When checked, Then the file is refused at the backward edge, saying why
        guard case let .invalid(_, line, place, problem)? = Fixture.loadError(yaml, source: "many.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(line == 81)
        #expect(place == "edge J40_A → J1_A")
        #expect(problem.contains("too many to check for cycles"), "\(problem)")
    }

    @Test("the default rules and the every-feature fuzz seed pass the check")
    func shippedRulesPass() throws {
        _ = try Fixture.defaultRules()
        let text = try String(contentsOf: Fixture.repositoryRoot.appending(path: "Fixtures/fuzz-corpus/every-feature.yaml"), encoding: .utf8)
        _ = try Fixture.rules(text, source: "every-feature.yaml")
    }
}
