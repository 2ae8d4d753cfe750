import Foundation
import JourneyCore
import Testing

/// SPEC §8: every form another application may store reads as one instant; anything else is unreadable.
@Suite("Timestamps in every form read as the same instant")
struct TimestampTests {
    /// 2026-10-30 07:03:19 UTC, the example, as seconds since the epoch.
    static let instant = 1_793_343_799.0

    static let readable: [(text: String, seconds: Double, form: Timestamp.Form)] = [
        ("2026-10-30 07:03:19", instant, .canonical),
        ("2026-10-30 07:03:19.000", instant, .canonical),
        ("2026-10-30 07:03:19.250", instant + 0.25, .canonical),
        ("2026-10-30T07:03:19", instant, .iso8601),
        ("2026-10-30T07:03:19Z", instant, .iso8601),
        ("2026-10-30T07:03:19.000Z", instant, .iso8601),
        ("2026-10-30t07:03:19z", instant, .iso8601),
        ("2026-10-30T07:03:19.5Z", instant + 0.5, .iso8601),
        ("2026-10-30T07:03:19.123456Z", instant + 0.123456, .iso8601),
        ("2026-10-30T07:03:19.123456789012345678Z", instant + 0.123456789012345, .iso8601),
        ("2026-10-30T09:03:19+02:00", instant, .iso8601),
        ("2026-10-30T09:03:19+0200", instant, .iso8601),
        ("2026-10-30T09:03:19+02", instant, .iso8601),
        ("2026-10-30T01:33:19-05:30", instant, .iso8601),
        ("2026-10-30T01:33:19-0530", instant, .iso8601),
        ("2026-10-30 02:03:19-05", instant, .iso8601),
        ("2026-10-30 07:03:19 +00:00", instant, .iso8601),
        ("2026-10-30 07:03:19 +0000", instant, .iso8601),
        ("2026-10-29T23:03:19.000-08:00", instant, .iso8601),
        ("2026-10-30 07:03", instant - 19, .iso8601),
        ("2026-10-30 07:03:19.1", instant + 0.1, .iso8601),
        ("2026-10-30", instant - (7 * 3_600 + 3 * 60 + 19), .dateOnly),
        ("1793343799", instant, .epochSeconds),
        ("1793343799.5", instant + 0.5, .epochSeconds),
        ("1793343799000", instant, .epochMilliseconds),
        ("1793343799250", instant + 0.25, .epochMilliseconds),
        ("0", 0, .epochSeconds),
        ("-86400", -86_400, .epochSeconds),
        ("2024-02-29 00:00:00", 1_709_164_800, .canonical),
        ("1970-01-01 00:00:00", 0, .canonical),
        ("1969-12-31 23:59:59", -1, .canonical),
        ("2000-02-29", 951_782_400, .dateOnly),
    ]

    @Test("A readable form gives its instant and its form", arguments: readable.indices)
    func readsForm(index: Int) {
        let (text, seconds, form) = Self.readable[index]
        let read = Timestamp.read(text: text)
        #expect(read.form == form, "\(text)")
        #expect(abs((read.seconds ?? .nan) - seconds) < 1e-6, "\(text): \(String(describing: read.seconds))")
    }

    static let unreadable = [
        "", " ", "yesterday", "now", "2026-10-30x07:03:19", "2026-10-30 7:03:19", "2026-10-30 07:03:19.",
        "2026-02-30 10:00:00", "2025-02-29", "2026-13-01", "2026-00-10", "2026-10-00", "0000-00-00 00:00:00",
        "2026-10-30 24:00:00", "2026-10-30 07:60:00", "2026-10-30 07:03:60", "2026-10-30T07:03:19+24:00",
        "2026-10-30T07:03:19+02:60", "2026-10-30T07:03:19+2", "2026-10-30T07:03:19+020", "2026-10-30T07:03:19 UTC",
        "2026-10-30T07:03:19Z ", " 2026-10-30", "2026-10-30 ", "26-10-30", "2026/10/30", "1793343799e3", "12.34.56",
        "-", ".", "2026-10-30T07:03:19+02:00Z", "NaN", "inf",
    ]

    @Test("Anything else is unreadable, never guessed", arguments: unreadable)
    func refuses(text: String) {
        let read = Timestamp.read(text: text)
        #expect(read.seconds == nil, "\(text)")
        #expect(read.form == .unreadable, "\(text)")
    }

    @Test("Epoch numbers: seconds up to 100,000,000,000, milliseconds above; NaN and infinities unreadable")
    func epochNumbers() {
        #expect(Timestamp.unixSeconds(epoch: 100_000_000_000) == 100_000_000_000)
        #expect(Timestamp.unixSeconds(epoch: 100_000_000_001) == 100_000_000.001)
        #expect(Timestamp.form(epoch: 1_793_343_799_000) == .epochMilliseconds)
        #expect(Timestamp.form(epoch: -1_793_343_799_000) == .epochMilliseconds)
        #expect(Timestamp.unixSeconds(epoch: -1_793_343_799_000) == -1_793_343_799)
        #expect(Timestamp.unixSeconds(epoch: .nan) == nil)
        #expect(Timestamp.unixSeconds(epoch: .infinity) == nil)
        #expect(Timestamp.form(epoch: -.infinity) == .unreadable)
    }

    /// Foundation's formatters render random instants in random offsets; the parser must read each
    /// rendering back as the instant it was made from (seeded, so a failure replays).
    @Test("Property: Foundation's renderings of 2,000 random instants, in random offsets and forms, read back exactly")
    func propertyAgainstFoundation() {
        var random = SplitMix64(seed: 0x5EED_7157)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        for _ in 0..<2_000 {
            // Whole milliseconds between 1950 and 2100.
            let milliseconds = Int64(random.below(4_733_510_400_000)) - 631_152_000_000
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
            let offsetMinutes = random.below(28 * 60) - 14 * 60
            formatter.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)
            let patterns = ["yyyy-MM-dd'T'HH:mm:ss.SSSXXXXX", "yyyy-MM-dd'T'HH:mm:ss.SSSxx", "yyyy-MM-dd HH:mm:ss.SSSSSSxxx"]
            let pattern = patterns[random.below(patterns.count)]
            formatter.dateFormat = pattern
            let text = formatter.string(from: date)
            let seconds = Timestamp.read(text: text).seconds
            #expect(seconds.map { abs($0 - date.timeIntervalSince1970) < 0.000_5 } == true, "\(text) from \(date.timeIntervalSince1970)")
            #expect(
                Timestamp.read(text: String(milliseconds)).seconds.map { abs($0 - date.timeIntervalSince1970) < 0.000_5 } == true
                    || abs(Double(milliseconds)) <= Timestamp.millisecondsThreshold, "\(milliseconds)")
        }
    }
}
