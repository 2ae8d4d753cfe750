import Foundation
import GRDB
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneySQLite

/// The readers a command-line batch opens beside its writer (`concurrentReads`): they map the file
/// and keep a small page cache of their own; the writer keeps SQLite's default cache and no map.
@Suite("The batch's reader connections")
struct BatchReadersTests {
    @Test("Reads beside the writer run on connections that map the file and cache 256 KiB; the writer caches SQLite's default")
    func readerSettings() async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated file in WAL mode, opened as `journey batch` opens it
            _ = try Fixture.smallMigratedDatabase(in: directory)
            let path = directory.appending(path: "small.sqlite").path
            let store = try SQLiteStore.open(path: path, mode: .requireMigrated, concurrentReads: true)

            // When several reads run at once, and the writer is asked the same
            let settings = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await store.read { db in
                            usleep(20_000)
                            return [
                                try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0,
                                try Int.fetchOne(db, sql: "PRAGMA mmap_size") ?? 0,
                            ]
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let writer = try store.writer.readNow { db in
                [try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0, try Int.fetchOne(db, sql: "PRAGMA mmap_size") ?? 0]
            }

            // Then every read had the readers' small cache and a map; the writer neither
            #expect(settings.count == 8)
            for setting in settings {
                #expect(setting[0] == -SQLiteStore.batchReaderCacheKiB)
                #expect(setting[1] > 0)
            }
            #expect(writer == [-2_000, 0])
        }
    }
}
