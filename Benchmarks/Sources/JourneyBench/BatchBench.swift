import Foundation
import GRDB
import Journey
import JourneyCore
import JourneySQLite

/// What one batch child reports (one JSON line on stdout).
struct BatchChildResult: Codable {
    var mode: String
    var users: Int
    var transitions: Int
    var seconds: Double
    var usersPerSecond: Double
    /// Resident set just before the run started (after opening the database and loading the rules).
    var rssKBBefore: Int
    /// Peak resident set of the whole child process (VmHWM) at the end.
    var peakKB: Int
    /// Peak anonymous memory during the run (sampled `RssAnon`), and peak file-backed pages (`RssFile`).
    var peakAnonKB: Int
    var peakFileKB: Int
    /// Users per stage afterwards.
    var funnel: [String: Int]
    /// The run's own account of its time (`BatchSummary.phases`), seconds by phase; nil for the loop.
    var phases: [String: Double]?
}

/// `journey-bench batch-child --mode MODE --db PATH`: one batch, in a process of its own. Modes:
/// `set` (`runBatch`, two readers), `set-tracked` (the same in a service that tracks its writes,
/// as an API server's does), `set-1core` (the same process held to one CPU), `set-dry` and
/// `set-dry-1core` (dry runs),
/// `steady` (a first run untimed, then the timed second run, with nothing left to move), `loop`
/// (`evaluateAndPersist` for every user).
enum BatchChild {
    static func run(arguments: [String]) async throws {
        func value(_ flag: String) -> String? {
            guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        guard let mode = value("--mode"), let path = value("--db") else {
            throw SpawnError(description: "usage: journey-bench batch-child --mode set|set-tracked|set-1core|set-dry|set-dry-1core|steady|loop --db PATH")
        }
        // As `journey batch` opens the file: a pool, whose readers read chunks while its writer writes.
        let database = try SQLiteStore.open(path: path, mode: .requireMigrated, concurrentReads: true, now: dataNow)
        let service = try await JourneyService(
            store: database, rules: Rules.bundledDefault(),
            options: JourneyOptions(cacheCapacity: 16, source: .batch, tracksWrites: mode == "set-tracked"), clock: ManualClock(dataNow))
        if mode == "steady" { _ = try await service.runBatch(BatchOptions()) }
        let rssBefore = memoryStatus().rssKB
        let sampler = MemorySampler()
        let clock = ContinuousClock()
        let start = clock.now
        var users = 0, transitions = 0
        var phases: [String: Double]?
        let limit = value("--limit").flatMap(Int.init) ?? Int.max
        switch mode {
        case "set", "set-tracked", "set-1core", "set-dry", "set-dry-1core", "steady":
            let summary = try await service.runBatch(BatchOptions(dryRun: mode.hasPrefix("set-dry")))
            users = summary.usersSeen
            transitions = summary.transitions
            phases = [
                "waiting_for_reads": summary.phases.waitingForReads, "evaluating": summary.phases.evaluating,
                "writing": summary.phases.writing, "committing": summary.phases.committing,
                "checkpointing": summary.phases.checkpointing, "conflicts": summary.phases.conflicts,
            ]
        case "loop":
            // The one-user path for every user: ids read a page at a time (bounded memory).
            var after: Int64 = 0
            while users < limit {
                let from = after, page = min(10_000, limit - users)
                let ids = try await database.writer.read { db in
                    try Int64.fetchAll(db, sql: "SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?", arguments: [from, page])
                }
                guard let last = ids.last else { break }
                for id in ids {
                    let answer = try await service.evaluateAndPersist(user: id)
                    transitions += answer.recorded.count
                }
                users += ids.count
                after = last
            }
        default:
            throw SpawnError(description: "unknown mode \(mode)")
        }
        let seconds = (clock.now - start).seconds
        let peaks = sampler.stop()
        let peak = memoryStatus().hwmKB
        let funnel = try await database.writer.read { db in
            try Dictionary(
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT customer_journey_state, COUNT(*) FROM users GROUP BY 1").map {
                    ($0[0] as String, $0[1] as Int)
                })
        }
        let result = BatchChildResult(
            mode: mode, users: users, transitions: transitions, seconds: seconds,
            usersPerSecond: Double(users) / seconds, rssKBBefore: rssBefore, peakKB: peak, peakAnonKB: peaks.anonKB,
            peakFileKB: peaks.fileKB, funnel: funnel, phases: phases)
        let data = try JSONEncoder().encode(result)
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Comparison 3: the nightly pass, set-based against a per-user loop, each in a fresh child process.
struct BatchBench {
    let directory: DataDirectory
    let report: Report
    let targets: Targets

    /// The per-user loop is timed over the first `loopLimit` users of the large file (it commits once per user).
    var loopLimit = 200_000

    func runChild(mode: String, dataset: Dataset) throws -> BatchChildResult {
        let path = directory.work + "/batch-\(mode).sqlite"
        try copyDatabase(from: dataset.migratedPath, to: path)
        defer { removeDatabase(path) }
        report.note("batch \(mode) on \(dataset.label) users (child process)")
        let limited = mode == "loop" && dataset.users > loopLimit
        // `-1core`: the child and all its threads held to one CPU (`taskset`), the first this
        // process may use, for the two-core scaling ratio.
        let child = [selfExecutable(), "batch-child", "--mode", mode, "--db", path] + (limited ? ["--limit", "\(loopLimit)"] : [])
        let (status, output, _) =
            mode.hasSuffix("-1core")
            ? try spawnCapturing("/usr/bin/taskset", ["-c", firstAllowedCPU()] + child) : try spawnCapturing(child[0], Array(child.dropFirst()))
        guard status == 0, let line = output.split(separator: "\n").last,
            let result = try? JSONDecoder().decode(BatchChildResult.self, from: Data(line.utf8))
        else {
            throw SpawnError(description: "batch child \(mode) failed (\(status)): \(output)")
        }
        return result
    }

    /// The read side's baseline: the library's chunk statement over every user in chunks of 2,000,
    /// single-threaded through the raw C API on the migrated file (read-only, mapped as the batch's
    /// readers map it), after one warm pass; seconds.
    func rawRead(_ dataset: Dataset) throws -> Double {
        report.note("raw C read of the chunk statement on \(dataset.label) users")
        let database = try RawDatabase(path: dataset.migratedPath, readOnly: true)
        try database.execute("PRAGMA mmap_size = \(SQLiteStore.readerMapSize)")
        let levers = LeversBench(dataset: dataset, directory: directory, report: report)
        _ = try levers.readAll(database)
        return try levers.readAll(database).0.seconds
    }

    /// The first CPU in this process's affinity (`Cpus_allowed_list` in `/proc/self/status`, e.g.
    /// `0-1` or `2,5`); "0" when it cannot be read.
    func firstAllowedCPU() -> String {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return "0" }
        let list = line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        return list.split(whereSeparator: { $0 == "-" || $0 == "," }).first.map(String.init) ?? "0"
    }

    /// Runs the sides for each data set; returns the set-based results by label, for the 1M-vs-100k check.
    @discardableResult
    func run(datasets: [Dataset], modes: [String] = ["set", "set-tracked", "set-1core", "steady", "set-dry", "set-dry-1core", "loop"]) throws -> [String:
        [String:
        BatchChildResult]]
    {
        var all: [String: [String: BatchChildResult]] = [:]
        var rawReads: [String: Double] = [:]
        for dataset in datasets {
            var results: [String: BatchChildResult] = [:]
            for mode in modes { results[mode] = try runChild(mode: mode, dataset: dataset) }
            all[dataset.label] = results
            rawReads[dataset.label] = try rawRead(dataset)
        }
        report.say("## 3. Batch: every user, set-based against a per-user loop")
        report.say()
        report.say(
            "Each side runs in a child process of its own (`journey-bench batch-child --mode MODE --db COPY`) on a fresh copy of the same migrated file (everyone starts in J1 with no history, so most users move). The service is made as `journey batch` makes it (`.requireMigrated` with `concurrentReads`, a pool on the file; `JourneyOptions(cacheCapacity: 16, source: .batch, tracksWrites: false)`, as `journey batch` has it: no cache to keep fresh). `set` is `runBatch(BatchOptions())` (chunks of 2,000, two chunks read at once while the writer writes, moves persisted: the first run); `set-tracked` the same in a service that tracks its own writes (`tracksWrites: true`, an API server's default: TEMP triggers name every user a write touches); `set-1core` the same with the child held to one CPU (`taskset -c N`, the first CPU this process may use: readers, writer and evaluation share one core); `steady` a second run after an untimed first one (nothing left to move); `set-dry` and `set-dry-1core` dry runs (read and evaluate, write nothing) on two cores and on one; `loop` calls `evaluateAndPersist(user:)` for every user. Time is the run alone; peak RSS is the child's VmHWM (anonymous and file-backed pages together); \"RSS before\" is after opening the file and loading the rules (and, for `steady`, after the first run); the peaks of anonymous memory (`RssAnon`) and of file-backed pages (`RssFile`: the mapped binary and the readers' mapped database, the OS page cache's) are sampled every 5 ms during the run. The phases are the run's own account (`BatchSummary.phases`): time spent waiting for a chunk not read yet, evaluating, writing, and of the writing the commits and the WAL checkpoints (SQLite's default auto-checkpoint, timed)."
        )
        report.say()
        var rows: [[String]] = []
        for dataset in datasets {
            guard let results = all[dataset.label] else { continue }
            for mode in modes {
                guard let r = results[mode] else { continue }
                let vsLoop = results["loop"].map { fmtRatio(r.usersPerSecond / $0.usersPerSecond) } ?? "–"
                let phase = { (key: String) in r.phases.map { String(format: "%.2f s", $0[key] ?? 0) } ?? "–" }
                let mb = { (kb: Int) in String(format: "%.1f MB", Double(kb) / 1024) }
                rows.append([
                    dataset.label, mode, fmtCount(r.users), fmtCount(r.transitions), String(format: "%.2f s", r.seconds),
                    fmtCount(Int(r.usersPerSecond)) + "/s", vsLoop, phase("waiting_for_reads"), phase("evaluating"), phase("writing"),
                    phase("committing"), phase("checkpointing"), mb(r.rssKBBefore), mb(r.peakKB), mb(r.peakAnonKB), mb(r.peakFileKB),
                ])
            }
            if let set = results["set"], let loop = results["loop"] {
                report.note("funnel set \(set.funnel) loop \(loop.funnel)")
            }
        }
        if datasets.contains(where: { $0.users > loopLimit }) {
            report.say(
                "On files of more than \(fmtCount(loopLimit)) users the loop runs over the first \(fmtCount(loopLimit)) users only (it commits once per moving user; its users/s is over those); the set-based sides run over every user."
            )
            report.say()
        }
        report.table(
            [
                "users", "side", "users seen", "transitions", "time", "users/s", "÷ loop", "waiting for reads", "evaluating", "writing",
                "of which committing", "of which checkpointing", "RSS before", "peak RSS", "peak anonymous", "peak file-backed",
            ], rows)
        for dataset in datasets {
            guard let results = all[dataset.label] else { continue }
            if let two = results["set"], let one = results["set-1core"] {
                report.say("Two cores against one (\(dataset.label), first run): \(fmtRatio(two.usersPerSecond / one.usersPerSecond)).")
            }
            if let two = results["set-dry"], let one = results["set-dry-1core"] {
                report.say("Two cores against one (\(dataset.label), dry run): \(fmtRatio(two.usersPerSecond / one.usersPerSecond)).")
            }
            if let set = results["set"], let phases = set.phases, set.transitions > 0 {
                let writing = phases["writing"] ?? 0, committing = phases["committing"] ?? 0, checkpointing = phases["checkpointing"] ?? 0
                report.say(
                    "Writing (\(dataset.label), first run): \(fmtCount(Int(Double(set.transitions) / max(writing, 1e-9)))) transition rows/s inside the batch's write transactions. The first run's time: reads not overlapped \(String(format: "%.2f s", phases["waiting_for_reads"] ?? 0)), evaluating \(String(format: "%.2f s", phases["evaluating"] ?? 0)) (in the reading tasks, beside the writes), the write statements \(String(format: "%.2f s", writing - committing - checkpointing)), commits \(String(format: "%.2f s", committing)), WAL checkpoints \(String(format: "%.2f s", checkpointing)), of \(String(format: "%.2f s", set.seconds))."
                )
            }
            if let raw = rawReads[dataset.label], let dry = results["set-dry"] {
                report.say(
                    "Read side (\(dataset.label)): the raw C read of the chunk statement, single-threaded, \(String(format: "%.2f s", raw)); the dry run with two readers \(String(format: "%.2f s", dry.seconds)) (\(fmtRatio(raw / dry.seconds)) the raw read's speed)."
                )
            }
            report.say()
        }
        for dataset in datasets {
            if let set = all[dataset.label]?["set"], let loop = all[dataset.label]?["loop"], loop.users == set.users {
                report.say(
                    set.funnel == loop.funnel
                        ? "Check (\(dataset.label)): both sides leave the same users in each stage: \(set.funnel.sorted { $0.key < $1.key }.map { "\($0.key) \(fmtCount($0.value))" }.joined(separator: ", "))."
                        : "**Check (\(dataset.label)): the sides disagree**: set \(set.funnel), loop \(loop.funnel).")
                report.say()
            }
        }
        for dataset in datasets {
            guard let results = all[dataset.label], let set = results["set"] else { continue }
            if dataset.users >= 1_000_000 {
                targets.check(
                    "batch ≥ 100k users/s at \(dataset.label) users (set-based)", set.usersPerSecond, atLeast: 100_000, format: { fmtCount(Int($0)) + "/s" })
                targets.check("batch: \(dataset.label) users in ≤ 10 s", set.seconds, atMost: 10, format: { String(format: "%.1f s", $0) })
                if let steady = results["steady"] {
                    targets.check(
                        "batch steady state ≥ 250k users/s at \(dataset.label) users", steady.usersPerSecond, atLeast: 250_000,
                        format: { fmtCount(Int($0)) + "/s" })
                }
            }
            if let phases = set.phases, set.transitions > 0 {
                targets.check(
                    "transitions written ≥ 200k rows/s (\(dataset.label))", Double(set.transitions) / max(phases["writing"] ?? 0, 1e-9), atLeast: 200_000,
                    format: { fmtCount(Int($0)) + "/s" })
            }
            if let loop = results["loop"] {
                targets.check("batch ≥ 4× the per-user loop (\(dataset.label))", set.usersPerSecond / loop.usersPerSecond, atLeast: 4, format: fmtRatio)
            }
            targets.check(
                "batch peak anonymous RSS ≤ 64 MB (set-based, \(dataset.label))", Double(set.peakAnonKB) / 1024, atMost: 64,
                format: { String(format: "%.1f MB", $0) })
            if let raw = rawReads[dataset.label], let dry = results["set-dry"] {
                targets.check(
                    "read side (dry run) ≥ 2× the single-threaded raw C read of the chunk statement (\(dataset.label))", raw / dry.seconds, atLeast: 2,
                    format: fmtRatio)
            }
        }
        let labels = datasets.map(\.label)
        if labels.count >= 2, let small = all[labels[0]]?["set"], let large = all[labels[labels.count - 1]]?["set"] {
            targets.check(
                "batch peak anonymous RSS at \(labels[labels.count - 1]) within 1.2× of \(labels[0])",
                Double(large.peakAnonKB) / Double(max(small.peakAnonKB, 1)), atMost: 1.2, format: fmtRatio)
        }
        return all
    }
}
