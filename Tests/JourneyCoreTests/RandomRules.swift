import Foundation
import JourneyCore

/// Helpers on JourneyCore's seeded generator, so every property run is reproducible from its seed.
extension SplitMix64 {
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
}

// MARK: The model: a rule set as the test understands it, independent of the loader

/// A value in the model's own terms.
enum ModelValue: Hashable {
    case int(Int), bool(Bool), text(String)
}

/// One criterion, kept structured so the test can both write it as text and judge it itself.
struct ModelCriterion {
    let metric: Metric
    /// nil for a bare boolean test (`onboarding_complete`).
    let comparison: ComparisonOperator?
    let values: [ModelValue]
    let text: String

    /// Whether `value` (nil when missing) meets the criterion, by the semantics of SPEC §1-2.
    func isMet(by value: ModelValue?) -> Bool {
        guard let value else { return false }
        guard let comparison else { return value == .bool(true) }
        if comparison == .isIn { return values.contains(value) }
        let limit = values[0]
        switch (value, limit) {
        case let (.int(actual), .int(limit)):
            switch comparison {
            case .greaterOrEqual: return actual >= limit
            case .greater: return actual > limit
            case .lessOrEqual: return actual <= limit
            case .less: return actual < limit
            case .equal: return actual == limit
            case .notEqual: return actual != limit
            case .isIn: return false
            }
        default:
            return comparison == .equal ? value == limit : value != limit
        }
    }
}

enum ModelClause {
    case one(ModelCriterion)
    case any([ModelCriterion])

    var criteria: [ModelCriterion] {
        switch self {
        case .one(let criterion): [criterion]
        case .any(let members): members
        }
    }
}

struct ModelStage {
    let id: String
    let clauses: [ModelClause]
    let entersFromPrevious: Bool
}

/// One entry under `edges:` in the file.
struct ModelEdgeDeclaration {
    /// nil for `from: any`.
    let from: Int?
    let to: Int
    let kind: EdgeKind?
    let reason: String?
    /// nil when the file omits `criteria` (the edge then uses the target's graduation criteria).
    let clauses: [ModelClause]?
}

/// One edge as evaluation sees it: a declaration expanded to one origin, or an implicit next edge.
struct ModelEdge {
    let from: Int
    let to: Int
    let kind: EdgeKind
    let reason: String
    let clauses: [ModelClause]
    let isDeclared: Bool
}

struct ModelRules {
    let version: String
    let cacheTTL: Int?
    let stages: [ModelStage]
    let declarations: [ModelEdgeDeclaration]

    var isForwardOnly: Bool { declarations.allSatisfy { $0.kind != .backward } }

    /// Every edge in the order evaluation must try them: declared (file order, `any` expanded in
    /// stage order), then the implicit next edges.
    var edges: [ModelEdge] {
        var result: [ModelEdge] = []
        for declaration in declarations {
            let target = stages[declaration.to]
            let origins: [Int]
            if let from = declaration.from {
                origins = [from]
            } else if declaration.kind == .skip {
                origins = Array(0..<declaration.to)
            } else {
                origins = Array((declaration.to + 1)..<stages.count)
            }
            for origin in origins {
                let kind: EdgeKind = declaration.to == origin + 1 ? .next : (declaration.to > origin ? .skip : .backward)
                result.append(
                    ModelEdge(
                        from: origin, to: declaration.to, kind: kind,
                        reason: declaration.reason ?? "graduated to \(target.id)",
                        clauses: declaration.clauses ?? target.clauses, isDeclared: true))
            }
        }
        for (position, stage) in stages.enumerated().dropFirst() where stage.entersFromPrevious {
            result.append(
                ModelEdge(
                    from: position - 1, to: position, kind: .next, reason: "graduated to \(stage.id)",
                    clauses: stage.clauses, isDeclared: false))
        }
        return result
    }

    func position(of id: StageID) -> Int? { stages.firstIndex { $0.id == id.rawValue } }

