import Foundation
import GRDB
import JourneyCore
import JourneySQLite

/// What-if measurements for the batch: the same chunk statement under other settings. Nothing
/// here changes the library; each figure says what a library change would buy. (The transition
/// row's metrics JSON, once measured here at 158 µs with `JSONSerialization`, is now written by
/// hand in the library.)
struct LeversBench {
    let dataset: Dataset
    let directory: DataDirectory
    let report: Report

    /// Reads every user's metrics with the batch's chunk statement (raw C, chunks of 2,000); returns the time.
    func readAll(_ database: RawDatabase) throws -> (Duration, Int) {
        let statement = try database.prepare(SQLText.chunk)
        try statement.bind(SQLText.window, later: ["low", "high"])
        let low = statement.index(":low"), high = statement.index(":high")
        var rows = 0
        let (_, elapsed) = try timed {
            var after: Int64 = 0
            let users = Int64(dataset.counts.users)
            while after < users {
                statement.bind(low, after + 1)
                statement.bind(high, min(after + 2_000, users))
                while try statement.step() { rows += 1 }
                statement.reset()
                after += 2_000
            }
        }
        return (elapsed, rows)
    }

    func run() throws {
        let path = directory.work + "/levers.sqlite"
        try copyDatabase(from: dataset.migratedPath, to: path)
        defer { removeDatabase(path) }
        var rows: [[String]] = []
        var base = 0.0
        let variants: [(String, [String])] = [
            ("defaults (cache_size 2 MB, no mmap), as the library's connections", []),
            ("`PRAGMA cache_size = -262144` (256 MiB)", ["PRAGMA cache_size = -262144"]),
            ("`PRAGMA mmap_size = 8589934592` (the whole file mapped)", ["PRAGMA mmap_size = 8589934592"]),
        ]
        for (name, pragmas) in variants {
            let database = try RawDatabase(path: path)
            for pragma in pragmas { try database.execute(pragma) }
            _ = try readAll(database)  // warm
            let (elapsed, count) = try readAll(database)
            if base == 0 { base = elapsed.nanoseconds }
            rows.append([
                name, fmtCount(count), fmt(ns: elapsed.nanoseconds), fmtCount(Int(Double(count) / elapsed.seconds)) + "/s",
                fmtRatio(base / elapsed.nanoseconds),
            ])
        }
        // A covering index for the RSVP count: the rows' status and event are read from the index.
        let database = try RawDatabase(path: path)
        let (_, build) = try timed { try database.execute("CREATE INDEX bench_rsvps_user_status_event ON event_rsvps(user_id, status, event_id)") }
        for (name, pragmas) in [
            ("+ covering index `event_rsvps(user_id, status, event_id)`", [String]()),
            ("+ covering index and `mmap_size` (whole file)", ["PRAGMA mmap_size = 8589934592"]),
        ] {
            let database = try RawDatabase(path: path)
            for pragma in pragmas { try database.execute(pragma) }
            _ = try readAll(database)
            let (elapsed, count) = try readAll(database)
            rows.append([
                name, fmtCount(count), fmt(ns: elapsed.nanoseconds), fmtCount(Int(Double(count) / elapsed.seconds)) + "/s",
                fmtRatio(base / elapsed.nanoseconds),
            ])
        }
        let plan = try database.rows("EXPLAIN QUERY PLAN " + SQLText.chunk).map { $0.last ?? "" }.filter {
            $0.contains("event_rsvps") || $0.hasPrefix("SEARCH r ")
        }

        report.say("### What would make the batch faster (\(dataset.label) users, what-if, library unchanged)")
        report.say()
        report.say(
            "The batch's read side alone: the chunk statement (`chunkSQL`) over every user in chunks of 2,000, raw C API, prepared once, on a fresh copy of the migrated file; one warm pass, then one timed pass. The covering index took \(fmt(ns: build.nanoseconds)) to build; with it the RSVP part of the plan is: `\(plan.joined(separator: "`, `"))`."
        )
        report.say()
        report.table(["read side", "rows", "time", "users/s", "speed-up"], rows)
    }
}
