import Foundation
import GRDB
import Testing

// Issue 8 item 1: the bad-input cases that ErrorTests does not cover yet. Each runs the real
// binary and checks the exit status, the one line on stderr (or the usage message for 64), that
// nothing crashed, and that the database is byte-identical afterwards (main file; -wal empty or
// absent). RELIABILITY.md lists every case with its outcome and the test that checks it.

/// The bad-input suites, nested so that `--filter ReliabilityTests` selects them all.
@Suite("Reliability: bad input through the real binary")
enum ReliabilityTests {}

/// In the 200-user fixture (seed 3), user 3 is a super-admin whose evaluation moves J1 → J4:
/// a command that wrote anything on a bad input would write for this user.
private let movingUser = "3"

/// Expects the database files unchanged: the main file byte-identical, no WAL frame.
private func expectUnchanged(_ path: String, _ before: DatabaseFiles, sourceLocation: SourceLocation = #_sourceLocation) {
    let after = DatabaseFiles(path)
    #expect(after.sameContent(as: before), "the file changed: before \(before), after \(after)", sourceLocation: sourceLocation)
}

/// `journey <command…> --db <db>` with the user id right after the subcommand where one is needed.
private func arguments(_ command: [String], db: String) -> [String] {
    command + ["--db", db]
}

/// Commands that open a database, each as its argument list (before `--db`).
private let databaseCommands: [[String]] = [
    ["evaluate", movingUser], ["evaluate", movingUser, "--dry-run"], ["explain", movingUser], ["history", movingUser],
    ["pin", movingUser, "--reason", "x"], ["unpin", movingUser], ["status"], ["doctor"], ["batch"], ["batch", "--dry-run"],
]

// MARK: - Databases

extension ReliabilityTests {
    @Suite("Bad input: damaged and empty database files")
    struct DamagedDatabaseTests {
        @Test(
            "a truncated database (the first 4096 bytes of a migrated one): 65 naming the file, nothing written",
            arguments: databaseCommands)
        func truncated(_ command: [String]) async throws {
            try await withWorkspace { workspace in
                // Given: the first page of a migrated platform database, the rest cut off
                let whole = try await workspace.platformDatabase()
                let path = workspace.path("truncated.sqlite")
                let bytes = try #require(FileManager.default.contents(atPath: whole))
                try #require(bytes.count > 4096)
                try bytes.prefix(4096).write(to: URL(fileURLWithPath: path))
                let before = DatabaseFiles(path)

                // When: running the command on it
                let result = try await workspace.journey(arguments(command, db: path))

                // Then: 65, "not a journey database (or it is damaged)", and the file exactly as it was
                expectCleanFailure(result, status: 65, mentions: [path, "damaged"])
                #expect(DatabaseFiles(path) == before, "companion files appeared or the file changed")
            }
        }

        @Test(
            "a zero-byte file: 65 'lacks the platform tables', still zero bytes",
            arguments: [["evaluate", movingUser], ["explain", movingUser], ["batch"], ["doctor"]])
        func zeroBytes(_ command: [String]) async throws {
            try await withWorkspace { workspace in
                // Given: an empty file where the database should be (a touched, mistyped path)
                let path = workspace.path("empty.sqlite")
                #expect(FileManager.default.createFile(atPath: path, contents: Data()))
                let before = DatabaseFiles(path)

                // When: running the command on it
                let result = try await workspace.journey(arguments(command, db: path))

                // Then: 65 naming the file and the missing tables; nothing created in it
                expectCleanFailure(result, status: 65, mentions: [path, "lacks the platform tables", "journey migrate"])
                #expect(DatabaseFiles(path) == before)
                #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber == 0)
            }
        }

        @Test("a database another process keeps locked beyond the 10 s busy timeout: one line naming the file, nothing written")
        func lockedBeyondBusyTimeout() async throws {
            try await withWorkspace { workspace in
                // Given: a migrated database on which another connection holds a write transaction
                let db = try await workspace.platformDatabase()
                let before = DatabaseFiles(db)
                let holder = LockHolder()
                try await holder.lock(db)

                // When: evaluating (and so persisting) the moving user while the lock is held
                let started = ContinuousClock.now
                let result = try await workspace.journey(["evaluate", movingUser, "--db", db])
                let waited = ContinuousClock.now - started
                try await holder.release()

                // Then: it waited for the busy timeout, then failed cleanly, and wrote nothing
                #expect(waited >= .seconds(9), "gave up after \(waited), before the 10 s busy timeout")
                #expect(result.status == 74 || result.status == 75, "\(result)")
                #expect(
                    result.exitedNormally && result.stderrLines.count == 1 && result.stderr.hasPrefix("journey: ") && result.stderr.contains(db), "\(result)")
                expectNoCrash(result)
                expectUnchanged(db, before)
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == 0)
                // A lock that outlasts the busy timeout is temporary: sysexits' EX_TEMPFAIL (75,
                // "try again"), not 74 (I/O error) with SQLite's bare "database is locked".
                #expect(result.status == 75, "\(result)")
            }
        }
    }
}

