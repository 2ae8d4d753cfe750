import Foundation
import JourneyCore
import JourneyPostgres
import Logging
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// `journey-bench postgres --url postgresql://USER@HOST:PORT/DB [--users N] [--large N] [--no-1m] [--journey PATH] [--workers 1,2,4] [--reload]`
///
/// The PostgreSQL section of BENCHMARKS.md: the same generated platform as the SQLite sections, loaded
/// into PostgreSQL with the platform's own PostgreSQL schema, then one user's metrics (the store's one
/// statement against the platform's separate counts) and `journey batch` as a subprocess (first run
/// and steady state, with 1, 2 and 4 workers when the binary has `--workers`, and two processes
/// joining one run), with the children's peak memory.
///
/// The URL names a database used for administration only (`CREATE DATABASE`); the benchmark makes
/// `journey_bench_<users>` (the loaded and migrated platform, kept between runs: `--reload` loads it
/// again) and `journey_bench_<users>_run` (a copy of it made before each batch run).
enum PostgresBench {
    static let usage = """
        usage: journey-bench postgres --url postgresql://USER@HOST:PORT/DB [--users N] [--large N] [--no-1m] [--journey PATH] [--workers LIST] [--reload]
          --url URL        a PostgreSQL server (Benchmarks/postgres-cluster.sh start prints one); its database is used for CREATE DATABASE
          --users N        users of the main data set (default 100,000)
          --large N        users of the large data set (default 1,000,000)
          --no-1m          skip the large data set
          --journey PATH   the `journey` binary to run (default: next to this one)
          --workers LIST   comma-separated worker counts for `journey batch --workers N` (default 1,2,4; used when the binary has the flag)
          --reload         load the platform into PostgreSQL again even when a loaded copy exists
        Needs `psql` and `sqlite3` on $PATH (the data is exported from the generated SQLite file and loaded with \\copy).
        """

    static func run(arguments: [String]) async throws {
        func value(_ flag: String) -> String? {
            guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            return
        }
        guard let url = value("--url") ?? ProcessInfo.processInfo.environment["JOURNEY_BENCH_POSTGRES_URL"] else {
            throw SpawnError(description: "postgres: --url postgresql://… is required\n" + usage)
        }
        guard let psql = which("psql"), let sqlite3 = which("sqlite3") else {
            throw SpawnError(description: "postgres: needs psql and sqlite3 on $PATH")
        }
        let server = try PostgresLocation(url: url)
        let report = Report()
        let directory = DataDirectory.locate()
        try directory.prepare()
        let journey = value("--journey") ?? (URL(fileURLWithPath: selfExecutable()).deletingLastPathComponent().path + "/journey")
        guard FileManager.default.isExecutableFile(atPath: journey) else {
            throw SpawnError(
                description:
                    "postgres: no journey binary at \(journey): build it with `swift build -c release --package-path Benchmarks --product journey`, or pass --journey PATH"
            )
        }
        let sizes = [value("--users").flatMap(Int.init) ?? 100_000] + (arguments.contains("--no-1m") ? [] : [value("--large").flatMap(Int.init) ?? 1_000_000])
        let workerCounts = (value("--workers") ?? "1,2,4").split(separator: ",").compactMap { Int($0) }
        let bench = Runner(
            server: server, psql: psql, sqlite3: sqlite3, journey: journey, directory: directory, report: report, reload: arguments.contains("--reload"))
        let started = ContinuousClock.now

        report.say("# journey-bench postgres")
        report.say()
        report.say(JourneyBench.machineDescription())
        report.say()
        report.say(JourneyBench.libraryDescription(directory) + " (this binary was built from the sources as they were when `swift run` started)")
        report.say()
        try bench.describeServer()

        var loads: [LoadResult] = []
        var metrics: [(Dataset, MetricsResult)] = []
        var batches: [(Dataset, [BatchConfigResult])] = []
        let hasWorkers = try bench.journeyHasWorkersFlag()
        for users in sizes {
            let dataset = try directory.dataset(users: users, migrate: false, report: report)
            let load = try bench.load(dataset)
            loads.append(load)
            metrics.append((dataset, try await bench.metrics(dataset)))
            batches.append((dataset, try bench.batches(dataset, workerCounts: hasWorkers ? workerCounts : [], twoProcesses: true)))
        }
        bench.render(loads: loads, metrics: metrics, batches: batches, hasWorkers: hasWorkers)
        report.say("Total run time: \(String(format: "%.0f", (ContinuousClock.now - started).seconds)) s.")
        let resultsPath = directory.root + "/results-postgres.md"
        try report.lines.joined(separator: "\n").write(toFile: resultsPath, atomically: true, encoding: .utf8)
        report.note("report written to \(resultsPath)")
    }

