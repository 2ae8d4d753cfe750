import Foundation
import GRDB
import JourneySQLite
import Testing

/// A small database written by hand for one test: the journey schema, then the test's own rows.
enum SmallDatabase {
    /// Creates a migrated database at `path` and runs `sql` on it (the test's users, posts, …).
    static func create(_ path: String, _ sql: String = "") throws {
        _ = try SQLiteStore.open(path: path, mode: .migrate)
        if !sql.isEmpty { try Direct.execute(path, sql) }
    }

    /// Writes `text` to `name` in the workspace and returns its path (a rules file).
    static func write(_ text: String, to name: String, in workspace: Workspace) throws -> String {
        let path = workspace.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
