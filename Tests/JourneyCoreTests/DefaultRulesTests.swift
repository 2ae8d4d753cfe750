import Foundation
import JourneyCore
import Testing

@Suite("The default rule set, Rules/mundo-tango.yaml")
struct DefaultRulesTests {
    @Test("it loads: four stages in order, its version, a 300 s cache TTL, no aliases")
    func loads() throws {
        // Given the default rule file
        // When it is loaded
        let rules = try Fixture.defaultRules()

        // Then it has the four stages of SPEC §1, in journey order
        #expect(rules.stages.map(\.id) == ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER", "J4_SUPER_ADMIN"])
        #expect(rules.stages.map(\.position) == [0, 1, 2, 3])
        #expect(rules.stages.allSatisfy { $0.entersFromPrevious })
        #expect(rules.initialStage == "J1_NEW_USER")
        #expect(rules.version == "mundo-tango-1")
        #expect(rules.source == "Rules/mundo-tango.yaml")
        #expect(rules.cacheTTL == 300)
        #expect(rules.aliases.isEmpty)
    }

    @Test("each stage's graduation criteria are those of SPEC §1")
    func graduationCriteria() throws {
        // Given the default rules
        let rules = try Fixture.defaultRules()

        // When the criteria of each stage are read back as text
        func criteria(_ id: StageID) -> [String] {
            rules.stage(id)?.graduation.criteria.map { "\($0.criterion)" } ?? ["<no stage>"]
        }

        // Then they are the platform's detection rules, exactly
        #expect(criteria("J1_NEW_USER") == [])
        #expect(criteria("J2_ACTIVE_USER") == ["onboarding_complete == true", "posts >= 1", "connections >= 1", "days_since_signup >= 7"])
        #expect(
            criteria("J3_POWER_USER") == [
                "posts >= 50", "connections >= 50", "events_organized >= 3",
                "subscription_tier in [basic, enthusiast, professional, enterprise]",
            ])
        #expect(criteria("J4_SUPER_ADMIN") == ["role == super-admin"])
        #expect(rules.stages.allSatisfy { $0.graduation.clauses.allSatisfy { if case .criterion = $0 { true } else { false } } })
    }

    @Test("exactly one declared edge, 'from: any' into J4_SUPER_ADMIN, gives every earlier stage an edge to J4")
    func oneDeclaredEdge() throws {
        // Given the default rules
        let rules = try Fixture.defaultRules()

        // When the declared edges are listed
        let declared = rules.edges.filter(\.isDeclared)

        // Then there is one declaration, expanded to one edge from each earlier stage, with one reason
        #expect(declared.map(\.from) == ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER"])
        #expect(declared.allSatisfy { $0.to == "J4_SUPER_ADMIN" })
        #expect(Set(declared.map(\.reason)) == ["super-admins enter J4 from any stage"])
        #expect(declared.map(\.kind) == [.skip, .skip, .next])
        #expect(declared.allSatisfy { $0.requirement.criteria.map { "\($0.criterion)" } == ["role == super-admin"] })
        // And the other edges are the three implicit next edges, after the declared ones
        let implicit = rules.edges.filter { !$0.isDeclared }
        #expect(implicit.map { "\($0.from)→\($0.to)" } == ["J1_NEW_USER→J2_ACTIVE_USER", "J2_ACTIVE_USER→J3_POWER_USER", "J3_POWER_USER→J4_SUPER_ADMIN"])
        #expect(implicit.allSatisfy { $0.kind == .next })
        #expect(rules.edges == declared + implicit)
        // And no edge goes back or skips except the declared ones into J4
        #expect(rules.edges.filter { $0.kind == .backward }.isEmpty)
        #expect(rules.edges.filter { $0.kind == .skip }.allSatisfy { $0.isDeclared && $0.to == "J4_SUPER_ADMIN" })
    }

    @Test("an older legacy value such as 'J1' is not a stage of the default rules")
    func legacyValueIsUnknown() throws {
        // Given the default rules, which declare no aliases
        let rules = try Fixture.defaultRules()

        // When a user stored as 'J1' is evaluated
        // Then the evaluation refuses with .unknownStage naming the value and the file
        #expect(throws: TransitionRefusal.unknownStage(value: "J1", rulesSource: "Rules/mundo-tango.yaml (version mundo-tango-1)")) {
            try rules.evaluate(storedStage: "J1", metrics: UserMetrics(), now: Fixture.now)
        }
    }
}