/// Holds an IMMEDIATE transaction on a file from a thread of its own (not the cooperative pool).
private final class LockHolder: @unchecked Sendable {
    private let released = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Returns once the write lock is held.
    func lock(_ path: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread { [self] in
                var resumed = false
                do {
                    let queue = try DatabaseQueue(path: path)
                    try queue.inDatabase { db in
                        try db.execute(sql: "BEGIN IMMEDIATE")
                        resumed = true
                        continuation.resume()
                        _ = released.wait(timeout: .now() + 120)
                        try db.execute(sql: "ROLLBACK")
                    }
                    try queue.close()
                } catch {
                    if !resumed { continuation.resume(throwing: error) }
                }
                finished.signal()
            }
        }
    }

    /// Rolls back and closes the connection.
    func release() async throws {
        released.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [self] in
                _ = finished.wait(timeout: .now() + 30)
                continuation.resume()
            }
        }
    }
}

// MARK: - Read-only files and directories

/// Tests run as root in CI containers, and root bypasses permission bits: SQLite opens a 0444
/// file read-write and creates `-wal` in a 0555 directory. The "as root" tests record that; the
/// "unprivileged" tests run the binary as `nobody` (through setpriv) where permissions bite.
extension ReliabilityTests {
    @Suite("Bad input: read-only database file and read-only directory")
    struct ReadOnlyTests {
        @Test(
            "as root, a 0444 database file is written anyway (root ignores permission bits)",
            .enabled(if: Unprivileged.testsRunAsRoot))
        func readOnlyFileAsRoot() async throws {
            try await withWorkspace { workspace in
                // Given: a migrated database made read-only with chmod 0444
                let db = try await workspace.platformDatabase()
                try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: db)

                // When: root evaluates the moving user
                let result = try await workspace.journey(["evaluate", movingUser, "--db", db])

                // Then: what really happens: the move is recorded, and the mode is still 0444
                #expect(result.status == 0, "\(result)")
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = ?", arguments: [Int(movingUser)!]) == 1)
                #expect(try fileMode(db) == 0o444)
            }
        }

        @Test(
            "unprivileged, a 0444 database file: writes exit 74 naming the file, reads work, nothing written",
            .enabled(if: Unprivileged.available))
        func readOnlyFileUnprivileged() async throws {
            try await withWorkspace { workspace in
                // Given: a 0444 database (owned by root when the tests are root) in a directory anyone may write
                let directory = workspace.path("shared")
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
                try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory)
                let db = try await workspace.platformDatabase("shared/ro.sqlite")
                try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: db)
                let fingerprint = try Direct.fingerprint(db)
                let before = DatabaseFiles(db)

