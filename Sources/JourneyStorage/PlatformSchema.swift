/// What Journey needs of the platform's own tables (SPEC §2, §3), whichever database holds them,
/// and what keeps a platform's tables from serving it.
///
/// Both stores describe the tables they find (``Table``) and refuse, before `migrate` changes
/// anything and when a command opens the database, tables with ``problems(_:)``:
/// ``StorageError/platformTablesUnfit(location:problems:)``.
public enum PlatformSchema {
    /// The platform columns the metrics statements read (SPEC §2), by table. The three journey
    /// columns of `users` are not here: `migrate` adds them. The other columns SPEC §3 names
    /// (`posts.visibility`, `users.email`, `users.city`, …) serve only the platform's indexes: an
    /// index on a column the platform lacks is skipped and reported (``MigrationReport/indexesSkipped``).
    public static let metricColumns: [(table: String, columns: [String])] = [
        ("users", ["id", "created_at", "is_onboarding_complete", "subscription_tier", "role"]),
        ("posts", ["user_id", "created_at"]),
        ("follows", ["follower_id", "following_id"]),
        ("events", ["id", "organizer_id", "start_date"]),
        ("event_rsvps", ["user_id", "event_id", "status"]),
    ]

    /// One platform table as a store found it.
    public struct Table: Sendable {
        /// The table's name, lowercased (`users`).
        public var name: String
        /// Whether it is a view: Journey indexes the platform's tables and keeps counters by
        /// triggers on them, which a view cannot have.
        public var isView: Bool
        /// Its columns, lowercased.
        public var columns: Set<String>
        /// Columns Journey cannot use as declared, each with why (`"users.id is declared TEXT"`):
        /// the store's own rules (an id column whose values sort as text, a STRICT column of the
        /// wrong type).
        public var unfitColumns: [String]

        /// A table `name` (lowercased), a view when `isView`, with `columns` (lowercased) and the
        /// store's findings on them.
        public init(name: String, isView: Bool, columns: Set<String>, unfitColumns: [String] = []) {
            self.name = name
            self.isView = isView
            self.columns = columns
            self.unfitColumns = unfitColumns
        }
    }

    /// What keeps `tables` from serving Journey, one phrase each, in ``metricColumns``' order:
    /// a view, the ``metricColumns`` a table lacks (`no column posts.created_at`), and the
    /// store's ``Table/unfitColumns``. A platform table not in `tables` is not checked: `migrate`
    /// creates it whole, and opening reports it (``StorageError/platformTablesMissing(location:tables:)``).
    public static func problems(_ tables: [Table]) -> [String] {
        metricColumns.flatMap { name, columns -> [String] in
            guard let table = tables.first(where: { $0.name == name }) else { return [] }
            if table.isView { return ["\(name) is a view, not a table"] }
            let missing = columns.filter { !table.columns.contains($0) }.map { "\(name).\($0)" }
            return (missing.isEmpty ? [] : ["no column \(missing.joined(separator: ", "))"]) + table.unfitColumns
        }
    }
}
