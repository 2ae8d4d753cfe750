import Foundation
import GRDB
import Testing

// Issue 8 item 5: every value reaches SQL as a bound parameter, the rules cannot name a table or
// raw SQL, and a database the process creates is not world-writable.

/// Strings that break code which pastes values into SQL, format strings, terminals or JSON.
private let hostileStrings: [String] = [
    "'; DROP TABLE users; --",
    "\" OR 1=1 --",
    "x\u{0}'; DROP TABLE posts; --",  // an embedded NUL
    String(repeating: "very long text ", count: 8_000),  // 120 kB (under Linux's 128 kB limit for one argv string)
    "Zoë 🚀 مرحبا 中文 \u{202E}gnp.exe \u{FEFF}",  // accents, emoji, RTL, an override, a BOM
    "%s%s%s%n%x%d %@",
    "Robert'); DELETE FROM posts WHERE ('1'='1",
    "\\'; SELECT load_extension('/tmp/x'); --",
    "line one\nline two\r\n\ttabbed",
    "NULL",
]

/// What GRDB (and so journey) reads back from a TEXT holding `value`: SQLite's text up to the first
/// NUL (`String(cString:)`), which is how every C client of SQLite sees such a value.
private func readBack(_ value: String) -> String {
    String(value.prefix { $0 != "\u{0}" })
}

/// The platform tables and their row counts.
private func platformCounts(_ db: String) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for table in ["users", "posts", "follows", "events", "event_rsvps"] {
        counts[table] = try Direct.integer(db, "SELECT COUNT(*) FROM \(table)")
    }
    return counts
}

/// Every table the migrated schema has (platform and journey), none dropped.
private let allTables = ["users", "posts", "follows", "events", "event_rsvps", "journey_transitions", "journey_pins", "journey_batch_runs", "grdb_migrations"]

