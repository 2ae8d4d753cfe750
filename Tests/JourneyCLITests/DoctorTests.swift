import Foundation
import GRDB
import Testing

// Issue 8 item 4: `journey doctor [--repair] [--json]`. Each test corrupts a migrated database
// on purpose, one way at a time, and checks that doctor finds it (exit 1, the text names it,
// `--json` lists it), that `--repair` fixes only the counters and never rewrites history.

/// A migrated 200-user fixture after a batch run, with a few users picked for the corruptions.
private struct DoctorFixture {
    let db: String
    /// A user the batch moved once (J1 → J2), with one transition row.
    let movedOnce: Int
    /// A user moved twice (J1 → J2 by the batch, then J2 → J4 once made a super-admin).
    let movedTwice: Int
    /// A user never moved (still J1, no transition row).
    let neverMoved: Int
    /// A user with followers, for counter drift.
    let followed: Int

    static func make(in workspace: Workspace, sourceLocation: SourceLocation = #_sourceLocation) async throws -> DoctorFixture {
        let db = try await workspace.platformDatabase()
        let batch = try await workspace.journey(["batch", "--db", db])
        try #require(batch.status == 0, "\(batch)", sourceLocation: sourceLocation)
        let movedToJ2 = try #require(
            try Direct.integer(
                db,
                """
                SELECT user_id FROM journey_transitions WHERE to_state = 'J2_ACTIVE_USER' GROUP BY user_id HAVING COUNT(*) = 1 ORDER BY user_id LIMIT 1
                """), sourceLocation: sourceLocation)
        let second = try #require(
            try Direct.integer(
                db,
                """
                SELECT user_id FROM journey_transitions WHERE to_state = 'J2_ACTIVE_USER' AND user_id > ? ORDER BY user_id LIMIT 1
                """, arguments: [movedToJ2]), sourceLocation: sourceLocation)
        // The second J2 user becomes a super-admin and takes the declared skip J2 → J4 (seq 2).
        try Direct.execute(db, "UPDATE users SET role = 'super-admin' WHERE id = ?", arguments: [second])
        let evaluate = try await workspace.journey(["evaluate", String(second), "--db", db])
        try #require(evaluate.status == 0, "\(evaluate)", sourceLocation: sourceLocation)
        try #require(
            try Direct.integer(db, "SELECT MAX(seq) FROM journey_transitions WHERE user_id = ?", arguments: [second]) == 2,
            sourceLocation: sourceLocation)
        let never = try #require(
            try Direct.integer(
                db,
                """
                SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM journey_transitions) ORDER BY id LIMIT 1
                """), sourceLocation: sourceLocation)
        let followed = try #require(
            try Direct.integer(
                db,
                """
                SELECT following_id FROM follows GROUP BY following_id HAVING COUNT(*) >= 2 ORDER BY following_id LIMIT 1
                """), sourceLocation: sourceLocation)
        return DoctorFixture(db: db, movedOnce: movedToJ2, movedTwice: second, neverMoved: never, followed: followed)
    }
}

/// Every row of `journey_transitions`, as text, in id order.
private func transitionRows(_ db: String) throws -> [String] {
    let queue = try Direct.reader(db)
    defer { try? queue.close() }
    return try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM journey_transitions ORDER BY id").map(\.description) }
}

/// The `findings` object of `doctor --json`.
private func findings(_ result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    try #require(try result.jsonObject(sourceLocation: sourceLocation)["findings"] as? [String: Any], "\(result)", sourceLocation: sourceLocation)
}

