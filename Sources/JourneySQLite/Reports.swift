public import Foundation
import GRDB
import JourneyCore
public import JourneyStorage

extension SQLiteStore {
    /// Users per stored stage value, in no particular order: only the rules know the journey's
    /// order (J10 after J9), so `journey status` sorts by them (``RuleSet/order(of:)``).
    ///
    /// Each value is read as the snapshot reads it (``UserSnapshot/storedStage(_:)``): NULL and ''
    /// are one entry, `''` (never evaluated), and a number another application stored is its text.
    public func funnel() async throws(StorageError) -> [(stage: String, count: Int)] {
        try await read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT customer_journey_state AS stage, COUNT(*) AS count FROM users
                    GROUP BY customer_journey_state
                    """)
            {
                counts[UserSnapshot.storedStage(row["stage"]), default: 0] += row["count"] as Int
            }
            return counts.map { (stage: $0.key, count: $0.value) }
        }
    }
}

/// One edge's moves as ``SQLiteStore/edgeReports(now:)`` gathers them: counts, and the time spent in the
/// stage before each move (seconds, where readable and not negative). A class, so that adding a
/// move changes the one copy in place: a value taken out of the dictionary and stored back copied
/// the growing array of seconds on every row (a quadratic `status`: 11 s at 70k transitions).
private final class EdgeStays {
    let from: String
    let to: String
    var week = 0, month = 0, total = 0
    var seconds: [Double] = []

    init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    func add(at: Date, seconds stay: Double?, weekAgo: Date, monthAgo: Date) {
        total += 1
        if at >= weekAgo { week += 1 }
        if at >= monthAgo { month += 1 }
        if let stay, stay >= 0 { seconds.append(stay) }
    }

    /// The edge's counts and the median of its stays (nil without one).
    var report: EdgeReport {
        let sorted = seconds.sorted()
        let median: Double? =
            sorted.isEmpty
            ? nil
            : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return EdgeReport(from: from, to: to, last7Days: week, last30Days: month, total: total, medianSeconds: median)
    }
}

extension SQLiteStore {
    /// Every edge users have moved along, with counts for the last 7 and 30 days and the median stay.
    public func edgeReports(now: Date) async throws(StorageError) -> [EdgeReport] {
        try await read { db in
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT t.from_state, t.to_state, t.created_at,
                           journey_instant(t.created_at) - journey_instant(COALESCE(
                               LAG(t.created_at) OVER (PARTITION BY t.user_id ORDER BY t.seq), u.created_at)) AS seconds
                    FROM journey_transitions t LEFT JOIN users u ON u.id = t.user_id
                    """)
            return try Self.edgeReports(rows, now: now)
        }
    }

    /// Adds one move to its edge's stays. Kept out of the loop of ``edgeReports(_:now:)``: written
    /// there, it crashed the Swift 6.3.1 optimizer in release builds (CopyPropagation).
    private static func addStay(
        to stays: inout [String: EdgeStays], from: String, to: String, at: Date, seconds: Double?, weekAgo: Date, monthAgo: Date
    ) {
        let key = "\(from)->\(to)"
        if let stay = stays[key] {
            stay.add(at: at, seconds: seconds, weekAgo: weekAgo, monthAgo: monthAgo)
        } else {
            let stay = EdgeStays(from: from, to: to)
            stay.add(at: at, seconds: seconds, weekAgo: weekAgo, monthAgo: monthAgo)
            stays[key] = stay
        }
    }

    /// Gathers ``edgeReports(now:)``'s rows by edge, in text order (callers sort by the rules).
    private static func edgeReports(_ rows: RowCursor, now: Date) throws -> [EdgeReport] {
        var stays: [String: EdgeStays] = [:]
        let weekAgo = now.addingTimeInterval(-7 * 86_400)
        let monthAgo = now.addingTimeInterval(-30 * 86_400)
        while let row = try rows.next() {
            let from: String = row["from_state"], to: String = row["to_state"]
            let at = Date.fromDatabaseValue(row["created_at"]) ?? .distantPast
            let seconds = Double.fromDatabaseValue(row["seconds"])
            addStay(to: &stays, from: from, to: to, at: at, seconds: seconds, weekAgo: weekAgo, monthAgo: monthAgo)
        }
        return stays.keys.sorted().compactMap { stays[$0]?.report }
    }
}
