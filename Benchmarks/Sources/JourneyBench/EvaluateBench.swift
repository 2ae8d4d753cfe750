import Foundation
import GRDB
import JourneyCore
import JourneySQLite

/// Comparison 1: one user's metrics, uncached, every way.
struct EvaluateBench {
    let dataset: Dataset
    let quick: Bool
    let report: Report
    let targets: Targets

    struct Config {
        var randomUsers: Int
        var rounds: Int
        var heavyRounds: Int
        var unmigratedRandom: Int
        var unmigratedHeavy: Int
    }

    var config: Config {
        quick
            ? Config(randomUsers: 200, rounds: 3, heavyRounds: 10, unmigratedRandom: 20, unmigratedHeavy: 5)
            : Config(randomUsers: 1_000, rounds: 5, heavyRounds: 30, unmigratedRandom: 10, unmigratedHeavy: 3)
    }

    /// One way of reading a user's counts; returns a checksum so nothing is optimized away.
    struct Way {
        let name: String
        let read: (Int64) throws -> Int64
    }

    /// The counts every way must agree on.
    struct Counts: Equatable {
        var posts: Int64, followers: Int64, following: Int64, organized: Int64, attended: Int64
    }

    mutating func run() throws {
        let now = dataNow
        let nowText = sqlTimestamp(now)
        let window = SQLiteStore.windowArguments(now: now, forms: .canonical)
        // The server's way (`JourneyService(path:)`): `.migrate` opens a DatabasePool.
        let journey = try SQLiteStore.open(path: dataset.migratedPath, mode: .migrate, now: now)
        // The command line's and the batch's way: `.requireMigrated` opens one DatabaseQueue.
        let journeyQueue = try SQLiteStore.open(path: dataset.migratedPath, mode: .requireMigrated, now: now)
        var readOnly = Configuration()
        SQLiteStore.prepare(&readOnly)
        readOnly.readonly = true
        let unmigrated = try DatabaseQueue(path: dataset.platformPath, configuration: readOnly)
        let migratedQueue = try DatabaseQueue(path: dataset.migratedPath, configuration: readOnly)
        let raw = try RawDatabase(path: dataset.migratedPath, readOnly: true)

        // Users: a fixed random sample, and the ten with the most followers.
        let random = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed).prefix(config.randomUsers))
        let heavy: [(Int64, Int64)] = try migratedQueue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, follower_count FROM users ORDER BY follower_count DESC, id LIMIT 10").map { ($0[0], $0[1]) }
        }
        let heavyIDs = heavy.map(\.0)

        // --- the ways ---
        func platform(_ db: Database, _ user: Int64) throws -> Counts {
            let userRow = try Row.fetchOne(db.cachedStatement(sql: SQLText.platformUser), arguments: [user])
            var values: [Int64] = []
            for (metric, sql) in SQLText.platformCounts {
                let arguments: StatementArguments = metric == "events_attended" ? [user, nowText] : [user]
                values.append(try Int64.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) ?? 0)
            }
            _ = userRow
            return Counts(posts: values[0], followers: values[1], following: values[2], organized: values[3], attended: values[4])
        }
        // The same queries as plain code writes them: each its own read, prepared each time.
        func platformSeparate(_ queue: DatabaseQueue, _ user: Int64) throws -> Counts {
            _ = try queue.read { try Row.fetchOne($0, sql: SQLText.platformUser, arguments: [user]) }
            var values: [Int64] = []
            for (metric, sql) in SQLText.platformCounts {
                let arguments: StatementArguments = metric == "events_attended" ? [user, nowText] : [user]
                values.append(try queue.read { try Int64.fetchOne($0, sql: sql, arguments: arguments) } ?? 0)
            }
            return Counts(posts: values[0], followers: values[1], following: values[2], organized: values[3], attended: values[4])
        }
        let windowStatementArguments = StatementArguments(window)
        let snapshotArguments: (Int64) -> StatementArguments = { user in windowStatementArguments &+ ["user": user] }
        func fromRow(_ row: Row) -> Counts {
            Counts(posts: row["posts"], followers: row["follower_count"], following: row["following"], organized: row["organized"], attended: row["attended"])
        }
        func fromSnapshot(_ s: UserSnapshot) -> Counts {
            Counts(
                posts: Int64(s.metrics.posts), followers: Int64(s.metrics.followers), following: Int64(s.metrics.following),
                organized: Int64(s.metrics.eventsOrganized), attended: Int64(s.metrics.eventsAttended))
        }
        let rawSnapshot = try raw.prepare(SQLText.snapshot)
        let rawCounting = try raw.prepare(try SQLText.snapshotCountingFollowers)
        for statement in [rawSnapshot, rawCounting] {
            try statement.bind(window, later: ["user"])
        }
        let rawUserIndex = rawSnapshot.index(":user")
        func rawRead(_ statement: RawStatement, _ user: Int64) throws -> Counts {
            statement.bind(rawUserIndex, user)
            defer { statement.reset() }
            guard try statement.step() else { throw SpawnError(description: "no user \(user)") }
            return Counts(
                posts: statement.int64(SQLText.Column.posts), followers: statement.int64(SQLText.Column.followerCount),
                following: statement.int64(SQLText.Column.following), organized: statement.int64(SQLText.Column.organized),
                attended: statement.int64(SQLText.Column.attended))
        }
        func rawPreparedEachTime(_ user: Int64) throws -> Counts {
            let statement = try raw.prepare(SQLText.snapshot)
            try statement.bind(window, later: ["user"])
            statement.bind(statement.index(":user"), user)
            guard try statement.step() else { throw SpawnError(description: "no user \(user)") }
            return Counts(
                posts: statement.int64(SQLText.Column.posts), followers: statement.int64(SQLText.Column.followerCount),
                following: statement.int64(SQLText.Column.following), organized: statement.int64(SQLText.Column.organized),
                attended: statement.int64(SQLText.Column.attended))
        }
        let pool = journey.writer

        // --- correctness: every way gives the same counts, and the copied SQL is the library's ---
        var disagreements: [String] = []
        for user in random.prefix(200) + heavyIDs {
            let library = fromSnapshot(try journey.writer.read { db in try SQLiteStore.snapshot(db, user: user, now: now) })
            let viaRaw = try rawRead(rawSnapshot, user)
            let viaCounting = try rawRead(rawCounting, user)
            let viaPlatform = try migratedQueue.read { try platform($0, user) }
            if library != viaRaw { disagreements.append("user \(user): snapshot \(library) vs copied SQL \(viaRaw)") }
            if library != viaCounting { disagreements.append("user \(user): follower_count \(library.followers) vs COUNT \(viaCounting.followers)") }
            if library != viaPlatform { disagreements.append("user \(user): snapshot \(library) vs platform counts \(viaPlatform)") }
        }
        for user in (random.prefix(3) + heavyIDs.prefix(2)) {
            let library = fromSnapshot(try journey.writer.read { db in try SQLiteStore.snapshot(db, user: user, now: now) })
            let viaPlatform = try unmigrated.read { try platform($0, user) }
            if library != viaPlatform { disagreements.append("user \(user): unmigrated platform counts \(viaPlatform) vs \(library)") }
        }

        // --- the ways, measured ---
        let queueWriter = journeyQueue.writer
        let ways: [Way] = [
            Way(name: Names.platformUnmigrated) { user in try unmigrated.read { try platform($0, user).posts } },
            Way(name: Names.platformMigrated) { user in try migratedQueue.read { try platform($0, user).posts } },
            Way(name: Names.platformSeparate) { user in try platformSeparate(migratedQueue, user).posts },
            Way(name: Names.snapshotPool) { user in Int64(try journey.writer.read { db in try SQLiteStore.snapshot(db, user: user, now: now) }.metrics.posts) },
            Way(name: Names.snapshotQueue) { user in
                Int64(try journeyQueue.writer.unsafeRead { db in try SQLiteStore.snapshot(db, user: user, now: now) }.metrics.posts)
            },
            Way(name: Names.cachedPool) { user in
                try pool.read { db in try Int64(Row.fetchOne(db.cachedStatement(sql: SQLText.snapshot), arguments: snapshotArguments(user))!["posts"] as Int) }
            },
            Way(name: Names.cachedQueue) { user in
                try queueWriter.read { db in
                    try Int64(Row.fetchOne(db.cachedStatement(sql: SQLText.snapshot), arguments: snapshotArguments(user))!["posts"] as Int)
                }
            },
            Way(name: Names.rawOnce) { user in try rawRead(rawSnapshot, user).posts },
            Way(name: Names.rawEach) { user in try rawPreparedEachTime(user).posts },
            Way(name: Names.rawCounting) { user in try rawRead(rawCounting, user).followers },
            Way(name: Names.emptyPool) { user in try pool.read { _ in user } },
            Way(name: Names.emptyQueue) { user in try queueWriter.read { _ in user } },
        ]
        let unmigratedWay = 0

        var samples: [String: [String: Samples]] = ["random": [:], "heavy": [:]]
        var checksum: Int64 = 0
        // Warm the page cache and the statement caches: one untimed pass on the migrated file.
        for way in ways.dropFirst() { for user in random + heavyIDs { checksum &+= try way.read(user) } }

        // Interleaved rounds: each round runs every way over the users, in a rotated order.
        for (group, users, rounds) in [("random", random, config.rounds), ("heavy", heavyIDs, config.heavyRounds)] {
            for round in 0..<rounds {
                let order = ways.indices.dropFirst().map { $0 }.rotated(by: round)
                for index in order {
                    let way = ways[index]
                    for user in users {
                        let (value, elapsed) = try timed { try way.read(user) }
                        checksum &+= value
                        samples[group]![way.name, default: Samples()].add(elapsed)
                    }
                }
            }
            // Batched GRDB reads: 100 users per read access, each statement timed inside it.
            var batched = Samples()
            var amortized = Samples()
            for _ in 0..<rounds {
                for chunk in users.chunked(100) {
                    let (_, whole) = try timed {
                        try pool.read { db in
                            let statement = try db.cachedStatement(sql: SQLText.snapshot)
                            for user in chunk {
                                let (row, elapsed) = try timed { try Row.fetchOne(statement, arguments: snapshotArguments(user))! }
                                checksum &+= row["posts"] as Int64
                                batched.add(elapsed)
                            }
                        }
                    }
                    amortized.add(nanoseconds: whole.nanoseconds / Double(chunk.count))
                }
            }
            samples[group]![Names.batchedInside] = batched
            samples[group]![Names.batchedWhole] = amortized
            // The un-migrated file: a few users only (each one scans whole tables).
            let few = group == "random" ? Array(users.prefix(config.unmigratedRandom)) : Array(users.prefix(config.unmigratedHeavy))
            report.note("un-migrated platform counts: \(few.count) \(group) users")
            for user in few {
                let (value, elapsed) = try timed { try ways[unmigratedWay].read(user) }
                checksum &+= value
                samples[group]![ways[unmigratedWay].name, default: Samples()].add(elapsed)
            }
        }

        // --- report ---
        report.say("## 1. Evaluate one user, uncached (\(dataset.label) users)")
        report.say()
        report.say(
            "Same process, same files. Random users: \(random.count) (fixed seed), \(config.rounds) interleaved rounds; the ten heaviest users (followers: \(heavy.map { fmtCount(Int($0.1)) }.joined(separator: ", "))), \(config.heavyRounds) rounds. The un-migrated file is asked for \(config.unmigratedRandom) random and \(config.unmigratedHeavy) heavy users (each scans whole tables)."
        )
        report.say()
        report.say(
            disagreements.isEmpty
                ? "Check: every way returned the same posts, followers, following, events organized and events attended for \(min(200, random.count) + heavyIDs.count) users (and the library's statement through the raw C API equals `snapshot(user:now:)`)."
                : "**Disagreements (\(disagreements.count))**: " + disagreements.prefix(5).joined(separator: "; "))
        report.say()
        let order = [
            Names.platformUnmigrated, Names.platformMigrated, Names.platformSeparate, Names.snapshotPool, Names.snapshotQueue, Names.cachedPool,
            Names.cachedQueue,
            Names.batchedInside, Names.batchedWhole, Names.rawOnce, Names.rawEach, Names.rawCounting, Names.emptyPool, Names.emptyQueue,
        ]
        let journeyName = Names.snapshotPool
        for group in ["random", "heavy"] {
            let base = samples[group]![journeyName]!
            var rows: [[String]] = []
            for name in order {
                guard let s = samples[group]![name], s.count > 0 else { continue }
                rows.append([name, "\(s.count)", fmt(ns: s.median), fmt(ns: s.p99), fmt(ns: s.mean), fmtRatio(s.median / base.median)])
            }
            report.say("**\(group == "random" ? "Random users" : "The ten heaviest users")**")
            report.say()
            report.table(["way", "n", "median", "p99", "mean", "median ÷ Journey `snapshot` (pool)"], rows)
        }
        // --- targets ---
        let r = samples["random"]!, h = samples["heavy"]!
        let pub = r[journeyName]!, rawOnce = r[Names.rawOnce]!
        let label = dataset.label
        targets.check(
            "uncached evaluate ≥ 10,000× the platform's way on the un-migrated file (random, medians, \(label))",
            r[Names.platformUnmigrated]!.median / pub.median, atLeast: 10_000, format: fmtRatio)
        targets.check(
            "uncached evaluate ≥ 4× the platform's way on the migrated file (random, medians, \(label))",
            r[Names.platformMigrated]!.median / pub.median, atLeast: 4, format: fmtRatio)
        targets.check(
            "(same, against the 6 queries each its own read, prepared each time, \(label))",
            r[Names.platformSeparate]!.median / pub.median, atLeast: 4, format: fmtRatio)
        targets.check("uncached evaluate median ≤ 50 µs (`snapshot`, server pool, random, \(label))", pub.median, atMost: 50_000, format: { fmt(ns: $0) })
        targets.check("uncached evaluate p99 ≤ 250 µs (`snapshot`, server pool, random, \(label))", pub.p99, atMost: 250_000, format: { fmt(ns: $0) })
        targets.check(
            "heaviest users ≤ 1 ms (`snapshot`, server pool, p99 over the ten, \(label))", h[journeyName]!.p99, atMost: 1_000_000, format: { fmt(ns: $0) })
        targets.check("(same, the slowest single call of the ten, \(label))", h[journeyName]!.max, atMost: nil, format: { fmt(ns: $0) })
        targets.check(
            "GRDB path within 1.3× of the raw statement (`snapshot` pool ÷ raw prepared once, medians, \(label))",
            pub.median / rawOnce.median, atMost: 1.3, format: fmtRatio)
        targets.check(
            "(diagnostic) GRDB pool with a cached statement, one read each, ÷ raw prepared once (medians, \(label))",
            r[Names.cachedPool]!.median / rawOnce.median, atMost: 1.3, format: fmtRatio)
        targets.check(
            "(command-line path) `snapshot` through `.requireMigrated`'s DatabaseQueue, median (random, \(label))",
            r[Names.snapshotQueue]!.median, atMost: 50_000, format: { fmt(ns: $0) })
        if let batched = r[Names.batchedWhole] {
            targets.check(
                "GRDB, several reads in one access, within 1.3× of raw (whole read ÷ users vs raw median, \(label))",
                batched.median / rawOnce.median, atMost: 1.3, format: fmtRatio)
        }
        targets.check(
            "follower_count vs COUNT(follows) on the heaviest users (COUNT ÷ column, medians, \(label)): what the counter buys",
            h[Names.rawCounting]!.median / h[Names.rawOnce]!.median, atLeast: nil, format: fmtRatio)
        report.note("evaluate checksum \(checksum)")

        // --- where the time goes ---
        report.say("### Query plans")
        report.say()
        func plan(_ title: String, _ database: RawDatabase, _ sql: String) throws {
            report.say("\(title):")
            report.say("```")
            for row in try database.rows("EXPLAIN QUERY PLAN " + sql) { report.say(row.last ?? "") }
            report.say("```")
        }
        let rawUnmigrated = try RawDatabase(path: dataset.platformPath, readOnly: true)
        try plan("Journey's statement (`snapshotSQL`), migrated file", raw, SQLText.snapshot)
        try plan("The platform's follower count, un-migrated file", rawUnmigrated, SQLText.platformCounts[1].sql)
        try plan("The platform's follower count, migrated file", raw, SQLText.platformCounts[1].sql)
        try plan("The platform's events attended, migrated file", raw, SQLText.platformCounts[4].sql)
        try plan("The batch's chunk statement (`chunkSQL`), migrated file", raw, SQLText.chunk)
        report.say()
    }
}

