import Foundation
import GRDB
import JourneyCore
import JourneySQLite
import JourneyStorage
import Testing

@testable import Journey

/// SPEC §9: the durable feed, and a cache that hears what other processes commit. "Another
/// process" is a second connection to the file here (the CLI tests use a real one); the change
/// signal is a ``ManualSignal``, so each test says exactly when the service notices.
@Suite("The durable feed and the cache that hears other processes")
struct FeedTests {
    static let j1: StageID = "J1_NEW_USER", j2: StageID = "J2_ACTIVE_USER"

    @Test("The feed replays the table, then delivers commits by another connection, in id order, once; it resumes after any id")
    func replayThenFollow() async throws {
        // Given three moves already recorded by another connection, and a service following the file
        let database = try TemporaryDatabase(users: 6)
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        for user in Int64(1)...3 { _ = try await other.persist([pendingMove(user, Self.j1, Self.j2)], rulesVersion: "v", source: .cli, now: testNow) }
        let signal = ManualSignal()
        let service = try await database.service()
        let following = Task { try await service.run(signal: signal) }
        defer { following.cancel() }

        // When a reader starts from 0 while the other connection records three more
        let reader = Task {
            var received: [RecordedTransition] = []
            for try await move in service.transitions(after: 0, pageSize: 2) {
                received.append(move)
                if received.count == 6 { break }
            }
            return received
        }
        for user in Int64(4)...6 {
            _ = try await other.persist([pendingMove(user, Self.j1, Self.j2)], rulesVersion: "v", source: .cli, now: testNow)
            await signal.fire()
        }
        let received = try await reader.value

        // Then it received all six, in id order, each once
        #expect(received.map(\.userID) == [1, 2, 3, 4, 5, 6])
        #expect(received.map(\.id) == received.map(\.id).sorted())
        #expect(Set(received.map(\.id)).count == 6)

        // And a feed resumed after the third id gives exactly the last three
        var resumed: [RecordedTransition] = []
        for try await move in service.transitions(after: received[2].id) {
            resumed.append(move)
            if resumed.count == 3 { break }
        }
        #expect(resumed == Array(received[3...]))
    }

    @Test("Moves, pins and unpins by another connection drop the cached answer once the feed sees them")
    func cacheHearsOtherProcesses() async throws {
        // Given a following service with users 1 and 2 cached
        let database = try TemporaryDatabase(users: 2)
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        let signal = ManualSignal()
        let service = try await database.service()
        let following = Task { try await service.run(signal: signal) }
        defer { following.cancel() }
        await signal.fire()
        _ = try await service.journey(of: 1)
        _ = try await service.journey(of: 2)

        // When another process moves user 1 and pins user 2
        _ = try await other.persist([pendingMove(1, Self.j1, Self.j2)], rulesVersion: "v", source: .cli, now: testNow)
        _ = try await other.pin(user: 2, reason: "support ticket 7", now: testNow)
        // (until the feed sees it, the cache answers as before: bounded by the TTL)
        #expect(try await service.journey(of: 1).storedStage == "J1_NEW_USER")
        await signal.fire()

        // Then the service answers with the move and the pin
        #expect(try await service.journey(of: 1).storedStage == "J2_ACTIVE_USER")
        #expect(try await service.journey(of: 2).pin?.reason == "support ticket 7")

        // And an unpin elsewhere is heard the same way
        #expect(try await other.unpin(user: 2))
        await signal.fire()
        #expect(try await service.journey(of: 2).pin == nil)
    }

    @Test("A refused request whose fresh read shows the cached stage was stale drops it")
    func refusalRevealsStaleCache() async throws {
        // Given user 1 cached in J1, then moved to J2 by another process the service does not follow
        let database = try TemporaryDatabase(users: 1)
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        let service = try await database.service()
        #expect(try await service.journey(of: 1).storedStage == "J1_NEW_USER")
        _ = try await other.persist([pendingMove(1, Self.j1, Self.j2)], rulesVersion: "v", source: .cli, now: testNow)

        // When a request to move the user to J2 is refused (already there)
        await #expect(throws: JourneyError.self) { try await service.requestTransition(user: 1, to: Self.j2) }

        // Then the cache no longer says J1
        #expect(try await service.journey(of: 1).storedStage == "J2_ACTIVE_USER")
    }

    @Test("A service following the adopted rules switches when another process adopts a set; a fixed one does not")
    func adoptionReachesRunningService() async throws {
        // Given a service on the adopted rules (none adopted yet: the bundled default) and one on a fixed set
        let database = try TemporaryDatabase(users: 1)
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        let adopting = try await JourneyService(store: database.database, rules: .adopted, clock: ManualClock(testNow))
        let fixed = try await database.service()
        #expect(adopting.rules.version == "mundo-tango-1")
        let signals = (ManualSignal(), ManualSignal())
        let following = [Task { try await adopting.run(signal: signals.0) }, Task { try await fixed.run(signal: signals.1) }]
        defer { following.forEach { $0.cancel() } }
        await signals.0.fire()
        await signals.1.fire()

        // When another process adopts a new version of the rules
        let text = try String(contentsOf: defaultRulesFile, encoding: .utf8)
            .replacingOccurrences(of: "version: \"mundo-tango-1\"", with: "version: \"mundo-tango-2\"")
        _ = try await other.adoptRules(version: "mundo-tango-2", text: text, source: "raised.yaml", now: testNow)
        await signals.0.fire()
        await signals.1.fire()

        // Then the following service decides with it, without a restart, and the fixed one keeps its own
        #expect(adopting.rules.version == "mundo-tango-2")
        #expect(fixed.rules.version == "mundo-tango-1")
        // And moves it records carry the adopted version
        try makeActive(1, followedBy: 1, in: database)
        #expect(try await adopting.evaluateAndPersist(user: 1).recorded.first?.rulesVersion == "mundo-tango-2")
    }

    @Test("The data_version poller notices commits by another connection")
    func pollerNoticesOtherConnections() async throws {
        // Given a poller on the file, every 20 ms
        let database = try TemporaryDatabase(users: 1)
        let other = try SQLiteStore.open(path: database.path, mode: .requireMigrated)
        let (changes, change) = AsyncStream.makeStream(of: Void.self)
        let poller = DataVersionPoller(database: database.database, interval: .milliseconds(20))
        let watching = Task { try await poller.watch { change.yield() } }
        defer { watching.cancel() }

        // When the other connection commits, every 50 ms (the first may land before the poller's first look)
        let writes = Task {
            for round in 0..<40 {
                _ = try await other.pin(user: 1, reason: "round \(round)", now: testNow)
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { writes.cancel() }

        // Then the poller calls back: once as it starts watching, then for the commits (how soon is
        // measured across processes, in the CLI tests)
        var heard = changes.makeAsyncIterator()
        _ = await heard.next()
        _ = await heard.next()
    }
}

/// The bundled rules file, read as text.
let defaultRulesFile = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Rules/mundo-tango.yaml")
