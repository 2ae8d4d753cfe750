import Foundation
import GRDB
import JourneyCore
import JourneySQLite

/// Issue 11: what reading timestamps in every form of SPEC §8 costs the metrics statements.
///
/// The library's statements come in one text per `TimestampForms` value, and a read picks the one for
/// the file's counts of non-canonical values in `journey_timestamp_columns` (kept by triggers): the
/// stored text against text bounds (`:since_text`, `:now_text`; an index range) while a column's
/// count is 0, and `journey_instant(…)` against epoch bounds (`:since`, `:now`; a C function call per
/// row) once it is not. This section measures, in one process, on copies of the main data
/// set's migrated file: the statements from before SPEC §8 (`SQLText.legacySnapshot`, `legacyChunk`,
/// commit f9e1598) on canonical data, the baseline; the library's statements on the same canonical
/// data (the text variant); and the library's statements on copies whose `posts.created_at`,
/// `events.start_date` and `users.created_at` were rewritten to other forms by plain SQL `UPDATE`s
/// (the triggers then count them, so the `journey_instant` variant runs). It checks each file's counts
/// (0 on the canonical copy, more than 0 on the others), and every way must return the same counts for
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
        /// `journey_timestamp_columns.noncanonical` afterwards, per watched column (`posts.created_at: 0`, …).
        var counted = ""
    }

    /// One way of reading: a statement on a file, bound with its window arguments.
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

    /// The columns the library counts non-canonical values of (`journey_timestamp_columns`, its `TimestampForms.watched`).
    static let watched = [("posts", "created_at"), ("events", "start_date")]

    func run() throws {
        // The library binds the window four ways (`:now`, `:since` as epoch seconds; `:now_text`,
        // `:since_text` as canonical text); the statements before SPEC §8 bound `:now` and `:since` as text.
        let window = SQLiteStore.windowArguments(now: dataNow)
        let legacyWindow = SQLText.legacyWindowArguments(now: dataNow)
        func shown(_ arguments: [String: (any DatabaseValueConvertible)?]) -> String {
            arguments.keys.sorted().map { key in
                let value = (arguments[key] ?? nil)?.databaseValue ?? .null
                let text: String
                switch value.storage {
                case .double(let number): text = String(format: "%.0f", number)
                case .string(let string): text = "'\(string)'"
                default: text = value.description
                }
                return "`:\(key)` \(text)"
            }.joined(separator: ", ")
        }

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
                let rows = try database.rows(
                    "SELECT typeof(\(column)), journey_timestamp_form(\(column)), COUNT(*) FROM \(table) GROUP BY 1, 2 ORDER BY 3 DESC")
                storage.append("\(table).\(column): " + rows.map { "\($0[0]) \($0[1]) \(fmtCount(Int($0[2]) ?? 0))" }.joined(separator: ", "))
                if rows.contains(where: { $0[1] == "unreadable" }) {
                    throw SpawnError(description: "forms: the \(forms[index].name) rewrite left unreadable values in \(table).\(column): \(rows)")
                }
            }
            forms[index].storage = storage.joined(separator: "; ")
            // What the library's triggers counted: nothing on the canonical copy (the text variant runs),
            // every rewritten value on the others (the `journey_instant` variant runs).
            var counted: [String] = []
            for (table, column) in Self.watched {
                let rows = try database.rows("SELECT noncanonical FROM journey_timestamp_columns WHERE table_name = '\(table)' AND column_name = '\(column)'")
                guard let count = rows.first.flatMap({ Int($0[0]) }) else {
                    throw SpawnError(description: "forms: \(forms[index].name): journey_timestamp_columns has no row for \(table).\(column): \(rows)")
                }
                let expectCanonical = forms[index].rewrite == nil
                guard expectCanonical ? count == 0 : count > 0 else {
                    throw SpawnError(
                        description:
                            "forms: \(forms[index].name): journey_timestamp_columns counts \(count) non-canonical values in \(table).\(column), expected "
                            + (expectCanonical ? "0 (the text variant)" : "more than 0 (the triggers did not count the rewrite)"))
                }
                counted.append("\(table).\(column): \(fmtCount(count))")
            }
            forms[index].counted = counted.joined(separator: ", ")
            forms[index].example = try database.rows("SELECT created_at FROM posts WHERE id = 1").first?.first ?? ""
        }

        // --- the ways: one connection each, statements prepared once, window bound once ---
        var ways: [Way] = []
        func way(_ name: String, _ form: Form, legacy: Bool) throws -> Way {
            let database = try RawDatabase(path: form.path, readOnly: true)
            // The library's variant for the file's own counts, as `snapshot(user:now:)` and `chunk` pick it.
            let counts = Dictionary(
                uniqueKeysWithValues: try database.rows("SELECT table_name || '.' || column_name, noncanonical FROM journey_timestamp_columns").map {
                    ($0[0], $0[1])
                })
            let forms = TimestampForms(postsCreatedAt: counts["posts.created_at"] == "0", eventsStartDate: counts["events.start_date"] == "0")
            let window = SQLiteStore.windowArguments(now: dataNow, forms: forms)
            let oneUser = try database.prepare(legacy ? SQLText.legacySnapshot : SQLiteStore.snapshotSQL(forms))
            let chunk = try database.prepare(legacy ? SQLText.legacyChunk : SQLiteStore.chunkSQL(forms))
            try oneUser.bind(legacy ? legacyWindow : window, later: ["user"])
            try chunk.bind(legacy ? legacyWindow : window, later: ["low", "high"])
            return Way(name: name, data: form.name, database: database, oneUser: oneUser, chunk: chunk)
        }
        ways.append(try way("before SPEC §8 (f9e1598): text comparison, text bounds", forms[0], legacy: true))
        ways.append(try way("library, count 0: text variant", forms[0], legacy: false))
        for form in forms.dropFirst() {
            ways.append(try way("library, count > 0: `journey_instant` variant", form, legacy: false))
        }

        // --- a. one user ---
        let random = Array((1...Int64(dataset.counts.users)).shuffled(seed: dataSeed).prefix(config.randomUsers))
        let heavy: [(Int64, Int)] = try ways[0].database.rows(
            "SELECT user_id, COUNT(*) FROM posts GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 10"
        ).map { (Int64($0[0])!, Int($0[1])!) }
        func read(_ way: Way, _ user: Int64) throws -> Counts {
            let s = way.oneUser
            s.bind(s.index(":user"), user)
            defer { s.reset() }
            guard try s.step() else { throw SpawnError(description: "forms: no user \(user) in \(way.data)") }
            return Counts(
                followers: s.int64(SQLText.Column.followerCount), posts: s.int64(SQLText.Column.posts), recent: s.int64(SQLText.Column.recent),
                following: s.int64(SQLText.Column.following), organized: s.int64(SQLText.Column.organized), attended: s.int64(SQLText.Column.attended))
        }
        // Check (and warm): every way, every user measured, the same counts as the statement before SPEC §8 on canonical data.
        var recentUsers = 0, attendedUsers = 0
        for user in random + heavy.map(\.0) {
            let expected = try read(ways[0], user)
            if expected.recent > 0 { recentUsers += 1 }
            if expected.attended > 0 { attendedUsers += 1 }
            for way in ways.dropFirst() {
                let got = try read(way, user)
                guard got == expected else {
                    throw SpawnError(
                        description: "forms: user \(user): \(way.name) on \(way.data) gives \(got), the statement before SPEC §8 on canonical data \(expected)")
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
            // The statement before SPEC §8 has no unreadable counts (16 columns): 0.
            let counts = s.columnCount >= 18
            let (_, elapsed) = try timed {
                var after: Int64 = 0
                while after < users {
                    s.bind(low, after + 1)
                    s.bind(high, min(after + 2_000, users))
                    while try s.step() {
                        values.append(s.int64(0))
                        values.append(s.int64(SQLText.Column.recent))
                        values.append(s.int64(SQLText.Column.attended))
                        values.append(counts ? s.int64(16) &+ s.int64(17) : 0)  // unreadable values: NULL reads as 0
                    }
                    s.reset()
                    after += 2_000
                }
            }
            return (elapsed, values)
        }
        // One warm pass each, checked against the statement before SPEC §8 on canonical data.
        let (_, expected) = try readAll(ways[0])
        guard expected.count == Int(users) * 4 else {
            throw SpawnError(description: "forms: the chunk statement before SPEC §8 read \(expected.count / 4) users of \(users)")
        }
        for way in ways.dropFirst() {
            let (_, got) = try readAll(way)
            guard got == expected else {
                let first = stride(from: 0, to: min(got.count, expected.count), by: 4).first { got[$0..<$0 + 4] != expected[$0..<$0 + 4] }
                throw SpawnError(
                    description: "forms: the library's chunk statement on \(way.data) disagrees with the statement before SPEC §8 on canonical data"
                        + (first.map {
                            " at user \(expected[$0]): (id, recent, attended, unreadable) \(Array(got[$0..<$0 + 4])) vs \(Array(expected[$0..<$0 + 4]))"
                        } ?? " (\(got.count / 4) rows)"))
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
        report.say("## Timestamps in every form (SPEC §8): the text variant on canonical data, `journey_instant` on the others (\(dataset.label) users)")
        report.say()
        report.say(
            "`--only forms`. Copies of the migrated file (\(fmtBytes(dataset.migratedBytes)); \(fmtCount(dataset.counts.posts)) posts, \(fmtCount(dataset.counts.events)) events, \(fmtCount(dataset.counts.rsvps)) RSVPs). On each copy but the first, `posts.created_at`, `events.start_date` and `users.created_at` were rewritten in one transaction by `UPDATE … SET c = <expr>(c)` (the library's triggers firing on every row), then checkpointed. The platform declares these columns `TEXT`, so the epoch-millisecond integers are stored as **digits in TEXT** (TEXT affinity converts them). `journey_timestamp_form` was run over every value afterwards (none unreadable), and `journey_timestamp_columns` read (0 on the canonical copy, more than 0 on the others, or the section fails):"
        )
        report.say()
        report.table(
            [
                "file", "`posts.created_at` of post 1", "rewrite", "size after", "`journey_timestamp_columns.noncanonical`",
                "what the columns hold (storage class, form, values)",
            ],
            forms.map { form in
                [
                    form.name, "`\(form.example)`", form.rewrite == nil ? "–" : fmt(ns: form.rewriteTime.nanoseconds),
                    fmtBytes(fileSize(form.path) + fileSize(form.path + "-wal")), form.counted, form.storage,
                ]
            })
        report.say(
            "Ways: the statements **before SPEC §8** (`SQLText.legacySnapshot`, `legacyChunk`: the library's `snapshotSQL` and `chunkSQL` at commit f9e1598, kept as literal text) compare the stored text with text bounds (\(shown(legacyWindow))). The **library**'s statements are the variant of `snapshotSQL(_:)` and `chunkSQL(_:)` that it picks for the file's own counts (one text per `TimestampForms` value, written from one definition of each metric): text comparisons where a column's count is 0, `journey_instant(…)` where it is not, each binding the bounds it names (`windowArguments(now:forms:)`, from \(shown(window))). Raw SQLite C API, one connection per way, statements prepared once (so the library's per-read choice of the variant is not in these figures; EvaluateBench's `snapshot(user:now:)` rows include it)."
        )
        report.say()
        report.say(
            "Check: every way returned the same followers, posts, recent posts, following, events organized and events attended for each of the \(fmtCount(random.count + heavy.count)) users measured (\(fmtCount(recentUsers)) with recent posts, \(fmtCount(attendedUsers)) with events attended), and the chunk statements the same recent posts and events attended for all \(fmtCount(Int(users))) users, with no unreadable value."
        )
        report.say()
        for (group, title, detail) in [
            (
                "random", "One user, \(fmtCount(random.count)) random users",
                "\(config.rounds) interleaved rounds (rotated order), after one untimed checking pass"
            ),
            (
                "heavy", "One user, the ten users with the most posts",
                "posts: \(heavy.map { fmtCount($0.1) }.joined(separator: ", ")); \(config.heavyRounds) interleaved rounds"
            ),
        ] {
            let base = samples[group]![0]!
            report.say("**\(title)** (\(detail))")
            report.say()
            report.table(
                ["statement", "data", "n", "median", "p99", "mean", "median ÷ before SPEC §8"],
                ways.indices.map { index in
                    let s = samples[group]![index]!
                    return [
                        ways[index].name, ways[index].data, "\(s.count)", fmt(ns: s.median), fmt(ns: s.p99), fmt(ns: s.mean), fmtRatio(s.median / base.median),
                    ]
                })
        }
        report.say(
            "**The batch's read side** (the chunk statement over all \(fmtCount(Int(users))) users in chunks of 2,000, as `LeversBench.readAll`; one checking pass each, then \(config.chunkPasses) timed passes interleaved; median pass)"
        )
        report.say()
        let base = passes[0]!.median
        report.table(
            ["statement", "data", "passes", "time (median)", "min", "users/s", "time ÷ before SPEC §8"],
            ways.indices.map { index in
                let s = passes[index]!
                return [
                    ways[index].name, ways[index].data, "\(s.count)", fmt(ns: s.median), fmt(ns: s.min), fmtCount(Int(Double(users) / (s.median / 1e9))) + "/s",
                    fmtRatio(s.median / base),
                ]
            })
        func plan(_ sql: String) throws -> [String] {
            try ways[0].database.rows("EXPLAIN QUERY PLAN " + sql).map { $0.last ?? "" }
                .filter { $0.contains("idx_posts") }
        }
        report.say(
            "The posts counts in the one-user plans (canonical file): before SPEC §8 (all posts, then recent posts) `\(try plan(SQLText.legacySnapshot).joined(separator: "`, `"))`; library, text variant (all posts, then recent posts) `\(try plan(SQLText.snapshot).joined(separator: "`, `"))`; library, `journey_instant` variant `\(try plan(SQLiteStore.snapshotSQL(TimestampForms(postsCreatedAt: false, eventsStartDate: false))).joined(separator: "`, `"))`."
        )
        report.say()
        // Issue 11: the canonical-data figures unchanged or better (shown, not judged: ratios near 1 are within this machine's noise).
        let label = dataset.label
        targets.check(
            "(issue 11) canonical data, one user: library statement (text variant) ÷ statement before SPEC §8 (raw C, random users, medians, \(label))",
            samples["random"]![1]!.median / samples["random"]![0]!.median, format: fmtRatio)
        targets.check(
            "(issue 11) canonical data, one user: the same, the ten users with the most posts (medians, \(label))",
            samples["heavy"]![1]!.median / samples["heavy"]![0]!.median, format: fmtRatio)
        targets.check(
            "(issue 11) canonical data, batch read side: library chunk statement (text variant) ÷ chunk statement before SPEC §8 (median pass, \(label))",
            passes[1]!.median / passes[0]!.median, format: fmtRatio)
        report.note("forms checksum \(checksum)")
    }
}