private func tables(_ db: String) throws -> Set<String> {
    let queue = try Direct.reader(db)
    defer { try? queue.close() }
    return Set(try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") })
}

/// Users 20, 21, … hold the hostile strings, one each, in every text column of their rows.
private func hostileUser(_ index: Int) -> Int { 20 + index }

/// Writes `value` into every text column of `user`'s row and of a post, a follow, an event and an
/// RSVP of theirs. Values are bound as blobs and cast to TEXT, so that a NUL is stored, not cut.
/// The user is made to qualify for J2 (onboarded, an old signup, a post, a follow).
private func plant(_ value: String, user: Int, in db: String) throws {
    let arguments: StatementArguments = [Data(value.utf8), user]
    let queue = try DatabaseQueue(path: db)
    try queue.write { db in
        for sql in [
            """
            UPDATE users SET email = CAST(?1 AS TEXT), city = CAST(?1 AS TEXT), country = CAST(?1 AS TEXT),
                role = CAST(?1 AS TEXT), subscription_tier = CAST(?1 AS TEXT),
                is_onboarding_complete = 1, created_at = '2020-01-01 00:00:00'
            WHERE id = ?2
            """,
            "INSERT INTO posts(user_id, content, visibility, created_at) VALUES (?2, CAST(?1 AS TEXT), CAST(?1 AS TEXT), CAST(?1 AS TEXT))",
            "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?2, 1, CAST(?1 AS TEXT))",
            "INSERT INTO events(organizer_id, title, city, start_date) VALUES (?2, CAST(?1 AS TEXT), CAST(?1 AS TEXT), CAST(?1 AS TEXT))",
            "INSERT INTO event_rsvps(event_id, user_id, status, created_at) VALUES (last_insert_rowid(), ?2, CAST(?1 AS TEXT), CAST(?1 AS TEXT))",
        ] {
            try db.execute(sql: sql, arguments: arguments)
        }
    }
    try queue.close()
}

@Suite("Security: hostile strings are data, never SQL")
struct SecurityTests {
    @Test(
        "hostile strings in every text column of users, posts, follows, events and event_rsvps, and as pin reasons: every command works, every table survives")
    func hostileData() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture where ten users carry the hostile strings in every text column
            let db = try await workspace.platformDatabase()
            for (index, value) in hostileStrings.enumerated() {
                try plant(value, user: hostileUser(index), in: db)
            }
            let counts = try platformCounts(db)

            for (index, value) in hostileStrings.enumerated() {
                let user = String(hostileUser(index))
                // When: a dry run, then a persisted evaluation, explain and history
                let dryRun = try await workspace.journey(["evaluate", user, "--dry-run", "--json", "--db", db])
                let evaluate = try await workspace.journey(["evaluate", user, "--json", "--db", db])
                let explain = try await workspace.journey(["explain", user, "--db", db])
                let history = try await workspace.journey(["history", user, "--json", "--db", db])

                // Then: all succeed; the values come back as data; the move J1 → J2 is recorded once
                for result in [dryRun, evaluate, explain, history] {
                    #expect(result.status == 0 && result.stderr.isEmpty, "\(index): \(result)")
                    expectNoCrash(result)
                }
                let metrics = try #require(try dryRun.jsonObject()["metrics"] as? [String: Any])
                #expect(metrics["role"] as? String == readBack(value), "\(index)")
                #expect(metrics["subscription_tier"] as? String == readBack(value), "\(index)")
                let moves = try #require(try evaluate.jsonObject()["transitions"] as? [[String: Any]])
                #expect(moves.map { $0["to"] as? String } == ["J2_ACTIVE_USER"], "\(index): \(evaluate)")
                #expect((try history.jsonObject()["stays"] as? [Any])?.count == 2, "\(index): \(history)")
                // The metrics JSON stored with the move holds the value as a JSON string
                #expect(
                    try Direct.integer(
                        db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = ? AND json_extract(metrics, '$.role') = ?",
                        arguments: [hostileUser(index), readBack(value)]) == 1, "\(index)")

                // When: pinning with the string as the reason (argv cannot carry a NUL: the part before it)
                let reason = readBack(value).isEmpty ? "x" : readBack(value)
                let pin = try await workspace.journey(["pin", user, "--reason", reason, "--db", db])
                let pinned = try await workspace.journey(["evaluate", user, "--json", "--db", db])

                // Then: the reason is stored and shown exactly
                #expect(pin.status == 0, "\(index): \(pin)")
                #expect((try pinned.jsonObject()["pin"] as? [String: Any])?["reason"] as? String == reason, "\(index): \(pinned)")
                #expect(
                    try Direct.integer(
                        db, "SELECT COUNT(*) FROM journey_pins WHERE user_id = ? AND reason = ?",
                        arguments: [hostileUser(index), reason]) == 1, "\(index)")
            }

            // When: the batch, status and doctor run over all of it
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])
            let status = try await workspace.journey(["status", "--db", db, "--json"])
            let doctor = try await workspace.journey(["doctor", "--db", db])

            // Then: they succeed (the hostile users are pinned, the others move); doctor reports the
            // hostile strings stored as timestamps as unreadable, and nothing else
            #expect(batch.status == 0, "\(batch)")
            #expect((try batch.jsonObject()["pinned"] as? NSNumber)?.intValue == hostileStrings.count, "\(batch)")
            #expect(status.status == 0, "\(status)")
            #expect(doctor.status == 1, "\(doctor)")
            let failures = doctor.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
            #expect(!failures.isEmpty && failures.allSatisfy { $0.contains("unreadable timestamp") && $0.count < 400 }, "\(doctor)")

            // And: every table survives with its row count, and every value is still stored byte for byte
            #expect(try tables(db).isSuperset(of: allTables))
            #expect(try platformCounts(db) == counts)
            for (index, value) in hostileStrings.enumerated() {
                let text = Data(value.utf8)
                #expect(
                    try Direct.integer(
                        db,
                        """
                        SELECT COUNT(*) FROM users WHERE id = ?2 AND CAST(email AS BLOB) = ?1 AND CAST(city AS BLOB) = ?1 AND CAST(country AS BLOB) = ?1
                            AND CAST(role AS BLOB) = ?1 AND CAST(subscription_tier AS BLOB) = ?1
                        """, arguments: [text, hostileUser(index)]) == 1, "\(index)")
                #expect(
                    try Direct.integer(
                        db,
                        """
                        SELECT (SELECT COUNT(*) FROM posts WHERE user_id = ?2 AND CAST(content AS BLOB) = ?1 AND CAST(visibility AS BLOB) = ?1)
                             + (SELECT COUNT(*) FROM events WHERE organizer_id = ?2 AND CAST(title AS BLOB) = ?1 AND CAST(city AS BLOB) = ?1)
                             + (SELECT COUNT(*) FROM event_rsvps WHERE user_id = ?2 AND CAST(status AS BLOB) = ?1)
                        """, arguments: [text, hostileUser(index)]) == 3, "\(index)")
            }
        }
    }

    @Test("hostile strings as stored stages: refused with 65, nothing written, counted by the batch and doctor")
    func hostileStoredStages() async throws {
        try await withWorkspace { workspace in
            // Given: ten users whose stored stage is a hostile string, plus terminal escape sequences
            let db = try await workspace.platformDatabase()
            let values = hostileStrings + ["J1\u{1B}[2J\u{1B}[31mALL USERS DELETED\u{1B}[0m"]
            for (index, value) in values.enumerated() {
                try Direct.execute(
                    db, "UPDATE users SET customer_journey_state = CAST(? AS TEXT) WHERE id = ?", arguments: [Data(value.utf8), hostileUser(index)])
            }
            let counts = try platformCounts(db)

            for index in values.indices {
                let before = DatabaseFiles(db)
                // When: evaluating the user
                let result = try await workspace.journey(["evaluate", String(hostileUser(index)), "--db", db])

                // Then: 65 on stderr, no crash, nothing written
                #expect(result.status == 65, "\(index): \(result)")
                #expect(result.stderr.hasPrefix("journey: User \(hostileUser(index)): The stored stage"), "\(index): \(result)")
                #expect(result.stdout.isEmpty)
                expectNoCrash(result)
                #expect(DatabaseFiles(db).sameContent(as: before), "\(index): the file changed")
                // And: the message is one line with no terminal control sequence: a stored newline
                // or ESC is escaped, so it can neither split the line nor rewrite the terminal.
                #expect(result.stderrLines.count == 1 && !result.stderr.contains("\u{1B}") && !result.stderr.contains("\r"), "\(index): \(result)")
            }

            // When: the batch and doctor run
            let batch = try await workspace.journey(["batch", "--db", db, "--json"])
            let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])

            // Then: each value is counted, left untouched, and every table survives
            #expect(batch.status == 0, "\(batch)")
            let unknown = try #require(try batch.jsonObject()["unknown_stages"] as? [String: Any])
            #expect(Set(unknown.keys) == Set(values.map(readBack)), "\(batch)")
            #expect(doctor.status == 1, "\(doctor)")
            #expect(((try doctor.jsonObject()["findings"] as? [String: Any])?["unknown_stages"] as? [String: Any])?.count == values.count, "\(doctor)")
            for (index, value) in values.enumerated() {
                #expect(
                    try Direct.integer(
                        db, "SELECT COUNT(*) FROM users WHERE id = ? AND CAST(customer_journey_state AS BLOB) = ?",
                        arguments: [hostileUser(index), Data(value.utf8)]) == 1, "\(index)")
            }
            #expect(try tables(db).isSuperset(of: allTables))
            #expect(try platformCounts(db) == counts)
        }
    }

    /// A rule set whose values, version, titles and declared reason are SQL-shaped text.
    static let hostileRules = """
        version: "v1'; DROP TABLE journey_transitions; --"
        stages:
          - id: J1_NEW_USER
            title: "New'); DROP TABLE users; --"
          - id: J2_ACTIVE_USER
            title: Active
            criteria:
              - subscription_tier in ['a"b', c]
          - id: J3_POWER_USER
            title: Power
            criteria:
              - role == "x'; DROP TABLE users; --"
        edges:
          - from: J1_NEW_USER
            to: J3_POWER_USER
            kind: skip
            reason: "'); DELETE FROM journey_transitions; --"
            criteria:
              - role == "x'; DROP TABLE users; --"
              - subscription_tier == c

        """

    @Test("hostile values in a rules file's criteria, version and reason: compared and recorded as data")
    func hostileRuleValues() async throws {
        try await withWorkspace { workspace in
            // Given: the hostile rule set, and four users: A (tier a"b), B (tier a"b, hostile role),
            // C (tier c, hostile role), D (tier free, hostile role)
            try Data(Self.hostileRules.utf8).write(to: workspace.url.appendingPathComponent("hostile.yaml"))
            let check = try await workspace.journey(["rules", "check", "hostile.yaml"])
            #expect(check.status == 0, "\(check)")
            let db = try await workspace.platformDatabase()
            let role = "x'; DROP TABLE users; --"
            for (user, tier, userRole) in [(30, "a\"b", "user"), (31, "a\"b", role), (32, "c", role), (33, "free", role)] {
                try Direct.execute(db, "UPDATE users SET subscription_tier = ?, role = ? WHERE id = ?", arguments: [tier, userRole, user])
            }
            let counts = try platformCounts(db)

            // When: explaining D, and evaluating A, B and C with these rules
            let explain = try await workspace.journey(["explain", "33", "--db", db, "--rules", "hostile.yaml"])
            var moves: [Int: [[String: Any]]] = [:]
            for user in [30, 31, 32] {
                let result = try await workspace.journey(["evaluate", String(user), "--json", "--db", db, "--rules", "hostile.yaml"])
                #expect(result.status == 0, "\(result)")
                moves[user] = try result.jsonObject()["transitions"] as? [[String: Any]]
            }

            // Then: the criteria matched the exact strings: A → J2, B → J2 → J3, C by the declared skip
            #expect(explain.status == 0, "\(explain)")
            #expect(explain.stdout.contains("[ ] subscription_tier free (needs in [a\"b, c])"), "\(explain)")
            #expect(moves[30]?.map { $0["to"] as? String } == ["J2_ACTIVE_USER"])
            #expect(moves[31]?.map { $0["to"] as? String } == ["J2_ACTIVE_USER", "J3_POWER_USER"])
            #expect(moves[32]?.map { $0["to"] as? String } == ["J3_POWER_USER"])
            #expect(moves[32]?.first?["reason"] as? String == "'); DELETE FROM journey_transitions; --")

            // And: the version and reason are stored as text; the batch runs with these rules too
            #expect(
                try Direct.integer(
                    db, "SELECT COUNT(*) FROM journey_transitions WHERE rules_version = ?",
                    arguments: ["v1'; DROP TABLE journey_transitions; --"]) == 4)
            let batch = try await workspace.journey(["batch", "--db", db, "--rules", "hostile.yaml", "--json"])
            #expect(batch.status == 0, "\(batch)")
            #expect(
                try Direct.integer(
                    db, "SELECT COUNT(*) FROM journey_batch_runs WHERE rules_version = ? AND status = 'finished'",
                    arguments: ["v1'; DROP TABLE journey_transitions; --"]) == 1)
            let doctor = try await workspace.journey(["doctor", "--db", db, "--rules", "hostile.yaml"])
            #expect(doctor.status == 0, "\(doctor)")
            #expect(try tables(db).isSuperset(of: allTables))
            #expect(try platformCounts(db) == counts)
        }
    }

    /// Criteria that try to reach a table, a column or SQL instead of a metric.
    static let sqlCriteria = [
        "users.id >= 1",
        "(SELECT 1) >= 1",
        "posts; DROP TABLE users >= 1",
        "posts >= 1; DROP TABLE users",
        "posts >= (SELECT COUNT(*) FROM users)",
        "json_extract(metrics, '$.posts') >= 1",
        "follower_count >= 1",
        "customer_journey_state == J2_ACTIVE_USER",
        "sqlite_master == x",
        "posts >= 1 OR 1",
    ]

    @Test(
        "a rules file cannot name a table, a column or raw SQL: refused with 65 naming the criterion, database untouched",
        arguments: sqlCriteria)
    func rulesCannotNameSQL(_ criterion: String) async throws {
        try await withWorkspace { workspace in
            // Given: a two-stage rule set whose one criterion is the SQL-shaped text
            let yaml = """
                version: "1"
                stages:
                  - id: J1_NEW_USER
                    title: New
                  - id: J2_ACTIVE_USER
                    title: Active
                    criteria:
                      - \(criterion)

                """
            try Data(yaml.utf8).write(to: workspace.url.appendingPathComponent("sql.yaml"))
            let db = try await workspace.platformDatabase()
            let before = DatabaseFiles(db)

            // When: checking it, and evaluating and batching with it
            let check = try await workspace.journey(["rules", "check", "sql.yaml"])
            let evaluate = try await workspace.journey(["evaluate", "3", "--db", db, "--rules", "sql.yaml"])
            let batch = try await workspace.journey(["batch", "--db", db, "--rules", "sql.yaml"])

            // Then: 65, one line naming the file, line 8 and the criterion; nothing written
            for result in [check, evaluate, batch] {
                expectCleanFailure(result, status: 65, mentions: ["sql.yaml:8", "criterion '\(criterion)'"])
            }
            #expect(DatabaseFiles(db) == before)
        }
    }
}

