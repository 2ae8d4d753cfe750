/// A comparison a criterion makes between a metric and its threshold.
public enum ComparisonOperator: String, CaseIterable, Hashable, Sendable, Codable {
    case greaterOrEqual = ">="
    case greater = ">"
    case lessOrEqual = "<="
    case less = "<"
    case equal = "=="
    case notEqual = "!="
    case isIn = "in"
}

/// The right-hand side of a criterion.
public enum Threshold: Hashable, Sendable, CustomStringConvertible {
    case integer(Int)
    case boolean(Bool)
    case text(String)
    case list([MetricValue])

    /// The threshold as the rules file writes it: `50`, `true`, `super-admin`, or `[basic, enthusiast]` for a list.
    public var description: String {
        switch self {
        case .integer(let value): String(value)
        case .boolean(let value): String(value)
        case .text(let value): value
        case .list(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// One test on one metric, such as `posts >= 50`.
public struct Criterion: Hashable, Sendable, CustomStringConvertible {
    /// The metric tested (SPEC §2), such as `posts`.
    public let metric: Metric
    /// How the metric's value is compared with ``threshold``; `in` needs a list threshold.
    public let comparison: ComparisonOperator
    /// The value the metric is compared with; its type matches the metric's ``Metric/kind`` (a list for `in`).
    public let threshold: Threshold

    /// A criterion testing `metric` against `threshold` with `comparison`; the rules parser checks
    /// that the comparison and threshold suit the metric's kind, this initializer does not.
    public init(metric: Metric, comparison: ComparisonOperator, threshold: Threshold) {
        self.metric = metric
        self.comparison = comparison
        self.threshold = threshold
    }

    /// The criterion as written in a rules file, such as `posts >= 50` or `subscription_tier in [basic, enthusiast]`.
    public var description: String { "\(metric.rawValue) \(comparison.rawValue) \(threshold)" }

    /// Whether `value` satisfies the criterion. A missing value never does.
    public func isMet(by value: MetricValue) -> Bool {
        switch (value, comparison, threshold) {
        case (.missing, _, _):
            return false
        case (_, .isIn, .list(let members)):
            return members.contains(value)
        case (.integer(let actual), _, .integer(let limit)):
            switch comparison {
            case .greaterOrEqual: return actual >= limit
            case .greater: return actual > limit
            case .lessOrEqual: return actual <= limit
            case .less: return actual < limit
            case .equal: return actual == limit
            case .notEqual: return actual != limit
            case .isIn: return false
            }
        case (.boolean(let actual), .equal, .boolean(let expected)):
            return actual == expected
        case (.boolean(let actual), .notEqual, .boolean(let expected)):
            return actual != expected
        case (.text(let actual), .equal, .text(let expected)):
            return actual == expected
        case (.text(let actual), .notEqual, .text(let expected)):
            return actual != expected
        default:
            return false
        }
    }
}

/// One line of a requirement: a criterion, or a group of which any one must hold.
public enum Clause: Hashable, Sendable {
    case criterion(Criterion)
    case anyOf([Criterion])

    /// The criteria of the clause: the single one, or every member of the any-of group in file order.
    public var criteria: [Criterion] {
        switch self {
        case .criterion(let criterion): [criterion]
        case .anyOf(let criteria): criteria
        }
    }
}

/// What must hold to take an edge: every clause (all-of); an empty requirement always holds.
public struct Requirement: Hashable, Sendable {
    /// The clauses, in the order the rules file lists them; all must hold (an empty list always holds).
    public let clauses: [Clause]

    /// A requirement that holds when every clause in `clauses` holds.
    public init(_ clauses: [Clause]) { self.clauses = clauses }

    /// Every criterion, in declaration order, with the index of its any-of group if it has one.
    public var criteria: [(criterion: Criterion, anyOfGroup: Int?)] {
        clauses.enumerated().flatMap { index, clause -> [(criterion: Criterion, anyOfGroup: Int?)] in
            switch clause {
            case .criterion(let criterion): [(criterion, nil)]
            case .anyOf(let members): members.map { ($0, index) }
            }
        }
    }
}
