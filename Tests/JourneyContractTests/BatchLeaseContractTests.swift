import Foundation
import JourneyCore
import JourneyStorage
import Testing

/// SPEC §6: the batch lock is a lease, an owner token and an expiry renewed as the run goes; no
/// process id is trusted. A chunk's moves and the run's progress commit together.
@Suite("Contract: the batch lease")
struct BatchLeaseContractTests {
    static func statuses(_ store: any JourneyStore) async throws -> [Int64: String] {
        Dictionary(uniqueKeysWithValues: try await store.batchRuns(limit: 50).map { ($0.id, $0.status) })
    }

    @Test("begin takes the lease, renew extends it, finish closes the run; runs are listed newest first", arguments: Backend.available)
    func beginRenewFinish(_ backend: Backend) async throws {
        try await backend.with(.users(3)) { database in
            let store = database.store
            // When a run begins, renews after 30 s and finishes
            let lease = try await store.beginBatchRun(
                rulesVersion: "v1", owner: "A", holder: "host-a pid 7", now: Instants.now,
                leaseSeconds: 60, takeOver: false)
            #expect(lease.owner == "A" && lease.seconds == 60)
            var run = try #require(try await store.batchRuns(limit: 1).first)
            #expect(run.id == lease.runID && run.status == "running" && run.owner == "A" && run.holder == "host-a pid 7")
            #expect(run.rulesVersion == "v1" && run.startedAt == Instants.now && run.finishedAt == nil)
            #expect(run.leaseExpiresAt == Instants.now.addingTimeInterval(60))
            #expect(run.isLive(at: Instants.now.addingTimeInterval(59)) && !run.isLive(at: Instants.now.addingTimeInterval(60)))

            try await store.renewBatchLease(lease, now: Instants.now.addingTimeInterval(30))
            run = try #require(try await store.batchRuns(limit: 1).first)
            #expect(run.leaseExpiresAt == Instants.now.addingTimeInterval(90))

            let end = Instants.now.addingTimeInterval(45)
            try await store.finishBatchRun(lease, failed: nil, usersSeen: 3, transitions: 2, now: end)
            run = try #require(try await store.batchRuns(limit: 1).first)
            #expect(run.status == "finished" && run.finishedAt == end && run.usersSeen == 3 && run.transitions == 2 && run.error == nil)
            #expect(!run.isLive(at: end))

            // And a failed run keeps its error; the list is newest first, limited
            let second = try await store.beginBatchRun(rulesVersion: "v2", owner: "B", holder: "h", now: end, leaseSeconds: 60, takeOver: false)
            try await store.finishBatchRun(second, failed: "disk full", usersSeen: 1, transitions: 0, now: end)
            let runs = try await store.batchRuns(limit: 10)
            #expect(runs.map(\.id) == [second.runID, lease.runID])
            #expect(runs.first?.status == "failed" && runs.first?.error == "disk full")
            #expect(try await store.batchRuns(limit: 1).map(\.id) == [second.runID])
        }
    }

