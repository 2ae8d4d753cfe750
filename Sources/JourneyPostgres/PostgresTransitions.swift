import Foundation
import JourneyCore
import PostgresNIO

/// Who asked for a move; stored in `journey_transitions.source`.
public enum TransitionSource: String, Sendable, Codable {
    /// The in-process API (a host server).
    case api
    /// `journey evaluate` and friends.
    case cli
    /// The nightly batch.
    case batch
}

/// One row of `journey_transitions`: a move that was committed.
public struct RecordedTransition: Hashable, Sendable, Codable {
    /// The row's id: ids grow in commit order (the feed reads after an id).
    public var id: Int64
    /// The user who moved.
    public var userID: Int64
    /// The user's move number, from 1; `UNIQUE(user_id, seq)` refuses a move recorded twice.
    public var seq: Int
    /// The stage the move left.
    public var from: StageID
    /// The stage the move entered.
    public var to: StageID
    /// The edge's reason, from the rules.
    public var reason: String
    /// The `version` of the rule set that decided the move.
    public var rulesVersion: String
    /// The metrics the move was decided on, as a JSON object keyed by metric name (`jsonb` in the table).
    public var metrics: String
    /// Who asked for the move.
    public var source: TransitionSource
    /// When the move was committed (the clock's time).
    public var createdAt: Date
}

/// What a persist call did.
public struct PersistResult: Sendable {
    /// The rows written, ordered by user then `seq`, after the transaction committed.
    public var recorded: [RecordedTransition] = []
    /// Users whose stored stage changed since they were read (compare-and-set lost), or who are
    /// gone: re-read them.
    public var conflicted: [Int64] = []
    /// Users an operator pinned since they were read: left alone.
    public var pinned: [Int64] = []
}

extension PostgresStore {
    /// The advisory lock held from the first `journey_transitions` insert to the commit, so ids are
    /// handed out in commit order and a feed reader that has seen id n has seen every id below it.
    static let feedLockKey: Int64 = 0x6A6F_7572_6E65_7A

