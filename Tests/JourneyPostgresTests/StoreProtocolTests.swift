import Foundation
import JourneyCore
import JourneyStorage
import PostgresNIO
import Synchronization
import Testing

@testable import JourneyPostgres

/// What the storage protocol promises, on PostgreSQL: one decision one write, compare-and-set with
/// refused rows, read-only stores, the feed of moves, pins and adoptions, the batch lease, reports.
@Suite("PostgreSQL store protocol", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct StoreProtocolTests {
    static let toActive = Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "active")

    /// Ten users in J1, signed up on 2025-01-01, with one post each.
    static func withUsers(_ body: (ScratchDatabase, PostgresStore) async throws -> Void) async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.withStore { store in
                try await scratch.execute(
                    "INSERT INTO users (id, email, created_at) SELECT n, 'u' || n, '2025-01-01' FROM generate_series(1, 10) n",
                    "INSERT INTO posts (user_id) SELECT n FROM generate_series(1, 10) n")
                try await body(scratch, store)
            }
        }
    }

    /// One step along S0 → S1 → … → S9 from the snapshot's stage; none past S9.
    static func oneStep(_ snapshot: UserSnapshot) -> (transitions: [Transition], decision: String) {
        guard let index = Int(snapshot.storedStage.dropFirst()), index < 9 else { return ([], snapshot.storedStage) }
        let next = "S\(index + 1)"
        return ([Transition(from: StageID(snapshot.storedStage), to: StageID(next), kind: .next, reason: "step")], next)
    }

    /// Eight deciders on four connection pools (four processes, as far as the server can tell) step
    /// one user at once, 24 times: each decision is made on the stage it replaces, so the history is
    /// one unbroken chain S0 → S9, each move recorded once, none decided on a stage already left.
    @Test func decideUnderConcurrentWritersNeverMovesTwiceNorStale() async throws {
        try await Self.withUsers { scratch, store in
            try await scratch.execute("UPDATE users SET customer_journey_state = 'S0' WHERE id = 1")
            var stores = [store]
            for _ in 0..<3 { stores.append(try await PostgresStore.open(url: scratch.url)) }
            let pools = stores
            let answers = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var moved: [String] = []
                        for _ in 0..<3 {
                            let answer = try await pools[worker % 4].decide(user: 1, now: TestServer.now, rulesVersion: "v", source: .api) { Self.oneStep($0) }
                            moved += answer.recorded.map(\.to.rawValue)
                            // What was decided is what was recorded, from the stage the snapshot read.
                            #expect(answer.recorded.first.map { $0.from.rawValue == answer.snapshot.storedStage } ?? true)
                        }
                        return moved
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            for pool in pools.dropFirst() { await pool.close() }
            #expect(answers.sorted() == (1...9).map { "S\($0)" })
            let history = try await store.history(user: 1)
            #expect(history.map(\.seq) == Array(1...9))
            #expect(history.map(\.to.rawValue) == (1...9).map { "S\($0)" })
            #expect(zip(history, history.dropFirst()).allSatisfy { $0.to == $1.from })
            #expect(try await store.snapshot(user: 1, now: TestServer.now).storedStage == "S9")
        }
    }

    /// A decision sees a pin, and what it returns comes back untouched; an unknown user is named.
    @Test func decideReadsThePinAndHandsBackTheDecision() async throws {
        try await Self.withUsers { _, store in
            _ = try await store.pin(user: 2, reason: "VIP", now: TestServer.now)
            let pinned = try await store.decide(user: 2, now: TestServer.now, rulesVersion: "v", source: .api) { snapshot in
                (snapshot.pin == nil ? [Self.toActive] : [], snapshot.pin?.reason ?? "free")
            }
            #expect(pinned.decision == "VIP" && pinned.recorded.isEmpty)
            let free = try await store.decide(user: 3, now: TestServer.now, rulesVersion: "v", source: .cli) { snapshot in
                (snapshot.pin == nil ? [Self.toActive] : [], "moved")
            }
            #expect(free.decision == "moved" && free.recorded.map(\.to) == ["J2_ACTIVE_USER"] && free.recorded.first?.source == .cli)
            #expect(try await store.history(user: 3) == free.recorded)
            await #expect(throws: StorageError.unknownUser(id: 99)) {
                _ = try await store.decide(user: 99, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([], 0) }
            }
        }
    }

    /// A platform constraint refuses one user's row: `decide` writes nothing and says so; `persist`
    /// rolls that user back alone, lists it, and writes the others.
    @Test func aRefusedRowIsRolledBackAlone() async throws {
        try await Self.withUsers { scratch, store in
            try await scratch.execute(
                "ALTER TABLE users ADD CONSTRAINT platform_keeps_7 CHECK (id <> 7 OR customer_journey_state = 'J1_NEW_USER')")
            await #expect {
                _ = try await store.decide(user: 7, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
            } throws: { error in
                guard let error = error as? StorageError, case .writeRefused(7, let message) = error else { return false }
                return message.contains("platform_keeps_7") && error.category == .refused
            }
            #expect(try await store.history(user: 7).isEmpty)
            let metrics = try await store.snapshot(user: 6, now: TestServer.now).metrics
            // In the moves' order, as on SQLite: the rows and their ids.
            let moves = [8, 7, 6].map { PendingMove(userID: $0, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics) }
            let result = try await store.persist(moves, rulesVersion: "v", source: .batch, now: TestServer.now)
            #expect(result.recorded.map(\.userID) == [8, 6] && result.recorded[0].id < result.recorded[1].id)
            #expect(Array(result.refused.keys) == [7] && result.refused[7]!.contains("platform_keeps_7"))
            #expect(try await scratch.values("SELECT id FROM users WHERE customer_journey_state = 'J2_ACTIVE_USER' ORDER BY id", as: Int32.self) == [6, 8])
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 2)
            // A second move of a refused user, decided on the stage the first would have entered, finds it unchanged.
            let toPower = Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "power")
            let chained = try await store.persist(
                [
                    PendingMove(userID: 7, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics),
                    PendingMove(userID: 7, expectedStage: "J2_ACTIVE_USER", transitions: [toPower], metrics: metrics),
                ],
                rulesVersion: "v", source: .batch, now: TestServer.now)
            #expect(chained.recorded.isEmpty && chained.refused.keys.contains(7) && chained.conflicted == [7])
            // The platform's varchar(50) refuses a stage too long for it, for that user alone.
            try await scratch.execute("ALTER TABLE users ALTER COLUMN customer_journey_state TYPE varchar(50)")
            let long = Transition(from: "J1_NEW_USER", to: StageID(String(repeating: "X", count: 60)), kind: .next, reason: "long")
            let mixed = try await store.persist(
                [
                    PendingMove(userID: 9, expectedStage: "J1_NEW_USER", transitions: [long], metrics: metrics),
                    PendingMove(userID: 10, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics),
                ],
                rulesVersion: "v", source: .batch, now: TestServer.now)
            #expect(mixed.recorded.map(\.userID) == [10] && mixed.refused.keys.contains(9))
        }
    }

    /// Two moves of one user in one call, the second decided on the stage the first enters: both
    /// written, numbered one after the other.
    @Test func chainedMovesOfOneUserInOneCall() async throws {
        try await Self.withUsers { _, store in
            let metrics = try await store.snapshot(user: 1, now: TestServer.now).metrics
            let toPower = Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "power")
            let result = try await store.persist(
                [
                    PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics),
                    PendingMove(userID: 1, expectedStage: "J2_ACTIVE_USER", transitions: [toPower], metrics: metrics),
                ],
                rulesVersion: "v", source: .batch, now: TestServer.now)
            #expect(result.recorded.map(\.seq) == [1, 2] && result.conflicted.isEmpty)
            #expect(try await store.snapshot(user: 1, now: TestServer.now).storedStage == "J3_POWER_USER")
            // Rows come back, and get their ids, in the moves' order.
            let shuffled = try await store.persist(
                [5, 3, 4].map { PendingMove(userID: $0, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics) },
                rulesVersion: "v", source: .batch, now: TestServer.now)
            #expect(shuffled.recorded.map(\.userID) == [5, 3, 4] && shuffled.recorded.map(\.id) == shuffled.recorded.map(\.id).sorted())
        }
    }

    /// A read-only store reads, and refuses every write before the server sees it; the server
    /// refuses one anyway (`default_transaction_read_only`).
    @Test func aReadOnlyStoreRefusesEveryWrite() async throws {
        try await Self.withUsers { scratch, _ in
            try await scratch.withStore(mode: .readOnly) { store in
                #expect(store.isReadOnly && store.migration == nil)
                let snapshot = try await store.snapshot(user: 1, now: TestServer.now)
                #expect(snapshot.storedStage == "J1_NEW_USER")
                #expect(try await store.chunk(after: 0, limit: 5, now: TestServer.now).count == 5)
                #expect(try await store.funnel().map(\.count) == [10])
                let refused = StorageError.readOnly(location: store.location)
                let move = PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: snapshot.metrics)
                await #expect(throws: refused) {
                    _ = try await store.decide(user: 1, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
                }
                await #expect(throws: refused) { _ = try await store.persist([move], rulesVersion: "v", source: .batch, now: TestServer.now) }
                await #expect(throws: refused) { _ = try await store.pin(user: 1, reason: "x", now: TestServer.now) }
                await #expect(throws: refused) { _ = try await store.unpin(user: 1) }
                await #expect(throws: refused) { _ = try await store.adoptRules(version: "v", text: "x", source: "f", now: TestServer.now) }
                await #expect(throws: refused) { _ = try await store.repairCounters() }
                await #expect(throws: refused) {
                    _ = try await store.beginBatchRun(rulesVersion: "v", owner: "o", holder: "h", now: TestServer.now, leaseSeconds: 60, takeOver: false)
                }
                await #expect(throws: refused) { _ = try await store.joinOrStartRun(rulesVersion: "v", shardSize: 5, now: TestServer.now) }
                // The server's own refusal, for a statement that slipped past the store.
                await #expect(throws: refused) {
                    try await store.withConnection { connection in
                        _ = try await connection.query("UPDATE users SET email = 'x' WHERE id = 1", logger: TestServer.logger)
                    }
                }
                // The feed can still be followed, by LISTEN too (its poll is a minute apart).
                #expect(try await store.feedHead() == FeedCursor())
                let heard = Mutex(0)
                let watcher = Task { try await store.changeSignal(interval: .seconds(60)).watch { heard.withLock { $0 += 1 } } }
                try await Self.waitUntil { heard.withLock { $0 } == 1 }  // the call a watch makes as it starts
                try await Task.sleep(for: .milliseconds(300))
                try await scratch.execute("INSERT INTO journey_pins (user_id, stage, reason, created_at) VALUES (1, 'J1_NEW_USER', 'hold', now())")
                try await Self.waitUntil { heard.withLock { $0 } == 2 }
                watcher.cancel()
                try await watcher.value
            }
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 0)
            #expect(try await scratch.value("SELECT count(*) FROM users WHERE email = 'x'", as: Int64.self) == 0)
            #expect(try await scratch.value("SELECT count(*) FROM journey_pins", as: Int64.self) == 1)
        }
    }

    /// `changes(after:)` names the users moved, pinned and unpinned past a cursor, and a new adoption,
    /// whichever connection committed them; past the limit it gives up naming them.
    @Test func theFeedSeesMovesPinsAndAdoptions() async throws {
        try await Self.withUsers { scratch, store in
            let start = try await store.feedHead()
            #expect(start == FeedCursor())
            #expect(try await store.adoptedRules() == nil)
            try await scratch.withStore(mode: .requireMigrated) { other in
                _ = try await other.decide(user: 4, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
                _ = try await other.pin(user: 5, reason: "hold", now: TestServer.now)
                _ = try await other.pin(user: 5, reason: "hold still", now: TestServer.now)
                #expect(try await other.unpin(user: 5))
            }
            // A pin written by another application's SQL is an event too.
            try await scratch.execute("INSERT INTO journey_pins (user_id, stage, reason, created_at) VALUES (6, 'J1_NEW_USER', 'by hand', now())")
            let changes = try await store.changes(after: start, limit: 10)
            #expect(changes.touchedUsers == [4, 5, 6] && !changes.rulesAdopted)
            #expect(changes.cursor.transition == 1 && changes.cursor.pinEvent == 5)
            #expect(try await store.transitions(after: 0, limit: 10).map(\.userID) == [4])
            #expect(try await store.changes(after: start, limit: 2).touchedUsers == nil)
            #expect(try await store.changes(after: changes.cursor, limit: 10).touchedUsers == [])

            let adopted = try await store.adoptRules(version: "v2", text: "version: v2", source: "Rules/v2.yaml", now: TestServer.now)
            #expect(try await store.adoptedRules() == adopted)
            let after = try await store.changes(after: changes.cursor, limit: 10)
            #expect(after.rulesAdopted && after.touchedUsers == [] && after.cursor.adoptedRules == adopted.id)
            #expect(try await store.feedHead() == after.cursor)
            let counted = try await store.rulesVersions(since: TestServer.now.addingTimeInterval(-1))
            #expect(counted.map(\.version) == ["v"] && counted.map(\.transitions) == [1])
        }
    }

    /// The change signal fires within moments of a commit by another pool, by LISTEN (its poll is
    /// a minute apart), for a move, a pin and an adoption; it stops when its task is cancelled.
    @Test func theChangeSignalHearsOtherProcesses() async throws {
        try await Self.withUsers { scratch, store in
            let heard = Mutex(0)
            let watcher = Task {
                try await store.changeSignal(interval: .seconds(60)).watch { heard.withLock { $0 += 1 } }
            }
            try await Self.waitUntil { heard.withLock { $0 } == 1 }  // the call a watch makes as it starts
            try await Task.sleep(for: .milliseconds(300))  // LISTEN is in place
            try await scratch.withStore(mode: .requireMigrated) { other in
                _ = try await other.decide(user: 1, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
                try await Self.waitUntil { heard.withLock { $0 } >= 2 }
                _ = try await other.pin(user: 2, reason: "hold", now: TestServer.now)
                try await Self.waitUntil { heard.withLock { $0 } >= 3 }
                _ = try await other.adoptRules(version: "v2", text: "t", source: "s", now: TestServer.now)
                try await Self.waitUntil { heard.withLock { $0 } >= 4 }
            }
            watcher.cancel()
            try await watcher.value
        }
    }

    /// Without LISTEN (the notifying triggers dropped), the signal still fires, by polling.
    @Test func theChangeSignalFallsBackToPolling() async throws {
        try await Self.withUsers { scratch, store in
            try await scratch.execute("DROP TRIGGER journey_transitions_changes_notify ON journey_transitions")
            let heard = Mutex(0)
            let watcher = Task { try await store.changeSignal(interval: .milliseconds(100)).watch { heard.withLock { $0 += 1 } } }
            try await Self.waitUntil { heard.withLock { $0 } == 1 }  // the call a watch makes as it starts
            try await Task.sleep(for: .milliseconds(200))
            _ = try await store.decide(user: 1, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
            try await Self.waitUntil { heard.withLock { $0 } >= 2 }
            watcher.cancel()
            try await watcher.value
        }
    }

    /// Writes through the store are handed to `observeCommits` after their commit.
    @Test func observeCommitsHearsThisStoresWrites() async throws {
        try await Self.withUsers { scratch, store in
            let seen = Mutex<[Set<Int64>]>([])
            try await store.observeCommits { users in seen.withLock { $0.append(users) } }
            _ = try await store.decide(user: 1, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([Self.toActive], ()) }
            _ = try await store.decide(user: 2, now: TestServer.now, rulesVersion: "v", source: .api) { _ in ([], ()) }  // no write
            _ = try await store.pin(user: 3, reason: "x", now: TestServer.now)
            let metrics = try await store.snapshot(user: 4, now: TestServer.now).metrics
            _ = try await store.persist(
                [4, 5].map { PendingMove(userID: $0, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics) },
                rulesVersion: "v", source: .batch, now: TestServer.now)
            try await scratch.execute("UPDATE users SET follower_count = 7 WHERE id = 6")
            #expect(try await store.repairCounters() == [6])
            #expect(seen.withLock { $0 } == [[1], [3], [4, 5], [6]])
        }
    }

    /// The protocol's batch lease, as on SQLite: one live run at a time; an expired one taken over
    /// and marked interrupted; the old owner's renewals, progress and finish refused, its chunk unwritten.
    @Test func theBatchLeaseHoldsAndIsTakenOverWhenExpired() async throws {
        try await Self.withUsers { scratch, store in
            let first = try await store.beginBatchRun(
                rulesVersion: "v", owner: "a", holder: "host-a pid 1", now: TestServer.now, leaseSeconds: 30, takeOver: false)
            await #expect {
                _ = try await store.beginBatchRun(
                    rulesVersion: "v", owner: "b", holder: "host-b pid 2", now: TestServer.now.addingTimeInterval(10), leaseSeconds: 30, takeOver: false)
            } throws: { error in
                guard case .batchRunning(first.runID, "host-a pid 1", _, let until) = error as? StorageError else { return false }
                return until == TestServer.now.addingTimeInterval(30).formatted(.iso8601)
            }
            // A sharded run may not start beside it either.
            await #expect(throws: StorageError.self) {
                _ = try await store.joinOrStartRun(rulesVersion: "v", shardSize: 5, now: TestServer.now.addingTimeInterval(10))
            }
            let metrics = try await store.snapshot(user: 1, now: TestServer.now).metrics
            let chunk = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics)],
                rulesVersion: "v", source: .batch, now: TestServer.now,
                progress: BatchProgress(lease: first, lastUserID: 5, usersSeen: 5, transitions: 0, now: TestServer.now.addingTimeInterval(20)))
            #expect(chunk.recorded.count == 1)
            // Renewed by the chunk until now + 50 s: still held at + 45 s, taken over at + 51 s.
            await #expect(throws: StorageError.self) {
                _ = try await store.beginBatchRun(
                    rulesVersion: "v", owner: "b", holder: "h", now: TestServer.now.addingTimeInterval(45), leaseSeconds: 30, takeOver: false)
            }
            let second = try await store.beginBatchRun(
                rulesVersion: "v", owner: "b", holder: "host-b pid 2", now: TestServer.now.addingTimeInterval(51), leaseSeconds: 30, takeOver: false)
            let runs = try await store.batchRuns(limit: 10)
            #expect(runs.map(\.id) == [second.runID, first.runID])
            #expect(runs[1].status == "interrupted" && runs[1].lastUserID == 5 && runs[1].usersSeen == 5 && runs[1].transitions == 1)
            #expect(runs[1].error?.contains("taken over by host-b pid 2") == true)
            #expect(runs[0].isLive(at: TestServer.now.addingTimeInterval(60)) && runs[0].holder == "host-b pid 2" && runs[0].owner == "b")

            // The old owner wakes up: nothing of it is written any more.
            await #expect(throws: StorageError.leaseLost(runID: first.runID)) {
                try await store.renewBatchLease(first, now: TestServer.now.addingTimeInterval(52))
            }
            await #expect(throws: StorageError.leaseLost(runID: first.runID)) {
                _ = try await store.persist(
                    [PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics)],
                    rulesVersion: "v", source: .batch, now: TestServer.now,
                    progress: BatchProgress(lease: first, lastUserID: 10, usersSeen: 10, transitions: 1, now: TestServer.now.addingTimeInterval(52)))
            }
            #expect(try await store.history(user: 2).isEmpty)
            await #expect(throws: StorageError.leaseLost(runID: first.runID)) {
                try await store.finishBatchRun(first, failed: nil, usersSeen: 10, transitions: 1, now: TestServer.now.addingTimeInterval(52))
            }
            // Taken over by hand while the lease holds.
            let third = try await store.beginBatchRun(
                rulesVersion: "v", owner: "c", holder: "h", now: TestServer.now.addingTimeInterval(55), leaseSeconds: 30, takeOver: true)
            try await store.finishBatchRun(third, failed: nil, usersSeen: 10, transitions: 0, now: TestServer.now.addingTimeInterval(56))
            let closed = try await store.batchRuns(limit: 3)
            #expect(closed.map(\.status) == ["finished", "interrupted", "interrupted"])
            #expect(closed[1].error?.contains("--take-over") == true)
            #expect(try await scratch.value("SELECT count(*) FROM journey_batch_runs WHERE status = 'running'", as: Int64.self) == 0)
        }
    }

    /// A live sharded run refuses a single-process run; once its workers' leases expired, the
    /// single run takes over, and the sharded run's workers can commit nothing more.
    @Test func shardedAndSingleRunsSeeEachOther() async throws {
        try await Self.withUsers { _, store in
            let sharded = try await store.joinOrStartRun(rulesVersion: "v", shardSize: 5, leaseSeconds: 30, now: TestServer.now)
            let shard = try #require(try await store.claimShard(run: sharded.id, owner: "w1", leaseSeconds: 60, now: TestServer.now.addingTimeInterval(10)))
            // Alive until the shard's lease ends (+ 70 s), beyond the run's own (+ 30 s).
            await #expect(throws: StorageError.self) {
                _ = try await store.beginBatchRun(
                    rulesVersion: "v", owner: "s", holder: "h", now: TestServer.now.addingTimeInterval(60), leaseSeconds: 30, takeOver: false)
            }
            let listed = try #require(try await store.batchRuns(limit: 1).first)
            #expect(listed.holder == "sharded workers" && listed.owner == nil)
            #expect(listed.leaseExpiresAt == TestServer.now.addingTimeInterval(70))  // its shard's lease
            let single = try await store.beginBatchRun(
                rulesVersion: "v", owner: "s", holder: "h", now: TestServer.now.addingTimeInterval(71), leaseSeconds: 30, takeOver: false)
            #expect(try await store.batchRun(id: sharded.id)?.status == "interrupted")
            let snapshots = try await store.chunk(after: 0, through: shard.highID, limit: 5, now: TestServer.now)
            await #expect(throws: StorageError.leaseLost(runID: sharded.id)) {
                _ = try await store.persist(
                    [], rulesVersion: "v", source: .batch, now: TestServer.now.addingTimeInterval(72),
                    progress: ShardProgress(shard: shard, lastUserID: snapshots.last!.userID, usersSeen: 5, leaseSeconds: 60))
            }
            // And a sharded run waits for the single one.
            await #expect(throws: StorageError.self) {
                _ = try await store.joinOrStartRun(rulesVersion: "v", shardSize: 5, now: TestServer.now.addingTimeInterval(80))
            }
            try await store.finishBatchRun(single, failed: "stopped", usersSeen: 0, transitions: 0, now: TestServer.now.addingTimeInterval(81))
            #expect(try await store.batchRuns(limit: 1).first?.status == "failed")
        }
    }

    /// The funnel, the edges with their median stays, and doctor's findings, then the counter repair.
    @Test func reportsAndDoctor() async throws {
        try await Self.withUsers { scratch, store in
            let metrics = try await store.snapshot(user: 1, now: TestServer.now).metrics
            let toPower = Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "power")
            // Users 1 and 2 enter J2 (1 day and 3 days after signup), then user 1 enters J3 a day later.
            let signup = try #require(metrics.signedUpAt)
            for (user, days) in [(Int64(1), 1.0), (2, 3)] {
                _ = try await store.persist(
                    [PendingMove(userID: user, expectedStage: "J1_NEW_USER", transitions: [Self.toActive], metrics: metrics)],
                    rulesVersion: "v", source: .batch, now: signup.addingTimeInterval(days * 86_400))
            }
            _ = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J2_ACTIVE_USER", transitions: [toPower], metrics: metrics)],
                rulesVersion: "v", source: .batch, now: signup.addingTimeInterval(2 * 86_400))
            let funnel = Dictionary(uniqueKeysWithValues: try await store.funnel().map { ($0.stage, $0.count) })
            #expect(funnel == ["J1_NEW_USER": 8, "J2_ACTIVE_USER": 1, "J3_POWER_USER": 1])
            let edges = try await store.edgeReports(now: signup.addingTimeInterval(5 * 86_400))
            #expect(
                edges == [
                    EdgeReport(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", last7Days: 2, last30Days: 2, total: 2, medianSeconds: 2 * 86_400),
                    EdgeReport(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", last7Days: 1, last30Days: 1, total: 1, medianSeconds: 86_400),
                ])

            let stages: Set<String> = ["J1_NEW_USER", "J2_ACTIVE_USER", "J3_POWER_USER"]
            let healthy = try await store.doctor(stages: stages, aliases: [:], initialStage: "J1_NEW_USER")
            #expect(healthy.isHealthy, "\(healthy)")
            #expect(
                healthy.timestamps.map(\.column) == [
                    "users.created_at", "users.last_journey_update", "posts.created_at",
                    "follows.created_at", "events.start_date", "event_rsvps.created_at",
                ])

            // Break things the way other writers do.
            try await scratch.execute(
                "UPDATE users SET customer_journey_state = 'LEGACY_ACTIVE' WHERE id = 2",  // an alias: fine
                "UPDATE users SET customer_journey_state = 'J9_GONE' WHERE id = 3",  // unknown, and no history
                "UPDATE users SET customer_journey_state = 'J2_ACTIVE_USER' WHERE id = 4",  // no history
                "UPDATE journey_transitions SET from_state = 'J1_NEW_USER' WHERE user_id = 1 AND seq = 2",  // broken chain
                "UPDATE users SET follower_count = 3 WHERE id = 5",
                "ALTER TABLE events ALTER COLUMN start_date TYPE text",
                """
                INSERT INTO events (organizer_id, start_date) VALUES
                    (1, '2025-06-01 10:00:00'), (1, '2025-06-01T10:00:00Z'), (1, '2025-06-01'), (1, '1749900000'),
                    (1, '1749900000000'), (1, 'next friday'), (1, '2025-02-30')
                """)
            let findings = try await store.doctor(stages: stages, aliases: ["LEGACY_ACTIVE": "J2_ACTIVE_USER"], initialStage: "J1_NEW_USER")
            #expect(!findings.isHealthy && findings.integrity.isEmpty)
            #expect(findings.unknownStages == ["J9_GONE": 1])
            #expect(findings.stageMismatches == [3, 4])
            #expect(findings.brokenHistories == [1])
            #expect(findings.followerCountDrift == [5])
            let events = try #require(findings.timestamps.first { $0.column == "events.start_date" })
            #expect(events.forms == ["canonical": 1, "iso8601": 1, "date_only": 1, "epoch_seconds": 1, "epoch_milliseconds": 1, "unreadable": 2])
            #expect(Set(events.samples["unreadable"] ?? []) == ["next friday", "2025-02-30"] && events.samples["canonical"] == nil)
            #expect(try #require(findings.timestamps.first { $0.column == "posts.created_at" }).forms == ["canonical": 10])

            #expect(try await store.repairCounters() == [5])
            #expect(try await store.doctor(stages: stages, aliases: [:], initialStage: "J1_NEW_USER").followerCountDrift.isEmpty)
        }
    }

    /// Polls `condition` every 20 ms for up to 10 s.
    static func waitUntil(_ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