    /// What loading one data set took (or when it was loaded, if it was reused).
    struct LoadResult: Codable {
        var users: Int
        var label: String
        /// Seconds by phase: schema, each table's COPY, keys and platform indexes, `journey migrate`, VACUUM ANALYZE.
        var phases: [String: Double]
        var total: Double
        /// `pg_database_size` after loading and migrating.
        var databaseBytes: Int64
        /// `pg_total_relation_size` of the five platform tables, by table.
        var tableBytes: [String: Int64]
        /// Whether this run reused a copy loaded by an earlier run.
        var reused: Bool = false
    }

    /// One user's metrics: the store against the platform's separate counts.
    struct MetricsResult {
        var randomUsers: Int
        var rounds: Int
        var heavy: [(Int64, Int)]
        var heavyRounds: Int
        var storeRandom = Samples(), platformRandom = Samples(), storeHeavy = Samples(), platformHeavy = Samples()
        var disagreements: [String] = []
        var checksum: Int64 = 0
    }

    /// One `journey batch` configuration: its first run and its second (steady-state) run.
    struct BatchConfigResult {
        var name: String
        var workers: Int
        var processes: Int
        var first: BatchRunResult
        var steady: BatchRunResult
        var funnel: [String: Int]
        var transitionRows: Int
        var resetSeconds: Double
    }

    /// One run of `journey batch` (one or more processes at once).
    struct BatchRunResult {
        var statuses: [Int32]
        var wallSeconds: Double
        /// The summaries' users seen and transitions, added up over the processes.
        var usersSeen: Int
        var transitions: Int
        /// The longest `duration_seconds` of the summaries.
        var durationSeconds: Double
        var peakHWMKB: Int
        var peakAnonKB: Int
        var peakFileKB: Int
        var walBytes: Int64
        var stderr: String
        var usersPerSecond: Double { wallSeconds > 0 ? Double(usersSeen) / wallSeconds : 0 }
    }

    /// Loads, measures and reports, against one server.
    struct Runner {
        let server: PostgresLocation
        let psql: String
        let sqlite3: String
        let journey: String
        let directory: DataDirectory
        let report: Report
        let reload: Bool

        /// The platform's PostgreSQL schema, as Tests/JourneyContractTests/PostgresFixture.swift creates
        /// it (`serial` ids, `boolean` onboarding, `timestamp` signup and event start, `timestamptz`
        /// elsewhere, a `varchar(50)` stage defaulting to the first stage), without its keys and
        /// indexes: they are added after the COPY (``platformIndexes``), as a bulk load does.
        static let platformTables: [String] = [
            """
            CREATE TABLE users (id serial, email varchar(255), city varchar(100), country varchar(100),
                role varchar(50), subscription_tier varchar(50), is_onboarding_complete boolean DEFAULT false,
                created_at timestamp DEFAULT now(), customer_journey_state varchar(50) DEFAULT 'J1_NEW_USER')
            """,
            "CREATE TABLE posts (id serial, user_id integer NOT NULL, content text, visibility varchar(20), created_at timestamptz DEFAULT now())",
            "CREATE TABLE follows (id serial, follower_id integer NOT NULL, following_id integer NOT NULL, created_at timestamptz DEFAULT now())",
            "CREATE TABLE events (id serial, organizer_id integer, title varchar(255), city varchar(100), start_date timestamp)",
            "CREATE TABLE event_rsvps (id serial, event_id integer NOT NULL, user_id integer NOT NULL, status varchar(20), created_at timestamptz DEFAULT now())",
        ]

