import Foundation
import GRDB
import Testing

/// Issue 12: exit statuses cron and monitoring can trust (`status --check`, `batch --strict`), and
/// machine output (`--json`: one line per object, errors as JSON on stderr, ISO-8601 `Z` timestamps).
@Suite("journey for machines: status --check, batch --strict, JSON Lines", .timeLimit(.minutes(10)))
struct MonitoringTests {
    /// Three users; a batch run that finished an hour ago (#1), then `runs` (SQL values for
    /// `journey_batch_runs(id, started_at, finished_at, status, error, lease_expires_at)`), then `sql`.
    static func database(_ workspace: Workspace, runs: [String] = [], sql: String = "") throws -> String {
        let path = workspace.path("monitored.sqlite")
        let rows = ["(1, datetime('now', '-2 hours'), datetime('now', '-1 hours'), 'finished', NULL, NULL)"] + runs
        try SmallDatabase.create(
            path,
            """
            INSERT INTO users(id, email, created_at) VALUES (1, 'a@x', '2025-01-01 00:00:00'), (2, 'b@x', '2025-01-01 00:00:00'),
                (3, 'c@x', '2025-01-01 00:00:00');
            INSERT INTO journey_batch_runs(id, started_at, finished_at, status, error, lease_expires_at, rules_version)
            SELECT column1, column2, column3, column4, column5, column6, 'mundo-tango-1' FROM (VALUES \(rows.joined(separator: ", ")));
            \(sql)
            """)
        return path
    }

    /// What makes `status --check` fail, and a word its one line must contain.
    enum Problem: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case failed, interrupted, expiredLease, overdue, neverRan, unknownStage

        var testDescription: String { rawValue }

        func make(in workspace: Workspace) throws -> String {
            switch self {
            case .failed:
                try MonitoringTests.database(
                    workspace, runs: ["(2, datetime('now', '-30 minutes'), datetime('now', '-20 minutes'), 'failed', 'disk full', NULL)"])
            case .interrupted:
                try MonitoringTests.database(
                    workspace, runs: ["(2, datetime('now', '-30 minutes'), datetime('now', '-20 minutes'), 'interrupted', 'taken over by hand', NULL)"])
            case .expiredLease:
                try MonitoringTests.database(workspace, runs: ["(2, datetime('now', '-30 minutes'), NULL, 'running', NULL, datetime('now', '-20 minutes'))"])
            case .overdue:
                try MonitoringTests.database(
                    workspace, sql: "UPDATE journey_batch_runs SET started_at = datetime('now', '-31 hours'), finished_at = datetime('now', '-30 hours');")
            case .neverRan:
                try MonitoringTests.database(workspace, sql: "DELETE FROM journey_batch_runs;")
            case .unknownStage:
                try MonitoringTests.database(workspace, sql: "UPDATE users SET customer_journey_state = 'J7_GHOST' WHERE id = 2;")
            }
        }

