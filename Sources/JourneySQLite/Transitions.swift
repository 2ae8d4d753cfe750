import Foundation
import GRDB
import JourneyCore

/// Who asked for a move; stored in `journey_transitions.source`.
public enum TransitionSource: String, Sendable, Codable {
    case api, cli, batch
}

/// One row of `journey_transitions`: a move that was committed.
public struct RecordedTransition: Hashable, Sendable, Codable, FetchableRecord, TableRecord {
    /// The table every move is recorded in (SPEC §3); its rows are the durable feed (SPEC §9).
    public static let databaseTableName = "journey_transitions"

    /// The row id: the feed's position. Ids grow in commit order, because SQLite has one writer at
    /// a time and the table is append-only (nothing deletes a transition).
    public var id: Int64
    /// The user who moved (`user_id`, a `users.id`).
    public var userID: Int64
    /// The user's move number, from 1; `UNIQUE(user_id, seq)` refuses a move recorded twice.
    public var seq: Int
    /// The stage left (`from_state`): the stored value the move started from, an alias already resolved.
    public var from: StageID
    /// The stage entered (`to_state`).
    public var to: StageID
    /// Why the user moved: the edge's declared `reason`, or `graduated to <stage>` (`reason`).
    public var reason: String
    /// The `version` of the rule set that decided the move (`rules_version`, SPEC §1).
    public var rulesVersion: String
    /// The metrics the move was decided on, as a JSON object.
    public var metrics: String
    /// Who asked for the move: the API, the command line or the nightly batch (`source`).
    public var source: TransitionSource
    /// When the move was committed: the writer's `now`, stored in `created_at` (UTC text in SQLite, SPEC §3;
    /// `timestamptz` in PostgreSQL);
    /// all rows of one persist call share it, as does the user's `last_journey_update`.
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, userID = "user_id", seq, from = "from_state", to = "to_state", reason
        case rulesVersion = "rules_version", metrics, source, createdAt = "created_at"
    }
}

extension StageID: DatabaseValueConvertible {}
extension TransitionSource: DatabaseValueConvertible {}

/// What a persist call did.
public struct PersistResult: Sendable {
    /// The rows written, in order, after the transaction committed.
    public var recorded: [RecordedTransition] = []
    /// Users whose stored stage changed since they were read (compare-and-set lost): re-read them.
    public var conflicted: [Int64] = []
    /// Users an operator pinned since they were read: left alone.
    public var pinned: [Int64] = []
    /// Users whose write the database refused (a constraint or trigger of the platform on
    /// `users`), with SQLite's message; nothing of theirs was written, the others' moves were.
    public var refused: [Int64: String] = [:]
}

