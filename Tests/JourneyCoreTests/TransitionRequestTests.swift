import Foundation
import JourneyCore
import Testing

/// One explicit request `requestTransition(storedStage:to:)` on the default rules and its verdict.
struct TransitionRequest: Sendable, CustomTestStringConvertible {
    let name: String
    let stored: String
    let target: StageID
    let metrics: UserMetrics
    let expected: Result<Transition, TransitionRefusal>

    var testDescription: String { name }
}

/// Metrics of users for the request table.
private enum Users {
    /// Fits J2, J3 (onboarded, 60 posts, 60 connections, 3 events, paid) but is not a super-admin.
    static let fitsAll = UserMetrics(
        posts: 60, followers: 30, following: 30, eventsOrganized: 3,
        onboardingComplete: true, subscriptionTier: "enthusiast", role: "user",
        signedUpAt: Fixture.daysAgo(60), stageEnteredAt: Fixture.daysAgo(10))
    /// Onboarded, signed up two days ago, no posts, five connections: J2 needs posts and days.
    static let halfway = UserMetrics(
        posts: 0, followers: 2, following: 3, onboardingComplete: true,
        subscriptionTier: "free", role: "user",
        signedUpAt: Fixture.daysAgo(2), stageEnteredAt: Fixture.daysAgo(2))
    static let superAdmin = UserMetrics(role: "super-admin", signedUpAt: Fixture.daysAgo(3), stageEnteredAt: Fixture.daysAgo(3))
}

private let defaultSource = "Rules/mundo-tango.yaml (version mundo-tango-1)"
private let superAdminReason = "super-admins enter J4 from any stage"

/// An unmet check; `number` is the criterion's line in its requirement, from 1.
private func check(_ metric: Metric, _ comparison: ComparisonOperator, _ threshold: String, actual: String, number: Int = 1) -> CriterionCheck {
    // Decoding is the only public way to build a CriterionCheck; it also pins its Codable form.
    let json = """
        {"metric":"\(metric.rawValue)","comparison":"\(comparison.rawValue)","threshold":"\(threshold)","actual":"\(actual)","met":false,"number":\(number)}
        """
    return try! JSONDecoder().decode(CriterionCheck.self, from: Data(json.utf8))
}

