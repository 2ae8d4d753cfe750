/// The columns of the two metrics statements, ``SQLiteStore/snapshotSQL(_:)`` (one user) and
/// ``SQLiteStore/chunkSQL(_:)`` (an id range), in the order both select them: the decoder reads
/// them by this position (a lookup by name lowercases the name on every call, 12% of a snapshot).
/// The last two are the chunk's alone.
public enum MetricsColumn: Int, CaseIterable, Sendable {
    case id, stage, lastUpdate, signedUpAt, onboardingComplete, subscriptionTier, role, followers
    case posts, postsLast30Days, following, eventsOrganized, eventsAttended
    case pinStage, pinReason, pinCreatedAt
    case postsUnreadable, eventsUnreadable

    /// The column's name in both statements.
    public var name: String {
        switch self {
        case .id: "id"
        case .stage: "customer_journey_state"
        case .lastUpdate: "last_journey_update"
        case .signedUpAt: "created_at"
        case .onboardingComplete: "is_onboarding_complete"
        case .subscriptionTier: "subscription_tier"
        case .role: "role"
        case .followers: "follower_count"
        case .posts: "posts"
        case .postsLast30Days: "posts_recent"
        case .following: "following"
        case .eventsOrganized: "organized"
        case .eventsAttended: "attended"
        case .pinStage: "pin_stage"
        case .pinReason: "pin_reason"
        case .pinCreatedAt: "pin_created_at"
        case .postsUnreadable: "posts_unreadable"
        case .eventsUnreadable: "events_unreadable"
        }
    }

    /// The columns ``SQLiteStore/snapshotSQL(_:)`` selects: all but the chunk's unreadable counts.
    static let oneUser = allCases.filter { $0 != .postsUnreadable && $0 != .eventsUnreadable }
}

/// Each metric of SPEC §2 defined once, and the two statements written from the definitions, both
/// by correlated subqueries on the indexes: one user (``snapshot(_:)``), and an id range
/// (``chunk(_:)``).
///
/// A count is a ``Source`` (a table and the column naming the user, with a filter) and, for the
/// windowed counts, a ``Window`` on a timestamp column. The window compares the stored text with
/// text bounds (`:since_text`, `:now_text`; an index range) where the column holds canonical text
/// alone, and `journey_instant(…)` with epoch bounds (`:since`, `:now`) where another form was ever
/// written (``TimestampForms``): so each statement has one text per ``TimestampForms`` value, all
/// written once, and the caller picks the one for the file's forms.
enum MetricsSQL {
    /// Where a count comes from: `from` (a table and its joins), `owner` (the column naming the user),
    /// and a filter on the rows.
    struct Source {
        let from: String
        let owner: String
        let filter: String?
    }

    /// A timestamp column compared with one bound of the window (`since` or `now`).
    struct Window {
        let column: String
        let comparison: String
        let bound: String
        /// Whether `forms` says the column holds canonical text alone.
        let isCanonical: @Sendable (TimestampForms) -> Bool

        /// The comparison, as text or through the parser.
        func condition(_ forms: TimestampForms) -> String {
            isCanonical(forms) ? "\(column) \(comparison) :\(bound)_text" : "journey_instant(\(column)) \(comparison) :\(bound)"
        }

        /// The chunk's count of values the parser could not read (none to count on canonical text).
        func unreadable(_ forms: TimestampForms) -> String {
            isCanonical(forms) ? "0" : "COUNT(\(column)) - COUNT(journey_instant(\(column)))"
        }
    }

    /// One count: the rows of `source` for the user, those inside `window` when it has one.
    struct Count {
        let column: MetricsColumn
        let source: Source
        let window: Window?
        /// The chunk's column counting the rows `window` could not read, if any.
        let unreadable: MetricsColumn?
    }

    static let posts = Source(from: "posts p", owner: "p.user_id", filter: nil)
    static let follows = Source(from: "follows f", owner: "f.follower_id", filter: nil)
    static let organized = Source(from: "events e", owner: "e.organizer_id", filter: nil)
    static let attended = Source(from: "event_rsvps r JOIN events e ON e.id = r.event_id", owner: "r.user_id", filter: "r.status = 'going'")

