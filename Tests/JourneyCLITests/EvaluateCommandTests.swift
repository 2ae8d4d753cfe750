import Foundation
import Testing

/// `journey evaluate`, `explain`, `history`, `pin` and `unpin` on a generated, migrated database.
@Suite("journey evaluate, explain, history, pin")
struct EvaluateCommandTests {
    /// The keys of the documented `evaluate --json` object that every report carries.
    static let evaluationKeys = [
        "user", "stored_stage", "stage", "title", "persisted", "transitions", "next",
        "metrics", "rules_version", "evaluated_at",
    ]

    /// A J1 user whose metrics move them on (dry-run), and their dry-run report.
    static func movingUser(in workspace: Workspace, db: String) async throws -> (id: Int, report: [String: Any]) {
        let found = try await firstUser(in: workspace, db: db) { report in
            ((report["transitions"] as? [Any])?.isEmpty == false) && report["next"] != nil
        }
        return try #require(found, "no user of the fixture moves on evaluation")
    }

    @Test("evaluate prints the stage and the moves made, as text")
    func evaluateText() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture and a user whose metrics move them
            let db = try await workspace.platformDatabase()
            let (user, dryRun) = try await Self.movingUser(in: workspace, db: db)
            let stage = try #require(dryRun["stage"] as? String)

            // When: evaluating them
            let result = try await workspace.journey(["evaluate", String(user), "--db", db])