/// A list of user ids in the findings.
private func ids(_ findings: [String: Any], _ key: String) -> [Int] {
    ((findings[key] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }
}

@Suite("journey doctor finds what was corrupted on purpose")
struct DoctorTests {
    /// Expects doctor to find nothing: exit 0, six "ok" lines, healthy JSON with nothing listed, the file untouched.
    private func expectHealthy(_ db: String, in workspace: Workspace, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = DatabaseFiles(db)
        let text = try await workspace.journey(["doctor", "--db", db])
        let json = try await workspace.journey(["doctor", "--db", db, "--json"])
        #expect(text.status == 0, "\(text)", sourceLocation: sourceLocation)
        let lines = text.stdout.split(separator: "\n")
        #expect(lines.count == 7 && lines.allSatisfy { $0.hasPrefix("ok    ") }, "\(text)", sourceLocation: sourceLocation)
        #expect(json.status == 0, "\(json)", sourceLocation: sourceLocation)
        #expect(try json.jsonObject()["healthy"] as? Bool == true, sourceLocation: sourceLocation)
        let found = try findings(json)
        for key in ["integrity", "stage_mismatches", "broken_histories", "follower_count_drift"] {
            #expect((found[key] as? [Any])?.isEmpty == true, "\(key): \(json)", sourceLocation: sourceLocation)
        }
        #expect((found["unknown_stages"] as? [String: Any])?.isEmpty == true, "\(json)", sourceLocation: sourceLocation)
        #expect(DatabaseFiles(db).sameContent(as: before), "doctor wrote to the file", sourceLocation: sourceLocation)
    }

    @Test("a healthy database (just migrated; after a batch and more moves): exit 0, every line ok, --json healthy, nothing written")
    func healthy() async throws {
        try await withWorkspace { workspace in
            // Given: a freshly migrated database (no history yet)
            let fresh = try await workspace.platformDatabase("fresh.sqlite")
            // Then: doctor finds nothing
            try await expectHealthy(fresh, in: workspace)

            // Given: a database after a batch run and a second move for one user
            let fixture = try await DoctorFixture.make(in: workspace)
            // Then: doctor finds nothing
            try await expectHealthy(fixture.db, in: workspace)
        }
    }

    @Test("a stage unknown to the rules: exit 1, named with its count; --json unknown_stages")
    func unknownStage() async throws {
        try await withWorkspace { workspace in
            // Given: a user holding a stage id no rule declares
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J7_GHOST' WHERE id = ?", arguments: [fixture.movedOnce])

            // When: running doctor
            let text = try await workspace.journey(["doctor", "--db", fixture.db])
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--json"])

            // Then: exit 1, the stage named with its count, and the JSON lists it
            #expect(text.status == 1, "\(text)")
            #expect(text.stdout.contains("FAIL  stages unknown to the rules: 'J7_GHOST' (1 user)"), "\(text)")
            #expect(json.status == 1, "\(json)")
            let found = try findings(json)
            #expect((found["unknown_stages"] as? [String: Any])?.keys.sorted() == ["J7_GHOST"], "\(json)")
            #expect(((found["unknown_stages"] as? [String: Any])?["J7_GHOST"] as? NSNumber)?.intValue == 1)
            #expect(try json.jsonObject()["healthy"] as? Bool == false)
            // (It is also no longer the to_state of the user's last transition.)
            #expect(ids(found, "stage_mismatches") == [fixture.movedOnce], "\(json)")
        }
    }

    @Test("a stage known to the rules but not the user's last transition: exit 1 naming the users; --json stage_mismatches")
    func stageDiffersFromHistory() async throws {
        try await withWorkspace { workspace in
            // Given: a moved user set back by hand to another stage, and a never-moved user set to J2 with no row
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J3_POWER_USER' WHERE id = ?", arguments: [fixture.movedOnce])
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J2_ACTIVE_USER' WHERE id = ?", arguments: [fixture.neverMoved])
            let expected = [fixture.movedOnce, fixture.neverMoved].sorted()

            // When: running doctor
            let text = try await workspace.journey(["doctor", "--db", fixture.db])
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--json"])

            // Then: exit 1, both users named, only stage_mismatches in the JSON
            #expect(text.status == 1, "\(text)")
            #expect(
                text.stdout.contains("FAIL  stage differs from its last transition for users \(expected.map(String.init).joined(separator: ", "))"), "\(text)")
            #expect(text.stdout.contains("ok    every stage is known to the rules"), "\(text)")
            let found = try findings(json)
            #expect(json.status == 1)
            #expect(ids(found, "stage_mismatches") == expected, "\(json)")
            #expect(ids(found, "broken_histories").isEmpty && ids(found, "follower_count_drift").isEmpty, "\(json)")
        }
    }

    @Test("a history that does not chain (a from_state changed, a seq gap): exit 1 naming the users; --json broken_histories")
    func brokenHistory() async throws {
        try await withWorkspace { workspace in
            // Given: the two-move user's second row now starts from J3 (the first ended in J2) …
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(
                fixture.db, "UPDATE journey_transitions SET from_state = 'J3_POWER_USER' WHERE user_id = ? AND seq = 2",
                arguments: [fixture.movedTwice])
            // … and the one-move user's only row is numbered 2 (move 1 missing)
            try Direct.execute(fixture.db, "UPDATE journey_transitions SET seq = 2 WHERE user_id = ? AND seq = 1", arguments: [fixture.movedOnce])
            let expected = [fixture.movedOnce, fixture.movedTwice].sorted()

            // When: running doctor
            let text = try await workspace.journey(["doctor", "--db", fixture.db])
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--json"])

            // Then: exit 1, both users named as broken histories; their stages still match their last rows
            #expect(text.status == 1, "\(text)")
            #expect(text.stdout.contains("FAIL  broken histories for users \(expected.map(String.init).joined(separator: ", "))"), "\(text)")
            let found = try findings(json)
            #expect(json.status == 1)
            #expect(ids(found, "broken_histories") == expected, "\(json)")
            #expect(ids(found, "stage_mismatches").isEmpty, "\(json)")
        }
    }

    @Test("follower_count drift (+3 by hand, or a REPLACE without recursive_triggers): exit 1 naming the users; --json follower_count_drift")
    func followerCountDrift() async throws {
        try await withWorkspace { workspace in
            // Given: one user's counter bumped by hand …
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(fixture.db, "UPDATE users SET follower_count = follower_count + 3 WHERE id = ?", arguments: [fixture.followed])
            // … and a follow row REPLACEd onto another followee: the implicit delete fires no trigger
            // (recursive_triggers is off), so the old followee keeps one follower too many
            let row = try #require(
                try Direct.integer(
                    fixture.db, "SELECT id FROM follows WHERE following_id <> ?1 AND follower_id <> ?1 ORDER BY id LIMIT 1",
                    arguments: [fixture.followed]))
            let oldFollowee = try #require(try Direct.integer(fixture.db, "SELECT following_id FROM follows WHERE id = ?", arguments: [row]))
            try Direct.execute(
                fixture.db,
                """
                REPLACE INTO follows(id, follower_id, following_id, created_at)
                SELECT id, follower_id, ?, created_at FROM follows WHERE id = ?
                """, arguments: [fixture.followed, row])
            let expected = [fixture.followed, oldFollowee].sorted()
            // (the insert trigger counted the new follow of `followed`: its drift is still +3)

            // When: running doctor
            let text = try await workspace.journey(["doctor", "--db", fixture.db])
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--json"])

            // Then: exit 1, both users named, with the way to fix it
            #expect(text.status == 1, "\(text)")
            #expect(
                text.stdout.contains(
                    "FAIL  follower_count drifted for users \(expected.map(String.init).joined(separator: ", ")); run journey doctor --repair"), "\(text)")
            let found = try findings(json)
            #expect(json.status == 1)
            #expect(ids(found, "follower_count_drift") == expected, "\(json)")
            #expect(ids(found, "stage_mismatches").isEmpty && ids(found, "broken_histories").isEmpty, "\(json)")
        }
    }

    @Test(
        "doctor --repair recomputes the drifted counters, says which, exits 0, and leaves every transition row as it was",
        arguments: [false, true])
    func repairDrift(json: Bool) async throws {
        try await withWorkspace { workspace in
            // Given: a user whose follower_count drifted by +3
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(fixture.db, "UPDATE users SET follower_count = follower_count + 3 WHERE id = ?", arguments: [fixture.followed])
            let history = try transitionRows(fixture.db)
            let stages = try Direct.fingerprint(fixture.db).filter { $0.hasPrefix("journey_transitions ") || $0.hasPrefix("journey_pins ") }

            // When: repairing
            let repair = try await workspace.journey(["doctor", "--repair", "--db", fixture.db] + (json ? ["--json"] : []))

            // Then: exit 0, the change named, the counter exact again
            #expect(repair.status == 0, "\(repair)")
            if json {
                let report = try repair.jsonObject()
                #expect((report["repaired"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } == [fixture.followed], "\(repair)")
                #expect(report["healthy"] as? Bool == true, "\(repair)")
                #expect(ids(try findings(repair), "follower_count_drift").isEmpty, "\(repair)")
            } else {
                #expect(repair.stdout.contains("fixed follower_count of users \(fixture.followed)"), "\(repair)")
                #expect(repair.stdout.contains("ok    follower_count is exact"), "\(repair)")
            }
            #expect(
                try Direct.integer(
                    fixture.db, "SELECT follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = ?) FROM users WHERE id = ?",
                    arguments: [fixture.followed, fixture.followed]) == 1)
            // And: history byte-for-byte the same rows, pins untouched, and doctor now exits 0
            #expect(try transitionRows(fixture.db) == history)
            #expect(try Direct.fingerprint(fixture.db).filter { $0.hasPrefix("journey_transitions ") || $0.hasPrefix("journey_pins ") } == stages)
            let again = try await workspace.journey(["doctor", "--db", fixture.db])
            #expect(again.status == 0, "\(again)")
        }
    }

    @Test("doctor --repair with other problems too: the counters are fixed, history is not rewritten, exit stays 1")
    func repairNeverRewritesHistory() async throws {
        try await withWorkspace { workspace in
            // Given: a drifted counter, a broken history, a stage that differs from its history and an unknown stage
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(fixture.db, "UPDATE users SET follower_count = follower_count + 3 WHERE id = ?", arguments: [fixture.followed])
            try Direct.execute(
                fixture.db, "UPDATE journey_transitions SET from_state = 'J3_POWER_USER' WHERE user_id = ? AND seq = 2",
                arguments: [fixture.movedTwice])
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J1_NEW_USER' WHERE id = ?", arguments: [fixture.movedOnce])
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J7_GHOST' WHERE id = ?", arguments: [fixture.neverMoved])
            let history = try transitionRows(fixture.db)
            let stagesBefore = try Direct.fingerprint(fixture.db).filter { $0.hasPrefix("users ") }

            // When: repairing, with JSON
            let repair = try await workspace.journey(["doctor", "--repair", "--json", "--db", fixture.db])

            // Then: exit 1; the counter was repaired; the other findings are still reported
            #expect(repair.status == 1, "\(repair)")
            let report = try repair.jsonObject()
            #expect((report["repaired"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } == [fixture.followed], "\(repair)")
            let found = try findings(repair)
            #expect(ids(found, "follower_count_drift").isEmpty, "\(repair)")
            #expect(ids(found, "broken_histories") == [fixture.movedTwice], "\(repair)")
            #expect(ids(found, "stage_mismatches") == [fixture.movedOnce, fixture.neverMoved].sorted(), "\(repair)")
            #expect((found["unknown_stages"] as? [String: Any])?.keys.sorted() == ["J7_GHOST"], "\(repair)")

            // And: every transition row is byte-for-byte the same; users differ only in that one counter
            #expect(try transitionRows(fixture.db) == history)
            let stagesAfter = try Direct.fingerprint(fixture.db).filter { $0.hasPrefix("users ") }
            let changed = zip(stagesBefore, stagesAfter).filter { $0 != $1 }
            #expect(stagesBefore.count == stagesAfter.count && changed.count == 1, "\(changed)")
            #expect(changed.first?.1.contains("id:\(fixture.followed) ") == true, "\(changed)")
        }
    }

    @Test("integrity_check failing (an index that no longer matches its table): exit 1 with SQLite's lines; --json integrity")
    func integrity() async throws {
        try await withWorkspace { workspace in
            // Given: idx_users_email's definition rewritten to another column, so its entries match no row
            let fixture = try await DoctorFixture.make(in: workspace)
            try Direct.execute(
                fixture.db,
                """
                PRAGMA writable_schema = ON;
                UPDATE sqlite_master SET sql = 'CREATE INDEX idx_users_email ON users(city)' WHERE name = 'idx_users_email';
                PRAGMA writable_schema = OFF;
                """)

            // When: running doctor, and doctor --repair
            let text = try await workspace.journey(["doctor", "--db", fixture.db])
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--json"])
            let repair = try await workspace.journey(["doctor", "--repair", "--db", fixture.db])

            // Then: exit 1 naming the index; the JSON carries the lines; --repair does not pretend to fix it
            #expect(text.status == 1, "\(text)")
            #expect(text.stdout.contains("FAIL  integrity_check: row 1 missing from index idx_users_email"), "\(text)")
            let lines = try #require(try findings(json)["integrity"] as? [String])
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("idx_users_email") }, "\(json)")
            #expect(repair.status == 1, "\(repair)")
        }
    }

    @Test("a legacy value aliased to the first stage, with no history, is consistent with its (empty) history")
    func aliasedLegacyStage() async throws {
        try await withWorkspace { workspace in
            // Given: rules that alias the legacy 'J1' to J1_NEW_USER, and a never-moved user holding 'J1'
            let fixture = try await DoctorFixture.make(in: workspace)
            var rules = try String(contentsOfFile: RulesCommandTests.defaultRulesPath, encoding: .utf8)
            rules += "\naliases:\n  J1: J1_NEW_USER\n"
            try Data(rules.utf8).write(to: workspace.url.appendingPathComponent("aliases.yaml"))
            try Direct.execute(fixture.db, "UPDATE users SET customer_journey_state = 'J1' WHERE id = ?", arguments: [fixture.neverMoved])

            // When: running doctor with those rules
            let json = try await workspace.journey(["doctor", "--db", fixture.db, "--rules", "aliases.yaml", "--json"])

            // Then: the stage is known (the alias counts)
            let found = try findings(json)
            #expect((found["unknown_stages"] as? [String: Any])?.isEmpty == true, "\(json)")
            // 'J1' means J1_NEW_USER, the stage of a user with no transition, so nothing is wrong; but the
            // mismatch query compares the raw stored text with the last to_state (or the first stage).
            #expect(ids(found, "stage_mismatches").isEmpty, "\(json)")
            #expect(json.status == 0, "\(json)")
        }
    }
}