@Suite("Explicit transition requests are validated like evaluation: no undeclared skip, no unmet criteria")
struct TransitionRequestTests {
    static let cases: [TransitionRequest] = [
        TransitionRequest(
            name: "J1→J3 skips J2, which the rules do not allow even when the user fits J3",
            stored: "J1_NEW_USER", target: "J3_POWER_USER", metrics: Users.fitsAll,
            expected: .failure(.skipNotDeclared(from: "J1_NEW_USER", to: "J3_POWER_USER", skipped: ["J2_ACTIVE_USER"]))),
        TransitionRequest(
            name: "J3→J1 goes back without a declared backward edge",
            stored: "J3_POWER_USER", target: "J1_NEW_USER", metrics: Users.fitsAll,
            expected: .failure(.backwardNotDeclared(from: "J3_POWER_USER", to: "J1_NEW_USER"))),
        TransitionRequest(
            name: "J2→J1 goes back without a declared backward edge",
            stored: "J2_ACTIVE_USER", target: "J1_NEW_USER", metrics: UserMetrics(),
            expected: .failure(.backwardNotDeclared(from: "J2_ACTIVE_USER", to: "J1_NEW_USER"))),
        TransitionRequest(
            name: "J1→J2 with unmet criteria lists exactly the unmet ones",
            stored: "J1_NEW_USER", target: "J2_ACTIVE_USER", metrics: Users.halfway,
            expected: .failure(
                .criteriaNotMet(
                    from: "J1_NEW_USER", to: "J2_ACTIVE_USER",
                    unmet: [
                        check(.posts, .greaterOrEqual, "1", actual: "0", number: 2),
                        check(.daysSinceSignup, .greaterOrEqual, "7", actual: "2", number: 4),
                    ]))),
        TransitionRequest(
            name: "J1→J2 with every criterion met is the next edge",
            stored: "J1_NEW_USER", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .success(Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "graduated to J2_ACTIVE_USER"))),
        TransitionRequest(
            name: "J2→J3 with every criterion met is the next edge",
            stored: "J2_ACTIVE_USER", target: "J3_POWER_USER", metrics: Users.fitsAll,
            expected: .success(Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "graduated to J3_POWER_USER"))),
        TransitionRequest(
            name: "J1→J4 for a super-admin is the declared skip",
            stored: "J1_NEW_USER", target: "J4_SUPER_ADMIN", metrics: Users.superAdmin,
            expected: .success(Transition(from: "J1_NEW_USER", to: "J4_SUPER_ADMIN", kind: .skip, reason: superAdminReason))),
        TransitionRequest(
            name: "J1→J4 for anyone else fails on the role, not as an undeclared skip",
            stored: "J1_NEW_USER", target: "J4_SUPER_ADMIN", metrics: Users.fitsAll,
            expected: .failure(
                .criteriaNotMet(
                    from: "J1_NEW_USER", to: "J4_SUPER_ADMIN",
                    unmet: [
                        check(.role, .equal, "super-admin", actual: "user")
                    ]))),
        TransitionRequest(
            name: "J1→J4 for a user with no role (NULL) fails on the missing role",
            stored: "J1_NEW_USER", target: "J4_SUPER_ADMIN", metrics: UserMetrics(),
            expected: .failure(
                .criteriaNotMet(
                    from: "J1_NEW_USER", to: "J4_SUPER_ADMIN",
                    unmet: [
                        check(.role, .equal, "super-admin", actual: "missing")
                    ]))),
        TransitionRequest(
            name: "J2→J2 is no move at all",
            stored: "J2_ACTIVE_USER", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .failure(.noEdge(from: "J2_ACTIVE_USER", to: "J2_ACTIVE_USER"))),
        TransitionRequest(
            name: "J4→J4 is no move at all",
            stored: "J4_SUPER_ADMIN", target: "J4_SUPER_ADMIN", metrics: Users.superAdmin,
            expected: .failure(.noEdge(from: "J4_SUPER_ADMIN", to: "J4_SUPER_ADMIN"))),
        TransitionRequest(
            name: "a legacy stored value the rules do not know",
            stored: "J1", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .failure(.unknownStage(value: "J1", rulesSource: defaultSource))),
        TransitionRequest(
            name: "an empty stored value is a user never evaluated: from the first stage",
            stored: "", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .success(Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "graduated to J2_ACTIVE_USER"))),
        TransitionRequest(
            name: "a blank stored value (spaces, a tab) is never evaluated too",
            stored: " \t ", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .success(Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "graduated to J2_ACTIVE_USER"))),
        TransitionRequest(
            name: "a padded stage id is not blank: an unknown stage",
            stored: " J1_NEW_USER", target: "J2_ACTIVE_USER", metrics: Users.fitsAll,
            expected: .failure(.unknownStage(value: " J1_NEW_USER", rulesSource: defaultSource))),
        TransitionRequest(
            name: "a target that is not a stage",
            stored: "J1_NEW_USER", target: "J9_ASTRONAUT", metrics: Users.fitsAll,
            expected: .failure(.unknownTargetStage(value: "J9_ASTRONAUT", rulesSource: defaultSource))),
    ]

    @Test("requestTransition on the default rules", arguments: cases)
    func request(_ request: TransitionRequest) throws {
        // Given the default rules and a user stored in a stage
        let rules = try Fixture.defaultRules()

        // When a move to the target is requested
        let result: Result<Transition, TransitionRefusal>
        do {
            result = .success(
                try rules.requestTransition(
                    storedStage: request.stored, to: request.target,
                    metrics: request.metrics, now: Fixture.now))
        } catch {
            result = .failure(error)
        }

        // Then the verdict is exactly the expected transition or typed refusal
        #expect(result == request.expected)
    }

    @Test("the refusals read as sentences naming the stages and criteria")
    func refusalMessages() {
        // Given the typed refusals of the table
        let skip = TransitionRefusal.skipNotDeclared(from: "J1_NEW_USER", to: "J3_POWER_USER", skipped: ["J2_ACTIVE_USER"])
        let unmet = TransitionRefusal.criteriaNotMet(
            from: "J1_NEW_USER", to: "J2_ACTIVE_USER",
            unmet: [
                check(.posts, .greaterOrEqual, "1", actual: "0"), check(.role, .equal, "super-admin", actual: "user"),
            ])

        // When they are described
        // Then each names the stages and the progress line of each unmet criterion
        #expect(skip.description == "Moving from J1_NEW_USER to J3_POWER_USER would skip J2_ACTIVE_USER; the rules declare no such edge.")
        #expect(
            unmet.description == "Moving from J1_NEW_USER to J2_ACTIVE_USER needs criteria that do not hold: posts 0 / 1, role user (needs == super-admin).")
        #expect(TransitionRefusal.noEdge(from: "J2_ACTIVE_USER", to: "J2_ACTIVE_USER").description == "The user is already in J2_ACTIVE_USER.")
    }

    @Test("J1→J4 names both skipped stages when the rules declare no edge into J4")
    func skipNamesEveryStage() throws {
        // Given four stages and no declared edges
        let rules = try Fixture.rules(
            """
            version: "plain"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B}
              - {id: J3_C, title: C}
              - {id: J4_D, title: D}
            """)

        // When J1→J4 is requested
        // Then the refusal lists J2 and J3, in order
        #expect(throws: TransitionRefusal.skipNotDeclared(from: "J1_A", to: "J4_D", skipped: ["J2_B", "J3_C"])) {
            try rules.requestTransition(storedStage: "J1_A", to: "J4_D", metrics: UserMetrics(), now: Fixture.now)
        }
    }

    @Test("a declared backward edge allows the move back when its criteria hold, and refuses it otherwise")
    func declaredBackward() throws {
        // Given rules with a declared demotion J3→J2 for users who stopped posting (J3 needs recent posts,
        // so the demotion cannot cycle)
        let rules = try Fixture.rules(
            """
            version: "demote"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B, criteria: [posts >= 1]}
              - {id: J3_C, title: C, criteria: [posts >= 10, posts_last_30_days >= 1]}
            edges:
              - from: J3_C
                to: J2_B
                kind: backward
                reason: stopped posting
                criteria:
                  - posts_last_30_days == 0
            """)
        let quiet = UserMetrics(posts: 40, postsLast30Days: 0)
        let active = UserMetrics(posts: 40, postsLast30Days: 3)

        // When J3→J2 is requested for a quiet user and for an active one
        let move = try rules.requestTransition(storedStage: "J3_C", to: "J2_B", metrics: quiet, now: Fixture.now)

        // Then the quiet user moves back with the declared reason; the active one is refused on the criterion
        #expect(move == Transition(from: "J3_C", to: "J2_B", kind: .backward, reason: "stopped posting"))
        #expect(
            throws: TransitionRefusal.criteriaNotMet(
                from: "J3_C", to: "J2_B",
                unmet: [
                    check(.postsLast30Days, .equal, "0", actual: "3")
                ])
        ) {
            try rules.requestTransition(storedStage: "J3_C", to: "J2_B", metrics: active, now: Fixture.now)
        }
        // And J3→J1, which is not declared, is still refused
        #expect(throws: TransitionRefusal.backwardNotDeclared(from: "J3_C", to: "J1_A")) {
            try rules.requestTransition(storedStage: "J3_C", to: "J1_A", metrics: quiet, now: Fixture.now)
        }
    }

    @Test("an edge turned off with 'enter_from_previous: false' cannot be requested")
    func nextEdgeTurnedOff() throws {
        // Given J3 entered only by a declared skip from J1
        let rules = try Fixture.rules(
            """
            version: "gated"
            stages:
              - {id: J1_A, title: A}
              - {id: J2_B, title: B}
              - {id: J3_C, title: C, enter_from_previous: false}
            edges:
              - {from: J1_A, to: J3_C, kind: skip, reason: invited, criteria: [role == invited]}
            """)

        // When J2→J3 is requested
        // Then there is no such edge
        #expect(throws: TransitionRefusal.noEdge(from: "J2_B", to: "J3_C")) {
            try rules.requestTransition(storedStage: "J2_B", to: "J3_C", metrics: UserMetrics(role: "invited"), now: Fixture.now)
        }
        // And the declared skip is allowed for an invited user
        let move = try rules.requestTransition(storedStage: "J1_A", to: "J3_C", metrics: UserMetrics(role: "invited"), now: Fixture.now)
        #expect(move == Transition(from: "J1_A", to: "J3_C", kind: .skip, reason: "invited"))
    }

    @Test("unmet criteria leave out the members of an any-of group that holds")
    func unmetLeavesOutSatisfiedGroups() throws {
        // Given J2 needs posts >= 10 and any of (followers >= 5, following >= 5)
        let rules = try Fixture.rules(
            """
            version: "any"
            stages:
              - id: J1_A
                title: A
              - id: J2_B
                title: B
                criteria:
                  - posts >= 10
                  - any:
                      - followers >= 5
                      - following >= 5
            """)
        // And a user with no posts whose followers already satisfy the group
        let metrics = UserMetrics(posts: 0, followers: 9, following: 0)

        // When J1→J2 is requested
        let error: TransitionRefusal
        do {
            let move = try rules.requestTransition(storedStage: "J1_A", to: "J2_B", metrics: metrics, now: Fixture.now)
            Issue.record("the move was allowed: \(move)")
            return
        } catch let refusal {
            error = refusal
        }

        // Then the refusal lists posts only: following >= 5 is not needed, the group already holds
        guard case let .criteriaNotMet(_, _, unmet) = error else {
            Issue.record("expected .criteriaNotMet, got \(error)")
            return
        }
        #expect(unmet.map(\.metric) == [.posts], "\(error)")
    }
}

