/// A small, fast, seedable generator (SplitMix64); the same seed gives the same sequence everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed` (any value, 0 included).
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits: the SplitMix64 step (Steele, Lea and Flood, 2014; constants as in
    /// Vigna's `splitmix64.c`): a golden-ratio increment, then a mixing finaliser; the same on every platform.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// An integer in [0, bound).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}
