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

/// Each metric of SPEC §2 defined once, and the two statements written from the definitions: one
/// user by correlated subqueries on the indexes (``snapshot(_:)``), and an id range with each table
/// read once by index range and grouped by user (``chunk(_:)``).
///
/// A count is a ``Source`` (a table and the column naming the user, with a filter) and, for the
/// windowed counts, a ``Window`` on a timestamp column. The window compares the stored text with
/// text bounds (`:since_text`, `:now_text`; an index range) where the column holds canonical text
/// alone, and `journey_instant(…)` with epoch bounds (`:since`, `:now`) where another form was ever
/// written (``TimestampForms``): so each statement has one text per ``TimestampForms`` value, all
/// written once, and the caller picks the one for the file's forms.
enum MetricsSQL {
    /// Where a count comes from: `from` (a table and its joins), `owner` (the column naming the user),
    /// and a filter on the rows; `name` names the chunk's derived table.
    struct Source {
        let name: String
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

    static let posts = Source(name: "posts_of", from: "posts p", owner: "p.user_id", filter: nil)
    static let follows = Source(name: "follows_of", from: "follows f", owner: "f.follower_id", filter: nil)
    static let organized = Source(name: "events_of", from: "events e", owner: "e.organizer_id", filter: nil)
    static let attended = Source(name: "rsvps_of", from: "event_rsvps r JOIN events e ON e.id = r.event_id", owner: "r.user_id", filter: "r.status = 'going'")

    /// The counts of SPEC §2, in column order; followers come from the user row (``userColumns``).
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

    /// The columns read from the user's row and pin, the same in both statements.
    static let userColumns: [MetricsColumn: String] = [
        .id: "u.id", .stage: "u.customer_journey_state", .lastUpdate: "u.last_journey_update", .signedUpAt: "u.created_at",
        .onboardingComplete: "u.is_onboarding_complete", .subscriptionTier: "u.subscription_tier", .role: "u.role",
        .followers: SQLiteStore.followersSQL,
        .pinStage: "pin.stage", .pinReason: "pin.reason", .pinCreatedAt: "pin.created_at",
    ]

    /// `expression AS name`, or the bare column where it already has the name.
    static func select(_ expression: String, _ column: MetricsColumn) -> String {
        expression.hasSuffix(".\(column.name)") ? expression : "\(expression) AS \(column.name)"
    }

    /// The statement for one user (`:user`), each count a subquery that seeks the owner's index.
    static func snapshot(_ forms: TimestampForms) -> String {
        let columns = MetricsColumn.oneUser.map { column in
            if let expression = userColumns[column] { return select(expression, column) }
            let count = counts.first { $0.column == column }!
            let conditions = ["\(count.source.owner) = u.id"] + [count.source.filter, count.window?.condition(forms)].compactMap { $0 }
            return "(SELECT COUNT(*) FROM \(count.source.from) WHERE \(conditions.joined(separator: " AND "))) AS \(column.name)"
        }
        return """
            SELECT \(columns.joined(separator: ",\n       "))
            FROM users u LEFT JOIN journey_pins pin ON pin.user_id = u.id
            WHERE u.id = :user
            """
    }

    /// The statement for the users with ids in [`:low`, `:high`]: each source read once by index
    /// range and grouped by user, then joined to the users by id.
    static func chunk(_ forms: TimestampForms) -> String {
        var sources: [Source] = []
        for count in counts where !sources.contains(where: { $0.name == count.source.name }) { sources.append(count.source) }
        let joins = sources.map { source in
            var aggregates: [String] = []
            for count in counts where count.source.name == source.name {
                aggregates.append("\(count.window.map { "SUM(\($0.condition(forms)))" } ?? "COUNT(*)") AS \(count.column.name)")
                if let window = count.window, let unreadable = count.unreadable {
                    aggregates.append("\(window.unreadable(forms)) AS \(unreadable.name)")
                }
            }
            let conditions = ["\(source.owner) BETWEEN :low AND :high", source.filter].compactMap { $0 }
            return """
                LEFT JOIN (SELECT \(source.owner) AS user_id, \(aggregates.joined(separator: ", "))
                           FROM \(source.from) WHERE \(conditions.joined(separator: " AND ")) GROUP BY \(source.owner)) \(source.name) ON \(source.name).user_id = u.id
                """
        }
        let columns = MetricsColumn.allCases.map { column in
            if let expression = userColumns[column] { return select(expression, column) }
            let count = counts.first { $0.column == column || $0.unreadable == column }!
            return "COALESCE(\(count.source.name).\(column.name), 0) AS \(column.name)"
        }
        return """
            SELECT \(columns.joined(separator: ",\n       "))
            FROM users u
            \(joins.joined(separator: "\n"))
            LEFT JOIN journey_pins pin ON pin.user_id = u.id
            WHERE u.id BETWEEN :low AND :high
            ORDER BY u.id
            """
    }
}
