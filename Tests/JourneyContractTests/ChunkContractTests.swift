import Foundation
import JourneyCore
import JourneyStorage
import Testing

/// The batch reads users set-based by chunks; the one-user path reads them one statement each.
/// Both must give the same snapshot of every user, at any instant and any chunk size: a property
/// over seeded random platforms (SplitMix64, as the core's property tests).
@Suite("Contract: a chunk is the users' one-user snapshots")
struct ChunkContractTests {
    /// A platform of about `users` users with ids that skip, heavy on the window's edges: signups,
    /// posts and event starts near `now - 30 days` and `now`, NULLs, RSVPs of every status, follows
    /// of users that do not exist, timestamps in every form the backend can store.
    static func randomPlatform(seed: UInt64, users count: Int, forms: [SnapshotContractTests.Form]) -> Platform {
        var random = SplitMix64(seed: seed)
        var platform = Platform()
        var id: Int64 = 0
        let edges = [Instants.now, Instants.now.addingTimeInterval(-30 * Instants.day)]
        func instant() -> Date {
            // Half the instants within a minute of a bound (whole or fractional seconds), half anywhere in 400 days.
            if random.below(2) == 0 {
                let offset = Double(random.below(121) - 60) + (random.below(3) == 0 ? 0.5 : 0)
                return edges[random.below(2)].addingTimeInterval(offset)
            }
            return Instants.now.addingTimeInterval(-random.unit() * 400 * Instants.day + 5 * Instants.day)
        }
        func stamp() -> Stamp {
            if random.below(10) == 0 { return .null }
            let date = instant()
            let form = forms[random.below(forms.count)]
            return form.holds(date) ? form.stamp(date) : .at(date)
        }
        for _ in 0..<count {
            id += Int64(1 + random.below(3))
            platform.users.append(
                .init(
                    id: id, email: "u\(id)@example.org", role: ["user", "admin", "super-admin", nil][random.below(4)],
                    tier: ["free", "basic", nil][random.below(3)], onboarding: [true, false, nil][random.below(3)],
                    createdAt: stamp()))
        }
        let ids = platform.users.map(\.id) + [9_999]
        var pairs = Set<[Int64]>()
        for _ in 0..<(count * 3) {
            let pair = [ids[random.below(ids.count)], ids[random.below(ids.count)]]
            if pair[0] != pair[1], pairs.insert(pair).inserted { platform.follows.append(.init(follower: pair[0], following: pair[1], createdAt: stamp())) }
        }
        for _ in 0..<(count * 4) {
            platform.posts.append(.init(userID: ids[random.below(ids.count)], visibility: ["public", "friends"][random.below(2)], createdAt: stamp()))
        }
        for event in Int64(1)...Int64(max(1, count / 2)) {
            platform.events.append(.init(id: event, organizer: random.below(5) == 0 ? nil : ids[random.below(ids.count)], startDate: stamp()))
        }
        for _ in 0..<(count * 2) {
            platform.rsvps.append(
                .init(
                    eventID: Int64(1 + random.below(count / 2 + 2)), userID: ids[random.below(ids.count)],
                    status: ["going", "maybe", "not_going", nil][random.below(4)]))
        }
        return platform
    }

    static let seeds: [UInt64] = [1, 2, 3]

    @Test(
        "chunk(after:limit:now:) equals the per-user snapshots, for random platforms, instants and chunk sizes",
        arguments: Backend.available, seeds)
    func chunksEqualSnapshots(_ backend: Backend, seed: UInt64) async throws {
        let forms = SnapshotContractTests.Form.allCases.filter { form in backend.fixture.canStore(form.stamp(Instants.now)) }
        let platform = Self.randomPlatform(seed: seed, users: 60, forms: forms)
        try await backend.with(platform) { database in
            let store = database.store
            var random = SplitMix64(seed: seed &* 7_919)
            // Some users moved, pinned, holding a legacy or empty stage
            for user in platform.users where random.below(4) == 0 {
                switch random.below(4) {
                case 0: _ = try await store.persist([pending(user.id, [move(.j1, .j2)])], rulesVersion: "v", source: .batch, now: Instants.now, progress: nil)
                case 1: _ = try await store.pin(user: user.id, reason: "held \(user.id)", now: Instants.now)
                case 2: try await database.setStoredStage(user: user.id, "J1")
                default: try await database.setStoredStage(user: user.id, "")
                }
            }
            var coverage = (recent: 0, attended: 0, followers: 0, missingSignup: 0, pins: 0)
            for now in [Instants.now, Instants.now.addingTimeInterval(0.5), Instants.now.addingTimeInterval(-3 * Instants.day + 17.25)] {
                var expected: [UserSnapshot] = []
                for user in platform.users { expected.append(try await store.snapshot(user: user.id, now: now)) }
                for limit in [1, 7, 1_000] {
                    var chunks: [UserSnapshot] = []
                    var after: Int64 = 0
                    while true {
                        let chunk = try await store.chunk(after: after, limit: limit, now: now)
                        #expect(chunk.count <= limit)
                        guard let last = chunk.last else { break }
                        chunks += chunk
                        after = last.userID
                    }
                    #expect(chunks.map(\.userID) == expected.map(\.userID), "seed \(seed), limit \(limit)")
                    // The chunk also counts unreadable posts and events; every other field is the same.
                    for (one, chunked) in zip(expected, chunks) {
                        #expect(
                            chunked.storedStage == one.storedStage && chunked.metrics == one.metrics && chunked.pin == one.pin,
                            "seed \(seed), limit \(limit), user \(one.userID) at \(now)")
                        #expect(chunked.unreadableTimestamps.filter { $0.key.hasPrefix("users.") } == one.unreadableTimestamps)
                    }
                }
                coverage.recent += expected.filter { $0.metrics.postsLast30Days > 0 }.count
                coverage.attended += expected.filter { $0.metrics.eventsAttended > 0 }.count
                coverage.followers += expected.filter { $0.metrics.followers > 0 }.count
                coverage.missingSignup += expected.filter { $0.metrics.signedUpAt == nil }.count
                coverage.pins += expected.filter { $0.pin != nil }.count
            }
            // The random data exercised what it was made for, so the property does not hold vacuously
            #expect(
                coverage.recent > 0 && coverage.attended > 0 && coverage.followers > 0 && coverage.missingSignup > 0 && coverage.pins > 0,
                "\(coverage)")
            // And past the last user, nothing
            #expect(try await store.chunk(after: platform.users.last!.id, limit: 10, now: Instants.now).isEmpty)
        }
    }
}
