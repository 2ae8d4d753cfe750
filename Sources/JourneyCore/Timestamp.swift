public import Foundation

/// One instant as another application may have stored it (SPEC §8), read one way everywhere.
///
/// The platform's app writes its timestamp columns through its own ORM, so a column can hold any
/// of these forms, and every metric must read one instant the same way whatever its form:
///
/// | form | examples |
/// | --- | --- |
/// | ``Form/canonical`` | `2026-10-30 07:03:19`, `2026-10-30 07:03:19.250` (UTC; SQLite's and GRDB's own) |
/// | ``Form/iso8601`` | `2026-10-30T07:03:19Z`, `2026-10-30T07:03:19.123456+02:00`, `…+0200`, `…-05`, `2026-10-30 07:03` |
/// | ``Form/dateOnly`` | `2026-10-30` (UTC midnight) |
/// | ``Form/epochSeconds`` | `1793343799`, `1793343799.25` (INTEGER, REAL, or the same digits as TEXT) |
/// | ``Form/epochMilliseconds`` | `1793343799250`: any epoch number whose magnitude is above 100,000,000,000 |
///
/// Anything else is ``Form/unreadable``: missing for the criteria, counted and reported, never guessed.
/// A calendar date that does not exist (`2026-02-30`), an hour past 23, a minute or second past 59, or
/// an offset past ±23:59 is unreadable too. Fractions of any length are read; an offset may follow a
/// space (`2026-10-30 07:03:19 +0000`). The parser works on bytes, with no formatter and no calendar,
/// because the store calls it for every post of every user in the nightly batch.
public enum Timestamp {
    /// The shape a stored value was found in; `doctor` counts values per form and column.
    public enum Form: String, CaseIterable, Hashable, Sendable, Codable {
        case canonical
        case iso8601 = "iso8601"
        case dateOnly = "date_only"
        case epochSeconds = "epoch_seconds"
        case epochMilliseconds = "epoch_milliseconds"
        case unreadable
    }

    /// An epoch number with a magnitude above this is milliseconds, not seconds (SPEC §8).
    ///
    /// 100,000,000,000 seconds is the year 5138; as milliseconds it is 1973-03-03.
    public static let millisecondsThreshold: Double = 100_000_000_000

    /// The instant of an epoch number: seconds, or milliseconds above ``millisecondsThreshold``.
    ///
    /// - returns: seconds since 1970-01-01 00:00:00 UTC, or nil for a NaN or an infinity.
    public static func unixSeconds(epoch value: Double) -> Double? {
        guard value.isFinite else { return nil }
        return abs(value) > millisecondsThreshold ? value / 1_000 : value
    }

    /// The form of an epoch number (an INTEGER or REAL column value).
    public static func form(epoch value: Double) -> Form {
        guard value.isFinite else { return .unreadable }
        return abs(value) > millisecondsThreshold ? .epochMilliseconds : .epochSeconds
    }

    /// Reads a text value.
    ///
    /// - returns: seconds since 1970-01-01 00:00:00 UTC and the form found, or `(nil, .unreadable)`.
    public static func read(text: some StringProtocol) -> (seconds: Double?, form: Form) {
        var utf8 = String(text)
        return utf8.withUTF8 { read(bytes: $0) }
    }

    /// Reads a text value given as UTF-8 bytes (what SQLite hands a function), without copying it.
    ///
    /// - returns: seconds since 1970-01-01 00:00:00 UTC and the form found, or `(nil, .unreadable)`.
    public static func read(bytes: UnsafeBufferPointer<UInt8>) -> (seconds: Double?, form: Form) {
        var scanner = Scanner(bytes: bytes)
        if let result = scanner.calendarInstant() { return result }
        var numberScanner = Scanner(bytes: bytes)
        if let number = numberScanner.epochNumber() { return (unixSeconds(epoch: number), form(epoch: number)) }
        return (nil, .unreadable)
    }

