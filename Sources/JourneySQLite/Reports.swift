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

extension SQLiteStore {
    /// Every edge users have moved along, with counts for the last 7 and 30 days and the median stay.
    public func edgeReports(now: Date) async throws(StorageError) -> [EdgeReport] {
        try await read { db in
            var stays: [String: (from: String, to: String, week: Int, month: Int, total: Int, seconds: [Double])] = [:]
            let weekAgo = now.addingTimeInterval(-7 * 86_400)
            let monthAgo = now.addingTimeInterval(-30 * 86_400)
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT t.from_state, t.to_state, t.created_at,
                           journey_instant(t.created_at) - journey_instant(COALESCE(
                               LAG(t.created_at) OVER (PARTITION BY t.user_id ORDER BY t.seq), u.created_at)) AS seconds
                    FROM journey_transitions t LEFT JOIN users u ON u.id = t.user_id
                    """)
            while let row = try rows.next() {
                let from: String = row["from_state"], to: String = row["to_state"]
                let at = Date.fromDatabaseValue(row["created_at"]) ?? .distantPast
                var entry = stays["\(from)->\(to)"] ?? (from, to, 0, 0, 0, [])
                entry.total += 1
                if at >= weekAgo { entry.week += 1 }
                if at >= monthAgo { entry.month += 1 }
                if let seconds = Double.fromDatabaseValue(row["seconds"]), seconds >= 0 { entry.seconds.append(seconds) }
                stays["\(from)->\(to)"] = entry
            }
            // Text order only makes the result stable; callers sort by the rules (J10 after J9).
            return stays.values.sorted { ($0.from, $0.to) < ($1.from, $1.to) }.map { entry in
                let sorted = entry.seconds.sorted()
                let median: Double? =
                    sorted.isEmpty
                    ? nil
                    : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
                return EdgeReport(from: entry.from, to: entry.to, last7Days: entry.week, last30Days: entry.month, total: entry.total, medianSeconds: median)
            }
        }
    }
}
