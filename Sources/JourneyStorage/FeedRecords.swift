import Foundation
import JourneyCore

/// How a store learns that the database may have changed, whichever process committed.
///
/// The feed never trusts a signal for content: after each one it reads the rows past its last
/// id. A spurious signal costs one query; what a signal must guarantee is that it fires after
/// every commit, eventually. SQLite polls `PRAGMA data_version` (``DataVersionPoller``); a
/// PostgreSQL store would `LISTEN` on a channel that a trigger on `journey_transitions`,
/// `journey_pin_events` and `journey_rules` `NOTIFY`s, and call `changed` for each notification.
public protocol ChangeSignal: Sendable {
    /// Calls `changed` once as soon as it is watching, then after each change it detects, one call
    /// at a time, until the calling task is cancelled; then returns. The first call covers what
    /// committed between the caller's last read and the moment the watch took its own baseline:
    /// without it, a commit in that window would never be signalled (on a loaded machine, the
    /// last commit of a batch could be, and a reader waiting for it would wait forever).
    ///
    /// - throws: ``StorageError`` when the database cannot be watched at all (the file vanished,
    ///   a connection cannot be opened).
    func watch(_ changed: @Sendable () async -> Void) async throws(StorageError)
}

/// Where a follower of the database stands: the last transition, pin event and adopted rule set seen.
public struct FeedCursor: Hashable, Sendable {
    /// The highest `journey_transitions.id` seen (0: none).
    public var transition: Int64
    /// The highest `journey_pin_events.id` seen (0: none).
    public var pinEvent: Int64
    /// The highest `journey_rules.id` seen (0: none adopted).
    public var adoptedRules: Int64

    /// A cursor at the given ids (all 0: before anything was recorded).
    public init(transition: Int64 = 0, pinEvent: Int64 = 0, adoptedRules: Int64 = 0) {
        self.transition = transition
        self.pinEvent = pinEvent
        self.adoptedRules = adoptedRules
    }
}

/// What changed past a ``FeedCursor``: the users whose cached answers are stale, and whether a
/// new rule set was adopted.
public struct FeedChanges: Sendable {
    /// Where the next call starts.
    public var cursor: FeedCursor
    /// Users moved, pinned or unpinned since the previous cursor; nil when more than the limit
    /// asked for (drop every cached answer instead).
    public var touchedUsers: Set<Int64>?
    /// Whether `journey_rules` has a newer adoption than the previous cursor.
    public var rulesAdopted: Bool

    /// What a store found past a cursor (see the properties).
    public init(cursor: FeedCursor, touchedUsers: Set<Int64>?, rulesAdopted: Bool) {
        self.cursor = cursor
        self.touchedUsers = touchedUsers
        self.rulesAdopted = rulesAdopted
    }
}
