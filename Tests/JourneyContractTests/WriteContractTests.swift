import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

/// SPEC §3 "Persisting a stage": the new stage, `last_journey_update` and one history row per move,
/// in one transaction; one decision, one write on the one-user path; compare-and-set for the batch;
/// never over an operator's pin.
@Suite("Contract: decide, persist, history and pins")
struct WriteContractTests {
    @Test("decide reads the user once, under the write lock, and writes the moves it chose with the stage, seq 1 and 2", arguments: Backend.available)
    func decideWritesTheDecision(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given alice in J1 since her signup
            let seen = Collected<UserSnapshot>()

            // When a decision moves her two stages
            let (snapshot, decision, recorded) = try await database.store.decide(user: 1, now: Instants.now, rulesVersion: "mundo-tango@3", source: .cli) {
                snapshot in
                seen.append(snapshot)
                return ([move(.j1, .j2, "posted and followed"), move(.j2, .j3, "organizes events")], "two hops")
            }

            // Then the closure ran once, on the stored state, and its answer comes back untouched
            #expect(seen.elements.count == 1)
            #expect(seen.elements.first == snapshot)
            #expect(snapshot.storedStage == "J1_NEW_USER" && snapshot.metrics.posts == 6)
            #expect(decision == "two hops")
            // and two rows, seq 1 and 2, in order, with what was decided, committed
            #expect(recorded.map(\.seq) == [1, 2])
            #expect(recorded.map(\.from) == [.j1, .j2] && recorded.map(\.to) == [.j2, .j3])
            #expect(recorded.map(\.reason) == ["posted and followed", "organizes events"])
            #expect(recorded.allSatisfy { $0.userID == 1 && $0.rulesVersion == "mundo-tango@3" && $0.source == .cli && $0.createdAt == Instants.now })
            #expect(try await database.store.history(user: 1) == recorded)
            #expect(try await database.store.transitions(after: 0, limit: 10) == recorded)
            // and the user's row holds the last stage, entered now
            let after = try await database.store.snapshot(user: 1, now: Instants.now)
            #expect(after.storedStage == "J3_POWER_USER")
            #expect(after.metrics.stageEnteredAt == Instants.now)
            #expect(after.metrics.value(of: .daysInStage, now: Instants.now) == .integer(0))
            // and the metrics the moves were decided on are a JSON object of every metric
            for row in recorded {
                let json = try #require(try JSONSerialization.jsonObject(with: Data(row.metrics.utf8)) as? [String: Any])
                #expect(Set(json.keys) == Set(Metric.allCases.map(\.rawValue)))
                #expect(json["posts"] as? Int == 6)
                #expect(json["posts_last_30_days"] as? Int == 3)
                #expect(json["connections"] as? Int == 5)
                #expect(json["days_since_signup"] as? Int == 164)
                #expect(json["subscription_tier"] as? String == "basic")
                #expect(json["onboarding_complete"] as? Bool == true)
            }
        }
    }

    @Test("decide with no moves writes nothing, and missing metrics are JSON null in a stored snapshot", arguments: Backend.available)
    func decideWithoutMoves(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // When the decision for user 4 (NULL everywhere) is to stay
            let stay = try await database.store.decide(user: 4, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([], 0) }

            // Then nothing is written, not even last_journey_update
            #expect(stay.recorded.isEmpty)
            let after = try await database.store.snapshot(user: 4, now: Instants.now)
            #expect(after == stay.snapshot)
            #expect(after.metrics.stageEnteredAt == Instants.migration)
            #expect(try await database.store.feedHead().transition == 0)

            // And when a move is decided for them, the missing metrics are null, the present ones numbers
            let moved = try await database.store.decide(user: 4, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j1, .j2)], 1) }
            let text = try #require(moved.recorded.first?.metrics)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(Set(json.keys) == Set(Metric.allCases.map(\.rawValue)))
            for name in ["days_since_signup", "onboarding_complete", "subscription_tier", "role"] {
                #expect(json[name] is NSNull, "\(name) = \(String(describing: json[name]))")
            }
            #expect(json["following"] as? Int == 1)
            #expect(json["days_in_stage"] as? Int == 10)
        }
    }

    @Test("decide hands the closure the user's pin; a pinned user is not moved", arguments: Backend.available)
    func decideSeesThePin(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given an operator pinned bob in J1
            let pinnedAt = Instants.now.addingTimeInterval(-3_600)
            #expect(try await database.store.pin(user: 2, reason: "ambassador, keep in J1", now: pinnedAt) == "J1_NEW_USER")

            // When a decision is made for him the way the service makes it (no moves while pinned)
            let result = try await database.store.decide(user: 2, now: Instants.now, rulesVersion: "v", source: .api) { snapshot in
                (snapshot.pin == nil ? [move(.j1, .j2)] : [], snapshot.pin)
            }

            // Then the closure saw the pin, and nothing was written
            #expect(result.decision == Pin(stage: "J1_NEW_USER", reason: "ambassador, keep in J1", createdAt: pinnedAt))
            #expect(result.recorded.isEmpty)
            #expect(try await database.store.history(user: 2).isEmpty)
            #expect(try await database.store.snapshot(user: 2, now: Instants.now).storedStage == "J1_NEW_USER")
        }
    }

    @Test("A refused row rolls the whole decision back: decide throws writeRefused and nothing of the user is written", arguments: Backend.available)
    func decideRefusedRowRollsBack(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given bob in J1, and a decision whose second row breaks a CHECK (to_state <> from_state)
            let before = try await database.store.snapshot(user: 2, now: Instants.now)

            // When it is decided
            let error = await storageError {
                _ = try await database.store.decide(user: 2, now: Instants.now, rulesVersion: "v", source: .api) { _ in
                    ([move(.j1, .j2), move(.j2, .j2)], ())
                }
            }

            // Then the store refuses the user's move, and neither the first row nor the stage was written
            guard case .writeRefused(let user, let message)? = error else { Issue.record("expected writeRefused, got \(String(describing: error))"); return }
            #expect(user == 2 && !message.isEmpty)
            #expect(error?.category == .refused)
            #expect(try await database.store.history(user: 2).isEmpty)
            #expect(try await database.store.snapshot(user: 2, now: Instants.now) == before)
            #expect(try await database.store.feedHead().transition == 0)
        }
    }

    @Test("persist writes each move whole or not at all: a refused row leaves nothing of that user, and the others are written", arguments: Backend.available)
    func persistRefusedRowIsAlone(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            let before = try await store.snapshot(user: 2, now: Instants.now)
            let broken = pending(2, [move(.j1, .j2), move(.j2, .j2)])

            // When the broken move is persisted alone
            let alone = try await store.persist([broken], rulesVersion: "v", source: .api, now: Instants.now, progress: nil)

            // Then it is refused with the database's reason, and neither the first row nor the stage was written
            #expect(alone.refused.keys.sorted() == [2] && alone.refused[2]?.isEmpty == false, "\(alone)")
            #expect(alone.recorded.isEmpty)
            #expect(try await store.history(user: 2).isEmpty)
            #expect(try await store.snapshot(user: 2, now: Instants.now) == before)

            // And in a batch, the broken user does not stop the others: their moves are written
            let batch = try await store.persist(
                [pending(1, [move(.j1, .j2)]), broken, pending(3, [move(.j1, .j2)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            #expect(Array(batch.refused.keys) == [2], "\(batch.refused)")
            #expect(batch.recorded.map(\.userID) == [1, 3])
            #expect(try await store.history(user: 2).isEmpty)
            #expect(try await store.snapshot(user: 3, now: Instants.now).storedStage == "J2_ACTIVE_USER")
        }
    }

    @Test(
        "a write the platform's trigger undoes without an error (skipped, rewritten, removed) is a refused move: no stage without its row, no row without its stage",
        arguments: Backend.available, TamperedWrite.allCases)
    func tamperedWriteIsRefused(_ backend: Backend, _ tampered: TamperedWrite) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            try await database.tamper(with: tampered, of: 2)

            // When bob's move is persisted among others', and decided alone
            let batch = try await store.persist(
                [pending(1, [move(.j1, .j2)]), pending(2, [move(.j1, .j2)]), pending(3, [move(.j1, .j2)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            let error = await storageError {
                _ = try await store.decide(user: 2, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j1, .j2)], ()) }
            }

            // Then bob is refused both times, with no history; the others moved
            #expect(Array(batch.refused.keys) == [2] && batch.refused[2]?.contains("did not store") == true, "\(batch.refused)")
            #expect(batch.recorded.map(\.userID) == [1, 3])
            guard case .writeRefused(2, _)? = error else { Issue.record("expected writeRefused, got \(String(describing: error))"); return }
            #expect(try await store.history(user: 2).isEmpty)
            #expect(try await store.snapshot(user: 2, now: Instants.now).storedStage == "J1_NEW_USER")
        }
    }

    @Test("persist is compare-and-set: a stale expected stage is conflicted, a pinned user pinned, a move-less user neither", arguments: Backend.available)
    func persistCompareAndSet(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            // Given carol moved to J2 by someone else, and alice pinned
            _ = try await store.persist([pending(3, [move(.j1, .j2)])], rulesVersion: "v", source: .api, now: Instants.now, progress: nil)
            _ = try await store.pin(user: 1, reason: "held", now: Instants.now)

            // When moves decided on the old state are persisted with valid ones for bob and user 4
            let later = Instants.now.addingTimeInterval(60)
            let result = try await store.persist(
                [
                    pending(3, [move(.j1, .j2, "stale")]),
                    pending(1, [move(.j1, .j2)]),
                    pending(2, [move(.j1, .j2)]),
                    pending(5, []),
                    pending(4, [move(.j1, .j2), move(.j2, .j3)]),
                ], rulesVersion: "v", source: .batch, now: later, progress: nil)

            // Then carol is conflicted and untouched, alice pinned, bob and user 4 moved; erin (no move) is nowhere
            #expect(result.conflicted == [3])
            #expect(result.pinned == [1])
            #expect(result.refused.isEmpty)
            #expect(result.recorded.map(\.userID) == [2, 4, 4])
            #expect(try await store.history(user: 3).map(\.reason) == ["criteria met"])
            #expect(try await store.snapshot(user: 3, now: later).metrics.stageEnteredAt == Instants.now)
            #expect(try await store.history(user: 1).isEmpty)
            #expect(try await store.history(user: 5).isEmpty)
            #expect(try await store.snapshot(user: 5, now: later).storedStage == "J1_NEW_USER")
            #expect(try await store.snapshot(user: 4, now: later).storedStage == "J3_POWER_USER")
            #expect(result.recorded.allSatisfy { $0.createdAt == later })
        }
    }

    @Test("A pinned user is left alone by persist until unpinned; pin and unpin report what they did", arguments: Backend.available)
    func pinAndUnpin(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            let store = database.store
            // Given an operator pinned bob in J1
            let pinnedAt = Instants.now.addingTimeInterval(-86_400)
            #expect(try await store.pin(user: 2, reason: "ambassador, keep in J1", now: pinnedAt) == "J1_NEW_USER")
            let snapshot = try await store.snapshot(user: 2, now: Instants.now)
            #expect(snapshot.pin == Pin(stage: "J1_NEW_USER", reason: "ambassador, keep in J1", createdAt: pinnedAt))
            #expect(try await store.chunk(after: 1, limit: 1, now: Instants.now).first?.pin == snapshot.pin)

            // When a move for bob is persisted
            let move = pending(2, [move(.j1, .j2)], metrics: snapshot.metrics)
            let result = try await store.persist([move], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)

            // Then bob is reported as pinned, with nothing written
            #expect(result.pinned == [2])
            #expect(result.recorded.isEmpty && result.conflicted.isEmpty)
            #expect(try await store.history(user: 2).isEmpty)

            // And pinning again replaces the reason; a pin of a user never evaluated holds the empty stage
            #expect(try await store.pin(user: 2, reason: "new reason", now: Instants.now) == "J1_NEW_USER")
            #expect(try await store.snapshot(user: 2, now: Instants.now).pin?.reason == "new reason")
            try await database.setStoredStage(user: 5, "")
            #expect(try await store.pin(user: 5, reason: "fresh", now: Instants.now) == "")

            // When the pin is released (twice)
            #expect(try await store.unpin(user: 2) == true)
            #expect(try await store.unpin(user: 2) == false)
            #expect(try await store.snapshot(user: 2, now: Instants.now).pin == nil)

            // Then the same move goes through
            let retried = try await store.persist([move], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            #expect(retried.recorded.map(\.seq) == [1])
        }
    }

    @Test(
        "History is in seq order; the database refuses a (user, seq) recorded twice; the next move continues after the highest seq",
        arguments: Backend.available)
    func historyOrderAndUniqueSeq(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given rows written out of seq order (ids ascending: seq 3, 1, 2) and another user's row in between
            try await database.insertTransition(user: 1, seq: 3, from: "J3_POWER_USER", to: "J2_ACTIVE_USER", createdAt: Instants.now.addingTimeInterval(3))
            try await database.insertTransition(user: 2, seq: 1, from: "J1_NEW_USER", to: "J2_ACTIVE_USER", createdAt: Instants.now.addingTimeInterval(1))
            try await database.insertTransition(user: 1, seq: 1, from: "J1_NEW_USER", to: "J2_ACTIVE_USER", createdAt: Instants.now.addingTimeInterval(1))
            try await database.insertTransition(user: 1, seq: 2, from: "J2_ACTIVE_USER", to: "J3_POWER_USER", createdAt: Instants.now.addingTimeInterval(2))

            // When alice's history is read
            let history = try await database.store.history(user: 1)

            // Then it is in seq order, hers only
            #expect(history.map(\.seq) == [1, 2, 3])
            #expect(history.map(\.to) == [.j2, .j3, .j2])
            #expect(history.map(\.createdAt) == [1, 2, 3].map { Instants.now.addingTimeInterval($0) })
            #expect(history.allSatisfy { $0.userID == 1 && $0.source == .batch })
            // and a user without moves has an empty history
            #expect(try await database.store.history(user: 5).isEmpty)

            // And a second row with the same (user, seq) is refused by the database itself
            await #expect(throws: (any Error).self) {
                try await database.insertTransition(user: 1, seq: 2, from: "J1_NEW_USER", to: "J2_ACTIVE_USER")
            }
            // and so are metrics that are not a JSON object, an unknown source, a move to the same stage
            await #expect(throws: (any Error).self) {
                try await database.insertTransition(user: 1, seq: 4, from: "J1_NEW_USER", to: "J2_ACTIVE_USER", metrics: "not json")
            }
            await #expect(throws: (any Error).self) {
                try await database.insertTransition(user: 1, seq: 4, from: "J1_NEW_USER", to: "J2_ACTIVE_USER", source: "cron")
            }
            await #expect(throws: (any Error).self) {
                try await database.insertTransition(user: 1, seq: 4, from: "J2_ACTIVE_USER", to: "J2_ACTIVE_USER")
            }
            #expect(try await database.store.history(user: 1).count == 3)

            // And the next persisted or decided move continues after the highest seq
            let next = try await database.store.persist([pending(1, [move(.j1, .j2)])], rulesVersion: "v", source: .api, now: Instants.now, progress: nil)
            #expect(next.recorded.map(\.seq) == [4])
            let decided = try await database.store.decide(user: 1, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j2, .j3)], ()) }
            #expect(decided.recorded.map(\.seq) == [5])
        }
    }

    @Test("Stored moves are read back as written: every field, through history, the feed and decide's answer", arguments: Backend.available)
    func recordsRoundTrip(_ backend: Backend) async throws {
        try await backend.with(SmallPlatform.platform) { database in
            // Given a reason with quotes, a backslash, a newline and non-ASCII text, at an instant with milliseconds
            let at = Instants.now.addingTimeInterval(0.25)
            let reason = "quoted \"reason\" \\ with a\nnewline, é and 🎉"
            let decided = try await database.store.decide(user: 3, now: at, rulesVersion: "rules \"v2\"", source: .cli) { _ in
                ([Transition(from: .j1, to: .j4, kind: .skip, reason: reason)], ())
            }

            // Then history and the feed return exactly what decide said it wrote
            let history = try await database.store.history(user: 3)
            #expect(history == decided.recorded)
            #expect(try await database.store.transitions(after: 0, limit: 1) == decided.recorded)
            let row = try #require(history.first)
            #expect(row.reason == reason && row.rulesVersion == "rules \"v2\"" && row.source == .cli && row.to == .j4)
            #expect(abs(row.createdAt.timeIntervalSince(at)) < 0.001)
            #expect(try await database.store.snapshot(user: 3, now: at).storedStage == "J4_SUPER_ADMIN")
        }
    }
}
