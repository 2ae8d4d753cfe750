import Foundation
import GRDB
import JourneyCore
import JourneyFixtures
import JourneyStorage
import JourneyTestSupport
import Testing

@testable import JourneySQLite

/// SPEC §3: persisting is compare-and-set on the stage the evaluation started from, so two
/// writers that decided the same move from the same snapshot record it exactly once.
@Suite("Concurrent writers moving the same user")
struct ConcurrentWritersTests {
    /// Both writers share one `SQLiteStore` (one pool), or each has its own pool on the
    /// same file, like two processes.
    enum Writers: String, CaseIterable, Sendable { case sharedDatabase, twoPools }

    static let rounds = 40

    @Test("Exactly one of two simultaneous identical moves is recorded, round after round", arguments: Writers.allCases)
    func twoWritersSameMove(writers: Writers) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated database with one fresh J1 user per round, and two writers on it
            let path = directory.appending(path: "race.sqlite").path
            try PlatformDataGenerator(users: Self.rounds, seed: 5, now: Fixture.generatedAt).write(to: path)
            let first = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            let second = writers == .sharedDatabase ? first : try SQLiteStore.open(path: path, mode: .requireMigrated)
            let databases = [first, second]

            for user in Int64(1)...Int64(Self.rounds) {
                // Given both writers built the same move from the same snapshot
                let snapshot = try await first.snapshot(user: user, now: Fixture.now)
                #expect(snapshot.storedStage == "J1_NEW_USER")
                let moves = (0..<2).map { writer in
                    PendingMove(
                        userID: user, expectedStage: snapshot.storedStage,
                        transitions: [move(.j1, .j2, "writer \(writer)")], metrics: snapshot.metrics)
                }

                // When they persist at the same time
                let outcomes = await concurrently(2) { writer -> Result<PersistResult, StorageError> in
                    do throws(StorageError) {
                        return .success(try await databases[writer].persist([moves[writer]], rulesVersion: "test-1", source: .api, now: Fixture.now))
                    } catch {
                        return .failure(error)
                    }
                }

                // Then exactly one recorded the move and the other was told it lost the race
                let persisted = try outcomes.map { try $0.get() }
                let winners = persisted.indices.filter { persisted[$0].recorded.count == 1 }
                #expect(winners.count == 1, "round \(user): \(persisted)")
                #expect(persisted.map(\.recorded.count).reduce(0, +) == 1)
                guard let winner = winners.first else { continue }
                let loser = 1 - winner
                #expect(persisted[loser].conflicted == [user])
                #expect(persisted[loser].recorded.isEmpty && persisted[loser].pinned.isEmpty)
                #expect(persisted[winner].conflicted.isEmpty)

                // and the table holds one row for the user, seq 1, the winner's
                let history = try await first.history(user: user)
                #expect(history.map(\.seq) == [1])
                #expect(history.first?.reason == "writer \(winner)")
                #expect(try await first.snapshot(user: user, now: Fixture.now).storedStage == "J2_ACTIVE_USER")
            }
            try first.writer.readNow { db throws in
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journey_transitions") == Self.rounds)
            }
        }
    }

    @Test("The loser re-reads and re-evaluates: no move lost, none recorded twice", arguments: Writers.allCases)
    func loserRetriesFromTheNewStage(writers: Writers) async throws {
        try await withTemporaryDirectory { directory in
            // Given a migrated database and a few writers
            let path = directory.appending(path: "retry.sqlite").path
            try PlatformDataGenerator(users: 20, seed: 6, now: Fixture.generatedAt).write(to: path)
            let first = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow)
            let writerCount = 4
            let databases = try (0..<writerCount).map { index in
                writers == .sharedDatabase || index == 0 ? first : try SQLiteStore.open(path: path, mode: .requireMigrated)
            }
            // The rules of this test: J1 -> J2 -> J3, then stay.
            let next: [String: StageID] = ["J1_NEW_USER": .j2, "J2_ACTIVE_USER": .j3]

            for user in Int64(1)...20 {
                // When every writer evaluates and persists until the user stays put, re-reading and
                // re-evaluating after each attempt (won or lost)
                let recorded = Collected<RecordedTransition>()
                let failures = Collected<String>()
                _ = await concurrently(writerCount) { writer in
                    let database = databases[writer]
                    for _ in 0..<10 {
                        do {
                            let snapshot = try await database.snapshot(user: user, now: Fixture.now)
                            guard let target = next[snapshot.storedStage] else { return }
                            let pending = PendingMove(
                                userID: user, expectedStage: snapshot.storedStage,
                                transitions: [move(StageID(snapshot.storedStage), target, "writer \(writer)")],
                                metrics: snapshot.metrics)
                            let result = try await database.persist([pending], rulesVersion: "test-1", source: .batch, now: Fixture.now)
                            result.recorded.forEach(recorded.append)
                        } catch {
                            failures.append("\(error)")
                            return
                        }
                    }
                    failures.append("writer \(writer) never settled")
                }

                // Then the user made each move exactly once, in order
                #expect(failures.elements.isEmpty, "\(failures.elements)")
                let moves = recorded.elements.sorted { $0.seq < $1.seq }
                #expect(moves.map(\.seq) == [1, 2], "user \(user): \(moves)")
                #expect(moves.map(\.to) == [.j2, .j3])
                let history = try await first.history(user: user)
                #expect(history == moves)
                #expect(try await first.snapshot(user: user, now: Fixture.now).storedStage == "J3_POWER_USER")
            }
        }
    }
}

