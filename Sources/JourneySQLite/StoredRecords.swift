public import GRDB
import JourneyCore
public import JourneyStorage

// The storage protocol's records, read from their SQLite rows through their `Codable` column names.

extension RecordedTransition: FetchableRecord, TableRecord {
    /// The table every move is recorded in (SPEC §3); its rows are the durable feed (SPEC §9).
    public static let databaseTableName = "journey_transitions"
}

extension BatchRun: FetchableRecord {}
extension AdoptedRules: FetchableRecord {}
extension StageID: DatabaseValueConvertible {}
extension TransitionSource: DatabaseValueConvertible {}
