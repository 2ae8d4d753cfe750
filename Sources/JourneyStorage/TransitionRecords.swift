public import Foundation
public import JourneyCore

/// Who asked for a move; stored in `journey_transitions.source`.
public enum TransitionSource: String, Sendable, Codable {
    case api, cli, batch
}

/// One row of `journey_transitions`: a move that was committed.
public struct RecordedTransition: Hashable, Sendable, Codable {
    /// The row id: the feed's position. Ids grow in commit order, because SQLite has one writer at
    /// a time and the table is append-only (nothing deletes a transition).
    public var id: Int64
    /// The user who moved (`user_id`, a `users.id`).
    public var userID: Int64
    /// The user's move number, from 1; `UNIQUE(user_id, seq)` refuses a move recorded twice.
    public var seq: Int
    /// The stage left (`from_state`): the stored value the move started from, an alias already resolved.
    public var from: StageID
    /// The stage entered (`to_state`).
    public var to: StageID
    /// Why the user moved: the edge's declared `reason`, or `graduated to <stage>` (`reason`).
    public var reason: String
    /// The `version` of the rule set that decided the move (`rules_version`, SPEC §1).
    public var rulesVersion: String
    /// The metrics the move was decided on, as a JSON object.
    public var metrics: String
    /// Who asked for the move: the API, the command line or the nightly batch (`source`).
    public var source: TransitionSource
    /// When the move was committed: the writer's `now`, stored in `created_at` (UTC text in SQLite, SPEC §3;
    /// `timestamptz` in PostgreSQL);
    /// all rows of one persist call share it, as does the user's `last_journey_update`.
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, userID = "user_id", seq, from = "from_state", to = "to_state", reason
        case rulesVersion = "rules_version", metrics, source, createdAt = "created_at"
    }

    /// A committed move as a store wrote or read it (see the properties for each column).
    public init(
        id: Int64, userID: Int64, seq: Int, from: StageID, to: StageID, reason: String,
        rulesVersion: String, metrics: String, source: TransitionSource, createdAt: Date
    ) {
        self.id = id
        self.userID = userID
        self.seq = seq
        self.from = from
        self.to = to
        self.reason = reason
        self.rulesVersion = rulesVersion
        self.metrics = metrics
        self.source = source
        self.createdAt = createdAt
    }
}

/// What a persist call did.
public struct PersistResult: Sendable {
    /// The rows written, in order, after the transaction committed.
    public var recorded: [RecordedTransition] = []
    /// Users whose stored stage changed since they were read (compare-and-set lost): re-read them.
    public var conflicted: [Int64] = []
    /// Users an operator pinned since they were read: left alone.
    public var pinned: [Int64] = []
    /// Users whose write the database refused (a constraint or trigger of the platform on
    /// `users`), with SQLite's message; nothing of theirs was written, the others' moves were.
    public var refused: [Int64: String] = [:]
    /// Seconds the commit took (writing the transaction durably: SQLite's WAL frames and their
    /// sync), a checkpoint it ran excluded; 0 where the store does not measure it.
    public var committing = 0.0
    /// Seconds a WAL checkpoint run by the commit took (SQLite copies the WAL into the database
    /// file once it holds 1,000 pages); 0 where none ran or the store has none.
    public var checkpointing = 0.0

    /// A result with nothing recorded, conflicted, pinned or refused, for a store to fill.
    public init() {}
}
