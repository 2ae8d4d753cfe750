import Foundation
import GRDB
import JourneyFixtures
import JourneySQLite

/// The fixed instant the data is generated as of, and every in-process evaluation's "now":
/// 2026-11-01 00:00:00 UTC. The same seed, size and instant always give the same rows.
let dataNow = Date(timeIntervalSince1970: 1_793_491_200)
let dataSeed: UInt64 = 20_261_101

/// The database text of an instant, as GRDB binds a `Date` (UTC, milliseconds).
func sqlTimestamp(_ date: Date) -> String { String.fromDatabaseValue(date.databaseValue) ?? "" }

/// One generated data set: the platform file as the generator writes it, and a migrated copy.
struct Dataset: Codable {
    var users: Int
    var seed: UInt64
    var counts: PlatformDataGenerator.Counts
    var generationSeconds: Double
    var platformPath: String
    var migratedPath: String

    var platformBytes: Int64 { fileSize(platformPath) }
    var migratedBytes: Int64 { fileSize(migratedPath) + fileSize(migratedPath + "-wal") }
    var label: String {
        users >= 1_000_000 && users % 1_000_000 == 0 ? "\(users / 1_000_000)M" : users >= 1_000 && users % 1_000 == 0 ? "\(users / 1_000)k" : "\(users)"
    }
}

/// Where the data and scratch copies live: `Benchmarks/.data/` (gitignored).
struct DataDirectory {
    let root: String
    var work: String { root + "/work" }

    /// Finds the package root from the executable's location (`.build/<triple>/release/journey-bench`).
    static func locate() -> DataDirectory {
        var dir = URL(fileURLWithPath: selfExecutable()).deletingLastPathComponent()
        for _ in 0..<6 {
            let manifest = dir.appendingPathComponent("Package.swift").path
            if let text = try? String(contentsOfFile: manifest, encoding: .utf8), text.contains("JourneyBenchmarks") {
                return DataDirectory(root: dir.appendingPathComponent(".data").path)
            }
            dir.deleteLastPathComponent()
        }
        return DataDirectory(root: FileManager.default.currentDirectoryPath + "/.data")
    }

    var packageRoot: String { URL(fileURLWithPath: root).deletingLastPathComponent().path }

    func prepare() throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    /// The platform file of `users` users (generated once, then reused) and its migrated copy
    /// (made by the library's migrator once, unless `migrate` is false).
    func dataset(users: Int, migrate: Bool = true, report: Report) throws -> Dataset {
        let base = "\(root)/platform-\(users)-s\(dataSeed)"
        let manifestPath = base + ".json"
        var dataset: Dataset
        if let data = FileManager.default.contents(atPath: manifestPath),
            let cached = try? JSONDecoder().decode(Dataset.self, from: data),
            FileManager.default.fileExists(atPath: cached.platformPath)
        {
            dataset = cached
        } else {
            report.note("generating \(fmtCount(users)) users (seed \(dataSeed)); cached in \(root)")
            let temporary = base + ".sqlite.tmp"
            removeDatabase(temporary)
            let (counts, elapsed) = try timed {
                try PlatformDataGenerator(users: users, seed: dataSeed, now: dataNow).write(to: temporary)
            }
            try FileManager.default.moveItem(atPath: temporary, toPath: base + ".sqlite")
            dataset = Dataset(
                users: users, seed: dataSeed, counts: counts, generationSeconds: elapsed.seconds,
                platformPath: base + ".sqlite", migratedPath: "\(root)/migrated-\(users)-s\(dataSeed).sqlite")
            try JSONEncoder().encode(dataset).write(to: URL(fileURLWithPath: manifestPath))
            report.note("generated in \(String(format: "%.1f", elapsed.seconds)) s: \(counts)")
        }
        // A copy migrated by an older library lacks the newer migrations (its tables, triggers and
        // counts): migrate it again from the platform file, as the library would a fresh file.
        if migrate && FileManager.default.fileExists(atPath: dataset.migratedPath),
            (try? SQLiteStore.open(path: dataset.migratedPath, mode: .requireMigrated, now: dataNow)) == nil
        {
            report.note("the migrated copy \(dataset.migratedPath) lacks the library's newer migrations: migrating again")
            removeDatabase(dataset.migratedPath)
        }
        if migrate && !FileManager.default.fileExists(atPath: dataset.migratedPath) {
            report.note("migrating a copy with the library's migrator → \(dataset.migratedPath)")
            let temporary = dataset.migratedPath + ".tmp"
            try copyDatabase(from: dataset.platformPath, to: temporary)
            _ = try Self.migrateWithLibrary(temporary)
            try FileManager.default.moveItem(atPath: temporary, toPath: dataset.migratedPath)
            removeDatabase(temporary)
        }
        return dataset
    }

    /// Runs `SQLiteStore.open(path:mode: .migrate)` on `path`, checkpoints and closes; returns the open+migrate time.
    static func migrateWithLibrary(_ path: String) throws -> Duration {
        let (database, elapsed) = try timed { try SQLiteStore.open(path: path, mode: .migrate, now: dataNow) }
        try checkpoint(database)
        return elapsed
    }

    /// Folds the WAL into the main file, so the file can be copied alone.
    static func checkpoint(_ database: SQLiteStore) throws {
        try database.writer.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }
}