extension SecurityTests {
    @Suite("Security: files journey creates are not world-writable")
    struct FileModeTests {
        /// Expects `path`, and its -wal and -shm where present, to exist and not be writable by others.
        private func expectNotWorldWritable(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(FileManager.default.fileExists(atPath: path), "\(path) was not created", sourceLocation: sourceLocation)
            for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
                let mode = try fileMode(file)
                #expect(mode & 0o002 == 0, "\(file) is world-writable: \(String(mode, radix: 8))", sourceLocation: sourceLocation)
            }
        }

        @Test("journey migrate --create --db new.sqlite creates a file others cannot write, even under umask 000", arguments: ["022", "000"])
        func migrateCreates(_ mask: String) async throws {
            try await withWorkspace { workspace in
                // When: migrate creates a new database under the umask
                let result = try await workspace.journey(["migrate", "--create", "--db", "new.sqlite"], umask: mask)

                // Then: it exists, with mode & 0o002 == 0 (the README says 0640)
                #expect(result.status == 0, "\(result)")
                try expectNotWorldWritable(workspace.path("new.sqlite"))
                #expect(try fileMode(workspace.path("new.sqlite")) == 0o640)
            }
        }

        @Test("journey generate and journey demo --output create files others cannot write, under umask 000")
        func generateAndDemoCreate() async throws {
            try await withWorkspace { workspace in
                let generate = try await workspace.journey(["generate", "--users", "50", "--output", "g.sqlite"], umask: "000")
                #expect(generate.status == 0, "\(generate)")
                try expectNotWorldWritable(workspace.path("g.sqlite"))
                let demo = try await workspace.journey(["demo", "--users", "100", "--output", "d.sqlite"], umask: "000")
                #expect(demo.status == 0, "\(demo)")
                try expectNotWorldWritable(workspace.path("d.sqlite"))
            }
        }

        @Test("the -wal and -shm beside a database migrate created take its mode: not world-writable either")
        func companions() async throws {
            try await withWorkspace { workspace in
                // Given: a database migrate created under umask 000
                #expect(try await workspace.journey(["migrate", "--create", "--db", "w.sqlite"], umask: "000").status == 0)
                let path = workspace.path("w.sqlite")

                // When: a connection writes to it in WAL mode and keeps it open (as a running batch or server does)
                let pool = try DatabasePool(path: path)
                try await pool.write { db in try db.execute(sql: "INSERT INTO users(id) VALUES (1)") }

                // Then: SQLite created the companions with the main file's mode, not world-writable
                #expect(FileManager.default.fileExists(atPath: path + "-wal") && FileManager.default.fileExists(atPath: path + "-shm"))
                try expectNotWorldWritable(path)
                #expect(try fileMode(path + "-wal") == 0o640)
                try pool.close()
            }
        }
    }
}
