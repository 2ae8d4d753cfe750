/// Reads the text form of a criterion (`posts >= 50`, `subscription_tier in [basic, pro]`,
/// `onboarding_complete`) and checks its threshold against the metric's type.
enum CriterionParser {
    /// Parses `text` or returns a sentence saying what is wrong with it.
    static func parse(_ text: String) -> Result<Criterion, CriterionProblem> {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return .failure(.init("the criterion is empty")) }
        let (name, rest) = splitWord(trimmed)
        guard let metric = Metric(rawValue: name) else {
            let known = Metric.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(.init("unknown metric '\(name)' (known metrics: \(known))"))
        }
        if rest.isEmpty {
            guard metric.kind == .boolean else {
                return .failure(.init("'\(name)' alone is a test only for a boolean metric; write a comparison such as '\(name) >= 1'"))
            }
            return .success(Criterion(metric: metric, comparison: .equal, threshold: .boolean(true)))
        }
        guard let (comparison, operand) = splitOperator(rest) else {
            let operators = ComparisonOperator.allCases.map(\.rawValue).joined(separator: " ")
            return .failure(.init("expected one of \(operators) after '\(name)', found '\(rest)'"))
        }
        guard !operand.isEmpty else { return .failure(.init("'\(name) \(comparison.rawValue)' has no value")) }
        return threshold(for: metric, comparison: comparison, operand: operand)
            .map { Criterion(metric: metric, comparison: comparison, threshold: $0) }
    }

    private static func threshold(for metric: Metric, comparison: ComparisonOperator, operand: String) -> Result<Threshold, CriterionProblem> {
        if comparison == .isIn {
            guard operand.hasPrefix("["), operand.hasSuffix("]") else {
                return .failure(.init("'in' takes a list such as [a, b], found '\(operand)'"))
            }
            let inner = operand.dropFirst().dropLast()
            let items = inner.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingWhitespace() }
            guard !items.isEmpty, !items.contains(where: \.isEmpty) else {
                return .failure(.init("the list '\(operand)' has an empty item"))
            }
            var members: [MetricValue] = []
            for item in items {
                switch scalar(item, for: metric) {
                case .success(let value): members.append(value)
                case .failure(let problem): return .failure(problem)
                }
            }
            return .success(.list(members))
        }
        let ordering: Set<ComparisonOperator> = [.greater, .greaterOrEqual, .less, .lessOrEqual]
        if metric.kind != .integer, ordering.contains(comparison) {
            return .failure(.init("'\(comparison.rawValue)' compares numbers, but \(metric.rawValue) is a \(metric.kind.rawValue)"))
        }
        return scalar(operand, for: metric).map { value in
            switch value {
            case .integer(let number): .integer(number)
            case .boolean(let flag): .boolean(flag)
            case .text(let string): .text(string)
            case .missing: .text("")
            }
        }
    }

    private static func scalar(_ token: String, for metric: Metric) -> Result<MetricValue, CriterionProblem> {
        let isQuoted = token.count >= 2 && (token.hasPrefix("\"") && token.hasSuffix("\"") || token.hasPrefix("'") && token.hasSuffix("'"))
        let bare = isQuoted ? String(token.dropFirst().dropLast()) : token
        switch metric.kind {
        case .integer:
            guard !isQuoted, let number = Int(bare) else {
                return .failure(.init("\(metric.rawValue) is a count, so its value must be a whole number, not \(token)"))
            }
            return .success(.integer(number))
        case .boolean:
            guard !isQuoted, bare == "true" || bare == "false" else {
                return .failure(.init("\(metric.rawValue) is true or false, not \(token)"))
            }
            return .success(.boolean(bare == "true"))
        case .text:
            guard !bare.isEmpty else { return .failure(.init("\(metric.rawValue) cannot be compared with an empty text")) }
            return .success(.text(bare))
        }
    }

    private static func splitWord(_ text: String) -> (String, String) {
        let end = text.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") } ?? text.endIndex
        return (String(text[..<end]), String(text[end...]).trimmingWhitespace())
    }

    private static func splitOperator(_ text: String) -> (ComparisonOperator, String)? {
        // Longest symbols first, so that `>=` is not read as `>`.
        for comparison in [ComparisonOperator.greaterOrEqual, .lessOrEqual, .equal, .notEqual, .greater, .less] where text.hasPrefix(comparison.rawValue) {
            return (comparison, String(text.dropFirst(comparison.rawValue.count)).trimmingWhitespace())
        }
        if text == "in" || text.hasPrefix("in ") || text.hasPrefix("in[") {
            return (.isIn, String(text.dropFirst(2)).trimmingWhitespace())
        }
        return nil
    }
}

/// Why a criterion's text was refused, as a sentence.
struct CriterionProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
