import Foundation
import JourneyCore
import Testing

@Suite("Journeys longer than nine stages")
struct LongJourneyTests {
    /// Eleven stages J1…J11, each needing one more post than the last.
    static let yaml: String = {
        var lines = ["version: \"long\"", "stages:", "  - id: J1_S", "    title: S1"]
        for number in 2...11 {
            lines += ["  - id: J\(number)_S", "    title: S\(number)", "    criteria:", "      - posts >= \(number - 1)"]
        }
        return lines.joined(separator: "\n")
    }()

    @Test("an eleven-stage rule set loads, with J10_ and J11_ in positions 9 and 10")
    func loads() throws {
        // Given eleven stages
        // When they are loaded
        let rules = try Fixture.rules(Self.yaml)

        // Then positions follow the J<n>_ prefixes
        #expect(rules.stages.count == 11)
        #expect(rules.position(of: "J10_S") == 9)
        #expect(rules.position(of: "J11_S") == 10)
    }

    @Test("a user with many posts walks every stage one at a time, J9→J10→J11 included")
    func walksEveryStage() throws {
        // Given eleven stages and a user with 10 posts
        let rules = try Fixture.rules(Self.yaml)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_S", metrics: UserMetrics(posts: 10), now: Fixture.now)

        // Then ten next moves, in order
        #expect(evaluation.path == (1...10).map { "J\($0)_S→J\($0 + 1)_S" })
        #expect(evaluation.stage == "J11_S")
    }

    @Test("J1→J10 names the eight skipped stages in journey order")
    func skipNamesStagesInOrder() throws {
        // Given eleven stages
        let rules = try Fixture.rules(Self.yaml)

        // When J1→J10 is requested
        // Then the refusal lists J2…J9 in journey order
        #expect(throws: TransitionRefusal.skipNotDeclared(from: "J1_S", to: "J10_S", skipped: (2...9).map { StageID("J\($0)_S") })) {
            try rules.requestTransition(storedStage: "J1_S", to: "J10_S", metrics: UserMetrics(posts: 100), now: Fixture.now)
        }
    }

    @Test("'J10_' in first place is refused: the prefix is the position, not a string prefix")
    func prefixIsWholeNumber() throws {
        // Given a first stage named J10_…
        let yaml = """
            version: "bad"
            stages:
              - {id: J10_S, title: S}
              - {id: J2_S, title: S}
            """

        // When loaded
        let error = Fixture.loadError(yaml, source: "inline.yaml")

        // Then it is refused at the first stage's id
        #expect(
            error
                == .invalid(
                    source: "inline.yaml", line: 3, place: "stage J10_S",
                    problem: "stage 1 must have an id starting with 'J1_' (ids are in journey order)"))
    }

    @Test("StageID's Comparable order is journey order: J2_ comes before J10_")
    func stageIDOrder() {
        // Given the ids of stages 2 and 10
        let second = StageID("J2_S")
        let tenth = StageID("J10_S")

        // When they are compared and sorted
        let sorted = [tenth, second].sorted()

        // Then stage 2 comes first, as the J<n>_ prefix says
        #expect(second < tenth)
        #expect(sorted == [second, tenth])
    }
}

@Suite("A pinned user (evaluate with moving: false)")
struct PinnedEvaluationTests {
    @Test("keeps the stored stage but still gets the checklist toward the next stage")
    func pinnedKeepsStage() throws {
        // Given the default rules and a user who fits J2 and J3
        let rules = try Fixture.defaultRules()
        let metrics = PlatformCasesTests.heavyUser(onboarded: true)

        // When evaluated without moving
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now, moving: false)

        // Then no move is made and the checklist toward J2 shows every criterion met
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.stage == "J1_NEW_USER")
        let next = try #require(evaluation.next)
        #expect(next.to == "J2_ACTIVE_USER")
        #expect(next.isMet)
        #expect(next.checks.allSatisfy { $0.met })
    }
}
