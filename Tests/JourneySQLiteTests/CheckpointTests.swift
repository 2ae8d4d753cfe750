import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneySQLite

/// The store's writer checkpoints the WAL as SQLite would by default (a `PASSIVE` checkpoint once
/// a commit leaves 1,000 pages in it), and a persist says how long its commit and checkpoint took.
@Suite("WAL checkpoints, timed")
struct CheckpointTests {
    @Test("A persist whose commit leaves 1,000 WAL pages checkpoints them into the file; a small one does not")
    func persistCheckpoints() async throws {
        try await withTemporaryDirectory { directory in
            // Given the small platform with 20,000 more users in J1, their insert checkpointed
            let database = try Fixture.smallMigratedDatabase(in: directory)
            let path = directory.appending(path: "small.sqlite").path
            try await database.writer.write { db in
                try db.execute(
                    sql: """
                        WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 20999)
                        INSERT INTO users(id, email, created_at) SELECT i, 'user' || i || '@example.com', '2026-01-01 00:00:00' FROM n
                        """)
            }
            let snapshot = try await database.snapshot(user: 1_000, now: Fixture.now)
            func moves(_ users: ClosedRange<Int64>) -> [PendingMove] {
                users.map { PendingMove(userID: $0, expectedStage: "J1_NEW_USER", transitions: [move(.j1, .j2)], metrics: snapshot.metrics) }
            }

            // When one user moves, then 19,999 in one persist
            let small = try await database.persist(moves(1_000...1_000), rulesVersion: "v", source: .batch, now: Fixture.now)
            let fileBefore = try fileSize(path)
            let large = try await database.persist(moves(1_001...20_999), rulesVersion: "v", source: .batch, now: Fixture.now)

            // Then the small commit ran no checkpoint; the large one did, and copied its pages into the file
            #expect(small.recorded.count == 1 && large.recorded.count == 19_999)
            #expect(small.committing > 0 && small.checkpointing == 0)
            #expect(large.committing > 0 && large.checkpointing > 0)
            #expect(try fileSize(path) > fileBefore + 1_000 * 4_096)
            let moved = try database.writer.readNow { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE customer_journey_state = 'J2_ACTIVE_USER' AND id >= 1000")
            }
            #expect(moved == 20_000)
        }
    }

    private func fileSize(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
    }
}