extension SQLiteStore {
    /// Stores `moves` in one transaction: each user's new stage, `last_journey_update`, and one
    /// `journey_transitions` row per move, only where the stored stage is still `expectedStage`
    /// and no pin holds the user. Each user's writes run in a savepoint: a row the database
    /// refuses is rolled back alone and listed in ``PersistResult/refused``.
    ///
    /// - throws: ``StoreError`` when SQLite fails otherwise; nothing is written then.
    /// - parameter progress: a batch run's progress before these moves, recorded with them in the same transaction.
    public func persist(_ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: BatchProgress? = nil) async throws(StoreError) -> PersistResult {
        try await immediateWrite { db in
            var result = PersistResult()
            let current = try db.cachedStatement(sql: """
                SELECT u.customer_journey_state, pin.user_id IS NOT NULL
                FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id WHERE u.id = ?
                """)
            let lastSeq = try db.cachedStatement(sql: "SELECT COALESCE(MAX(seq), 0) FROM journey_transitions WHERE user_id = ?")
            let insertSQL = """
                INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
            let updateSQL = "UPDATE users SET customer_journey_state = ?, last_journey_update = ? WHERE id = ?"
            var insert = try db.cachedStatement(sql: insertSQL)
            var update = try db.cachedStatement(sql: updateSQL)
            // Cached, unlike `Database.inSavepoint`'s statements, which are prepared on every call.
            let savepoint = try db.cachedStatement(sql: "SAVEPOINT journey_user")
            let release = try db.cachedStatement(sql: "RELEASE journey_user")
            let rollback = try db.cachedStatement(sql: "ROLLBACK TO journey_user")
            for move in moves where !move.transitions.isEmpty {
                guard let row = try Row.fetchOne(current, arguments: [move.userID]),
                      UserSnapshot.storedStage(row[0]) == move.expectedStage else {
                    result.conflicted.append(move.userID)
                    continue
                }
                if row[1] as Bool {
                    result.pinned.append(move.userID)
                    continue
                }
                var seq = try Int.fetchOne(lastSeq, arguments: [move.userID]) ?? 0
                let snapshot = move.metrics.json(now: now)
                var records: [RecordedTransition] = []
                try savepoint.execute()
                do {
                    for transition in move.transitions {
                        seq += 1
                        var record = RecordedTransition(
                            id: 0, userID: move.userID, seq: seq, from: transition.from, to: transition.to,
                            reason: transition.reason, rulesVersion: rulesVersion, metrics: snapshot,
                            source: source, createdAt: now)
                        try insert.execute(arguments: [record.userID, record.seq, record.from, record.to, record.reason,
                                                       record.rulesVersion, record.metrics, record.source, record.createdAt])
                        record.id = db.lastInsertedRowID
                        records.append(record)
                    }
                    try update.execute(arguments: [move.transitions.last!.to, now, move.userID])
                    try release.execute()
                } catch let error as DatabaseError where Self.refusesOneRow(error) {
                    try rollback.execute()
                    try release.execute()
                    result.refused[move.userID] = error.message ?? "\(error.resultCode)"
                    // A statement that failed reports its error again on its next reset (GRDB surfaces
                    // it): fresh statements, and no poisoned one left in the cache for later calls.
                    db.clearSchemaCache()
                    insert = try db.cachedStatement(sql: insertSQL)
                    update = try db.cachedStatement(sql: updateSQL)
                    continue
                }
                result.recorded += records
            }
            if let progress { try Self.record(progress, recorded: result.recorded.count, db) }
            return result
        }
    }

    /// Whether SQLite refused one row (a constraint, a trigger's `RAISE`, a type a STRICT
    /// table rejects) rather than failed as a whole (I/O, a full disk, a lock).
    static func refusesOneRow(_ error: DatabaseError) -> Bool {
        [.SQLITE_CONSTRAINT, .SQLITE_MISMATCH, .SQLITE_TOOBIG].contains(error.resultCode)
    }

    /// A user's recorded moves, oldest first.
    ///
    /// - throws: ``StoreError/unknownUser(id:)`` when there is no such user.
    public func history(user: Int64) async throws(StoreError) -> [RecordedTransition] {
        try await read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [user]) != nil else {
                throw StoreError.unknownUser(id: user)
            }
            return try RecordedTransition
                .filter(sql: "user_id = ?", arguments: [user])
                .order(sql: "seq")
                .fetchAll(db)
        }
    }

    /// Holds `user` in their current stage until ``unpin(user:)``; returns the pinned stage as
    /// stored (empty for a user never evaluated, who is held in the first stage).
    public func pin(user: Int64, reason: String, now: Date) async throws(StoreError) -> String {
        try await immediateWrite { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = ?", arguments: [user]) else {
                throw StoreError.unknownUser(id: user)
            }
            let stage = UserSnapshot.storedStage(row[0])
            try db.execute(sql: """
                INSERT INTO journey_pins(user_id, stage, reason, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(user_id) DO UPDATE SET stage = excluded.stage, reason = excluded.reason, created_at = excluded.created_at
                """, arguments: [user, stage, reason, now])
            return stage
        }
    }

    /// Releases a pin; returns whether there was one.
    public func unpin(user: Int64) async throws(StoreError) -> Bool {
        try await immediateWrite { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [user]) != nil else {
                throw StoreError.unknownUser(id: user)
            }
            try db.execute(sql: "DELETE FROM journey_pins WHERE user_id = ?", arguments: [user])
            return db.changesCount > 0
        }
    }
}
