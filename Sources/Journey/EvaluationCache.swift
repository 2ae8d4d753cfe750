import Foundation
import Synchronization

/// Counts the host can read to watch the cache (the platform aims above 80% hits).
public struct CacheStatistics: Hashable, Sendable {
    /// Lookups answered from a present, unexpired entry since the service started.
    public var hits = 0
    /// Lookups that found no entry, or only an expired one, since the service started; each leads to a load.
    public var misses = 0
    /// Entries dropped, least recently used first, to make room when the cache held `cacheCapacity` users.
    public var evictions = 0
    /// Users dropped by an invalidation: one per user named to `invalidate` (cached or not), plus
    /// every user cached when `invalidateAll()` ran.
    public var invalidations = 0
    /// Metrics queries run to fill the cache (concurrent misses for one user share one load).
    public var loads = 0
    /// Users cached right now (expired entries included until a lookup or eviction removes them).
    public var count = 0

    /// Hits over lookups, 0 when nothing was asked yet.
    public var hitRate: Double {
        hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses)
    }
}

/// A bounded, time-limited map from user id to value, least recently used out first.
///
/// All state sits behind one `Mutex`; a lookup is a hash probe and two link updates.
/// ``generation(of:)`` lets a caller store a value computed from a read only if no
/// invalidation of that key happened since the read started.
final class EvaluationCache<Value: Sendable>: Sendable {
    private struct Node {
        var key: Int64
        var value: Value
        var expiresAt: Date
        var previous: Int
        var next: Int
    }

    private struct State {
        var index: [Int64: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var head = -1  // most recently used
        var tail = -1  // least recently used
        // Each invalidation takes the next value of `counter`; keys not in `generations`
        // were last invalidated at or before `floor`. Monotonic, so no token comes back.
        var generations: [Int64: UInt64] = [:]
        var counter: UInt64 = 0
        var floor: UInt64 = 0

        func generation(of key: Int64) -> UInt64 { generations[key] ?? floor }
        var statistics = CacheStatistics()
    }

    let capacity: Int
    let ttl: TimeInterval
    static var generationLimit: Int { 4_096 }
    private let state = Mutex(State())

    init(capacity: Int, ttl: TimeInterval) {
        precondition(capacity > 0, "a cache holds at least one entry")
        self.capacity = capacity
        self.ttl = ttl
    }

    var statistics: CacheStatistics { state.withLock { $0.statistics } }

    /// The value for `key` if present and fresh at `now`; counts a hit or a miss.
    func value(for key: Int64, now: Date) -> Value? {
        state.withLock { state in
            guard let slot = state.index[key] else {
                state.statistics.misses += 1
                return nil
            }
            guard state.nodes[slot].expiresAt > now else {
                Self.remove(slot, from: &state)
                state.statistics.misses += 1
                return nil
            }
            Self.unlink(slot, in: &state)
            Self.pushFront(slot, in: &state)
            state.statistics.hits += 1
            return state.nodes[slot].value
        }
    }

    /// A token that changes whenever `key` (or everything) is invalidated.
    func generation(of key: Int64) -> UInt64 {
        state.withLock { $0.generation(of: key) }
    }

    /// Stores a freshly loaded `value` unless `key` was invalidated after `generation` was taken.
    @discardableResult
    func store(_ value: Value, for key: Int64, generation: UInt64, now: Date) -> Bool {
        state.withLock { state in
            state.statistics.loads += 1
            guard state.generation(of: key) == generation else { return false }
            let expiresAt = now.addingTimeInterval(ttl)
            if let slot = state.index[key] {
                state.nodes[slot].value = value
                state.nodes[slot].expiresAt = expiresAt
                Self.unlink(slot, in: &state)
                Self.pushFront(slot, in: &state)
                return true
            }
            if state.index.count >= capacity, state.tail >= 0 {
                Self.remove(state.tail, from: &state)
                state.statistics.evictions += 1
            }
            let node = Node(key: key, value: value, expiresAt: expiresAt, previous: -1, next: -1)
            let slot: Int
            if let reused = state.free.popLast() {
                state.nodes[reused] = node
                slot = reused
            } else {
                state.nodes.append(node)
                slot = state.nodes.count - 1
            }
            state.index[key] = slot
            Self.pushFront(slot, in: &state)
            state.statistics.count = state.index.count
            return true
        }
    }

    /// Drops `key` if a value is cached for it and `isCurrent` says that value is out of date;
    /// returns whether it did.
    @discardableResult
    func invalidate(_ key: Int64, unless isCurrent: (Value) -> Bool) -> Bool {
        state.withLock { state in
            guard let slot = state.index[key], !isCurrent(state.nodes[slot].value) else { return false }
            Self.invalidate(key, in: &state)
            return true
        }
    }

    /// Drops `keys` and makes any value computed before now unstorable for them.
    func invalidate<Keys: Sequence<Int64>>(_ keys: Keys) {
        state.withLock { state in
            for key in keys { Self.invalidate(key, in: &state) }
        }
    }

    private static func invalidate(_ key: Int64, in state: inout State) {
        state.counter += 1
        state.generations[key] = state.counter
        state.statistics.invalidations += 1
        if let slot = state.index[key] { remove(slot, from: &state) }
        // Generations only need to outlive the reads in flight; keep the map small (a batch
        // invalidates every user it moves). Past the limit, every read in flight is refused
        // its store: one extra query each, never a stale entry.
        if state.generations.count > generationLimit {
            state.floor = state.counter
            state.generations.removeAll(keepingCapacity: true)
        }
    }

    /// Drops everything.
    func invalidateAll() {
        state.withLock { state in
            state.statistics.invalidations += state.index.count
            state.index.removeAll(keepingCapacity: true)
            state.nodes.removeAll(keepingCapacity: true)
            state.free.removeAll()
            state.head = -1
            state.tail = -1
            state.counter += 1
            state.floor = state.counter
            state.generations.removeAll(keepingCapacity: true)
            state.statistics.count = 0
        }
    }

    private static func remove(_ slot: Int, from state: inout State) {
        unlink(slot, in: &state)
        state.index[state.nodes[slot].key] = nil
        state.free.append(slot)
        state.statistics.count = state.index.count
    }

    private static func unlink(_ slot: Int, in state: inout State) {
        let node = state.nodes[slot]
        if node.previous >= 0 { state.nodes[node.previous].next = node.next } else { state.head = node.next }
        if node.next >= 0 { state.nodes[node.next].previous = node.previous } else { state.tail = node.previous }
        state.nodes[slot].previous = -1
        state.nodes[slot].next = -1
    }

    private static func pushFront(_ slot: Int, in state: inout State) {
        state.nodes[slot].next = state.head
        state.nodes[slot].previous = -1
        if state.head >= 0 { state.nodes[state.head].previous = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
    }
}