    /// A date read from a text value, or nil when it is unreadable.
    public static func date(text: some StringProtocol) -> Date? {
        read(text: text).seconds.map { Date(timeIntervalSince1970: $0) }
    }

    /// A date read from an epoch number (seconds, or milliseconds above the threshold).
    public static func date(epoch value: Double) -> Date? {
        unixSeconds(epoch: value).map { Date(timeIntervalSince1970: $0) }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// A cursor over the bytes of one value.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            index += 1
            return true
        }

        /// Exactly `count` ASCII digits as a number.
        mutating func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for offset in 0..<count {
                let byte = bytes[index + offset]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += count
            return value
        }

        /// `YYYY-MM-DD`, then optionally `[T ]HH:MM[:SS[.f…]]` and an offset.
        mutating func calendarInstant() -> (seconds: Double?, form: Form)? {
            guard let year = digits(4), take(0x2D), let month = digits(2), take(0x2D), let day = digits(2) else { return nil }
            guard (1...12).contains(month), (1...Timestamp.daysIn(month: month, year: year)).contains(day) else {
                return (nil, .unreadable)
            }
            let midnight = Double(Timestamp.daysSinceEpoch(year: year, month: month, day: day)) * 86_400
            if atEnd { return (midnight, .dateOnly) }
            let separator = bytes[index]
            guard separator == 0x54 || separator == 0x74 || separator == 0x20 else { return (nil, .unreadable) }  // T t space
            index += 1
            guard let hour = digits(2), take(0x3A), let minute = digits(2), hour < 24, minute < 60 else { return (nil, .unreadable) }
            var seconds = Double(hour * 3_600 + minute * 60)
            var hasSeconds = false
            var fractionDigits = 0
            if take(0x3A) {
                guard let second = digits(2), second < 60 else { return (nil, .unreadable) }
                seconds += Double(second)
                hasSeconds = true
                if take(0x2E) {
                    var fraction = 0.0
                    var scale = 1.0
                    while let byte = peek(), byte >= 0x30, byte <= 0x39 {
                        // Digits past the 15th cannot change a Double; they are read, not used.
                        if fractionDigits < 15 {
                            fraction = fraction * 10 + Double(byte - 0x30)
                            scale *= 10
                        }
                        fractionDigits += 1
                        index += 1
                    }
                    guard fractionDigits > 0 else { return (nil, .unreadable) }
                    seconds += fraction / scale
                }
            }
            let local = midnight + seconds
            if atEnd {
                let canonical = separator == 0x20 && hasSeconds && (fractionDigits == 0 || fractionDigits == 3)
                return (local, canonical ? .canonical : .iso8601)
            }
            guard let offset = utcOffset(), atEnd else { return (nil, .unreadable) }
            return (local - Double(offset), .iso8601)
        }

        /// `Z`, `±HH:MM`, `±HHMM` or `±HH`, optionally after one space: seconds east of UTC.
        mutating func utcOffset() -> Int? {
            _ = take(0x20)
            if take(0x5A) || take(0x7A) { return 0 }  // Z z
            let sign: Int
            if take(0x2B) { sign = 1 } else if take(0x2D) { sign = -1 } else { return nil }
            guard let hours = digits(2), hours < 24 else { return nil }
            var minutes = 0
            if take(0x3A) {
                guard let value = digits(2) else { return nil }
                minutes = value
            } else if !atEnd {
                guard let value = digits(2) else { return nil }
                minutes = value
            }
            guard minutes < 60 else { return nil }
            return sign * (hours * 3_600 + minutes * 60)
        }

        /// A plain decimal number (`-`? digits, optionally `.` digits): epoch digits stored as text.
        mutating func epochNumber() -> Double? {
            let start = index
            _ = take(0x2D)
            var sawDigit = false
            var sawPoint = false
            while let byte = peek() {
                if byte >= 0x30, byte <= 0x39 {
                    sawDigit = true
                } else if byte == 0x2E, !sawPoint {
                    sawPoint = true
                } else {
                    return nil
                }
                index += 1
            }
            guard sawDigit else { return nil }
            return Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }
    }
}
