import Foundation
import GRDB
import Journey
import JourneySQLite
import Synchronization
import Testing

/// SPEC §9 across real processes: the service's feed follows what a separate `journey batch` commits.
@Suite("The transition feed across processes", .timeLimit(.minutes(5)))
struct FeedAcrossProcessesTests {
    @Test("A reader gets exactly the batch's moves, in order, once, within 2 s of commit; it disconnects halfway and resumes with no gap")
    func batchInAnotherProcess() async throws {
        try await withWorkspace { workspace in
            // Given a migrated platform database, the number of moves a batch will make, and a
            // service following the file (the real data_version poller, every 100 ms)
            let db = try await workspace.platformDatabase()
            let dryRun = try await workspace.journey(["batch", "--db", db, "--dry-run", "--json"])
            let expected = try #require(dryRun.jsonObject()["transitions"] as? Int, "\(dryRun)")
            try #require(expected >= 20, "the fixture should move enough users to split the feed: \(dryRun)")
            let service = try await JourneyService(path: db, options: JourneyOptions(feedPollInterval: .milliseconds(100)))
            let start = try await service.lastTransitionID()
            let following = Task { try await service.run() }
            defer { following.cancel() }

            // And a witness that notes when each id is first visible to another connection (its commit, within 5 ms)
            let committedAt = Mutex<[Int64: ContinuousClock.Instant]>([:])
            let witness = Task {
                let connection = try DatabaseQueue(path: db)
                var seen = start
                while !Task.isCancelled {
                    let after = seen
                    let ids = try await connection.read { db in
                        try Int64.fetchAll(db, sql: "SELECT id FROM journey_transitions WHERE id > ? ORDER BY id", arguments: [after])
                    }
                    let now = ContinuousClock.now
                    committedAt.withLock { for id in ids { $0[id] = now } }
                    seen = ids.last ?? seen
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            defer { witness.cancel() }

            // When a separate `journey batch` process moves users, ten per transaction
            let batch = Task { try await workspace.journey(["batch", "--db", db, "--chunk-size", "10", "--json"]) }

            // while a reader takes half of the moves, disconnects, and resumes after the last id it got
            var received: [(transition: RecordedTransition, at: ContinuousClock.Instant)] = []
            let firstHalf = Task {
                var got: [(RecordedTransition, ContinuousClock.Instant)] = []
                for try await move in service.transitions(after: start) {
                    got.append((move, .now))
                    if got.count == expected / 2 { break }
                }
                return got
            }
            received += try await firstHalf.value.map { (transition: $0.0, at: $0.1) }
            let resumeAfter = try #require(received.last?.transition.id)
            for try await move in service.transitions(after: resumeAfter) {
                received.append((move, .now))
                if received.count == expected { break }
            }
            let batchRun = try await batch.value
            try #require(batchRun.status == 0, "\(batchRun)")

            // Then the reader got exactly the rows the batch wrote, in id order, each once
            let written = try await DatabaseQueue(path: db).read { db in
                try Int64.fetchAll(db, sql: "SELECT id FROM journey_transitions WHERE id > ? ORDER BY id", arguments: [start])
            }
            #expect(written.count == expected)
            #expect(received.map(\.transition.id) == written)
            #expect(received.allSatisfy { $0.transition.source == .batch })

            // And each arrived within 2 s of its commit (once the witness, which a loaded machine may
            // starve for a while, has caught up with the last commit)
            for _ in 0..<200 where committedAt.withLock({ $0.count }) < expected {
                try await Task.sleep(for: .milliseconds(50))
            }
            let commits = committedAt.withLock { $0 }
            let lags = received.compactMap { entry in commits[entry.transition.id].map { entry.at - $0 } }
            #expect(lags.count == expected, "the witness saw \(lags.count) of \(expected) commits")
            let worst = lags.max() ?? .zero
            #expect(worst < .seconds(2), "worst lag from commit to delivery: \(worst)")
        }
    }
}
