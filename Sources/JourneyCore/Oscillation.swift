/// The loader's check that no user can leave a stage and come back to it on unchanged metrics.
///
/// Every cycle of edges contains a backward edge. For each backward edge `A → B` and each
/// path `B → … → A` that visits no stage twice, the criteria of all the edges of the cycle,
/// taken together, must be unsatisfiable: no value of the metrics meets them all at once.
/// Otherwise a user with such values moves out of `A` and back on every evaluation (or every
/// night), though nothing about them changed.
///
/// The question is decidable for these criteria: per metric, an integer interval with
/// excluded and allowed values, a set of booleans, a set of texts; any-of groups are tried
/// member by member. Two choices keep the check sound (it never accepts a cycle that can turn):
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

    /// The first cycle, in the order of the edges, whose criteria hold together; nil when none does.
    static func firstCycle(in edges: [Edge]) -> Cycle? {
        for (start, edge) in edges.enumerated() where edge.kind == .backward {
            if let found = search(edges, path: [start], target: edge.from, at: edge.to, visited: [edge.from, edge.to]) {
                return found
            }
        }
        return nil
    }

    /// Depth-first over paths from `stage` back to `target`, pruning as soon as the criteria clash.
    private static func search(_ edges: [Edge], path: [Int], target: StageID, at stage: StageID, visited: Set<StageID>) -> Cycle? {
        guard let witness = Constraints.witness(for: path.map { ($0, edges[$0].requirement) }) else { return nil }
        if stage == target { return Cycle(edges: path, witness: witness) }
        for (index, edge) in edges.enumerated() where edge.from == stage && (edge.to == target || !visited.contains(edge.to)) {
            if let found = search(edges, path: path + [index], target: target, at: edge.to, visited: visited.union([edge.to])) {
                return found
            }
        }
        return nil
    }
}

/// The values one unknown may still take, narrowed criterion by criterion.
private enum Domain {
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

/// The criteria of several edges taken together, solved by trying each member of each any-of group.
private enum Constraints {
    /// One unknown: a metric, or `days_in_stage` of one edge (it restarts on every move).
    struct Unknown: Hashable {
        let metric: Metric
        let edge: Int?
    }

    /// Values of the metrics that meet every requirement at once (`days_in_stage` left out); nil when none exist.
    static func witness(for requirements: [(edge: Int, requirement: Requirement)]) -> [String]? {
        let clauses = requirements.flatMap { edge, requirement in requirement.clauses.map { (edge, $0.criteria) } }
        guard let domains = solve(clauses[...], [:]) else { return nil }
        return domains.filter { $0.key.metric != .daysInStage }
            .sorted { $0.key.metric.rawValue < $1.key.metric.rawValue }
            .compactMap { unknown, domain in domain.example(unknown.metric) }
    }

    private static func solve(_ clauses: ArraySlice<(Int, [Criterion])>, _ domains: [Unknown: Domain]) -> [Unknown: Domain]? {
        guard let (edge, members) = clauses.first else { return domains }
        for criterion in members {
            let unknown = Unknown(metric: criterion.metric, edge: criterion.metric == .daysInStage ? edge : nil)
            let narrowed = (domains[unknown] ?? Domain(criterion.metric.kind)).narrowed(by: criterion)
            if case .empty = narrowed { continue }
            var next = domains
            next[unknown] = narrowed
            if let solved = solve(clauses.dropFirst(), next) { return solved }
        }
        return nil
    }
}
