import Foundation
import GRDB
import Testing

/// `journey batch` and `journey status` with the batch lease, on small databases of the test's own.
@Suite("journey batch: the lease, its expiry, --take-over, and status")
struct BatchLeaseCLITests {
    /// Three users and one `running` row as a killed batch left it (`lease` NULL for a pre-lease row).
    static func database(_ workspace: Workspace, lease: String?, pid: Int32 = 1) throws -> String {
        let path = workspace.path("lease.sqlite")
        try SmallDatabase.create(
            path,
            """
            INSERT INTO users(id, email, created_at) VALUES (1, 'a@x', '2025-01-01 00:00:00'), (2, 'b@x', '2025-01-01 00:00:00'),
                (3, 'c@x', '2025-01-01 00:00:00');
            INSERT INTO journey_batch_runs(id, started_at, status, rules_version, pid, owner, holder, lease_expires_at)
            VALUES (7, '2025-06-01 02:00:00', 'running', 'mundo-tango-1', \(pid), \(lease == nil ? "NULL" : "'dead-owner'"),
                    \(lease == nil ? "NULL" : "'box pid \(pid)'"), \(lease.map { "'\($0)'" } ?? "NULL"));
            """)
        return path
    }

    /// The status of run `id` in `journey status --json`.
    static func shownStatus(_ workspace: Workspace, _ db: String, run id: Int) async throws -> String? {
        let status = try await workspace.journey(["status", "--db", db, "--json"])
        let runs = try status.jsonObject()["runs"] as? [[String: Any]] ?? []
        return runs.first { $0["id"] as? Int == id }?["status"] as? String
    }

    @Test(
        "the reported case: a running row whose pid is a live process (1, or this test's own) does not block once its lease expired",
        arguments: [Int32(1), getpid()])
    func pidReuse(pid: Int32) async throws {
        try await withWorkspace { workspace in
            // Given a row left running by a killed batch, held as a pid that is alive now, its lease long expired
            let db = try Self.database(workspace, lease: "2025-06-01 02:01:00", pid: pid)

            // When status is asked, Then the row shows as interrupted, not running
            #expect(try await Self.shownStatus(workspace, db, run: 7) == "interrupted")
            let text = try await workspace.journey(["status", "--db", db])
            #expect(text.stdout.contains("#7  interrupted"), "\(text)")
            #expect(text.stdout.contains("lease expired at 2025-06-01T02:01:00Z"), "\(text)")

            // When a batch runs, Then it takes over and finishes, and the old row is closed as interrupted
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])
            #expect(batch.status == 0, "\(batch)")
            let run = try #require(try batch.jsonObject()["run_id"] as? Int)
            #expect(try await Self.shownStatus(workspace, db, run: run) == "finished")
            #expect(
                try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE id = 7 AND status = 'interrupted' AND error LIKE '%lease expired%'") == 1)
        }
    }

    @Test("a row from before leases (no lease at all) is taken over too")
    func legacyRow() async throws {
        try await withWorkspace { workspace in
            let db = try Self.database(workspace, lease: nil, pid: getpid())
            #expect(try await Self.shownStatus(workspace, db, run: 7) == "interrupted")
            let batch = try await workspace.journey(["batch", "--db", db])
            #expect(batch.status == 0, "\(batch)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE id = 7 AND status = 'interrupted'") == 1)
        }
    }

    @Test("a live lease blocks a second run with exit 75 and one line saying until when and how to override")
    func liveLeaseBlocks() async throws {
        try await withWorkspace { workspace in
            // Given a run whose lease holds until 2099
            let db = try Self.database(workspace, lease: "2099-01-01 00:00:00")
            let before = try Direct.fingerprint(db)

            // When a batch starts, Then it exits 75 naming the run, its holder and the lease's end, and writes nothing
            let batch = try await workspace.journey(["batch", "--db", db])
            expectCleanFailure(batch, status: 75, mentions: ["run 7", "box pid 1", "until 2099-01-01T00:00:00Z", "--take-over"])
            #expect(try Direct.fingerprint(db) == before)
            // And status shows it running
            #expect(try await Self.shownStatus(workspace, db, run: 7) == "running")
        }
    }

    @Test("--take-over takes a lease that still holds; the old run is marked interrupted")
    func takeOver() async throws {
        try await withWorkspace { workspace in
            let db = try Self.database(workspace, lease: "2099-01-01 00:00:00")
            let batch = try await workspace.journey(["batch", "--db", db, "--take-over", "--json"])
            #expect(batch.status == 0, "\(batch)")
            #expect(
                try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE id = 7 AND status = 'interrupted' AND error LIKE '%--take-over%'") == 1)
            let run = try #require(try batch.jsonObject()["run_id"] as? Int)
            #expect(try await Self.shownStatus(workspace, db, run: run) == "finished")
        }
    }

    @Test("a batch process taken over by another's --take-over stops with exit 75 and writes nothing more")
    func takenOverProcessStops() async throws {
        try await withWorkspace { workspace in
            // Given a generated database and a slow batch (chunks of 10) holding the lease
            let db = workspace.path("big.sqlite")
            #expect(try await workspace.journey(["generate", "--users", "6000", "--seed", "21", "--output", db]).status == 0)
            #expect(try await workspace.journey(["migrate", "--db", db]).status == 0)
            let errors = workspace.path("first.err")
            let first = try Subprocess(
                JourneyBinary.require(), ["batch", "--db", db, "--chunk-size", "10"], in: workspace.url, stderr: URL(fileURLWithPath: errors))
            for _ in 0..<400 where (try? Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE status = 'running'")) != 1 {
                try await Task.sleep(for: .milliseconds(25))
            }

            // When another batch takes the lease over
            let second = try await workspace.journey(["batch", "--db", db, "--take-over", "--json"])
            let exit = await first.waitForExit()

            // Then the second finished; the first (unless it had already finished) stopped with 75, saying why
            #expect(second.status == 0, "\(second)")
            let message = try String(contentsOfFile: errors, encoding: .utf8)
            if exit.status != 0 {
                #expect(exit.status == 75 && exit.exitedNormally, "\(message)")
                #expect(message.contains("lost its lease"), "\(message)")
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_batch_runs WHERE id = 1 AND status = 'interrupted'") == 1)
            }
            // And every stage still matches its history, with no move recorded twice
            #expect(
                try Direct.integer(db, stagesWithoutHistorySQL) == 0)
            #expect(
                try Direct.integer(
                    db,
                    """
                    SELECT COUNT(*) FROM (SELECT user_id, to_state FROM journey_transitions GROUP BY user_id, to_state HAVING COUNT(*) > 1)
                    """) == 0)
        }
    }

    @Test("usage: --lease-seconds below 1, and --take-over with --dry-run, exit 64")
    func usage() async throws {
        try await withWorkspace { workspace in
            let db = try Self.database(workspace, lease: nil)
            expectUsageFailure(try await workspace.journey(["batch", "--db", db, "--lease-seconds", "0"]), mentions: ["--lease-seconds"])
            expectUsageFailure(try await workspace.journey(["batch", "--db", db, "--dry-run", "--take-over"]), mentions: ["--take-over"])
        }
    }
}
