import ArgumentParser
import Foundation
import Journey
import Synchronization

/// `journey batch`: the nightly re-evaluation of every user.
struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Re-evaluate every user in chunks; resumable, safe beside live traffic.",
        discussion: """
            Exit 75 while another batch holds the lease (it renews it with every chunk and on a timer; \
            a lease not renewed for --lease-seconds is taken over, and that run is marked interrupted). \
            With --strict, exit 1 after the summary when users were left behind: stages unknown to the rules, \
            failed users, or unreadable timestamps. See the README for cron and systemd.

            On PostgreSQL the run is shared: `journey batch` joins the running run of the same rules, \
            or starts one, and its --workers claim shards of it beside any other process's workers, on \
            any machine. A process prints its own part, and the run's totals over every shard. On \
            SQLite (one writer per file) --workers N reads and decides N chunks ahead of the one writer, \
            two reads at a time.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @Flag(name: .long, help: "Count what would move; write nothing.") var dryRun = false
    @Option(name: .long, help: "Users per chunk (one transaction each).") var chunkSize = 2_000
    @Option(name: .long, help: "Workers in this process: PostgreSQL, shards claimed at once; SQLite, chunks read at once.")
    var workers = 1
    @Option(name: .long, help: ArgumentHelp("PostgreSQL: users per shard of a run this process starts (default: 10 chunks).", valueName: "users"))
    var shardSize: Int?
    @Flag(name: .long, inversion: .prefixedNo, help: "Show a progress bar on stderr (default: when stderr is a terminal).") var progress: Bool?
    @Option(name: .long, help: ArgumentHelp("How long the batch lease holds without a renewal.", valueName: "seconds"))
    var leaseSeconds = BatchOptions.defaultLeaseSeconds
    @Flag(name: .long, help: "Take the lease over from a running batch whose lease has not expired (only when that batch is known to be gone).")
    var takeOver = false
    @Flag(name: .long, help: "Exit 1 when users were left behind: unknown stages, failed users, unreadable timestamps.")
    var strict = false
    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func validate() throws {
        guard chunkSize >= 1 else { throw ValidationError("Please specify a '--chunk-size' of at least 1.") }
        guard workers >= 1, workers <= 64 else { throw ValidationError("Please specify '--workers' from 1 to 64.") }
        guard (shardSize ?? 1) >= 1 else { throw ValidationError("Please specify a '--shard-size' of at least 1.") }
        guard leaseSeconds >= 1, leaseSeconds.isFinite else { throw ValidationError("Please specify a '--lease-seconds' of at least 1.") }
        guard !(dryRun && takeOver) else { throw ValidationError("'--take-over' takes a lease; a '--dry-run' takes none.") }
    }

    func run() async throws {
        let service = try await makeService(
            database: database, rules: rules.choice, access: dryRun ? .readOnly : .readWrite,
            concurrentReads: true, source: .batch)
        let showProgress = progress ?? (isatty(STDERR_FILENO) == 1)
        let bar = showProgress ? ProgressBar() : nil
        var options = BatchOptions(
            chunkSize: chunkSize, dryRun: dryRun, leaseSeconds: leaseSeconds, takeOver: takeOver, workers: workers, shardSize: shardSize)
        if let bar {
            options.onChunk = { done, total in bar.update(done, of: total) }
        }
        let stop = StopSignals()
        let received = stop.received
        options.stopRequested = { received.value }
        let summary = try await service.runBatch(options)
        withExtendedLifetime(stop) {}
        bar?.finish()
        if output.json {
            try printJSON(summary)
        } else {
            printText(summary, rules: service.rules)
        }
        if strict, let problems = Self.leftBehind(summary) {
            throw CommandFailure("Users were left behind (--strict): \(problems); the summary names them.", status: .problemsFound)
        }
    }

    /// What `--strict` fails on, as one phrase (`2 users in stages unknown to the rules, 1 failed user`); nil when nothing was left behind.
    static func leftBehind(_ summary: BatchSummary) -> String? {
        let unknown = summary.unknownStages.values.reduce(0, +)
        let failed = summary.failedUsers.values.reduce(0, +)
        let unreadable = summary.unreadableTimestamps.values.reduce(0, +)
        let problems = [
            unknown > 0 ? Format.count(unknown, "user") + " in stages unknown to the rules" : nil,
            failed > 0 ? Format.count(failed, "failed user") : nil,
            unreadable > 0 ? Format.count(unreadable, "unreadable timestamp") : nil,
        ].compactMap { $0 }
        return problems.isEmpty ? nil : problems.joined(separator: ", ")
    }

    /// The summary for people.
    private func printText(_ summary: BatchSummary, rules: RuleSet) {
        print(
            dryRun
                ? "Dry run with rules \(summary.rulesVersion): nothing written."
                : summary.run.map {
                    "Batch run \(summary.runID ?? 0) with rules \(summary.rulesVersion) \($0.status == "finished" ? "finished" : "goes on: this process's workers are done")."
                }
                    ?? "Batch run \(summary.runID ?? 0) with rules \(summary.rulesVersion) finished.")
        print("  users seen       \(summary.usersSeen)")
        print("  \(dryRun ? "would move" : "transitions")      \(summary.transitions)")
        // Edges and stages in the rules' order (J10 after J9), not text order
        func order(_ edge: String) -> (StageOrder, StageOrder) {
            let ends = edge.components(separatedBy: "->")
            return (rules.order(of: ends.first ?? ""), rules.order(of: ends.last ?? ""))
        }
        for (edge, count) in summary.edges.sorted(by: { order($0.key) < order($1.key) }) {
            print("    \(edge.replacingOccurrences(of: "->", with: " → ").padding(toLength: 36, withPad: " ", startingAt: 0)) \(count)")
        }
        print("  pinned, skipped  \(summary.pinned)")
        print(
            "  unknown stages   \(summary.unknownStages.values.reduce(0, +))\(summary.unknownStages.isEmpty ? "" : " (" + summary.unknownStages.sorted { rules.order(of: $0.key) < rules.order(of: $1.key) }.map { "'\($0.key.printable)': \($0.value)" }.joined(separator: ", ") + ", left untouched)")"
        )
        print("  conflicts        \(summary.conflicts) (moved by another writer, re-evaluated)")
        let unreadable = summary.unreadableTimestamps.values.reduce(0, +)
        print(
            "  bad timestamps   \(unreadable)\(unreadable == 0 ? "" : " (" + summary.unreadableTimestamps.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ", read as missing; journey doctor shows samples)")"
        )
        let shortfall = summary.noLongerMeeting.values.reduce(0) { $0 + $1.users }
        print(
            "  \(dryRun ? "would no longer meet" : "no longer meet") their stage's criteria  \(shortfall)\(shortfall == 0 ? "" : " (they keep the stage: moves back only along declared edges)")"
        )
        for (stage, users) in summary.noLongerMeeting.sorted(by: { rules.order(of: $0.key) < rules.order(of: $1.key) }) {
            let sample = users.sample.map(String.init).joined(separator: ", ") + (users.users > users.sample.count ? ", …" : "")
            print("    \(stage.printable.padding(toLength: 36, withPad: " ", startingAt: 0)) \(users.users)  users \(sample)")
        }
        let failures = summary.failedUsers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let samples = summary.failedUserSamples.values.joined().sorted().map(String.init).joined(separator: ", ")
        print(
            "  failed users     \(summary.failedUsers.values.reduce(0, +))" + (failures.isEmpty ? "" : " (\(failures); left untouched, e.g. users \(samples))"))
        print(String(format: "  duration         %.2f s, %.0f users/s", summary.durationSeconds, summary.usersPerSecond))
        if let run = summary.run {
            // A shared (sharded) run: the lines above are this process's part.
            print("  workers          \(summary.workers) in this process (the counts above are theirs)")
            print(
                run.status == "finished"
                    ? "  run \(summary.runID ?? 0) finished: \(run.usersSeen) users seen, \(run.transitions) transitions over its \(run.shards) shards"
                    : "  run \(summary.runID ?? 0) \(run.status): \(run.shardsDone) of \(run.shards) shards done, other workers hold the rest; so far \(run.usersSeen) users seen, \(run.transitions) transitions"
            )
        }
    }
}

/// A one-line progress bar on stderr: users done, rate, time left.
final class ProgressBar: Sendable {
    private let started = Date()
    private let writing = Mutex(())

    func update(_ done: Int, of total: Int) {
        let elapsed = max(Date().timeIntervalSince(started), 0.001)
        let rate = Double(done) / elapsed
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let filled = Int(fraction * 30)
        let left = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let line = String(
            format: "\r[%@%@] %d/%d users  %.0f/s  %@ left ",
            String(repeating: "#", count: filled), String(repeating: ".", count: 30 - filled),
            done, total, rate, Format.duration(left))
        writing.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() {
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// SIGINT and SIGTERM turned into a request to stop after the chunk being written (systemd's stop,
/// `timeout`, Ctrl-C): the run then records itself as failed, freeing its lease, and `journey batch`
/// exits 75 with one line. A second signal of either kind ends the process at once, as by default.
/// Kept alive for as long as the run: its dispatch sources deliver the signals.
final class StopSignals {
    /// The first signal received, by name; nil before any.
    let received = ReceivedSignal()
    private let sources: [any DispatchSourceSignal]

    init() {
        let received = self.received
        sources = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")].map { signo, label in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler {
                received.note(label)
                // The next one is not caught: a second Ctrl-C ends a run that is slow to stop.
                signal(SIGINT, SIG_DFL)
                signal(SIGTERM, SIG_DFL)
            }
            source.resume()
            return source
        }
    }
}

/// The name of the first stop signal a process received, read by the batch before each chunk.
final class ReceivedSignal: Sendable {
    private let name = Mutex<String?>(nil)

    /// Notes `signal` unless one was noted before.
    func note(_ signal: String) { name.withLock { $0 = $0 ?? signal } }

    /// The first signal noted; nil before any.
    var value: String? { name.withLock { $0 } }
}
