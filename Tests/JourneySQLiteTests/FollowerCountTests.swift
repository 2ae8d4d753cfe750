import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneyStorage
import Testing

@testable import JourneySQLite

/// SPEC §3: `users.follower_count` is kept exact by triggers on `follows`, for every writer in
/// any process, through inserts, deletes and updates that move a follow to another user.
@Suite("follower_count stays exact")
struct FollowerCountTests {
    /// The schema the follows live in: a migrated generated platform database (no UNIQUE on the
    /// pair), or a file the migrator created from nothing (UNIQUE(follower_id, following_id)).
    enum Origin: String, CaseIterable, Sendable { case migratedPlatform, createdByMigrator }

    @Test("Thousands of random follow writes from a second connection", arguments: Origin.allCases)
    func randomWritesFromAnotherConnection(origin: Origin) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated file with users and follows, open in the store
            let path = directory.appending(path: "follows.sqlite").path
            let userCount = 150
            if origin == .migratedPlatform {
                try PlatformDataGenerator(users: userCount, seed: 11, now: Fixture.generatedAt).write(to: path)
            }
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            if origin == .createdByMigrator {
                try database.writer.writeNow { db in
                    for id in 1...userCount {
                        try db.execute(sql: "INSERT INTO users(id, email) VALUES (?, ?)", arguments: [id, "u\(id)@example.org"])
                    }
                }
            }

            // and a second, independent connection on the same file, like another process
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let other = try DatabaseQueue(path: path, configuration: configuration)
            var random = SplitMix64(seed: 2025)
            var counts = (inserts: 0, deletes: 0, moves: 0, bulkDeletes: 0, bulkMoves: 0, followerMoves: 0, ignored: 0)

