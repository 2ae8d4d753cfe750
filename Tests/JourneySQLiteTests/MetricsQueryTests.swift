import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §2: the one-user metrics statement is free of scans of the big tables. (Its values, checked
/// against values computed by hand, are the contract suite's: `SnapshotContractTests`, on every store.)
@Suite("The one-statement metrics query")
struct MetricsQueryTests {
    // MARK: - EXPLAIN QUERY PLAN

    /// The aliases the statement gives the big tables, and the tables themselves.
    static let bigTables = ["posts", "follows", "events", "event_rsvps", "p", "f", "e", "r"]

    enum PlanDatabase: String, CaseIterable, Sendable { case emptyMigrated, populatedAndAnalyzed }

    @Test("The metrics statement seeks indexes and never scans a big table", arguments: PlanDatabase.allCases)
    func queryPlanHasNoScanOfBigTables(kind: PlanDatabase) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated database: empty, or populated and ANALYZEd so the planner knows the skew
            let path = directory.appending(path: "plan.sqlite").path
            if kind == .populatedAndAnalyzed {
                try PlatformDataGenerator(users: 400, seed: 3, now: Fixture.generatedAt).write(to: path)
            }
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            if kind == .populatedAndAnalyzed {
                try database.writer.writeNow { try $0.execute(sql: "ANALYZE") }
            }

            // When SQLite explains the statement
            var arguments = SQLiteStore.windowArguments(now: Fixture.now)
            arguments["user"] = Int64(1)
            let plan = try database.writer.readNow { db in
                try Row.fetchAll(
                    db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.snapshotSQL(TimestampForms.read(db)),
                    arguments: StatementArguments(arguments)
                ).map { $0["detail"] as String }
            }
            let planText = plan.joined(separator: "\n")

            // Then no line scans posts, follows, events or event_rsvps (by name or alias)
            let scans = plan.filter { line in
                let words = line.split(separator: " ")
                return words.count >= 2 && words[0] == "SCAN" && Self.bigTables.contains(String(words[1]))
            }
            #expect(scans.isEmpty, "the metrics statement scans a big table:\n\(planText)")
            // and each big table is reached through the index the issue names
            #expect(plan.contains { $0.hasPrefix("SEARCH u USING INTEGER PRIMARY KEY") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH p USING") && $0.contains("user_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH f USING") && $0.contains("follower_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH e USING") && $0.contains("organizer_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH r USING") && $0.contains("user_id=?") }, "\(planText)")
            #expect(plan.contains { $0.hasPrefix("SEARCH e USING INTEGER PRIMARY KEY") }, "\(planText)")
            // and followers come from users.follower_count: follows by following_id appear only in the
            // fallback for a count that is not an integer, and through the index even there
            #expect(plan.filter { $0.contains("following_id") }.allSatisfy { $0.hasPrefix("SEARCH") && $0.contains("INDEX") }, "\(planText)")
            // and no line at all is a SCAN (users and pins are reached by primary key too)
            #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(planText)")
        }
    }
}
