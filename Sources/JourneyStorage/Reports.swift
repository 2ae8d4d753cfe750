public import Foundation
import JourneyCore

/// One row of `journey_rules`: a rule set adopted for every caller of the database (SPEC §9).
public struct AdoptedRules: Hashable, Sendable, Codable {
    /// The adoption's id; the highest id is the set in force.
    public var id: Int64
    /// The rule set's `version`, as its file declares it.
    public var version: String
    /// The YAML text, exactly as adopted.
    public var text: String
    /// The file it was adopted from, for people (`Rules/mundo-tango.yaml`).
    public var source: String
    /// When `journey rules adopt` ran (UTC).
    public var adoptedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, version, text, source, adoptedAt = "adopted_at"
    }

    /// An adoption as a store read or wrote it.
    public init(id: Int64, version: String, text: String, source: String, adoptedAt: Date) {
        self.id = id
        self.version = version
        self.text = text
        self.source = source
        self.adoptedAt = adoptedAt
    }
}

/// Moves along one edge: how many recently, and how long users took to make them.
public struct EdgeReport: Hashable, Sendable, Codable {
    /// The stage left, as stored in `journey_transitions.from_state` (not resolved through aliases).
    public let from: String
    /// The stage entered, as stored in `journey_transitions.to_state`.
    public let to: String
    /// Moves along the edge whose `created_at` is at or after `now` − 7 × 86 400 s.
    public let last7Days: Int
    /// Moves along the edge whose `created_at` is at or after `now` − 30 × 86 400 s.
    public let last30Days: Int
    /// Every move along the edge ever recorded, whatever its `created_at` (unreadable ones included).
    public let total: Int
    /// Median seconds from entering `from` (signup for the first move) to entering `to`.
    public let medianSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case from, to, last7Days = "last_7_days", last30Days = "last_30_days", total, medianSeconds = "median_seconds"
    }

    /// An edge's counts as a store computed them (see the properties for units).
    public init(from: String, to: String, last7Days: Int, last30Days: Int, total: Int, medianSeconds: Double?) {
        self.from = from
        self.to = to
        self.last7Days = last7Days
        self.last30Days = last30Days
        self.total = total
        self.medianSeconds = medianSeconds
    }
}

/// What `journey doctor` found: each list empty when all is well.
public struct DoctorFindings: Hashable, Sendable, Codable {
    /// `PRAGMA integrity_check` lines other than `ok`.
    public var integrity: [String] = []
    /// Stored stage values the rules do not know (nor alias), with how many users hold each.
    public var unknownStages: [String: Int] = [:]
    /// Users whose stage differs from the `to_state` of their last transition (or J1 with none).
    public var stageMismatches: [Int64] = []
    /// Users whose history does not chain (a row's `from_state` is not the previous `to_state`).
    public var brokenHistories: [Int64] = []
    /// Users whose `follower_count` differs from the rows in `follows`.
    public var followerCountDrift: [Int64] = []
    /// The forms of every timestamp column the metrics read (SPEC §8), one entry per column.
    public var timestamps: [TimestampColumnReport] = []
    /// Journey's triggers on the platform's tables that are gone or changed, by name: a platform
    /// that rebuilt a table dropped them, or one that renamed a table rewrote them. On SQLite the metrics stay right meanwhile, the slower way (counting
    /// `follows`, parsing every timestamp); on PostgreSQL `follower_count` goes stale
    /// (``followerCountDrift``). `journey migrate` makes them again, and recounts.
    public var missingTriggers: [String] = []

    /// True when nothing is wrong. Timestamps in other readable forms are reported, not wrong;
    /// an unreadable one is (it reads as missing, and no repair can guess it).
    public var isHealthy: Bool {
        integrity.isEmpty && unknownStages.isEmpty && stageMismatches.isEmpty && brokenHistories.isEmpty && followerCountDrift.isEmpty
            && timestamps.allSatisfy { $0.unreadable == 0 } && missingTriggers.isEmpty
    }

    enum CodingKeys: String, CodingKey {
        case integrity, unknownStages = "unknown_stages", stageMismatches = "stage_mismatches"
        case brokenHistories = "broken_histories", followerCountDrift = "follower_count_drift", timestamps
        case missingTriggers = "missing_triggers"
    }