    /// The value of a metric, computed by the test itself from the raw metrics.
    static func value(_ metric: Metric, _ metrics: UserMetrics, now: Date) -> ModelValue? {
        func days(_ start: Date?) -> ModelValue? {
            guard let start else { return nil }
            let seconds = now.timeIntervalSince(start)
            return .int(seconds <= 0 ? 0 : Int((seconds / 86_400).rounded(.down)))
        }
        switch metric {
        case .posts: return .int(metrics.posts)
        case .postsLast30Days: return .int(metrics.postsLast30Days)
        case .followers: return .int(metrics.followers)
        case .following: return .int(metrics.following)
        case .connections: return .int(metrics.followers + metrics.following)
        case .eventsOrganized: return .int(metrics.eventsOrganized)
        case .eventsAttended: return .int(metrics.eventsAttended)
        case .daysSinceSignup: return days(metrics.signedUpAt)
        case .daysInStage: return days(metrics.stageEnteredAt)
        case .onboardingComplete: return metrics.onboardingComplete.map(ModelValue.bool)
        case .subscriptionTier: return metrics.subscriptionTier.map(ModelValue.text)
        case .role: return metrics.role.map(ModelValue.text)
        }
    }

    static func holds(_ clauses: [ModelClause], _ metrics: UserMetrics, now: Date) -> Bool {
        clauses.allSatisfy { clause in
            clause.criteria.contains { $0.isMet(by: value($0.metric, metrics, now: now)) }
        }
    }

    /// The reference evaluation of SPEC §1: one edge at a time, declared edges first, each stage once.
    func evaluate(from start: Int, metrics: UserMetrics, now: Date) -> [Transition] {
        let all = edges
        var current = start
        var state = metrics
        var visited: Set<Int> = [start]
        var moves: [Transition] = []
        while let edge = all.first(where: { $0.from == current && !visited.contains($0.to) && Self.holds($0.clauses, state, now: now) }) {
            moves.append(Transition(from: StageID(stages[edge.from].id), to: StageID(stages[edge.to].id), kind: edge.kind, reason: edge.reason))
            visited.insert(edge.to)
            current = edge.to
            state.stageEnteredAt = now
        }
        return moves
    }

    // MARK: Writing the file

