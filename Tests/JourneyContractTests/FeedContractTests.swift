import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

/// SPEC §9: the transitions table as an ordered, durable feed; what changed past a cursor; the
/// adopted rules; how a store tells that another process committed.
@Suite("Contract: the feed, changes and adopted rules")
struct FeedContractTests {
    @Test("transitions(after:limit:) pages the committed moves in id order, each once, from any id", arguments: Backend.available)
    func transitionsPageInIDOrder(_ backend: Backend) async throws {
        try await backend.with(.users(6)) { database in
            let store = database.store
            // Given moves committed one at a time and two at once
            for user in Int64(1)...3 {
                _ = try await store.persist([pending(user, [move(.j1, .j2)])], rulesVersion: "v", source: .cli, now: Instants.now, progress: nil)
            }
            _ = try await store.persist(
                [pending(4, [move(.j1, .j2), move(.j2, .j3)]), pending(5, [move(.j1, .j2)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            _ = try await store.decide(user: 6, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j1, .j4)], ()) }

            // When the feed is read in pages of two
            var received: [RecordedTransition] = []
            var after: Int64 = 0
            while true {
                let page = try await store.transitions(after: after, limit: 2)
                #expect(page.count <= 2)
                guard let last = page.last else { break }
                received += page
                after = last.id
            }

            // Then every move came once, in id order, which is commit order
            #expect(received.map(\.userID) == [1, 2, 3, 4, 4, 5, 6])
            #expect(received.map(\.id) == received.map(\.id).sorted() && Set(received.map(\.id)).count == 7)
            #expect(received.filter { $0.userID == 4 }.map(\.seq) == [1, 2])
            // and a read resumed after the third id gives exactly the rest
            #expect(try await store.transitions(after: received[2].id, limit: 100) == Array(received[3...]))
            #expect(try await store.transitions(after: received[6].id, limit: 100).isEmpty)
            #expect(try await store.feedHead().transition == received[6].id)
        }
    }

    @Test(
        "changes(after:) names the users moved, pinned and unpinned past a cursor, or nil past the limit; feedHead moves with them",
        arguments: Backend.available)
    func changesPastACursor(_ backend: Backend) async throws {
        try await backend.with(.users(5)) { database in
            let store = database.store
            // Given a cursor at the head of an empty log
            let start = try await store.feedHead()
            #expect(start == FeedCursor())
            #expect(try await store.changes(after: start, limit: 100).touchedUsers == [])

            // When user 1 is moved, user 2 pinned, user 3 pinned and unpinned
            _ = try await store.persist([pending(1, [move(.j1, .j2)])], rulesVersion: "v", source: .cli, now: Instants.now, progress: nil)
            _ = try await store.pin(user: 2, reason: "held", now: Instants.now)
            _ = try await store.pin(user: 3, reason: "held", now: Instants.now)
            _ = try await store.unpin(user: 3)

            // Then the changes name the three users, and the cursor moved to the head
            let changes = try await store.changes(after: start, limit: 100)
            #expect(changes.touchedUsers == [1, 2, 3])
            #expect(changes.rulesAdopted == false)
            let head = try await store.feedHead()
            #expect(changes.cursor == head)
            #expect(head.transition > start.transition && head.pinEvent > start.pinEvent && head.adoptedRules == 0)
            // and past more users than the limit, nil: drop every cached answer
            #expect(try await store.changes(after: start, limit: 2).touchedUsers == nil)
            // and nothing more past the new cursor
            #expect(try await store.changes(after: changes.cursor, limit: 100).touchedUsers == [])

            // And an unpin of a user who had no pin is no event; a refused or conflicted move neither
            #expect(try await store.unpin(user: 4) == false)
            _ = try await store.persist(
                [pending(1, [move(.j1, .j2)]), pending(5, [move(.j1, .j2), move(.j2, .j2)])],
                rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
            #expect(try await store.changes(after: changes.cursor, limit: 100).touchedUsers == [])
        }
    }

    @Test("An adopted rule set is the latest adoption; adoptions move the cursor; rulesVersions counts moves per version", arguments: Backend.available)
    func adoptRules(_ backend: Backend) async throws {
        try await backend.with(.users(3)) { database in
            let store = database.store
            // Given nothing adopted yet
            #expect(try await store.adoptedRules() == nil)
            let before = try await store.feedHead()

            // When two sets are adopted, then the first again
            let adoptedAt = Instants.now.addingTimeInterval(-60)
            let first = try await store.adoptRules(version: "v1", text: "version: v1\n# é 🎉\n", source: "Rules/v1.yaml", now: adoptedAt)
            let second = try await store.adoptRules(version: "v2", text: "version: v2\n", source: "Rules/v2.yaml", now: Instants.now)

            // Then the latest is in force, read back as written
            #expect(first.version == "v1" && first.text == "version: v1\n# é 🎉\n" && first.source == "Rules/v1.yaml" && first.adoptedAt == adoptedAt)
            #expect(second.id > first.id)
            #expect(try await store.adoptedRules() == second)
            let changes = try await store.changes(after: before, limit: 10)
            #expect(changes.rulesAdopted && changes.cursor.adoptedRules == second.id)
            #expect(try await store.changes(after: changes.cursor, limit: 10).rulesAdopted == false)
            // and adopting the same text again is an act of its own
            let again = try await store.adoptRules(version: "v1", text: first.text, source: first.source, now: Instants.now)
            #expect(again.id > second.id)
            #expect(try await store.adoptedRules() == again)

            // And moves are counted per rules version, at or after an instant, most used first
            _ = try await store.persist(
                [pending(1, [move(.j1, .j2)])], rulesVersion: "v1", source: .batch, now: Instants.now.addingTimeInterval(-10 * Instants.day), progress: nil)
            _ = try await store.persist(
                [pending(2, [move(.j1, .j2), move(.j2, .j3)]), pending(3, [move(.j1, .j2)])],
                rulesVersion: "v2", source: .batch, now: Instants.now, progress: nil)
            let recent = try await store.rulesVersions(since: Instants.now.addingTimeInterval(-Instants.day))
            #expect(recent.map(\.version) == ["v2"] && recent.map(\.transitions) == [3])
            let all = try await store.rulesVersions(since: Instants.now.addingTimeInterval(-30 * Instants.day))
            #expect(all.map(\.version) == ["v2", "v1"] && all.map(\.transitions) == [3, 1])
        }
    }

    @Test("The change signal fires after another connection commits", arguments: Backend.available)
    func changeSignalHearsOtherConnections(_ backend: Backend) async throws {
        try await backend.with(.users(1)) { database in
            // Given a signal on the store, and another connection, as another process would have
            let other = try await database.openStore(readOnly: false)
            let (changes, change) = AsyncStream.makeStream(of: Void.self)
            let signal = database.store.changeSignal(interval: .milliseconds(20))
            let watching = Task { try await signal.watch { change.yield() } }
            defer { watching.cancel() }
            // (a bound only against a signal that never fires: after it, the stream ends)
            let deadline = Task {
                try await Task.sleep(for: .seconds(60))
                change.finish()
            }
            defer { deadline.cancel() }
            var calls = changes.makeAsyncIterator()
            let started = await calls.next() != nil  // the call a watch makes as it starts: it has its baseline now

            // When the other connection commits every 50 ms until the signal is heard (a round that
            // finds the file busy on a loaded machine is not the end: the next one tries again)
            let writes = Task {
                var round = 0
                while !Task.isCancelled {
                    round += 1
                    _ = try? await other.pin(user: 1, reason: "round \(round)", now: Instants.now)
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            defer { writes.cancel() }

            // Then the signal calls back
            let heard = started ? await calls.next() != nil : false
            if !heard { watching.cancel() }
            let ended = heard ? nil : await watching.result
            #expect(heard, "the watch ended: \(String(describing: ended))")
        }
    }

    @Test(
        "A watch calls back once as it starts, so that a commit made before it took its baseline is caught up, not lost",
        arguments: Backend.available)
    func changeSignalCallsBackAsItStarts(_ backend: Backend) async throws {
        try await backend.with(.users(1)) { database in
            // Given a commit made before the watch starts (the last of a batch that ended meanwhile),
            // and a signal that would not poll again for a minute
            _ = try await database.store.pin(user: 1, reason: "before the watch", now: Instants.now)
            let (changes, change) = AsyncStream.makeStream(of: Void.self)
            let watching = Task { try await database.store.changeSignal(interval: .seconds(60)).watch { change.yield() } }
            defer { watching.cancel() }

            // Then it calls back with no further commit (a bound only against a call that never comes)
            let heard = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    var iterator = changes.makeAsyncIterator()
                    return await iterator.next() != nil
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(30))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                change.finish()
                return first
            }
            #expect(heard)
        }
    }

    @Test("observeCommits reports the users a committed write through the store touched, and nothing of a rolled-back one", arguments: Backend.available)
    func observeCommits(_ backend: Backend) async throws {
        guard backend.fixture.reportsCommits else { return }
        try await backend.with(.users(3)) { database in
            let reports = Collected<Set<Int64>>()
            try await database.store.observeCommits { users in reports.append(users) }

            // When a refused move, then a pin and a move, are written through the store
            _ = await storageError {
                _ = try await database.store.decide(user: 3, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j1, .j2), move(.j2, .j2)], ()) }
            }
            _ = try await database.store.pin(user: 1, reason: "held", now: Instants.now)
            _ = try await database.store.decide(user: 2, now: Instants.now, rulesVersion: "v", source: .api) { _ in ([move(.j1, .j2)], ()) }

            // Then each commit named its user, and the rolled-back one named no one
            let touched = reports.elements.reduce(into: Set<Int64>()) { $0.formUnion($1) }
            #expect(touched == [1, 2], "\(reports.elements)")
        }
    }
}
