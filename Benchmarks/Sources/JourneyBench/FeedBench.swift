import Foundation
import GRDB
import Journey
import JourneyCore
import JourneySQLite
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Section 8: the transition feed (SPEC §9). What following the database costs a server that
/// nobody writes to, and how long a commit takes to reach a feed reader.
struct FeedBench {
    let dataset: Dataset
    let quick: Bool
    let report: Report
    let targets: Targets
    let directory: DataDirectory

    func run() async throws {
        let path = directory.work + "/feed.sqlite"
        try copyDatabase(from: dataset.migratedPath, to: path)
        defer { removeDatabase(path) }
        report.say("## 8. The transition feed")
        report.say()
        report.say(
            """
            `JourneyService.run()` polls `PRAGMA data_version` on a connection of its own and reads new \
            rows by id after a change. **Idle cost**: CPU time (user + system, `getrusage`) of this \
            process over wall time, with `run()` polling and nothing written, minus the same process \
            idle without it. **Lag**: a second connection to the file (what another process would be) \
            commits one move at a time at random intervals (50 to 350 ms); lag is from the end of \
            `persist` (the commit returned) to the moment a `transitions(after:)` reader holds the row.
            """)
        report.say()
        let seconds = quick ? 2.0 : 20.0
        var rows: [[String]] = []
        let baseline = try await cpuPerSecond(for: seconds) {}
        for interval in [50, 200] as [Int] {
            let options = JourneyOptions(feedPollInterval: .milliseconds(interval))
            let service = try await JourneyService(
                store: try SQLiteStore.open(path: path, mode: .migrate, now: dataNow),
                rules: Rules.bundledDefault(), options: options, clock: ManualClock(dataNow))
            let following = Task { try await service.run() }
            let cpu = try await cpuPerSecond(for: seconds) {}
            let lags = try await lag(service: service, path: path, moves: quick ? 10 : 150)
            following.cancel()
            _ = try? await following.value
            let idle = max(0, cpu - baseline)
            rows.append([
                "\(interval) ms", String(format: "%.5f", idle), fmt(ns: idle * 1e9 / (1_000.0 / Double(interval))),
                fmt(ns: lags.median), fmt(ns: lags.p99), fmt(ns: lags.max), "\(lags.count)",
            ])
            if interval == 200 {
                targets.check("feed lag p99 at the default 200 ms poll (SPEC §9: within a couple of seconds)", lags.p99, atMost: 2e9, format: { fmt(ns: $0) })
            }
        }
        report.table(["poll interval", "idle CPU s per s", "CPU per poll", "lag p50", "lag p99", "lag max", "moves"], rows)
        report.say("Baseline (the same process idle, no `run()`): \(String(format: "%.5f", baseline)) CPU s per s.")
        report.say()
    }

    /// CPU seconds (user + system) this process used per wall second while `body` ran and then `seconds` passed.
    private func cpuPerSecond(for seconds: Double, _ body: () async throws -> Void) async throws -> Double {
        try await body()
        let cpuStart = cpuSeconds(), wallStart = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(Int(seconds * 1_000)))
        return (cpuSeconds() - cpuStart) / (ContinuousClock.now - wallStart).seconds
    }

    private func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Commits `moves` single moves through a second connection and times each until the feed delivers it.
    private func lag(service: JourneyService, path: String, moves: Int) async throws -> Samples {
        let writer = try SQLiteStore.open(path: path, mode: .requireMigrated)
        let users = try await writer.writer.read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM users WHERE customer_journey_state = 'J1_NEW_USER' ORDER BY id LIMIT ?", arguments: [moves])
        }
        let committed = Mutex<[Int64: ContinuousClock.Instant]>([:])
        let start = try await service.lastTransitionID()
        let reader = Task {
            var delivered: [(Int64, ContinuousClock.Instant)] = []
            for try await move in service.transitions(after: start) {
                delivered.append((move.id, .now))
                if delivered.count == users.count { break }
            }
            return delivered
        }
        var random = SplitMix64(seed: 8)
        for user in users {
            try await Task.sleep(for: .milliseconds(50 + random.below(300)))
            let move = PendingMove(
                userID: user, expectedStage: "J1_NEW_USER",
                transitions: [Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "feed benchmark")],
                metrics: UserMetrics())
            let result = try await writer.persist([move], rulesVersion: "feed-bench", source: .cli, now: dataNow)
            let now = ContinuousClock.now
            committed.withLock { for record in result.recorded { $0[record.id] = now } }
        }
        var samples = Samples()
        let commits = committed.withLock { $0 }
        for (id, at) in try await reader.value {
            if let commit = commits[id] { samples.add(at - commit) }
        }
        return samples
    }
}
