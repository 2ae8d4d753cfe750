import Foundation
import GRDB
import JourneyCore
import JourneyStorage

// How the store reads platform columns that other applications write: the stage and the
// follower count, the same way in every statement and every comparison.

extension UserSnapshot {
    /// A `customer_journey_state` value as text: the one reading of a stored stage that the
    /// snapshot, the compare-and-set of ``SQLiteStore/persist(_:rulesVersion:source:now:progress:)``,
    /// pins and doctor share, so that what one of them read the others match. NULL reads as
    /// empty ("never evaluated"); a number or a blob another application stored reads as its text.
    static func storedStage(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: ""
        case .string(let text): text
        case .int64(let number): String(number)
        case .double(let number): String(number)
        case .blob(let data): String(decoding: data, as: UTF8.self)
        }
    }
}

extension SQLiteStore {
    /// `follower_count` where it is an integer, else the user's rows in `follows` (a NULL or a
    /// text written by another application is never read as a number it does not hold).
    static let followersSQL = """
        CASE WHEN typeof(u.follower_count) = 'integer' THEN u.follower_count
             ELSE (SELECT COUNT(*) FROM follows WHERE following_id = u.id) END
        """
}