            // When it makes thousands of random inserts, deletes and moves, in small transactions
            for batch in 0..<60 {
                try other.writeNow { db in
                    for _ in 0..<50 {
                        let roll = random.below(100)
                        let a = Int64(1 + random.below(userCount)), b = Int64(1 + random.below(userCount))
                        if roll < 45 {
                            // a follow of b, once per pair
                            if origin == .createdByMigrator && roll < 10 {
                                try db.execute(sql: "INSERT OR IGNORE INTO follows(follower_id, following_id) VALUES (?, ?)", arguments: [a, b])
                                if db.changesCount == 0 { counts.ignored += 1 } else { counts.inserts += 1 }
                            } else if try !pairExists(db, a, b) {
                                try db.execute(
                                    sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (?, ?, ?)", arguments: [a, b, Fixture.now])
                                counts.inserts += 1
                            }
                        } else if roll < 70 {
                            // unfollow: delete one existing row
                            if let id = try someFollow(db, &random) {
                                try db.execute(sql: "DELETE FROM follows WHERE id = ?", arguments: [id])
                                counts.deletes += 1
                            }
                        } else if roll < 92 {
                            // move: the row now points at another user
                            if let id = try someFollow(db, &random),
                                let follower = try Int64.fetchOne(db, sql: "SELECT follower_id FROM follows WHERE id = ?", arguments: [id]),
                                try !pairExists(db, follower, b)
                            {
                                try db.execute(sql: "UPDATE follows SET following_id = ? WHERE id = ?", arguments: [b, id])
                                counts.moves += 1
                            }
                        } else if roll < 94 {
                            // a change of follower only: no follower count changes
                            if let id = try someFollow(db, &random),
                                let following = try Int64.fetchOne(db, sql: "SELECT following_id FROM follows WHERE id = ?", arguments: [id]),
                                try !pairExists(db, a, following)
                            {
                                try db.execute(sql: "UPDATE follows SET follower_id = ? WHERE id = ?", arguments: [a, id])
                                counts.followerMoves += 1
                            }
                        } else if roll < 96 {
                            // an account deleted: every follow it made, in one statement
                            try db.execute(sql: "DELETE FROM follows WHERE follower_id = ?", arguments: [a])
                            counts.bulkDeletes += 1
                        } else if roll < 98 {
                            // a merge: several follows of a move to b in one statement (pairs kept unique)
                            try db.execute(
                                sql: """
                                    UPDATE follows SET following_id = ?
                                    WHERE following_id = ? AND follower_id % 3 = 0
                                      AND follower_id NOT IN (SELECT follower_id FROM follows WHERE following_id = ?)
                                    """, arguments: [b, a, b])
                            counts.bulkMoves += 1
                        } else {
                            // an update that sets the same value: nothing to count
                            try db.execute(sql: "UPDATE follows SET following_id = following_id WHERE follower_id = ?", arguments: [a])
                        }
                    }
                }
                // and, now and then, the store reads while the other connection writes
                if batch % 20 == 19 {
                    let user = Int64(1 + random.below(userCount))
                    let followers = try await database.snapshot(user: user, now: Fixture.now).metrics.followers
                    let real = try database.writer.readNow { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows WHERE following_id = ?", arguments: [user])
                    }
                    #expect(followers == real, "user \(user) after batch \(batch)")
                }
            }
            try other.close()

            // Then every kind of write happened, many times
            #expect(counts.inserts + counts.deletes + counts.moves > 2_000, "\(counts)")
            #expect(counts.inserts > 500 && counts.deletes > 300 && counts.moves > 300, "\(counts)")
            #expect(counts.bulkDeletes > 0 && counts.bulkMoves > 0 && counts.followerMoves > 0, "\(counts)")

            // and for every user follower_count equals the real count of follows
            try database.writer.readNow { db in
                let drift = try followerCountDrift(db)
                #expect(drift.isEmpty, "follower_count drifted for \(drift.count) users: \(drift.prefix(10))")
                #expect(
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows WHERE following_id BETWEEN 1 AND ?", arguments: [userCount])
                        == Int.fetchOne(db, sql: "SELECT SUM(follower_count) FROM users"))
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows")! > 0)
            }
            // and the metrics read that count
            for user in Int64(1)...Int64(userCount) where user % 15 == 0 {
                let snapshot = try await database.snapshot(user: user, now: Fixture.now)
                let real = try database.writer.readNow { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM follows WHERE following_id = ?", arguments: [user])
                }
                #expect(snapshot.metrics.followers == real)
            }
        }
    }

    @Test("A REPLACE that deletes a row keeps the count when the writer turns on recursive_triggers")
    func replaceWithRecursiveTriggers() async throws {
        try await withTemporaryDirectory { directory in
            // Given a file created by the migrator (UNIQUE(follower_id, following_id)) with 1 following 2
            let path = directory.appending(path: "replace.sqlite").path
            let database = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            try database.writer.writeNow { db in
                try db.execute(sql: "INSERT INTO users(id) VALUES (1), (2)")
                try db.execute(sql: "INSERT INTO follows(follower_id, following_id) VALUES (1, 2)")
            }

            // When another writer with recursive_triggers replaces the pair three times
            var configuration = Configuration()
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA recursive_triggers = ON") }
            let other = try DatabaseQueue(path: path, configuration: configuration)
            for _ in 0..<3 {
                try other.writeNow { db in
                    try db.execute(sql: "INSERT OR REPLACE INTO follows(follower_id, following_id, created_at) VALUES (1, 2, ?)", arguments: [Fixture.now])
                }
            }
            try other.close()

            // Then user 2 still has exactly one follower
            #expect(try await database.snapshot(user: 2, now: Fixture.now).metrics.followers == 1)
            try database.writer.readNow { db throws in #expect(try followerCountDrift(db).isEmpty) }
        }
    }
}

/// Whether `follower` already follows `following` (one row per pair).
private func pairExists(_ db: Database, _ follower: Int64, _ following: Int64) throws -> Bool {
    try Bool.fetchOne(db, sql: "SELECT 1 FROM follows WHERE follower_id = ? AND following_id = ?", arguments: [follower, following]) != nil
}

/// An existing follow row, drawn with the seeded generator (nil when there is none).
private func someFollow(_ db: Database, _ random: inout SplitMix64) throws -> Int64? {
    guard let maxID = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM follows") else { return nil }
    let start = Int64(1 + random.below(Int(maxID)))
    return try Int64.fetchOne(db, sql: "SELECT id FROM follows WHERE id >= ? ORDER BY id LIMIT 1", arguments: [start])
}
