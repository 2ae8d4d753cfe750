import Foundation
import JourneyCore
import Testing

@Suite("NULL data: a criterion on a missing value is not met, and explain says 'missing'")
struct MissingValuesTests {
    @Test("a NULL subscription tier does not meet the J3 tier criterion")
    func nullTier() throws {
        // Given the default rules and a user in J2 who fits J3 except that the tier is NULL
        let rules = try Fixture.defaultRules()
        let metrics = UserMetrics(
            posts: 70, followers: 50, following: 10, eventsOrganized: 5, onboardingComplete: true,
            subscriptionTier: nil, role: "user",
            signedUpAt: Fixture.daysAgo(90), stageEnteredAt: Fixture.daysAgo(30))

        // When evaluated from J2
        let evaluation = try rules.evaluate(storedStage: "J2_ACTIVE_USER", metrics: metrics, now: Fixture.now)

        // Then the user stays J2 and the checklist shows the tier as missing and unmet
        #expect(evaluation.transitions.isEmpty)
        let tier = try #require(evaluation.next?.check(.subscriptionTier))
        #expect(tier.actual == "missing")
        #expect(!tier.met)
        #expect(tier.summary == "subscription_tier missing (needs in [basic, enthusiast, professional, enterprise])")
    }

    @Test("a NULL created_at does not meet days_since_signup, however old the account")
    func nullCreatedAt() throws {
        // Given the default rules and an onboarded, active user with no signup date
        let rules = try Fixture.defaultRules()
        let metrics = UserMetrics(posts: 5, followers: 3, onboardingComplete: true, signedUpAt: nil, stageEnteredAt: nil)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then the user stays J1: only days_since_signup is unmet, and it is missing
        #expect(evaluation.transitions.isEmpty)
        let next = try #require(evaluation.next)
        #expect(next.checks.filter { !$0.met }.map(\.metric) == [.daysSinceSignup])
        #expect(next.check(.daysSinceSignup)?.actual == "missing")
        #expect(next.check(.daysSinceSignup)?.summary == "days_since_signup missing / 7")
    }

    @Test(
        "a missing value meets no comparison, not even '!=' or a negated boolean",
        arguments: [
            "role != admin", "subscription_tier != free", "onboarding_complete != true", "onboarding_complete == false",
            "role in [user, admin]", "days_since_signup < 1000", "days_in_stage >= 0",
        ])
    func missingMeetsNothing(criterion: String) throws {
        // Given a two-stage rule set whose only criterion tests a metric the user lacks
        let rules = try Fixture.rules(
            """
            version: "missing"
            stages:
              - id: J1_A
                title: A
              - id: J2_B
                title: B
                criteria:
                  - \(criterion)
            """)
        let metrics = UserMetrics(onboardingComplete: nil, subscriptionTier: nil, role: nil, signedUpAt: nil, stageEnteredAt: nil)

        // When the user is evaluated
        let evaluation = try rules.evaluate(storedStage: "J1_A", metrics: metrics, now: Fixture.now)

        // Then the user stays and the check says the value is missing
        #expect(evaluation.transitions.isEmpty)
        let checks = try #require(evaluation.next?.checks)
        #expect(checks.count == 1)
        #expect(checks.first?.actual == "missing")
        #expect(checks.first?.met == false)
    }

    @Test(
        "days are completed 24-hour periods; a date in the future counts as 0",
        arguments: [
            (0, 0, 0), (6, 86_399, 6), (7, 0, 7), (7, 1, 7), (-3, 0, 0),
        ])
    func completedDays(days: Int, extraSeconds: Int, expected: Int) throws {
        // Given a user who signed up `days` days and `extraSeconds` seconds before now
        let metrics = UserMetrics(signedUpAt: Fixture.daysAgo(days, plusSeconds: extraSeconds))

        // When the metric is read at now
        let value = metrics.value(of: .daysSinceSignup, now: Fixture.now)

        // Then it counts whole days only
        #expect(value == .integer(expected))
    }
}

@Suite("days_in_stage restarts at each move, so a stage that needs time in the previous one waits")
struct WaitingInStageTests {
    static let yaml = """
        version: "waiting"
        stages:
          - id: J1_NEW
            title: New
          - id: J2_ACTIVE
            title: Active
            criteria:
              - posts >= 1
          - id: J3_REGULAR
            title: Regular
            criteria:
              - posts >= 1
              - days_in_stage >= 14
        """

    @Test("a user who fits J2 and J3 moves only to J2 in this evaluation")
    func secondHopWaits() throws {
        // Given a user in J1 for 30 days, with posts: they fit J2, and J3 as far as the stored data goes
        let rules = try Fixture.rules(Self.yaml)
        let metrics = UserMetrics(posts: 3, signedUpAt: Fixture.daysAgo(30), stageEnteredAt: Fixture.daysAgo(30))

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW", metrics: metrics, now: Fixture.now)

        // Then one move to J2; the 14 days in J2 start now
        #expect(evaluation.path == ["J1_NEW→J2_ACTIVE"])
        #expect(evaluation.stage == "J2_ACTIVE")
        let next = try #require(evaluation.next)
        #expect(next.to == "J3_REGULAR")
        #expect(next.check(.daysInStage)?.summary == "days_in_stage 0 / 14")
        #expect(next.check(.daysInStage)?.met == false)
        #expect(next.check(.posts)?.met == true)
    }

