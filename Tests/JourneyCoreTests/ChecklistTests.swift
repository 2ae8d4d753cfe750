import Foundation
import JourneyCore
import Testing

/// Explain tells the truth: an any-of group is one criterion, met when any member holds.
@Suite("The checklist counts an any-of group once and numbers criteria by the lines of the requirement")
struct ChecklistTests {
    static let rules = """
        version: "groups"
        stages:
          - {id: J1_A, title: A}
          - id: J2_B
            title: B
            criteria:
              - posts >= 1
              - any: [followers >= 10, following >= 10, events_organized >= 1]
              - days_since_signup >= 7
              - onboarding_complete
        """

    @Test("the reported case: a group that holds through its third member is met, and counts once")
    func groupThroughThirdMember() throws {
        // Given a user who meets the group only through events_organized, and misses onboarding
        let rules = try Fixture.rules(Self.rules)
        let metrics = UserMetrics(posts: 2, eventsOrganized: 1, onboardingComplete: false, signedUpAt: Fixture.daysAgo(30))

        // When the checklist toward J2 is made
        let checklist = rules.checklist(for: try #require(rules.nextEdge(from: "J1_A")), metrics: metrics, now: Fixture.now)

        // Then there are 4 criteria, 3 of them met; the group (number 2) holds
        #expect(checklist.criteriaCount == 4)
        #expect(checklist.criteriaMet == 3)
        #expect(checklist.holds(criterion: 2))
        #expect(!checklist.holds(criterion: 4))
        // And the checks keep each member's own verdict under one shared number
        #expect(checklist.checks.map(\.number) == [1, 2, 2, 2, 3, 4])
        #expect(checklist.checks.map(\.met) == [true, false, false, true, true, false])
        #expect(checklist.checks.map(\.anyOfGroup) == [nil, 2, 2, 2, nil, nil])
    }

    /// Which member holds, and what the checklist must say about the group.
    static let members: [(name: String, metrics: UserMetrics, groupMet: Bool, met: Int)] = [
        ("the first member", UserMetrics(posts: 2, followers: 10), true, 2),
        ("the second member", UserMetrics(posts: 2, following: 12), true, 2),
        ("every member", UserMetrics(posts: 2, followers: 10, following: 10, eventsOrganized: 1), true, 2),
        ("no member", UserMetrics(posts: 2, followers: 9), false, 1),
        ("no member, nothing else either", UserMetrics(), false, 0),
    ]

    @Test("a group holds through any one member, and never counts more than once", arguments: members.indices)
    func groupMembers(_ index: Int) throws {
        let (name, metrics, groupMet, met) = Self.members[index]
        let rules = try Fixture.rules(Self.rules)
        let checklist = rules.checklist(for: try #require(rules.nextEdge(from: "J1_A")), metrics: metrics, now: Fixture.now)
        #expect(checklist.holds(criterion: 2) == groupMet, "\(name)")
        #expect(checklist.criteriaMet == met, "\(name)")
        #expect(checklist.criteriaCount == 4, "\(name)")
    }
}

/// What it takes to be in a stage, for the what-if of a rules change.
@Suite("RuleSet.meetsCriteria: whether a user in a stage still qualifies for it")
struct MeetsCriteriaTests {
    static let rules = """
        version: "meets"
        stages:
          - {id: J1_A, title: A}
          - {id: J2_B, title: B, criteria: [posts >= 2, days_in_stage >= 30]}
          - {id: J3_C, title: C, criteria: [posts >= 10]}
          - {id: J4_D, title: D, enter_from_previous: false, criteria: [role == admin]}
        edges:
          - {from: J1_A, to: J3_C, kind: skip, reason: imported, criteria: [role == imported]}
          - {from: any, to: J4_D, kind: skip, reason: admins, criteria: [role == admin]}
        """

    /// A stage, metrics, and whether the user meets that stage.
    static let cases: [(name: String, stage: StageID, metrics: UserMetrics, meets: Bool)] = [
        ("the first stage needs nothing", "J1_A", UserMetrics(), true),
        ("J2 met (days_in_stage left out: it measured the stay before the move)", "J2_B", UserMetrics(posts: 2, stageEnteredAt: Fixture.now), true),
        ("J2 short of posts", "J2_B", UserMetrics(posts: 1), false),
        ("J3 through its own criteria", "J3_C", UserMetrics(posts: 10), true),
        ("J3 through the declared skip into it", "J3_C", UserMetrics(posts: 0, role: "imported"), true),
        ("J3 by neither", "J3_C", UserMetrics(posts: 9, role: "user"), false),
        ("J4 whose role changed", "J4_D", UserMetrics(role: "user"), false),
        ("J4 with a missing role", "J4_D", UserMetrics(), false),
    ]

    @Test("each case", arguments: cases.indices)
    func meets(_ index: Int) throws {
        let (name, stage, metrics, meets) = Self.cases[index]
        let rules = try Fixture.rules(Self.rules)
        #expect(rules.meetsCriteria(of: stage, metrics: metrics, now: Fixture.now) == meets, "\(name)")
    }
}