                // When/Then: every command that writes fails with 74 naming the file …
                for command in [["evaluate", movingUser], ["pin", movingUser, "--reason", "x"], ["unpin", movingUser], ["batch"]] {
                    let result = try #require(try await workspace.journeyUnprivileged(arguments(command, db: db)))
                    expectCleanFailure(result, status: 74, mentions: [db, "readonly"])
                    expectUnchanged(db, before)
                }
                // … and every command that only reads works
                for command in [
                    ["evaluate", movingUser, "--dry-run"], ["explain", movingUser], ["history", movingUser], ["status"], ["doctor"], ["batch", "--dry-run"],
                ] {
                    let result = try #require(try await workspace.journeyUnprivileged(arguments(command, db: db)))
                    #expect(result.status == 0, "\(result)")
                    #expect(result.stderr.isEmpty, "\(result)")
                    expectUnchanged(db, before)
                }
                #expect(try Direct.fingerprint(db) == fingerprint)
                #expect(try fileMode(db) == 0o444)
            }
        }

        @Test(
            "as root, a database in a 0555 directory is used normally (root ignores permission bits)",
            .enabled(if: Unprivileged.testsRunAsRoot))
        func readOnlyDirectoryAsRoot() async throws {
            try await withWorkspace { workspace in
                // Given: a migrated database in a directory made read-only with chmod 0555
                let directory = workspace.path("locked")
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                let db = try await workspace.platformDatabase("locked/d.sqlite")
                try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: directory)
                defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory) }

                // When: root evaluates the moving user
                let result = try await workspace.journey(["evaluate", movingUser, "--db", db])

                // Then: what really happens: SQLite creates its -wal and -shm there, and the move is recorded
                #expect(result.status == 0, "\(result)")
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == 1)
            }
        }

        @Test(
            "unprivileged, a writable database in a 0555 directory (no room for -wal/-shm): 74 naming the file, nothing written",
            .enabled(if: Unprivileged.available), arguments: databaseCommands)
        func readOnlyDirectoryUnprivileged(_ command: [String]) async throws {
            try await withWorkspace { workspace in
                // Given: a database the unprivileged user owns and may write, in a directory they may not write
                let directory = workspace.path("locked")
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                let db = try await workspace.platformDatabase("locked/d.sqlite")
                try Unprivileged.giveAway(db)
                try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: directory)
                defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory) }
                let before = DatabaseFiles(db)

                // When: running the command (SQLite must create d.sqlite-wal and -shm beside a WAL database)
                let result = try #require(try await workspace.journeyUnprivileged(arguments(command, db: db)))

                // Then: 74, one line naming the file; no file appeared, the database is byte-identical
                expectCleanFailure(result, status: 74, mentions: [db])
                #expect(DatabaseFiles(db) == before)
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["d.sqlite"])
                // The line is SQLite's "attempt to write a readonly database", even for explain or
                // history, which write nothing: a person cannot tell that the directory is the problem.
                #expect(result.stderr.contains("directory"), "\(result)")
            }
        }
    }
}

// MARK: - Odd values in a user row

extension ReliabilityTests {
    @Suite("Bad input: NULLs and odd timestamps in a user row")
    struct OddUserRowTests {
        /// The report's value at `key` in `metrics`, nil for JSON null.
        static func metric(_ report: [String: Any], _ key: String) -> Any? {
            let value = (report["metrics"] as? [String: Any])?[key]
            return value is NSNull ? nil : value
        }

        /// The checklist item for `metric` in the report's `next`.
        static func check(_ report: [String: Any], _ metric: String) -> [String: Any]? {
            ((report["next"] as? [String: Any])?["criteria"] as? [[String: Any]])?.first { $0["metric"] as? String == metric }
        }

        @Test("NULL in every nullable column of a user: evaluate, explain, history and batch work; the checklist says missing")
        func nullsEverywhere() async throws {
            try await withWorkspace { workspace in
                // Given: user 5 (who would move to J2) with NULL in every column that allows it
                let db = try await workspace.platformDatabase()
                try Direct.execute(
                    db,
                    """
                    UPDATE users SET email = NULL, city = NULL, country = NULL, role = NULL, subscription_tier = NULL,
                        is_onboarding_complete = NULL, created_at = NULL, last_journey_update = NULL WHERE id = 5
                    """)
                let before = DatabaseFiles(db)

                // When: evaluating with JSON (persisting: nothing may move)
                let evaluate = try await workspace.journey(["evaluate", "5", "--db", db, "--json"])

                // Then: exit 0, the NULL metrics are JSON nulls, the checklist shows "missing", no move
                #expect(evaluate.status == 0, "\(evaluate)")
                let report = try evaluate.jsonObject()
                for key in ["onboarding_complete", "days_since_signup", "days_in_stage", "role", "subscription_tier"] {
                    #expect(Self.metric(report, key) == nil, "\(key) should be null: \(evaluate)")
                }
                #expect(Self.check(report, "onboarding_complete")?["actual"] as? String == "missing")
                #expect(Self.check(report, "onboarding_complete")?["met"] as? Bool == false)
                #expect(Self.check(report, "days_since_signup")?["actual"] as? String == "missing")
                #expect((report["transitions"] as? [Any])?.isEmpty == true)
                #expect(report["stage"] as? String == "J1_NEW_USER")
                expectUnchanged(db, before)

                // And: explain says "missing" in text; history and the batch run without error
                let explain = try await workspace.journey(["explain", "5", "--db", db])
                #expect(explain.status == 0, "\(explain)")
                #expect(explain.stdout.contains("onboarding_complete missing (needs == true)"), "\(explain)")
                #expect(explain.stdout.contains("days_since_signup missing / 7"), "\(explain)")
                let history = try await workspace.journey(["history", "5", "--db", db, "--json"])
                #expect(history.status == 0, "\(history)")
                let stays = try #require(try history.jsonObject()["stays"] as? [[String: Any]])
                #expect(stays.count == 1 && stays[0]["entered_at"] is NSNull, "\(history)")
                let batch = try await workspace.journey(["batch", "--db", db, "--json"])
                #expect(batch.status == 0, "\(batch)")
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = 5") == 0)
                #expect(try await workspace.journey(["doctor", "--db", db]).status == 0)
            }
        }

