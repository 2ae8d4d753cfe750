/// The loader's check that no user can leave a stage and come back to it on unchanged metrics.
///
/// Every cycle of edges contains a backward edge. For each backward edge `A → B` and each
/// path `B → … → A`, the criteria of all the edges of the cycle, taken together, must be
/// unsatisfiable: no value of the metrics meets them all at once. Otherwise a user with such
/// values moves out of `A` and back on every evaluation (or every night), though nothing about
/// them changed.
///
/// The question is decidable for these criteria: per metric, an integer interval with
/// excluded and allowed values, a set of booleans, a set of texts; any-of groups are tried
/// member by member. The search runs breadth-first over (stage, metric values still possible),
/// each such state visited once, so rule sets with many edges stay fast; a walk that repeats a
/// stage holds only if the simple path inside it does, so walks and paths give the same answer.
/// Two choices keep the check sound (it never accepts a cycle that can turn):
/// - `days_in_stage` restarts on every move, so it is a separate unknown for each edge and
///   never makes a cycle impossible (a minimum stay only slows the cycle down).
/// - Metrics are taken as independent (`connections` apart from `followers` and `following`,
///   `posts_last_30_days` apart from `posts`), which may refuse a cycle only the sum rules out.
enum OscillationCheck {
    /// A cycle that can turn: the edges, by index into the rule set's edges, and metric values that take it.
    struct Cycle {
        let edges: [Int]
        /// Such as `posts = 50`, one per metric the criteria constrain.
        let witness: [String]
    }

    /// What the check found.
    enum Outcome {
        /// No cycle can turn.
        case none
        /// The shortest cycle through the first backward edge (in edge order) that can turn.
        case cycle(Cycle)
        /// The search passed ``stateBudget`` states from backward edge `edge`: refused rather than guessed.
        case tooComplex(edge: Int)
    }

    /// How many (stage, values) states the search may visit in all before it gives up.
    static let stateBudget = 20_000

    /// Searches every backward edge, in edge order, for a way back whose criteria hold together.
    static func check(_ edges: [Edge]) -> Outcome {
        var budget = stateBudget
        for (start, edge) in edges.enumerated() where edge.kind == .backward {
            switch search(edges, from: start, budget: &budget) {
            case .none: continue
            case let outcome: return outcome
            }
        }
        return .none
    }

    /// One state reached: where, with which values still possible, by which edge from which state.
    private struct Node {
        let stage: StageID
        let domains: Constraints.State
        let edge: Int
        let parent: Int?
    }

    /// Breadth-first from the backward edge `start` (A → B) over the edges out of B and on, until A.
    private static func search(_ edges: [Edge], from start: Int, budget: inout Int) -> Outcome {
        let target = edges[start].from
        var nodes: [Node] = []
        var seen: Set<Constraints.Key> = []
        for state in Constraints.narrowed([:], by: edges[start].requirement)
        where seen.insert(Constraints.Key(stage: edges[start].to, state: state)).inserted {
            nodes.append(Node(stage: edges[start].to, domains: state, edge: start, parent: nil))
        }
        var next = 0
        while next < nodes.count {
            let node = nodes[next]
            for (index, edge) in edges.enumerated() where edge.from == node.stage {
                for state in Constraints.narrowed(node.domains, by: edge.requirement) {
                    if edge.to == target {
                        var path = [index]
                        var at: Int? = next
                        while let current = at {
                            path.insert(nodes[current].edge, at: 0)
                            at = nodes[current].parent
                        }
                        return .cycle(Cycle(edges: path, witness: Constraints.witness(state)))
                    }
                    guard seen.insert(Constraints.Key(stage: edge.to, state: state)).inserted else { continue }
                    budget -= 1
                    if budget < 0 { return .tooComplex(edge: start) }
                    nodes.append(Node(stage: edge.to, domains: state, edge: index, parent: next))
                }
            }
            next += 1
        }
        return .none
    }
}

/// The values one unknown may still take, narrowed criterion by criterion.
private enum Domain: Hashable {
    /// `low...high` (counts and days are never negative), restricted to `allowed` when set, minus `excluded`.
    case integer(low: Int, high: Int, allowed: Set<Int>?, excluded: Set<Int>)
    case boolean(Set<Bool>)
    /// Restricted to `allowed` when set, minus `excluded`.
    case text(allowed: Set<String>?, excluded: Set<String>)
    /// No value meets the criteria.
    case empty

    init(_ kind: Metric.Kind) {
        switch kind {
        case .integer: self = .integer(low: 0, high: .max, allowed: nil, excluded: [])
        case .boolean: self = .boolean([false, true])
        case .text: self = .text(allowed: nil, excluded: [])
        }
    }

