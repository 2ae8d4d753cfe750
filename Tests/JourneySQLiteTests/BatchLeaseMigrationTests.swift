import Foundation
import GRDB
import JourneyStorage
import Testing

@testable import JourneySQLite

/// The "v2 batch lease" migration upgrades a database whose batch lock trusted process ids.
@Suite("Migration v2 batch lease")
struct BatchLeaseMigrationTests {
    @Test("rows left running before leases: all but the newest are closed; the newest holds no lease; one running row at most")
    func upgradesLegacyRunningRows() async throws {
        // Given a database migrated up to the v1 journey tables, with two rows left `running` by killed batches
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journey-lease-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("old.sqlite").path
        let queue = try DatabaseQueue(path: path)
        try JourneyMigrations.migrator(now: Date()).migrate(queue, upTo: "v1 journey tables")
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO journey_batch_runs(id, started_at, status, rules_version, pid) VALUES
                        (1, '2026-01-01 00:00:00', 'finished', 'x', 10),
                        (2, '2026-01-02 00:00:00', 'running', 'x', 1),
                        (3, '2026-01-03 00:00:00', 'running', 'x', 1)
                    """)
        }
        try queue.close()

        // When the database is migrated
        let database = try SQLiteStore.open(path: path, mode: .migrate)

        // Then the older running row is interrupted and the newest one, without a lease, holds nothing
        let runs = try await database.batchRuns(limit: 5)
        #expect(runs.map(\.status) == ["running", "interrupted", "finished"])
        #expect(runs[0].leaseExpiresAt == nil && runs[0].owner == nil)
        #expect(!runs[0].isLive(at: Date()))
        // And the next run takes it over
        let lease = try await database.beginBatchRun(rulesVersion: "y", owner: "new", holder: "h", now: Date(), leaseSeconds: 60, takeOver: false)
        #expect(try await database.batchRuns(limit: 5).map(\.status) == ["running", "interrupted", "interrupted", "finished"])
        #expect(lease.runID == 4)
    }
}
