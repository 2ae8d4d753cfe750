import Foundation
import GRDB
import GRDBSQLite
import Journey
import JourneyCore
import JourneySQLite

/// `journey-bench probe --db PATH --user N`: the least a `journey`-like process does —
/// start, open the pool (schema check included), run the metrics statement once, print, exit.
enum Probe {
    static func run(arguments: [String]) async throws {
        func value(_ flag: String) -> String? {
            guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        guard let path = value("--db"), let user = value("--user").flatMap(Int64.init) else {
            throw SpawnError(description: "usage: journey-bench probe --db PATH --user N")
        }
        let database = try SQLiteStore.open(path: path, mode: .requireMigrated)
        if arguments.contains("--service") {
            // What `journey evaluate` does, minus ArgumentParser and the rendering.
            let service = try await JourneyService(store: database, rules: Rules.bundledDefault(), options: JourneyOptions(cacheCapacity: 16, source: .cli))
            let answer = try await service.evaluateAndPersist(user: user)
            print(answer.storedStage, answer.evaluation.metrics.posts)
            return
        }
        if arguments.contains("--rules") { _ = try Rules.bundledDefault() }
        let snapshot = try await database.snapshot(user: user, now: Date())
        print(snapshot.storedStage, snapshot.metrics.posts, snapshot.metrics.followers)
    }
}

extension Probe {
    /// `journey-bench profile-snapshot --db PATH [--n N]`: `snapshot(user:now:)` for N random users, for `perf record`.
    static func profileSnapshot(arguments: [String]) throws {
        func value(_ flag: String) -> String? {
            guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        guard let path = value("--db") else { throw SpawnError(description: "usage: journey-bench profile-snapshot --db PATH [--n N]") }
        let n = value("--n").flatMap(Int.init) ?? 100_000
        let database = try SQLiteStore.open(path: path, mode: arguments.contains("--pool") ? .migrate : .requireMigrated)
        let users = try database.writer.read { try Int64.fetchOne($0, sql: "SELECT MAX(id) FROM users") } ?? 1
        var rng = SplitMix64(seed: 7)
        var checksum = 0
        let cached = arguments.contains("--cached")
        if arguments.contains("--trace") {
            try database.writer.read { db in db.trace(options: [.statement]) { print("  trace:", $0.expandedDescription.prefix(60)) } }
            for user in [1, 2, 3] as [Int64] {
                print("read \(user)")
                _ = try database.writer.read { db in
                    try Row.fetchOne(db.cachedStatement(sql: SQLText.snapshot), arguments: StatementArguments(SQLText.window) &+ ["user": user])
                }
            }
        }
        let window = StatementArguments(SQLText.window)
        let (_, elapsed) = try timed {
            for _ in 0..<n {
                let user = 1 + Int64(rng.next() % UInt64(users))
                if arguments.contains("--unsafe-read") {
                    // One statement needs no explicit transaction: `unsafeRead` skips DatabaseQueue's `PRAGMA query_only` toggles.
                    checksum &+= try database.writer.unsafeRead { db in
                        try Row.fetchOne(db.cachedStatement(sql: SQLText.snapshot), arguments: window &+ ["user": user])!["posts"] as Int
                    }
                } else if cached {
                    checksum &+= try database.writer.read { db in
                        try Row.fetchOne(db.cachedStatement(sql: SQLText.snapshot), arguments: window &+ ["user": user])!["posts"] as Int
                    }
                } else {
                    checksum &+= try database.writer.unsafeRead { db in try SQLiteStore.snapshot(db, user: user, now: dataNow) }.metrics.posts
                }
            }
        }
        if cached {
            try database.writer.read { db in
                let statement = try db.cachedStatement(sql: SQLText.snapshot)
                print(
                    "cached statement \(ObjectIdentifier(statement)): reprepared \(sqlite3_stmt_status(statement.sqliteStatement, SQLITE_STMTSTATUS_REPREPARE, 0)) times, run \(sqlite3_stmt_status(statement.sqliteStatement, SQLITE_STMTSTATUS_RUN, 0)) times"
                )
            }
        }
        print("\(n) snapshots in \(fmt(ns: elapsed.nanoseconds)), \(fmt(ns: elapsed.nanoseconds / Double(n))) each (checksum \(checksum))")
    }
}

/// Comparison 4: `journey evaluate <user>` as a whole process.
struct CLIBench {
    let dataset: Dataset
    let quick: Bool
    let report: Report
    let targets: Targets
    let directory: DataDirectory
    let journeyBinary: String

