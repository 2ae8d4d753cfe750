import Foundation
import GRDB
import JourneyCore
public import JourneyStorage

extension SQLiteStore {
    /// Checks the file, every stage against the rules and its history, and the counters.
    ///
    /// - parameter stages: the stage ids of the rules in force.
    /// - parameter aliases: their legacy values and the stage each one means.
    /// - parameter initialStage: the stage of a user with no history.
    public func doctor(stages: Set<String>, aliases: [String: String], initialStage: String) async throws(StorageError) -> DoctorFindings {
        try await read { db in
            var findings = DoctorFindings()
            findings.integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            for row in try Row.fetchAll(db, sql: "SELECT customer_journey_state AS stage, COUNT(*) AS n FROM users GROUP BY 1") {
                let stage = UserSnapshot.storedStage(row["stage"])
                if !stages.contains(stage), aliases[stage] == nil, !RuleSet.isNeverEvaluated(stage) {
                    findings.unknownStages[stage, default: 0] += row["n"] as Int
                }
            }
            // Rows whose text differs; a legacy alias of the right stage is not a mismatch, nor a
            // stage never evaluated (NULL, '') of a user without history.
            let differing = try Row.fetchAll(
                db,
                sql: """
                    SELECT u.id, u.customer_journey_state AS stage, COALESCE(t.to_state, ?) AS expected FROM users u
                    LEFT JOIN journey_transitions t ON t.user_id = u.id
                        AND t.seq = (SELECT MAX(seq) FROM journey_transitions WHERE user_id = u.id)
                    WHERE u.customer_journey_state IS NOT COALESCE(t.to_state, ?)
                    ORDER BY u.id
                    """, arguments: [initialStage, initialStage])
            findings.stageMismatches = differing.compactMap { row in
                let stage = UserSnapshot.storedStage(row["stage"])
                let meant = RuleSet.isNeverEvaluated(stage) ? initialStage : aliases[stage] ?? stage
                return meant == row["expected"] ? nil : row["id"]
            }
            findings.brokenHistories = try Int64.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT t.user_id FROM journey_transitions t
                    LEFT JOIN journey_transitions previous ON previous.user_id = t.user_id AND previous.seq = t.seq - 1
                    WHERE (t.seq > 1 AND (previous.id IS NULL OR previous.to_state IS NOT t.from_state))
                    ORDER BY t.user_id
                    """)
            findings.followerCountDrift = try Int64.fetchAll(db, sql: Self.driftSQL)
            findings.timestamps = try Self.timestampColumns.compactMap { try Self.timestampReport(db, table: $0.table, column: $0.column) }
            findings.missingTriggers = try JourneyMigrations.brokenPlatformTriggers(db)
            return findings
        }
    }

    /// The platform's timestamp columns, as the metrics and the history read them.
    static let timestampColumns: [(table: String, column: String)] = [
        ("users", "created_at"), ("users", "last_journey_update"), ("posts", "created_at"),
        ("follows", "created_at"), ("events", "start_date"), ("event_rsvps", "created_at"),
    ]

    /// Counts one column's values per form, with samples; nil when the table lacks the column.
    static func timestampReport(_ db: Database, table: String, column: String) throws -> TimestampColumnReport? {
        guard try db.columns(in: table).contains(where: { $0.name.lowercased() == column }) else { return nil }
        let quotedTable = table.quotedDatabaseIdentifier, quotedColumn = column.quotedDatabaseIdentifier
        var report = TimestampColumnReport(column: "\(table).\(column)", forms: [:], samples: [:])
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT journey_timestamp_form(\(quotedColumn)) AS form, COUNT(*) AS n FROM \(quotedTable)
                WHERE \(quotedColumn) IS NOT NULL GROUP BY 1
                """)
        {
            let form: String = row["form"]
            report.forms[form] = row["n"]
            guard form != Timestamp.Form.canonical.rawValue else { continue }
            report.samples[form] = try DatabaseValue.fetchAll(
                db,
                sql: """
                    SELECT \(quotedColumn) FROM \(quotedTable) WHERE journey_timestamp_form(\(quotedColumn)) = ? LIMIT 3
                    """, arguments: [form]
            ).map { value in
                switch value.storage {
                case .int64(let number): String(number)
                case .double(let number): String(number)
                case .string(let text): text.count > 40 ? text.prefix(40) + "…" : text
                case .blob(let data): "<\(data.count)-byte blob>"
                case .null: "NULL"
                }
            }
        }
        return report
    }

    static let driftSQL = """
        SELECT id FROM users
        WHERE follower_count IS NOT (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
        ORDER BY id
        """

    /// Recomputes `follower_count` where it drifted; returns the users fixed. History is never rewritten.
    public func repairCounters() async throws(StorageError) -> [Int64] {
        try await immediateWrite { db in
            let drifted = try Int64.fetchAll(db, sql: Self.driftSQL)
            try db.execute(
                sql: """
                    UPDATE users SET follower_count = (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
                    WHERE follower_count IS NOT (SELECT COUNT(*) FROM follows WHERE following_id = users.id)
                    """)
            return drifted
        }
    }
}