@Suite("Aliases map legacy stored values to stages")
struct AliasTests {
    static let yaml = """
        version: "aliased"
        stages:
          - {id: J1_NEW_USER, title: New}
          - {id: J2_ACTIVE_USER, title: Active, criteria: [posts >= 1]}
          - {id: J3_POWER_USER, title: Power, criteria: [posts >= 50]}
        aliases: {J1: J1_NEW_USER, J2: J2_ACTIVE_USER}
        """

    @Test("the rules keep the declared aliases")
    func loaded() throws {
        // Given rules declaring two aliases
        // When they are loaded
        let rules = try Fixture.rules(Self.yaml)

        // Then both aliases resolve, and real ids resolve to themselves
        #expect(rules.aliases == ["J1": "J1_NEW_USER", "J2": "J2_ACTIVE_USER"])
        #expect(try rules.resolve(stored: "J1") == "J1_NEW_USER")
        #expect(try rules.resolve(stored: "J2_ACTIVE_USER") == "J2_ACTIVE_USER")
        #expect(throws: TransitionRefusal.unknownStage(value: "J3", rulesSource: "inline.yaml (version aliased)")) {
            try rules.resolve(stored: "J3")
        }
    }

    @Test(
        "an explicit request from a legacy 'J1' is validated from J1_NEW_USER",
        arguments: [
            ("J2_ACTIVE_USER", true), ("J3_POWER_USER", false),
        ])
    func requestFromAlias(target: String, allowed: Bool) throws {
        // Given rules with aliases and a user stored as the legacy 'J1' who fits J3
        let rules = try Fixture.rules(Self.yaml)
        let metrics = UserMetrics(posts: 80)

        // When a move is requested
        let result = Result { () throws(TransitionRefusal) in
            try rules.requestTransition(storedStage: "J1", to: StageID(target), metrics: metrics, now: Fixture.now)
        }

        // Then J1→J2 is allowed from the resolved stage, and J1→J3 is still a refused skip
        if allowed {
            #expect(result == .success(Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "graduated to J2_ACTIVE_USER")))
        } else {
            #expect(result == .failure(.skipNotDeclared(from: "J1_NEW_USER", to: "J3_POWER_USER", skipped: ["J2_ACTIVE_USER"])))
        }
    }

    @Test("evaluating a user stored as a legacy value starts from its stage")
    func evaluateFromAlias() throws {
        // Given rules with aliases and a user stored as the legacy 'J2' who fits J3
        let rules = try Fixture.rules(Self.yaml)

        // When the user is evaluated
        let evaluation = try rules.evaluate(storedStage: "J2", metrics: UserMetrics(posts: 80), now: Fixture.now)

        // Then the evaluation starts from J2_ACTIVE_USER and moves to J3 in one next step
        #expect(evaluation.start == "J2_ACTIVE_USER")
        #expect(
            evaluation.transitions == [
                Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "graduated to J3_POWER_USER")
            ])
    }
}