    func run() throws {
        let path = directory.work + "/cli.sqlite"
        try copyDatabase(from: dataset.migratedPath, to: path)
        defer { removeDatabase(path) }
        let heavy: Int64 = try DatabaseQueue(path: path).read { db in
            try Int64.fetchOne(db, sql: "SELECT id FROM users ORDER BY follower_count DESC, id LIMIT 1")!
        }
        let user = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed ^ 0xC11)).first!
        let sqlite3 = which("sqlite3")
        // The shell runs the library's own statement, the variant for canonical columns that the
        // generated file takes (it names no `journey_instant`, which the shell lacks), with the
        // window's bounds written in as literals.
        let window = SQLiteStore.windowArguments(now: Date(), forms: .canonical)
        let now = String.fromDatabaseValue(window["now_text"]??.databaseValue ?? .null) ?? ""
        let since = String.fromDatabaseValue(window["since_text"]??.databaseValue ?? .null) ?? ""
        func literalSQL(_ user: Int64) -> String {
            SQLText.snapshot.replacingOccurrences(of: ":now_text", with: "'\(now)'").replacingOccurrences(of: ":since_text", with: "'\(since)'")
                .replacingOccurrences(of: ":user", with: "\(user)")
        }
        var commands: [(name: String, path: String, arguments: [String])] = [
            ("`journey evaluate <random user>`", journeyBinary, ["evaluate", "\(user)", "--db", path]),
            ("`journey evaluate <random user> --dry-run`", journeyBinary, ["evaluate", "\(user)", "--db", path, "--dry-run"]),
            ("`journey evaluate <heaviest user>`", journeyBinary, ["evaluate", "\(heavy)", "--db", path]),
            ("`journey --version` (process floor: no database)", journeyBinary, ["--version"]),
            ("`journey-bench probe`: open (`.requireMigrated`) + one `snapshot`", selfExecutable(), ["probe", "--db", path, "--user", "\(user)"]),
            (
                "`journey-bench probe --rules`: + the bundled rules (compiled in: no YAML parsed)", selfExecutable(),
                ["probe", "--db", path, "--user", "\(user)", "--rules"]
            ),
            (
                "`journey-bench probe --service`: + `JourneyService` + `evaluateAndPersist` (no ArgumentParser, no output)", selfExecutable(),
                ["probe", "--db", path, "--user", "\(user)", "--service"]
            ),
        ]
        if let sqlite3 {
            commands.append(("`sqlite3` shell, the metrics statement (random user)", sqlite3, [path, literalSQL(user)]))
            commands.append(("`sqlite3` shell, the metrics statement (heaviest user)", sqlite3, [path, literalSQL(heavy)]))
        }
        // Every command must succeed before it is timed.
        for command in commands {
            let (status, output, _) = try spawnCapturing(command.path, command.arguments)
            guard status == 0 else { throw SpawnError(description: "\(command.name) exited \(status): \(output)") }
        }
        let runs = quick ? 10 : 60
        var samples = [Samples](repeating: Samples(), count: commands.count)
        for _ in 0..<3 { for command in commands { try spawn(command.path, command.arguments) } }  // warm-up
        for round in 0..<runs {
            for index in Array(commands.indices).rotated(by: round) {
                let (status, elapsed) = try spawn(commands[index].path, commands[index].arguments)
                guard status == 0 else { throw SpawnError(description: "\(commands[index].name) exited \(status)") }
                samples[index].add(elapsed)
            }
        }
        report.say("## 4. The command line: one process per evaluation (\(dataset.label) users)")
        report.say()
        report.say(
            "Wall time from `posix_spawn` to `waitpid`, \(runs) runs each, interleaved, after 3 warm-up runs; stdout to /dev/null. `journey` is `\(journeyBinary)`, built as README's Install section says (`swift build -c release --static-swift-stdlib --product journey`). The random user is \(user); the heaviest is \(heavy). The sqlite3 shell runs the library's one-user statement (`snapshotSQL(.canonical)`) with the bounds as literals."
        )
        report.say()
        let base = samples[commands.firstIndex { $0.name.hasPrefix("`sqlite3` shell, the metrics statement (random") } ?? 0]
        report.table(
            ["command", "n", "median", "p99", "min", "÷ sqlite3 shell"],
            commands.indices.map { i in
                [
                    commands[i].name, "\(samples[i].count)", fmt(ns: samples[i].median), fmt(ns: samples[i].p99), fmt(ns: samples[i].min),
                    sqlite3 == nil ? "–" : fmtRatio(samples[i].median / base.median),
                ]
            })
        targets.check(
            "(issue 16) `journey evaluate` as a whole process ≤ 10 ms median (\(dataset.label))", samples[0].median, atMost: 10_000_000, format: { fmt(ns: $0) }
        )
        if sqlite3 != nil {
            targets.check(
                "(issue 16) `journey evaluate` ≤ 3× the sqlite3 shell running the same statement (medians, \(dataset.label))",
                samples[0].median / base.median, atMost: 3, format: fmtRatio)
        }

        // hyperfine, where installed, as a second opinion on the same commands.
        if !quick, let hyperfine = which("hyperfine") {
            let json = directory.work + "/hyperfine.json"
            let quoted = commands.map { ([$0.path] + $0.arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ") }
            let (status, _) = try spawn(
                hyperfine, ["-N", "--warmup", "5", "--runs", "40", "--export-json", json] + quoted, stdout: directory.work + "/hyperfine.txt")
            if status == 0, let data = FileManager.default.contents(atPath: json),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let results = object["results"] as? [[String: Any]]
            {
                report.say("hyperfine (`hyperfine -N --warmup 5 --runs 40`), same commands:")
                report.say()
                report.table(
                    ["command", "median", "mean ± σ", "min"],
                    zip(commands, results).map { command, r in
                        let median = (r["median"] as? Double ?? .nan) * 1e9, mean = (r["mean"] as? Double ?? .nan) * 1e9
                        let sd = (r["stddev"] as? Double ?? .nan) * 1e9, least = (r["min"] as? Double ?? .nan) * 1e9
                        return [command.name, fmt(ns: median), "\(fmt(ns: mean)) ± \(fmt(ns: sd))", fmt(ns: least)]
                    })
            } else {
                report.say("(hyperfine failed with status \(status); see \(directory.work)/hyperfine.txt)")
                report.say()
            }
            try? FileManager.default.removeItem(atPath: json)
        }
    }
}