    @Test("A live lease refuses a second run with batchRunning, naming it; once expired, the next run takes over", arguments: Backend.available)
    func liveLeaseBlocksThenExpires(_ backend: Backend) async throws {
        try await backend.with(.users(3)) { database in
            let store = database.store
            // Given another run that took the lease at now for 60 s
            let held = try await store.beginBatchRun(
                rulesVersion: "x", owner: "other", holder: "host-b pid 7", now: Instants.now,
                leaseSeconds: 60, takeOver: false)

            // When a run starts 59 s later, Then it is refused, naming the run, its holder and the lease's end
            let error = await storageError {
                _ = try await store.beginBatchRun(
                    rulesVersion: "x", owner: "me", holder: "host-a pid 1", now: Instants.now.addingTimeInterval(59),
                    leaseSeconds: 60, takeOver: false)
            }
            #expect(
                error
                    == .batchRunning(
                        runID: held.runID, holder: "host-b pid 7", startedAt: "2025-06-15T12:00:00Z",
                        leaseExpiresAt: "2025-06-15T12:01:00Z"))
            #expect(error?.category == .busy)
            #expect(try await Self.statuses(store) == [held.runID: "running"])

            // And when it starts after the lease's end, Then it takes over: the stale run is interrupted, saying why
            let mine = try await store.beginBatchRun(
                rulesVersion: "x", owner: "me", holder: "host-a pid 1", now: Instants.now.addingTimeInterval(61),
                leaseSeconds: 60, takeOver: false)
            #expect(try await Self.statuses(store) == [held.runID: "interrupted", mine.runID: "running"])
            let stale = try #require(try await store.batchRuns(limit: 5).first { $0.id == held.runID })
            #expect(stale.error?.isEmpty == false, "an interrupted run says why: \(stale)")
            #expect(stale.finishedAt == Instants.now.addingTimeInterval(61))
        }
    }

    @Test("takeOver takes a lease that still holds; the run it took from can neither renew, write a chunk nor finish", arguments: Backend.available)
    func takeOverAndLoserStops(_ backend: Backend) async throws {
        try await backend.with(.users(3)) { database in
            let store = database.store
            // Given run A holds the lease, and run B takes it over by hand
            let a = try await store.beginBatchRun(rulesVersion: "x", owner: "A", holder: "host-a pid 1", now: Instants.now, leaseSeconds: 60, takeOver: false)
            let b = try await store.beginBatchRun(rulesVersion: "x", owner: "B", holder: "host-b pid 1", now: Instants.now, leaseSeconds: 60, takeOver: true)

            // Then A is interrupted, B running
            #expect(try await Self.statuses(store) == [a.runID: "interrupted", b.runID: "running"])

            // And A's next chunk commit is refused whole: no transition, no stage change
            let progress = BatchProgress(lease: a, lastUserID: 1, usersSeen: 1, transitions: 0, now: Instants.now)
            let error = await storageError {
                _ = try await store.persist([pending(1, [move(.j1, .j2)])], rulesVersion: "x", source: .batch, now: Instants.now, progress: progress)
            }
            #expect(error == .leaseLost(runID: a.runID))
            #expect(error?.category == .busy)
            #expect(try await store.history(user: 1).isEmpty)
            #expect(try await store.snapshot(user: 1, now: Instants.now).storedStage == "J1_NEW_USER")
            // And A can neither renew nor close its row, which stays interrupted
            #expect(await storageError { try await store.renewBatchLease(a, now: Instants.now) } == .leaseLost(runID: a.runID))
            #expect(
                await storageError { try await store.finishBatchRun(a, failed: nil, usersSeen: 1, transitions: 0, now: Instants.now) }
                    == .leaseLost(runID: a.runID))
            #expect(try await Self.statuses(store)[a.runID] == "interrupted")
            // While B renews and finishes
            try await store.renewBatchLease(b, now: Instants.now.addingTimeInterval(30))
            try await store.finishBatchRun(b, failed: nil, usersSeen: 3, transitions: 0, now: Instants.now.addingTimeInterval(31))
            #expect(try await Self.statuses(store)[b.runID] == "finished")
            // And a finished run's lease is gone too
            #expect(await storageError { try await store.renewBatchLease(b, now: Instants.now.addingTimeInterval(32)) } == .leaseLost(runID: b.runID))
        }
    }

    @Test("A chunk's moves and the run's progress commit together, and the commit renews the lease", arguments: Backend.available)
    func progressCommitsWithTheChunk(_ backend: Backend) async throws {
        try await backend.with(.users(4)) { database in
            let store = database.store
            let lease = try await store.beginBatchRun(rulesVersion: "x", owner: "A", holder: "h", now: Instants.now, leaseSeconds: 60, takeOver: false)

            // When a chunk of users 1…2 commits 50 s later, with two moves and one pinned user
            _ = try await store.pin(user: 2, reason: "held", now: Instants.now)
            let at = Instants.now.addingTimeInterval(50)
            let result = try await store.persist(
                [pending(1, [move(.j1, .j2), move(.j2, .j3)]), pending(2, [move(.j1, .j2)])],
                rulesVersion: "x", source: .batch, now: Instants.now,
                progress: BatchProgress(lease: lease, lastUserID: 2, usersSeen: 2, transitions: 5, now: at))

            // Then the run records where it is, with the chunk's moves added, and its lease runs from the commit
            #expect(result.recorded.count == 2 && result.pinned == [2])
            let run = try #require(try await store.batchRuns(limit: 1).first)
            #expect(run.lastUserID == 2 && run.usersSeen == 2 && run.transitions == 7)
            #expect(run.leaseExpiresAt == at.addingTimeInterval(60))
            #expect(run.status == "running")
        }
    }
}
