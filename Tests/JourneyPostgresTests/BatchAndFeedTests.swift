import Foundation
import Journey
import JourneyCore
import JourneyStorage
import PostgresNIO
import Testing

@testable import JourneyPostgres

@Suite("PostgreSQL sharded batch and feed", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct BatchAndFeedTests {
    /// 200 users: ids 1…200, every third one fit for J2 (onboarded, a post, a follow, signed up long ago).
    static func withPopulation(_ body: (ScratchDatabase, PostgresStore) async throws -> Void) async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.withStore { store in
                try await scratch.execute(
                    """
                    INSERT INTO users (id, email, is_onboarding_complete, created_at)
                    SELECT n, 'u' || n, n % 3 = 0, timestamptz '2025-01-01' FROM generate_series(1, 200) n
                    """,
                    "INSERT INTO posts (user_id) SELECT n FROM generate_series(3, 200, 3) n",
                    "INSERT INTO follows (follower_id, following_id) SELECT n, 1 + n % 200 FROM generate_series(3, 200, 3) n")
                try await body(scratch, store)
            }
        }
    }

    /// A service on `store` whose clock stands at `now`, as `journey batch` makes it (source `batch`).
    static func service(_ store: PostgresStore, _ rules: RuleSet, at now: Date = TestServer.now) async throws -> JourneyService {
        try await JourneyService(store: store, rules: rules, options: JourneyOptions(source: .batch), clock: At(date: now))
    }

    /// Two processes (two services, each on a pool of its own) on one run claim disjoint shards,
    /// every user is evaluated once, and the run's summary adds up the shards: exactly what one
    /// worker alone produces.
    @Test func twoConcurrentWorkersShareARun() async throws {
        let rules = try TestServer.defaultRules()
        try await Self.withPopulation { scratch, store in
            let run = try await store.joinOrStartRun(rulesVersion: rules.version, shardSize: 25, now: TestServer.now)
            #expect(run.shardCount == 8 && run.status == "running")
            // A second worker joining gets the same run.
            #expect(try await store.joinOrStartRun(rulesVersion: rules.version, shardSize: 25, now: TestServer.now).id == run.id)
            await #expect {
                try await store.joinOrStartRun(rulesVersion: "another", shardSize: 25, now: TestServer.now)
            } throws: { error in
                guard case .batchRunning(let id, _, _, _) = error as? StorageError else { return false }
                return id == run.id && (error as? StorageError)?.category == .busy
            }
            // The second process has a connection pool of its own.
            let summaries = try await scratch.withStore(mode: .requireMigrated) { other in
                let services = [try await Self.service(store, rules), try await Self.service(other, rules)]
                return try await withThrowingTaskGroup(of: BatchSummary.self) { group in
                    for service in services { group.addTask { try await service.runBatch(BatchOptions(chunkSize: 10)) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(summaries.allSatisfy { $0.runID == run.id })
            #expect(summaries.map(\.usersSeen).reduce(0, +) == 200)
            #expect(summaries.map(\.transitions).reduce(0, +) == 66)
            let finished = try #require(try await store.batchRun(id: run.id))
            #expect(finished.status == "finished" && finished.shardsDone == 8)
            #expect(finished.usersSeen == 200 && finished.transitions == 66)
            // The one that finished last reports the run's totals.
            #expect(summaries.contains { $0.run?.status == "finished" && $0.run?.usersSeen == 200 && $0.run?.transitions == 66 })
            #expect(try await scratch.value("SELECT count(*) FROM users WHERE customer_journey_state = 'J2_ACTIVE_USER'", as: Int64.self) == 66)
            // The next run starts anew, and finds nothing to move.
            let again = try await Self.service(store, rules).runBatch(BatchOptions(chunkSize: 50, shardSize: 100))
            #expect(again.runID != run.id)
            #expect(again.transitions == 0 && again.usersSeen == 200 && again.run?.shards == 2)
        }
    }

    /// Four workers in one service, and four services on four pools, produce exactly what one worker
    /// alone produces: the same stages and the same transition rows (by user and seq), on a
    /// population where some users take two hops (J1→J2→J3), one takes the declared skip to J4,
    /// and one is pinned.
    @Test func fourWorkersEqualOne() async throws {
        let rules = try TestServer.defaultRules()
        try await Self.withPopulation { scratch, store in
            try await scratch.execute(
                "UPDATE users SET subscription_tier = 'basic' WHERE id IN (30, 60, 90)",
                "UPDATE users SET role = 'super-admin' WHERE id = 7",
                "INSERT INTO posts (user_id) SELECT u FROM unnest(ARRAY[30, 60, 90]) u, generate_series(1, 60) n",
                "INSERT INTO follows (follower_id, following_id) SELECT f, u FROM unnest(ARRAY[30, 60, 90]) u, generate_series(101, 160) f",
                "INSERT INTO events (organizer_id) SELECT u FROM unnest(ARRAY[30, 60, 90]) u, generate_series(1, 3) n")
            _ = try await store.pin(user: 99, reason: "held", now: TestServer.now)
            func outcome() async throws -> [String] {
                try await scratch.values(
                    """
                    SELECT u.id || ':' || u.customer_journey_state || ':' || COALESCE(string_agg(t.seq || t.from_state || '>' || t.to_state, ',' ORDER BY t.seq), '')
                    FROM users u LEFT JOIN journey_transitions t ON t.user_id = u.id GROUP BY u.id ORDER BY u.id
                    """, as: String.self)
            }
            func reset() async throws {
                try await scratch.execute("DELETE FROM journey_transitions", "UPDATE users SET customer_journey_state = 'J1_NEW_USER'")
            }
            let options = BatchOptions(chunkSize: 7, shardSize: 16)
            let single = try await Self.service(store, rules).runBatch(options)
            let alone = try await outcome()
            #expect(single.transitions == 66 + 3 + 1 - 1)  // three second hops, the super-admin, minus the pinned user 99
            #expect(single.run?.status == "finished" && single.run?.shards == 13 && single.run?.transitions == single.transitions)
            try await reset()

            var four = options
            four.workers = 4
            let together = try await Self.service(store, rules).runBatch(four)
            #expect(together.workers == 4 && together.run?.shardsDone == 13)
            #expect(try await outcome() == alone)
            #expect(together.usersSeen == single.usersSeen && together.transitions == single.transitions && together.edges == single.edges)
            #expect(together.run?.usersSeen == single.run?.usersSeen && together.run?.transitions == single.run?.transitions)
            try await reset()

            var pools: [PostgresStore] = []
            for _ in 0..<4 { pools.append(try await PostgresStore.open(url: scratch.url)) }
            var services: [JourneyService] = []
            for pool in pools { services.append(try await Self.service(pool, rules)) }
            let summaries = try await withThrowingTaskGroup(of: BatchSummary.self) { group in
                for service in services { group.addTask { try await service.runBatch(options) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for pool in pools { await pool.close() }
            #expect(try await outcome() == alone)
            #expect(summaries.map(\.transitions).reduce(0, +) == single.transitions)
            let runs = try await scratch.values(
                "SELECT users_seen || ' ' || transitions FROM journey_batch_runs WHERE transitions > 0 ORDER BY id", as: String.self)
            #expect(runs.last == "\(single.usersSeen) \(single.transitions)")
        }
    }

    /// A worker that dies holding a shard: no one else may claim it while its lease runs; after the
    /// lease expires another worker claims it and resumes after its last committed chunk; the dead
    /// worker, should it wake up, can no longer commit anything to it.
    @Test func aDeadWorkersShardIsReclaimedAfterItsLease() async throws {
        let rules = try TestServer.defaultRules()
        try await Self.withPopulation { scratch, store in
            let run = try await store.joinOrStartRun(rulesVersion: rules.version, shardSize: 100, now: TestServer.now)
            let dead = try #require(try await store.claimShard(run: run.id, owner: "dead", leaseSeconds: 30, now: TestServer.now))
            #expect(dead.shard == 0 && dead.lowID == 1 && dead.highID == 100)
            // One chunk of the dead worker commits, with its progress.
            let first = try await store.chunk(after: 0, through: dead.highID, limit: 10, now: TestServer.now)
            let committed = try await store.persist(
                try PostgresStore.decide(rules, first, now: TestServer.now), rulesVersion: rules.version, source: .batch, now: TestServer.now,
                progress: ShardProgress(shard: dead, lastUserID: 10, usersSeen: 10, leaseSeconds: 30))
            #expect(committed.recorded.count == 3)

            // While the lease runs, the other worker gets the other shard, then nothing.
            let other = try #require(try await store.claimShard(run: run.id, owner: "alive", leaseSeconds: 30, now: TestServer.now.addingTimeInterval(5)))
            #expect(other.shard == 1)
            #expect(try await store.claimShard(run: run.id, owner: "alive", leaseSeconds: 30, now: TestServer.now.addingTimeInterval(10)) == nil)

            // After it, the dead worker's shard is claimed again, resuming after user 10.
            let later = TestServer.now.addingTimeInterval(31)
            let reclaimed = try #require(try await store.claimShard(run: run.id, owner: "alive", leaseSeconds: 30, now: later))
            #expect(reclaimed.shard == 0 && reclaimed.lastUserID == 10)

            // The dead worker wakes up: its chunk is rolled back whole.
            let second = try await store.chunk(after: 10, through: dead.highID, limit: 10, now: TestServer.now)
            await #expect {
                _ = try await store.persist(
                    try PostgresStore.decide(rules, second, now: TestServer.now), rulesVersion: rules.version, source: .batch, now: later,
                    progress: ShardProgress(shard: dead, lastUserID: 20, usersSeen: 10, leaseSeconds: 30))
            } throws: { error in
                guard case .leaseLost(let id) = error as? StorageError else { return false }
                return id == run.id
            }
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 3)
            await #expect(throws: StorageError.leaseLost(runID: run.id)) { try await store.finishShard(dead, now: later) }

            // A service joining now finds both shards held: it does nothing, and says the run goes on.
            let idle = try await Self.service(store, rules, at: later).runBatch(BatchOptions(chunkSize: 10))
            #expect(idle.runID == run.id && idle.usersSeen == 0 && idle.run?.status == "running" && idle.run?.shardsDone == 0)
            for shard in [reclaimed, other] {
                var after = shard.lastUserID ?? (shard.lowID - 1)
                while true {
                    let snapshots = try await store.chunk(after: after, through: shard.highID, limit: 10, now: later)
                    guard let last = snapshots.last else { break }
                    _ = try await store.persist(
                        try PostgresStore.decide(rules, snapshots, now: later), rulesVersion: rules.version, source: .batch, now: later,
                        progress: ShardProgress(shard: shard, lastUserID: last.userID, usersSeen: snapshots.count, leaseSeconds: 30))
                    after = last.userID
                }
                try await store.finishShard(shard, now: later)
            }
            let finished = try #require(try await store.batchRun(id: run.id))
            #expect(finished.status == "finished" && finished.usersSeen == 200 && finished.transitions == 66)
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 66)
        }
    }

    /// A worker that fails (not dies) gives its shard back: the next worker claims it at once, not
    /// after the lease, the run records why and stays running, and a worker that holds no longer
    /// the shard releases nothing.
    @Test func aFailedWorkersShardIsClaimedAtOnce() async throws {
        let rules = try TestServer.defaultRules()
        try await Self.withPopulation { scratch, store in
            let run = try await store.joinOrStartRun(rulesVersion: rules.version, shardSize: 200, now: TestServer.now)
            let failed = try #require(try await store.claimShard(run: run.id, owner: "failed", leaseSeconds: 30, now: TestServer.now))
            #expect(try await store.claimShard(run: run.id, owner: "next", leaseSeconds: 30, now: TestServer.now.addingTimeInterval(1)) == nil)

            try await store.releaseShard(failed, error: "permission denied for table users", now: TestServer.now.addingTimeInterval(2))

            let next = try #require(try await store.claimShard(run: run.id, owner: "next", leaseSeconds: 30, now: TestServer.now.addingTimeInterval(3)))
            #expect(next.shard == failed.shard)
            let after = try #require(try await store.batchRun(id: run.id))
            #expect(after.status == "running" && after.run.error == "permission denied for table users")
            try await store.releaseShard(failed, error: "too late", now: TestServer.now.addingTimeInterval(4))
            #expect(
                try await scratch.value("SELECT error FROM journey_batch_runs WHERE id = \(run.id)", as: String.self) == "permission denied for table users")
            #expect(try await store.claimShard(run: run.id, owner: "third", leaseSeconds: 30, now: TestServer.now.addingTimeInterval(5)) == nil)
        }
    }

    /// A worker killed in the middle of a shard (two chunks committed, the third in flight): its
    /// committed chunks stay, the chunk in flight leaves nothing, and after its lease the service
    /// resumes the shard and finishes the run with exactly the single-worker result.
    @Test func aKilledWorkersRunIsFinishedByAnother() async throws {
        let rules = try TestServer.defaultRules()
        try await Self.withPopulation { scratch, store in
            let run = try await store.joinOrStartRun(rulesVersion: rules.version, shardSize: 200, now: TestServer.now)
            let killed = try #require(try await store.claimShard(run: run.id, owner: "killed", leaseSeconds: 30, now: TestServer.now))
            var after: Int64 = 0
            for _ in 0..<2 {
                let snapshots = try await store.chunk(after: after, through: killed.highID, limit: 10, now: TestServer.now)
                let last = try #require(snapshots.last).userID
                _ = try await store.persist(
                    try PostgresStore.decide(rules, snapshots, now: TestServer.now), rulesVersion: rules.version, source: .batch, now: TestServer.now,
                    progress: ShardProgress(shard: killed, lastUserID: last, usersSeen: snapshots.count, leaseSeconds: 30))
                after = last
            }
            // Two chunks of ten committed: users 3, 6, …, 18 moved, with the shard's progress.
            #expect(try await scratch.value("SELECT count(*) FROM journey_transitions", as: Int64.self) == 6)
            #expect(try await scratch.value("SELECT last_user_id FROM journey_batch_shards", as: Int64.self) == 20)
            // Nobody else may take the shard before the lease ends.
            let early = try await Self.service(store, rules, at: TestServer.now.addingTimeInterval(29)).runBatch(BatchOptions(chunkSize: 10))
            #expect(early.runID == run.id && early.usersSeen == 0)
            let summary = try await Self.service(store, rules, at: TestServer.now.addingTimeInterval(31)).runBatch(BatchOptions(chunkSize: 10))
            #expect(summary.usersSeen == 180 && summary.transitions == 60)
            #expect(summary.run == nil || (summary.run?.status == "finished" && summary.run?.usersSeen == 200 && summary.run?.transitions == 66))
            let finished = try #require(try await store.batchRun(id: run.id))
            #expect(finished.status == "finished" && finished.usersSeen == 200 && finished.transitions == 66)
            // No move recorded twice, no stage without its transition row.
            #expect(
                try await scratch.value("SELECT count(*) FROM (SELECT user_id FROM journey_transitions GROUP BY user_id HAVING count(*) > 1) d", as: Int64.self)
                    == 0)
            #expect(
                try await scratch.value(
                    """
                    SELECT count(*) FROM users u
                    WHERE (u.customer_journey_state = 'J2_ACTIVE_USER') <> EXISTS (SELECT 1 FROM journey_transitions t WHERE t.user_id = u.id)
                    """, as: Int64.self) == 0)
        }
    }

    /// The feed replays after an id, then delivers a commit made through another connection pool
    /// (another process, as far as the server can tell) by NOTIFY, well before the polling fallback.
    @Test func notifyDeliversACommitFromAnotherConnection() async throws {
        try await Self.withPopulation { scratch, store in
            let toActive = Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "active")
            let metrics = try await store.snapshot(user: 1, now: TestServer.now).metrics
            let earlier = try await store.persist(
                [PendingMove(userID: 1, expectedStage: "J1_NEW_USER", transitions: [toActive], metrics: metrics)],
                rulesVersion: "v", source: .api, now: TestServer.now)
            #expect(try await store.transitions(after: 0, limit: 10) == earlier.recorded)

            // Polling only every 60 s: a delivery within seconds can only come from NOTIFY.
            let feed = store.feed(after: 0, pollInterval: .seconds(60))
            let received = Received()
            let consumer = Task {
                for try await transition in feed { await received.append(transition) }
            }
            try await Self.waitUntil { await received.rows.count == 1 }

            let started = ContinuousClock.now
            try await scratch.withStore(mode: .requireMigrated) { other in
                _ = try await other.persist(
                    [
                        PendingMove(userID: 2, expectedStage: "J1_NEW_USER", transitions: [toActive], metrics: metrics),
                        PendingMove(userID: 3, expectedStage: "J1_NEW_USER", transitions: [toActive], metrics: metrics),
                    ],
                    rulesVersion: "v", source: .batch, now: TestServer.now)
            }
            try await Self.waitUntil { await received.rows.count == 3 }
            #expect(ContinuousClock.now - started < .seconds(5))
            consumer.cancel()
            let users = await received.rows.map(\.userID)
            let ids = await received.rows.map(\.id)
            #expect(users == [1, 2, 3])
            #expect(ids == ids.sorted())
        }
    }

    /// Without notifications (the trigger dropped), the feed still delivers, by polling.
    @Test func pollingCarriesTheFeedWithoutNotify() async throws {
        try await Self.withPopulation { scratch, store in
            try await scratch.execute("DROP TRIGGER journey_transitions_notify ON journey_transitions")
            let feed = store.feed(after: 0, pollInterval: .milliseconds(200))
            let received = Received()
            let consumer = Task { for try await transition in feed { await received.append(transition) } }
            let metrics = try await store.snapshot(user: 5, now: TestServer.now).metrics
            let toActive = Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "active")
            _ = try await store.persist(
                [PendingMove(userID: 5, expectedStage: "J1_NEW_USER", transitions: [toActive], metrics: metrics)],
                rulesVersion: "v", source: .cli, now: TestServer.now)
            try await Self.waitUntil { await received.rows.count == 1 }
            consumer.cancel()
            #expect(await received.rows.map(\.userID) == [5])
        }
    }

    /// Many writers committing at once: the feed sees every move once, in id order, with no gap
    /// (ids are handed out in commit order).
    @Test func theFeedMissesNothingUnderConcurrentWriters() async throws {
        try await Self.withPopulation { scratch, store in
            let feed = store.feed(after: 0, pollInterval: .milliseconds(100))
            let received = Received()
            let consumer = Task { for try await transition in feed { await received.append(transition) } }
            let metrics = try await store.snapshot(user: 1, now: TestServer.now).metrics
            let toActive = Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "active")
            let toPower = Transition(from: "J2_ACTIVE_USER", to: "J3_POWER_USER", kind: .next, reason: "power")
            try await scratch.withStore(mode: .requireMigrated) { other in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for user in Int64(1)...120 {
                        let database = user % 2 == 0 ? store : other
                        group.addTask {
                            _ = try await database.persist(
                                [PendingMove(userID: user, expectedStage: "J1_NEW_USER", transitions: [toActive, toPower], metrics: metrics)],
                                rulesVersion: "v", source: .api, now: TestServer.now)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Self.waitUntil { await received.rows.count == 240 }
            consumer.cancel()
            let ids = await received.rows.map(\.id)
            #expect(ids == (try await scratch.values("SELECT id FROM journey_transitions ORDER BY id", as: Int64.self)))
            #expect(Set(ids).count == 240 && ids == ids.sorted())
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

/// What a feed consumer received, in order.
actor Received {
    private(set) var rows: [RecordedTransition] = []

    func append(_ row: RecordedTransition) { rows.append(row) }
}

/// A clock that stands still at `date`.
struct At: JourneyClock {
    let date: Date

    func now() -> Date { date }
}