        var mention: String {
            switch self {
            case .failed: "(2) failed: disk full"
            case .interrupted: "(2) did not finish: taken over by hand"
            case .expiredLease: "(2) did not finish: its lease expired at 20"
            case .overdue: "No batch run finished in the last 26 hours"
            case .neverRan: "No batch run has ever finished"
            case .unknownStage: "'J7_GHOST' (1 user)"
            }
        }
    }

    @Test("status --check: a healthy database exits 0 with one OK line on stdout, nothing on stderr")
    func healthy() async throws {
        try await withWorkspace { workspace in
            let db = try Self.database(workspace)
            let check = try await workspace.journey(["status", "--check", "--db", db])
            #expect(check.status == 0 && check.stderr.isEmpty, "\(check)")
            #expect(check.stdout.hasPrefix("OK: batch run #1 finished 20") && check.stdout.hasSuffix("Z (1 h ago), 0 users, 0 moves\n"), "\(check)")
            #expect(check.stdout.split(separator: "\n").count == 1, "\(check)")
            // Without --check, status stays a report and exits 0 whatever it finds
            try Direct.execute(db, "UPDATE journey_batch_runs SET status = 'failed', error = 'disk full'")
            let report = try await workspace.journey(["status", "--db", db])
            #expect(report.status == 0 && report.stdout.contains("WARNING: The last batch run (1) failed: disk full."), "\(report)")
        }
    }

    @Test(
        "status --check: a failed, interrupted, overdue or never-run batch, or an unknown stage, exits 1 with the reason as one line on stderr",
        arguments: Problem.allCases)
    func unhealthy(_ problem: Problem) async throws {
        try await withWorkspace { workspace in
            let db = try problem.make(in: workspace)
            let check = try await workspace.journey(["status", "--check", "--db", db])
            expectCleanFailure(check, status: 1, mentions: [problem.mention])

            // Under --json: the report on stdout (one line), the reason as the JSON error on stderr, the same status
            let json = try await workspace.journey(["status", "--check", "--json", "--db", db])
            let message = jsonError(json, status: 1)
            #expect(message?.contains(problem.mention) == true, "\(json)")
            #expect(json.stdout.split(separator: "\n").count == 1 && (try? json.jsonObject()) != nil, "\(json)")
        }
    }

    /// What `batch --strict` fails on: the SQL that leaves it behind, and the summary key that counts it.
    static let leftBehind: [(sql: String, key: String)] = [
        ("UPDATE users SET customer_journey_state = 'J7_GHOST' WHERE id = 2;", "unknown_stages"),
        (
            """
            CREATE TRIGGER frozen BEFORE UPDATE OF customer_journey_state ON users WHEN OLD.id = 3 BEGIN SELECT RAISE(ABORT, 'frozen'); END;
            UPDATE users SET is_onboarding_complete = 1 WHERE id = 3;
            INSERT INTO posts(user_id, created_at) VALUES (3, '2025-02-01 00:00:00');
            INSERT INTO follows(follower_id, following_id) VALUES (3, 1);
            """, "failed_users"
        ),
        ("UPDATE users SET created_at = 'soon' WHERE id = 1;", "unreadable_timestamps"),
    ]

    @Test(
        "batch --strict exits 1 after its summary when users were left behind; 0 otherwise, and without --strict",
        arguments: leftBehind)
    func strictBatch(sql: String, key: String) async throws {
        try await withWorkspace { workspace in
            let clean = try Self.database(workspace)
            let healthy = try await workspace.journey(["batch", "--strict", "--db", clean])
            #expect(healthy.status == 0 && healthy.stderr.isEmpty, "\(healthy)")
            try Direct.execute(clean, sql)

            let lenient = try await workspace.journey(["batch", "--db", clean, "--json"])
            #expect(lenient.status == 0, "\(lenient)")
            #expect((try lenient.jsonObject()[key] as? [String: Int])?.isEmpty == false, "\(lenient)")

            let strict = try await workspace.journey(["batch", "--strict", "--db", clean])
            #expect(strict.status == 1 && strict.stdout.contains("users seen"), "\(strict)")
            #expect(strict.stderrLines.count == 1 && strict.stderr.hasPrefix("journey: Users were left behind (--strict)"), "\(strict)")

            let strictJSON = try await workspace.journey(["batch", "--strict", "--db", clean, "--json"])
            jsonError(strictJSON, status: 1)
            #expect(strictJSON.stdout.split(separator: "\n").count == 1 && (try? strictJSON.jsonObject()) != nil, "\(strictJSON)")
        }
    }

    @Test("every --json output is one line of valid JSON, with [] for empty arrays and ISO-8601 Z timestamps")
    func jsonLines() async throws {
        try await withWorkspace { workspace in
            let db = try await workspace.platformDatabase()
            let commands: [[String]] = [
                ["migrate", "--db", db], ["evaluate", "5", "--db", db, "--dry-run"], ["explain", "5", "--db", db],
                ["evaluate", "5", "--db", db], ["history", "5", "--db", db], ["batch", "--db", db, "--dry-run"],
                ["batch", "--db", db], ["status", "--db", db], ["doctor", "--db", db],
            ]
            for command in commands {
                let result = try await workspace.journey(command + ["--json"])
                #expect(result.status == 0, "\(result)")
                let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(result)")
                #expect((try? JSONSerialization.jsonObject(with: Data(lines[0].utf8))) is [String: Any], "not a JSON object: \(result)")
                #expect(!result.stdout.contains("[\n") && !result.stdout.contains("[ ]"), "\(result)")
                // A timestamp is `YYYY-MM-DDTHH:MM:SSZ`, never the database's `YYYY-MM-DD HH:MM:SS`
                #expect(result.stdout.range(of: #"\d{4}-\d\d-\d\d \d\d:\d\d"#, options: .regularExpression) == nil, "\(result)")
            }
            let evaluate = try await workspace.journey(["evaluate", "5", "--db", db, "--dry-run", "--json"])
            #expect(
                (try evaluate.jsonObject()["evaluated_at"] as? String)?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil,
                "\(evaluate)")
            let unmoved = try await workspace.journey(["history", "5", "--db", db, "--json"])
            #expect((try unmoved.jsonObject()["user"] as? NSNumber)?.intValue == 5, "numbers stay numbers: \(unmoved)")
        }
    }

    @Test("errors under --json are one JSON object on stderr with the exit status: missing input, unknown user, usage")
    func jsonErrors() async throws {
        try await withWorkspace { workspace in
            let missing = try await workspace.journey(["evaluate", "1", "--db", workspace.path("none.sqlite"), "--json"])
            expectCleanFailure(missing, status: 66, mentions: ["no database at"])
            let db = try Self.database(workspace)
            let unknown = try await workspace.journey(["history", "99", "--db", db, "--json"])
            expectCleanFailure(unknown, status: 67, mentions: ["99"])
            let usage = try await workspace.journey(["batch", "--chunk-size", "0", "--db", db, "--json"])
            #expect(usage.stdout.isEmpty, "\(usage)")
            #expect(jsonError(usage, status: 64)?.contains("--chunk-size") == true, "\(usage)")
            let text = try await workspace.journey(["history", "99", "--db", db])
            expectCleanFailure(text, status: 67)
        }
    }

    @Test("status for people: ISO-8601 Z timestamps, titled funnel with percentages, the edge table's header over its numbers")
    func humanStatus() async throws {
        try await withWorkspace { workspace in
            let db = try await workspace.platformDatabase()
            #expect(try await workspace.journey(["batch", "--db", db]).status == 0)
            let status = try await workspace.journey(["status", "--db", db])
            #expect(status.status == 0, "\(status)")
            let lines = status.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("  J1_NEW_USER ") && $0.contains("%") && $0.contains("New") }, "\(status)")
            let header = try #require(lines.firstIndex { $0.hasPrefix("Moves per edge") }, "\(status)")
            let allEnd = try #require(lines[header].range(of: "  all")?.upperBound)
            let column = lines[header].distance(from: lines[header].startIndex, to: allEnd)
            for row in lines[(header + 1)...].prefix(while: { $0.hasPrefix("  J") }) {
                #expect(row.count > column && row[row.index(row.startIndex, offsetBy: column - 1)].isNumber, "not aligned: \(row)\n\(status)")
            }
            #expect(status.stdout.range(of: #"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, options: .regularExpression) != nil, "\(status)")
            #expect(!status.stdout.contains(" 0s"), "\(status)")
        }
    }
}

