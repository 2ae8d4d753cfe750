import Foundation
import GRDB
import JourneySQLite

/// Comparison 5: bringing the platform file up to date, the library against the sqlite3 shell.
struct MigrateBench {
    let directory: DataDirectory
    let quick: Bool
    let report: Report
    let targets: Targets

    struct Variant {
        let name: String
        /// nil: the library; else the pragmas the shell runs first.
        let shellPragmas: [String]?
    }

    static let variants: [Variant] = [
        Variant(name: "library: `SQLiteStore.open(path:mode: .migrate)` (WAL, GRDB defaults)", shellPragmas: nil),
        Variant(name: "sqlite3 shell, same statements (rollback journal, defaults)", shellPragmas: []),
        Variant(name: "sqlite3 shell, same statements, `journal_mode=WAL`", shellPragmas: ["PRAGMA journal_mode=WAL"]),
        Variant(
            name: "sqlite3 shell, same statements, `cache_size=-262144` (256 MiB), `threads=2`",
            shellPragmas: ["PRAGMA cache_size=-262144", "PRAGMA threads=2"]),
    ]

    /// Checks a migrated file: 15 platform indexes, 3 triggers, follower counts equal to the follows rows.
    func verify(_ path: String) throws -> String {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            let indexes = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx\\_%' ESCAPE '\\' AND name NOT LIKE 'idx_journey%'")!
            let triggers = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'journey_follows_%'")!
            let followers = try Int.fetchOne(db, sql: "SELECT SUM(follower_count) FROM users")!
            let follows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows")!
            let missing = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE last_journey_update IS NULL")!
            guard indexes == 15, triggers == 3, followers == follows, missing == 0 else {
                throw SpawnError(
                    description:
                        "\(path): \(indexes) indexes, \(triggers) triggers, followers \(followers) vs follows \(follows), \(missing) users without last_journey_update"
                )
            }
            return "15 indexes, 3 triggers, Σ follower_count = \(fmtCount(follows)) follows rows"
        }
    }

    func run(datasets: [Dataset]) throws {
        report.say("## 5. Migrate: the platform file brought up to date")
        report.say()
        report.say(
            "Each run starts from a fresh copy of the un-migrated platform file (copy time not counted). The library run is `SQLiteStore.open(path:mode: .migrate)` in this process; its closing `wal_checkpoint(TRUNCATE)` is timed apart. The shell runs `sqlite3 FILE < script` with the migrator's statements in the migrator's transactions (the schema repair and the index reuse, which change nothing on this file, aside) (`SQLText.migrationScript`), timed as a whole process. Every result is checked: 15 platform indexes, 3 triggers, Σ follower_count = follows rows, every `last_journey_update` set."
        )
        report.say()
        guard let sqlite3 = which("sqlite3") else {
            report.say("(sqlite3 shell not installed: only the library is timed)")
            return
        }
        var rows: [[String]] = []
        for dataset in datasets {
            let runs = quick ? 3 : (dataset.users >= 1_000_000 ? 1 : 2)
            var times = [Samples](repeating: Samples(), count: Self.variants.count)
            var checkpoints = Samples()
            var verified = ""
            for run in 0..<runs {
                for (index, variant) in Self.variants.enumerated() {
                    let path = directory.work + "/migrate-\(index).sqlite"
                    try copyDatabase(from: dataset.platformPath, to: path)
                    report.note("migrate \(dataset.label), run \(run + 1)/\(runs): \(variant.name)")
                    if let pragmas = variant.shellPragmas {
                        let script = directory.work + "/migrate-\(index).sql"
                        try SQLText.migrationScript(now: sqlTimestamp(dataNow), pragmas: pragmas)
                            .write(toFile: script, atomically: true, encoding: .utf8)
                        let stderrPath = directory.work + "/migrate-\(index).err"
                        let (status, elapsed) = try spawn(sqlite3, ["-bail", path], stdin: script, stderr: stderrPath)
                        guard status == 0 else {
                            throw SpawnError(
                                description: "sqlite3 migration failed (\(status)): \((try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")")
                        }
                        times[index].add(elapsed)
                    } else {
                        let clock = ContinuousClock()
                        let start = clock.now
                        let database = try SQLiteStore.open(path: path, mode: .migrate, now: dataNow)
                        let migrated = clock.now
                        try DataDirectory.checkpoint(database)
                        checkpoints.add(clock.now - migrated)
                        times[index].add(migrated - start)
                    }
                    verified = try verify(path)
                    if variant.shellPragmas == nil && !FileManager.default.fileExists(atPath: dataset.migratedPath) {
                        try FileManager.default.moveItem(atPath: path, toPath: dataset.migratedPath)
                    }
                    removeDatabase(path)
                }
            }
            let base = times[1]
            for (index, variant) in Self.variants.enumerated() {
                let extra = index == 0 ? " (+ \(fmt(ns: checkpoints.median)) closing checkpoint)" : ""
                rows.append([
                    dataset.label, variant.name, "\(times[index].count)", fmt(ns: times[index].median) + extra,
                    fmtRatio(times[index].median / base.median),
                ])
            }
            report.note("verified: \(verified)")
            if dataset.users >= 1_000_000 || datasets.count == 1 {
                targets.check(
                    "migrate of the \(dataset.label)-user file within 1.5× of the sqlite3 shell (library ÷ shell defaults)",
                    times[0].median / base.median, atMost: 1.5, format: fmtRatio)
            }
        }
        report.table(["users", "how", "runs", "time (median)", "÷ shell defaults"], rows)
    }
}