    /// Findings with every list empty: a healthy database, until a check adds to them.
    public init() {}
}

/// How one timestamp column's non-NULL values are stored, by ``Timestamp/Form``.
public struct TimestampColumnReport: Hashable, Sendable, Codable {
    /// `table.column`, e.g. `posts.created_at`.
    public var column: String
    /// Values per form (`canonical`, `iso8601`, `date_only`, `epoch_seconds`, `epoch_milliseconds`,
    /// `unreadable`); forms with no value are left out.
    public var forms: [String: Int]
    /// Up to three stored values of each form other than `canonical`, as text (cut at 40 characters).
    public var samples: [String: [String]]

    /// Values that fit no form: read as missing by every metric.
    public var unreadable: Int { forms[Timestamp.Form.unreadable.rawValue] ?? 0 }

    /// One column's forms as a store counted them.
    public init(column: String, forms: [String: Int], samples: [String: [String]]) {
        self.column = column
        self.forms = forms
        self.samples = samples
    }
}

/// What one run of the migrator did to a file, for `journey migrate` to say.
public struct MigrationReport: Hashable, Sendable, Codable {
    /// An index the journey needs that an equivalent index of the platform already serves.
    public struct ReusedIndex: Hashable, Sendable, Codable {
        /// The journey's name for the index (`idx_posts_user_created`), which was not created.
        public var wanted: String
        /// The existing index that serves instead (`posts_user_created`).
        public var existing: String
        /// `table(columns)`, the keys both share.
        public var keys: String

        /// An index the journey wanted (`wanted`) that `existing` serves, on `keys` (`table(columns)`).
        public init(wanted: String, existing: String, keys: String) {
            self.wanted = wanted
            self.existing = existing
            self.keys = keys
        }
    }

    /// An index of SPEC §3 not created because the platform's table lacks a column of its keys
    /// (`posts.visibility` on a platform without post visibility). Journey's metrics never need
    /// such an index (``PlatformSchema/metricColumns``); a platform that adds the column later
    /// creates the index itself.
    public struct SkippedIndex: Hashable, Sendable, Codable {
        /// The journey's name for the index (`idx_posts_visibility`).
        public var name: String
        /// `table(columns)`, the keys it would have had.
        public var keys: String
        /// The key columns the table lacks, as `table.column`.
        public var missing: [String]

        /// The index `name` on `keys` (`table(columns)`), skipped for lack of `missing` (`table.column`).
        public init(name: String, keys: String, missing: [String]) {
            self.name = name
            self.keys = keys
            self.missing = missing
        }
    }

    /// The migrations applied by this run, in order; empty when the file was up to date.
    public var migrationsApplied: [String] = []
    /// Tables created (the platform's on an empty file, the journey's).
    public var tablesCreated: [String] = []
    /// Columns added, as `table.column`.
    public var columnsAdded: [String] = []
    /// Columns whose schema was repaired by rebuilding their table, as `table.column`.
    public var columnsRebuilt: [String] = []
    /// Indexes created, by name.
    public var indexesCreated: [String] = []
    /// Indexes the journey needs that existing indexes serve.
    public var indexesReused: [ReusedIndex] = []
    /// Indexes of SPEC §3 not created: the platform's table lacks a key column.
    public var indexesSkipped: [SkippedIndex] = []
    /// Triggers created, by name.
    public var triggersCreated: [String] = []

    /// A report of a run that did nothing.
    public init() {}

    /// Whether the run changed nothing: no migration applied, and nothing that a rebuild of a
    /// platform table had dropped made again (a trigger, an index).
    public var nothingToDo: Bool { migrationsApplied.isEmpty && triggersCreated.isEmpty && indexesCreated.isEmpty }

    enum CodingKeys: String, CodingKey {
        case migrationsApplied = "migrations_applied", tablesCreated = "tables_created", columnsAdded = "columns_added"
        case columnsRebuilt = "columns_rebuilt", indexesCreated = "indexes_created", indexesReused = "indexes_reused"
        case indexesSkipped = "indexes_skipped", triggersCreated = "triggers_created"
    }
}