        /// The generated columns of each platform table, in the SQLite file and in PostgreSQL.
        static let columns: [(table: String, columns: String)] = [
            ("users", "id, email, city, country, role, subscription_tier, is_onboarding_complete, created_at"),
            ("posts", "id, user_id, content, visibility, created_at"),
            ("follows", "id, follower_id, following_id, created_at"),
            ("events", "id, organizer_id, title, city, start_date"),
            ("event_rsvps", "id, event_id, user_id, status, created_at"),
        ]

        /// The primary keys, the platform's own indexes (the fixture's) and the sequences after the load.
        static let platformIndexes: [String] =
            columns.map { "ALTER TABLE \($0.table) ADD PRIMARY KEY (id)" } + [
                "CREATE INDEX posts_author_idx ON posts (user_id)",
                "CREATE UNIQUE INDEX follows_pair_unique ON follows (follower_id, following_id)",
                "CREATE INDEX users_email_lookup ON users (email) INCLUDE (city)",
                "CREATE INDEX posts_created_asc ON posts (created_at)",
            ] + columns.map { "SELECT setval(pg_get_serial_sequence('\($0.table)', 'id'), COALESCE(max(id), 1)) FROM \($0.table)" }

        func url(_ database: String) -> String {
            var location = server
            location.database = database
            return location.urlString
        }
        var adminURL: String { url(server.database) }
        func baseName(_ dataset: Dataset) -> String { "journey_bench_\(dataset.users)" }
        func runName(_ dataset: Dataset) -> String { "journey_bench_\(dataset.users)_run" }

