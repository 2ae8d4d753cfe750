import ArgumentParser
import Foundation
import Journey
import JourneyStore
import Synchronization

/// `journey batch`: the nightly re-evaluation of every user.
struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Re-evaluate every user in chunks; resumable, safe beside live traffic.",
        discussion: "Exit 75 when another batch holds the lock. See the README for cron and systemd.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @Flag(name: .long, help: "Count what would move; write nothing.") var dryRun = false
    @Option(name: .long, help: "Users per chunk (one transaction each).") var chunkSize = 2_000
    @Flag(name: .long, inversion: .prefixedNo, help: "Show a progress bar on stderr (default: when stderr is a terminal).") var progress: Bool?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard chunkSize >= 1 else { throw ValidationError("Please specify a '--chunk-size' of at least 1.") }
    }

    func run() async throws {
        let service = try await makeService(database: database, rules: rules, mode: dryRun ? .readOnly : .requireMigrated, source: .batch)
        let showProgress = progress ?? (isatty(STDERR_FILENO) == 1)
        let bar = showProgress ? ProgressBar() : nil
        var options = BatchOptions(chunkSize: chunkSize, dryRun: dryRun)
        if let bar {
            options.onChunk = { done, total in bar.update(done, of: total) }
        }
        let summary = try await service.runBatch(options)
        bar?.finish()
        if output.json {
            try printJSON(summary)
            return
        }
        print(dryRun ? "Dry run with rules \(summary.rulesVersion): nothing written." : "Batch run \(summary.runID ?? 0) with rules \(summary.rulesVersion) finished.")
        print("  users seen       \(summary.usersSeen)")
        print("  \(dryRun ? "would move" : "transitions")      \(summary.transitions)")
        for (edge, count) in summary.edges.sorted(by: { $0.key < $1.key }) {
            print("    \(edge.replacingOccurrences(of: "->", with: " → ").padding(toLength: 36, withPad: " ", startingAt: 0)) \(count)")
        }
        print("  pinned, skipped  \(summary.pinned)")
        print("  unknown stages   \(summary.unknownStages.values.reduce(0, +))\(summary.unknownStages.isEmpty ? "" : " (" + summary.unknownStages.sorted { $0.key < $1.key }.map { "'\($0.key.printable)': \($0.value)" }.joined(separator: ", ") + ", left untouched)")")
        print("  conflicts        \(summary.conflicts) (moved by another writer, re-evaluated)")
        print(String(format: "  duration         %.2f s, %.0f users/s", summary.durationSeconds, summary.usersPerSecond))
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
        let line = String(format: "\r[%@%@] %d/%d users  %.0f/s  %@ left ",
                          String(repeating: "#", count: filled), String(repeating: ".", count: 30 - filled),
                          done, total, rate, Format.duration(left))
        writing.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() {
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
