import Foundation
import JourneyCore
import Testing

/// Records at most a few failures per run, each with its seed, so one broken property does not flood the log.
private struct Verifier {
    private(set) var failures = 0
    /// Names the seed being checked, for the messages.
    var context: String

    mutating func check(
        _ condition: Bool, _ message: @autoclosure () -> String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard !condition else { return }
        failures += 1
        if failures <= 5 {
            Issue.record("\(context): \(message())", sourceLocation: sourceLocation)
        }
    }
}

/// How much the random histories exercised, so the properties are known not to hold vacuously.
private struct Coverage {
    var evaluations = 0
    var transitions = 0
    var skips = 0
    var backwards = 0
    var multiHop = 0
    var stays = 0
    var requestsAllowed = 0
    var requestsRefused = 0
    /// Rule sets with a backward edge that the loader refused as able to cycle, and that it accepted.
    var oscillating = 0
    var acceptedWithBackward = 0
}

@Suite("Properties over random rule sets and random metric histories (seeded SplitMix64)")
struct PropertyTests {
    /// 5 batches of 100 rule sets: 500 rule sets, each with 4 histories of 1–6 evaluations.
    static let batches = Array(0..<5)
    static let ruleSetsPerBatch = 100
    static let baseSeed: UInt64 = 0x4A4F_5552_4E45_5900

    @Test(
        "no undeclared skip, replay gives the final stage, evaluation settles, forward-only never goes back",
        arguments: batches)
    func evaluationProperties(batch: Int) throws {
        var coverage = Coverage()
        var verify = Verifier(context: "batch \(batch)")
        for index in 0..<Self.ruleSetsPerBatch {
            let seed = Self.baseSeed &+ UInt64(batch * Self.ruleSetsPerBatch + index)
            var random = SplitMix64(seed: seed)
            // Given a random valid rule set, written as YAML text
            let model = RandomRules.ruleSet(&random)
            verify.context = "seed \(seed)"
            let rules: RuleSet
            do {
                rules = try RuleSetLoader.load(yaml: model.yaml, source: "random-\(seed).yaml")
            } catch {
                // Only a cycle through a backward edge whose criteria can all hold may be refused
                guard case let .invalid(_, _, place, _) = error, place.hasPrefix("edges "), !model.isForwardOnly else {
                    verify.check(false, "a valid generated rule set was refused: \(error)\n\(model.yaml)")
                    continue
                }
                coverage.oscillating += 1
                continue
            }
            if !model.isForwardOnly { coverage.acceptedWithBackward += 1 }
            // Then it loads to the stages and edges the file declares
            checkStructure(rules, model, &verify)

            // Given random histories of one user's metrics over time
            for _ in 0..<4 {
                var now = Fixture.now
                var metrics = RandomRules.metrics(&random, now: now)
                var stored = random.chance(0.7) ? rules.initialStage.rawValue : random.pick(model.stages).id
                for _ in 0..<random.int(1...6) {
                    // When the user is evaluated from the stored stage
                    let evaluation = try rules.evaluate(storedStage: stored, metrics: metrics, now: now)
                    // Then every property holds
                    checkEvaluation(
                        evaluation, rules: rules, model: model, metrics: metrics, now: now,
                        coverage: &coverage, verify: &verify)
                    // And an explicit request to a random stage is judged by the same edges
                    checkRequest(
                        rules: rules, model: model, stored: stored, target: random.int(0...(model.stages.count - 1)),
                        metrics: metrics, now: now, coverage: &coverage, verify: &verify)
                    // Feed the outcome into the next evaluation, as the store would persist it
                    stored = evaluation.stage.rawValue
                    if !evaluation.transitions.isEmpty { metrics.stageEnteredAt = now }
                    now = now.addingTimeInterval(Double(random.int(0...(5 * 86_400))))
                    metrics = RandomRules.evolve(metrics, &random)
                }
            }
        }

        // Then the histories were not trivial: users moved, skipped, went back, and stayed
        #expect(verify.failures == 0)
        #expect(coverage.evaluations >= 1_000)
        #expect(coverage.transitions >= 200, "\(coverage)")
        #expect(coverage.skips >= 20, "\(coverage)")
        // (backward moves are rarer now that a backward edge must exclude the way back up)
        #expect(coverage.backwards >= 1, "\(coverage)")
        #expect(coverage.multiHop >= 40, "\(coverage)")
        #expect(coverage.stays >= 200, "\(coverage)")
        #expect(coverage.requestsAllowed >= 50 && coverage.requestsRefused >= 50, "\(coverage)")
        // And rule sets with backward edges were both refused (able to cycle) and accepted (exclusive)
        #expect(coverage.oscillating >= 3 && coverage.acceptedWithBackward >= 5, "\(coverage)")
    }