/// Issue 12: the demo shows the moves its sections describe, and the commands it suggests run as printed.
@Suite("journey demo for people")
struct DemoOutputTests {
    @Test("the two-hop section shows both moves; each suggested command runs as printed")
    func demo() async throws {
        try await withWorkspace { workspace in
            let demo = try await workspace.journey(["demo", "--output", workspace.path("demo.sqlite")])
            #expect(demo.status == 0, "\(demo)")
            let sections = demo.stdout.components(separatedBy: "\n── ")
            let twoHops = try #require(sections.first { $0.contains("Two hops") }, "\(demo)")
            #expect(twoHops.contains("\nMoves:\n  J1_NEW_USER → J2_ACTIVE_USER ") && twoHops.contains("\n  J2_ACTIVE_USER → J3_POWER_USER "), "\(twoHops)")
            #expect(!twoHops.contains("Moves: none"), "\(twoHops)")

            // The working directory is no package, so the suggestions name the binary by its path
            let binary = try JourneyBinary.require().standardizedFileURL.path
            let suggested = demo.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("  \(binary) ") }
            #expect(suggested.count == 3, "\(demo)")
            for line in suggested {
                let run = try await workspace.run(URL(fileURLWithPath: "/bin/sh"), ["-c", line])
                #expect(run.status == 0 && !run.stdout.isEmpty, "\(line): \(run)")
            }
        }
    }
}