    /// The counts of SPEC §2, in column order; followers come from the user row (``followers(_:)``).
    static let counts: [Count] = [
        Count(column: .posts, source: posts, window: nil, unreadable: nil),
        Count(
            column: .postsLast30Days, source: posts,
            window: Window(column: "p.created_at", comparison: ">=", bound: "since", isCanonical: \.postsCreatedAt), unreadable: .postsUnreadable),
        Count(column: .following, source: follows, window: nil, unreadable: nil),
        Count(column: .eventsOrganized, source: organized, window: nil, unreadable: nil),
        Count(
            column: .eventsAttended, source: attended,
            window: Window(column: "e.start_date", comparison: "<=", bound: "now", isCanonical: \.eventsStartDate), unreadable: .eventsUnreadable),
    ]

    /// The columns read from the user's row and pin, the same in both statements; followers are
    /// ``followers(_:)``.
    static let userColumns: [MetricsColumn: String] = [
        .id: "u.id", .stage: "u.customer_journey_state", .lastUpdate: "u.last_journey_update", .signedUpAt: "u.created_at",
        .onboardingComplete: "u.is_onboarding_complete", .subscriptionTier: "u.subscription_tier", .role: "u.role",
        .pinStage: "pin.stage", .pinReason: "pin.reason", .pinCreatedAt: "pin.created_at",
    ]

    /// Followers as the statements read them: the kept count, or, where a trigger that keeps it is
    /// gone (``TimestampForms/followerCountKept``), counted from `follows`.
    static func followers(_ forms: TimestampForms) -> String {
        forms.followerCountKept ? SQLiteStore.followersSQL : "(SELECT COUNT(*) FROM follows WHERE following_id = u.id)"
    }

    /// `expression AS name`, or the bare column where it already has the name.
    static func select(_ expression: String, _ column: MetricsColumn) -> String {
        expression.hasSuffix(".\(column.name)") ? expression : "\(expression) AS \(column.name)"
    }

    /// The statement for one user (`:user`), each count a subquery that seeks the owner's index.
    static func snapshot(_ forms: TimestampForms) -> String {
        statement(MetricsColumn.oneUser, forms, users: "u.id = :user")
    }

    /// The statement for the users with ids in [`:low`, `:high`], in id order: the same subqueries
    /// as ``snapshot(_:)`` for each user of the range, with the counts of unreadable timestamps.
    ///
    /// Each table is sought by the user's index, as for one user. Reading each table's range once,
    /// grouped by user and joined to the users (the statement before issue 16), took 20% longer:
    /// SQLite materialized each grouped table and built an automatic index on it for the join
    /// (0.73 s against 0.61 s for the 100k-user benchmark file in chunks of 2,000, Python's
    /// `sqlite3`, one run).
    static func chunk(_ forms: TimestampForms) -> String {
        statement(MetricsColumn.allCases, forms, users: "u.id BETWEEN :low AND :high") + "\nORDER BY u.id"
    }

    /// `columns` of the users `users` selects (a condition on `u.id`), each count a correlated subquery.
    private static func statement(_ columns: [MetricsColumn], _ forms: TimestampForms, users: String) -> String {
        let selected = columns.map { column in
            if column == .followers { return select(followers(forms), column) }
            if let expression = userColumns[column] { return select(expression, column) }
            if let count = counts.first(where: { $0.column == column }) {
                return "(\(subquery("COUNT(*)", count.source, window: count.window?.condition(forms)))) AS \(column.name)"
            }
            let count = counts.first { $0.unreadable == column }!
            let unreadable = count.window!.unreadable(forms)
            return unreadable == "0" ? "0 AS \(column.name)" : "(\(subquery(unreadable, count.source, window: nil))) AS \(column.name)"
        }
        return """
            SELECT \(selected.joined(separator: ",\n       "))
            FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id
            WHERE \(users)
            """
    }

    /// `SELECT aggregate` over the user's rows of `source`, those inside `window` when given.
    private static func subquery(_ aggregate: String, _ source: Source, window: String?) -> String {
        let conditions = ["\(source.owner) = u.id"] + [source.filter, window].compactMap { $0 }
        return "SELECT \(aggregate) FROM \(source.from) WHERE \(conditions.joined(separator: " AND "))"
    }
}
