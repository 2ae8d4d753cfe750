import Foundation
import JourneyCore
import Testing

/// SPEC §8: a stored stage that is NULL (read as empty) or blank means "never evaluated": the
/// first stage of the rules in force, whatever it is called; any other text is a stage or unknown.
@Suite("Stored stages never evaluated")
struct NeverEvaluatedTests {
    /// Blank values: empty (NULL reads as empty), spaces, a tab, a newline, a no-break space.
    static let blank = ["", " ", "   ", "\t", "\n", "\u{00A0}"]

    @Test("a blank stored stage evaluates from the first stage of the default rules", arguments: blank)
    func blankIsTheFirstStage(_ stored: String) throws {
        // Given the default rules and a user who fits J2 and J3
        let rules = try Fixture.defaultRules()
        let metrics = UserMetrics(
            posts: 60, followers: 30, following: 30, eventsOrganized: 3, onboardingComplete: true,
            subscriptionTier: "basic", role: "user", signedUpAt: Fixture.daysAgo(60), stageEnteredAt: Fixture.daysAgo(60))

        // When the blank stored value is evaluated
        let evaluation = try rules.evaluate(storedStage: stored, metrics: metrics, now: Fixture.now)

        // Then it starts in J1 and moves J1→J2→J3 as two transitions
        #expect(evaluation.start == "J1_NEW_USER")
        #expect(evaluation.transitions.map { "\($0.from)->\($0.to)" } == ["J1_NEW_USER->J2_ACTIVE_USER", "J2_ACTIVE_USER->J3_POWER_USER"])
        #expect(RuleSet.isNeverEvaluated(stored))
    }

    @Test("the first stage is the rules' own, not a fixed name")
    func firstStageOfOtherRules() throws {
        // Given rules whose first stage is J1_VISITOR
        let rules = try Fixture.rules(
            """
            version: "other"
            stages:
              - id: J1_VISITOR
                title: Visitor
              - id: J2_MEMBER
                title: Member
                criteria:
                  - posts >= 1
            """)

        // When an empty stage is resolved and evaluated
        // Then it is J1_VISITOR
        #expect(try rules.resolve(stored: "") == "J1_VISITOR")
        #expect(try rules.evaluate(storedStage: "  ", metrics: UserMetrics(posts: 0), now: Fixture.now).stage == "J1_VISITOR")
    }

    @Test(
        "text around a stage id, or any other text, is not blank: an unknown stage",
        arguments: [" J1_NEW_USER", "J1_NEW_USER\n", "NULL", "null", "0", "\u{0}"])
    func otherTextIsUnknown(_ stored: String) throws {
        let rules = try Fixture.defaultRules()
        #expect(!RuleSet.isNeverEvaluated(stored))
        #expect(throws: TransitionRefusal.unknownStage(value: stored, rulesSource: "Rules/mundo-tango.yaml (version mundo-tango-1)")) {
            try rules.resolve(stored: stored)
        }
    }
}
