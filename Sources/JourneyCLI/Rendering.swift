import Foundation
import Journey

/// Text formats shared by every command.
enum Format {
    /// `2026-11-28T05:04:09Z`: ISO-8601 in UTC, in text, JSON and error messages alike.
    static func timestamp(_ date: Date) -> String {
        JourneyTimestamp.iso8601(date)
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
            var line = indent + cells.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            return line
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
            lines += Format.table(
                evaluation.transitions.map { move in
                    ["\(move.from) → \(move.to)", "\(move.kind == .next ? "" : "[\(move.kind.rawValue)] ")\(move.reason)"]
                }, indent: "  ")
        }
        lines.append(contentsOf: checklist(evaluation.next, rules: rules))
        return lines.joined(separator: "\n")
    }

    /// `Pinned in J2_ACTIVE_USER since 2026-11-28 05:04:09: REASON`: explain, evaluate and history show it.
    static func pinned(_ pin: Pin) -> String {
        pinned(PinReport(pin))
    }

    /// The same line for a pin as a report carries it.
    static func pinned(_ pin: PinReport) -> String {
        "Pinned in \(pin.stage.printable) since \(Format.timestamp(pin.pinnedAt)): \(pin.reason.printable) (automatic moves are off; journey unpin to resume)"
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