    /// The loaded rule set is the model: stages, version, TTL, and every edge in evaluation order.
    private func checkStructure(_ rules: RuleSet, _ model: ModelRules, _ verify: inout Verifier) {
        verify.check(rules.stages.map(\.id.rawValue) == model.stages.map(\.id), "stage ids \(rules.stages.map(\.id))")
        verify.check(rules.stages.map(\.entersFromPrevious) == model.stages.map(\.entersFromPrevious), "enter_from_previous")
        verify.check(rules.version == model.version, "version \(rules.version)")
        verify.check(rules.cacheTTL == model.cacheTTL.map(TimeInterval.init), "cache TTL \(String(describing: rules.cacheTTL))")
        let expected = model.edges
        verify.check(rules.edges.count == expected.count, "\(rules.edges.count) edges, expected \(expected.count)\n\(model.yaml)")
        for (edge, want) in zip(rules.edges, expected) {
            let same =
                edge.from.rawValue == model.stages[want.from].id && edge.to.rawValue == model.stages[want.to].id
                && edge.kind == want.kind && edge.reason == want.reason && edge.isDeclared == want.isDeclared
                && edge.requirement.clauses.count == want.clauses.count
                && edge.requirement.criteria.count == want.clauses.flatMap(\.criteria).count
            verify.check(same, "edge \(edge) differs from the model's \(want)\n\(model.yaml)")
        }
        for (stage, want) in zip(rules.stages, model.stages) {
            let texts = stage.graduation.criteria.map(\.criterion.metric)
            verify.check(texts == want.clauses.flatMap(\.criteria).map(\.metric), "criteria of \(stage.id)")
        }
    }

    private func checkEvaluation(
        _ evaluation: Evaluation, rules: RuleSet, model: ModelRules, metrics: UserMetrics, now: Date,
        coverage: inout Coverage, verify: inout Verifier
    ) {
        let moves = evaluation.transitions
        coverage.evaluations += 1
        coverage.transitions += moves.count
        coverage.skips += moves.filter { $0.kind == .skip }.count
        coverage.backwards += moves.filter { $0.kind == .backward }.count
        if moves.count >= 2 { coverage.multiHop += 1 }
        if moves.isEmpty { coverage.stays += 1 }
        let context = "from \(evaluation.start) with \(metrics) at \(now): \(evaluation.path)\n\(model.yaml)"

        // (a) Every move is along an edge of the rules: the next stage, or a declared edge with that kind
        for move in moves {
            guard let from = model.position(of: move.from), let to = model.position(of: move.to) else {
                verify.check(false, "a move names an unknown stage: \(move)")
                continue
            }
            let edges = model.edges.filter { $0.from == from && $0.to == to && $0.kind == move.kind && $0.reason == move.reason }
            verify.check(!edges.isEmpty, "move \(move) is along no edge of the rules; \(context)")
            if to != from + 1 {
                let declaredKind: EdgeKind = to > from ? .skip : .backward
                verify.check(
                    move.kind == declaredKind && edges.contains(where: \.isDeclared),
                    "move \(move) skips or goes back without a declared edge; \(context)")
            }
            verify.check(
                rules.edges.contains { $0.from == move.from && $0.to == move.to && $0.kind == move.kind && $0.reason == move.reason },
                "move \(move) is along no edge of the loaded rule set")
        }

        // (b) Replaying the moves from the start stage gives the final stage
        var replayed = evaluation.start
        for move in moves {
            verify.check(move.from == replayed, "move \(move) does not start where the previous ended (\(replayed)); \(context)")
            replayed = move.to
        }
        verify.check(replayed == evaluation.stage, "replay ends in \(replayed), evaluation in \(evaluation.stage); \(context)")

        // The moves are exactly those of the reference evaluation of SPEC §1
        let start = model.position(of: evaluation.start) ?? -1
        let reference = model.evaluate(from: start, metrics: metrics, now: now)
        verify.check(moves == reference, "expected \(reference.map { "\($0.from)→\($0.to)" }); \(context)")

        // The checklist toward the next stage has one check per criterion of that stage, judged like the model
        var settled = metrics
        if !moves.isEmpty { settled.stageEnteredAt = now }
        let final = model.position(of: evaluation.stage) ?? -1
        if final + 1 < model.stages.count, model.stages[final + 1].entersFromPrevious {
            let criteria = model.stages[final + 1].clauses.flatMap(\.criteria)
            if let next = evaluation.next {
                verify.check(next.from == evaluation.stage && next.to.rawValue == model.stages[final + 1].id, "next is \(next.from)→\(next.to)")
                verify.check(next.checks.count == criteria.count, "next has \(next.checks.count) checks, the stage \(criteria.count) criteria")
                let met = criteria.map { $0.isMet(by: ModelRules.value($0.metric, settled, now: now)) }
                verify.check(next.checks.map(\.met) == met, "next checks \(next.checks.map(\.met)), expected \(met); \(context)")
                verify.check(next.isMet == ModelRules.holds(model.stages[final + 1].clauses, settled, now: now), "next.isMet; \(context)")
            } else {
                verify.check(false, "no next checklist although \(model.stages[final + 1].id) follows; \(context)")
            }
        } else if final + 1 == model.stages.count {
            verify.check(evaluation.next == nil, "a next checklist after the last stage; \(context)")
        }

        // (c) For every rule set the loader accepts, backward edges included: evaluating again from the
        // final stage with the same metrics (days_in_stage restarted if the user moved) makes no move
        do {
            let again = try rules.evaluate(storedStage: evaluation.stage.rawValue, metrics: settled, now: now)
            verify.check(
                again.transitions.isEmpty && again.stage == evaluation.stage,
                "evaluating again moved \(again.path); \(context)")
        } catch {
            verify.check(false, "evaluating again threw \(error)")
        }

        guard model.isForwardOnly else { return }
        // (d) A forward-only rule set never moves a user to a lower position
        verify.check(
            moves.allSatisfy { (model.position(of: $0.to) ?? -1) > (model.position(of: $0.from) ?? Int.max) },
            "a forward-only rule set moved back; \(context)")
        verify.check(final >= start, "final position \(final) is below start \(start); \(context)")
        // And nothing forward that holds is left untaken: the next stage's criteria do not all hold
        verify.check(evaluation.next?.isMet != true, "the next edge holds but was not taken; \(context)")
    }

