import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §8 on real files: a table of timestamp forms × metrics, each checked against the answer
/// the same data gives in canonical form, under the column types other applications declare.
@Suite("Timestamps written by other applications: every form, every metric, one answer")
struct TimestampFormsTests {
    /// The instant metrics are read at.
    static let now = Fixture.utc("2026-11-29 12:00:00")
    static let day: TimeInterval = 86_400

    /// How another application may store an instant.
    enum Form: String, CaseIterable, CustomTestStringConvertible {
        case canonical, canonicalMilliseconds, isoZ, isoMillisZ, isoMicros, isoColonOffset, isoCompactOffset, isoHourOffset
        case isoNoSeconds, dateOnly, epochSeconds, epochMilliseconds, epochSecondsReal, epochMillisecondsReal, epochText
        var testDescription: String { rawValue }

        /// Whether this form can hold the instant exactly.
        func holds(_ date: Date) -> Bool {
            let seconds = date.timeIntervalSince1970
            switch self {
            case .dateOnly: return seconds.truncatingRemainder(dividingBy: 86_400) == 0
            case .isoNoSeconds: return seconds.truncatingRemainder(dividingBy: 60) == 0
            default: return true
            }
        }

        /// The value as that application writes it, rendered by Foundation (not by the parser under test).
        func value(_ date: Date) -> DatabaseValue {
            func text(_ pattern: String, offsetMinutes: Int = 0) -> DatabaseValue {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)
                formatter.dateFormat = pattern
                return formatter.string(from: date).databaseValue
            }
            let seconds = date.timeIntervalSince1970
            switch self {
            case .canonical: return text("yyyy-MM-dd HH:mm:ss")
            case .canonicalMilliseconds: return text("yyyy-MM-dd HH:mm:ss.SSS")
            case .isoZ: return text("yyyy-MM-dd'T'HH:mm:ss'Z'")
            case .isoMillisZ: return text("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            case .isoMicros: return text("yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXXXX", offsetMinutes: 60)
            case .isoColonOffset: return text("yyyy-MM-dd'T'HH:mm:ssxxx", offsetMinutes: 330)
            case .isoCompactOffset: return text("yyyy-MM-dd'T'HH:mm:ss.SSSxx", offsetMinutes: -480)
            case .isoHourOffset: return text("yyyy-MM-dd HH:mm:ssx", offsetMinutes: -300)
            case .isoNoSeconds: return text("yyyy-MM-dd'T'HH:mm")
            case .dateOnly: return text("yyyy-MM-dd")
            case .epochSeconds: return Int64(seconds).databaseValue
            case .epochMilliseconds: return Int64(seconds * 1_000).databaseValue
            case .epochSecondsReal: return seconds.databaseValue
            case .epochMillisecondsReal: return (seconds * 1_000).databaseValue
            case .epochText: return String(Int64(seconds)).databaseValue
            }
        }
    }

    /// The declared types of the timestamp columns: TEXT affinity (numbers become text), NUMERIC
    /// affinity (`DATETIME`, as ORMs declare it: numeric text becomes a number), and none at all.
    static let columnTypes = ["TEXT", "DATETIME", ""]

    /// One user's data at chosen instants; `near` puts each instant 10 minutes from a bound, else 12 hours (midnights).
    struct Instants {
        let signup, postOut, postIn, eventPast, eventFuture: Date
        init(near: Bool) {
            let margin: TimeInterval = near ? 600 : 43_200
            let since = now.addingTimeInterval(-30 * day)
            signup = now.addingTimeInterval(-8 * day - margin)
            postOut = since.addingTimeInterval(-margin)
            postIn = since.addingTimeInterval(margin)
            eventPast = now.addingTimeInterval(-margin)
            eventFuture = now.addingTimeInterval(5 * day + margin)
        }
    }

