import Foundation
import GRDB
import Journey
import JourneyCore
import JourneySQLite
import Synchronization

/// Comparison 2: the cache, alone and under a Zipf load with writes.
struct CachedBench {
    let dataset: Dataset
    let quick: Bool
    let report: Report
    let targets: Targets
    let directory: DataDirectory

    func run() async throws {
        let path = directory.work + "/cached.sqlite"
        try copyDatabase(from: dataset.migratedPath, to: path)
        defer { removeDatabase(path) }
        try await missLatency(path: path)
        try await hitLatency(path: path)
        try await zipfLoad(path: path)
    }

    /// The service, and the store it serves (whose pool the load writes through, as the server's own writes would).
    private func makeService(_ path: String) async throws -> (service: JourneyService, database: SQLiteStore) {
        // The server's way: `JourneyService(path:)` opens with `.migrate` (a DatabasePool).
        let database = try SQLiteStore.open(path: path, mode: .migrate, now: dataNow)
        let service = try await JourneyService(store: database, rules: Rules.bundledDefault(), options: JourneyOptions(), clock: ManualClock(dataNow))
        return (service, database)
    }

    // MARK: A miss: the service reading and evaluating

    /// Issue 16: `service.journey(of:)` for a user it holds no answer for (dropped just before), as a
    /// server's request meets it, against the store's own reads of the same users on the same pool.
    func missLatency(path: String) async throws {
        let (service, database) = try await makeService(path)
        let users = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed ^ 0x5E41).prefix(quick ? 200 : 1_000))
        let rounds = quick ? 3 : 5
        let clock = ContinuousClock()
        var viaService = Samples(), viaStore = Samples(), viaRead = Samples()
        var checksum = 0
        // One untimed pass: the pages and the statement caches warm, and the three ways agree.
        for user in users {
            service.invalidate(user: user)
            let answer = try await service.journey(of: user).evaluation.metrics
            let stored = try await database.snapshot(user: user, now: dataNow).metrics
            let read = try Self.poolRead(database, user).metrics
            guard answer == stored, stored == read else {
                throw SpawnError(description: "miss latency: user \(user): service \(answer), store \(stored), pool read \(read)")
            }
        }
        for round in 0..<rounds {
            for way in Array(0..<3).rotated(by: round) {
                for user in users {
                    switch way {
                    case 0:
                        service.invalidate(user: user)
                        let start = clock.now
                        checksum &+= try await service.journey(of: user).evaluation.metrics.posts
                        viaService.add(clock.now - start)
                    case 1:
                        let start = clock.now
                        checksum &+= try await database.snapshot(user: user, now: dataNow).metrics.posts
                        viaStore.add(clock.now - start)
                    default:
                        let start = clock.now
                        checksum &+= try Self.poolRead(database, user).metrics.posts
                        viaRead.add(clock.now - start)
                    }
                }
            }
        }
        report.say("## 2. Cached")
        report.say()
        report.say("### A miss: `service.journey(of:)` with no cached answer (\(dataset.label) users)")
        report.say()
        report.say(
            "The service as a server opens it (`.migrate` pool, default options). \(users.count) random users (fixed seed), \(rounds) interleaved rounds after one untimed pass in which the three ways returned the same metrics for every user; before each service call the user's answer is dropped (`invalidate(user:)`, outside the timed region), so every call reads and evaluates."
        )
        report.say()
        let base = viaRead.median
        report.table(
            ["way", "n", "median", "p99", "mean", "median ÷ sync pool read"],
            [
                [
                    "`service.journey(of:)`, a miss: the store's async read, evaluation, cache store", "\(viaService.count)", fmt(ns: viaService.median),
                    fmt(ns: viaService.p99), fmt(ns: viaService.mean), fmtRatio(viaService.median / base),
                ],
                [
                    "`database.snapshot(user:now:)` (async, on the store's read queue)", "\(viaStore.count)", fmt(ns: viaStore.median), fmt(ns: viaStore.p99),
                    fmt(ns: viaStore.mean), fmtRatio(viaStore.median / base),
                ],
                [
                    "`pool.read { SQLiteStore.snapshot($0, …) }` (sync)", "\(viaRead.count)", fmt(ns: viaRead.median), fmt(ns: viaRead.p99),
                    fmt(ns: viaRead.mean), "1×",
                ],
            ])
        targets.check(
            "(issue 16) uncached evaluate through the service, median ≤ 40 µs (random, \(dataset.label))", viaService.median, atMost: 40_000,
            format: { fmt(ns: $0) })
        targets.check(
            "(issue 16) uncached evaluate through the service, p99 ≤ 150 µs (random, \(dataset.label))", viaService.p99, atMost: 150_000,
            format: { fmt(ns: $0) })
        report.note("miss checksum \(checksum)")
    }

    /// The synchronous pool read (the async context would pick GRDB's async `read`).
    static func poolRead(_ database: SQLiteStore, _ user: Int64) throws -> UserSnapshot {
        try database.writer.read { db in try SQLiteStore.snapshot(db, user: user, now: dataNow) }
    }

    // MARK: A hit against a bare dictionary

    func hitLatency(path: String) async throws {
        let (service, _) = try await makeService(path)
        let users = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed ^ 0xCAC4E).prefix(1_000))
        let dictionary = Mutex<[Int64: UserJourney]>([:])
        for user in users {
            let answer = try await service.journey(of: user)
            dictionary.withLock { $0[user] = answer }
        }
        let batch = 50
        let rounds = quick ? 20 : 200
        var serviceBatched = Samples(), dictionaryBatched = Samples(), serviceSingle = Samples(), dictionarySingle = Samples(), empty = Samples()
        var checksum: Int64 = 0
        let clock = ContinuousClock()
        let before = service.cacheStatistics
        for round in 0..<rounds {
            let keys = users.shuffled(seed: UInt64(round))
            for chunk in keys.chunked(batch) {
                // Alternate which side goes first.
                for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                    let start = clock.now
                    if side == 0 {
                        for user in chunk { checksum &+= try await service.journey(of: user).userID }
                        serviceBatched.add(nanoseconds: (clock.now - start).nanoseconds / Double(chunk.count))
                    } else {
                        for user in chunk { checksum &+= dictionary.withLock { $0[user] }!.userID }
                        dictionaryBatched.add(nanoseconds: (clock.now - start).nanoseconds / Double(chunk.count))
                    }
                }
            }
            // Every call timed alone (includes reading the clock twice).
            for user in keys.prefix(200) {
                let t0 = clock.now
                checksum &+= try await service.journey(of: user).userID
                let t1 = clock.now
                checksum &+= dictionary.withLock { $0[user] }!.userID
                let t2 = clock.now
                let t3 = clock.now
                serviceSingle.add(t1 - t0)
                dictionarySingle.add(t2 - t1)
                empty.add(t3 - t2)
            }
        }
        let after = service.cacheStatistics
        report.say("### A cache hit against a bare `Mutex<[Int64: UserJourney]>` lookup (\(dataset.label) users)")
        report.say()
        report.say(
            "1,000 users warmed, then \(rounds) rounds over them in a new order each round. \"Batched\": \(batch) calls timed together, divided by \(batch) (no clock in the loop). \"Alone\": each call timed by itself (includes one clock read, ~\(fmt(ns: empty.median)) measured empty). Hits during the runs: \(fmtCount(after.hits - before.hits)), misses: \(after.misses - before.misses)."
        )
        report.say()
        let rows: [[String]] = [
            [
                "`service.journey(of:)` hit (async API), batched", "\(serviceBatched.count)", fmt(ns: serviceBatched.median), fmt(ns: serviceBatched.p99),
                fmtRatio(serviceBatched.median / dictionaryBatched.median),
            ],
            ["bare `Mutex` dictionary lookup, batched", "\(dictionaryBatched.count)", fmt(ns: dictionaryBatched.median), fmt(ns: dictionaryBatched.p99), "1×"],
            [
                "`service.journey(of:)` hit, alone", "\(serviceSingle.count)", fmt(ns: serviceSingle.median), fmt(ns: serviceSingle.p99),
                fmtRatio(serviceSingle.median / dictionarySingle.median),
            ],
            ["bare `Mutex` dictionary lookup, alone", "\(dictionarySingle.count)", fmt(ns: dictionarySingle.median), fmt(ns: dictionarySingle.p99), "1×"],
            ["(empty timed region)", "\(empty.count)", fmt(ns: empty.median), fmt(ns: empty.p99), ""],
        ]
        report.table(["what", "n", "median", "p99", "÷ dictionary"], rows)
        targets.check(
            "cache hit through the public async API ≤ 1 µs median (batched, \(dataset.label))", serviceBatched.median, atMost: 1_000, format: { fmt(ns: $0) })
        targets.check(
            "cache hit within 3× of a bare Mutex-guarded dictionary (batched medians, \(dataset.label))",
            serviceBatched.median / dictionaryBatched.median, atMost: 3, format: fmtRatio)
        report.note("cache checksum \(checksum)")
    }

    // MARK: Zipf load with writes

    /// What each user's counts were right after the last write to them committed.
    struct Expected {
        var posts: [Int64: Int] = [:]
        var following: [Int64: Int] = [:]
        var followers: [Int64: Int] = [:]
        /// Users read at least once in this service's life (to tell first sights from re-loads).
        var seen: Set<Int64> = []
    }

    final class Shared: Sendable {
        let reads = Atomic<Int>(0)
        let writes = Atomic<Int>(0)
        let stale = Atomic<Int>(0)
        let firstSights = Atomic<Int>(0)
        let expected: Mutex<Expected>
        init(seen: Set<Int64>) { expected = Mutex(Expected(seen: seen)) }
    }

    struct LoadResult {
        var reads = 0, writes = 0, stale = 0, firstSights = 0
        var seen: Set<Int64> = []
        var seconds = 0.0
        var hits = 0, misses = 0
        var latency = Samples()
    }

    /// `readers` tasks read Zipf-distributed users; every 100th read (counted over all tasks)
    /// first writes a post or a follow through `writer`, then records the counts it committed.
    func load(
        service: JourneyService, writer: any DatabaseWriter, ranks: Zipf, userOfRank: [Int64], readers: Int, reads: Int,
        seed: UInt64, seen: Set<Int64>
    ) async throws -> LoadResult {
        let shared = Shared(seen: seen)
        let before = service.cacheStatistics
        let clock = ContinuousClock()
        let start = clock.now
        let perReader = reads / readers
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for reader in 0..<readers {
                group.addTask {
                    var rng = SplitMix64(seed: seed &+ UInt64(reader) &* 0x9E37)
                    var latencies: [Double] = []
                    latencies.reserveCapacity(perReader)
                    for _ in 0..<perReader {
                        let n = shared.reads.add(1, ordering: .relaxed).newValue
                        if n % 100 == 0 {
                            try Self.write(writer: writer, shared: shared, ranks: ranks, userOfRank: userOfRank, rng: &rng, kind: n / 100)
                        }
                        let user = userOfRank[ranks.sample(rng.unit())]
                        let expected = shared.expected.withLock { ($0.posts[user], $0.following[user], $0.followers[user], $0.seen.insert(user).inserted) }
                        if expected.3 { shared.firstSights.add(1, ordering: .relaxed) }
                        let t0 = clock.now
                        let answer = try await service.journey(of: user)
                        latencies.append((clock.now - t0).nanoseconds)
                        let metrics = answer.evaluation.metrics
                        if let posts = expected.0, metrics.posts < posts {
                            shared.stale.add(1, ordering: .relaxed)
                        } else if let following = expected.1, metrics.following < following {
                            shared.stale.add(1, ordering: .relaxed)
                        } else if let followers = expected.2, metrics.followers < followers {
                            shared.stale.add(1, ordering: .relaxed)
                        }
                    }
                    return latencies
                }
            }
            var all = Samples()
            for try await part in group { all.values.append(contentsOf: part) }
            return all
        }
        let elapsed = clock.now - start
        let after = service.cacheStatistics
        return LoadResult(
            reads: shared.reads.load(ordering: .relaxed), writes: shared.writes.load(ordering: .relaxed),
            stale: shared.stale.load(ordering: .relaxed), firstSights: shared.firstSights.load(ordering: .relaxed),
            seen: shared.expected.withLock { $0.seen }, seconds: elapsed.seconds,
            hits: after.hits - before.hits, misses: after.misses - before.misses, latency: latencies)
    }

    static func write(writer: any DatabaseWriter, shared: Shared, ranks: Zipf, userOfRank: [Int64], rng: inout SplitMix64, kind: Int) throws {
        let a = userOfRank[ranks.sample(rng.unit())]
        var b = userOfRank[ranks.sample(rng.unit())]
        if b == a { b = userOfRank[(ranks.sample(rng.unit()) + 1) % userOfRank.count] }
        let at = dataNow
        if kind % 2 == 0 {
            let posts = try writer.write { db -> Int in
                try db.execute(sql: "INSERT INTO posts(user_id, content, visibility, created_at) VALUES (?, 'bench', 'public', ?)", arguments: [a, at])
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM posts WHERE user_id = ?", arguments: [a]) ?? 0
            }
            shared.expected.withLock { $0.posts[a] = max($0.posts[a] ?? 0, posts) }
        } else {
            let (following, followers) = try writer.write { db -> (Int, Int) in
                try db.execute(sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)", arguments: [a, b, at])
                return (
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows WHERE follower_id = ?", arguments: [a]) ?? 0,
                    try Int.fetchOne(db, sql: "SELECT follower_count FROM users WHERE id = ?", arguments: [b]) ?? 0
                )
            }
            shared.expected.withLock {
                $0.following[a] = max($0.following[a] ?? 0, following)
                $0.followers[b] = max($0.followers[b] ?? 0, followers)
            }
        }
        shared.writes.add(1, ordering: .relaxed)
    }

    func zipfLoad(path: String) async throws {
        let (service, database) = try await makeService(path)
        let users = dataset.counts.users
        let exponent = 1.0
        let ranks = Zipf(n: users, s: exponent)
        let userOfRank = Array(1...Int64(users)).shuffled(seed: dataSeed ^ 0x21BF)
        let readers = 4
        let warmup = quick ? 20_000 : 300_000
        let measured = quick ? 60_000 : 1_200_000
        report.note("zipf load: warm-up \(warmup) reads, measured \(measured) reads, \(readers) tasks")
        let first = try await load(
            service: service, writer: database.writer, ranks: ranks, userOfRank: userOfRank,
            readers: readers, reads: warmup, seed: 1, seen: [])
        let second = try await load(
            service: service, writer: database.writer, ranks: ranks, userOfRank: userOfRank,
            readers: readers, reads: measured, seed: 2, seen: first.seen)
        // Control: the same load with the writes made through another connection the service cannot see.
        // The stale-answer check must catch these (the TTL, five minutes, is what bounds them).
        let otherWriter = try DatabaseQueue(
            path: path,
            configuration: {
                var c = Configuration(); c.busyMode = .timeout(10); return c
            }())
        let control = try await load(
            service: service, writer: otherWriter, ranks: ranks, userOfRank: userOfRank,
            readers: readers, reads: quick ? 20_000 : 200_000, seed: 3, seen: second.seen)
        let stats = service.cacheStatistics

        report.say("### Zipf load with writes (\(dataset.label) users)")
        report.say()
        report.say(
            "\(readers) tasks call `service.journey(of:)` for Zipf-distributed users (exponent \(exponent) over all \(fmtCount(users)) users, ranks shuffled over ids); every 100th read (over all tasks) first writes, alternately, a post by a Zipf user or a follow between two, through the service's own `DatabasePool` (the served `SQLiteStore`'s `writer`; the service is opened as a server opens it, `.migrate`). A read is **stale** when its posts, following or followers are below what the last committed write to that user left (the writer records the counts inside its transaction, after commit). The clock is fixed, so the five-minute TTL never expires during the run: every miss is a first sight or an invalidation. Cache capacity: the default 100,000."
        )
        report.say()
        func row(_ name: String, _ r: LoadResult) -> [String] {
            let hitRate = Double(r.hits) / Double(max(1, r.hits + r.misses))
            let warmRate = Double(r.hits) / Double(max(1, r.reads - r.firstSights))
            return [
                name, fmtCount(r.reads), fmtCount(r.writes), String(format: "%.2f s", r.seconds), fmtCount(Int(Double(r.reads) / r.seconds)) + "/s",
                String(format: "%.1f%%", hitRate * 100), fmtCount(r.firstSights), String(format: "%.1f%%", warmRate * 100),
                "\(r.stale)", fmt(ns: r.latency.median), fmt(ns: r.latency.p99),
            ]
        }
        report.table(
            [
                "phase", "reads", "writes", "wall", "throughput", "hit rate", "first sights", "hit rate on users seen before", "stale answers", "read median",
                "read p99",
            ],
            [
                row("warm-up (cold cache)", first),
                row("measured (after warm-up)", second),
                row("control: writes through another connection", control),
            ])
        report.say(
            "\"First sights\": reads of a user no earlier read had asked for (a miss no cache can avoid); \"hit rate on users seen before\" leaves them out, so its misses are the invalidations by writes (and concurrent first reads)."
        )
        report.say()
        report.say(
            "Cache after the runs: \(fmtCount(stats.count)) entries, \(fmtCount(stats.invalidations)) invalidations, \(fmtCount(stats.loads)) loads, \(stats.evictions) evictions."
        )
        report.say()
        let hitRate = Double(second.hits) / Double(max(1, second.hits + second.misses))
        targets.check(
            "hit rate ≥ 95% in the Zipf load with 1% writes (measured phase, all reads, \(dataset.label))", hitRate * 100, atLeast: 95,
            format: { String(format: "%.1f%%", $0) })
        targets.check(
            "(same, leaving out first sights of a user, \(dataset.label))",
            Double(second.hits) / Double(max(1, second.reads - second.firstSights)) * 100, atLeast: 95, format: { String(format: "%.1f%%", $0) })
        targets.record(
            "0 stale answers for writes through the service's database handle (\(dataset.label))",
            measured: "\(first.stale + second.stale) of \(fmtCount(first.reads + second.reads)) (control through another connection: \(control.stale))",
            met: first.stale + second.stale == 0)
    }
}