    @Test(
        "the same user, evaluated again 13 and then 14 days later, waits and then moves on",
        arguments: [
            (13, false), (14, true),
        ])
    func movesAfterWaiting(daysLater: Int, moves: Bool) throws {
        // Given the user moved to J2 at the first evaluation, which stored stageEnteredAt = that time
        let rules = try Fixture.rules(Self.yaml)
        var metrics = UserMetrics(posts: 3, signedUpAt: Fixture.daysAgo(30), stageEnteredAt: Fixture.daysAgo(30))
        let first = try rules.evaluate(storedStage: "J1_NEW", metrics: metrics, now: Fixture.now)
        metrics.stageEnteredAt = Fixture.now

        // When evaluated again `daysLater` days later from the stored J2
        let later = Fixture.now.addingTimeInterval(Double(daysLater) * 86_400)
        let second = try rules.evaluate(storedStage: first.stage.rawValue, metrics: metrics, now: later)

        // Then the user moves to J3 only once 14 days in J2 have passed
        #expect(second.path == (moves ? ["J2_ACTIVE→J3_REGULAR"] : []))
        #expect(second.next?.check(.daysInStage)?.actual == (moves ? nil : "13"))
    }

    @Test("a user already in J2 for long enough moves to J3 at once")
    func storedInJ2LongEnough() throws {
        // Given a user stored in J2 for 20 days
        let rules = try Fixture.rules(Self.yaml)
        let metrics = UserMetrics(posts: 3, signedUpAt: Fixture.daysAgo(60), stageEnteredAt: Fixture.daysAgo(20))

        // When evaluated
        let evaluation = try rules.evaluate(storedStage: "J2_ACTIVE", metrics: metrics, now: Fixture.now)

        // Then the user moves to J3
        #expect(evaluation.path == ["J2_ACTIVE→J3_REGULAR"])
        #expect(evaluation.next == nil)
    }

    @Test("a user with no last_journey_update (NULL) waits: days_in_stage is missing")
    func nullStageEnteredAt() throws {
        // Given a user stored in J2 with no stageEnteredAt
        let rules = try Fixture.rules(Self.yaml)
        let metrics = UserMetrics(posts: 3, signedUpAt: Fixture.daysAgo(60), stageEnteredAt: nil)

        // When evaluated
        let evaluation = try rules.evaluate(storedStage: "J2_ACTIVE", metrics: metrics, now: Fixture.now)

        // Then the user stays and the checklist shows days_in_stage as missing
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.next?.check(.daysInStage)?.actual == "missing")
    }
}

@Suite("Evaluation order: declared edges first, in file order; any-of groups; one stage once")
struct EvaluationOrderTests {
    @Test("of two declared edges that both hold, the first in the file wins")
    func declaredEdgesInFileOrder() throws {
        // Given two declared skips out of J1 that both hold for the user
        let rules = try Fixture.rules(
            """
            version: "order"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B, criteria: [posts >= 1]}
              - {id: J3_C, title: C, criteria: [posts >= 1]}
              - {id: J4_D, title: D, criteria: [posts >= 1]}
            edges:
              - {from: J1_A, to: J4_D, kind: skip, reason: first declared, criteria: [posts >= 5]}
              - {from: J1_A, to: J3_C, kind: skip, reason: second declared, criteria: [posts >= 5]}
            """)

        // When a user with 10 posts is evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_A", metrics: UserMetrics(posts: 10), now: Fixture.now)

        // Then the first declared edge is taken, and J4 is the last stage
        #expect(evaluation.transitions == [Transition(from: "J1_A", to: "J4_D", kind: .skip, reason: "first declared")])
    }

    @Test(
        "an any-of group holds when one member holds",
        arguments: [
            (UserMetrics(posts: 1, followers: 5), true),
            (UserMetrics(posts: 1, following: 5), true),
            (UserMetrics(posts: 1, followers: 4, following: 4), false),
            (UserMetrics(posts: 0, followers: 5, following: 5), false),
        ])
    func anyOf(metrics: UserMetrics, moves: Bool) throws {
        // Given J2 needs posts >= 1 and any of (followers >= 5, following >= 5)
        let rules = try Fixture.rules(
            """
            version: "any"
            stages:
              - id: J1_A
                title: A
              - id: J2_B
                title: B
                criteria:
                  - posts >= 1
                  - any:
                      - followers >= 5
                      - following >= 5
            """)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_A", metrics: metrics, now: Fixture.now)

        // Then the user moves exactly when the all-of and the group hold
        #expect(evaluation.path == (moves ? ["J1_A→J2_B"] : []))
        // And the checklist for J2 (from a fresh J1 check) numbers the group
        let edge = try #require(rules.nextEdge(from: "J1_A"))
        let checklist = rules.checklist(for: edge, metrics: metrics, now: Fixture.now)
        #expect(checklist.isMet == moves)
        #expect(checklist.checks.map(\.anyOfGroup) == [nil, 2, 2])
        #expect(checklist.checks.map(\.number) == [1, 2, 2])
    }

    @Test("a declared backward edge demotes, and the user climbs back only as far as the criteria allow")
    func backwardThenNoLoop() throws {
        // Given J3→J1 declared for users without posts, J2 needing nothing and J3 needing a post
        // (J3 needing nothing would let a user cycle J3, J1, J3: the loader refuses that, see OscillationTests)
        let rules = try Fixture.rules(
            """
            version: "loop"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B}
              - {id: J3_C, title: C, criteria: [posts >= 1]}
            edges:
              - {from: J3_C, to: J1_A, kind: backward, reason: no posts, criteria: [posts == 0]}
            """)

        // When a user without posts is evaluated from J3
        let evaluation = try rules.evaluate(storedStage: "J3_C", metrics: UserMetrics(posts: 0), now: Fixture.now)

        // Then the user goes back to J1, up to J2, and stops there
        #expect(evaluation.path == ["J3_C→J1_A", "J1_A→J2_B"])
        #expect(evaluation.transitions.first?.kind == .backward)
        #expect(evaluation.stage == "J2_B")
    }
}
