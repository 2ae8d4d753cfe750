import Foundation
import GRDB
import JourneyCore
import JourneySQLite
import JourneyStorage
import Synchronization
import Testing

@testable import Journey

/// The batch lock is a lease: an owner token and an expiry, renewed as the run goes; no process id is trusted.
@Suite("The batch lease: held, renewed, expired and taken over, lost")
struct BatchLeaseTests {
    /// The run ids and statuses of `journey_batch_runs`.
    static func statuses(_ database: TemporaryDatabase) async throws -> [Int64: String] {
        Dictionary(uniqueKeysWithValues: try await database.database.batchRuns(limit: 50).map { ($0.id, $0.status) })
    }

    @Test("the reported case: a `running` row whose pid is a live unrelated process (this one, and 1) no longer blocks")
    func pidReuseDoesNotBlock() async throws {
        // Given two rows left `running` by killed batches: one from before leases, carrying this test's own
        // live pid, and one whose lease (held as process 1, as cron in a container would) expired
        let database = try TemporaryDatabase(users: 3)
        try database.execute(
            """
            INSERT INTO journey_batch_runs(started_at, status, rules_version, pid) VALUES (?, 'interrupted', 'x', ?);
            """, [testNow.addingTimeInterval(-7_200), getpid()])
        try database.execute("UPDATE journey_batch_runs SET status = 'running'")
        let service = try await database.service()

        // When a batch starts
        let first = try await service.runBatch()

        // Then it ran, and the legacy row is interrupted
        let legacy = try #require(try await database.database.batchRuns(limit: 5).last)
        #expect(legacy.status == "interrupted")
        #expect(legacy.error?.contains("before batch leases") == true, "\(legacy)")
        #expect(try await Self.statuses(database)[try #require(first.runID)] == "finished")

        // And given a run holding a lease as "pid 1" that expired a minute ago
        let expired = try await database.database.beginBatchRun(
            rulesVersion: "x", owner: "other", holder: "container pid 1",
            now: testNow.addingTimeInterval(-120), leaseSeconds: 60, takeOver: false)
        // When the next batch starts, Then it takes over at once
        let second = try await service.runBatch()
        let runs = try await Self.statuses(database)
        #expect(runs[expired.runID] == "interrupted")
        #expect(runs[try #require(second.runID)] == "finished")
        let row = try #require(try await database.database.batchRuns(limit: 5).first { $0.id == expired.runID })
        #expect(row.error?.contains("lease expired at") == true, "\(row)")
    }

