public import Foundation

/// One user as a store reads them for the journey: the stored stage, the metrics, and any
/// operator pin. Both stores (SQLite and PostgreSQL) produce it; evaluation takes it as values.
public struct UserSnapshot: Hashable, Sendable {
    /// The user's id (`users.id`).
    public let userID: Int64
    /// `users.customer_journey_state` as stored (possibly a legacy alias): empty for NULL, which
    /// means "never evaluated" (SPEC §8, ``RuleSet/isNeverEvaluated(_:)``).
    public let storedStage: String
    /// Every metric of SPEC §2 for the user, read at the `now` of the snapshot.
    public let metrics: UserMetrics
    /// The operator's pin, when the user is held in a stage.
    public let pin: Pin?
    /// Stored timestamps this user's metrics read that fit no form of SPEC §8, by `table.column`
    /// (`users.created_at`, `users.last_journey_update`, and in the batch `posts.created_at` and
    /// `events.start_date`): each counted value was read as missing.
    public let unreadableTimestamps: [String: Int]

    /// A snapshot as a store decoded it.
    public init(userID: Int64, storedStage: String, metrics: UserMetrics, pin: Pin?, unreadableTimestamps: [String: Int]) {
        self.userID = userID
        self.storedStage = storedStage
        self.metrics = metrics
        self.pin = pin
        self.unreadableTimestamps = unreadableTimestamps
    }
}

/// An operator's hold on a user's stage (`journey_pins`).
public struct Pin: Hashable, Sendable, Codable {
    /// The stored stage when the pin was set (`journey_pins.stage`, as stored: possibly a legacy
    /// alias, empty for NULL); the user stays there until unpinned (SPEC §3).
    public let stage: String
    /// Why the operator pinned the user, as they gave it (`journey_pins.reason`, never empty).
    public let reason: String
    /// When the pin was set or last replaced (`journey_pins.created_at`).
    public let createdAt: Date

    /// A pin as a store read it.
    public init(stage: String, reason: String, createdAt: Date) {
        self.stage = stage
        self.reason = reason
        self.createdAt = createdAt
    }
}

/// A decided evaluation waiting to be stored, with the stage it started from.
public struct PendingMove: Sendable {
    /// The user to move (`users.id`).
    public let userID: Int64
    /// The stored value the evaluation started from (``UserSnapshot/storedStage``, empty for
    /// NULL); a store writes only if the column still reads the same (compare-and-set, SPEC §3).
    public let expectedStage: String
    /// The moves to record, in order, one `journey_transitions` row each; a move with none is skipped.
    public let transitions: [Transition]
    /// The metrics the moves were decided on, stored as JSON in each row's `metrics` column.
    public let metrics: UserMetrics

    /// ``metrics`` as JSON at an instant, when rendered with the move (``init(userID:expectedStage:transitions:metrics:renderedAt:)``).
    private let rendered: (now: Date, json: String)?

    /// A move of `userID` from `expectedStage` along `transitions`, decided on `metrics`.
    public init(userID: Int64, expectedStage: String, transitions: [Transition], metrics: UserMetrics) {
        self.userID = userID
        self.expectedStage = expectedStage
        self.transitions = transitions
        self.metrics = metrics
        rendered = nil
    }

    /// The same move, its metrics' JSON rendered now for a store that writes it at `now`: the
    /// batch renders it where it decides, beside the readers, not on the one writer, where it
    /// was half of the writer's own code (perf, `journey batch`, 100k users; Benchmarks/HISTORY.md,
    /// "Issue 16, third pass").
    public init(userID: Int64, expectedStage: String, transitions: [Transition], metrics: UserMetrics, renderedAt now: Date) {
        self.userID = userID
        self.expectedStage = expectedStage
        self.transitions = transitions
        self.metrics = metrics
        rendered = transitions.isEmpty ? nil : (now, metrics.json(now: now))
    }

    /// ``metrics`` as each transition row records it at `now` (``UserMetrics/json(now:)``): the
    /// JSON rendered with the move when it was rendered at `now`, else rendered here.
    public func metricsJSON(now: Date) -> String {
        if let rendered, rendered.now == now { return rendered.json }
        return metrics.json(now: now)
    }
}
