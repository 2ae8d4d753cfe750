import Foundation
import GRDB
import Testing

/// `journey batch --workers N` and several `journey batch` processes on one PostgreSQL run (SPEC §10),
/// against a real server: `JOURNEY_TEST_POSTGRES_URL` (scripts/postgres-test-cluster.sh), skipped without it.
/// The platform is generated in the server (3,000 users, activity spread by id), migrated by
/// `journey migrate`, and copied per run with `CREATE DATABASE … TEMPLATE`.
@Suite("journey batch --workers on PostgreSQL", .enabled(if: PostgresPlatform.server != nil, "JOURNEY_TEST_POSTGRES_URL is not set"), .serialized)
struct PostgresWorkersTests {
    /// `--workers 4` in one process, and two processes started together, each leave exactly what one
    /// worker leaves: the same stage and the same transitions (user, seq, from, to) for every user,
    /// no move twice, and the run's totals over its shards equal to the single worker's.
    @Test func fourWorkersAndTwoProcessesEqualOneWorker() async throws {
        try await withWorkspace { workspace in
            try await PostgresPlatform.with(workspace) { platform in
                let batch = ["batch", "--json", "--chunk-size", "40", "--shard-size", "200"]
                let single = try await platform.copy()
                let alone = try await workspace.journey(batch + ["--db", single])
                try #require(alone.status == 0, "\(alone)")
                let aloneRun = try #require(try alone.jsonObject()["run"] as? [String: Any])
                #expect(aloneRun["status"] as? String == "finished" && aloneRun["users_seen"] as? Int == 3_000)
                let oracle = try await platform.outcome(single)
                let oracleTotals = try await platform.lastRun(single)
                #expect(oracleTotals.transitions > 500, "the platform moves many users: \(oracleTotals)")
                try await platform.expectConsistent(single)

                let four = try await platform.copy()
                let workers = try await workspace.journey(batch + ["--workers", "4", "--db", four])
                try #require(workers.status == 0, "\(workers)")
                #expect(try workers.jsonObject()["workers"] as? Int == 4)
                #expect(try await platform.outcome(four) == oracle)
                #expect(try await platform.lastRun(four) == oracleTotals)
                try await platform.expectConsistent(four)

                let two = try await platform.copy()
                async let first = workspace.journey(batch + ["--db", two])
                async let second = workspace.journey(batch + ["--db", two])
                let results = try await [first, second]
                for result in results { try #require(result.status == 0, "\(result)") }
                #expect(try await platform.outcome(two) == oracle)
                // Whether the second joined the first's run or started after it ended, the moves were
                // counted by one run, whose totals are the single worker's.
                let moving = try await platform.lines(two, "SELECT users_seen || ' ' || transitions FROM journey_batch_runs WHERE transitions > 0")
                #expect(moving == ["\(oracleTotals.usersSeen) \(oracleTotals.transitions)"])
                let parts = try results.map { try #require($0.jsonObject()["transitions"] as? Int) }
                #expect(parts.reduce(0, +) == oracleTotals.transitions)
                try await platform.expectConsistent(two)
            }
        }
    }

    /// `journey batch --workers 2` SIGKILLed at random instants, again and again, with one-second
    /// leases; then run to the end: every stage is its last transition's, no (user, seq) twice, and
    /// the result is the single worker's.
    @Test func killedWorkersLeaveNothingHalfDone() async throws {
        try await withWorkspace { workspace in
            try await PostgresPlatform.with(workspace) { platform in
                let batch = ["batch", "--json", "--chunk-size", "20", "--shard-size", "100", "--lease-seconds", "1"]
                let single = try await platform.copy()
                try #require(try await workspace.journey(batch + ["--db", single]).status == 0)
                let oracle = try await platform.outcome(single)
                let oracleTotals = try await platform.lastRun(single)

                let killed = try await platform.copy()
                var kills = 0
                for round in 0..<4 {
                    let child = try Subprocess(
                        try JourneyBinary.require(), batch + ["--workers", "2", "--db", killed], in: workspace.url,
                        stdout: workspace.url.appendingPathComponent("kill-\(round).out"), stderr: workspace.url.appendingPathComponent("kill-\(round).err"))
                    try await Task.sleep(for: .milliseconds(Int.random(in: 150...1_200)))
                    if child.terminate(SIGKILL) { kills += 1 }
                    _ = await child.waitForExit()
                    try await platform.expectConsistent(killed)
                    // Let the dead workers' shard leases expire, so the next process may resume them.
                    try await Task.sleep(for: .milliseconds(1_200))
                }
                #expect(kills >= 1, "no batch was still running when killed")
                let rest = try await workspace.journey(batch + ["--db", killed])
                try #require(rest.status == 0, "\(rest)")
                #expect(try await platform.outcome(killed) == oracle)
                try await platform.expectConsistent(killed)
                #expect(try await platform.lastRun(killed).status == "finished")
                _ = oracleTotals
                // However many runs it took, every move was recorded once: as many rows as the oracle's.
                #expect(
                    try await platform.lines(killed, "SELECT count(*) FROM journey_transitions")
                        == platform.lines(single, "SELECT count(*) FROM journey_transitions"))
            }
        }
    }
}

/// A generated platform on the test server, migrated, to copy per run.
struct PostgresPlatform: Sendable {
    static let server = ProcessInfo.processInfo.environment["JOURNEY_TEST_POSTGRES_URL"]
    let workspace: Workspace
    /// The migrated template database's URL.
    let template: String
    let name: String

