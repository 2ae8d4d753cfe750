import Foundation
import JourneyCore
import Testing

/// Journey order comes from the rules: J10 and J11 after J9, aliases by their stage, unknown values last.
@Suite("RuleSet.order: stored values in the rules' order")
struct StageOrderTests {
    @Test(
        "eleven stages sort J1…J11, an alias after its stage, a never-evaluated value with the first, unknown values after every stage (J10_X after J9_X among them)"
    )
    func elevenStages() throws {
        // Given the eleven-stage rules with an alias for J2
        let rules = try Fixture.rules(LongJourneyTests.yaml + "\naliases:\n  OLD_TWO: J2_S\n")
        let stored = ["J11_S", "J10_S", "LEGACY", "J2_S", "J1_S", "OLD_TWO", "J9_S", "J10_GONE", "J9_GONE", "", "J3_S"]

        // When sorted by the rules' order
        let sorted = stored.sorted { rules.order(of: $0) < rules.order(of: $1) }

        // Then the stages come in position order, the alias after J2, "never evaluated" ("") with the
        // first stage it means, the unknown values last
        #expect(sorted == ["J1_S", "", "J2_S", "OLD_TWO", "J3_S", "J9_S", "J10_S", "J11_S", "J9_GONE", "J10_GONE", "LEGACY"])
        #expect(rules.knows(stored: "OLD_TWO") && rules.knows(stored: "J11_S") && rules.knows(stored: ""))
        #expect(!rules.knows(stored: "J10_GONE"))
    }
}
