import JourneyCore

/// Swift source text that builds a value of the rules model: what `embed-rules` writes for a loaded
/// rule set. Every case is spelled out, so a new case in the model fails to compile here rather than
/// being written wrong.
enum SwiftLiteral {
    /// A Swift string literal holding `text` exactly.
    static func string(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func ruleSet(_ rules: RuleSet) -> String {
        let aliases = rules.aliases.sorted { $0.key < $1.key }.map { "\(string($0.key)): \(stageID($0.value))" }
        return """
            RuleSet(
                    version: \(string(rules.version)), source: \(string(rules.source)),
                    stages: [
                        \(rules.stages.map(stage).joined(separator: ",\n            "))
                    ],
                    edges: [
                        \(rules.edges.map(edge).joined(separator: ",\n            "))
                    ],
                    aliases: [\(aliases.isEmpty ? ":" : aliases.joined(separator: ", "))],
                    cacheTTL: \(rules.cacheTTL.map { "\($0)" } ?? "nil"))
            """
    }

    static func stageID(_ id: StageID) -> String { "StageID(\(string(id.rawValue)))" }

    static func stage(_ stage: Stage) -> String {
        "Stage(id: \(stageID(stage.id)), position: \(stage.position), title: \(string(stage.title)), summary: \(string(stage.summary)), "
            + "graduation: \(requirement(stage.graduation)), entersFromPrevious: \(stage.entersFromPrevious))"
    }

    static func edge(_ edge: Edge) -> String {
        "Edge(from: \(stageID(edge.from)), to: \(stageID(edge.to)), kind: \(kind(edge.kind)), reason: \(string(edge.reason)), "
            + "requirement: \(requirement(edge.requirement)), isDeclared: \(edge.isDeclared))"
    }

    static func kind(_ kind: EdgeKind) -> String {
        switch kind {
        case .next: ".next"
        case .skip: ".skip"
        case .backward: ".backward"
        }
    }

    static func requirement(_ requirement: Requirement) -> String {
        "Requirement([" + requirement.clauses.map(clause).joined(separator: ", ") + "])"
    }

    static func clause(_ clause: Clause) -> String {
        switch clause {
        case .criterion(let single): ".criterion(\(criterion(single)))"
        case .anyOf(let members): ".anyOf([" + members.map(criterion).joined(separator: ", ") + "])"
        }
    }

    static func criterion(_ criterion: Criterion) -> String {
        "Criterion(metric: \(metric(criterion.metric)), comparison: \(comparison(criterion.comparison)), threshold: \(threshold(criterion.threshold)))"
    }

    static func metric(_ metric: Metric) -> String {
        switch metric {
        case .posts: ".posts"
        case .postsLast30Days: ".postsLast30Days"
        case .followers: ".followers"
        case .following: ".following"
        case .connections: ".connections"
        case .eventsOrganized: ".eventsOrganized"
        case .eventsAttended: ".eventsAttended"
        case .daysSinceSignup: ".daysSinceSignup"
        case .daysInStage: ".daysInStage"
        case .onboardingComplete: ".onboardingComplete"
        case .subscriptionTier: ".subscriptionTier"
        case .role: ".role"
        }
    }

    static func comparison(_ comparison: ComparisonOperator) -> String {
        switch comparison {
        case .greaterOrEqual: ".greaterOrEqual"
        case .greater: ".greater"
        case .lessOrEqual: ".lessOrEqual"
        case .less: ".less"
        case .equal: ".equal"
        case .notEqual: ".notEqual"
        case .isIn: ".isIn"
        }
    }

    static func threshold(_ threshold: Threshold) -> String {
        switch threshold {
        case .integer(let value): ".integer(\(value))"
        case .boolean(let value): ".boolean(\(value))"
        case .text(let value): ".text(\(string(value)))"
        case .list(let values): ".list([" + values.map(metricValue).joined(separator: ", ") + "])"
        }
    }

    static func metricValue(_ value: MetricValue) -> String {
        switch value {
        case .integer(let number): ".integer(\(number))"
        case .boolean(let flag): ".boolean(\(flag))"
        case .text(let text): ".text(\(string(text)))"
        case .missing: ".missing"
        }
    }
}