    /// An explicit request is allowed exactly along an edge whose criteria hold, and otherwise refused by type.
    private func checkRequest(
        rules: RuleSet, model: ModelRules, stored: String, target: Int, metrics: UserMetrics, now: Date,
        coverage: inout Coverage, verify: inout Verifier
    ) {
        guard let start = model.position(of: StageID(stored)) else { return }
        let targetID = StageID(model.stages[target].id)
        let startID = StageID(stored)
        let edges = model.edges.filter { $0.from == start && $0.to == target }
        let result = Result { () throws(TransitionRefusal) in
            try rules.requestTransition(storedStage: stored, to: targetID, metrics: metrics, now: now)
        }
        let context = "request \(stored)→\(targetID) with \(metrics)\n\(model.yaml)"
        switch result {
        case .success(let move):
            coverage.requestsAllowed += 1
            let taken = edges.first { ModelRules.holds($0.clauses, metrics, now: now) }
            verify.check(
                taken.map { Transition(from: startID, to: targetID, kind: $0.kind, reason: $0.reason) } == move,
                "allowed \(move); \(context)")
        case .failure(let error):
            coverage.requestsRefused += 1
            let expected: TransitionRefusal
            if edges.isEmpty {
                if target > start + 1 {
                    expected = .skipNotDeclared(
                        from: startID, to: targetID,
                        skipped: model.stages[(start + 1)..<target].map { StageID($0.id) })
                } else if target < start {
                    expected = .backwardNotDeclared(from: startID, to: targetID)
                } else {
                    expected = .noEdge(from: startID, to: targetID)
                }
                verify.check(error == expected, "refused with \(error), expected \(expected); \(context)")
            } else {
                verify.check(!edges.contains { ModelRules.holds($0.clauses, metrics, now: now) }, "refused a move whose edge holds: \(error); \(context)")
                guard case let .criteriaNotMet(from, to, unmet) = error else {
                    verify.check(false, "refused with \(error), expected .criteriaNotMet; \(context)")
                    return
                }
                verify.check(
                    from == startID && to == targetID && !unmet.isEmpty && unmet.allSatisfy { !$0.met },
                    "criteriaNotMet \(error); \(context)")
            }
        }
    }