        @Test("created_at in the future: days_since_signup is 0, the criterion is not met, nothing written")
        func createdInTheFuture() async throws {
            try await withWorkspace { workspace in
                // Given: user 5 (who would move to J2) signed up in 2999
                let db = try await workspace.platformDatabase()
                try Direct.execute(db, "UPDATE users SET created_at = '2999-01-01 00:00:00' WHERE id = 5")
                let before = DatabaseFiles(db)

                // When: evaluating (persisting)
                let result = try await workspace.journey(["evaluate", "5", "--db", db, "--json"])

                // Then: 0 days (not negative), "0 / 7" not met, no move, nothing written
                #expect(result.status == 0, "\(result)")
                let report = try result.jsonObject()
                #expect((Self.metric(report, "days_since_signup") as? NSNumber)?.intValue == 0, "\(result)")
                #expect(Self.check(report, "days_since_signup")?["actual"] as? String == "0")
                #expect(Self.check(report, "days_since_signup")?["met"] as? Bool == false)
                #expect((report["transitions"] as? [Any])?.isEmpty == true)
                expectUnchanged(db, before)
            }
        }

        @Test(
            "created_at that is not a date: days_since_signup is missing, nothing written",
            arguments: ["yesterday", "", "not a date; DROP TABLE users"])
        func createdAtUnparseable(_ value: String) async throws {
            try await withWorkspace { workspace in
                // Given: user 5 (who would move to J2) with an unparseable created_at
                let db = try await workspace.platformDatabase()
                try Direct.execute(db, "UPDATE users SET created_at = ? WHERE id = 5", arguments: [value])
                let before = DatabaseFiles(db)

                // When: evaluating (persisting) and explaining
                let result = try await workspace.journey(["evaluate", "5", "--db", db, "--json"])
                let explain = try await workspace.journey(["explain", "5", "--db", db])

                // Then: the metric is null, the checklist says missing, nothing moves or is written
                #expect(result.status == 0, "\(result)")
                let report = try result.jsonObject()
                #expect(Self.metric(report, "days_since_signup") == nil, "\(result)")
                #expect(Self.check(report, "days_since_signup")?["actual"] as? String == "missing")
                #expect((report["transitions"] as? [Any])?.isEmpty == true)
                #expect(explain.status == 0 && explain.stdout.contains("days_since_signup missing / 7"), "\(explain)")
                expectUnchanged(db, before)
            }
        }
    }
}

// MARK: - Stored stages

extension ReliabilityTests {
    @Suite("Bad input: stored stages the rules do not know")
    struct StoredStageTests {
        /// Values that are not stage ids: padded, wrong case. (Blank values mean "never evaluated":
        /// PlatformDataTests.swift.)
        static let values = [" J2_ACTIVE_USER", "J2_ACTIVE_USER ", "j2_active_user"]

        @Test(
            "evaluate and explain refuse an unknown stored stage: 65 naming the user, nothing written",
            arguments: values, [["evaluate", "5"], ["evaluate", "5", "--dry-run"], ["explain", "5", "--json"]])
        func refused(_ value: String, command: [String]) async throws {
            try await withWorkspace { workspace in
                // Given: user 5 holding the value
                let db = try await workspace.platformDatabase()
                try Direct.execute(db, "UPDATE users SET customer_journey_state = ? WHERE id = 5", arguments: [value])
                let fingerprint = try Direct.fingerprint(db)
                let before = DatabaseFiles(db)

                // When: running the command
                let result = try await workspace.journey(arguments(command, db: db))

                // Then: 65, one line naming the user and the value, nothing written
                expectCleanFailure(result, status: 65, mentions: ["User 5", "'\(value)'"])
                #expect(try Direct.fingerprint(db) == fingerprint)
                expectUnchanged(db, before)
            }
        }