/// The rows of the evaluate tables.
enum Names {
    static let platformUnmigrated = "platform: user row + 5 COUNTs, un-migrated file"
    static let platformMigrated = "platform: user row + 5 COUNTs, migrated file (GRDB, cached statements, one read)"
    static let platformSeparate = "platform: the same 6 queries, each its own read, prepared each time (`Row.fetchOne(db, sql:)`), migrated file"
    static let snapshotPool = "Journey `snapshot(user:now:)`, `.migrate` pool (server: `JourneyService(path:)`)"
    static let snapshotQueue = "Journey `snapshot(user:now:)`, `.requireMigrated` queue (CLI, batch)"
    static let cachedPool = "same SQL, GRDB `cachedStatement`, one pool read each"
    static let cachedQueue = "same SQL, GRDB `cachedStatement`, one `.requireMigrated` queue read each"
    static let batchedInside = "same SQL, GRDB pool, 100 users per read (each statement timed)"
    static let batchedWhole = "same SQL, GRDB pool, 100 users per read (whole read ÷ 100)"
    static let rawOnce = "same SQL, raw C API, prepared once"
    static let rawEach = "same SQL, raw C API, prepared per call"
    static let rawCounting = "same SQL with COUNT(follows) instead of `follower_count` (raw C)"
    static let emptyPool = "(overhead) empty `DatabasePool.read {}`"
    static let emptyQueue = "(overhead) empty `.requireMigrated` `DatabaseQueue.read {}`"
}

extension Array {
    func rotated(by n: Int) -> [Element] {
        guard !isEmpty else { return self }
        let k = n % count
        return Array(self[k...] + self[..<k])
    }

    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