    @Test(
        "adding an undeclared skip, an undeclared backward edge or a mismatched kind to a valid rule set is refused",
        arguments: batches)
    func malformedEdgesRefused(batch: Int) throws {
        var refused = 0
        for index in 0..<Self.ruleSetsPerBatch {
            let seed = Self.baseSeed ^ 0xED6E &+ UInt64(batch * Self.ruleSetsPerBatch + index)
            var random = SplitMix64(seed: seed)
            // Given a random valid rule set with at least three stages
            let model = RandomRules.ruleSet(&random)
            guard model.stages.count >= 3 else { continue }
            // And one more edge that skips or goes back without the right 'kind'
            let from = random.int(0...(model.stages.count - 3))
            let to = random.int((from + 2)...(model.stages.count - 1))
            let variant = random.int(0...3)
            let (edge, problem): (ModelEdgeDeclaration, String) =
                switch variant {
                case 0: (ModelEdgeDeclaration(from: from, to: to, kind: nil, reason: "undeclared", clauses: nil), "not declared with 'kind: skip'")
                case 1: (ModelEdgeDeclaration(from: to, to: from, kind: nil, reason: "undeclared", clauses: nil), "not declared with 'kind: backward'")
                case 2:
                    (
                        ModelEdgeDeclaration(from: to, to: from, kind: .skip, reason: "wrong kind", clauses: nil),
                        "declared 'kind: skip' but the edge is a backward"
                    )
                default: (ModelEdgeDeclaration(from: from, to: to, kind: .skip, reason: nil, clauses: []), "a skip edge needs a 'reason'")
                }
            let broken = ModelRules(
                version: model.version, cacheTTL: model.cacheTTL, stages: model.stages,
                declarations: model.declarations + [edge])
            let yaml = broken.yaml
            // The line of the added edge: the last '- from:' of the file
            let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            let edgeLine = (lines.lastIndex { $0.hasPrefix("  - from:") } ?? -1) + 1

            // When it is loaded
            let error = Fixture.loadError(yaml, source: "broken-\(seed).yaml")

            // Then it is refused, naming the edge and what is wrong
            guard case let .invalid(source, line, place, message)? = error else {
                Issue.record("seed \(seed): accepted or wrong error \(String(describing: error))\n\(yaml)")
                continue
            }
            refused += 1
            let name = "edge \(model.stages[edge.from!].id) → \(model.stages[edge.to].id)"
            #expect(source == "broken-\(seed).yaml")
            #expect(place == name, "seed \(seed): \(error!)")
            #expect(message.contains(problem), "seed \(seed): \(error!)")
            // The kind mismatch points at the 'kind' line, the others at the edge itself
            #expect(line == (variant == 2 ? edgeLine + 2 : edgeLine), "seed \(seed): \(error!)\n\(yaml)")
        }
        #expect(refused >= 50)
    }

    @Test("a stage left with no edge into it is refused, naming that stage and its line", arguments: batches)
    func unreachableStageRefused(batch: Int) throws {
        var refused = 0
        for index in 0..<Self.ruleSetsPerBatch {
            let seed = Self.baseSeed ^ 0x10_57 &+ UInt64(batch * Self.ruleSetsPerBatch + index)
            var random = SplitMix64(seed: seed)
            // Given a random valid rule set, and one of its stages (not the first) cut off:
            // no next edge into it and no declared edge into it
            let model = RandomRules.ruleSet(&random)
            let lost = random.int(1...(model.stages.count - 1))
            var stages = model.stages
            stages[lost] = ModelStage(id: stages[lost].id, clauses: stages[lost].clauses, entersFromPrevious: false)
            let declarations = model.declarations.filter { $0.to != lost }
            let yaml = ModelRules(version: model.version, cacheTTL: model.cacheTTL, stages: stages, declarations: declarations).yaml
            let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            let stageLine = (lines.firstIndex { $0 == "  - id: \(stages[lost].id)" } ?? -1) + 1

            // When it is loaded
            let error = Fixture.loadError(yaml, source: "cut-\(seed).yaml")

            // Then it is refused, naming the cut-off stage (every earlier stage is still reachable)
            #expect(
                error
                    == .invalid(
                        source: "cut-\(seed).yaml", line: stageLine, place: "stage \(stages[lost].id)",
                        problem: "no edge can reach this stage from \(stages[0].id)"),
                "seed \(seed)\n\(yaml)")
            if error != nil { refused += 1 }
        }
        #expect(refused == Self.ruleSetsPerBatch)
    }

    @Test("the generator is deterministic: the same seed writes the same rule file")
    func generatorIsDeterministic() {
        // Given two generators with one seed and one with another
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        var other = SplitMix64(seed: 43)

        // When each writes a rule set
        let a = RandomRules.ruleSet(&first).yaml
        let b = RandomRules.ruleSet(&second).yaml
        let c = RandomRules.ruleSet(&other).yaml

        // Then the same seed gives the same text, another seed another text
        #expect(a == b)
        #expect(a != c)
    }
}
