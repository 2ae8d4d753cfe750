public import Foundation
internal import JourneyFixtures

/// Seeded platform data for demos, trials and benchmarks (`journey demo`, `journey generate`),
/// written by the JourneyFixtures generator without the caller touching a database API.
public enum DemoData {
    /// How many rows each platform table received.
    public struct Counts: Hashable, Sendable, Codable {
        /// Rows in `users`.
        public var users: Int
        /// Rows in `posts`.
        public var posts: Int
        /// Rows in `follows`.
        public var follows: Int
        /// Rows in `events`.
        public var events: Int
        /// Rows in `event_rsvps`.
        public var rsvps: Int
    }

    /// Writes a new SQLite platform database at `path`: the five platform tables as the platform
    /// has them (no journey columns, no indexes: run ``JourneyService/migrate(database:createIfMissing:now:)``
    /// or open it with ``DatabaseAccess/migrate``), filled with heavy-tailed activity. The same
    /// `seed` and `users` always give the same rows.
    ///
    /// ```swift
    /// let counts = try DemoData.writePlatformDatabase(at: "demo.sqlite", users: 3_000, seed: 7)
    /// ```
    /// - parameter users: how many users (at least 1).
    /// - parameter now: the instant the data is generated as of: signups lie in the five years before it.
    /// - throws: ``JourneyError/store(_:)`` with `StorageError/failed(location:message:)` when the
    ///   file cannot be created or written (an existing file with tables of its own, a directory
    ///   that is not writable).
    @discardableResult
    public static func writePlatformDatabase(at path: String, users: Int, seed: UInt64, now: Date = Date()) throws(JourneyError) -> Counts {
        do {
            let counts = try PlatformDataGenerator(users: max(1, users), seed: seed, now: now).write(to: path)
            return Counts(users: counts.users, posts: counts.posts, follows: counts.follows, events: counts.events, rsvps: counts.rsvps)
        } catch {
            throw .store(.failed(location: path, message: "\(error)"))
        }
    }
}
