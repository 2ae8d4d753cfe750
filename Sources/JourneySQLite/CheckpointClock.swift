import GRDB
import GRDBSQLite
import JourneyStorage
import Synchronization

/// WAL checkpoints as SQLite runs them by default, timed: the batch reports them apart from its
/// writes and commits (``PersistResult/checkpointing``, issue 16's breakdown).
///
/// SQLite's own auto-checkpoint is a WAL hook that runs a `PASSIVE` checkpoint once a commit leaves
/// the WAL at ``frames`` pages or more (`SQLITE_DEFAULT_WAL_AUTOCHECKPOINT`,
/// <https://www.sqlite.org/wal.html#automatic_checkpoint>). ``install(on:)`` replaces it with a hook
/// that does the same and adds the time it took to its connection's total, which a writer reads
/// before and after a commit. `PRAGMA wal_autocheckpoint` on the connection puts SQLite's hook
/// back (untimed).
enum CheckpointClock {
    /// The WAL size, in pages, at which a commit checkpoints: SQLite's default.
    static let frames: Int32 = 1_000

    /// Seconds spent checkpointing, by connection (`sqlite3*` address). A connection's entry
    /// stays after it closes (a few bytes); readers take differences, so a reused address only
    /// starts from a larger total.
    private static let totals = Mutex<[UInt: Double]>([:])

    /// Seconds `db`'s connection has spent in checkpoints so far.
    static func seconds(of db: Database) -> Double {
        guard let connection = db.sqliteConnection else { return 0 }
        return totals.withLock { $0[UInt(bitPattern: connection), default: 0] }
    }

    /// Installs the timed hook on `db`'s connection.
    static func install(on db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, hook, nil)
    }

    /// The hook: SQLite calls it after each commit in WAL mode with the WAL's size in pages.
    /// Always `SQLITE_OK`, as SQLite's own: a checkpoint that cannot finish (a reader holds old
    /// pages) is tried again after the next commit.
    private static let hook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = {
        _, connection, schema, pages in
        guard pages >= frames, let connection else { return SQLITE_OK }
        let started = ContinuousClock.now
        _ = sqlite3_wal_checkpoint_v2(connection, schema, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        let elapsed = (ContinuousClock.now - started).seconds
        totals.withLock { $0[UInt(bitPattern: connection), default: 0] += elapsed }
        return SQLITE_OK
    }
}
