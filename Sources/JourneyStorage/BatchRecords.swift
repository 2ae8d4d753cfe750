public import Foundation
import JourneyCore

/// One row of `journey_batch_runs`.
public struct BatchRun: Hashable, Sendable, Codable {
    /// The run's id, shown as `#N` by `journey status`.
    public var id: Int64
    /// When the run took the lease.
    public var startedAt: Date
    /// When it finished, failed, or was found interrupted; nil while running.
    public var finishedAt: Date?
    /// `running`, `finished`, `failed`, or `interrupted` (its lease expired or was taken over).
    public var status: String
    /// The `version` of the rules the run evaluated with.
    public var rulesVersion: String
    /// Users evaluated in the chunks committed so far.
    public var usersSeen: Int
    /// Moves recorded in the chunks committed so far.
    public var transitions: Int
    /// Why the run failed or was interrupted.
    public var error: String?
    /// The last user whose chunk committed.
    public var lastUserID: Int64?
    /// The random token of the process that holds (or held) the run's lease; nil for runs from before leases.
    public var owner: String?
    /// Who holds the lease, for people: `host pid 42`.
    public var holder: String?
    /// Until when the lease holds unless renewed; a `running` run past it is stale and taken over.
    public var leaseExpiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, startedAt = "started_at", finishedAt = "finished_at", status, rulesVersion = "rules_version"
        case usersSeen = "users_seen", transitions, error, lastUserID = "last_user_id"
        case owner, holder, leaseExpiresAt = "lease_expires_at"
    }

    /// Whether the run still holds the batch lock at `now`: `running` with a lease not yet expired.
    /// A `running` run from before leases (no expiry) holds nothing.
    public func isLive(at now: Date) -> Bool {
        status == "running" && (leaseExpiresAt.map { $0 > now } ?? false)
    }
}

/// The batch lock: a lease on one `running` row of `journey_batch_runs`, held by a random owner token.
///
/// No process id is trusted: a run proves it is alive by renewing its lease (with every chunk it
/// commits, and on a timer between), so the lock works across process-id namespaces and machines,
/// and a lease not renewed in time is taken over by the next run.
public struct BatchLease: Sendable {
    /// The run that holds the lease.
    public let runID: Int64
    /// The random token (a UUID) only this run knows.
    public let owner: String
    /// How long the lease holds after each renewal.
    public let seconds: TimeInterval

    /// A lease as ``SQLiteStore/beginBatchRun(rulesVersion:owner:holder:now:leaseSeconds:takeOver:)`` gives it.
    public init(runID: Int64, owner: String, seconds: TimeInterval) {
        self.runID = runID
        self.owner = owner
        self.seconds = seconds
    }
}

/// How far a batch run has come; written in the same transaction as each chunk's moves, and renews the lease.
public struct BatchProgress: Sendable {
    /// The run's lease, renewed by the chunk's commit.
    public let lease: BatchLease
    /// The chunk's last user: where a resumed reading would start.
    public let lastUserID: Int64
    /// Users evaluated so far, this chunk included.
    public let usersSeen: Int
    /// Moves recorded before this chunk (the chunk's own are added as it commits).
    public let transitions: Int
    /// When the chunk commits: the lease is renewed from this instant.
    public let now: Date

    /// The progress to record with a chunk's moves.
    public init(lease: BatchLease, lastUserID: Int64, usersSeen: Int, transitions: Int, now: Date) {
        self.lease = lease
        self.lastUserID = lastUserID
        self.usersSeen = usersSeen
        self.transitions = transitions
        self.now = now
    }
}
