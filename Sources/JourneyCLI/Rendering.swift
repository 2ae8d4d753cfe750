import Foundation
import Journey
import JourneyCore
import JourneySQLite

/// Text formats shared by every command.
enum Format {
    /// `2026-11-28T05:04:09Z`: ISO-8601 in UTC, in text, JSON and error messages alike.
    static func timestamp(_ date: Date) -> String {
        SQLTimestamp.iso8601(date)
    }

    /// A duration as a person reads it, rounded to its two largest units: `3 d 4 h`, `5 h 20 min`,
    /// `12 min`, `45 s`, `under 1 s`. Negative durations read as zero.
    static func duration(_ seconds: TimeInterval) -> String {
        guard seconds.isFinite, seconds >= 0.5 else { return seconds.isFinite ? "under 1 s" : "?" }
        let total = Int(seconds.rounded())
        let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3_600, total % 3_600 / 60)
        if days > 0 { return hours > 0 ? "\(days) d \(hours) h" : "\(days) d" }
        if hours > 0 { return minutes > 0 ? "\(hours) h \(minutes) min" : "\(hours) h" }
        if minutes > 0 { return "\(minutes) min" }
        return "\(total) s"
    }

    /// `1 user`, `2 users`, `0 users`: the count and the noun, plural unless the count is one.
    /// `plural` defaults to the noun with an `s`.
    static func count(_ count: Int, _ noun: String, plural: String? = nil) -> String {
        "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
    }

    /// `41.7%`: `part` of `whole` with one decimal; `0.0%` when `whole` is zero.
    static func percent(_ part: Int, of whole: Int) -> String {
        String(format: "%.1f%%", whole > 0 ? Double(part) * 100 / Double(whole) : 0)
    }

    /// How a column of ``table(_:align:indent:)`` is aligned.
    enum Alignment { case left, right }

    /// Rows (the header first, if any) as lines whose columns line up: each column as wide as its
    /// widest cell, two spaces between columns, no trailing spaces. `align` gives each column's
    /// alignment (missing entries: left).
    static func table(_ rows: [[String]], align: [Alignment] = [], indent: String = "") -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            let cells = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column < align.count && align[column] == .right ? pad + cell : cell + pad
            }
            let line = indent + cells.joined(separator: "  ")
            return String(line.reversed().drop { $0 == " " }.reversed())
        }
    }
}

/// The stable JSON object of `journey evaluate --json` and `journey explain --json` (see README).
struct EvaluationReport: Encodable {
    struct Move: Encodable {
        let from: String, to: String, kind: String, reason: String
        let seq: Int?

        enum CodingKeys: String, CodingKey { case from, to, kind, reason, seq }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
            try container.encode(kind, forKey: .kind)
            try container.encode(reason, forKey: .reason)
            try container.encode(seq, forKey: .seq)
        }
    }

    /// One criterion; the members of an any-of group share `criterion` (the text's number) and `criterion_met`.
    struct Check: Encodable {
        let metric: String, `operator`: String, threshold: String, actual: String, met: Bool
        let criterion: Int, criterionMet: Bool
        let anyOfGroup: Int?

        enum CodingKeys: String, CodingKey {
            case metric, `operator`, threshold, actual, met, criterion, criterionMet = "criterion_met", anyOfGroup = "any_of_group"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(metric, forKey: .metric)
            try container.encode(`operator`, forKey: .operator)
            try container.encode(threshold, forKey: .threshold)
            try container.encode(actual, forKey: .actual)
            try container.encode(met, forKey: .met)
            try container.encode(criterion, forKey: .criterion)
            try container.encode(criterionMet, forKey: .criterionMet)
            try container.encode(anyOfGroup, forKey: .anyOfGroup)
        }
    }

    struct Next: Encodable {
        let stage: String, title: String, met: Bool
        let criteriaMet: Int, criteriaCount: Int
        let criteria: [Check]

        enum CodingKeys: String, CodingKey {
            case stage, title, met, criteriaMet = "criteria_met", criteriaCount = "criteria_count", criteria
        }
    }

    let user: Int64
    let storedStage: String
    let stage: String
    let title: String
    let persisted: Bool
    let transitions: [Move]
    let next: Next?
    let pin: PinJSON?
    let metrics: [String: MetricJSON]
    let rulesVersion: String
    let evaluatedAt: Date

    enum CodingKeys: String, CodingKey {
        case user, storedStage = "stored_stage", stage, title, persisted, transitions, next, pin, metrics
        case rulesVersion = "rules_version", evaluatedAt = "evaluated_at"
    }

    /// Every key is always present; `next` and `pin` are null when there is none.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(storedStage, forKey: .storedStage)
        try container.encode(stage, forKey: .stage)
        try container.encode(title, forKey: .title)
        try container.encode(persisted, forKey: .persisted)
        try container.encode(transitions, forKey: .transitions)
        try container.encode(next, forKey: .next)
        try container.encode(pin, forKey: .pin)
        try container.encode(metrics, forKey: .metrics)
        try container.encode(rulesVersion, forKey: .rulesVersion)
        try container.encode(evaluatedAt, forKey: .evaluatedAt)
    }

    init(_ journey: UserJourney, rules: RuleSet, persisted: Bool) {
        let evaluation = journey.evaluation
        user = journey.userID
        storedStage = journey.storedStage
        stage = evaluation.stage.rawValue
        title = rules.stage(evaluation.stage)?.title ?? ""
        self.persisted = persisted
        let seqs = journey.recorded.map(\.seq)
        transitions = evaluation.transitions.enumerated().map { index, move in
            Move(from: move.from.rawValue, to: move.to.rawValue, kind: move.kind.rawValue, reason: move.reason,
                 seq: index < seqs.count ? seqs[index] : nil)
        }
        next = evaluation.next.map { checklist in
            Next(stage: checklist.to.rawValue, title: rules.stage(checklist.to)?.title ?? "", met: checklist.isMet,
                 criteriaMet: checklist.criteriaMet, criteriaCount: checklist.criteriaCount,
                 criteria: checklist.checks.map {
                     Check(metric: $0.metric.rawValue, operator: $0.comparison.rawValue, threshold: $0.threshold,
                           actual: $0.actual, met: $0.met, criterion: $0.number, criterionMet: checklist.holds(criterion: $0.number),
                           anyOfGroup: $0.anyOfGroup)
                 })
        }
        pin = journey.pin.map(PinJSON.init)
        metrics = Dictionary(uniqueKeysWithValues: evaluation.metrics.values(now: evaluation.evaluatedAt).map { ($0.rawValue, MetricJSON($1)) })
        rulesVersion = rules.version
        evaluatedAt = evaluation.evaluatedAt
    }
}

