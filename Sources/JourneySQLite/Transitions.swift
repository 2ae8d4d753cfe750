public import Foundation
import GRDB
import GRDBSQLite
public import JourneyCore
public import JourneyStorage
import Synchronization

extension SQLiteStore {
    /// One decision, one write (``JourneyStore/decide(user:now:rulesVersion:source:_:)``): the
    /// snapshot, the decision and the user's moves in one IMMEDIATE transaction, so the stage
    /// decided on is the stage replaced.
    ///
    /// - throws: ``StorageError/unknownUser(id:)``; ``StorageError/writeRefused(userID:message:)``
    ///   when the database refuses the user's row (the transaction rolls back: nothing is written).
    public func decide<Decision: Sendable>(
        user: Int64, now: Date, rulesVersion: String, source: TransitionSource,
        _ decide: @Sendable (UserSnapshot) -> (transitions: [Transition], decision: Decision)
    ) async throws(StorageError) -> (snapshot: UserSnapshot, decision: Decision, recorded: [RecordedTransition]) {
        try await immediateWrite { db in
            let snapshot = try Self.snapshot(db, user: user, now: now)
            let (transitions, decision) = decide(snapshot)
            guard !transitions.isEmpty else { return (snapshot, decision, []) }
            let move = PendingMove(userID: user, expectedStage: snapshot.storedStage, transitions: transitions, metrics: snapshot.metrics)
            do {
                let recorder = try MoveWriter(db)
                let seq = try recorder.lastSeq(of: user, db)
                return (snapshot, decision, try recorder.record(move, after: seq, rulesVersion: rulesVersion, source: source, now: now, db))
            } catch let error as DatabaseError where Self.refusesOneRow(error) {
                throw StorageError.writeRefused(userID: user, message: error.message ?? "\(error.resultCode)")
            }
        }
    }

    /// Stores `moves` in one transaction: each user's new stage, `last_journey_update`, and one
    /// `journey_transitions` row per move, only where the stored stage is still `expectedStage`
    /// and no pin holds the user. A row the database refuses is left out alone and listed in
    /// ``PersistResult/refused``; the others are written.
    ///
    /// The moves are written set-based: each statement reads, inserts or updates up to 256 users'
    /// rows (`MoveWriter.blockSizes`; `RETURNING` and `UPDATE … FROM`, SQLite 3.35 or later). In
    /// a C prototype of these statements, 7.0 µs a move against 12.0 µs one row at a time; in
    /// `journey batch` at 100k users, writing 0.89–1.04 s against 1.05–1.19 s (Benchmarks/HISTORY.md,
    /// "Issue 16, third pass"). Moves that name one user twice are written a user at a time, in
    /// order, so that the second move's compare-and-set sees the first.
    ///
    /// The moves are written under one savepoint, not one per user: a savepoint copies every page
    /// it first changes to a sub-journal, which cost a large part of the batch's writing
    /// (Benchmarks/HISTORY.md, "Issue 16, first pass"). When the database refuses a row, that
    /// savepoint rolls back and the moves are written again a user per savepoint, so that only the
    /// refused rows are left out.
    ///
    /// - throws: ``StorageError`` when SQLite fails otherwise; nothing is written then.
    /// - parameter progress: a batch run's progress before these moves, recorded with them in the same transaction.
    public func persist(_ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, progress: BatchProgress? = nil)
        async throws(StorageError) -> PersistResult
    {
        let rolledBack = RolledBackMoves()
        var (result, committing, checkpointing) = try await timedImmediateWrite { db in
            let (left, userByUser) = rolledBack.state
            let moves = left.isEmpty ? moves : moves.filter { left[$0.userID] == nil }
            // Cached, unlike `Database.inSavepoint`'s statements, which are prepared on every call.
            let savepoint = try db.cachedStatement(sql: "SAVEPOINT journey_moves")
            let release = try db.cachedStatement(sql: "RELEASE journey_moves")
            let rollback = try db.cachedStatement(sql: "ROLLBACK TO journey_moves")
            var result: PersistResult
            do {
                if userByUser {
                    var recorder = try MoveWriter(db, fresh: true)
                    result = try recorder.write(moves, rulesVersion: rulesVersion, source: source, now: now, eachInSavepoint: true, db)
                } else {
                    try savepoint.execute()
                    do {
                        var recorder = try MoveWriter(db)
                        result =
                            try recorder.writeInSets(moves, rulesVersion: rulesVersion, source: source, now: now, db)
                            ?? recorder.write(moves, rulesVersion: rulesVersion, source: source, now: now, eachInSavepoint: false, db)
                        try release.execute()
                    } catch let error as DatabaseError where Self.refusesOneRow(error) {
                        guard db.isInsideTransaction else { throw TransactionRolledBack() }
                        try rollback.execute()
                        try release.execute()
                        var recorder = try MoveWriter(db, fresh: true)
                        result = try recorder.write(moves, rulesVersion: rulesVersion, source: source, now: now, eachInSavepoint: true, db)
                    }
                }
            } catch let error as TransactionRolledBack {
                rolledBack.note(error)
                throw error
            }
            result.refused.merge(left) { written, _ in written }
            if let progress { try Self.record(progress, recorded: result.recorded.count, db) }
            return result
        }
        (result.committing, result.checkpointing) = (committing, checkpointing)
        return result
    }

