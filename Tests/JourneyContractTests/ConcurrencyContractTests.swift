import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

/// Several writers on one database, in one process and through another connection (as another
/// process): decide needs no retry, persist's compare-and-set lets exactly one of two identical
/// moves through, and no move is ever recorded twice or from a stale stage.
@Suite("Contract: concurrent writers")
struct ConcurrencyContractTests {
    /// The journey of these tests: J1 → J2 → J3, then stay.
    static let next: [String: StageID] = ["J1_NEW_USER": .j2, "J2_ACTIVE_USER": .j3]

    @Test("decide under tasks on two connections: each move once, each from the stage it replaced, one closure call per decide", arguments: Backend.available)
    func decideUnderConcurrentWriters(_ backend: Backend) async throws {
        let users = 12
        try await backend.with(.users(users)) { database in
            // Given two stores on the database (another connection, as another process), four tasks on each
            let stores = [database.store, try await database.openStore(readOnly: false)]
            let calls = Collected<Int64>()
            let outcomes = Collected<(user: Int64, seen: String, recorded: [RecordedTransition])>()
            let failures = Collected<String>()

            // When every task decides every user until the user stays, the closure moving one stage from what it sees
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    let store = stores[task % 2]
                    group.addTask {
                        for user in Int64(1)...Int64(users) {
                            for _ in 0..<4 {
                                do {
                                    let result = try await store.decide(user: user, now: Instants.now, rulesVersion: "v", source: .api) { snapshot in
                                        calls.append(user)
                                        guard let target = Self.next[snapshot.storedStage] else { return ([], snapshot.storedStage) }
                                        return ([move(StageID(snapshot.storedStage), target, "task \(task)")], snapshot.storedStage)
                                    }
                                    outcomes.append((user, result.decision, result.recorded))
                                    if result.recorded.isEmpty { break }
                                } catch {
                                    failures.append("task \(task), user \(user): \(error)")
                                    return
                                }
                            }
                        }
                    }
                }
            }

            // Then no decide failed (no busy, no retry to exhaust), and each ran its closure exactly once
            #expect(failures.elements.isEmpty, "\(failures.elements.prefix(3))")
            #expect(calls.elements.count == outcomes.elements.count)
            // and each recorded move starts from the stage the closure saw, which was the stored one
            for outcome in outcomes.elements {
                #expect(outcome.recorded.first.map { $0.from.rawValue == outcome.seen } ?? true, "user \(outcome.user)")
            }
            // and every user made each move exactly once, in order
            for user in Int64(1)...Int64(users) {
                let history = try await database.store.history(user: user)
                #expect(history.map(\.seq) == [1, 2], "user \(user): \(history)")
                #expect(history.map(\.from) == [.j1, .j2] && history.map(\.to) == [.j2, .j3], "user \(user)")
                #expect(outcomes.elements.filter { $0.user == user }.flatMap(\.recorded).sorted { $0.seq < $1.seq } == history)
                #expect(try await database.store.snapshot(user: user, now: Instants.now).storedStage == "J3_POWER_USER")
            }
            #expect(try await database.store.transitions(after: 0, limit: 1_000).count == users * 2)
        }
    }

    @Test("Exactly one of two simultaneous identical persists is recorded, round after round; the other is conflicted", arguments: Backend.available)
    func persistCompareAndSetRace(_ backend: Backend) async throws {
        let rounds = 20
        try await backend.with(.users(rounds)) { database in
            // Given two stores on the database
            let stores = [database.store, try await database.openStore(readOnly: false)]
            for user in Int64(1)...Int64(rounds) {
                // Given both writers built the same move from the same snapshot
                let snapshot = try await stores[0].snapshot(user: user, now: Instants.now)
                let moves = (0..<2).map { writer in pending(user, from: snapshot.storedStage, [move(.j1, .j2, "writer \(writer)")], metrics: snapshot.metrics) }

                // When they persist at the same time
                let results = try await withThrowingTaskGroup(of: (Int, PersistResult).self) { group in
                    for writer in 0..<2 {
                        group.addTask {
                            (writer, try await stores[writer].persist([moves[writer]], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil))
                        }
                    }
                    var results: [Int: PersistResult] = [:]
                    for try await (writer, result) in group { results[writer] = result }
                    return results
                }

                // Then exactly one recorded the move and the other was told it lost the race
                let winners = results.filter { $0.value.recorded.count == 1 }.map(\.key)
                #expect(winners.count == 1, "round \(user)")
                guard let winner = winners.first, let loser = results[1 - winner] else { continue }
                #expect(loser.conflicted == [user] && loser.recorded.isEmpty && loser.pinned.isEmpty)
                #expect(results[winner]?.conflicted.isEmpty == true)
                // and the database holds one row for the user, seq 1, the winner's
                let history = try await stores[0].history(user: user)
                #expect(history.map(\.seq) == [1] && history.first?.reason == "writer \(winner)")
            }
            #expect(try await database.store.transitions(after: 0, limit: 1_000).count == rounds)
        }
    }

    @Test("A decide and a persist of the same user race: the persist's compare-and-set sees the decided move", arguments: Backend.available)
    func decideAndPersistRace(_ backend: Backend) async throws {
        let rounds = 20
        try await backend.with(.users(rounds)) { database in
            let stores = [database.store, try await database.openStore(readOnly: false)]
            for user in Int64(1)...Int64(rounds) {
                // Given a batch that read the user in J1, and an API call deciding the user at the same time
                let snapshot = try await stores[1].snapshot(user: user, now: Instants.now)
                async let decided = stores[0].decide(user: user, now: Instants.now, rulesVersion: "v", source: .api) { snapshot in
                    (Self.next[snapshot.storedStage].map { [move(StageID(snapshot.storedStage), $0, "api")] } ?? [], ())
                }
                async let persisted = stores[1].persist(
                    [pending(user, from: snapshot.storedStage, [move(.j1, .j2, "batch")])],
                    rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
                let (api, batch) = try await (decided, persisted)

                // Then whichever committed first, the user moved J1→J2 once, then (if the API came second) J2→J3
                let history = try await stores[0].history(user: user)
                #expect(history.map(\.seq) == Array(1...history.count), "user \(user): \(history)")
                #expect(history.first?.from == .j1 && history.first?.to == .j2)
                #expect(zip(history, history.dropFirst()).allSatisfy { $0.to == $1.from }, "a move from a stale stage: \(history)")
                if batch.recorded.isEmpty {
                    #expect(batch.conflicted == [user] && api.recorded.map(\.reason) == ["api"])
                } else {
                    #expect(api.recorded.map(\.to) == [.j3])
                }
            }
        }
    }
}
