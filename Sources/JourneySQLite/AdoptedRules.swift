public import Foundation
import GRDB
public import JourneyStorage

extension SQLiteStore {
    /// Records `text` (already validated by the caller) as the rule set every caller uses from now on.
    ///
    /// Adopting is an act with a date, so adopting the same text again adds a row too.
    /// - throws: ``StorageError`` when SQLite fails or the file was opened read-only.
    public func adoptRules(version: String, text: String, source: String, now: Date) async throws(StorageError) -> AdoptedRules {
        try await immediateWrite { db in
            try db.execute(
                sql: "INSERT INTO journey_rules(version, text, source, adopted_at) VALUES (?, ?, ?, ?)",
                arguments: [version, text, source, now])
            return AdoptedRules(id: db.lastInsertedRowID, version: version, text: text, source: source, adoptedAt: now)
        }
    }

    /// The rule set in force: the latest adoption, or nil when none was ever adopted.
    public func adoptedRules() async throws(StorageError) -> AdoptedRules? {
        try await read { db in
            try AdoptedRules.fetchOne(db, sql: "SELECT * FROM journey_rules ORDER BY id DESC LIMIT 1")
        }
    }

    /// Transitions recorded at or after `since`, counted per `rules_version`, most used first.
    public func rulesVersions(since: Date) async throws(StorageError) -> [(version: String, transitions: Int)] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT rules_version, COUNT(*) FROM journey_transitions WHERE created_at >= ?
                    GROUP BY rules_version ORDER BY 2 DESC, 1
                    """, arguments: [since]
            ).map { (version: $0[0], transitions: $0[1]) }
        }
    }
}