    /// What the attempts of one ``persist(_:rulesVersion:source:now:progress:)`` learned from
    /// transactions the database rolled back whole (a trigger's `RAISE(ROLLBACK)`): after the
    /// first, the moves are written a user at a time, and each user whose write rolled it back is
    /// left out of the next attempt, refused with the database's message. The attempts run one
    /// after another on the writer's queue; the lock only makes that visible to the compiler.
    private final class RolledBackMoves: Sendable {
        private let value = Mutex((left: [Int64: String](), userByUser: false))

        var state: (left: [Int64: String], userByUser: Bool) { value.withLock { $0 } }

        func note(_ rolledBack: TransactionRolledBack) {
            value.withLock { state in
                state.userByUser = true
                if let user = rolledBack.userID { state.left[user] = rolledBack.message }
            }
        }
    }

    /// The statements that record users' moves, prepared once per transaction.
    private struct MoveWriter {
        static let insertSQL = """
            INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        static let updateSQL = "UPDATE users SET customer_journey_state = ?, last_journey_update = ? WHERE id = ?"
        /// The compare-and-set's read, in one statement: the stored stage, whether a pin holds the
        /// user, and the user's last `seq`.
        let current: Statement
        let insert: Statement
        let update: Statement

        /// With `fresh`, after a statement failed: a failed statement reports its error again on its
        /// next reset (GRDB surfaces it), so no poisoned one is left in the cache for later calls.
        init(_ db: Database, fresh: Bool = false) throws {
            if fresh { db.clearSchemaCache() }
            current = try db.cachedStatement(
                sql: """
                    SELECT u.customer_journey_state, pin.user_id IS NOT NULL,
                           (SELECT COALESCE(MAX(seq), 0) FROM journey_transitions t WHERE t.user_id = u.id)
                    FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id WHERE u.id = ?
                    """)
            insert = try db.cachedStatement(sql: Self.insertSQL)
            update = try db.cachedStatement(sql: Self.updateSQL)
        }

        /// The user's last recorded `seq` (0 before any move).
        func lastSeq(of user: Int64, _ db: Database) throws -> Int {
            try read(user, db: db)?.lastSeq ?? 0
        }

        /// The compare-and-set's read of `user`: the stored stage as ``UserSnapshot/storedStage``
        /// gives it, whether a pin holds the user, the last `seq`; nil when there is no such user.
        func read(_ user: Int64, db: Database) throws -> (stage: String, pinned: Bool, lastSeq: Int)? {
            let statement = RawStep(current, db)
            defer { statement.reset() }
            statement.bind(1, user)
            guard try statement.step() else { return nil }
            return (
                UserSnapshot.storedStage(DatabaseValue(sqliteStatement: statement.handle, index: 0)),
                sqlite3_column_int64(statement.handle, 1) != 0, Int(sqlite3_column_int64(statement.handle, 2))
            )
        }

        /// The compare-and-set of every move, then its writes. With `eachInSavepoint`, each user's
        /// writes run in a savepoint of their own, and a row the database refuses is rolled back
        /// alone and listed in ``PersistResult/refused``; without, the refusal is thrown.
        mutating func write(
            _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date,
            eachInSavepoint: Bool, _ db: Database
        ) throws -> PersistResult {
            var result = PersistResult()
            let savepoint = try db.cachedStatement(sql: "SAVEPOINT journey_user")
            let release = try db.cachedStatement(sql: "RELEASE journey_user")
            let rollback = try db.cachedStatement(sql: "ROLLBACK TO journey_user")
            for move in moves where !move.transitions.isEmpty {
                guard let row = try read(move.userID, db: db), row.stage == move.expectedStage else {
                    result.conflicted.append(move.userID)
                    continue
                }
                if row.pinned {
                    result.pinned.append(move.userID)
                    continue
                }
                let seq = row.lastSeq
                guard eachInSavepoint else {
                    result.recorded += try record(move, after: seq, rulesVersion: rulesVersion, source: source, now: now, db)
                    continue
                }
                try savepoint.execute()
                do {
                    result.recorded += try record(move, after: seq, rulesVersion: rulesVersion, source: source, now: now, db)
                    try release.execute()
                } catch let error as DatabaseError where SQLiteStore.refusesOneRow(error) {
                    let message = error.message ?? "\(error.resultCode)"
                    guard db.isInsideTransaction else { throw TransactionRolledBack(userID: move.userID, message: message) }
                    try rollback.execute()
                    try release.execute()
                    result.refused[move.userID] = message
                    self = try MoveWriter(db, fresh: true)
                }
            }
            return result
        }

        /// The rows per statement of the set-based writes, largest first: a run of moves is cut
        /// into the largest blocks that fit (700 rows: 256, 256, 64, 64, 16, 16, 16, 4, 4, 4), so
        /// that five statements of each kind are prepared, not one per length. 256 rows per
        /// statement wrote as fast as 500 (7.0 against 6.9 µs a move, C API, 100k-user file).
        static let blockSizes = [256, 64, 16, 4, 1]

        /// `n` numbered parameters' worth of SQL, `?first` to `?(first + n - 1)`, `width` to a row.
        private static func rows(_ n: Int, width: Int, first: Int, _ row: ([Int]) -> String) -> String {
            (0..<n).map { i in row((0..<width).map { first + i * width + $0 }) }.joined(separator: ", ")
        }

        /// The compare-and-set's read of up to `n` users at once, as ``read(_:db:)`` reads one:
        /// id, stored stage, whether a pin holds them, last `seq`.
        static let readSetSQL = Dictionary(
            uniqueKeysWithValues: blockSizes.map { n in
                let ids = rows(n, width: 1, first: 1) { "?\($0[0])" }
                return (
                    n,
                    """
                    SELECT u.id, u.customer_journey_state, pin.user_id IS NOT NULL,
                           (SELECT COALESCE(MAX(seq), 0) FROM journey_transitions t WHERE t.user_id = u.id)
                    FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id WHERE u.id IN (\(ids))
                    """
                )
            })
        /// `n` transition rows at once: `?1` rules version, `?2` source, `?3` `created_at`, then per
        /// row user, seq, from, to, reason, metrics. Returns each row's id with its user and seq.
        static let insertSetSQL = Dictionary(
            uniqueKeysWithValues: blockSizes.map { n in
                let values = rows(n, width: 6, first: 4) { p in "(?\(p[0]), ?\(p[1]), ?\(p[2]), ?\(p[3]), ?\(p[4]), ?1, ?\(p[5]), ?2, ?3)" }
                return (
                    n,
                    """
                    INSERT INTO journey_transitions(user_id, seq, from_state, to_state, reason, rules_version, metrics, source, created_at)
                    VALUES \(values) RETURNING id, user_id, seq
                    """
                )
            })
        /// `n` users' new stages at once: `?1` `last_journey_update`, then per user id and stage.
        static let updateSetSQL = Dictionary(
            uniqueKeysWithValues: blockSizes.map { n in
                let values = rows(n, width: 2, first: 2) { p in "(?\(p[0]), ?\(p[1]))" }
                return (
                    n,
                    """
                    WITH journey_moved(id, stage) AS (VALUES \(values))
                    UPDATE users SET customer_journey_state = journey_moved.stage, last_journey_update = ?1
                    FROM journey_moved WHERE users.id = journey_moved.id
                    """
                )
            })

        /// `count` items cut into blocks of ``blockSizes``, in order.
        static func blocks(_ count: Int) -> [Range<Int>] {
            var blocks: [Range<Int>] = []
            var start = 0
            while start < count, let size = blockSizes.first(where: { $0 <= count - start }) {
                blocks.append(start..<start + size)
                start += size
            }
            return blocks
        }

        /// ``write(_:rulesVersion:source:now:eachInSavepoint:_:)`` without savepoints, set-based:
        /// the compare-and-set reads of all the moves, then their transition rows, then the users'
        /// new stages, each in statements of up to 256 rows. Nil, having written nothing, when
        /// `moves` names a user twice.
        ///
        /// - throws: `DatabaseError`, the refusal of any row included: nothing of the block is
        ///   written then, and the caller rolls back the rest.
        func writeInSets(
            _ moves: [PendingMove], rulesVersion: String, source: TransitionSource, now: Date, _ db: Database
        ) throws -> PersistResult? {
            let moving = moves.filter { !$0.transitions.isEmpty }
            guard Set(moving.map(\.userID)).count == moving.count else { return nil }
            let stored = try Self.readSet(moving.map(\.userID), db)
            var result = PersistResult()
            // Every accepted move's rows in order, where each user's first row is, and each user's new stage.
            var rows: [RecordedTransition] = []
            var firstRow: [Int64: Int] = [:]
            var stages: [(user: Int64, stage: String, lastSeq: Int)] = []
            for move in moving {
                guard let row = stored[move.userID], row.stage == move.expectedStage else {
                    result.conflicted.append(move.userID)
                    continue
                }
                if row.pinned {
                    result.pinned.append(move.userID)
                    continue
                }
                firstRow[move.userID] = rows.count
                rows += Self.records(of: move, after: row.lastSeq, rulesVersion: rulesVersion, source: source, now: now)
                stages.append((move.userID, rows[rows.count - 1].to.rawValue, rows[rows.count - 1].seq))
            }
            let nowText = SQLTimestamp.text(now, milliseconds: true)
            for block in Self.blocks(rows.count) {
                let insert = RawStep(try db.cachedStatement(sql: Self.insertSetSQL[block.count]!), db)
                defer { insert.reset() }
                insert.bind(1, rulesVersion)
                insert.bind(2, source.rawValue)
                insert.bind(3, nowText)
                for (offset, record) in rows[block].enumerated() {
                    let first = Int32(4 + 6 * offset)
                    insert.bind(first, record.userID)
                    insert.bind(first + 1, Int64(record.seq))
                    insert.bind(first + 2, record.from.rawValue)
                    insert.bind(first + 3, record.to.rawValue)
                    insert.bind(first + 4, record.reason)
                    insert.bind(first + 5, record.metrics)
                }
                var stored = 0
                while try insert.step() {
                    let (id, user, seq) = (
                        sqlite3_column_int64(insert.handle, 0), sqlite3_column_int64(insert.handle, 1), Int(sqlite3_column_int64(insert.handle, 2))
                    )
                    guard let first = firstRow[user] else { continue }
                    rows[first + seq - rows[first].seq].id = id
                    stored += 1
                }
                // Fewer rows than moves: a trigger skipped some; the caller writes user by user to find them.
                if stored < block.count { throw Self.transitionIgnored }
            }
            for block in Self.blocks(stages.count) {
                let update = RawStep(try db.cachedStatement(sql: Self.updateSetSQL[block.count]!), db)
                defer { update.reset() }
                update.bind(1, nowText)
                for (offset, moved) in stages[block].enumerated() {
                    update.bind(Int32(2 + 2 * offset), moved.user)
                    update.bind(Int32(3 + 2 * offset), moved.stage)
                }
                _ = try update.step()
                // Fewer rows than users: a trigger ignored some; the caller writes user by user to find them.
                if update.changes < block.count { throw Self.updateIgnored }
            }
            // What was stored, read back in the same transaction: a trigger of the platform's that
            // wrote another stage, or took a transition row away, leaves a stage without its row
            // (SPEC §6); the caller then writes user by user to find whose.
            let written = try Self.readSet(stages.map(\.user), db)
            for moved in stages {
                guard let now = written[moved.user], now.stage == moved.stage, now.lastSeq == moved.lastSeq else { throw Self.writeAltered }
            }
            result.recorded = rows
            return result
        }

        /// The compare-and-set's read of `users` (``readSetSQL``, up to 256 a statement): each one's
        /// stored stage, whether a pin holds them, and their last `seq`, by id; a user with no row is
        /// absent. A duplicated id's first row counts, as in the one-user read.
        static func readSet(_ users: [Int64], _ db: Database) throws -> [Int64: (stage: String, pinned: Bool, lastSeq: Int)] {
            var stored: [Int64: (stage: String, pinned: Bool, lastSeq: Int)] = [:]
            stored.reserveCapacity(users.count)
            for block in blocks(users.count) {
                let read = RawStep(try db.cachedStatement(sql: readSetSQL[block.count]!), db)
                defer { read.reset() }
                for (offset, user) in users[block].enumerated() { read.bind(Int32(offset + 1), user) }
                while try read.step() {
                    let id = sqlite3_column_int64(read.handle, 0)
                    guard stored[id] == nil else { continue }
                    stored[id] = (
                        UserSnapshot.storedStage(DatabaseValue(sqliteStatement: read.handle, index: 1)),
                        sqlite3_column_int64(read.handle, 2) != 0, Int(sqlite3_column_int64(read.handle, 3))
                    )
                }
            }
            return stored
        }

        /// `move`'s transition rows as they will be stored, numbered after `seq` (the user's last),
        /// their ids not yet known (0).
        static func records(
            of move: PendingMove, after seq: Int, rulesVersion: String, source: TransitionSource, now: Date
        ) -> [RecordedTransition] {
            let metrics = move.metricsJSON(now: now)
            return move.transitions.enumerated().map { offset, transition in
                RecordedTransition(
                    id: 0, userID: move.userID, seq: seq + offset + 1, from: transition.from, to: transition.to,
                    reason: transition.reason, rulesVersion: rulesVersion, metrics: metrics, source: source, createdAt: now)
            }
        }

        /// Writes `move`'s transition rows (numbered after `seq`, the user's last) and the user's
        /// new stage, in a transaction that holds the write lock; returns the rows.
        func record(
            _ move: PendingMove, after seq: Int, rulesVersion: String, source: TransitionSource, now: Date,
            _ db: Database
        ) throws -> [RecordedTransition] {
            var records = Self.records(of: move, after: seq, rulesVersion: rulesVersion, source: source, now: now)
            // The text GRDB would store for `now`, without its DateFormatter (ICU), which took a
            // tenth of the batch's time for two values a move.
            let nowText = SQLTimestamp.text(now, milliseconds: true)
            let insert = RawStep(self.insert, db)
            defer { insert.reset() }
            for index in records.indices {
                let record = records[index]
                insert.reset()
                insert.bind(1, record.userID)
                insert.bind(2, Int64(record.seq))
                insert.bind(3, record.from.rawValue)
                insert.bind(4, record.to.rawValue)
                insert.bind(5, record.reason)
                insert.bind(6, record.rulesVersion)
                insert.bind(7, record.metrics)
                insert.bind(8, record.source.rawValue)
                insert.bind(9, nowText)
                _ = try insert.step()
                if insert.changes == 0 { throw Self.transitionIgnored }
                records[index].id = sqlite3_last_insert_rowid(insert.connection)
            }
            if let last = move.transitions.last {
                let update = RawStep(self.update, db)
                defer { update.reset() }
                update.bind(1, last.to.rawValue)
                update.bind(2, nowText)
                update.bind(3, move.userID)
                _ = try update.step()
                if update.changes == 0 { throw Self.updateIgnored }
                // Read back, as the set-based write does: a trigger that stored another stage, or
                // took the row away, refuses the move.
                guard let now = try read(move.userID, db: db), now.stage == last.to.rawValue, now.lastSeq == records[records.count - 1].seq
                else { throw Self.writeAltered }
            }
            return records
        }

        /// The refusal of a stage update that changed no row: a trigger of the platform's returned
        /// `RAISE(IGNORE)` (SQLite then skips the row without an error). Thrown as a constraint
        /// failure, so the user's move is rolled back and refused like any other refused row, and
        /// no transition is recorded for a stage that was not stored.
        static let updateIgnored = DatabaseError(
            resultCode: .SQLITE_CONSTRAINT, message: "the database did not store the new stage (a trigger skipped it)")

        /// The refusal of a move whose writes read back otherwise than written: a trigger of the
        /// platform's stored another stage, or took the transition row away. Refused as a
        /// constraint failure, like ``updateIgnored``.
        static let writeAltered = DatabaseError(
            resultCode: .SQLITE_CONSTRAINT, message: "the database did not store the stage and the transition row as written (a trigger changed them)")

        /// The same for a transition row a trigger skipped (`RAISE(IGNORE)` on inserts into
        /// `journey_transitions`): no stage is stored without its history row (SPEC §6).
        static let transitionIgnored = DatabaseError(
            resultCode: .SQLITE_CONSTRAINT, message: "the database did not store the transition row (a trigger skipped it)")
    }

    /// A cached GRDB statement bound and stepped through SQLite's C API, for the batch's per-row
    /// writes: GRDB's `execute(arguments:)` boxes every argument into a `DatabaseValue` array and
    /// validates it on each call. Through the C API, `journey batch` on the benchmark's 100k users spent
    /// 1.2 s writing instead of 1.6 s (same machine, three runs each; Benchmarks/HISTORY.md, "Issue 16,
    /// second pass"). Text is bound as a copy (`SQLITE_TRANSIENT`); nothing here reads
    /// `Statement.sql`, which GRDB trims through Foundation on every call.
    private struct RawStep {
        let handle: OpaquePointer
        let connection: OpaquePointer

        init(_ statement: Statement, _ db: Database) {
            handle = statement.sqliteStatement
            connection = db.sqliteConnection!
        }

        /// SQLite's `SQLITE_TRANSIENT`: copy the bound bytes before returning.
        private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

        func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
        /// Binds the text's UTF-8 bytes with their length (a C string would be copied first for a
        /// small or bridged string).
        func bind(_ index: Int32, _ value: String) {
            var value = value
            value.withUTF8 { bytes in _ = sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), Self.transient) }
        }

        /// Steps once: true with a row ready, false when done.
        ///
        /// - throws: `DatabaseError` with SQLite's code and message when the step fails (a
        ///   constraint, a trigger's `RAISE`, I/O).
        func step() throws -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            case let code:
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)),
                    sql: String(cString: sqlite3_sql(handle)))
            }
        }

        /// Ready for the next execution; bindings are replaced by the next ones.
        func reset() { sqlite3_reset(handle) }

        /// The rows the last step's INSERT, UPDATE or DELETE changed, not counting its triggers' (`sqlite3_changes`).
        var changes: Int { Int(sqlite3_changes(connection)) }
    }

    /// Whether SQLite refused one row (a constraint, a trigger's `RAISE`, a type a STRICT
    /// table rejects) rather than failed as a whole (I/O, a full disk, a lock).
    static func refusesOneRow(_ error: DatabaseError) -> Bool {
        [.SQLITE_CONSTRAINT, .SQLITE_MISMATCH, .SQLITE_TOOBIG].contains(error.resultCode)
    }

    /// A user's recorded moves, oldest first.
    ///
    /// - throws: ``StorageError/unknownUser(id:)`` when there is no such user.
    public func history(user: Int64) async throws(StorageError) -> [RecordedTransition] {
        try await read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [user]) != nil else {
                throw StorageError.unknownUser(id: user)
            }
            return
                try RecordedTransition
                .filter(sql: "user_id = ?", arguments: [user])
                .order(sql: "seq")
                .fetchAll(db)
        }
    }

    /// Holds `user` in their current stage until ``unpin(user:)``; returns the pinned stage as
    /// stored (empty for a user never evaluated, who is held in the first stage).
    public func pin(user: Int64, reason: String, now: Date) async throws(StorageError) -> String {
        try await immediateWrite { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT customer_journey_state FROM users WHERE id = ?", arguments: [user]) else {
                throw StorageError.unknownUser(id: user)
            }
            let stage = UserSnapshot.storedStage(row[0])
            try db.execute(
                sql: """
                    INSERT INTO journey_pins(user_id, stage, reason, created_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(user_id) DO UPDATE SET stage = excluded.stage, reason = excluded.reason, created_at = excluded.created_at
                    """, arguments: [user, stage, reason, now])
            return stage
        }
    }

    /// Releases a pin; returns whether there was one.
    public func unpin(user: Int64) async throws(StorageError) -> Bool {
        try await immediateWrite { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [user]) != nil else {
                throw StorageError.unknownUser(id: user)
            }
            try db.execute(sql: "DELETE FROM journey_pins WHERE user_id = ?", arguments: [user])
            return db.changesCount > 0
        }
    }
}