        /// Runs `sql` with psql on `database` (stop at the first error), returns its unaligned output.
        @discardableResult
        func psql(_ database: String, _ sql: String) throws -> String {
            let (status, output, _) = try spawnCapturing(psql, [url(database), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            guard status == 0 else { throw SpawnError(description: "psql failed (\(status)) on \(database): \(sql)") }
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func describeServer() throws {
            let settings = ["server_version", "shared_buffers", "fsync", "synchronous_commit", "wal_level", "max_wal_size", "checkpoint_timeout", "work_mem"]
            let values = try settings.map { try psql(server.database, "SHOW \($0)") }
            report.say(
                "PostgreSQL server: "
                    + zip(settings, values).map { "\($0.0) = \($0.1)" }.joined(separator: ", ")
                    + "; on the same machine, over TCP on 127.0.0.1.")
            report.say()
        }

        func journeyHasWorkersFlag() throws -> Bool {
            let (_, output, _) = try spawnCapturing(journey, ["batch", "--help"])
            return output.contains("--workers")
        }

        /// The loaded and migrated platform in `journey_bench_<users>`: loaded now, or reused.
        func load(_ dataset: Dataset) throws -> LoadResult {
            let base = baseName(dataset)
            let manifest = directory.root + "/postgres-load-\(dataset.users)-s\(dataSeed).json"
            let exists = try psql(server.database, "SELECT 1 FROM pg_database WHERE datname = '\(base)'") == "1"
            if !reload, exists, let data = FileManager.default.contents(atPath: manifest), var cached = try? JSONDecoder().decode(LoadResult.self, from: data),
                (try? psql(base, "SELECT count(*) FROM journey_bench_loaded")) == "1"
            {
                report.note("reusing \(base) (loaded by an earlier run; --reload loads it again)")
                cached.reused = true
                return cached
            }
            report.note("loading \(dataset.label) users into \(base)")
            try psql(server.database, "DROP DATABASE IF EXISTS \(runName(dataset)) WITH (FORCE)")
            try psql(server.database, "DROP DATABASE IF EXISTS \(base) WITH (FORCE)")
            try psql(server.database, "CREATE DATABASE \(base)")
            var phases: [String: Double] = [:]
            let clock = ContinuousClock()
            let start = clock.now
            phases["schema"] = try timed { try psql(base, Self.platformTables.joined(separator: ";\n")) }.1.seconds
            for (table, columns) in Self.columns {
                // sqlite3's CSV: NULL is an empty unquoted field, as COPY's CSV reads it; 0/1 are booleans.
                let pipeline =
                    "\(shellQuote(sqlite3)) -csv \(shellQuote(dataset.platformPath)) \(shellQuote("SELECT \(columns) FROM \(table) ORDER BY id"))"
                    + " | PGTZ=UTC \(shellQuote(psql)) \(shellQuote(url(base))) -X -q -v ON_ERROR_STOP=1 -c \(shellQuote("\\copy \(table) (\(columns)) FROM STDIN WITH (FORMAT csv)"))"
                let ((status, _), elapsed) = try timed { try spawn(which("bash") ?? "/usr/bin/bash", ["-c", "set -o pipefail; " + pipeline]) }
                guard status == 0 else { throw SpawnError(description: "loading \(table) failed (\(status))") }
                phases["copy \(table)"] = elapsed.seconds
            }
            phases["keys and platform indexes"] = try timed { try psql(base, Self.platformIndexes.joined(separator: ";\n")) }.1.seconds
            let (migrate, migrateElapsed) = try timed { try spawnCapturing(journey, ["migrate", "--db", url(base)]) }
            guard migrate.status == 0 else { throw SpawnError(description: "journey migrate failed (\(migrate.status)): \(migrate.output)") }
            phases["journey migrate"] = migrateElapsed.seconds
            phases["VACUUM ANALYZE"] = try timed { try psql(base, "VACUUM ANALYZE") }.1.seconds
            let total = (clock.now - start).seconds
            try psql(
                base, "CREATE TABLE journey_bench_loaded (users integer, seed bigint); INSERT INTO journey_bench_loaded VALUES (\(dataset.users), \(dataSeed))")
            var result = LoadResult(
                users: dataset.users, label: dataset.label, phases: phases, total: total,
                databaseBytes: Int64(try psql(base, "SELECT pg_database_size(current_database())")) ?? 0, tableBytes: [:])
            for (table, _) in Self.columns {
                result.tableBytes[table] = Int64(try psql(base, "SELECT pg_total_relation_size('\(table)')")) ?? 0
            }
            try JSONEncoder().encode(result).write(to: URL(fileURLWithPath: manifest))
            return result
        }

        /// One user's metrics: `PostgresStore.snapshot(user:now:)` against the platform's separate
        /// queries (its user row and one `COUNT(*)` per metric, each its own round trip, as a platform
        /// runs them), interleaved per user, in this process, on the loaded database.
        func metrics(_ dataset: Dataset) async throws -> MetricsResult {
            let base = baseName(dataset)
            report.note("one-user metrics on \(dataset.label) users")
            let store = try await PostgresStore.open(url: url(base), mode: .requireMigrated, maximumConnections: 2, now: dataNow)
            var location = server
            location.database = base
            var configuration = PostgresClient.Configuration(
                host: location.host, port: location.port, username: location.user, password: location.password, database: base, tls: .disable)
            configuration.options.maximumConnections = 2
            configuration.options.additionalStartupParameters = [("TimeZone", "UTC")]
            let client = PostgresClient(configuration: configuration, backgroundLogger: PostgresStore.silentLogger)
            let runner = Task { await client.run() }
            defer { runner.cancel() }
            let logger = PostgresStore.silentLogger

            func count(_ query: PostgresQuery) async throws -> Int64 {
                var value: Int64 = 0
                for try await row in try await client.query(query, logger: logger) { value = try row.decode(Int64.self) }
                return value
            }
            // The platform's way: SQLText.platformUser and SQLText.platformCounts, in PostgreSQL's words.
            func viaPlatform(_ user: Int64) async throws -> [Int64] {
                for try await row in try await client.query(
                    "SELECT id, role, subscription_tier, is_onboarding_complete, created_at FROM users WHERE id = \(user)", logger: logger)
                {
                    _ = row
                }
                return [
                    try await count("SELECT COUNT(*) FROM posts WHERE user_id = \(user)"),
                    try await count("SELECT COUNT(*) FROM follows WHERE following_id = \(user)"),
                    try await count("SELECT COUNT(*) FROM follows WHERE follower_id = \(user)"),
                    try await count("SELECT COUNT(*) FROM events WHERE organizer_id = \(user)"),
                    try await count(
                        "SELECT COUNT(*) FROM event_rsvps r JOIN events e ON e.id = r.event_id WHERE r.user_id = \(user) AND r.status = 'going' AND e.start_date <= \(dataNow)"
                    ),
                ]
            }
            func viaStore(_ user: Int64) async throws -> [Int64] {
                let s = try await store.snapshot(user: user, now: dataNow)
                return [s.metrics.posts, s.metrics.followers, s.metrics.following, s.metrics.eventsOrganized, s.metrics.eventsAttended].map(Int64.init)
            }

            let heavy: [(Int64, Int)] = try psql(base, "SELECT id, follower_count FROM users ORDER BY follower_count DESC, id LIMIT 10")
                .split(separator: "\n").compactMap { line in
                    let parts = line.split(separator: "|")
                    guard parts.count == 2, let id = Int64(parts[0]), let n = Int(parts[1]) else { return nil }
                    return (id, n)
                }
            let random = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed).prefix(1_000))
            var result = MetricsResult(randomUsers: random.count, rounds: 3, heavy: heavy, heavyRounds: 20)

            // Correctness first (and the warm-up round): both ways give the same counts.
            for user in random + heavy.map(\.0) {
                let a = try await viaStore(user), b = try await viaPlatform(user)
                if a != b && result.disagreements.count < 5 { result.disagreements.append("user \(user): store \(a) platform \(b)") }
            }
            let clock = ContinuousClock()
            for round in 0..<result.rounds {
                for (i, user) in random.enumerated() {
                    // Alternate which way goes first, so neither always finds the other's pages warm.
                    for way in ((i + round) % 2 == 0 ? [0, 1] : [1, 0]) {
                        let start = clock.now
                        let values = way == 0 ? try await viaStore(user) : try await viaPlatform(user)
                        let elapsed = clock.now - start
                        result.checksum &+= values.reduce(0, &+)
                        if way == 0 { result.storeRandom.add(elapsed) } else { result.platformRandom.add(elapsed) }
                    }
                }
            }
            for round in 0..<result.heavyRounds {
                for (i, (user, _)) in heavy.enumerated() {
                    for way in ((i + round) % 2 == 0 ? [0, 1] : [1, 0]) {
                        let start = clock.now
                        let values = way == 0 ? try await viaStore(user) : try await viaPlatform(user)
                        let elapsed = clock.now - start
                        result.checksum &+= values.reduce(0, &+)
                        if way == 0 { result.storeHeavy.add(elapsed) } else { result.platformHeavy.add(elapsed) }
                    }
                }
            }
            await store.close()
            return result
        }

        /// A fresh copy of the loaded platform in `journey_bench_<users>_run` (every batch run starts
        /// from the same rows: everyone in the first stage, no history); returns the seconds it took.
        func reset(_ dataset: Dataset) throws -> Double {
            try timed {
                try psql(server.database, "DROP DATABASE IF EXISTS \(runName(dataset)) WITH (FORCE)")
                try psql(server.database, "CREATE DATABASE \(runName(dataset)) TEMPLATE \(baseName(dataset)) STRATEGY FILE_COPY")
            }.1.seconds
        }

        /// Each configuration on a fresh copy: a first run (users moving), then a second run (steady state).
        func batches(_ dataset: Dataset, workerCounts: [Int], twoProcesses: Bool) throws -> [BatchConfigResult] {
            var configurations: [(name: String, workers: Int, processes: Int)] =
                workerCounts.isEmpty ? [("1 process", 1, 1)] : workerCounts.map { ("--workers \($0)", $0, 1) }
            if twoProcesses { configurations.append(("2 processes", 1, 2)) }
            var results: [BatchConfigResult] = []
            for configuration in configurations {
                report.note("journey batch \(configuration.name) on \(dataset.label) users")
                let resetSeconds = try reset(dataset)
                let database = runName(dataset)
                var arguments = ["batch", "--db", url(database), "--json", "--no-progress"]
                if !workerCounts.isEmpty { arguments += ["--workers", "\(configuration.workers)"] }
                let first = try runBatch(database: database, arguments: arguments, processes: configuration.processes)
                let steady = try runBatch(database: database, arguments: arguments, processes: configuration.processes)
                let funnel = Dictionary(
                    uniqueKeysWithValues: try psql(database, "SELECT customer_journey_state, count(*) FROM users GROUP BY 1 ORDER BY 1")
                        .split(separator: "\n").compactMap { line -> (String, Int)? in
                            let parts = line.split(separator: "|")
                            return parts.count == 2 ? (String(parts[0]), Int(parts[1]) ?? 0) : nil
                        })
                let rows = Int(try psql(database, "SELECT count(*) FROM journey_transitions")) ?? -1
                results.append(
                    BatchConfigResult(
                        name: configuration.name, workers: configuration.workers, processes: configuration.processes, first: first, steady: steady,
                        funnel: funnel, transitionRows: rows, resetSeconds: resetSeconds))
            }
            try psql(server.database, "DROP DATABASE IF EXISTS \(runName(dataset)) WITH (FORCE)")
            return results
        }

        /// `processes` copies of `journey <arguments>` started at once; their memory sampled while they run.
        func runBatch(database: String, arguments: [String], processes: Int) throws -> BatchRunResult {
            let lsnBefore = try psql(database, "SELECT pg_current_wal_insert_lsn()")
            let outputs = (0..<processes).map { directory.work + "/pg-batch-\($0).out" }
            let errors = (0..<processes).map { directory.work + "/pg-batch-\($0).err" }
            let runs = try spawnSampled((0..<processes).map { (journey, arguments, outputs[$0], errors[$0]) })
            let walBytes = Int64(try psql(database, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '\(lsnBefore)')")) ?? 0
            var result = BatchRunResult(
                statuses: runs.statuses, wallSeconds: runs.elapsed.seconds, usersSeen: 0, transitions: 0, durationSeconds: 0,
                peakHWMKB: runs.peakHWMKB, peakAnonKB: runs.peakAnonKB, peakFileKB: runs.peakFileKB, walBytes: walBytes, stderr: "")
            for (out, err) in zip(outputs, errors) {
                let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                if let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                    result.usersSeen += (json["users_seen"] as? Int) ?? 0
                    result.transitions += (json["transitions"] as? Int) ?? 0
                    result.durationSeconds = max(result.durationSeconds, (json["duration_seconds"] as? Double) ?? 0)
                }
                let error = ((try? String(contentsOfFile: err, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if !error.isEmpty { result.stderr += (result.stderr.isEmpty ? "" : " / ") + error }
                try? FileManager.default.removeItem(atPath: out)
                try? FileManager.default.removeItem(atPath: err)
            }
            return result
        }

        func render(loads: [LoadResult], metrics: [(Dataset, MetricsResult)], batches: [(Dataset, [BatchConfigResult])], hasWorkers: Bool) {
            report.say("## PostgreSQL: data")
            report.say()
            report.say(
                "The generated platform (seed \(dataSeed), the SQLite sections' files) exported with `sqlite3 -csv` and loaded with `psql \\copy` into the platform's PostgreSQL schema (`serial` ids, `boolean` onboarding, `timestamp` signup and event start, `timestamptz` elsewhere, `varchar(50)` stage defaulting to J1), keys and the platform's four indexes added after the COPY, then `journey migrate --db postgresql://…` (the journey columns, tables, indexes and `follower_count` triggers) and `VACUUM ANALYZE`."
            )
            report.say()
            let phaseNames = ["schema"] + Self.columns.map { "copy \($0.table)" } + ["keys and platform indexes", "journey migrate", "VACUUM ANALYZE"]
            report.table(
                ["users", "rows (posts / follows / RSVPs)"] + phaseNames + ["total", "database size"],
                loads.map { load in
                    let counts = metrics.first { $0.0.users == load.users }?.0.counts
                    return [
                        load.label + (load.reused ? " (loaded earlier)" : ""),
                        counts.map { "\(fmtCount($0.posts)) / \(fmtCount($0.follows)) / \(fmtCount($0.rsvps))" } ?? "–",
                    ] + phaseNames.map { load.phases[$0].map { String(format: "%.1f s", $0) } ?? "–" } + [
                        String(format: "%.0f s", load.total), fmtBytes(load.databaseBytes),
                    ]
                })

            report.say("## PostgreSQL: one user's metrics, the store against the platform's separate counts")
            report.say()
            report.say(
                "In this process, over TCP to the server: `PostgresStore.snapshot(user:now:)` (the store's one statement: stage, pins and every metric) against the platform's own queries (its user row, then one `SELECT COUNT(*)` per metric: posts, followers, following, events organized, events attended, each its own round trip, as the platform's code runs them), through postgres-nio both, interleaved per user (the order alternating), after a warm-up round that also checks that both ways give the same counts."
            )
            report.say()
            var rows: [[String]] = []
            for (dataset, m) in metrics {
                rows.append([
                    dataset.label, "random (\(m.randomUsers) users × \(m.rounds))", "\(m.storeRandom.count)", fmt(ns: m.storeRandom.median),
                    fmt(ns: m.storeRandom.p99),
                    fmt(ns: m.platformRandom.median), fmt(ns: m.platformRandom.p99), fmtRatio(m.platformRandom.median / m.storeRandom.median),
                ])
                rows.append([
                    dataset.label, "10 heaviest (× \(m.heavyRounds))", "\(m.storeHeavy.count)", fmt(ns: m.storeHeavy.median), fmt(ns: m.storeHeavy.p99),
                    fmt(ns: m.platformHeavy.median), fmt(ns: m.platformHeavy.p99), fmtRatio(m.platformHeavy.median / m.storeHeavy.median),
                ])
            }
            report.table(
                ["users", "users measured", "n", "store median", "store p99", "separate counts median", "separate counts p99", "separate ÷ store"], rows)
            for (dataset, m) in metrics {
                report.say(
                    "\(dataset.label): heaviest users' followers \(m.heavy.map { fmtCount($0.1) }.joined(separator: ", ")); "
                        + (m.disagreements.isEmpty
                            ? "both ways agree on every user checked (\(m.randomUsers + m.heavy.count))"
                            : "**the ways disagree**: \(m.disagreements.joined(separator: "; "))") + " (checksum \(m.checksum)).")
            }
            report.say()

            report.say("## PostgreSQL: the nightly batch")
            report.say()
            report.say(
                "`journey batch --db postgresql://… --json --no-progress` (\(journey)), as subprocesses, on a fresh copy of the loaded database for each configuration (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`: everyone in J1, no history), first run (users moving) then a second run on the same copy (steady state: nothing left to move). "
                    + (hasWorkers
                        ? "With `--workers N` in one process, and two processes started at once (each with `--workers 1`) joining one run."
                        : "This `journey` has no `--workers` yet: one process, and two processes started at once (a second process joins the run only if the binary supports joining).")
                    + " users/s is users seen (added up over the processes) ÷ wall time from the first start to the last exit; `duration` is the summary's own. Peak memory is sampled from /proc/PID/status every 20 ms (VmHWM, RssAnon, RssFile; the largest process). WAL is `pg_wal_lsn_diff` of the server's insert position around the run (the whole server: nothing else ran)."
            )
            report.say()
            var batchRows: [[String]] = []
            for (dataset, results) in batches {
                let baseline = results.first
                for r in results {
                    for (label, run) in [("first", r.first), ("steady", r.steady)] {
                        let base = label == "first" ? baseline?.first : baseline?.steady
                        batchRows.append([
                            dataset.label, r.name, label, run.statuses.map(String.init).joined(separator: ","), fmtCount(run.usersSeen),
                            fmtCount(run.transitions),
                            String(format: "%.2f s", run.wallSeconds), String(format: "%.2f s", run.durationSeconds), fmtCount(Int(run.usersPerSecond)) + "/s",
                            base.map { fmtRatio(run.usersPerSecond / $0.usersPerSecond) } ?? "–",
                            String(format: "%.1f MB", Double(run.peakHWMKB) / 1024), String(format: "%.1f MB", Double(run.peakAnonKB) / 1024),
                            fmtBytes(run.walBytes),
                            run.transitions > 0 ? String(format: "%.0f B", Double(run.walBytes) / Double(run.transitions)) : "–",
                        ])
                    }
                }
            }
            report.table(
                [
                    "users", "configuration", "run", "exit", "users seen", "transitions", "wall", "duration", "users/s", "÷ first config", "peak VmHWM",
                    "peak RssAnon", "WAL", "WAL per move",
                ], batchRows)
            for (dataset, results) in batches {
                for r in results {
                    report.say(
                        "\(dataset.label), \(r.name): afterwards \(r.funnel.sorted { $0.key < $1.key }.map { "\($0.key) \(fmtCount($0.value))" }.joined(separator: ", ")); \(fmtCount(r.transitionRows)) rows in journey_transitions; copy made in \(String(format: "%.1f", r.resetSeconds)) s."
                    )
                    for run in [r.first, r.steady] where !run.stderr.isEmpty {
                        report.say("  stderr: `\(run.stderr.replacingOccurrences(of: "\n", with: " ").prefix(400))`")
                    }
                }
                if let first = results.first {
                    let same = results.allSatisfy { $0.funnel == first.funnel && $0.transitionRows == first.transitionRows }
                    report.say(
                        same
                            ? "Check (\(dataset.label)): every configuration leaves the same funnel and the same number of transition rows."
                            : "**Check (\(dataset.label)): the configurations disagree** (funnel or transition rows above).")
                }
                report.say()
            }
        }
    }
}

extension PostgresLocation {
    /// The location as a URL for `psql` and `journey` (TLS left to the default: the benchmark's server is local).
    var urlString: String {
        "postgresql://\(user)\(password.map { ":\($0)" } ?? "")@\(host):\(port)/\(database)"
    }
}

/// `text` quoted for `/bin/sh`.
func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// What ``spawnSampled(_:)`` saw: each child's exit status, the wall time from the first start to the
/// last exit, and the largest VmHWM, RssAnon and RssFile any child had (kB).
struct SampledRun {
    var statuses: [Int32]
    var elapsed: Duration
    var peakHWMKB = 0
    var peakAnonKB = 0
    var peakFileKB = 0
}

/// Starts every command at once and waits for them all, reading each child's /proc/PID/status every
/// 20 ms (and its `ru_maxrss` at exit, for a child that ends between two samples).
func spawnSampled(_ commands: [(path: String, arguments: [String], stdout: String, stderr: String)]) throws -> SampledRun {
    var pids: [pid_t] = []
    let clock = ContinuousClock()
    let start = clock.now
    for command in commands {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, command.stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, command.stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([command.path] + command.arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, command.path, &actions, nil, argv, environ)
        guard rc == 0 else { throw SpawnError(description: "cannot start \(command.path): \(String(cString: strerror(rc)))") }
        pids.append(pid)
    }
    var result = SampledRun(statuses: Array(repeating: -1, count: pids.count), elapsed: .zero)
    var running = Set(pids.indices)
    while !running.isEmpty {
        for i in running.sorted() {
            if let text = try? String(contentsOfFile: "/proc/\(pids[i])/status", encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
                    switch parts[0] {
                    case "VmHWM:": result.peakHWMKB = max(result.peakHWMKB, kb)
                    case "RssAnon:": result.peakAnonKB = max(result.peakAnonKB, kb)
                    case "RssFile:": result.peakFileKB = max(result.peakFileKB, kb)
                    default: break
                    }
                }
            }
            var status: Int32 = 0
            var usage = rusage()
            let done = wait4(pids[i], &status, WNOHANG, &usage)
            if done == pids[i] {
                result.peakHWMKB = max(result.peakHWMKB, Int(usage.ru_maxrss))
                result.statuses[i] = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                running.remove(i)
            }
        }
        if !running.isEmpty { usleep(20_000) }
    }
    result.elapsed = clock.now - start
    return result
}
