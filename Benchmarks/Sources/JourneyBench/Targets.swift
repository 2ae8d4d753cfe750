import Foundation

/// The targets, each checked against what was just measured.
final class Targets: @unchecked Sendable {
    struct Row { let target: String; let measured: String; let met: Bool? }
    private(set) var rows: [Row] = []

    /// Records `value` against a bound; with no bound it is shown, not judged.
    func check(_ target: String, _ value: Double, atLeast: Double? = nil, atMost: Double? = nil, format: (Double) -> String) {
        var met: Bool?
        if let atLeast { met = value >= atLeast }
        if let atMost { met = (met ?? true) && value <= atMost }
        rows.append(Row(target: target, measured: format(value), met: met))
    }

    func record(_ target: String, measured: String, met: Bool?) {
        rows.append(Row(target: target, measured: measured, met: met))
    }

    func render(_ report: Report) {
        guard !rows.isEmpty else { return }
        report.say("## Targets")
        report.say()
        report.table(["target", "measured", "met"], rows.map { [$0.target, $0.measured, $0.met.map { $0 ? "met" : "**missed**" } ?? "(shown)"] })
    }
}
