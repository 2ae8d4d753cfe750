import Foundation
import GRDB

extension JourneyDatabase {
    /// Users per stored stage, in stage-id order (the funnel of `journey status`).
    public func funnel() throws(StoreError) -> [(stage: String, count: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT customer_journey_state AS stage, COUNT(*) AS count FROM users
                GROUP BY customer_journey_state ORDER BY customer_journey_state
                """).map { (stage: String.fromDatabaseValue($0["stage"]) ?? "", count: $0["count"]) }
        }
    }
}