        @Test("the batch counts an unknown stored stage and leaves it untouched; doctor reports it", arguments: values)
        func batchAndDoctor(_ value: String) async throws {
            try await withWorkspace { workspace in
                // Given: user 5 holding the value
                let db = try await workspace.platformDatabase()
                try Direct.execute(db, "UPDATE users SET customer_journey_state = ? WHERE id = 5", arguments: [value])

                // When: the batch runs
                let batch = try await workspace.journey(["batch", "--db", db, "--json"])

                // Then: it finishes, counts the value, and does not touch the row
                #expect(batch.status == 0, "\(batch)")
                let unknown = try #require(try batch.jsonObject()["unknown_stages"] as? [String: Any])
                #expect((unknown[value] as? NSNumber)?.intValue == 1, "\(batch)")
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE id = 5 AND customer_journey_state = ?", arguments: [value]) == 1)
                #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = 5") == 0)

                // And: doctor exits 1 and lists the value among the unknown stages
                let doctor = try await workspace.journey(["doctor", "--db", db, "--json"])
                #expect(doctor.status == 1, "\(doctor)")
                let findings = try #require(try doctor.jsonObject()["findings"] as? [String: Any])
                #expect(((findings["unknown_stages"] as? [String: Any])?[value] as? NSNumber)?.intValue == 1, "\(doctor)")
            }
        }
    }
}

// MARK: - Rules files

/// A rules file passed with `--rules` (or to `rules check`) that must be refused.
enum BadRulesFile: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tenMegabytesUnknownKey, tenMegabytesOneScalar, deepNestingUnclosed, deepNestingBalanced, nonUTF8, missing, directory

    var testDescription: String { rawValue }

    var status: Int32 {
        switch self {
        case .missing, .directory: 66
        default: 65
        }
    }

    /// Words the message must contain besides the file name.
    var mentions: [String] {
        switch self {
        case .tenMegabytesUnknownKey: [":\(Self.defaultRulesLineCount + 1):", "unknown key 'notes'"]
        case .tenMegabytesOneScalar: ["expected a mapping"]
        case .deepNestingUnclosed, .deepNestingBalanced: ["nesting level"]
        case .nonUTF8: ["not UTF-8"]
        case .missing: ["no such file"]
        case .directory: ["not a readable file"]
        }
    }

    /// The lines of the default rules file (the 10 MB block starts on the next line).
    static var defaultRulesLineCount: Int {
        let text = (try? String(contentsOfFile: RulesCommandTests.defaultRulesPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0)
    }

    /// Writes the file in `workspace`; returns its (relative) name.
    func make(in workspace: Workspace) throws -> String {
        let name = "\(rawValue).yaml"
        let url = workspace.url.appendingPathComponent(name)
        switch self {
        case .tenMegabytesUnknownKey:
            // The valid default rules (42 lines), then a 10 MB block under a key the format does not have.
            let rules = try String(contentsOfFile: RulesCommandTests.defaultRulesPath, encoding: .utf8)
            var text = rules.hasSuffix("\n") ? rules : rules + "\n"
            text += "notes: |\n"
            let line = "  " + String(repeating: "padding ", count: 10) + "\n"
            text += String(repeating: line, count: 10_000_000 / line.utf8.count + 1)
            try Data(text.utf8).write(to: url)
        case .tenMegabytesOneScalar:
            try Data(repeating: UInt8(ascii: "x"), count: 10_000_000).write(to: url)
        case .deepNestingUnclosed:
            try Data(repeating: UInt8(ascii: "["), count: 100_000).write(to: url)
        case .deepNestingBalanced:
            let text = "version: \"1\"\nstages: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
            try Data(text.utf8).write(to: url)
        case .nonUTF8:
            var bytes = Data("version: \"1\"\nstages:\n  - id: J1_".utf8)
            bytes.append(contentsOf: [0xFF, 0xFE, 0xC3, 0x28, 0x80, 0xE2, 0x82])
            bytes.append(Data("\n    title: A\n".utf8))
            try bytes.write(to: url)
        case .missing:
            break
        case .directory:
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        }
        return name
    }
}