    /// Writes the platform tables with `type` timestamp columns and one user's rows in `form`, migrates, and reads.
    static func snapshots(form: Form, columnType: String, instants: Instants, in directory: URL, name: String = "data") async throws -> (
        one: UserSnapshot, chunk: UserSnapshot, stored: DatabaseValue
    ) {
        let path = directory.appending(path: "\(name).sqlite").path
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT,
                        subscription_tier TEXT, is_onboarding_complete INTEGER, created_at \(columnType));
                    CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, visibility TEXT, created_at \(columnType));
                    CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at \(columnType));
                    CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date \(columnType));
                    CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at \(columnType));
                    """)
            try db.execute(sql: "INSERT INTO users(id, role, created_at) VALUES (1, 'user', ?)", arguments: [form.value(instants.signup)])
            for date in [instants.postOut, instants.postIn] {
                try db.execute(sql: "INSERT INTO posts(user_id, created_at) VALUES (1, ?)", arguments: [form.value(date)])
            }
            for (id, date) in [(1, instants.eventPast), (2, instants.eventFuture)] {
                try db.execute(sql: "INSERT INTO events(id, organizer_id, start_date) VALUES (?, 1, ?)", arguments: [id, form.value(date)])
                try db.execute(sql: "INSERT INTO event_rsvps(event_id, user_id, status) VALUES (?, 1, 'going')", arguments: [id])
            }
        }
        try queue.close()
        let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
        let one = try await database.snapshot(user: 1, now: now)
        let chunk = try #require(try await database.chunk(after: 0, limit: 10, now: now).first)
        let stored = try await database.writer.read { db in try DatabaseValue.fetchOne(db, sql: "SELECT last_journey_update FROM users WHERE id = 1") }
        return (one, chunk, stored ?? .null)
    }

    static let cases: [(Form, String)] = Form.allCases.flatMap { form in columnTypes.map { (form, $0) } }

    @Test("Each form under each column type gives the canonical metrics, in the one-user statement and the batch chunk", arguments: cases)
    func formsGiveCanonicalMetrics(form: Form, columnType: String) async throws {
        try await withTemporaryDirectory { directory in
            for near in [true, false] {
                let instants = Instants(near: near)
                guard [instants.signup, instants.postOut, instants.postIn, instants.eventPast, instants.eventFuture].allSatisfy(form.holds) else { continue }
                let (one, chunk, stored) = try await Self.snapshots(
                    form: form, columnType: columnType, instants: instants, in: directory, name: near ? "near" : "far")
                for snapshot in [one, chunk] {
                    let values = Dictionary(uniqueKeysWithValues: snapshot.metrics.values(now: Self.now))
                    #expect(values[.posts] == .integer(2))
                    #expect(values[.postsLast30Days] == .integer(1), "post 30 days + \(near ? "10 min" : "12 h") before now is outside the window")
                    #expect(values[.eventsAttended] == .integer(1), "the future event is not attended")
                    #expect(values[.daysSinceSignup] == .integer(8))
                    #expect(values[.daysInStage] == .integer(8), "last_journey_update backfilled from created_at")
                    #expect(snapshot.unreadableTimestamps.isEmpty)
                }
                // Journey's own column is canonical text, whatever form created_at had.
                let text = try #require(String.fromDatabaseValue(stored), "\(stored)")
                #expect(Timestamp.read(text: text).form == .canonical, "\(text)")
                #expect(Timestamp.read(text: text).seconds == instants.signup.timeIntervalSince1970, "\(text)")
            }
        }
    }

    static let unreadableValues: [DatabaseValue] = [
        "yesterday".databaseValue, "2026-02-30 10:00:00".databaseValue, "0000-00-00 00:00:00".databaseValue,
        "2026-10-30T25:00:00Z".databaseValue, "".databaseValue, Data([0x32, 0x30]).databaseValue,
    ]

    @Test("An unreadable value is missing for the criteria, counted, and the user's other metrics still read", arguments: unreadableValues)
    func unreadableIsMissingAndCounted(value: DatabaseValue) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appending(path: "bad.sqlite").path
            try Fixture.writeScript("small-platform.sql", to: path)
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            try await database.writer.write { db in
                try db.execute(sql: "UPDATE users SET created_at = ?, last_journey_update = ? WHERE id = 1", arguments: [value, value])
                try db.execute(sql: "UPDATE posts SET created_at = ? WHERE user_id = 1", arguments: [value])
                try db.execute(sql: "UPDATE events SET start_date = ? WHERE id = 1", arguments: [value])
            }
            let reference = try await database.snapshot(user: 2, now: Fixture.now)
            let one = try await database.snapshot(user: 1, now: Fixture.now)
            #expect(one.metrics.signedUpAt == nil && one.metrics.stageEnteredAt == nil)
            #expect(one.metrics.postsLast30Days == 0 && one.metrics.posts == 6)
            #expect(one.unreadableTimestamps == ["users.created_at": 1, "users.last_journey_update": 1])
            let chunk = try await database.chunk(after: 0, limit: 10, now: Fixture.now)
            #expect(chunk.first { $0.userID == 1 }?.unreadableTimestamps["posts.created_at"] == 6)
            #expect(chunk.first { $0.userID == 2 }?.metrics == reference.metrics, "the other users read as before")

            let findings = try await database.doctor(stages: ["J1_NEW_USER"], aliases: [:], initialStage: "J1_NEW_USER")
            let posts = try #require(findings.timestamps.first { $0.column == "posts.created_at" })
            #expect(posts.unreadable == 6 && posts.samples["unreadable"]?.isEmpty == false)
            #expect(!findings.isHealthy)
        }
    }
}

/// The canonical fast path (``TimestampForms``): text comparisons only while a column holds
/// canonical text alone, counted by triggers that fire for every writer.
@Suite("Canonical columns compare as text; the parser takes over once another form is written")
struct CanonicalFastPathTests {
    static func counts(_ database: SQLiteStore) throws -> [String: Int] {
        try database.writer.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT table_name || '.' || column_name AS c, noncanonical FROM journey_timestamp_columns")
                    .map { ($0["c"] as String, $0["noncanonical"] as Int) })
        }
    }

    @Test("Triggers count non-canonical writes from a plain connection (another application), canonical ones not")
    func triggersCount() async throws {
        try await withTemporaryDirectory { directory in
            let database = try Fixture.smallMigratedDatabase(in: directory)
            #expect(try Self.counts(database) == ["posts.created_at": 0, "events.start_date": 0])
            // Another application, without Journey's functions: a plain GRDB queue.
            let other = try DatabaseQueue(path: database.path)
            try other.write { db in
                for value in ["2026-10-30 07:03:19", "2026-10-30 07:03:19.250", "2024-02-29 23:59:59"] {
                    try db.execute(sql: "INSERT INTO posts(user_id, created_at) VALUES (1, ?)", arguments: [value])
                }
                try db.execute(sql: "INSERT INTO posts(user_id, created_at) VALUES (1, NULL)")
            }
            #expect(try Self.counts(database)["posts.created_at"] == 0)
            let odd: [DatabaseValue] = [
                "2026-10-30T07:03:19Z".databaseValue, "2026-02-30 10:00:00".databaseValue, "2026-10-30 24:00:00".databaseValue,
                "2026-10-30 07:03:19.25".databaseValue, 1_793_343_799.databaseValue, "0000-00-00 00:00:00".databaseValue,
            ]
            try other.write { db in
                for value in odd { try db.execute(sql: "INSERT INTO posts(user_id, created_at) VALUES (2, ?)", arguments: [value]) }
                try db.execute(sql: "UPDATE events SET start_date = '2026-10-30' WHERE id = 1")
                try db.execute(sql: "UPDATE events SET title = 'renamed' WHERE id = 2")
            }
            try other.close()
            #expect(try Self.counts(database) == ["posts.created_at": odd.count, "events.start_date": 1])
        }
    }

    @Test("Both ways give the same metrics for every user of a generated data set, one user at a time and by chunk")
    func fastEqualsSlow() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appending(path: "generated.sqlite").path
            _ = try PlatformDataGenerator(users: 300, seed: 17, now: Fixture.generatedAt).write(to: path)
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.generatedAt)
            #expect(try Self.counts(database).values.allSatisfy { $0 == 0 }, "the generator writes canonical text")
            // Instants on whole seconds and in between, so the window's bounds fall on and beside rows.
            let instants = [Fixture.generatedAt, Fixture.generatedAt.addingTimeInterval(-3 * 86_400 + 0.5), Fixture.generatedAt.addingTimeInterval(17.25)]
            func read() async throws -> [[UserSnapshot]] {
                var all: [[UserSnapshot]] = []
                for now in instants {
                    var one: [UserSnapshot] = []
                    for user in 1...300 { one.append(try await database.snapshot(user: Int64(user), now: now)) }
                    all.append(one)
                    all.append(try await database.chunk(after: 0, limit: 1_000, now: now))
                }
                return all
            }
            let fast = try await read()
            try await database.writer.write { db in try db.execute(sql: "UPDATE journey_timestamp_columns SET noncanonical = 1") }
            let slow = try await read()
            #expect(fast.map { $0.map(\.metrics) } == slow.map { $0.map(\.metrics) })
            #expect(fast[0].contains { $0.metrics.postsLast30Days > 0 } && fast[0].contains { $0.metrics.eventsAttended > 0 })
        }
    }

    /// Alice (user 1) of the small database at ``Fixture/now``: 6 posts, 3 of them in the window;
    /// 2 events attended (event 2, which she is going to, starts in the future).
    static func alice(_ database: SQLiteStore) async throws -> (snapshot: UserMetrics, chunk: UserMetrics) {
        let one = try await database.snapshot(user: 1, now: Fixture.now).metrics
        let chunk = try await database.chunk(after: 0, limit: 10, now: Fixture.now).first { $0.userID == 1 }!.metrics
        return (one, chunk)
    }

    /// Writes, through `writer`, values that text comparisons would miscount: a post an hour ago
    /// stored as epoch seconds (an INTEGER sorts before any text, so `>= :since_text` is false), and
    /// event 2's future start as epoch seconds (`<= :now_text` would be true).
    static func writeEpochValues(_ writer: any DatabaseWriter) throws {
        try writer.write { db in
            try db.execute(
                sql: "INSERT INTO posts(user_id, content, created_at) VALUES (1, 'epoch', ?)",
                arguments: [Int64(Fixture.now.timeIntervalSince1970) - 3_600])
            try db.execute(sql: "UPDATE events SET start_date = ? WHERE id = 2", arguments: [Int64(Fixture.utc("2025-07-01 20:00:00").timeIntervalSince1970)])
        }
    }

    @Test(
        "A non-canonical value written by another connection (another process's writer) is read right by the next read",
        arguments: [SQLiteStore.OpenMode.migrate, .requireMigrated, .readOnly])
    func otherWriterSeen(mode: SQLiteStore.OpenMode) async throws {
        try await withTemporaryDirectory { directory in
            let path = try Fixture.smallMigratedDatabase(in: directory).path
            let database = try SQLiteStore.open(path: path, mode: mode, now: Fixture.now)
            // Given: reads that found every column canonical (and kept that for their connection)
            let before = try await Self.alice(database)
            #expect(before.snapshot.posts == 6 && before.snapshot.postsLast30Days == 3 && before.snapshot.eventsAttended == 2)
            #expect(before.chunk == before.snapshot)

            // When: another connection, which the store cannot see, writes epoch seconds
            let other = try DatabaseQueue(path: path)
            try Self.writeEpochValues(other)
            try other.close()

            // Then: the next reads take the parser's way: the new post is recent (text comparison: 3),
            // the future event still not attended (text comparison: 3)
            let after = try await Self.alice(database)
            #expect(after.snapshot.posts == 7)
            #expect(after.snapshot.postsLast30Days == 4)
            #expect(after.snapshot.eventsAttended == 2)
            #expect(after.chunk == after.snapshot)
        }
    }

    @Test("A non-canonical value written through the store's own connection is read right by the next read, and inside the writing transaction")
    func ownWriterSeen() async throws {
        try await withTemporaryDirectory { directory in
            let path = try Fixture.smallMigratedDatabase(in: directory).path
            // One connection that reads and writes (the command line's and the batch's)
            let database = try SQLiteStore.open(path: path, mode: .requireMigrated, now: Fixture.now)
            let before = try await Self.alice(database)
            #expect(before.snapshot.postsLast30Days == 3 && before.snapshot.eventsAttended == 2)

            // Inside the transaction that writes, before it commits
            let inside = try await database.writer.write { db in
                try db.execute(
                    sql: "INSERT INTO posts(user_id, content, created_at) VALUES (1, 'epoch', ?)",
                    arguments: [Int64(Fixture.now.timeIntervalSince1970) - 3_600])
                return try SQLiteStore.snapshot(db, user: 1, now: Fixture.now).metrics
            }
            #expect(inside.posts == 7 && inside.postsLast30Days == 4)

            // After it committed, on the same connection
            let after = try await Self.alice(database)
            #expect(after.snapshot.posts == 7 && after.snapshot.postsLast30Days == 4)
            #expect(after.chunk == after.snapshot)
        }
    }

    @Test("Every variant of both statements selects the columns of MetricsColumn, in order; only the parser's variants name journey_instant")
    func columnsInOrder() async throws {
        try await withTemporaryDirectory { directory in
            let database = try Fixture.smallMigratedDatabase(in: directory)
            try await database.writer.read { db in
                for forms in TimestampForms.all {
                    let one = try db.makeStatement(sql: SQLiteStore.snapshotSQL(forms))
                    let chunk = try db.makeStatement(sql: SQLiteStore.chunkSQL(forms))
                    #expect(one.columnNames == MetricsColumn.oneUser.map(\.name), "\(forms)")
                    #expect(chunk.columnNames == MetricsColumn.allCases.map(\.name), "\(forms)")
                    for sql in [SQLiteStore.snapshotSQL(forms), SQLiteStore.chunkSQL(forms)] {
                        #expect(sql.contains("journey_instant(p.created_at)") == !forms.postsCreatedAt, "\(forms)")
                        #expect(sql.contains("journey_instant(e.start_date)") == !forms.eventsStartDate, "\(forms)")
                        #expect(!sql.contains("journey_timestamp_columns"), "the variant is chosen before the statement runs")
                    }
                }
            }
        }
    }

    @Test("On canonical data the one-user statement counts recent posts by an index range, with no call to the parser")
    func fastPathPlan() async throws {
        try await withTemporaryDirectory { directory in
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let plan = try database.writer.read { db in
                try Row.fetchAll(
                    db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.snapshotSQL(TimestampForms.read(db)),
                    arguments: StatementArguments(SQLiteStore.windowArguments(now: Fixture.now).merging(["user": 1]) { $1 })
                )
                .map { $0["detail"] as String }
            }
            #expect(plan.contains { $0.contains("posts") && $0.contains("user_id=? AND created_at>?") }, "\(plan)")
        }
    }
}
