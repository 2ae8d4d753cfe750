import Foundation
import GRDB
import JourneySQLite

/// A new platform database, `$TMPDIR/journey-quickstart/platform.sqlite` (the last run's is replaced),
/// where user 42 is ready for J2: signed up ten days ago, onboarded, one post, one follower (user 7).
/// The README's snippet runs on it.
func platformDatabase() throws -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("journey-quickstart")
    try? FileManager.default.removeItem(at: folder)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let path = folder.appendingPathComponent("platform.sqlite").path
    let database = try SQLiteStore.open(path: path, mode: .migrate)
    let signup = Date().addingTimeInterval(-10 * 86_400)
    try database.writer.write { db in
        try db.execute(
            sql: """
                INSERT INTO users(id, email, role, subscription_tier, is_onboarding_complete, created_at)
                VALUES (42, 'ana@example.org', 'user', 'free', 1, ?), (7, 'bo@example.org', 'user', 'free', 1, ?)
                """, arguments: [signup, signup])
        try db.execute(sql: "INSERT INTO posts(user_id, visibility, created_at) VALUES (42, 'public', ?)", arguments: [Date()])
        try db.execute(sql: "INSERT INTO follows(follower_id, following_id, created_at) VALUES (7, 42, ?)", arguments: [Date()])
    }
    return path
}