extension ReliabilityTests {
    @Suite("Bad input: rules files that are huge, deep, binary or absent")
    struct BadRulesFileTests {
        @Test(
            "--rules with a bad file: 65 (66 when absent) naming the file, in bounded time, database untouched",
            arguments: BadRulesFile.allCases, [["evaluate", movingUser], ["batch"], ["doctor"]])
        func withDatabase(_ bad: BadRulesFile, command: [String]) async throws {
            try await withWorkspace { workspace in
                // Given: a migrated database and the bad rules file
                let db = try await workspace.platformDatabase()
                let rules = try bad.make(in: workspace)
                let before = DatabaseFiles(db)

                // When: running the command with --rules (well within the helper's 120 s watchdog)
                let started = ContinuousClock.now
                let result = try await workspace.journey(command + ["--db", db, "--rules", rules])
                let elapsed = ContinuousClock.now - started

                // Then: the status, one line naming the file and the problem, and the database untouched
                expectCleanFailure(result, status: bad.status, mentions: [rules] + bad.mentions)
                #expect(elapsed < .seconds(30), "took \(elapsed)")
                #expect(DatabaseFiles(db) == before)
            }
        }

        @Test("rules check with a bad file: the same status and message", arguments: BadRulesFile.allCases)
        func rulesCheck(_ bad: BadRulesFile) async throws {
            try await withWorkspace { workspace in
                let rules = try bad.make(in: workspace)
                let result = try await workspace.journey(["rules", "check", rules])
                expectCleanFailure(result, status: bad.status, mentions: [rules] + bad.mentions)
            }
        }
    }
}

// MARK: - User ids

extension ReliabilityTests {
    @Suite("Bad input: more user ids")
    struct MoreUserIDTests {
        @Test(
            "ids that are not positive 64-bit integers, beyond ErrorTests' list: usage error 64",
            arguments: ["9223372036854775808", " 7", "7 ", "1e3", "٣", "-0", "7;DROP TABLE users"])
        func usage(_ user: String) async throws {
            try await withWorkspace { workspace in
                let db = try await workspace.platformDatabase()
                let before = DatabaseFiles(db)
                let result = try await workspace.journey(["evaluate", user, "--db", db])
                expectUsageFailure(result)
                #expect(DatabaseFiles(db) == before)
            }
        }

        @Test(
            "the largest 64-bit id is a valid id: 67 unknown user, no overflow", arguments: [["evaluate"], ["explain"], ["history"], ["pin", "--reason", "x"]])
        func largestID(_ command: [String]) async throws {
            try await withWorkspace { workspace in
                let db = try await workspace.platformDatabase()
                let before = DatabaseFiles(db)
                let result = try await workspace.journey([command[0], "9223372036854775807"] + command.dropFirst() + ["--db", db])
                expectCleanFailure(result, status: 67, mentions: ["9223372036854775807"])
                expectUnchanged(db, before)
            }
        }
    }
}

// MARK: - Every rule-file rejection of the core, through the binary

extension ReliabilityTests {
    @Suite("Bad input: every malformed rule file of the core tests, through the binary")
    struct CoreRejectionsThroughCLITests {
        /// `Tests/JourneyCoreTests/Rules/`, each file with exactly one thing wrong (RuleSetLoaderRejectionTests).
        static let directory = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("JourneyCoreTests/Rules")

        static let files: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()

        @Test("the rule-file directory of the core tests is there")
        func directoryFound() {
            #expect(Self.files.count >= 36, "found \(Self.files.count) files in \(Self.directory.path)")
        }

        @Test("evaluate --rules FILE and rules check FILE: 65, one line naming the file, database untouched", arguments: files)
        func refused(_ file: String) async throws {
            try await withWorkspace { workspace in
                // Given: a migrated database and one malformed rule file
                let db = try await workspace.platformDatabase()
                let rules = Self.directory.appendingPathComponent(file).path
                let before = DatabaseFiles(db)

                // When: evaluating (and so persisting) the moving user with it, and checking it
                let evaluate = try await workspace.journey(["evaluate", movingUser, "--db", db, "--rules", rules])
                let check = try await workspace.journey(["rules", "check", rules])

                // Then: 65 naming the file, for both; nothing written
                expectCleanFailure(evaluate, status: 65, mentions: [rules])
                expectCleanFailure(check, status: 65, mentions: [rules])
                #expect(evaluate.stderr == check.stderr)
                #expect(DatabaseFiles(db) == before)
            }
        }
    }
}
