import Foundation
import GRDB
import Testing

/// Starts `journey arguments` in the workspace without waiting for it.
private func launch(_ arguments: [String], in workspace: Workspace) throws -> Subprocess {
    try Subprocess(JourneyBinary.require(), arguments, in: workspace.url)
}

/// The highest `journey_batch_runs` id (0 with none).
private func lastRunID(_ path: String) throws -> Int64 {
    try DatabaseQueue(path: path).read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM journey_batch_runs") } ?? 0
}

/// Waits (bounded, generously: a loaded machine starts a debug binary slowly) until `batch` has
/// recorded a run after `previous`, or has exited (a small run may finish between two looks).
private func waitForBatch(_ batch: Subprocess, after previous: Int64, _ path: String) async throws {
    for _ in 0..<2_400 {
        if !batch.isRunning { return }
        if let last = try? lastRunID(path), last > previous { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("no batch run appeared in journey_batch_runs")
}

/// Users whose stage is not the `to_state` of their last transition (J1 with none).
private func mismatches(_ path: String) throws -> Int {
    try DatabaseQueue(path: path).read { db in
        try Int.fetchOne(db, sql: stagesWithoutHistorySQL) ?? -1
    }
}

@Suite("journey batch killed, locked and reported", .serialized, .timeLimit(.minutes(10)))
struct BatchKillTests {
    @Test("SIGKILL at random moments never leaves a stage without its transition; the next run completes")
    func killedAtRandom() async throws {
        try await withWorkspace { workspace in
            // Given a migrated platform database of 15,000 users
            let path = workspace.path("k.sqlite")
            #expect(try await workspace.journey(["generate", "--users", "15000", "--seed", "12", "--output", path]).status == 0)
            #expect(try await workspace.journey(["migrate", "--db", path]).status == 0)

            // When a batch is killed with SIGKILL at random moments, four times
            var random = SystemRandomNumberGenerator()
            var kills = 0
            // (with a 1 s lease, so that a killed run's lease expires quickly and the next run takes over)
            for _ in 0..<4 {
                let previous = try lastRunID(path)
                let batch = try launch(["batch", "--db", path, "--chunk-size", "150", "--lease-seconds", "1"], in: workspace)
                try await waitForBatch(batch, after: previous, path)
                try await Task.sleep(for: .milliseconds(Int.random(in: 20...600, using: &random)))
                if batch.terminate(SIGKILL) { kills += 1 }
                _ = await batch.waitForExit()

                // Then the file is sound and every stage matches its history
                let integrity = try await DatabaseQueue(path: path).read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
                #expect(integrity == ["ok"])
                #expect(try mismatches(path) == 0)
                // And once the killed run's lease has expired, the next run may take over
                try await Task.sleep(for: .milliseconds(1_100))
            }
            #expect(kills > 0, "at least one batch should have been killed mid-run")

            // And a final run completes, moving no one twice
            let final = try await workspace.journey(["batch", "--db", path, "--json"])
            #expect(final.status == 0, "\(final)")
            let again = try await workspace.journey(["batch", "--db", path, "--json"])
            #expect(try again.jsonObject()["transitions"] as? Int == 0)
            let duplicates = try await DatabaseQueue(path: path).read { db in
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM (SELECT user_id, to_state FROM journey_transitions GROUP BY user_id, to_state HAVING COUNT(*) > 1)
                        """)
            }
            #expect(duplicates == 0, "forward-only rules: no user entered a stage twice")

            // And status shows the killed runs as interrupted and the last one finished
            let status = try await workspace.journey(["status", "--db", path, "--json"])
            #expect(status.status == 0, "\(status)")
            let runs = try #require(try status.jsonObject()["runs"] as? [[String: Any]])
            #expect(runs.first?["status"] as? String == "finished")
            #expect(runs.contains { $0["status"] as? String == "interrupted" })
            #expect(try status.jsonObject()["last_run_failed"] as? Bool == false)
        }
    }

    @Test(
        "SIGTERM or SIGINT stops the batch after its chunk: exit 75 and one line naming the signal, the run recorded as failed, the next run starts at once",
        arguments: [SIGTERM, SIGINT])
    func stoppedBySignal(_ signal: Int32) async throws {
        try await withWorkspace { workspace in
            // Given a batch under way, one user a chunk (so that it is still running when signalled)
            let path = workspace.path("s.sqlite")
            #expect(try await workspace.journey(["generate", "--users", "15000", "--seed", "14", "--output", path]).status == 0)
            #expect(try await workspace.journey(["migrate", "--db", path]).status == 0)
            let batch = try Subprocess(
                JourneyBinary.require(), ["batch", "--db", path, "--chunk-size", "1"], in: workspace.url,
                stderr: URL(fileURLWithPath: workspace.path("stderr.txt")))
            try await waitForBatch(batch, after: 0, path)
            try await Task.sleep(for: .milliseconds(300))

            // When it is signalled
            try #require(batch.terminate(signal), "the batch ended before the signal")
            let exit = await batch.waitForExit()

            // Then it exits 75 with one line naming the signal, and its run is recorded as failed
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            let stderr = try String(contentsOfFile: workspace.path("stderr.txt"), encoding: .utf8)
            #expect(exit.exitedNormally && exit.status == 75, "\(exit) \(stderr)")
            #expect(stderr.hasPrefix("journey: The batch stopped on \(name)") && stderr.split(separator: "\n").count == 1, "\(stderr)")
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM journey_batch_runs WHERE status = 'failed' AND error LIKE '%\(name)%'") == 1)
            #expect(try mismatches(path) == 0)

            // And the next run starts at once (no lease to wait out) and finishes what was left
            let next = try await workspace.journey(["batch", "--db", path, "--json"])
            #expect(next.status == 0, "\(next)")
            #expect(try Direct.integer(path, "SELECT COUNT(*) FROM journey_batch_runs WHERE status = 'finished'") == 1)
            #expect(try mismatches(path) == 0)
        }
    }

    @Test("A second batch exits 75 while the first holds the lock")
    func lockHeld() async throws {
        try await withWorkspace { workspace in
            let path = workspace.path("l.sqlite")
            #expect(try await workspace.journey(["generate", "--users", "15000", "--seed", "13", "--output", path]).status == 0)
            #expect(try await workspace.journey(["migrate", "--db", path]).status == 0)
            let first = try launch(["batch", "--db", path, "--chunk-size", "50"], in: workspace)
            try await waitForBatch(first, after: 0, path)
            let second = try await workspace.journey(["batch", "--db", path])
            if first.isRunning {
                #expect(second.status == 75, "\(second)")
                #expect(second.stderr.contains("Another batch"))
            }
            let exit = await first.waitForExit()
            #expect(exit.status == 0 && exit.exitedNormally)
        }
    }

    @Test("status after a killed run says the last run did not finish")
    func statusAfterKill() async throws {
        try await withWorkspace { workspace in
            let path = workspace.path("s.sqlite")
            #expect(try await workspace.journey(["generate", "--users", "15000", "--seed", "14", "--output", path]).status == 0)
            #expect(try await workspace.journey(["migrate", "--db", path]).status == 0)
            #expect(try await workspace.journey(["batch", "--db", path]).status == 0)
            let previous = try lastRunID(path)
            let batch = try launch(["batch", "--db", path, "--chunk-size", "50", "--lease-seconds", "1"], in: workspace)
            try await waitForBatch(batch, after: previous, path)
            batch.terminate(SIGKILL)
            _ = await batch.waitForExit()
            // The killed run holds its lease until it expires (1 s); after that status calls it interrupted
            try await Task.sleep(for: .milliseconds(1_100))
            let status = try await workspace.journey(["status", "--db", path, "--json"])
            let report = try status.jsonObject()
            let runs = try #require(report["runs"] as? [[String: Any]])
            #expect(runs.count == 2)
            #expect(runs.first?["status"] as? String == "interrupted")
            #expect(runs.last?["status"] as? String == "finished")
            #expect(report["last_run_failed"] as? Bool == true)
            #expect(report["batch_overdue"] as? Bool == false)
            let text = try await workspace.journey(["status", "--db", path])
            #expect(text.stdout.contains("WARNING: The last batch run"))
        }
    }
}