    /// The server URL with another database name.
    static func url(_ database: String) throws -> String {
        let server = try #require(server)
        let slash = try #require(server.lastIndex(of: "/"))
        return server[...slash] + database
    }

    /// Creates the platform, runs `body`, drops every database it made.
    static func with(_ workspace: Workspace, _ body: (PostgresPlatform) async throws -> Void) async throws {
        let name = "journey_w_\(UInt32.random(in: 0...UInt32.max))"
        let platform = PostgresPlatform(workspace: workspace, template: try url(name), name: name)
        try await platform.sql(try #require(server), "CREATE DATABASE \(name)")
        do {
            try await platform.sql(platform.template, Self.schema)
            let migrated = try await workspace.journey(["migrate", "--db", platform.template])
            try #require(migrated.status == 0, "\(migrated)")
            try await body(platform)
        } catch {
            await platform.dropAll()
            throw error
        }
        await platform.dropAll()
    }

    /// A fresh copy of the template; returns its URL.
    func copy() async throws -> String {
        let copy = "\(name)_\(UInt16.random(in: 0...UInt16.max))"
        try await sql(try #require(Self.server), "CREATE DATABASE \(copy) TEMPLATE \(name)")
        return try Self.url(copy)
    }

    func dropAll() async {
        guard let server = Self.server else { return }
        let names = (try? await lines(server, "SELECT datname FROM pg_database WHERE datname LIKE '\(name)%'")) ?? []
        for database in names { try? await sql(server, "DROP DATABASE \(database) WITH (FORCE)") }
    }

    /// Runs SQL with psql, stopping at the first error.
    func sql(_ url: String, _ text: String) async throws {
        let result = try await workspace.run(URL(fileURLWithPath: "/usr/bin/psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", text])
        try #require(result.status == 0, "psql failed: \(result)")
    }

    /// The rows of a query, one line each.
    func lines(_ url: String, _ query: String) async throws -> [String] {
        let result = try await workspace.run(URL(fileURLWithPath: "/usr/bin/psql"), ["-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", query])
        try #require(result.status == 0, "psql failed: \(result)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// Every user's stage and transitions (seq, from, to), by id.
    func outcome(_ url: String) async throws -> [String] {
        try await lines(
            url,
            """
            SELECT u.id || ':' || u.customer_journey_state || ':' ||
                   COALESCE(string_agg(t.seq || t.from_state || '>' || t.to_state, ',' ORDER BY t.seq), '')
            FROM users u LEFT JOIN journey_transitions t ON t.user_id = u.id GROUP BY u.id ORDER BY u.id
            """)
    }

    /// The last run's status and totals.
    func lastRun(_ url: String) async throws -> RunTotals {
        let line = try #require(
            try await lines(url, "SELECT status || ' ' || users_seen || ' ' || transitions FROM journey_batch_runs ORDER BY id DESC LIMIT 1").first)
        let parts = line.split(separator: " ")
        return RunTotals(status: String(parts[0]), usersSeen: Int(parts[1]) ?? -1, transitions: Int(parts[2]) ?? -1)
    }

    /// No stage without its transition (the last one's `to_state`, or the first stage with none),
    /// no (user, seq) twice, and no user entering a stage twice (a first run from J1 never does).
    func expectConsistent(_ url: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let drift = try await lines(
            url,
            """
            SELECT count(*) FROM users u
            WHERE u.customer_journey_state IS DISTINCT FROM COALESCE(
                (SELECT t.to_state FROM journey_transitions t WHERE t.user_id = u.id ORDER BY t.seq DESC LIMIT 1), 'J1_NEW_USER')
            """)
        #expect(drift == ["0"], "users whose stage is not their last transition's", sourceLocation: sourceLocation)
        let twice = try await lines(
            url, "SELECT count(*) FROM (SELECT 1 FROM journey_transitions GROUP BY user_id, seq HAVING count(*) > 1) d")
        #expect(twice == ["0"], "(user, seq) recorded twice", sourceLocation: sourceLocation)
        let entered = try await lines(
            url, "SELECT count(*) FROM (SELECT 1 FROM journey_transitions GROUP BY user_id, to_state HAVING count(*) > 1) d")
        #expect(entered == ["0"], "a move recorded twice", sourceLocation: sourceLocation)
    }

    /// A run's status and totals.
    struct RunTotals: Equatable {
        let status: String
        let usersSeen: Int
        let transitions: Int
    }

    /// The platform's tables (as Tests/JourneyContractTests/PostgresFixture.swift makes them) and
    /// 3,000 users whose activity is spread by id: about a third onboarded with a post and a
    /// follow, some with many posts, followers and events, one admin in ten.
    static let schema = """
        CREATE TABLE users (id serial PRIMARY KEY, email varchar(255), city varchar(100), country varchar(100),
            role varchar(50), subscription_tier varchar(50), is_onboarding_complete boolean DEFAULT false,
            created_at timestamp DEFAULT now(), customer_journey_state varchar(50) DEFAULT 'J1_NEW_USER');
        CREATE TABLE posts (id serial PRIMARY KEY, user_id integer NOT NULL, content text, visibility varchar(20), created_at timestamptz DEFAULT now());
        CREATE TABLE follows (id serial PRIMARY KEY, follower_id integer NOT NULL, following_id integer NOT NULL, created_at timestamptz DEFAULT now());
        CREATE TABLE events (id serial PRIMARY KEY, organizer_id integer, title varchar(255), city varchar(100), start_date timestamp);
        CREATE TABLE event_rsvps (id serial PRIMARY KEY, event_id integer NOT NULL, user_id integer NOT NULL, status varchar(20), created_at timestamptz DEFAULT now());
        INSERT INTO users (email, is_onboarding_complete, created_at, role, subscription_tier)
        SELECT 'u' || n || '@example.com', n % 3 <> 1, now() - make_interval(days => 1 + (n * 7) % 400),
               CASE WHEN n % 97 = 0 THEN 'super-admin' WHEN n % 10 = 0 THEN 'admin' ELSE 'user' END,
               CASE WHEN n % 11 = 0 THEN 'basic' WHEN n % 13 = 0 THEN 'premium' ELSE 'free' END
        FROM generate_series(1, 3000) n;
        INSERT INTO posts (user_id, created_at)
        SELECT n, now() - make_interval(days => (n + k) % 25)
        FROM generate_series(1, 3000) n, generate_series(1, 60) k WHERE k <= CASE WHEN n % 5 = 0 THEN 60 WHEN n % 2 = 0 THEN 3 ELSE n % 2 END;
        INSERT INTO follows (follower_id, following_id)
        SELECT f, n FROM generate_series(1, 3000) n, generate_series(1, 80) k, LATERAL (SELECT 1 + (n * 31 + k * 17) % 3000 AS f) x
        WHERE k <= CASE WHEN n % 5 = 0 THEN 80 WHEN n % 2 = 0 THEN 2 ELSE 1 END AND f <> n
        ON CONFLICT DO NOTHING;
        INSERT INTO events (organizer_id, title, start_date)
        SELECT n, 'e' || n || '-' || k, now() + make_interval(days => k) FROM generate_series(1, 3000) n, generate_series(1, 4) k
        WHERE n % 15 = 0;
        INSERT INTO event_rsvps (event_id, user_id, status)
        SELECT e.id, 1 + (e.id * 13) % 3000, 'going' FROM events e;
        """
}

/// On SQLite (one writer per file) `--workers N` reads and decides N chunks at once: the same
/// result as one worker, a summary with no shared run.
@Suite("journey batch --workers on SQLite")
struct SQLiteWorkersTests {
    @Test func workersOnSQLiteAreReadersWithTheSameResult() async throws {
        try await withWorkspace { workspace in
            let one = try await workspace.platformDatabase("one.sqlite")
            let three = try await workspace.platformDatabase("three.sqlite")
            let alone = try await workspace.journey(["batch", "--json", "--chunk-size", "20", "--db", one])
            let workers = try await workspace.journey(["batch", "--json", "--chunk-size", "20", "--workers", "3", "--db", three])
            try #require(alone.status == 0 && workers.status == 0, "\(alone)\n\(workers)")
            let (a, b) = (try alone.jsonObject(), try workers.jsonObject())
            #expect(b["run"] is NSNull && b["workers"] as? Int == 1)
            #expect(a["transitions"] as? Int == b["transitions"] as? Int && a["users_seen"] as? Int == 200)
            #expect(a["edges"] as? [String: Int] == b["edges"] as? [String: Int])
            let history = "SELECT user_id || ':' || seq || from_state || '>' || to_state FROM journey_transitions ORDER BY user_id, seq"
            func rows(_ path: String) throws -> [String] {
                let queue = try Direct.reader(path)
                defer { try? queue.close() }
                return try queue.read { try String.fetchAll($0, sql: history) }
            }
            #expect(try rows(one) == rows(three) && !(try rows(one)).isEmpty)
            #expect(try await workspace.journey(["batch", "--workers", "0", "--db", three]).status == 64)
        }
    }
}