/// An operator's pin in JSON, as evaluate, explain and history print it: `{"stage", "reason", "pinned_at"}`.
struct PinJSON: Encodable {
    let stage: String, reason: String, pinnedAt: Date

    enum CodingKeys: String, CodingKey { case stage, reason, pinnedAt = "pinned_at" }

    init(_ pin: Pin) {
        stage = pin.stage
        reason = pin.reason
        pinnedAt = pin.createdAt
    }
}

/// A metric value in JSON: a number, a boolean, a string or null.
struct MetricJSON: Encodable {
    let value: MetricValue

    init(_ value: MetricValue) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch value {
        case .integer(let number): try container.encode(number)
        case .boolean(let flag): try container.encode(flag)
        case .text(let text): try container.encode(text)
        case .missing: try container.encodeNil()
        }
    }
}

/// The human-readable blocks.
enum TextReport {
    static func evaluation(_ journey: UserJourney, rules: RuleSet, persisted: Bool) -> String {
        let evaluation = journey.evaluation
        var lines = ["User \(journey.userID): \(evaluation.stage) (\(rules.stage(evaluation.stage)?.title ?? ""))"]
        if let pin = journey.pin { lines.append(pinned(pin)) }
        if evaluation.transitions.isEmpty {
            lines.append("Moves: none")
        } else {
            let note = persisted ? "" : " (dry run: not saved)"
            lines.append("Moves\(note):")
            lines += Format.table(evaluation.transitions.map { move in
                ["\(move.from) → \(move.to)", "\(move.kind == .next ? "" : "[\(move.kind.rawValue)] ")\(move.reason)"]
            }, indent: "  ")
        }
        lines.append(contentsOf: checklist(evaluation.next, rules: rules))
        return lines.joined(separator: "\n")
    }

    /// `Pinned in J2_ACTIVE_USER since 2026-11-28 05:04:09: REASON`: explain, evaluate and history show it.
    static func pinned(_ pin: Pin) -> String {
        "Pinned in \(pin.stage.printable) since \(Format.timestamp(pin.createdAt)): \(pin.reason.printable) (automatic moves are off; journey unpin to resume)"
    }

    /// The numbered checklist: one line per criterion, an any-of group as one line (met when any member
    /// is) with its members under it. The numbers are the JSON's `criterion`.
    static func checklist(_ next: Checklist?, rules: RuleSet) -> [String] {
        guard let next else { return ["Next: none, this is the last stage"] }
        var lines = ["Next: \(next.to) (\(rules.stage(next.to)?.title ?? "")): \(next.criteriaMet) of \(next.criteriaCount) criteria met"]
        var shown: Set<Int> = []
        for check in next.checks where shown.insert(check.number).inserted {
            let mark = next.holds(criterion: check.number) ? "[x]" : "[ ]"
            guard check.anyOfGroup != nil else {
                lines.append("  \(check.number). \(mark) \(check.summary)")
                continue
            }
            lines.append("  \(check.number). \(mark) any of:")
            for member in next.checks where member.number == check.number {
                lines.append("       [\(member.met ? "x" : " ")] \(member.summary)")
            }
        }
        return lines
    }
}
