public import Foundation
import JourneyCore
public import JourneyStorage
import PostgresNIO

// Rules adopted into the database, and the reports and repairs of `journey status` and `journey doctor`.

extension PostgresStore {
    /// The advisory lock an adoption holds to its commit, so adoption ids are handed out in commit
    /// order: the highest id is always the latest adoption committed.
    static let rulesLockKey: Int64 = 0x6A6F_7572_6E65_72

    /// Records `text` (already validated by the caller) as the rule set every caller uses from now on.
    ///
    /// Adopting is an act with a date, so adopting the same text again adds a row too.
    public func adoptRules(version: String, text: String, source: String, now: Date) async throws(StorageError) -> AdoptedRules {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.rulesLockKey))", logger: self.logger)
            let id = try await connection.query(
                """
                INSERT INTO journey_rules (version, text, source, adopted_at) VALUES (\(version), \(text), \(source), \(now)) RETURNING id
                """, logger: self.logger
            ).collect().first!.decode(Int64.self)
            return AdoptedRules(id: id, version: version, text: text, source: source, adoptedAt: now)
        }
    }

    /// The rule set in force: the latest adoption, or nil when none was ever adopted.
    public func adoptedRules() async throws(StorageError) -> AdoptedRules? {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT id, version, text, source, adopted_at FROM journey_rules ORDER BY id DESC LIMIT 1
                """, logger: self.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (id, version, text, source, adoptedAt) = try row.decode((Int64, String, String, String, Date).self)
            return AdoptedRules(id: id, version: version, text: text, source: source, adoptedAt: adoptedAt)
        }
    }

    /// Transitions recorded at or after `since`, counted per `rules_version`, most used first (then
    /// by version, in byte order).
    public func rulesVersions(since: Date) async throws(StorageError) -> [(version: String, transitions: Int)] {
        let counts: [VersionCount] = try await withConnection { connection in
            var counts: [VersionCount] = []
            for try await (version, count) in try await connection.query(
                """
                SELECT rules_version, count(*) FROM journey_transitions WHERE created_at >= \(since)
                GROUP BY rules_version ORDER BY 2 DESC, rules_version COLLATE "C"
                """, logger: self.logger
            ).decode((String, Int64).self) {
                counts.append(VersionCount(version: version, transitions: Int(count)))
            }
            return counts
        }
        return counts.map { (version: $0.version, transitions: $0.transitions) }
    }

    /// Users per stored stage value (NULL and empty both read as empty: never evaluated), in no
    /// particular order: only the rules know the journey's order.
    public func funnel() async throws(StorageError) -> [(stage: String, count: Int)] {
        let counts: [VersionCount] = try await withConnection { connection in
            var counts: [VersionCount] = []
            for try await (stage, count) in try await connection.query(
                """
                SELECT COALESCE(customer_journey_state::text, ''), count(*) FROM users GROUP BY 1
                """, logger: self.logger
            ).decode((String, Int64).self) {
                counts.append(VersionCount(version: stage, transitions: Int(count)))
            }
            return counts
        }
        return counts.map { (stage: $0.version, count: $0.transitions) }
    }

    /// Every edge users have moved along, with counts for the 7 and 30 days before `now` and the
    /// median stay (seconds from entering `from`, or from signup for a first move), in one statement.
    public func edgeReports(now: Date) async throws(StorageError) -> [EdgeReport] {
        let reports: [EdgeReport] = try await withConnection { connection in
            var reports: [EdgeReport] = []
            let rows = try await connection.query(
                """
                SELECT from_state, to_state,
                       count(*) FILTER (WHERE created_at >= \(now.addingTimeInterval(-7 * 86_400))),
                       count(*) FILTER (WHERE created_at >= \(now.addingTimeInterval(-30 * 86_400))),
                       count(*),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE seconds >= 0)
                FROM (SELECT t.from_state, t.to_state, t.created_at,
                             journey_instant(t.created_at) - COALESCE(
                                 journey_instant(lag(t.created_at) OVER (PARTITION BY t.user_id ORDER BY t.seq)),
                                 journey_instant(u.created_at)) AS seconds
                      FROM journey_transitions t LEFT JOIN users u ON u.id = t.user_id) moves
                GROUP BY from_state, to_state
                """, logger: self.logger)
            for try await (from, to, week, month, total, median) in rows.decode((String, String, Int64, Int64, Int64, Double?).self) {
                reports.append(EdgeReport(from: from, to: to, last7Days: Int(week), last30Days: Int(month), total: Int(total), medianSeconds: median))
            }
            return reports
        }
        // Text order only makes the result stable; callers sort by the rules (J10 after J9).
        return reports.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
    }

    /// Checks the database, every stage against the rules and its history, the counters and the
    /// timestamp forms.
    ///
    /// PostgreSQL has no `PRAGMA integrity_check`: ``DoctorFindings/integrity`` lists the indexes the
    /// server marks invalid (a `CREATE INDEX CONCURRENTLY` that failed), which serve no query.
    ///
    /// - parameter stages: the stage ids of the rules in force.
    /// - parameter aliases: their legacy values and the stage each one means.
    /// - parameter initialStage: the stage of a user with no history.
    public func doctor(stages: Set<String>, aliases: [String: String], initialStage: String) async throws(StorageError) -> DoctorFindings {
        try await withConnection { connection in
            var findings = DoctorFindings()
            for try await name in try await connection.query(
                """
                SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE NOT i.indisvalid AND n.nspname = ANY(current_schemas(false)) ORDER BY 1
                """, logger: self.logger
            ).decode(String.self) {
                findings.integrity.append("index \(name) is invalid (rebuild it with REINDEX INDEX \(name))")
            }
            for try await (stage, count) in try await connection.query(
                """
                SELECT COALESCE(customer_journey_state::text, ''), count(*) FROM users GROUP BY 1
                """, logger: self.logger
            ).decode((String, Int64).self) {
                if !stages.contains(stage), aliases[stage] == nil, !RuleSet.isNeverEvaluated(stage) {
                    findings.unknownStages[stage, default: 0] += Int(count)
                }
            }
            // Rows whose text differs; a legacy alias of the right stage is not a mismatch, nor a
            // stage never evaluated (NULL, '') of a user without history.
            for try await (id, stage, expected) in try await connection.query(
                """
                SELECT u.id::bigint, COALESCE(u.customer_journey_state::text, ''), COALESCE(t.to_state, \(initialStage))
                FROM users u
                LEFT JOIN LATERAL (SELECT to_state FROM journey_transitions WHERE user_id = u.id ORDER BY seq DESC LIMIT 1) t ON true
                WHERE u.customer_journey_state::text IS DISTINCT FROM COALESCE(t.to_state, \(initialStage))
                ORDER BY u.id
                """, logger: self.logger
            ).decode((Int64, String, String).self) {
                let meant = RuleSet.isNeverEvaluated(stage) ? initialStage : aliases[stage] ?? stage
                if meant != expected { findings.stageMismatches.append(id) }
            }
            findings.brokenHistories = try await connection.query(
                """
                SELECT DISTINCT t.user_id FROM journey_transitions t
                LEFT JOIN journey_transitions previous ON previous.user_id = t.user_id AND previous.seq = t.seq - 1
                WHERE t.seq > 1 AND (previous.id IS NULL OR previous.to_state IS DISTINCT FROM t.from_state)
                ORDER BY t.user_id
                """, logger: self.logger
            ).collect().map { try $0.decode(Int64.self) }
            findings.followerCountDrift = try await connection.query(PostgresQuery(unsafeSQL: Self.driftSQL), logger: self.logger)
                .collect().map { try $0.decode(Int64.self) }
            for (table, column) in Self.timestampColumns {
                if let report = try await Self.timestampReport(connection, table: table, column: column, logger: self.logger) {
                    findings.timestamps.append(report)
                }
            }
            findings.missingTriggers = try await PostgresMigrations.missingFollowerCountTriggers(connection, self.logger).map(\.name)
            return findings
        }
    }

    /// Users whose `follower_count` differs from their rows in `follows`.
    static let driftSQL = """
        SELECT id::bigint FROM users
        WHERE follower_count IS DISTINCT FROM (SELECT count(*) FROM follows WHERE following_id = users.id)
        ORDER BY id
        """

    /// Recomputes `follower_count` where it drifted; returns the users fixed. History is never rewritten.
    public func repairCounters() async throws(StorageError) -> [Int64] {
        let repaired: [Int64] = try await transaction { connection in
            try await connection.query(
                """
                UPDATE users SET follower_count = (SELECT count(*) FROM follows WHERE following_id = users.id)
                WHERE follower_count IS DISTINCT FROM (SELECT count(*) FROM follows WHERE following_id = users.id)
                RETURNING id::bigint
                """, logger: self.logger
            ).collect().map { try $0.decode(Int64.self) }.sorted()
        }
        committed(repaired)
        return repaired
    }

    /// The platform's timestamp columns, as the metrics and the history read them.
    static let timestampColumns: [(table: String, column: String)] = [
        ("users", "created_at"), ("users", "last_journey_update"), ("posts", "created_at"),
        ("follows", "created_at"), ("events", "start_date"), ("event_rsvps", "created_at"),
    ]

    /// Counts one column's non-NULL values per ``Timestamp/Form``, with up to three samples of each
    /// form but `canonical`; nil when the table lacks the column.
    ///
    /// The form follows the column's type: a `timestamptz` or `timestamp` value is an instant
    /// (`canonical`), a `date` is `date_only`, a number is epoch seconds or milliseconds (NaN and the
    /// infinities unreadable), and text is read as SPEC §8 says, by the same `journey_instant` the
    /// metrics use.
    static func timestampReport(_ connection: PostgresConnection, table: String, column: String, logger: Logger) async throws -> TimestampColumnReport? {
        let types = try await connection.query(
            """
            SELECT format_type(a.atttypid, NULL) FROM pg_attribute a
            WHERE a.attrelid = to_regclass(quote_ident(\(table))) AND a.attname = \(column) AND a.attnum > 0 AND NOT a.attisdropped
            """, logger: logger
        ).collect()
        guard let type = try types.first?.decode(String.self) else { return nil }
        let value = "\"\(column)\""
        let form: String
        switch type {
        case "timestamp with time zone", "timestamp without time zone":
            form = "'canonical'"
        case "date":
            form = "'date_only'"
        case "smallint", "integer", "bigint", "numeric", "real", "double precision":
            form = """
                CASE WHEN journey_instant(\(value)::double precision) IS NULL THEN 'unreadable'
                     WHEN abs(\(value)::double precision) > 100000000000 THEN 'epoch_milliseconds' ELSE 'epoch_seconds' END
                """
        default:
            let text = "\(value)::text"
            form = """
                CASE WHEN journey_instant(\(text)) IS NULL THEN 'unreadable'
                     WHEN \(text) ~ '^\\d{4}-\\d{2}-\\d{2}$' THEN 'date_only'
                     WHEN \(text) ~ '^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}(\\.\\d{3})?$' THEN 'canonical'
                     WHEN \(text) ~ '^\\d{4}-\\d{2}-\\d{2}' THEN 'iso8601'
                     WHEN abs(\(text)::double precision) > 100000000000 THEN 'epoch_milliseconds'
                     ELSE 'epoch_seconds' END
                """
        }
        var report = TimestampColumnReport(column: "\(table).\(column)", forms: [:], samples: [:])
        let from = "FROM \"\(table)\" WHERE \(value) IS NOT NULL"
        for try await (form, count) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT \(form), count(*) \(from) GROUP BY 1
                    """), logger: logger
        ).decode((String, Int64).self) {
            report.forms[form] = Int(count)
        }
        for found in report.forms.keys where found != Timestamp.Form.canonical.rawValue {
            var binds = PostgresBindings()
            binds.append(found)
            report.samples[found] = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT left(\(value)::text, 41) \(from) AND \(form) = $1 LIMIT 3
                        """, binds: binds), logger: logger
            ).collect().map { row in
                let sample = try row.decode(String.self)
                return sample.count > 40 ? String(sample.prefix(40)) + "…" : sample
            }
        }
        return report
    }
}

/// A text and a count, as rows decode them (a tuple with labels is not `Sendable` across a closure).
private struct VersionCount: Sendable {
    let version: String
    let transitions: Int
}
