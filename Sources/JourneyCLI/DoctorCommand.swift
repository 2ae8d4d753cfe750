import ArgumentParser
import Foundation
import Journey

/// `journey doctor [--repair]`: integrity, stages against rules and history, exact counters.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the database; --repair recomputes drifted counters (never history).",
        discussion: "Exit 0 only when nothing is wrong (after --repair: when nothing is left wrong), 1 otherwise.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @Flag(name: .long, help: "Recompute follower_count where it drifted.") var repair = false
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        let findings: DoctorFindings
        let repaired: [Int64]
        let healthy: Bool
    }

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: rules.choice, access: repair ? .readWrite : .readOnly)
        let ruleSet = service.rules
        var findings = try await service.doctor()
        var repaired: [Int64] = []
        if repair, !findings.followerCountDrift.isEmpty {
            repaired = try await service.repairCounters()
            findings = try await service.doctor()
        }
        if output.json {
            try printJSON(Report(findings: findings, repaired: repaired, healthy: findings.isHealthy))
        } else {
            print(Self.describe(findings, repaired: repaired, rules: ruleSet))
        }
        if !findings.isHealthy { throw ExitCode(ExitStatus.problemsFound.rawValue) }
    }

    static func describe(_ findings: DoctorFindings, repaired: [Int64], rules: RuleSet) -> String {
        func users(_ ids: [Int64]) -> String {
            ids.prefix(10).map(String.init).joined(separator: ", ") + (ids.count > 10 ? ", … (\(ids.count) in all)" : "")
        }
        var lines: [String] = []
        lines.append(findings.integrity.isEmpty ? "ok    integrity_check" : "FAIL  integrity_check: \(findings.integrity.prefix(5).joined(separator: "; "))")
        lines.append(
            findings.unknownStages.isEmpty
                ? "ok    every stage is known to the rules"
                : "FAIL  stages unknown to the rules: "
                    + findings.unknownStages.sorted { rules.order(of: $0.key) < rules.order(of: $1.key) }.map {
                        "'\($0.key.printable)' (\(Format.count($0.value, "user")))"
                    }.joined(separator: ", ") + "; add aliases or fix the rows")
        lines.append(
            findings.stageMismatches.isEmpty
                ? "ok    every stage equals its last transition"
                : "FAIL  stage differs from its last transition for users \(users(findings.stageMismatches))")
        lines.append(
            findings.brokenHistories.isEmpty
                ? "ok    every history chains from move to move"
                : "FAIL  broken histories for users \(users(findings.brokenHistories))")
        if !repaired.isEmpty { lines.append("fixed follower_count of users \(users(repaired))") }
        lines.append(
            findings.followerCountDrift.isEmpty
                ? "ok    follower_count is exact"
                : "FAIL  follower_count drifted for users \(users(findings.followerCountDrift)); run journey doctor --repair")
        lines.append(
            findings.missingTriggers.isEmpty
                ? "ok    journey's triggers on the platform tables are in place"
                : "FAIL  journey's triggers are gone or changed (a platform table was rebuilt or renamed): \(findings.missingTriggers.joined(separator: ", ")); "
                    + "run journey migrate to make them again")
        if findings.timestamps.allSatisfy({ $0.unreadable == 0 }) {
            lines.append("ok    every timestamp is readable (\(findings.timestamps.map(\.column).joined(separator: ", ")))")
        }
        for column in findings.timestamps {
            let samples = { (form: String) in (column.samples[form] ?? []).map { "'\($0.printable)'" }.joined(separator: ", ") }
            if column.unreadable > 0 {
                lines.append(
                    "FAIL  \(column.column): \(column.unreadable) unreadable timestamp\(column.unreadable == 1 ? "" : "s"), read as missing "
                        + "(e.g. \(samples(Timestamp.Form.unreadable.rawValue))); store a date, a date and time, or epoch seconds or milliseconds")
            }
            let others = column.forms.filter { $0.key != Timestamp.Form.canonical.rawValue && $0.key != Timestamp.Form.unreadable.rawValue }
            for (form, count) in others.sorted(by: { $0.key < $1.key }) {
                lines.append("info  \(column.column): \(count) stored as \(form) (e.g. \(samples(form))), read as the same instant")
            }
        }
        return lines.joined(separator: "\n")
    }
}
