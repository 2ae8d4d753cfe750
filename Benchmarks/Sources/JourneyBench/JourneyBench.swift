import Foundation
import GRDB
import JourneyFixtures
import JourneySQLite

/// `journey-bench [--quick] [--only evaluate,cached,feed,cli,batch,migrate,forms] [--no-1m] [--users N] [--large N] [--journey PATH]`,
/// and `journey-bench postgres --url postgresql://…` (``PostgresBench``).
///
/// Journey against the platform's own approach, on the same data, in one run. See BENCHMARKS.md.
@main
struct JourneyBench {
    static func main() async {
        // As `journey` does at start: both sides of every comparison (Journey's and the raw C API's)
        // run without SQLite's memory statistics, in this process and in its children.
        SQLiteStore.turnOffMemoryStatistics()
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            switch arguments.first {
            case "batch-child": try await BatchChild.run(arguments: arguments)
            case "probe": try await Probe.run(arguments: arguments)
            case "postgres": try await PostgresBench.run(arguments: Array(arguments.dropFirst()))
            case "profile-snapshot": try Probe.profileSnapshot(arguments: arguments)
            case "--help", "-h": print(usage)
            default: try await runAll(arguments)
            }
        } catch {
            FileHandle.standardError.write(Data("journey-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static let usage = """
        usage: journey-bench [--quick] [--only SECTIONS] [--no-1m] [--users N] [--large N] [--journey PATH]
          --quick          ~2,000 users, a handful of iterations (CI)
          --only SECTIONS  comma-separated: evaluate, cached, feed, cli, batch, migrate, forms (default: all)
          --no-1m          skip the 1M-user data set (batch and migrate)
          --users N        users of the main data set (default 100,000; --quick: 2,000)
          --large N        users of the large data set (default 1,000,000)
          --journey PATH   the `journey` binary to time (default: next to this one; built if missing)
        Data is generated once with a fixed seed and kept in Benchmarks/.data/.
        PostgreSQL: journey-bench postgres --url postgresql://… (journey-bench postgres --help).
        """

    static func runAll(_ arguments: [String]) async throws {
        func value(_ flag: String) -> String? {
            guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        let quick = arguments.contains("--quick")
        let sections = Set((value("--only") ?? "evaluate,cached,feed,cli,batch,migrate,forms").split(separator: ",").map(String.init))
        let mainUsers = value("--users").flatMap(Int.init) ?? (quick ? 2_000 : 100_000)
        let largeUsers = (quick || arguments.contains("--no-1m")) ? nil : (value("--large").flatMap(Int.init) ?? 1_000_000)
        let report = Report()
        let targets = Targets()
        let directory = DataDirectory.locate()
        try directory.prepare()
        let started = ContinuousClock.now

        report.say("# journey-bench \(quick ? "--quick" : "(full)")")
        report.say()
        report.say(machineDescription())
        report.say()
        report.say(libraryDescription(directory) + " (this binary was built from the sources as they were when `swift run` started)")
        report.say()

        // The `journey` binary is built (full mode: re-built) now, so it and this binary measure the same library.
        let journey = sections.contains("cli") ? try journeyBinary(value("--journey"), directory: directory, report: report, rebuild: !quick) : nil
        let libraryAtStart = libraryDescription(directory)
        let main = try directory.dataset(users: mainUsers, report: report)
        var datasets = [main]
        var large: Dataset?
        if let largeUsers, sections.contains("batch") || sections.contains("migrate") {
            large = try directory.dataset(users: largeUsers, migrate: false, report: report)
        }
        if let large { datasets.append(large) }

        if sections.contains("evaluate") {
            var bench = EvaluateBench(dataset: main, quick: quick, report: report, targets: targets)
            try bench.run()
        }
        if sections.contains("cached") {
            try await CachedBench(dataset: main, quick: quick, report: report, targets: targets, directory: directory).run()
        }
        if sections.contains("feed") {
            try await FeedBench(dataset: main, quick: quick, report: report, targets: targets, directory: directory).run()
        }
        if sections.contains("cli") {
            if let journey {
                try CLIBench(dataset: main, quick: quick, report: report, targets: targets, directory: directory, journeyBinary: journey).run()
            } else {
                report.say(
                    "## 4. The command line\n\n(skipped: no `journey` binary; build it with `swift build -c release --package-path Benchmarks --product journey`)\n"
                )
            }
        }
        if sections.contains("forms") {
            try TimestampFormsBench(dataset: main, directory: directory, quick: quick, report: report, targets: targets).run()
        }
        if sections.contains("migrate") {
            try MigrateBench(directory: directory, quick: quick, report: report, targets: targets).run(datasets: datasets)
        }
        if let large, !FileManager.default.fileExists(atPath: large.migratedPath), sections.contains("batch") {
            _ = try directory.dataset(users: large.users, migrate: true, report: report)
        }
        if sections.contains("batch") {
            try BatchBench(directory: directory, report: report, targets: targets).run(datasets: datasets)
        }
        if sections.contains("batch") {
            let target = large.flatMap { FileManager.default.fileExists(atPath: $0.migratedPath) ? $0 : nil } ?? main
            try LeversBench(dataset: target, directory: directory, report: report).run()
        }
        if let large, sections.contains("evaluate"), FileManager.default.fileExists(atPath: large.migratedPath) {
            try HeavyAtScale(dataset: large, report: report).run()
        }

        report.say("## Data")
        report.say()
        report.table(
            ["users", "posts", "follows", "events", "RSVPs", "platform file", "migrated file", "generated in"],
            datasets.map { d in
                [
                    fmtCount(d.counts.users), fmtCount(d.counts.posts), fmtCount(d.counts.follows), fmtCount(d.counts.events), fmtCount(d.counts.rsvps),
                    fmtBytes(d.platformBytes), FileManager.default.fileExists(atPath: d.migratedPath) ? fmtBytes(d.migratedBytes) : "–",
                    String(format: "%.0f s", d.generationSeconds),
                ]
            })
        targets.render(report)
        let libraryAtEnd = libraryDescription(directory)
        if libraryAtEnd != libraryAtStart {
            report.say(
                "**Warning: the library changed during the run** (start: \(libraryAtStart) end: \(libraryAtEnd)). This binary measured the sources as they were at start."
            )
            report.say()
        }
        report.say("Total run time: \(String(format: "%.0f", (ContinuousClock.now - started).seconds)) s.")
        let resultsPath = directory.root + "/results-\(quick ? "quick" : "full").md"
        try report.lines.joined(separator: "\n").write(toFile: resultsPath, atomically: true, encoding: .utf8)
        report.note("report written to \(resultsPath)")
    }

    static func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown"
        let memory =
            (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n").first?
            .split(whereSeparator: { $0 == " " }).dropFirst().first.flatMap { Double($0) }.map { String(format: "%.0f GiB", $0 / 1_048_576) } ?? "?"
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
        return
            "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(model), \(memory); SQLite \(RawDatabase.version) (the libsqlite3 GRDB links); load average at start: \(load)."
    }

    /// The commit of the library being measured.
    static func libraryDescription(_ directory: DataDirectory) -> String {
        let root = URL(fileURLWithPath: directory.packageRoot).deletingLastPathComponent().path
        guard let git = which("git"),
            let head = try? spawnCapturing(git, ["-C", root, "rev-parse", "--short", "HEAD"]).output.trimmingCharacters(in: .whitespacesAndNewlines),
            let dirty = try? spawnCapturing(git, ["-C", root, "status", "--porcelain", "--", "Sources", "Package.swift"]).output
        else {
            return "Library: \(root) (no git)."
        }
        let changed = dirty.split(separator: "\n").count
        return "Library measured: \(root) at commit \(head)\(changed > 0 ? " with \(changed) uncommitted change(s) under Sources/" : "")."
    }

    /// The `journey` binary: given, or the library package's static release build, as README's
    /// Install section makes it (`swift build -c release --static-swift-stdlib --product journey`,
    /// run in the library's own folder; full mode re-builds it first, so it is the current library).
    static func journeyBinary(_ given: String?, directory: DataDirectory, report: Report, rebuild: Bool = false) throws -> String? {
        if let given { return given }
        guard let swift = which("swift") else { return nil }
        let root = URL(fileURLWithPath: directory.packageRoot).deletingLastPathComponent().path
        let build = ["build", "-c", "release", "--static-swift-stdlib", "--product", "journey", "--package-path", root]
        let binPath = try spawnCapturing(swift, build + ["--show-bin-path"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let binary = binPath + "/journey"
        if FileManager.default.isExecutableFile(atPath: binary) && !rebuild { return binary }
        report.note("building the journey product (release, --static-swift-stdlib) for the command-line figures")
        let (status, _) = try spawn(swift, build, stdout: "/dev/stderr")
        return status == 0 && FileManager.default.isExecutableFile(atPath: binary) ? binary : nil
    }
}

/// The ten heaviest users of the large data set: the counter against counting.
struct HeavyAtScale {
    let dataset: Dataset
    let report: Report

    func run() throws {
        let raw = try RawDatabase(path: dataset.migratedPath, readOnly: true)
        let journey = try SQLiteStore.open(path: dataset.migratedPath, mode: .migrate, now: dataNow)
        let heavy = try raw.rows("SELECT id, follower_count FROM users ORDER BY follower_count DESC, id LIMIT 10").map { (Int64($0[0])!, Int($0[1])!) }
        let counting = try raw.prepare(try SQLText.snapshotCountingFollowers)
        let column = try raw.prepare(SQLText.snapshot)
        let platform = try raw.prepare(SQLText.platformCounts[1].sql)
        for s in [counting, column] {
            try s.bind(SQLText.window, later: ["user"])
        }
        var publicAPI = Samples(), viaColumn = Samples(), viaCount = Samples(), platformCount = Samples()
        var checksum: Int64 = 0
        for round in 0..<6 {
            for (user, _) in heavy {
                let (snapshot, a) = try timed { try journey.writer.read { db in try SQLiteStore.snapshot(db, user: user, now: dataNow) } }
                checksum &+= Int64(snapshot.metrics.followers)
                for (statement, index) in [(column, 0), (counting, 1)] {
                    let (value, d) = try timed { () throws -> Int64 in
                        statement.bind(statement.index(":user"), user)
                        defer { statement.reset() }
                        _ = try statement.step()
                        return statement.int64(SQLText.Column.followerCount)
                    }
                    checksum &+= value
                    if round > 0 { index == 0 ? viaColumn.add(d) : viaCount.add(d) }
                }
                let (value, p) = try timed { () throws -> Int64 in
                    platform.bind(1, user)
                    defer { platform.reset() }
                    _ = try platform.step()
                    return platform.int64(0)
                }
                checksum &+= value
                if round > 0 { publicAPI.add(a); platformCount.add(p) }
            }
        }
        report.say("### The ten heaviest users at \(dataset.label) users")
        report.say()
        report.say("Followers: \(heavy.map { fmtCount($0.1) }.joined(separator: ", ")). 5 timed rounds after one warm-up round (checksum \(checksum)).")
        report.say()
        report.table(
            ["way", "n", "median", "p99", "÷ column"],
            [
                [
                    "Journey `snapshot(user:now:)` (`.migrate` pool, reads `follower_count`)", "\(publicAPI.count)", fmt(ns: publicAPI.median),
                    fmt(ns: publicAPI.p99), fmtRatio(publicAPI.median / viaColumn.median),
                ],
                ["Journey statement, raw C, `follower_count` column", "\(viaColumn.count)", fmt(ns: viaColumn.median), fmt(ns: viaColumn.p99), "1×"],
                [
                    "Journey statement, raw C, COUNT(*) on follows instead", "\(viaCount.count)", fmt(ns: viaCount.median), fmt(ns: viaCount.p99),
                    fmtRatio(viaCount.median / viaColumn.median),
                ],
                [
                    "the platform's follower COUNT alone (raw C, indexed)", "\(platformCount.count)", fmt(ns: platformCount.median), fmt(ns: platformCount.p99),
                    fmtRatio(platformCount.median / viaColumn.median),
                ],
            ])
    }
}
