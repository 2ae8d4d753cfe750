import Foundation
import JourneyCore
import JourneyStore

/// Issue 11: what reading timestamps in every form of SPEC §8 costs the metrics statements.
///
/// The library's statements compare `journey_instant(created_at) >= :since` (a C function call per
/// row) where they used to compare the stored text with a text bound (an index range count on
/// `posts(user_id, created_at)`). This section measures, in one process, on copies of the main data
/// set's migrated file: the old text statements on canonical data (what the figures before this
/// change measured), the library's statements on the same canonical data, and the library's
/// statements on copies whose `posts.created_at`, `events.start_date` and `users.created_at` were
/// rewritten to other forms by plain SQL `UPDATE`s. Every way must return the same counts for
/// every user it reads, or the section fails.
struct TimestampFormsBench {
    let dataset: Dataset
    let directory: DataDirectory
    let quick: Bool
    let report: Report
    let targets: Targets

    /// One file: canonical, or rewritten to another form.
    struct Form {
        let name: String
        /// What a value of `posts.created_at` looks like afterwards (from the file, for the report).
        var example = ""
        /// Given a column expression holding canonical text, the SQL of the same instant in this form (nil: untouched).
        let rewrite: ((String) -> String)?
        var path = ""
        var rewriteTime: Duration = .zero
        var storage = ""
    }

    /// One way of reading: a statement on a file, bound as text (old) or epoch seconds (library).
    struct Way {
        let name: String
        let data: String
        let database: RawDatabase
        let oneUser: RawStatement
        let chunk: RawStatement
    }

    /// The counts every way must agree on, for one user.
    struct Counts: Equatable, CustomStringConvertible {
        var followers: Int64, posts: Int64, recent: Int64, following: Int64, organized: Int64, attended: Int64
        var description: String { "followers \(followers) posts \(posts) recent \(recent) following \(following) organized \(organized) attended \(attended)" }
    }

    var config: (randomUsers: Int, rounds: Int, heavyRounds: Int, chunkPasses: Int) {
        quick ? (200, 3, 5, 2) : (1_000, 10, 30, 5)
    }

    /// The columns rewritten, as (table, column).
    static let columns = [("posts", "created_at"), ("events", "start_date"), ("users", "created_at")]

