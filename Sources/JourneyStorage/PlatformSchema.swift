/// What Journey needs of the platform's own tables (SPEC §2, §3), whichever database holds them.
public enum PlatformSchema {
    /// The platform columns the metrics statements read (SPEC §2), by table. A table that exists
    /// without one of them cannot be evaluated: `migrate` refuses it before changing anything, and
    /// opening it fails with ``StorageError/platformColumnsMissing(location:columns:)``. The three
    /// journey columns of `users` are not here: `migrate` adds them. The other columns SPEC §3 names
    /// (`posts.visibility`, `users.email`, `users.city`, …) serve only the platform's indexes: an
    /// index on a column the platform lacks is skipped and reported (``MigrationReport/indexesSkipped``).
    public static let metricColumns: [(table: String, columns: [String])] = [
        ("users", ["id", "created_at", "is_onboarding_complete", "subscription_tier", "role"]),
        ("posts", ["user_id", "created_at"]),
        ("follows", ["follower_id", "following_id"]),
        ("events", ["id", "organizer_id", "start_date"]),
        ("event_rsvps", ["user_id", "event_id", "status"]),
    ]

    /// The ``metricColumns`` that the tables lack, as `table.column`, in the order listed.
    ///
    /// - parameter present: the columns of each platform table that exists, by table name, both
    ///   lowercased (SQL names are case-insensitive). A table not in it is not checked: `migrate`
    ///   creates it whole, and opening reports it as ``StorageError/platformTablesMissing(location:tables:)``.
    public static func missingColumns(present: [String: Set<String>]) -> [String] {
        metricColumns.flatMap { table, columns in
            guard let found = present[table] else { return [String]() }
            return columns.filter { !found.contains($0) }.map { "\(table).\($0)" }
        }
    }
}
