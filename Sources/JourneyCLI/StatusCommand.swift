import ArgumentParser
import Foundation
import Journey

/// `journey status`: the funnel, recent moves per edge, time between stages, and the last batch runs.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the funnel, moves per edge, median time between stages and the last batch runs.",
        discussion: """
            With --check: one line and an exit status for monitoring. Exit 0 (the line on stdout) when \
            healthy; exit 1 (the reason on stderr) when the last batch run failed or was interrupted, \
            none finished in 26 hours, or stored stages are unknown to the rules.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .long, help: "Print one line (OK, or the problems on stderr) and exit 1 on a failed, interrupted or overdue batch or unknown stages.")
    var check = false

    /// A batch is overdue when none finished in this many hours.
    static let overdueHours = 26.0

    struct Report: Encodable {
        struct Run: Encodable {
            let id: Int64, status: String, startedAt: Date, finishedAt: Date?, usersSeen: Int, transitions: Int, error: String?
            let holder: String?, leaseExpiresAt: Date?
            enum CodingKeys: String, CodingKey {
                case id, status, startedAt = "started_at", finishedAt = "finished_at", usersSeen = "users_seen", transitions, error
                case holder, leaseExpiresAt = "lease_expires_at"
            }
        }
        /// The adopted rule set in force (without its text); null when none was adopted.
        struct Adoption: Encodable {
            let id: Int64, version: String, source: String, adoptedAt: Date
            enum CodingKeys: String, CodingKey { case id, version, source, adoptedAt = "adopted_at" }
        }
        struct Version: Encodable { let version: String; let transitions: Int }
        let adoptedRules: Adoption?
        let rulesVersionsLastDay: [Version]
        let funnel: [FunnelRow]
        let edges: [EdgeReport]
        let runs: [Run]
        let lastRunFailed: Bool
        let batchOverdue: Bool
        let warnings: [String]

        enum CodingKeys: String, CodingKey {
            case adoptedRules = "adopted_rules", rulesVersionsLastDay = "rules_versions_last_day"
            case funnel, edges, runs, lastRunFailed = "last_run_failed", batchOverdue = "batch_overdue", warnings
        }

        /// Every key is always present, `adopted_rules` null when none was adopted.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(adoptedRules, forKey: .adoptedRules)
            try container.encode(rulesVersionsLastDay, forKey: .rulesVersionsLastDay)
            try container.encode(funnel, forKey: .funnel)
            try container.encode(edges, forKey: .edges)
            try container.encode(runs, forKey: .runs)
            try container.encode(lastRunFailed, forKey: .lastRunFailed)
            try container.encode(batchOverdue, forKey: .batchOverdue)
            try container.encode(warnings, forKey: .warnings)
        }
    }

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: rules.choice, access: .readOnly)
        let ruleSet = service.rules
        let now = Date()
        let funnel = try await service.funnel()
        let edges = try await service.edgeReports()
        let runs = try await service.batchRuns(limit: 5)
        let adopted = try await service.adoptedRules()
        let versions = try await service.rulesVersions(since: now.addingTimeInterval(-86_400))
        // A `running` row whose lease expired holds nothing: its process stopped renewing (killed, frozen, gone).
        let shownRuns = runs.map { run in
            let stale = run.status == "running" && !run.isLive(at: now)
            let error =
                stale
                ? "its lease expired at \(run.leaseExpiresAt.map(Format.timestamp) ?? "an unknown time") (killed, or stopped renewing); the next batch takes over"
                : run.error
            return Report.Run(
                id: run.id, status: stale ? "interrupted" : run.status, startedAt: run.startedAt, finishedAt: run.finishedAt,
                usersSeen: run.usersSeen, transitions: run.transitions, error: error,
                holder: run.holder, leaseExpiresAt: run.leaseExpiresAt)
        }
        let lastFinished = runs.first { $0.status == "finished" }?.finishedAt
        let overdue = lastFinished.map { now.timeIntervalSince($0) > Self.overdueHours * 3_600 } ?? true
        let lastFailed = shownRuns.first.map { $0.status == "failed" || $0.status == "interrupted" } ?? false
        var warnings: [String] = []
        func listed(_ versions: [(version: String, transitions: Int)]) -> String {
            versions.map { "\($0.version) (\($0.transitions))" }.joined(separator: ", ")
        }
        if let adopted {
            let others = versions.filter { $0.version != adopted.version }
            if !others.isEmpty {
                warnings.append(
                    "\(others.reduce(0) { $0 + $1.transitions }) transitions in the last day were decided by other rules than the adopted \(adopted.version): \(listed(others))."
                )
            }
        } else if versions.count > 1 {
            warnings.append(
                "Transitions in the last day were decided by \(versions.count) rule versions: \(listed(versions)); adopt one with journey rules adopt FILE.")
        }
        // A recorded error is a sentence of its own, usually with its period.
        func clause(_ error: String) -> String { error.trimmingCharacters(in: CharacterSet(charactersIn: ". ")) }
        if let last = shownRuns.first, lastFailed {
            warnings.append(
                "The last batch run (\(last.id)) \(last.status == "failed" ? "failed" : "did not finish"): \(clause(last.error ?? "its process is gone")).")
        }
        if let last = shownRuns.first, last.status == "running", let error = last.error {
            // A shared run whose worker failed: it goes on, but the failure is the operator's to see.
            warnings.append("A worker of the running batch run (\(last.id)) failed: \(clause(error)).")
        }
        if overdue {
            warnings.append(lastFinished == nil ? "No batch run has ever finished." : "No batch run finished in the last \(Int(Self.overdueHours)) hours.")
        }
        let unknown = funnel.filter { !$0.known && $0.users > 0 }
        if !unknown.isEmpty {
            warnings.append(
                "Stages unknown to the rules \(ruleSet.version): "
                    + unknown.map { "'\($0.stage.printable)' (\(Format.count($0.users, "user")))" }.joined(separator: ", ")
                    + "; add aliases or fix the rows (journey doctor).")
        }
        let report = Report(
            adoptedRules: adopted.map { .init(id: $0.id, version: $0.version, source: $0.source, adoptedAt: $0.adoptedAt) },
            rulesVersionsLastDay: versions.map { .init(version: $0.version, transitions: $0.transitions) },
            funnel: funnel, edges: edges, runs: shownRuns,
            lastRunFailed: lastFailed, batchOverdue: overdue, warnings: warnings)
        if output.json || check {
            if output.json {
                try printJSON(report)
            } else if warnings.isEmpty, let last = shownRuns.first {
                print("OK: " + Self.healthyLine(last, now: now))
            }
            if check, !warnings.isEmpty {
                throw CommandFailure(warnings.joined(separator: " "), status: .problemsFound)
            }
            return
        }
        if let adopted {
            print("Rules in force: \(adopted.version), adopted \(Format.timestamp(adopted.adoptedAt)) from \(adopted.source) (adoption #\(adopted.id))")
        } else {
            print("Rules in force: none adopted; each caller uses its --rules, $JOURNEY_RULES or the bundled default")
        }
        print("Decided in the last day: \(versions.isEmpty ? "no transitions" : listed(versions))\n")
        print("Users per stage (rules \(ruleSet.version))")
        FunnelRow.print(funnel, rules: ruleSet, indent: "  ")
        print("")
        Self.edgeTable(edges).forEach { print($0) }
        print("\nLast batch runs")
        if shownRuns.isEmpty { print("  none") }
        Self.runTable(shownRuns).forEach { print($0) }
        for warning in warnings { print("\nWARNING: \(warning)") }
    }

    /// The `--check` line of a healthy database (whose last run is finished, or running with one
    /// finished in time): that run, when it finished, and how long ago.
    static func healthyLine(_ last: Report.Run, now: Date) -> String {
        let when =
            last.finishedAt.map { "finished \(Format.timestamp($0)) (\(Format.duration(now.timeIntervalSince($0))) ago)" }
            ?? "running since \(Format.timestamp(last.startedAt))"
        return "batch run #\(last.id) \(when), \(Format.count(last.usersSeen, "user")), \(Format.count(last.transitions, "move"))"
    }

    /// "Moves per edge": the header over its columns, numbers right-aligned. An edge whose median
    /// stay is under a second was mostly crossed in the same evaluation as the move before it.
    static func edgeTable(_ edges: [EdgeReport]) -> [String] {
        let header = ["Moves per edge", "last 7 d", "last 30 d", "all", "median time"]
        let rows = edges.map { edge in
            let median = edge.medianSeconds.map { $0 < 1 ? "same evaluation" : Format.duration($0) } ?? "-"
            return ["  \(edge.from) → \(edge.to)", String(edge.last7Days), String(edge.last30Days), String(edge.total), median]
        }
        return Format.table([header] + rows, align: [.left, .right, .right, .right, .left])
    }

    /// "Last batch runs": one aligned line per run.
    static func runTable(_ runs: [Report.Run]) -> [String] {
        Format.table(
            runs.map { run in
                let lease = run.status == "running" ? run.leaseExpiresAt.map { "lease until \(Format.timestamp($0))" } ?? "" : ""
                return [
                    "#\(run.id)", run.status, "started \(Format.timestamp(run.startedAt))",
                    run.finishedAt.map { "finished " + Format.timestamp($0) } ?? "not finished",
                    Format.count(run.usersSeen, "user") + ",", Format.count(run.transitions, "move"),
                    run.holder.map { "(\($0.printable))" } ?? "", lease,
                ]
            }, align: [.right, .left, .left, .left, .right, .right], indent: "  ")
    }
}

extension FunnelRow {
    /// The rows as bars, with each stage's title and share of all users; values the rules do not
    /// know are marked as such.
    static func print(_ rows: [FunnelRow], rules: RuleSet, indent: String) {
        let total = rows.reduce(0) { $0 + $1.users }
        let widest = max(1, rows.map(\.users).max() ?? 1)
        let lines = Format.table(
            rows.map { row in
                let name = RuleSet.isNeverEvaluated(row.stage) ? "(never evaluated)" : row.stage.printable
                let stage = rules.stage(StageID(row.stage)) ?? rules.aliases[row.stage].flatMap(rules.stage)
                let title = row.known ? stage?.title ?? "" : "(unknown to the rules)"
                let bar = String(repeating: "█", count: max(row.users > 0 ? 1 : 0, row.users * 40 / widest))
                return [name, title, String(row.users), Format.percent(row.users, of: total), bar]
            }, align: [.left, .left, .right, .right, .left], indent: indent)
        lines.forEach { Swift.print($0) }
    }
}
