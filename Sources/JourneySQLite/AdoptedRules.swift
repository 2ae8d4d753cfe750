import Foundation
import GRDB

/// One row of `journey_rules`: a rule set adopted for every caller of the database (SPEC §9).
public struct AdoptedRules: Hashable, Sendable, Codable, FetchableRecord {
    /// The adoption's id; the highest id is the set in force.
    public var id: Int64
    /// The rule set's `version`, as its file declares it.
    public var version: String
    /// The YAML text, exactly as adopted.
    public var text: String
    /// The file it was adopted from, for people (`Rules/mundo-tango.yaml`).
    public var source: String
    /// When `journey rules adopt` ran (UTC).
    public var adoptedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, version, text, source, adoptedAt = "adopted_at"
    }
}

extension SQLiteStore {
    /// Records `text` (already validated by the caller) as the rule set every caller uses from now on.
    ///
    /// Adopting is an act with a date, so adopting the same text again adds a row too.
    /// - throws: ``StoreError`` when SQLite fails or the file was opened read-only.
    public func adoptRules(version: String, text: String, source: String, now: Date) async throws(StoreError) -> AdoptedRules {
        try await immediateWrite { db in
            try db.execute(sql: "INSERT INTO journey_rules(version, text, source, adopted_at) VALUES (?, ?, ?, ?)",
                           arguments: [version, text, source, now])
            return AdoptedRules(id: db.lastInsertedRowID, version: version, text: text, source: source, adoptedAt: now)
        }
    }

    /// The rule set in force: the latest adoption, or nil when none was ever adopted.
    public func adoptedRules() async throws(StoreError) -> AdoptedRules? {
        try await read { db in
            try AdoptedRules.fetchOne(db, sql: "SELECT * FROM journey_rules ORDER BY id DESC LIMIT 1")
        }
    }

    /// Transitions recorded at or after `since`, counted per `rules_version`, most used first.
    public func rulesVersions(since: Date) async throws(StoreError) -> [(version: String, transitions: Int)] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT rules_version, COUNT(*) FROM journey_transitions WHERE created_at >= ?
                GROUP BY rules_version ORDER BY 2 DESC, 1
                """, arguments: [since]).map { (version: $0[0], transitions: $0[1]) }
        }
    }
}