    var yaml: String {
        var lines: [String] = []
        lines.append("# generated rule set")
        lines.append("version: \"\(version)\"")
        if let cacheTTL { lines.append("cache_ttl_seconds: \(cacheTTL)") }
        lines.append("stages:")
        for (position, stage) in stages.enumerated() {
            lines.append("  - id: \(stage.id)")
            lines.append("    title: Stage \(position + 1)")
            if position % 2 == 0 { lines.append("    description: The stage at position \(position + 1).") }
            if !stage.entersFromPrevious { lines.append("    enter_from_previous: false") }
            if position > 0 { lines.append(contentsOf: Self.criteriaLines(stage.clauses, indent: "    ")) }
        }
        if !declarations.isEmpty {
            lines.append("edges:")
            for edge in declarations {
                lines.append("  - from: \(edge.from.map { stages[$0].id } ?? "any")")
                lines.append("    to: \(stages[edge.to].id)")
                if let kind = edge.kind { lines.append("    kind: \(kind.rawValue)") }
                if let reason = edge.reason { lines.append("    reason: \(reason)") }
                if let clauses = edge.clauses { lines.append(contentsOf: Self.criteriaLines(clauses, indent: "    ", emptyAsList: true)) }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func criteriaLines(_ clauses: [ModelClause], indent: String, emptyAsList: Bool = false) -> [String] {
        if clauses.isEmpty { return emptyAsList ? ["\(indent)criteria: []"] : [] }
        var lines = ["\(indent)criteria:"]
        for clause in clauses {
            switch clause {
            case .one(let criterion):
                lines.append("\(indent)  - \(criterion.text)")
            case .any(let members):
                lines.append("\(indent)  - any:")
                lines.append(contentsOf: members.map { "\(indent)      - \($0.text)" })
            }
        }
        return lines
    }
}

// MARK: Generating rule sets and metric histories

enum RandomRules {
    static let tiers = ["free", "basic", "pro"]
    static let roles = ["user", "admin", "super-admin"]
    static let names = ["NEW", "ACTIVE", "REGULAR", "POWER", "HOST", "AMBASSADOR", "ADMIN"]

    /// A valid rule set of 2–7 stages; forward-only unless `allowBackward` comes up.
    static func ruleSet(_ random: inout SplitMix64) -> ModelRules {
        let count = random.int(2...7)
        let forwardOnly = random.chance(0.6)
        var stages: [ModelStage] = []
        var declarations: [ModelEdgeDeclaration] = []
        for position in 0..<count {
            let id = "J\(position + 1)_\(names[position])"
            let clauses = position == 0 ? [] : (0..<random.int(0...3)).map { _ in clause(&random) }
            // Some stages are entered only by a declared edge from an earlier stage.
            let gated = position >= 1 && random.chance(0.15)
            stages.append(ModelStage(id: id, clauses: clauses, entersFromPrevious: !gated))
            if gated {
                let origin = random.int(0...(position - 1))
                let adjacent = origin == position - 1
                declarations.append(
                    ModelEdgeDeclaration(
                        from: origin, to: position, kind: adjacent ? nil : .skip,
                        reason: adjacent && random.chance(0.5) ? nil : "gate into \(id)",
                        clauses: random.chance(0.7) ? criteria(&random, max: 2) : nil))
            }
        }
        for number in 0..<random.int(0...3) {
            let to = random.int(0...(count - 1))
            if random.chance(0.15) {
                // `from: any`: every earlier stage (skip) or every later one (backward).
                let backward = !forwardOnly && random.chance(0.5)
                guard backward ? to < count - 1 : to > 0 else { continue }
                declarations.append(
                    ModelEdgeDeclaration(
                        from: nil, to: to, kind: backward ? .backward : .skip,
                        reason: "any into \(stages[to].id) no. \(number)",
                        clauses: random.chance(0.8) ? criteria(&random, max: 2) : nil))
                continue
            }
            let from = random.int(0...(count - 1))
            guard from != to, forwardOnly ? to > from : true else { continue }
            let kind: EdgeKind? = to == from + 1 ? nil : (to > from ? .skip : .backward)
            declarations.append(
                ModelEdgeDeclaration(
                    from: from, to: to, kind: kind,
                    reason: kind == nil && random.chance(0.5) ? nil : "declared \(stages[from].id) to \(stages[to].id) no. \(number)",
                    clauses: random.chance(0.75) ? criteria(&random, max: 3) : nil))
        }
        let unguarded = ModelRules(
            version: "random-\(random.int(1...999))", cacheTTL: random.chance(0.5) ? random.int(1...900) : nil,
            stages: stages, declarations: declarations)
        return guardingBackwardEdges(unguarded, &random)
    }

    /// Most backward edges made unable to cycle: one criterion of every edge out of their target, negated,
    /// is added to their criteria; an edge out of the target with no criterion to negate gets one first.
    /// The rest stay as drawn, and the loader refuses those that can cycle.
    static func guardingBackwardEdges(_ rules: ModelRules, _ random: inout SplitMix64) -> ModelRules {
        var stages = rules.stages
        var declarations = rules.declarations
        for index in declarations.indices where declarations[index].kind == .backward && random.chance(0.6) {
            let target = declarations[index].to
            var guards: [ModelClause] = []
            // Every edge out of the target: the implicit next edge, then declared ones
            if target + 1 < stages.count, stages[target + 1].entersFromPrevious {
                let stage = stages[target + 1]
                let (clauses, negated) = guarded(stage.clauses, &random)
                stages[target + 1] = ModelStage(id: stage.id, clauses: clauses, entersFromPrevious: stage.entersFromPrevious)
                guards.append(.one(negated))
            }
            for other in declarations.indices where other != index {
                let declaration = declarations[other]
                let origins =
                    declaration.from.map { [$0] }
                    ?? (declaration.kind == .skip ? Array(0..<declaration.to) : Array((declaration.to + 1)..<stages.count))
                guard origins.contains(target) else { continue }
                let (clauses, negated) = guarded(declaration.clauses ?? stages[declaration.to].clauses, &random)
                declarations[other] = ModelEdgeDeclaration(
                    from: declaration.from, to: declaration.to, kind: declaration.kind,
                    reason: declaration.reason, clauses: clauses)
                guards.append(.one(negated))
            }
            let declaration = declarations[index]
            declarations[index] = ModelEdgeDeclaration(
                from: declaration.from, to: target, kind: .backward, reason: declaration.reason,
                clauses: (declaration.clauses ?? stages[target].clauses) + guards)
        }
        return ModelRules(version: rules.version, cacheTTL: rules.cacheTTL, stages: stages, declarations: declarations)
    }

    /// `clauses` with a plain criterion that has a negation (one drawn and added if none is there), and that negation.
    private static func guarded(_ clauses: [ModelClause], _ random: inout SplitMix64) -> ([ModelClause], ModelCriterion) {
        for clause in clauses {
            if case .one(let criterion) = clause, let negated = negation(of: criterion) { return (clauses, negated) }
        }
        while true {
            let criterion = criterion(&random)
            if let negated = negation(of: criterion) { return (clauses + [.one(criterion)], negated) }
        }
    }

    /// The criterion met exactly when `criterion` is not (a value being present); nil where the syntax has none.
    static func negation(of criterion: ModelCriterion) -> ModelCriterion? {
        guard criterion.metric != .daysInStage else { return nil }  // restarts on each move: never a guard
        let name = criterion.metric.rawValue
        guard let comparison = criterion.comparison else {
            return ModelCriterion(metric: criterion.metric, comparison: .equal, values: [.bool(false)], text: "\(name) == false")
        }
        let opposite: ComparisonOperator
        switch comparison {
        case .greaterOrEqual: opposite = .less
        case .greater: opposite = .lessOrEqual
        case .lessOrEqual: opposite = .greater
        case .less: opposite = .greaterOrEqual
        case .equal: opposite = .notEqual
        case .notEqual: opposite = .equal
        case .isIn:
            guard criterion.values.count == 1, case .bool(let flag) = criterion.values[0] else { return nil }
            return ModelCriterion(metric: criterion.metric, comparison: .equal, values: [.bool(!flag)], text: "\(name) == \(!flag)")
        }
        let value: String =
            switch criterion.values[0] {
            case .int(let number): String(number)
            case .bool(let flag): String(flag)
            case .text(let text): "'\(text)'"
            }
        return ModelCriterion(metric: criterion.metric, comparison: opposite, values: criterion.values, text: "\(name) \(opposite.rawValue) \(value)")
    }

    static func criteria(_ random: inout SplitMix64, max: Int) -> [ModelClause] {
        (0..<random.int(0...max)).map { _ in clause(&random) }
    }

    static func clause(_ random: inout SplitMix64) -> ModelClause {
        random.chance(0.2) ? .any((0..<random.int(2...3)).map { _ in criterion(&random) }) : .one(criterion(&random))
    }

    static func criterion(_ random: inout SplitMix64) -> ModelCriterion {
        let metric = random.pick(Metric.allCases)
        let name = metric.rawValue
        switch metric.kind {
        case .integer:
            let comparison = random.pick(ComparisonOperator.allCases)
            let top = metric == .daysInStage || metric == .daysSinceSignup ? 10 : 12
            if comparison == .isIn {
                let values = (0..<random.int(1...3)).map { _ in random.int(0...top) }
                return ModelCriterion(
                    metric: metric, comparison: .isIn, values: values.map(ModelValue.int),
                    text: "\(name) in [\(values.map(String.init).joined(separator: ", "))]")
            }
            let value = random.int(0...top)
            let spaced = random.chance(0.8)
            let text = spaced ? "\(name) \(comparison.rawValue) \(value)" : "\(name)\(comparison.rawValue)\(value)"
            return ModelCriterion(metric: metric, comparison: comparison, values: [.int(value)], text: text)
        case .boolean:
            let flag = random.chance(0.5)
            switch random.int(0...3) {
            case 0: return ModelCriterion(metric: metric, comparison: nil, values: [], text: name)
            case 1: return ModelCriterion(metric: metric, comparison: .equal, values: [.bool(flag)], text: "\(name) == \(flag)")
            case 2: return ModelCriterion(metric: metric, comparison: .notEqual, values: [.bool(flag)], text: "\(name) != \(flag)")
            default: return ModelCriterion(metric: metric, comparison: .isIn, values: [.bool(flag)], text: "\(name) in [\(flag)]")
            }
        case .text:
            let pool = metric == .role ? roles : tiers
            func written(_ value: String) -> String {
                switch random.int(0...3) {
                case 0: "\"\(value)\""
                case 1: "'\(value)'"
                default: value
                }
            }
            let comparison = random.pick([ComparisonOperator.equal, .notEqual, .isIn])
            if comparison == .isIn {
                let values = Array(Set((0..<random.int(1...2)).map { _ in random.pick(pool) }))
                return ModelCriterion(
                    metric: metric, comparison: .isIn, values: values.map(ModelValue.text),
                    text: "\(name) in [\(values.map(written).joined(separator: ", "))]")
            }
            let value = random.pick(pool)
            return ModelCriterion(
                metric: metric, comparison: comparison, values: [.text(value)],
                text: "\(name) \(comparison.rawValue) \(written(value))")
        }
    }

    /// A user's first metrics: small counts, sometimes NULL fields.
    static func metrics(_ random: inout SplitMix64, now: Date) -> UserMetrics {
        let signedUp = random.chance(0.1) ? nil : now.addingTimeInterval(-Double(random.int(0...20 * 86_400)))
        return UserMetrics(
            posts: random.int(0...8), postsLast30Days: random.int(0...4), followers: random.int(0...6),
            following: random.int(0...6), eventsOrganized: random.int(0...3), eventsAttended: random.int(0...4),
            onboardingComplete: random.chance(0.15) ? nil : random.chance(0.6),
            subscriptionTier: random.chance(0.15) ? nil : random.pick(tiers),
            role: random.chance(0.1) ? nil : random.pick(roles),
            signedUpAt: signedUp,
            stageEnteredAt: random.chance(0.1) ? nil : signedUp
        )
    }

    /// The user a while later: counts mostly grow, sometimes fall; flags and texts sometimes change.
    static func evolve(_ metrics: UserMetrics, _ random: inout SplitMix64) -> UserMetrics {
        var next = metrics
        func drift(_ value: Int) -> Int { max(0, value + (random.chance(0.2) ? -random.int(0...4) : random.int(0...4))) }
        next.posts = drift(metrics.posts)
        next.postsLast30Days = drift(metrics.postsLast30Days)
        next.followers = drift(metrics.followers)
        next.following = drift(metrics.following)
        next.eventsOrganized = drift(metrics.eventsOrganized)
        next.eventsAttended = drift(metrics.eventsAttended)
        if random.chance(0.2) { next.onboardingComplete = random.chance(0.1) ? nil : random.chance(0.7) }
        if random.chance(0.2) { next.subscriptionTier = random.chance(0.1) ? nil : random.pick(tiers) }
        if random.chance(0.15) { next.role = random.chance(0.1) ? nil : random.pick(roles) }
        return next
    }
}