/// Two processes that start at once (two API servers, or `journey migrate` while the service
/// starts) both open the same un-migrated file with `.migrate`.
@Suite("Concurrent migrations")
struct ConcurrentMigrationTests {
    @Test("Two pools migrating the same platform file at once both succeed, migrate it once, and each reports only what it did")
    func twoMigratorsAtOnce() async throws {
        var failures: [String] = []
        for round in 1...16 {
            try await withTemporaryDirectory { directory in
                // Given an un-migrated platform database
                let path = directory.appending(path: "race.sqlite").path
                try PlatformDataGenerator(users: 120, seed: UInt64(round), now: Fixture.generatedAt).write(to: path)

                // When two pools open it with .migrate at the same time
                let errors = Collected<String>()
                let reports = Collected<MigrationReport>()
                DispatchQueue.concurrentPerform(iterations: 2) { _ in
                    do {
                        if let report = try SQLiteStore.open(path: path, mode: .migrate, now: Fixture.migrationNow).migration { reports.append(report) }
                    } catch {
                        errors.append("\(error)")
                    }
                }
                failures += errors.elements.map { "round \(round): \($0)" }

                // Then between them the two reports name every migration and every table made, each once
                let (one, other) = (reports.elements.first ?? MigrationReport(), reports.elements.last ?? MigrationReport())
                #expect(reports.elements.count == 2)
                #expect(Set(one.migrationsApplied).isDisjoint(with: other.migrationsApplied), "round \(round): \(one) / \(other)")
                #expect(one.migrationsApplied.count + other.migrationsApplied.count == JourneyMigrations.migrator(now: Fixture.now).migrations.count)
                #expect(Set(one.tablesCreated).isDisjoint(with: other.tablesCreated) && Set(one.columnsAdded).isDisjoint(with: other.columnsAdded))
                #expect(one.columnsAdded.count + other.columnsAdded.count == 3, "round \(round): \(one) / \(other)")

                // Then the file is migrated once: every migration recorded, counts exact
                let database = try SQLiteStore.open(path: path, mode: .requireMigrated)
                try database.writer.read { db throws in
                    #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grdb_migrations") == JourneyMigrations.migrator(now: Fixture.now).migrations.count)
                    #expect(try followerCountDrift(db).isEmpty)
                }
            }
        }
        // and neither opener failed
        #expect(failures.isEmpty, "\(failures.count) failed opens: \(failures.prefix(3))")
    }
}
