import Foundation
import GRDB

/// What `journey doctor` found: each list empty when all is well.
public struct DoctorFindings: Hashable, Sendable, Codable {
    /// `PRAGMA integrity_check` lines other than `ok`.
    public var integrity: [String] = []
    /// Stored stage values the rules do not know (nor alias), with how many users hold each.
    public var unknownStages: [String: Int] = [:]
    /// Users whose stage differs from the `to_state` of their last transition (or J1 with none).
    public var stageMismatches: [Int64] = []
    /// Users whose history does not chain (a row's `from_state` is not the previous `to_state`).
    public var brokenHistories: [Int64] = []
    /// Users whose `follower_count` differs from the rows in `follows`.
    public var followerCountDrift: [Int64] = []

    public var isHealthy: Bool {
        integrity.isEmpty && unknownStages.isEmpty && stageMismatches.isEmpty && brokenHistories.isEmpty && followerCountDrift.isEmpty
    }

    enum CodingKeys: String, CodingKey {
        case integrity, unknownStages = "unknown_stages", stageMismatches = "stage_mismatches"
        case brokenHistories = "broken_histories", followerCountDrift = "follower_count_drift"
    }
}

extension JourneyDatabase {
    /// Checks the file, every stage against the rules and its history, and the counters.
    ///
    /// - parameter stages: the stage ids of the rules in force.
    /// - parameter aliases: their legacy values and the stage each one means.
    /// - parameter initialStage: the stage of a user with no history.
    public func doctor(stages: Set<String>, aliases: [String: String], initialStage: String) async throws(StoreError) -> DoctorFindings {
        try await read { db in
            var findings = DoctorFindings()
            findings.integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            for row in try Row.fetchAll(db, sql: "SELECT customer_journey_state AS stage, COUNT(*) AS n FROM users GROUP BY 1") {
                let stage = String.fromDatabaseValue(row["stage"]) ?? ""
                if !stages.contains(stage), aliases[stage] == nil { findings.unknownStages[stage] = row["n"] }
            }
            // Rows whose text differs; a legacy alias of the right stage is not a mismatch.
            let differing = try Row.fetchAll(db, sql: """
                SELECT u.id, u.customer_journey_state AS stage, COALESCE(t.to_state, ?) AS expected FROM users u
                LEFT JOIN journey_transitions t ON t.user_id = u.id
                    AND t.seq = (SELECT MAX(seq) FROM journey_transitions WHERE user_id = u.id)
                WHERE u.customer_journey_state IS NOT COALESCE(t.to_state, ?)
                ORDER BY u.id
                """, arguments: [initialStage, initialStage])
            findings.stageMismatches = differing.compactMap { row in
                let stage = String.fromDatabaseValue(row["stage"]) ?? ""
                return (aliases[stage] ?? stage) == row["expected"] ? nil : row["id"]
            }
            findings.brokenHistories = try Int64.fetchAll(db, sql: """
                SELECT DISTINCT t.user_id FROM journey_transitions t
                LEFT JOIN journey_transitions previous ON previous.user_id = t.user_id AND previous.seq = t.seq - 1
                WHERE (t.seq > 1 AND (previous.id IS NULL OR previous.to_state IS NOT t.from_state))
                ORDER BY t.user_id
                """)
            findings.followerCountDrift = try Int64.fetchAll(db, sql: Self.driftSQL)
            return findings
        }
    }

    static let driftSQL = """
        SELECT id FROM users
        WHERE follower_count IS NOT (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
        ORDER BY id
        """

    /// Recomputes `follower_count` where it drifted; returns the users fixed. History is never rewritten.
    public func repairCounters() async throws(StoreError) -> [Int64] {
        try await immediateWrite { db in
            let drifted = try Int64.fetchAll(db, sql: Self.driftSQL)
            try db.execute(sql: """
                UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
                WHERE follower_count IS NOT (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
                """)
            return drifted
        }
    }
}