    /// The domain narrowed to the values that meet `criterion`.
    func narrowed(by criterion: Criterion) -> Domain {
        switch (self, criterion.comparison, criterion.threshold) {
        case (.empty, _, _):
            return .empty
        case let (.integer(low, high, allowed, excluded), .isIn, .list(members)):
            let numbers = Set(members.compactMap { if case .integer(let value) = $0 { value } else { nil } })
            return Domain.integer(low: low, high: high, allowed: allowed.map { $0.intersection(numbers) } ?? numbers, excluded: excluded).checked
        case let (.integer(low, high, allowed, excluded), comparison, .integer(limit)):
            var (low, high, excluded) = (low, high, excluded)
            switch comparison {
            case .greaterOrEqual: low = max(low, limit)
            case .greater: guard limit < .max else { return .empty }; low = max(low, limit + 1)
            case .lessOrEqual: high = min(high, limit)
            case .less: guard limit > .min else { return .empty }; high = min(high, limit - 1)
            case .equal: low = max(low, limit); high = min(high, limit)
            case .notEqual: excluded.insert(limit)
            case .isIn: return .empty
            }
            return Domain.integer(low: low, high: high, allowed: allowed, excluded: excluded).checked
        case let (.boolean(values), .isIn, .list(members)):
            return Domain.boolean(values.filter { members.contains(.boolean($0)) }).checked
        case let (.boolean(values), .equal, .boolean(flag)):
            return Domain.boolean(values.filter { $0 == flag }).checked
        case let (.boolean(values), .notEqual, .boolean(flag)):
            return Domain.boolean(values.filter { $0 != flag }).checked
        case let (.text(allowed, excluded), .isIn, .list(members)):
            let texts = Set(members.compactMap { if case .text(let value) = $0 { value } else { nil } })
            return Domain.text(allowed: allowed.map { $0.intersection(texts) } ?? texts, excluded: excluded).checked
        case let (.text(allowed, excluded), .equal, .text(value)):
            return Domain.text(allowed: (allowed ?? [value]).intersection([value]), excluded: excluded).checked
        case let (.text(allowed, excluded), .notEqual, .text(value)):
            return Domain.text(allowed: allowed, excluded: excluded.union([value])).checked
        default:
            return .empty  // a comparison the criterion can never meet (Criterion.isMet says false)
        }
    }

    /// `.empty` when no value is left, the domain otherwise.
    private var checked: Domain { value == nil ? .empty : self }

    /// `metric = value` for one value the domain holds (`metric != a, b` for a text only excluded).
    func example(_ metric: Metric) -> String? {
        value.map { "\(metric.rawValue) \($0)" }
    }

    /// One value the domain holds, after its operator; nil when it holds none.
    private var value: String? {
        switch self {
        case .empty:
            return nil
        case let .integer(low, high, allowed, excluded):
            guard low <= high else { return nil }
            if let allowed {
                return allowed.filter { $0 >= low && $0 <= high && !excluded.contains($0) }.min().map { "= \($0)" }
            }
            var value = low
            while excluded.contains(value) {
                guard value < high else { return nil }
                value += 1
            }
            return "= \(value)"
        case .boolean(let values):
            return values.sorted { !$0 && $1 }.first.map { "= \($0)" }
        case let .text(allowed, excluded):
            if let allowed { return allowed.subtracting(excluded).sorted().first.map { "= \($0)" } }
            return excluded.isEmpty ? "= anything" : "!= \(excluded.sorted().joined(separator: ", "))"
        }
    }
}

/// The criteria of several edges taken together: the values each metric may still take.
private enum Constraints {
    /// Per metric (`days_in_stage` apart: it is local to each edge), the values still possible.
    typealias State = [Metric: Domain]

    /// A stage reached with a state: the search visits each once.
    struct Key: Hashable {
        let stage: StageID
        let state: State
    }

    /// Every distinct state left after also meeting `requirement`, one per way of meeting its any-of
    /// groups; empty when it cannot hold. Its `days_in_stage` criteria are checked on their own.
    static func narrowed(_ state: State, by requirement: Requirement) -> [State] {
        var ways: Set<Way> = [Way(state: state, daysInStage: Domain(.integer))]
        for clause in requirement.clauses {
            var next: Set<Way> = []
            for way in ways {
                for criterion in clause.criteria {
                    if criterion.metric == .daysInStage {
                        let narrowed = way.daysInStage.narrowed(by: criterion)
                        if case .empty = narrowed { continue }
                        next.insert(Way(state: way.state, daysInStage: narrowed))
                    } else {
                        let narrowed = (way.state[criterion.metric] ?? Domain(criterion.metric.kind)).narrowed(by: criterion)
                        if case .empty = narrowed { continue }
                        var state = way.state
                        state[criterion.metric] = narrowed
                        next.insert(Way(state: state, daysInStage: way.daysInStage))
                    }
                }
            }
            ways = next
            if ways.isEmpty { return [] }
        }
        return Array(Set(ways.map(\.state)))
    }

    /// One way of meeting a requirement so far: the shared state and this edge's own `days_in_stage`.
    private struct Way: Hashable {
        let state: State
        let daysInStage: Domain
    }

    /// Values that meet the state, one per metric it constrains, by metric name.
    static func witness(_ state: State) -> [String] {
        state.sorted { $0.key.rawValue < $1.key.rawValue }.compactMap { metric, domain in domain.example(metric) }
    }
}