    @Test("a live lease blocks a second run; once it expires (clock moved, no sleep) the next run takes over")
    func liveLeaseBlocksThenExpires() async throws {
        // Given another run that took the lease at testNow for 60 s
        let database = try TemporaryDatabase(users: 3)
        let clock = ManualClock(testNow)
        let service = try await database.service(clock: clock)
        let held = try await database.database.beginBatchRun(
            rulesVersion: "x", owner: "other", holder: "host-b pid 7",
            now: testNow, leaseSeconds: 60, takeOver: false)

        // When a batch starts 59 s later, Then it is refused, naming the run, its holder and the lease's end
        clock.advance(by: 59)
        await #expect {
            try await service.runBatch()
        } throws: { error in
            guard case .store(.batchRunning(held.runID, "host-b pid 7", _, let until)) = error as? JourneyError else { return false }
            return until == "2026-06-01T12:01:00Z"
        }
        // And when it starts after the lease's end, Then it takes over and finishes
        clock.advance(by: 2)
        let summary = try await service.runBatch()
        let runs = try await Self.statuses(database)
        #expect(runs[held.runID] == "interrupted")
        #expect(runs[try #require(summary.runID)] == "finished")
    }

    @Test("--take-over takes a lease that still holds; the run it took from stops at its next renewal without writing")
    func takeOverAndLoserStops() async throws {
        // Given user 1 fits J2, and a run A holds the lease
        let database = try TemporaryDatabase(users: 3)
        try makeActive(1, followedBy: 2, in: database)
        let a = try await database.database.beginBatchRun(
            rulesVersion: "x", owner: "A", holder: "host-a pid 1",
            now: testNow, leaseSeconds: 60, takeOver: false)

        // When run B takes the lease over by hand
        let b = try await database.database.beginBatchRun(
            rulesVersion: "x", owner: "B", holder: "host-b pid 1",
            now: testNow, leaseSeconds: 60, takeOver: true)

        // Then A is interrupted, B running
        #expect(try await Self.statuses(database) == [a.runID: "interrupted", b.runID: "running"])

        // And A's next chunk commit is refused whole: no transition, no stage change
        let move = PendingMove(
            userID: 1, expectedStage: "J1_NEW_USER",
            transitions: [Transition(from: "J1_NEW_USER", to: "J2_ACTIVE_USER", kind: .next, reason: "r")],
            metrics: UserMetrics())
        await #expect(throws: StorageError.leaseLost(runID: a.runID)) {
            try await database.database.persist(
                [move], rulesVersion: "x", source: .batch, now: testNow,
                progress: BatchProgress(lease: a, lastUserID: 1, usersSeen: 1, transitions: 0, now: testNow))
        }
        #expect(try await database.database.history(user: 1).isEmpty)
        // And A can neither renew nor close its row, which stays interrupted
        await #expect { try await database.database.renewBatchLease(a, now: testNow) } throws: { error in
            if case .leaseLost(a.runID) = error as? StorageError { true } else { false }
        }
        await #expect(throws: StorageError.leaseLost(runID: a.runID)) {
            try await database.database.finishBatchRun(a, failed: nil, usersSeen: 1, transitions: 0, now: testNow)
        }
        #expect(try await Self.statuses(database)[a.runID] == "interrupted")
        // While B renews and finishes
        try await database.database.renewBatchLease(b, now: testNow.addingTimeInterval(30))
        try await database.database.finishBatchRun(b, failed: nil, usersSeen: 3, transitions: 0, now: testNow)
        #expect(try await Self.statuses(database)[b.runID] == "finished")
    }

    @Test("a running batch whose lease is taken over mid-run stops with leaseLost and writes no further chunk")
    func runningBatchStops() async throws {
        // Given ten users who all fit J2, evaluated in chunks of 2
        let database = try TemporaryDatabase(users: 10)
        for user in Int64(1)...10 { try makeActive(user, followedBy: user == 1 ? 2 : 1, in: database) }
        let service = try await database.service()
        let store = database.database
        let tookOver = Mutex<Int64?>(nil)
        let options = BatchOptions(
            chunkSize: 2,
            onChunk: { done, _ in
                // When, after the first chunk, an operator's run takes the lease over
                guard done == 2 else { return }
                let lease = try? await store.beginBatchRun(
                    rulesVersion: "x", owner: "operator", holder: "host-b pid 9",
                    now: testNow, leaseSeconds: 60, takeOver: true)
                tookOver.withLock { $0 = lease?.runID }
            })

        // Then the batch stops with leaseLost
        await #expect {
            try await service.runBatch(options)
        } throws: { error in
            if case .store(.leaseLost) = error as? JourneyError { true } else { false }
        }
        // And only the first chunk's two users moved; the loser's row stays interrupted
        let moved = try await database.database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journey_transitions") ?? -1
        }
        #expect(moved == 2)
        let runs = try await database.database.batchRuns(limit: 5)
        #expect(runs.first { $0.id == tookOver.withLock { $0 } }?.status == "running")
        #expect(runs.filter { $0.status == "interrupted" }.count == 1)
        #expect(try stagesMatchHistory(database.database.writer).isEmpty)
    }

    @Test("a chunk slower than the lease keeps it: the timer renews between commits")
    func timerRenewsDuringSlowChunk() async throws {
        // Given a 1 s lease and a first chunk that takes 5 s of (manual) time and a few ticks of real time
        let database = try TemporaryDatabase(users: 4)
        let clock = ManualClock(testNow)
        let service = try await database.service(clock: clock)
        let refused = Mutex<Bool?>(nil)
        let store = database.database
        let options = BatchOptions(
            chunkSize: 2,
            onChunk: { done, _ in
                guard done == 2 else { return }
                clock.advance(by: 5)
                // The renewal task ticks every third of the lease: wait (up to 20 s on a loaded machine)
                // until it has renewed past the advanced clock, as it does while a real chunk is slow.
                for _ in 0..<200 {
                    if let expiry = try? await store.batchRuns(limit: 1).first?.leaseExpiresAt, expiry > clock.now() { break }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                // When another run tries to start meanwhile
                do {
                    _ = try await store.beginBatchRun(
                        rulesVersion: "x", owner: "other", holder: "h", now: clock.now(),
                        leaseSeconds: 1, takeOver: false)
                    refused.withLock { $0 = false }
                } catch {
                    refused.withLock { $0 = true }
                }
            }, leaseSeconds: 1)

        // Then it was refused (the lease had been renewed past the advanced clock), and the batch finished
        let summary = try await service.runBatch(options)
        #expect(refused.withLock { $0 } == true)
        #expect(try await Self.statuses(database)[try #require(summary.runID)] == "finished")
    }

    @Test("at most one run is `running`: the database itself refuses a second row")
    func oneRunningRow() async throws {
        // Given a running run
        let database = try TemporaryDatabase()
        _ = try await database.database.beginBatchRun(rulesVersion: "x", owner: "A", holder: "h", now: testNow, leaseSeconds: 60, takeOver: false)

        // When a second `running` row is inserted behind the lease's back, Then the partial unique index refuses it
        #expect(throws: DatabaseError.self) {
            try database.execute("INSERT INTO journey_batch_runs(started_at, status, rules_version) VALUES (?, 'running', 'x')", [testNow])
        }
    }
}