    func run() throws {
        let (nowEpoch, sinceEpoch) = windowEpochs(dataNow)
        // The old statements bound text: `:now` with milliseconds, `:since` in whole seconds (so a
        // post at that instant counts whether stored as `…:00` or `…:00.000`).
        let nowText = sqlTimestamp(dataNow)
        let sinceText = String(sqlTimestamp(dataNow.addingTimeInterval(-30 * 86_400)).prefix(19))

        // --- the files ---
        var forms = [
            Form(name: "canonical", rewrite: nil),
            Form(name: "ISO-8601 UTC", rewrite: { "strftime('%Y-%m-%dT%H:%M:%fZ', \($0))" }),
            Form(name: "ISO-8601 +02:00", rewrite: { "strftime('%Y-%m-%dT%H:%M:%f+02:00', \($0), '+2 hours')" }),
            Form(name: "epoch milliseconds", rewrite: { "CAST(round((julianday(\($0)) - 2440587.5) * 86400000) AS INTEGER)" }),
        ]
        defer { for form in forms where !form.path.isEmpty { removeDatabase(form.path) } }
        for index in forms.indices {
            let path = directory.work + "/forms-\(index).sqlite"
            report.note("forms: copying the migrated file for \(forms[index].name)")
            try copyDatabase(from: dataset.migratedPath, to: path)
            forms[index].path = path
            let database = try RawDatabase(path: path)
            if let rewrite = forms[index].rewrite {
                report.note("forms: rewriting \(Self.columns.map { "\($0.0).\($0.1)" }.joined(separator: ", ")) to \(forms[index].name)")
                let (_, elapsed) = try timed {
                    try database.execute("BEGIN IMMEDIATE")
                    for (table, column) in Self.columns {
                        try database.execute("UPDATE \(table) SET \(column) = \(rewrite(column)) WHERE \(column) IS NOT NULL")
                    }
                    try database.execute("COMMIT")
                    try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                }
                forms[index].rewriteTime = elapsed
            }
            // What the file now holds: the storage class and the form `journey_timestamp_form` reads, per column.
            var storage: [String] = []
            for (table, column) in Self.columns {
                let rows = try database.rows("SELECT typeof(\(column)), journey_timestamp_form(\(column)), COUNT(*) FROM \(table) GROUP BY 1, 2 ORDER BY 3 DESC")
                storage.append("\(table).\(column): " + rows.map { "\($0[0]) \($0[1]) \(fmtCount(Int($0[2]) ?? 0))" }.joined(separator: ", "))
                if rows.contains(where: { $0[1] == "unreadable" }) {
                    throw SpawnError(description: "forms: the \(forms[index].name) rewrite left unreadable values in \(table).\(column): \(rows)")
                }
            }
            forms[index].storage = storage.joined(separator: "; ")
            forms[index].example = try database.rows("SELECT created_at FROM posts WHERE id = 1").first?.first ?? ""
        }

        // --- the ways: one connection each, statements prepared once, window bound once ---
        let oldOneUser = SQLText.snapshotForShell
        guard !oldOneUser.contains("journey_instant") else {
            throw SpawnError(description: "forms: SQLText.snapshotForShell still calls journey_instant (its replacements no longer match snapshotSQL):\n\(oldOneUser)")
        }
        let oldChunk = try Self.textChunk()
        var ways: [Way] = []
        func way(_ name: String, _ form: Form, text: Bool) throws -> Way {
            let database = try RawDatabase(path: form.path, readOnly: true)
            let oneUser = try database.prepare(text ? oldOneUser : SQLText.snapshot)
            let chunk = try database.prepare(text ? oldChunk : SQLText.chunk)
            for statement in [oneUser, chunk] {
                if text {
                    statement.bind(statement.index(":now"), nowText)
                    statement.bind(statement.index(":since"), sinceText)
                } else {
                    statement.bind(statement.index(":now"), nowEpoch)
                    statement.bind(statement.index(":since"), sinceEpoch)
                }
            }
            return Way(name: name, data: form.name, database: database, oneUser: oneUser, chunk: chunk)
        }
        ways.append(try way("old: text comparison (`p.created_at >= :since`), text bounds", forms[0], text: true))
        ways.append(try way("library: `journey_instant(…)`, epoch bounds", forms[0], text: false))
        for form in forms.dropFirst() {
            ways.append(try way("library: `journey_instant(…)`, epoch bounds", form, text: false))
        }

        // --- a. one user ---
        let random = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed).prefix(config.randomUsers))
        let heavy: [(Int64, Int)] = try ways[0].database.rows(
            "SELECT user_id, COUNT(*) FROM posts GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 10").map { (Int64($0[0])!, Int($0[1])!) }
        func read(_ way: Way, _ user: Int64) throws -> Counts {
            let s = way.oneUser
            s.bind(s.index(":user"), user)
            defer { s.reset() }
            guard try s.step() else { throw SpawnError(description: "forms: no user \(user) in \(way.data)") }
            return Counts(followers: s.int64(SQLText.Column.followerCount), posts: s.int64(SQLText.Column.posts), recent: s.int64(SQLText.Column.recent),
                          following: s.int64(SQLText.Column.following), organized: s.int64(SQLText.Column.organized), attended: s.int64(SQLText.Column.attended))
        }
        // Check (and warm): every way, every user measured, the same counts as the old statement on canonical data.
        var recentUsers = 0, attendedUsers = 0
        for user in random + heavy.map(\.0) {
            let expected = try read(ways[0], user)
            if expected.recent > 0 { recentUsers += 1 }
            if expected.attended > 0 { attendedUsers += 1 }
            for way in ways.dropFirst() {
                let got = try read(way, user)
                guard got == expected else {
                    throw SpawnError(description: "forms: user \(user): \(way.name) on \(way.data) gives \(got), the text statement on canonical data \(expected)")
                }
            }
        }
        var samples: [String: [Int: Samples]] = ["random": [:], "heavy": [:]]
        var checksum: Int64 = 0
        for (group, users, rounds) in [("random", random, config.rounds), ("heavy", heavy.map(\.0), config.heavyRounds)] {
            for round in 0..<rounds {
                for index in Array(ways.indices).rotated(by: round) {
                    let way = ways[index]
                    let s = way.oneUser
                    let userIndex = s.index(":user")
                    for user in users {
                        let (value, elapsed) = try timed { () throws -> Int64 in
                            s.bind(userIndex, user)
                            defer { s.reset() }
                            _ = try s.step()
                            return s.int64(SQLText.Column.recent) &+ s.int64(SQLText.Column.attended)
                        }
                        checksum &+= value
                        samples[group]![index, default: Samples()].add(elapsed)
                    }
                }
            }
        }

        // --- b. the batch's read side: every user in chunks of 2,000 ---
        let users = Int64(dataset.counts.users)
        /// One pass; returns the time and, per user, (recent posts, events attended, unreadable values).
        func readAll(_ way: Way) throws -> (Duration, [Int64]) {
            let s = way.chunk
            let low = s.index(":low"), high = s.index(":high")
            var values: [Int64] = []
            values.reserveCapacity(Int(users) * 4)
            let (_, elapsed) = try timed {
                var after: Int64 = 0
                while after < users {
                    s.bind(low, after + 1)
                    s.bind(high, min(after + 2_000, users))
                    while try s.step() {
                        values.append(s.int64(0))
                        values.append(s.int64(SQLText.Column.recent))
                        values.append(s.int64(SQLText.Column.attended))
                        values.append(s.int64(16) &+ s.int64(17))  // unreadable values: NULL reads as 0
                    }
                    s.reset()
                    after += 2_000
                }
            }
            return (elapsed, values)
        }
        // One warm pass each, checked against the old statement on canonical data.
        let (_, expected) = try readAll(ways[0])
        guard expected.count == Int(users) * 4 else {
            throw SpawnError(description: "forms: the text chunk statement read \(expected.count / 4) users of \(users)")
        }
        for way in ways.dropFirst() {
            let (_, got) = try readAll(way)
            guard got == expected else {
                let first = stride(from: 0, to: min(got.count, expected.count), by: 4).first { got[$0..<$0 + 4] != expected[$0..<$0 + 4] }
                throw SpawnError(description: "forms: the chunk statement on \(way.data) disagrees with the text statement on canonical data"
                    + (first.map { " at user \(expected[$0]): (id, recent, attended, unreadable) \(Array(got[$0..<$0 + 4])) vs \(Array(expected[$0..<$0 + 4]))" } ?? " (\(got.count / 4) rows)"))
            }
        }
        var passes: [Int: Samples] = [:]
        for round in 0..<config.chunkPasses {
            for index in Array(ways.indices).rotated(by: round) {
                let (elapsed, _) = try readAll(ways[index])
                passes[index, default: Samples()].add(elapsed)
            }
        }

        // --- report ---
        report.say("## Timestamps in every form (SPEC §8): what `journey_instant` costs (\(dataset.label) users)")
        report.say()
        report.say("`--only forms`. Copies of the migrated file (\(fmtBytes(dataset.migratedBytes)); \(fmtCount(dataset.counts.posts)) posts, \(fmtCount(dataset.counts.events)) events, \(fmtCount(dataset.counts.rsvps)) RSVPs). On each copy but the first, `posts.created_at`, `events.start_date` and `users.created_at` were rewritten in one transaction by `UPDATE … SET c = <expr>(c)`, then checkpointed. The platform declares these columns `TEXT`, so the epoch-millisecond integers are stored as **digits in TEXT** (TEXT affinity converts them). `journey_timestamp_form` was run over every value afterwards (none unreadable):")
        report.say()
        report.table(["file", "`posts.created_at` of post 1", "rewrite", "size after", "what the columns hold (storage class, form, values)"], forms.map { form in
            [form.name, "`\(form.example)`", form.rewrite == nil ? "–" : fmt(ns: form.rewriteTime.nanoseconds), fmtBytes(fileSize(form.path) + fileSize(form.path + "-wal")), form.storage]
        })
        report.say("Ways: the **old** statements compare the stored text with text bounds (`:now` `\(nowText)`, `:since` `\(sinceText)`): `SQLText.snapshotForShell`, and `chunkSQL` turned back into its text form by string replacement (its two unreadable-count columns become `0`). The **library**'s statements (`snapshotSQL`, `chunkSQL`) compare `journey_instant(…)` with epoch seconds (`:now` \(String(format: "%.0f", nowEpoch)), `:since` \(String(format: "%.0f", sinceEpoch))). Raw SQLite C API, one connection per way, statements prepared once.")
        report.say()
        report.say("Check: every way returned the same followers, posts, recent posts, following, events organized and events attended for each of the \(fmtCount(random.count + heavy.count)) users measured (\(fmtCount(recentUsers)) with recent posts, \(fmtCount(attendedUsers)) with events attended), and the chunk statements the same recent posts and events attended for all \(fmtCount(Int(users))) users, with no unreadable value.")
        report.say()
        for (group, title, detail) in [
            ("random", "One user, \(fmtCount(random.count)) random users", "\(config.rounds) interleaved rounds (rotated order), after one untimed checking pass"),
            ("heavy", "One user, the ten users with the most posts", "posts: \(heavy.map { fmtCount($0.1) }.joined(separator: ", ")); \(config.heavyRounds) interleaved rounds"),
        ] {
            let base = samples[group]![0]!
            report.say("**\(title)** (\(detail))")
            report.say()
            report.table(["statement", "data", "n", "median", "p99", "mean", "median ÷ old text statement"], ways.indices.map { index in
                let s = samples[group]![index]!
                return [ways[index].name, ways[index].data, "\(s.count)", fmt(ns: s.median), fmt(ns: s.p99), fmt(ns: s.mean), fmtRatio(s.median / base.median)]
            })
        }
        report.say("**The batch's read side** (the chunk statement over all \(fmtCount(Int(users))) users in chunks of 2,000, as `LeversBench.readAll`; one checking pass each, then \(config.chunkPasses) timed passes interleaved; median pass)")
        report.say()
        let base = passes[0]!.median
        report.table(["statement", "data", "passes", "time (median)", "min", "users/s", "time ÷ old text statement"], ways.indices.map { index in
            let s = passes[index]!
            return [ways[index].name, ways[index].data, "\(s.count)", fmt(ns: s.median), fmt(ns: s.min), fmtCount(Int(Double(users) / (s.median / 1e9))) + "/s", fmtRatio(s.median / base)]
        })
        func plan(_ sql: String) throws -> [String] {
            try ways[0].database.rows("EXPLAIN QUERY PLAN " + sql).map { $0.last ?? "" }
                .filter { $0.contains("idx_posts") }
        }
        report.say("The two posts counts (all posts, then recent posts) in the one-user plans (canonical file): old `\(try plan(oldOneUser).joined(separator: "`, `"))`; library `\(try plan(SQLText.snapshot).joined(separator: "`, `"))`.")
        report.say()
        // Issue 11: the canonical-data figures unchanged or better (shown, not judged: ratios near 1 are within this machine's noise).
        let label = dataset.label
        targets.check("(issue 11) canonical data, one user: library statement ÷ old text statement (raw C, random users, medians, \(label))",
                      samples["random"]![1]!.median / samples["random"]![0]!.median, format: fmtRatio)
        targets.check("(issue 11) canonical data, one user: the same, the ten users with the most posts (medians, \(label))",
                      samples["heavy"]![1]!.median / samples["heavy"]![0]!.median, format: fmtRatio)
        targets.check("(issue 11) canonical data, batch read side: library chunk statement ÷ old text chunk statement (median pass, \(label))",
                      passes[1]!.median / passes[0]!.median, format: fmtRatio)
        report.note("forms checksum \(checksum)")
    }

    /// `chunkSQL` as it was before SPEC §8: text comparisons, the attended filter in the WHERE
    /// clause, no unreadable counts (kept as constant `0` columns so the positions stay).
    static func textChunk() throws -> String {
        var sql = SQLText.chunk
        for (old, new) in [
            ("SUM(journey_instant(created_at) >= :since)", "SUM(created_at >= :since)"),
            ("COUNT(created_at) - COUNT(journey_instant(created_at))", "0"),
            ("SUM(journey_instant(ev.start_date) <= :now)", "COUNT(*)"),
            ("COUNT(ev.start_date) - COUNT(journey_instant(ev.start_date))", "0"),
            ("AND r.status = 'going'", "AND r.status = 'going' AND ev.start_date <= :now"),
        ] {
            let parts = sql.components(separatedBy: old)
            guard parts.count == 2 else {
                throw SpawnError(description: "forms: `\(old)` occurs \(parts.count - 1) times in chunkSQL (expected once); update TimestampFormsBench.textChunk")
            }
            sql = parts.joined(separator: new)
        }
        guard !sql.contains("journey_instant") else {
            throw SpawnError(description: "forms: the text form of chunkSQL still calls journey_instant:\n\(sql)")
        }
        return sql
    }
}