/// The platform's own cases (issue 3, "Must show"): the old code jumped users J1→J3.
@Suite("The default rules on the platform's own cases")
struct PlatformCasesTests {
    /// 60 posts, 60 connections, 3 events organized, a paid tier, signed up a month ago.
    static func heavyUser(onboarded: Bool?, tier: String? = "professional", role: String? = "user") -> UserMetrics {
        UserMetrics(
            posts: 60, postsLast30Days: 20, followers: 35, following: 25, eventsOrganized: 3, eventsAttended: 4,
            onboardingComplete: onboarded, subscriptionTier: tier, role: role,
            signedUpAt: Fixture.daysAgo(30), stageEnteredAt: Fixture.daysAgo(30))
    }

    @Test("a heavy paying user who never finished onboarding fits J3 but not J2, so stays J1")
    func neverOnboardedStaysJ1() throws {
        // Given the default rules and a user with 60 posts, 60 connections, 3 events, a paid tier, not onboarded
        let rules = try Fixture.defaultRules()
        let metrics = Self.heavyUser(onboarded: false)

        // When the user, stored in J1, is evaluated
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then no transition is made: J3 is never entered without J2
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.start == "J1_NEW_USER")
        #expect(evaluation.stage == "J1_NEW_USER")
        // And the checklist toward J2 shows onboarding as the one thing missing
        let next = try #require(evaluation.next)
        #expect(next.to == "J2_ACTIVE_USER")
        #expect(!next.isMet)
        #expect(next.checks.filter { !$0.met }.map(\.metric) == [.onboardingComplete])
        #expect(next.check(.onboardingComplete)?.actual == "false")
        #expect(next.check(.posts)?.summary == "posts 60 / 1")
        #expect(next.check(.connections)?.actual == "60")
        #expect(next.check(.daysSinceSignup)?.actual == "30")
    }

    @Test("a user who never answered onboarding (NULL) stays J1 too")
    func onboardingNullStaysJ1() throws {
        // Given the heavy user whose onboarding flag is NULL
        let rules = try Fixture.defaultRules()

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: Self.heavyUser(onboarded: nil), now: Fixture.now)

        // Then the user stays, and explain says the value is missing
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.stage == "J1_NEW_USER")
        #expect(evaluation.next?.check(.onboardingComplete)?.actual == "missing")
        #expect(evaluation.next?.check(.onboardingComplete)?.met == false)
    }

    @Test("the same user onboarded moves J1→J2→J3 as two transitions, never one J1→J3")
    func onboardedMovesTwice() throws {
        // Given the same heavy paying user, onboarded and signed up more than seven days ago
        let rules = try Fixture.defaultRules()
        let metrics = Self.heavyUser(onboarded: true)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then two transitions along the next edges, each with its reason
        #expect(
            evaluation.transitions == [
                Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "graduated to J2_ACTIVE_USER"),
                Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "graduated to J3_POWER_USER"),
            ])
        #expect(evaluation.stage == "J3_POWER_USER")
        // And the checklist toward J4 shows the role as unmet, with the user's actual role
        let next = try #require(evaluation.next)
        #expect(next.from == "J3_POWER_USER")
        #expect(next.to == "J4_SUPER_ADMIN")
        #expect(next.checks.map(\.summary) == ["role user (needs == super-admin)"])
        #expect(!next.isMet)
        // And the evaluation keeps the metrics it was given and its time
        #expect(evaluation.metrics == metrics)
        #expect(evaluation.evaluatedAt == Fixture.now)
    }

    @Test("onboarded but signed up only six days ago: not yet J2, so not J3 either")
    func tooRecentSignup() throws {
        // Given the heavy onboarded user who signed up 6 days and 23 hours ago
        let rules = try Fixture.defaultRules()
        var metrics = Self.heavyUser(onboarded: true)
        metrics.signedUpAt = Fixture.daysAgo(6, plusSeconds: 23 * 3600)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then six completed days are not seven: the user stays J1
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.next?.check(.daysSinceSignup)?.summary == "days_since_signup 6 / 7")
    }

    @Test(
        "a super-admin moves to J4 in one declared transition (kind skip), whatever else holds",
        arguments: [false, true])
    func superAdminSkipsToJ4(fitsEverything: Bool) throws {
        // Given a super-admin: a brand-new one, or one who also fits J2 and J3
        let rules = try Fixture.defaultRules()
        let metrics =
            fitsEverything
            ? Self.heavyUser(onboarded: true, role: "super-admin")
            : UserMetrics(role: "super-admin", signedUpAt: Fixture.daysAgo(0), stageEnteredAt: Fixture.daysAgo(0))

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then one move J1→J4 along the declared skip, not J1→J2→…→J4
        #expect(
            evaluation.transitions == [
                Transition(from: "J1_NEW_USER", to: "J4_SUPER_ADMIN", kind: .skip, reason: "super-admins enter J4 from any stage")
            ])
        #expect(evaluation.stage == "J4_SUPER_ADMIN")
        // And J4 is the last stage: there is no next checklist
        #expect(evaluation.next == nil)
    }

    @Test(
        "a super-admin stored in J2 or J3 also moves straight to J4",
        arguments: [
            ("J2_ACTIVE_USER", EdgeKind.skip), ("J3_POWER_USER", EdgeKind.next),
        ])
    func superAdminFromLaterStages(stored: String, kind: EdgeKind) throws {
        // Given a super-admin with no activity stored in a later stage
        let rules = try Fixture.defaultRules()
        let metrics = UserMetrics(role: "super-admin", signedUpAt: Fixture.daysAgo(1), stageEnteredAt: Fixture.daysAgo(1))

        // When evaluated
        let evaluation = try rules.evaluate(storedStage: stored, metrics: metrics, now: Fixture.now)

        // Then one move to J4 with the declared edge's reason
        #expect(
            evaluation.transitions == [
                Transition(from: StageID(stored), to: "J4_SUPER_ADMIN", kind: kind, reason: "super-admins enter J4 from any stage")
            ])
    }

    @Test("a free-tier (or tier-less) heavy user stops at J2", arguments: ["free", nil] as [String?])
    func freeTierStopsAtJ2(tier: String?) throws {
        // Given an onboarded heavy user without a paid plan
        let rules = try Fixture.defaultRules()
        let metrics = Self.heavyUser(onboarded: true, tier: tier)

        // When evaluated from J1
        let evaluation = try rules.evaluate(storedStage: "J1_NEW_USER", metrics: metrics, now: Fixture.now)

        // Then one move to J2 and no further
        #expect(evaluation.path == ["J1_NEW_USER→J2_ACTIVE_USER"])
        #expect(evaluation.stage == "J2_ACTIVE_USER")
        // And the checklist toward J3 shows the tier as the one unmet criterion, with its actual value
        let next = try #require(evaluation.next)
        #expect(next.to == "J3_POWER_USER")
        #expect(next.checks.filter { !$0.met }.map(\.metric) == [.subscriptionTier])
        #expect(next.check(.subscriptionTier)?.actual == (tier ?? "missing"))
        #expect(next.check(.subscriptionTier)?.threshold == "[basic, enthusiast, professional, enterprise]")
    }

    @Test("a J3 user whose metrics fell to nothing keeps J3: the default journey only moves forward")
    func noDemotion() throws {
        // Given a user stored in J3 who no longer posts, follows or pays
        let rules = try Fixture.defaultRules()
        let metrics = UserMetrics(
            onboardingComplete: false, subscriptionTier: "free", role: "user",
            signedUpAt: Fixture.daysAgo(400), stageEnteredAt: Fixture.daysAgo(200))

        // When evaluated
        let evaluation = try rules.evaluate(storedStage: "J3_POWER_USER", metrics: metrics, now: Fixture.now)

        // Then the user keeps J3
        #expect(evaluation.transitions.isEmpty)
        #expect(evaluation.stage == "J3_POWER_USER")
    }
}