    /// Stores `moves` in one transaction: each user's new stage, `last_journey_update`, and one
    /// `journey_transitions` row per move, only where the stored stage is still `expectedStage`
    /// and no pin holds the user (compare-and-set on the users' rows, locked in id order).
    ///
    /// A chunk of any size takes five statements: lock and read the stages, read the pins, update
    /// the stages, insert the transitions, record the progress.
    ///
    /// - parameter progress: a batch shard's progress, recorded in the same transaction as these moves;
    ///   it also renews the worker's lease.
    /// - throws: ``PostgresStoreError/leaseLost(runID:shard:owner:)`` when `progress` names a shard this
    ///   worker no longer holds, or a server error (a duplicate `(user_id, seq)` among them); nothing is
    ///   written then.
    public func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: ShardProgress? = nil
    ) async throws(PostgresStoreError) -> PersistResult {
        try await transaction { connection in
            var result = PersistResult()
            let candidates = moves.filter { !$0.transitions.isEmpty }.sorted { $0.userID < $1.userID }
            let ids = candidates.map(\.userID)
            var stored: [Int64: String] = [:], pinned = Set<Int64>()
            if !ids.isEmpty {
                // The users' rows locked in id order (two writers never deadlock), then the pins read
                // by a statement of their own, which sees a pin committed while this one waited.
                for try await (id, stage) in try await connection.query("""
                    SELECT id::bigint, COALESCE(customer_journey_state::text, '') FROM users
                    WHERE id = ANY(\(ids)::bigint[]) ORDER BY id FOR UPDATE
                    """, logger: self.logger).decode((Int64, String).self) {
                    stored[id] = stage
                }
                for try await id in try await connection.query("""
                    SELECT user_id FROM journey_pins WHERE user_id = ANY(\(ids)::bigint[])
                    """, logger: self.logger).decode(Int64.self) {
                    pinned.insert(id)
                }
            }
            var users: [Int64] = [], steps: [Int32] = [], froms: [String] = [], tos: [String] = []
            var reasons: [String] = [], metrics: [String] = []
            var movedUsers: [Int64] = [], targets: [String] = []
            for move in candidates {
                guard stored[move.userID] == move.expectedStage else {
                    result.conflicted.append(move.userID)
                    continue
                }
                guard !pinned.contains(move.userID) else {
                    result.pinned.append(move.userID)
                    continue
                }
                movedUsers.append(move.userID)
                targets.append(move.transitions.last!.to.rawValue)
                // A second move of the same user in this call started from the stage this one leaves.
                stored[move.userID] = move.transitions.last!.to.rawValue
                let json = move.metrics.json(now: now)
                for (step, transition) in move.transitions.enumerated() {
                    users.append(move.userID)
                    steps.append(Int32(step + 1))
                    froms.append(transition.from.rawValue)
                    tos.append(transition.to.rawValue)
                    reasons.append(transition.reason)
                    metrics.append(json)
                }
            }
            if !movedUsers.isEmpty {
                try await connection.query("""
                    UPDATE users u SET customer_journey_state = m.target, last_journey_update = \(now)
                    FROM unnest(\(movedUsers)::bigint[], \(targets)::text[]) AS m(id, target)
                    WHERE u.id = m.id
                    """, logger: self.logger)
            }
            if !users.isEmpty {
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.feedLockKey))", logger: self.logger)
                let rows = try await connection.query("""
                    INSERT INTO journey_transitions (user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                    SELECT t.user_id, COALESCE((SELECT max(j.seq) FROM journey_transitions j WHERE j.user_id = t.user_id), 0) + t.step,
                           t.from_state, t.to_state, t.reason, \(rulesVersion), t.metrics::jsonb, \(source.rawValue), \(now)
                    FROM unnest(\(users)::bigint[], \(steps)::int[], \(froms)::text[], \(tos)::text[], \(reasons)::text[], \(metrics)::text[])
                         AS t(user_id, step, from_state, to_state, reason, metrics)
                    ORDER BY t.user_id, t.step
                    RETURNING id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at
                    """, logger: self.logger)
                result.recorded = try await Self.transitions(from: rows).sorted { ($0.userID, $0.seq) < ($1.userID, $1.seq) }
            }
            if let progress { try await self.record(progress, transitions: result.recorded.count, connection, now: now) }
            return result
        }
    }

    /// Decodes rows of `id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at`.
    static func transitions(from rows: PostgresRowSequence) async throws -> [RecordedTransition] {
        var recorded: [RecordedTransition] = []
        for try await (id, user, seq, from, to, reason, version, metrics, source, createdAt) in rows.decode((Int64, Int64, Int32, String, String, String, String, String, String, Date).self) {
            guard let source = TransitionSource(rawValue: source) else {
                throw PostgresStoreError.server(message: "journey_transitions row \(id) has the unknown source \(source)", sqlState: nil)
            }
            recorded.append(RecordedTransition(
                id: id, userID: user, seq: Int(seq), from: StageID(from), to: StageID(to), reason: reason,
                rulesVersion: version, metrics: metrics, source: source, createdAt: createdAt))
        }
        return recorded
    }

    /// A user's recorded moves, oldest first.
    ///
    /// - throws: ``PostgresStoreError/unknownUser(id:)`` when there is no such user.
    public func history(user: Int64) async throws(PostgresStoreError) -> [RecordedTransition] {
        try await withConnection { connection in
            guard try await !connection.query("SELECT 1 FROM users WHERE id = \(user)", logger: self.logger).collect().isEmpty else {
                throw PostgresStoreError.unknownUser(id: user)
            }
            return try await Self.transitions(from: connection.query("""
                SELECT id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at
                FROM journey_transitions WHERE user_id = \(user) ORDER BY seq
                """, logger: self.logger))
        }
    }

    /// Holds `user` in their current stage until ``unpin(user:)``; a second pin replaces the first.
    ///
    /// The user's row is locked first, so a move being persisted either commits before the pin (which
    /// then holds the new stage) or sees the pin and leaves the user alone.
    ///
    /// - parameter reason: why, for the next operator; must not be empty.
    /// - returns: the pinned stage, as stored (`""` for a never-evaluated user).
    /// - throws: ``PostgresStoreError/unknownUser(id:)``; a server error (CHECK) for an empty reason.
    public func pin(user: Int64, reason: String, now: Date) async throws(PostgresStoreError) -> String {
        try await transaction { connection in
            let rows = try await connection.query("""
                INSERT INTO journey_pins (user_id, stage, reason, created_at)
                SELECT id, COALESCE(customer_journey_state::text, ''), \(reason), \(now) FROM users WHERE id = \(user) FOR UPDATE
                ON CONFLICT (user_id) DO UPDATE SET stage = excluded.stage, reason = excluded.reason, created_at = excluded.created_at
                RETURNING stage
                """, logger: self.logger).collect()
            guard let row = rows.first else { throw PostgresStoreError.unknownUser(id: user) }
            return try row.decode(String.self)
        }
    }

    /// Releases a pin.
    ///
    /// - returns: whether there was one.
    /// - throws: ``PostgresStoreError/unknownUser(id:)`` when there is no such user.
    public func unpin(user: Int64) async throws(PostgresStoreError) -> Bool {
        try await transaction { connection in
            guard try await !connection.query("SELECT 1 FROM users WHERE id = \(user)", logger: self.logger).collect().isEmpty else {
                throw PostgresStoreError.unknownUser(id: user)
            }
            return try await !connection.query("DELETE FROM journey_pins WHERE user_id = \(user) RETURNING 1", logger: self.logger).collect().isEmpty
        }
    }
}
