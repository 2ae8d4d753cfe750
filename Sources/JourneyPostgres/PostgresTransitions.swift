public import Foundation
public import JourneyCore
public import JourneyStorage
import PostgresNIO

extension PostgresStore {
    /// The advisory lock held from the first `journey_transitions` insert to the commit, so ids are
    /// handed out in commit order and a feed reader that has seen id n has seen every id below it.
    static let feedLockKey: Int64 = 0x6A6F_7572_6E65_7A

    /// One decision, one write (``JourneyStore/decide(user:now:rulesVersion:source:_:)``): the user's
    /// row locked `FOR UPDATE`, the snapshot read after the lock in the same transaction, the
    /// decision, and the user's moves, all in one transaction. A writer that holds the row (another
    /// `decide`, a batch chunk, a pin) is waited for, so the stage decided on is the stage replaced:
    /// nothing is compared-and-set, nothing retried.
    ///
    /// - throws: ``StorageError/unknownUser(id:)``; ``StorageError/writeRefused(userID:message:)``
    ///   when the database refuses the user's row (the transaction rolls back: nothing is written);
    ///   ``StorageError/readOnly(location:)`` on a read-only store, even when nothing would move.
    public func decide<Decision: Sendable>(
        user: Int64, now: Date, rulesVersion: String, source: TransitionSource,
        _ decide: @Sendable (UserSnapshot) -> (transitions: [Transition], decision: Decision)
    ) async throws(StorageError) -> (snapshot: UserSnapshot, decision: Decision, recorded: [RecordedTransition]) {
        let answer = try await transaction { connection in
            guard try await !connection.query("SELECT 1 FROM users WHERE id = \(user) FOR UPDATE", logger: self.logger).collect().isEmpty else {
                throw StorageError.unknownUser(id: user)
            }
            let snapshot = try await self.snapshot(user: user, now: now, on: connection)
            let (transitions, decision) = decide(snapshot)
            guard !transitions.isEmpty else { return (snapshot: snapshot, decision: decision, recorded: [RecordedTransition]()) }
            let move = PendingMove(userID: user, expectedStage: snapshot.storedStage, transitions: transitions, metrics: snapshot.metrics)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.feedLockKey))", logger: self.logger)
                return (
                    snapshot: snapshot, decision: decision,
                    recorded: try await self.write([move], rulesVersion: rulesVersion, source: source, now: now, connection)
                )
            } catch {
                let (refused, message) = PostgresStoreError.refusesOneRow(error)
                if refused { throw StorageError.writeRefused(userID: user, message: message) }
                throw error
            }
        }
        if !answer.recorded.isEmpty { committed([user]) }
        return answer
    }

    /// Stores moves decided elsewhere (the batch) in one transaction: each user's new stage,
    /// `last_journey_update`, and one `journey_transitions` row per move, only where the stored stage
    /// is still `expectedStage` and no pin holds the user (compare-and-set on the users' rows, locked
    /// in id order). A row the database refuses is rolled back alone (a savepoint per user) and
    /// listed in ``PersistResult/refused``; the others are written.
    ///
    /// A chunk whose rows are all accepted takes a handful of statements whatever its size (lock and
    /// read the stages, read the pins, update the stages, insert the transitions, record the
    /// progress); only when the server refuses a row are the users written one savepoint each.
    ///
    /// - parameter progress: a batch run's progress, recorded and its lease renewed in the same transaction.
    /// - throws: ``StorageError/leaseLost(runID:)`` when `progress`'s lease was taken over (nothing is
    ///   written); any other failure of the database as a whole.
    public func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: BatchProgress? = nil
    ) async throws(StorageError) -> PersistResult {
        try await persist(moves, rulesVersion: rulesVersion, source: source, now: now, record: progress.map(Progress.run))
    }

    /// ``persist(_:rulesVersion:source:now:progress:)`` for one chunk of a shard of a sharded run:
    /// the shard's progress is recorded, and the worker's lease renewed, in the same transaction.
    ///
    /// - throws: ``StorageError/leaseLost(runID:)`` when another worker holds the shard now (nothing is written).
    public func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: ShardProgress
    ) async throws(StorageError) -> PersistResult {
        try await persist(moves, rulesVersion: rulesVersion, source: source, now: now, record: .shard(progress))
    }

    /// What a persist call records with its moves.
    enum Progress: Sendable {
        /// A run of the protocol's single-process lease.
        case run(BatchProgress)
        /// A shard of a sharded run.
        case shard(ShardProgress)
    }

    private func persist(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, record progress: Progress?
    ) async throws(StorageError) -> PersistResult {
        let result = try await transaction { connection in
            var result = PersistResult()
            let candidates = moves.filter { !$0.transitions.isEmpty }
            let ids = Array(Set(candidates.map(\.userID))).sorted()
            var stored: [Int64: String] = [:], pinned = Set<Int64>()
            if !ids.isEmpty {
                // The users' rows locked in id order (two writers never deadlock), then the pins read
                // by a statement of their own, which sees a pin committed while this one waited.
                for try await (id, stage) in try await connection.query(
                    """
                    SELECT id::bigint, COALESCE(customer_journey_state::text, '') FROM users
                    WHERE id = ANY(\(ids)::bigint[]) ORDER BY id FOR UPDATE
                    """, logger: self.logger
                ).decode((Int64, String).self) {
                    stored[id] = stage
                }
                for try await id in try await connection.query(
                    """
                    SELECT user_id FROM journey_pins WHERE user_id = ANY(\(ids)::bigint[])
                    """, logger: self.logger
                ).decode(Int64.self) {
                    pinned.insert(id)
                }
            }
            var accepted: [PendingMove] = []
            for move in candidates {
                guard stored[move.userID] == move.expectedStage else {
                    result.conflicted.append(move.userID)
                    continue
                }
                guard !pinned.contains(move.userID) else {
                    result.pinned.append(move.userID)
                    continue
                }
                accepted.append(move)
                // A second move of the same user in this call starts from the stage this one enters.
                stored[move.userID] = move.transitions.last!.to.rawValue
            }
            if !accepted.isEmpty {
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.feedLockKey))", logger: self.logger)
                try await connection.query("SAVEPOINT journey_chunk", logger: self.logger)
                do {
                    result.recorded = try await self.write(accepted, rulesVersion: rulesVersion, source: source, now: now, connection)
                    try await connection.query("RELEASE SAVEPOINT journey_chunk", logger: self.logger)
                } catch let error where PostgresStoreError.refusesOneRow(error).refused {
                    // One row refused: every move again, in order, each in a savepoint of its own (as
                    // SQLite does); a later move of a refused user finds its stage unchanged: conflicted.
                    try await connection.query("ROLLBACK TO SAVEPOINT journey_chunk", logger: self.logger)
                    for move in accepted {
                        if result.refused[move.userID] != nil {
                            result.conflicted.append(move.userID)
                            continue
                        }
                        try await connection.query("SAVEPOINT journey_user", logger: self.logger)
                        do {
                            result.recorded += try await self.write([move], rulesVersion: rulesVersion, source: source, now: now, connection)
                            try await connection.query("RELEASE SAVEPOINT journey_user", logger: self.logger)
                        } catch {
                            let (refused, message) = PostgresStoreError.refusesOneRow(error)
                            guard refused else { throw error }
                            try await connection.query("ROLLBACK TO SAVEPOINT journey_user", logger: self.logger)
                            result.refused[move.userID] = message
                        }
                    }
                }
            }
            switch progress {
            case .run(let progress)?: try await self.record(progress, recorded: result.recorded.count, connection)
            case .shard(let progress)?: try await self.record(progress, transitions: result.recorded.count, connection, now: progress.now ?? now)
            case nil: break
            }
            return result
        }
        committed(result.recorded.map(\.userID))
        return result
    }

    /// Writes `moves` (their users locked, their stages checked) in two statements: the users' new
    /// stages, then every transition row, numbered after each user's last `seq`. The caller holds
    /// the feed's advisory lock.
    ///
    /// - returns: the rows written, in the order of `moves` (which is their ids' order too, as on SQLite).
    func write(
        _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date,
        _ connection: PostgresConnection
    ) async throws -> [RecordedTransition] {
        var users: [Int64] = [], steps: [Int32] = [], ordinals: [Int32] = [], froms: [String] = [], tos: [String] = []
        var reasons: [String] = [], metrics: [String] = []
        var targets: [Int64: String] = [:], order: [Int64] = []
        var step: [Int64: Int32] = [:]
        for (ordinal, move) in moves.enumerated() {
            if targets[move.userID] == nil { order.append(move.userID) }
            targets[move.userID] = move.transitions.last!.to.rawValue
            let json = move.metricsJSON(now: now)
            for transition in move.transitions {
                step[move.userID, default: 0] += 1
                users.append(move.userID)
                steps.append(step[move.userID]!)
                ordinals.append(Int32(ordinal))
                froms.append(transition.from.rawValue)
                tos.append(transition.to.rawValue)
                reasons.append(transition.reason)
                metrics.append(json)
            }
        }
        guard !users.isEmpty else { return [] }
        let stages = order.map { targets[$0]! }
        var updated = Set<Int64>()
        for try await id in try await connection.query(
            """
            UPDATE users u SET customer_journey_state = m.target\(unescaped: userColumnWrites.stageCast),
                last_journey_update = \(unescaped: userColumnWrites.lastUpdate("m_at.at"))
            FROM unnest(\(order)::bigint[], \(stages)::text[]) AS m(id, target), (SELECT \(now)::timestamptz AS at) AS m_at(at)
            WHERE u.id = m.id
            RETURNING u.id::bigint
            """, logger: logger
        ).decode(Int64.self) {
            updated.insert(id)
        }
        // A trigger of the platform's that returns NULL skips the row without an error: no move is
        // recorded for a stage that was not stored; the caller finds whose, a user at a time.
        if updated.count < order.count { throw PostgresStoreError.writeIgnored(what: "the new stage (a trigger skipped it)") }
        let rows = try await connection.query(
            """
            INSERT INTO journey_transitions (user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
            SELECT t.user_id, COALESCE((SELECT max(j.seq) FROM journey_transitions j WHERE j.user_id = t.user_id), 0) + t.step,
                   t.from_state, t.to_state, t.reason, \(rulesVersion), t.metrics::jsonb, \(source.rawValue), \(now)
            FROM unnest(\(users)::bigint[], \(steps)::int[], \(ordinals)::int[], \(froms)::text[], \(tos)::text[], \(reasons)::text[],
                        \(metrics)::text[]) AS t(user_id, step, ordinal, from_state, to_state, reason, metrics)
            ORDER BY t.ordinal, t.step
            RETURNING id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at
            """, logger: logger)
        let recorded = try await Self.transitions(from: rows)
        // As for the stages: no stage is stored without its history row (SPEC §6).
        if recorded.count < users.count { throw PostgresStoreError.writeIgnored(what: "the transition row (a trigger skipped it)") }
        // What was stored, read back in the same transaction: a trigger of the platform's that
        // stored another stage (a BEFORE trigger changing NEW, an AFTER trigger writing again) or
        // took a transition row away leaves a stage without its row.
        var lastSeq: [Int64: Int] = [:]
        for row in recorded { lastSeq[row.userID] = max(lastSeq[row.userID] ?? 0, row.seq) }
        for try await (id, stage, seq) in try await connection.query(
            """
            SELECT u.id::bigint, COALESCE(u.customer_journey_state::text, ''),
                   COALESCE((SELECT max(t.seq) FROM journey_transitions t WHERE t.user_id = u.id), 0)
            FROM users u WHERE u.id = ANY(\(order)::bigint[])
            """, logger: logger
        ).decode((Int64, String, Int32).self) where stage != targets[id] || Int(seq) != lastSeq[id] {
            throw PostgresStoreError.writeIgnored(what: "the stage and the transition row as written (a trigger changed them)")
        }
        return recorded.sorted { $0.id < $1.id }
    }

    /// Decodes rows of `id, user_id, seq, from_state, to_state, reason, rules_version, metrics::text, source, created_at`.
    static func transitions(from rows: PostgresRowSequence) async throws -> [RecordedTransition] {
        var recorded: [RecordedTransition] = []
        for try await (id, user, seq, from, to, reason, version, metrics, source, createdAt) in rows.decode(
            (Int64, Int64, Int32, String, String, String, String, String, String, Date).self)
        {
            guard let source = TransitionSource(rawValue: source) else {
                throw PostgresStoreError.server(message: "journey_transitions row \(id) has the unknown source \(source)", sqlState: nil)
            }
            recorded.append(
                RecordedTransition(
                    id: id, userID: user, seq: Int(seq), from: StageID(from), to: StageID(to), reason: reason,
                    rulesVersion: version, metrics: metrics, source: source, createdAt: createdAt))
        }
        return recorded
    }

    /// A user's recorded moves, oldest first.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    public func history(user: Int64) async throws(StorageError) -> [RecordedTransition] {
        try await withConnection { connection in
            guard try await !connection.query("SELECT 1 FROM users WHERE id = \(user)", logger: self.logger).collect().isEmpty else {
                throw StorageError.unknownUser(id: user)
            }
            return try await Self.transitions(
                from: connection.query(
                    """
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
    /// - throws: ``StorageError/unknownUser(id:)``; `failed` (a CHECK) for an empty reason.
    public func pin(user: Int64, reason: String, now: Date) async throws(StorageError) -> String {
        let stage = try await transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO journey_pins (user_id, stage, reason, created_at)
                SELECT id, COALESCE(customer_journey_state::text, ''), \(reason), \(now) FROM users WHERE id = \(user) FOR UPDATE
                ON CONFLICT (user_id) DO UPDATE SET stage = excluded.stage, reason = excluded.reason, created_at = excluded.created_at
                RETURNING stage
                """, logger: self.logger
            ).collect()
            guard let row = rows.first else { throw StorageError.unknownUser(id: user) }
            return try row.decode(String.self)
        }
        committed([user])
        return stage
    }

    /// Releases a pin.
    ///
    /// - returns: whether there was one.
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    public func unpin(user: Int64) async throws(StorageError) -> Bool {
        let released = try await transaction { connection in
            guard try await !connection.query("SELECT 1 FROM users WHERE id = \(user)", logger: self.logger).collect().isEmpty else {
                throw StorageError.unknownUser(id: user)
            }
            return try await !connection.query("DELETE FROM journey_pins WHERE user_id = \(user) RETURNING 1", logger: self.logger).collect().isEmpty
        }
        if released { committed([user]) }
        return released
    }
}
