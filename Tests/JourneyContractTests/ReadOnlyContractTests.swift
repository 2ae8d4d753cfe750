import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

/// A store opened read-only (dry runs, reports) answers every read and refuses every write with
/// `readOnly`, writing nothing.
@Suite("Contract: a read-only store")
struct ReadOnlyContractTests {
    @Test("Every write throws readOnly and writes nothing; every read works", arguments: Backend.available)
    func readOnlyRefusesWrites(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given a migrated database with one move, one pin and one run, opened again read-only
            let writer = database.store
            _ = try await writer.persist([pending(3, [move(.j1, .j2)])], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            _ = try await writer.pin(user: 2, reason: "held", now: Instants.now)
            let run = try await writer.beginBatchRun(rulesVersion: "v", owner: "A", holder: "h", now: Instants.now, leaseSeconds: 60, takeOver: false)
            let readOnly = try await database.openStore(readOnly: true)
            #expect(readOnly.isReadOnly && !writer.isReadOnly)
            #expect(readOnly.migration == nil, "a read-only open never migrates")
            let head = try await writer.feedHead()
            let refusal = StorageError.readOnly(location: readOnly.location)
            #expect(refusal.category == .permission)

            // When each write is asked of it, Then each is refused
            let lease = BatchLease(runID: run.runID, owner: "A", seconds: 60)
            let decided = Collected<Int64>()
            let attempts: [(String, () async throws -> Void)] = [
                (
                    "decide",
                    {
                        _ = try await readOnly.decide(user: 1, now: Instants.now, rulesVersion: "v", source: .cli) { snapshot in
                            decided.append(snapshot.userID)
                            return ([move(.j1, .j2)], ())
                        }
                    }
                ),
                (
                    "persist",
                    { _ = try await readOnly.persist([pending(1, [move(.j1, .j2)])], rulesVersion: "v", source: .cli, now: Instants.now, progress: nil) }
                ),
                ("pin", { _ = try await readOnly.pin(user: 1, reason: "r", now: Instants.now) }),
                ("unpin", { _ = try await readOnly.unpin(user: 2) }),
                ("adoptRules", { _ = try await readOnly.adoptRules(version: "v9", text: "version: v9", source: "x.yaml", now: Instants.now) }),
                (
                    "beginBatchRun",
                    { _ = try await readOnly.beginBatchRun(rulesVersion: "v", owner: "B", holder: "h", now: Instants.now, leaseSeconds: 60, takeOver: true) }
                ),
                ("renewBatchLease", { try await readOnly.renewBatchLease(lease, now: Instants.now) }),
                ("finishBatchRun", { try await readOnly.finishBatchRun(lease, failed: nil, usersSeen: 0, transitions: 0, now: Instants.now) }),
                ("repairCounters", { _ = try await readOnly.repairCounters() }),
            ]
            for (name, attempt) in attempts {
                #expect(await storageError(attempt) == refusal, "\(name)")
            }
            #expect(decided.elements.isEmpty, "nothing is decided on a store that cannot write it")
            // and observing commits installs nothing and does not fail
            try await readOnly.observeCommits { _ in }

            // And nothing was written
            #expect(try await writer.feedHead() == head)
            #expect(try await writer.history(user: 1).isEmpty)
            #expect(try await writer.snapshot(user: 1, now: Instants.now).storedStage == "J1_NEW_USER")
            #expect(try await writer.snapshot(user: 1, now: Instants.now).pin == nil)
            #expect(try await writer.snapshot(user: 2, now: Instants.now).pin?.reason == "held")
            #expect(try await writer.adoptedRules() == nil)
            #expect(try await writer.batchRuns(limit: 10).map(\.status) == ["running"])

            // While every read answers as the writer's
            #expect(try await readOnly.snapshot(user: 1, now: Instants.now) == writer.snapshot(user: 1, now: Instants.now))
            #expect(try await readOnly.chunk(after: 0, limit: 10, now: Instants.now) == writer.chunk(after: 0, limit: 10, now: Instants.now))
            #expect(try await readOnly.history(user: 3) == writer.history(user: 3))
            #expect(try await readOnly.transitions(after: 0, limit: 10) == writer.transitions(after: 0, limit: 10))
            #expect(try await readOnly.feedHead() == head)
            #expect(try await readOnly.changes(after: FeedCursor(), limit: 10).touchedUsers == [2, 3])
            #expect(try await readOnly.batchRuns(limit: 10) == writer.batchRuns(limit: 10))
            #expect(try await readOnly.funnel().count == 2)
            #expect(try await readOnly.edgeReports(now: Instants.now) == writer.edgeReports(now: Instants.now))
            #expect(try await readOnly.doctor(stages: ["J1_NEW_USER", "J2_ACTIVE_USER"], aliases: [:], initialStage: "J1_NEW_USER").isHealthy)
            #expect(try await readOnly.adoptedRules() == nil)
        }
    }
}