            // Then: exit 0, the first line names the user and new stage, the moves are listed, then the checklist
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("User \(user): \(stage) (") == true, "\(result)")
            #expect(lines.contains("Moves:"), "\(result)")
            #expect(lines.contains { $0.hasPrefix("  J1_NEW_USER → ") }, "\(result)")
            #expect(lines.contains { $0.hasPrefix("Next: ") }, "\(result)")
            #expect(!result.stdout.contains("dry run"), "\(result)")
        }
    }

    @Test("evaluate --json is the documented object; the moves are recorded once; a second evaluate moves nothing")
    func evaluateJSONPersistsOnce() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture and a user whose metrics move them
            let db = try await workspace.platformDatabase()
            let (user, dryRun) = try await Self.movingUser(in: workspace, db: db)
            let expectedMoves = try #require(dryRun["transitions"] as? [[String: Any]])

            // When: evaluating with --json
            let first = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])

            // Then: one JSON object with every documented key, persisted, the same moves as the dry run, numbered 1…n
            #expect(first.status == 0, "\(first)")
            let report = try first.jsonObject()
            for key in Self.evaluationKeys {
                #expect(report[key] != nil, "missing key \(key): \(first)")
            }
            #expect((report["user"] as? NSNumber)?.intValue == user)
            #expect(report["stored_stage"] as? String == report["stage"] as? String, "after a persisted evaluate the stored stage is the new stage")
            #expect(report["persisted"] as? Bool == true)
            #expect(report["rules_version"] as? String == "mundo-tango-1")
            #expect((report["title"] as? String)?.isEmpty == false)
            #expect((report["metrics"] as? [String: Any])?["posts"] != nil)
            #expect((report["evaluated_at"] as? String)?.count == "2026-01-01T00:00:00Z".count)
            let moves = try #require(report["transitions"] as? [[String: Any]])
            #expect(moves.map { $0["to"] as? String } == expectedMoves.map { $0["to"] as? String })
            #expect(moves.map { ($0["seq"] as? NSNumber)?.intValue } == Array(1...moves.count).map { $0 })
            #expect(moves.first?["from"] as? String == "J1_NEW_USER")
            #expect(moves.last?["to"] as? String == report["stage"] as? String)

            // When: reading the history
            let history = try await workspace.journey(["history", String(user), "--db", db, "--json"])

            // Then: it lists those moves, recorded by the CLI
            #expect(history.status == 0, "\(history)")
            let stays = try #require(try history.jsonObject()["stays"] as? [[String: Any]])
            let recorded = stays.dropFirst()
            #expect(recorded.map { $0["stage"] as? String } == moves.map { $0["to"] as? String })
            #expect(recorded.allSatisfy { $0["source"] as? String == "cli" })

            // When: evaluating again
            let second = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])

            // Then: no new move, the stored stage is the new one, and the history is unchanged
            #expect(second.status == 0, "\(second)")
            let again = try second.jsonObject()
            #expect((again["transitions"] as? [Any])?.isEmpty == true, "\(second)")
            #expect(again["stored_stage"] as? String == report["stage"] as? String)
            #expect(again["stage"] as? String == report["stage"] as? String)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions WHERE user_id = ?", arguments: [user]) == moves.count)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == moves.count)
        }
    }

    @Test("every evaluate --json report has the same keys, the last stage included (next: null)")
    func evaluateJSONIsStableInTheLastStage() async throws {
        try await withWorkspace { workspace in
            // Given: the fixture's user 3, a super-admin who skips to the last stage, J4
            let db = try await workspace.platformDatabase()
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE id = 3 AND role = 'super-admin'") == 1)

            // When: evaluating them with --json
            let result = try await workspace.journey(["evaluate", "3", "--db", db, "--json"])

            // Then: they are in J4 with the skip recorded, and the object still has every documented key
            #expect(result.status == 0, "\(result)")
            let report = try result.jsonObject()
            #expect(report["stage"] as? String == "J4_SUPER_ADMIN")
            #expect((report["transitions"] as? [[String: Any]])?.contains { $0["kind"] as? String == "skip" } == true, "\(result)")
            let missing = Self.evaluationKeys.filter { report[$0] == nil }
            #expect(missing.isEmpty, "keys absent in the last stage: \(missing)")
        }
    }

    @Test("the documented nulls are printed, not left out (README: pin, seq, any_of_group, left_at)")
    func documentedNullsArePresent() async throws {
        try await withWorkspace { workspace in
            // Given: a user whose metrics move them, not pinned
            let db = try await workspace.platformDatabase()
            let (user, _) = try await Self.movingUser(in: workspace, db: db)

            // When: a dry run (moves not persisted), then an evaluation and the history
            let dryRun = try await workspace.journey(["evaluate", String(user), "--db", db, "--dry-run", "--json"])
            let evaluated = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])
            let history = try await workspace.journey(["history", String(user), "--db", db, "--json"])
            #expect(dryRun.status == 0 && evaluated.status == 0 && history.status == 0)
            let dry = try dryRun.jsonObject()
            let moves = dry["transitions"] as? [[String: Any]] ?? []
            let criteria = ((try evaluated.jsonObject()["next"] as? [String: Any])?["criteria"] as? [[String: Any]]) ?? []
            let stays = try history.jsonObject()["stays"] as? [[String: Any]] ?? []
            try #require(!moves.isEmpty && !criteria.isEmpty && !stays.isEmpty)

            // Then: each documented key is present, as null where there is no value
            #expect(dry["pin"] is NSNull, "`pin` should be null for a user who is not pinned: \(dryRun)")
            #expect(moves.allSatisfy { $0["seq"] is NSNull }, "`seq` should be null in a dry run: \(dryRun)")
            #expect(criteria.allSatisfy { $0.keys.contains("any_of_group") }, "`any_of_group` should be present: \(evaluated)")
            #expect(stays.last?["left_at"] is NSNull, "the current stay should have left_at: null: \(history)")
            #expect(stays.first?.keys.contains("seq") == true, "the signup stay should have seq: null: \(history)")
        }
    }

    @Test("evaluate --dry-run reports the moves but leaves the file byte-identical")
    func dryRunWritesNothing() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture and a moving user; then `journey migrate` again, so that the last
            // connection has closed (the -wal checkpointed and removed) and no other process holds the file
            let db = try await workspace.platformDatabase()
            let (user, _) = try await Self.movingUser(in: workspace, db: db)
            let migrated = try await workspace.journey(["migrate", "--db", db])
            try #require(migrated.status == 0, "\(migrated)")
            let before = DatabaseFiles(db)
            try #require(before.main != nil)
            #expect(before.wal == nil, "a -wal is left after migrate: \(before)")

            // When: a dry run, as text then as JSON
            let text = try await workspace.journey(["evaluate", String(user), "--db", db, "--dry-run"])
            let json = try await workspace.journey(["evaluate", String(user), "--db", db, "--dry-run", "--json"])

            // Then: the moves are shown as not saved, persisted is false with no seq, and not one byte changed
            #expect(text.status == 0, "\(text)")
            #expect(text.stdout.contains("(dry run: not saved)"), "\(text)")
            #expect(json.status == 0, "\(json)")
            let report = try json.jsonObject()
            #expect(report["persisted"] as? Bool == false)
            #expect(report["stored_stage"] as? String == "J1_NEW_USER", "a dry run stores nothing")
            let moves = try #require(report["transitions"] as? [[String: Any]])
            #expect(!moves.isEmpty && moves.allSatisfy { $0["seq"] == nil || $0["seq"] is NSNull })
            let after = DatabaseFiles(db)
            #expect(after.main == before.main, "the main file changed: before \(before), after \(after)")
            #expect(after.wal == nil || after.wal?.isEmpty == true, "frames were written to the -wal: before \(before), after \(after)")
            #expect(after == before, "companion files were left next to the database: before \(before), after \(after)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == 0)
        }
    }

    @Test("explain prints the checklist toward the next stage with actual / threshold, and writes nothing")
    func explainChecklist() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture and a user whose next stage has a `>=` criterion
            let db = try await workspace.platformDatabase()
            let found = try await firstUser(in: workspace, db: db) { report in
                let criteria = (report["next"] as? [String: Any])?["criteria"] as? [[String: Any]] ?? []
                return criteria.contains { $0["operator"] as? String == ">=" }
            }
            let (user, report) = try #require(found)
            let next = try #require(report["next"] as? [String: Any])
            let criteria = try #require(next["criteria"] as? [[String: Any]])
            let before = DatabaseFiles(db)

            // When: explaining them
            let result = try await workspace.journey(["explain", String(user), "--db", db])

            // Then: exit 0, a "Next:" header naming the stage, one checklist line per criterion,
            // and "metric actual / threshold" for each `>=` criterion
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("User \(user): J1_NEW_USER") == true, "\(result)")
            let header = try #require(lines.first { $0.hasPrefix("Next: ") }, "\(result)")
            #expect(header.contains(next["stage"] as? String ?? "?"), "\(result)")
            #expect(header.contains("of \(next["criteria_count"] as? Int ?? -1) criteria met"), "\(result)")
            let checklist = lines.filter { $0.contains(". [x] ") || $0.contains(". [ ] ") }
            #expect(checklist.count == Set(criteria.compactMap { $0["criterion"] as? Int }).count, "\(result)")
            for criterion in criteria where criterion["operator"] as? String == ">=" && criterion["any_of_group"] is NSNull {
                let metric = criterion["metric"] as? String ?? "?"
                let expected = "\(metric) \(criterion["actual"] as? String ?? "?") / \(criterion["threshold"] as? String ?? "?")"
                let mark = criterion["met"] as? Bool == true ? "[x]" : "[ ]"
                let line = "  \(criterion["criterion"] as? Int ?? -1). \(mark) \(expected)"
                #expect(checklist.contains { $0.hasPrefix(line) }, "no line '\(line)': \(result)")
            }
            #expect(DatabaseFiles(db).sameContent(as: before))
        }
    }

    @Test("explain says what a user qualifies for without recording it")
    func explainQualifiesWithoutRecording() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture and a user whose metrics move them
            let db = try await workspace.platformDatabase()
            let (user, report) = try await Self.movingUser(in: workspace, db: db)
            let target = try #require(report["stage"] as? String)

            // When: explaining them
            let result = try await workspace.journey(["explain", String(user), "--db", db])

            // Then: the qualifying stages are named with the command to record them, and nothing is recorded
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("Qualifies now for: "), "\(result)")
            #expect(result.stdout.contains(target), "\(result)")
            #expect(result.stdout.contains("journey evaluate \(user)"), "\(result)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == 0)
        }
    }

    @Test("history shows the signup stay and each recorded move, as text and as JSON")
    func history() async throws {
        try await withWorkspace { workspace in
            // Given: a user who has not moved yet, then is evaluated
            let db = try await workspace.platformDatabase()
            let (user, _) = try await Self.movingUser(in: workspace, db: db)
            let before = try await workspace.journey(["history", String(user), "--db", db, "--json"])
            #expect(before.status == 0, "\(before)")
            let empty = try before.jsonObject()
            #expect((empty["stays"] as? [Any])?.count == 1, "\(before)")
            #expect(empty["stage"] as? String == "J1_NEW_USER")
            let evaluated = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])
            try #require(evaluated.status == 0, "\(evaluated)")
            let moves = try #require(try evaluated.jsonObject()["transitions"] as? [[String: Any]])

            // When: reading the history as JSON and as text
            let json = try await workspace.journey(["history", String(user), "--db", db, "--json"])
            let text = try await workspace.journey(["history", String(user), "--db", db])

            // Then (JSON): one stay per stage, each entered when the previous one was left, the last one open
            #expect(json.status == 0, "\(json)")
            let report = try json.jsonObject()
            #expect((report["user"] as? NSNumber)?.intValue == user)
            let stays = try #require(report["stays"] as? [[String: Any]])
            #expect(stays.count == moves.count + 1)
            #expect(stays.first?["stage"] as? String == "J1_NEW_USER")
            #expect(stays.first?["seq"] is NSNull, "the signup stay has no transition: \(json)")
            #expect(stays.last?["stage"] as? String == report["stage"] as? String)
            #expect(stays.last?["left_at"] is NSNull, "the current stay is open: \(json)")
            for (index, stay) in stays.enumerated() {
                #expect(stay["entered_at"] is String, "stay \(index) has no entered_at: \(json)")
                #expect(stay["seconds"] is NSNumber, "stay \(index) has no duration: \(json)")
                if index > 0 {
                    #expect((stay["seq"] as? NSNumber)?.intValue == index)
                    #expect(stay["source"] as? String == "cli")
                    #expect(stay["rules_version"] as? String == "mundo-tango-1")
                    #expect((stay["reason"] as? String)?.isEmpty == false)
                    #expect(stay["entered_at"] as? String == stays[index - 1]["left_at"] as? String)
                }
            }

            // Then (text): a header with the count, the signup stay, each move with its source, the time so far
            #expect(text.status == 0, "\(text)")
            let lines = text.stdout.split(separator: "\n").map(String.init)
            let plural = moves.count == 1 ? "move" : "moves"
            #expect(lines.first == "User \(user): \(report["stage"] as? String ?? "?"), \(moves.count) recorded \(plural)", "\(text)")
            #expect(lines.count == stays.count + 1, "\(text)")
            #expect(lines.dropFirst().first?.contains("J1_NEW_USER") == true && lines.dropFirst().first?.contains("(signup)") == true, "\(text)")
            #expect(lines.filter { $0.contains(" via cli: ") }.count == moves.count, "\(text)")
            #expect(lines.last?.contains("so far") == true, "\(text)")
            #expect(lines.dropFirst().allSatisfy { $0.contains(" entered ") }, "\(text)")
        }
    }

    @Test("pin holds a user against evaluation; unpin releases them")
    func pinAndUnpin() async throws {
        try await withWorkspace { workspace in
            // Given: a user whose metrics move them
            let db = try await workspace.platformDatabase()
            let (user, report) = try await Self.movingUser(in: workspace, db: db)

            // When: pinning them with a reason
            let pin = try await workspace.journey(["pin", String(user), "--reason", "x", "--db", db])

            // Then: exit 0 and the pinned stage is named
            #expect(pin.status == 0, "\(pin)")
            #expect(pin.stdout.contains("pinned in J1_NEW_USER"), "\(pin)")

            // When: evaluating them, as text and as JSON
            let text = try await workspace.journey(["evaluate", String(user), "--db", db])
            let json = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])

            // Then: the pin is reported, no move is made or recorded
            #expect(text.status == 0, "\(text)")
            #expect(text.stdout.contains("Pinned in J1_NEW_USER since "), "\(text)")
            #expect(text.stdout.contains(": x"), "\(text)")
            #expect(text.stdout.contains("Moves: none"), "\(text)")
            #expect(json.status == 0, "\(json)")
            let pinned = try json.jsonObject()
            #expect(pinned["stage"] as? String == "J1_NEW_USER")
            #expect((pinned["transitions"] as? [Any])?.isEmpty == true, "\(json)")
            let pinInfo = pinned["pin"] as? [String: Any]
            #expect(pinInfo?["reason"] as? String == "x", "\(json)")
            #expect(pinInfo?["stage"] as? String == "J1_NEW_USER", "\(json)")
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM journey_transitions") == 0)
            #expect(try Direct.integer(db, "SELECT COUNT(*) FROM users WHERE id = ? AND customer_journey_state = 'J1_NEW_USER'", arguments: [user]) == 1)

            // When: unpinning them and evaluating again
            let unpin = try await workspace.journey(["unpin", String(user), "--db", db])
            let after = try await workspace.journey(["evaluate", String(user), "--db", db, "--json"])

            // Then: released, and the evaluation now makes the moves
            #expect(unpin.status == 0, "\(unpin)")
            #expect(unpin.stdout.contains("User \(user) unpinned."), "\(unpin)")
            #expect(after.status == 0, "\(after)")
            let moved = try after.jsonObject()
            #expect(moved["stage"] as? String == report["stage"] as? String)
            #expect(moved["pin"] == nil || moved["pin"] is NSNull)
            #expect((moved["transitions"] as? [Any])?.isEmpty == false, "\(after)")

            // When: unpinning again
            let again = try await workspace.journey(["unpin", String(user), "--db", db])

            // Then: exit 0, saying there was no pin
            #expect(again.status == 0, "\(again)")
            #expect(again.stdout.contains("was not pinned"), "\(again)")
        }
    }

    @Test("pin refuses an empty reason (usage error, nothing written)")
    func pinNeedsReason() async throws {
        try await withWorkspace { workspace in
            // Given: a migrated fixture
            let db = try await workspace.platformDatabase()
            let before = DatabaseFiles(db)

            // When: pinning with a blank reason, and with none
            let blank = try await workspace.journey(["pin", "1", "--reason", "  ", "--db", db])
            let none = try await workspace.journey(["pin", "1", "--db", db])

            // Then: usage errors, and the file is byte-identical
            expectUsageFailure(blank, mentions: ["reason"])
            expectUsageFailure(none, mentions: ["reason"])
            #expect(DatabaseFiles(db) == before)
        }
    }

    @Test("--rules takes another rule file")
    func evaluateWithRulesFile() async throws {
        try await withWorkspace { workspace in
            // Given: a rule file with a different version in which J2 needs 100000 posts
            let db = try await workspace.platformDatabase()
            let rules = workspace.path("strict.yaml")
            try Data(
                """
                version: "strict-1"
                stages:
                  - id: J1_NEW_USER
                    title: New User
                  - id: J2_ACTIVE_USER
                    title: Active User
                    criteria:
                      - posts >= 100000
                """.utf8
            ).write(to: URL(fileURLWithPath: rules))

            // When: evaluating user 1 with it
            let result = try await workspace.journey(["evaluate", "1", "--db", db, "--rules", rules, "--dry-run", "--json"])

            // Then: the rules version is the file's, the user stays in J1, and the checklist needs 100000 posts
            #expect(result.status == 0, "\(result)")
            let report = try result.jsonObject()
            #expect(report["rules_version"] as? String == "strict-1")
            #expect(report["stage"] as? String == "J1_NEW_USER")
            let criteria = (report["next"] as? [String: Any])?["criteria"] as? [[String: Any]]
            #expect(criteria?.first?["threshold"] as? String == "100000", "\(result)")
        }
    }
}
