import Foundation
import GRDB
import JourneyStorage

/// What this process's migrations did, for the ``MigrationReport``: each migration's (and the
/// repair's) change to the schema, taken inside the transaction that made it, and what a schema
/// diff cannot tell (rebuilt columns, reused and skipped indexes). Filled inside GRDB's migration
/// closures, read once the migrator returns. Another process migrating the same file at once
/// applies some of the migrations itself; their changes are its to report, not this one's (a
/// diff of the whole run would claim them). The notes of a migration tried again are kept once.
final class MigrationLog: @unchecked Sendable {
    private let lock = NSLock()
    private var changes: [(migration: String?, before: SchemaObjects, after: SchemaObjects)] = []
    private var rebuilt: [String] = []
    private var reused: [MigrationReport.ReusedIndex] = []
    private var skipped: [MigrationReport.SkippedIndex] = []

    /// Notes the schema before and after `migration` (nil: the repair after the migrations), once
    /// this process committed it.
    func changed(_ migration: String?, from before: SchemaObjects, to after: SchemaObjects) {
        lock.withLock { changes.append((migration, before, after)) }
    }

    func rebuilt(_ column: String) {
        lock.withLock { if !rebuilt.contains(column) { rebuilt.append(column) } }
    }

    func reused(_ index: MigrationReport.ReusedIndex) {
        lock.withLock { if !reused.contains(index) { reused.append(index) } }
    }

    func skipped(_ index: MigrationReport.SkippedIndex) {
        lock.withLock { if !skipped.contains(index) { skipped.append(index) } }
    }

    /// The report of what was noted: the migrations in the order they ran, and the objects and
    /// `users` columns their changes left (an object made by one and dropped by a later one, as the
    /// journey's copy of a reused index, is not reported).
    var report: MigrationReport {
        lock.withLock {
            var made = Set<String>()
            var added: [String] = []
            for change in changes {
                made.formUnion(change.after.objects.subtracting(change.before.objects))
                made.subtract(change.before.objects.subtracting(change.after.objects))
                // The columns of a users table a change created are not "added": the table is reported.
                if change.before.objects.contains("table users") {
                    let before = Set(change.before.userColumns.map { $0.lowercased() })
                    added += change.after.userColumns.filter { !before.contains($0.lowercased()) }.map { "users.\($0)" }
                }
            }
            func created(_ type: String) -> [String] {
                made.filter { $0.hasPrefix(type + " ") }.map { String($0.dropFirst(type.count + 1)) }.sorted()
            }
            var report = MigrationReport()
            report.migrationsApplied = changes.compactMap(\.migration)
            report.tablesCreated = created("table")
            report.indexesCreated = created("index")
            report.triggersCreated = created("trigger")
            report.columnsAdded = added
            report.columnsRebuilt = rebuilt
            report.indexesReused = reused
            report.indexesSkipped = skipped
            return report
        }
    }
}

/// The schema objects a migration's change is read from, before and after it.
struct SchemaObjects {
    /// `type name` of every table, index, trigger and view but SQLite's and GRDB's own.
    var objects: Set<String> = []
    /// The columns of `users`, in order.
    var userColumns: [String] = []

    static func read(_ db: Database) throws -> SchemaObjects {
        var schema = SchemaObjects()
        schema.objects = try Set(
            String.fetchAll(db, sql: "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'"))
        if try db.tableExists("users") {
            schema.userColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('users')")
        }
        return schema
    }
}

/// The top-level pieces of a `CREATE TABLE` statement, split the way SQLite reads it: quotes,
/// brackets, parentheses and comments respected.
struct CreateTableSQL {
    /// Each column definition and table constraint, without the separating commas.
    var definitions: [Substring]
    /// From the closing parenthesis on (`)`, or `) WITHOUT ROWID`, `) STRICT`).
    var tail: Substring

    /// Splits `sql`; nil when it has no complete parenthesized definition list.
    init?(_ sql: String) {
        var depth = 0
        var start: String.Index?  // of the definition being read, once the list has opened
        var pieces: [Substring] = []
        var index = sql.startIndex
        while index < sql.endIndex {
            let character = sql[index]
            if let end = Self.skipQuotedOrComment(sql, at: index) {
                index = end
                continue
            }
            switch character {
            case "(":
                depth += 1
                if depth == 1, start == nil { start = sql.index(after: index) }
            case ")":
                depth -= 1
                if depth == 0, let from = start {
                    pieces.append(sql[from..<index])
                    definitions = pieces
                    tail = sql[index...]
                    return
                }
            case "," where depth == 1:
                if let from = start { pieces.append(sql[from..<index]) }
                start = sql.index(after: index)
            default:
                break
            }
            index = sql.index(after: index)
        }
        return nil
    }

    /// Where a quoted identifier, string literal or comment starting at `index` ends; nil when none starts there.
    static func skipQuotedOrComment(_ sql: String, at index: String.Index) -> String.Index? {
        let character = sql[index]
        let next = sql.index(after: index)
        let closing: Character? =
            switch character {
            case "'", "\"", "`": character
            case "[": "]"
            default: nil
            }
        if let closing {
            var cursor = next
            while cursor < sql.endIndex {
                if sql[cursor] == closing {
                    let after = sql.index(after: cursor)
                    // A doubled quote is an escaped quote inside the same token.
                    if closing != "]", after < sql.endIndex, sql[after] == closing {
                        cursor = sql.index(after: after)
                        continue
                    }
                    return after
                }
                cursor = sql.index(after: cursor)
            }
            return sql.endIndex
        }
        if character == "-", next < sql.endIndex, sql[next] == "-" {
            return sql[next...].firstIndex(of: "\n").map { sql.index(after: $0) } ?? sql.endIndex
        }
        if character == "/", next < sql.endIndex, sql[next] == "*" {
            return sql[next...].range(of: "*/")?.upperBound ?? sql.endIndex
        }
        return nil
    }

    /// The words of a definition at its top level: identifiers unquoted, comments and
    /// parenthesized groups left out (`"Email" TEXT COLLATE NOCASE` → Email, TEXT, COLLATE, NOCASE).
    static func words(_ definition: Substring) -> [String] {
        let sql = String(definition)
        var words: [String] = []
        var depth = 0
        var index = sql.startIndex
        while index < sql.endIndex {
            let character = sql[index]
            if let end = skipQuotedOrComment(sql, at: index) {
                if depth == 0, character != "-", character != "/" {
                    let quoted = sql[index..<end]
                    let inner = quoted.dropFirst().dropLast()
                    let mark = String(quoted.first!)
                    words.append(mark == "[" ? String(inner) : inner.replacingOccurrences(of: mark + mark, with: mark))
                }
                index = end
            } else if character == "(" {
                depth += 1
                index = sql.index(after: index)
            } else if character == ")" {
                depth -= 1
                index = sql.index(after: index)
            } else if character.isWhitespace || character == "," {
                index = sql.index(after: index)
            } else {
                var end = index
                while end < sql.endIndex, !sql[end].isWhitespace, !"()'\"`[,".contains(sql[end]) { end = sql.index(after: end) }
                if depth == 0 { words.append(String(sql[index..<end])) }
                index = end
            }
        }
        return words
    }

    /// The definition of `column`, when one defines it (a table constraint never does).
    func definition(of column: String) -> Substring? {
        definitions.first { Self.words($0).first?.caseInsensitiveCompare(column) == .orderedSame }
    }

    /// The collation `column` declares (`COLLATE NOCASE`), else `BINARY`, SQLite's default.
    func collation(of column: String) -> String {
        guard let words = definition(of: column).map(Self.words),
            let at = words.lastIndex(where: { $0.uppercased() == "COLLATE" }), at + 1 < words.count
        else { return "BINARY" }
        return words[at + 1].uppercased()
    }
}

extension JourneyMigrations {
    /// A journey column of `users` whose schema must match a fresh file's.
    struct ColumnSchema {
        let name: String
        /// The definition a fresh file has, after the column name.
        let definition: String
        /// The default as `PRAGMA table_info` shows it.
        let defaultSQL: String
        /// The value copied into the rebuilt table, from the old row.
        let copy: String
    }

    /// `customer_journey_state` and `follower_count` as a fresh file has them. A stage that is
    /// NULL or blank (never evaluated) is copied as the first stage; a NULL count as 0 (the
    /// counts are recomputed by the next migration anyway).
    static let repairedColumns = [
        ColumnSchema(
            name: "customer_journey_state", definition: "TEXT NOT NULL DEFAULT 'J1_NEW_USER'", defaultSQL: "'J1_NEW_USER'",
            copy:
                "CASE WHEN TRIM(COALESCE(CAST(customer_journey_state AS TEXT), ''), ' ' || char(9, 10, 11, 12, 13)) = '' THEN 'J1_NEW_USER' ELSE customer_journey_state END"
        ),
        ColumnSchema(
            name: "follower_count", definition: "INTEGER NOT NULL DEFAULT 0", defaultSQL: "0",
            copy: "COALESCE(follower_count, 0)"),
    ]

    /// Gives `users.customer_journey_state` and `users.follower_count` the schema of a fresh file
    /// (`NOT NULL` with the default) where an existing platform table declared them otherwise.
    ///
    /// SQLite cannot alter a column, so the table is rebuilt the way its documentation gives
    /// ("Making Other Kinds Of Table Schema Changes"): a new table from the original `CREATE TABLE`
    /// text with only those definitions replaced, every row copied with every column, the old table
    /// dropped, the new one renamed, and the indexes and triggers of `users` created again from
    /// their own SQL. Foreign keys are off meanwhile (the migration is registered with deferred
    /// foreign-key checks), so dropping `users` neither cascades nor fails.
    static func repairUserColumns(_ db: Database, log: MigrationLog) throws {
        let columns = try db.columns(in: "users")
        let wrong = repairedColumns.filter { wanted in
            guard let column = columns.first(where: { $0.name.caseInsensitiveCompare(wanted.name) == .orderedSame }) else { return false }
            return !column.isNotNull || column.defaultValueSQL != wanted.defaultSQL
        }
        guard !wrong.isEmpty else { return }
        guard let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'"),
            let table = CreateTableSQL(sql)
        else {
            throw DatabaseError(message: "cannot read the CREATE TABLE statement of users to repair \(wrong.map(\.name).joined(separator: ", "))")
        }
        let definitions = table.definitions.map { definition -> String in
            guard let name = CreateTableSQL.words(definition).first,
                let wanted = wrong.first(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame })
            else { return String(definition) }
            return "\n    \(name.quotedDatabaseIdentifier) \(wanted.definition)"
        }
        let copied = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_xinfo('users') WHERE hidden = 0 ORDER BY cid").map { $0[0] as String }
        let expressions = copied.map { column in
            wrong.first { $0.name.caseInsensitiveCompare(column) == .orderedSame }?.copy ?? column.quotedDatabaseIdentifier
        }
        let dependents = try String.fetchAll(
            db,
            sql: """
                SELECT sql FROM sqlite_master WHERE tbl_name = 'users' AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name
                """)
        let sequence =
            try db.tableExists("sqlite_sequence")
            ? try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'users'") : nil
        let temporary = "journey_users_rebuild"
        try db.execute(sql: "CREATE TABLE \(temporary.quotedDatabaseIdentifier) (" + definitions.joined(separator: ",") + table.tail)
        try db.execute(
            sql: """
                INSERT INTO \(temporary.quotedDatabaseIdentifier) (\(copied.map(\.quotedDatabaseIdentifier).joined(separator: ", ")))
                SELECT \(expressions.joined(separator: ", ")) FROM users
                """)
        try db.execute(sql: "DROP TABLE users")
        // The legacy rename neither rewrites nor re-checks the triggers and views of other tables,
        // which name `users` and would fail to parse while it is missing.
        let legacy = try Bool.fetchOne(db, sql: "PRAGMA legacy_alter_table") ?? false
        try db.execute(sql: "PRAGMA legacy_alter_table = ON")
        try db.execute(sql: "ALTER TABLE \(temporary.quotedDatabaseIdentifier) RENAME TO users")
        try db.execute(sql: "PRAGMA legacy_alter_table = \(legacy ? "ON" : "OFF")")
        for statement in dependents { try db.execute(sql: statement) }
        if let sequence {
            try db.execute(sql: "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'users'", arguments: [sequence])
        }
        for column in wrong { log.rebuilt("users.\(column.name)") }
    }

    /// One key column of an index: name, direction, collation.
    struct IndexKey: Equatable {
        let column: String
        let descending: Bool
        let collation: String
    }

    /// The keys of `index` when it can stand for a plain index: nil for a partial index or one on an expression.
    static func plainKeys(of index: String, _ db: Database) throws -> [IndexKey]? {
        var keys: [IndexKey] = []
        for row in try Row.fetchAll(db, sql: "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno", arguments: [index]) {
            guard let name = row["name"] as String?, (row["cid"] as Int) >= 0 else { return nil }
            keys.append(IndexKey(column: name.lowercased(), descending: row["desc"], collation: (row["coll"] as String? ?? "BINARY").uppercased()))
        }
        return keys.isEmpty ? nil : keys
    }

    /// The keys a platform index of ``platformIndexes`` would have on this table.
    static func wantedKeys(table: String, columns: String, _ db: Database) throws -> [IndexKey] {
        let create = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table]).flatMap(
            CreateTableSQL.init)
        return columns.split(separator: ",").map { part in
            let words = part.split(separator: " ").map(String.init)
            return IndexKey(
                column: words[0].lowercased(), descending: words.count > 1 && words[1].uppercased() == "DESC",
                collation: create?.collation(of: words[0]) ?? "BINARY")
        }
    }

    /// Makes every platform index of ``platformIndexes`` exist once: where another index has the
    /// same table, key columns, order and collation (not partial, not on an expression; unique or
    /// not), that one is reused and the journey's own copy is dropped or never created. An index
    /// of the platform that holds the journey's name with other keys is left alone, and the
    /// journey's is created as `journey_<name>`.
    /// An index on a column the platform's table lacks is skipped and noted (``skipsIndex(_:_:log:)``).
    static func reuseEquivalentIndexes(_ db: Database, log: MigrationLog) throws {
        for wanted in platformIndexes where try db.tableExists(wanted.table) {
            if try skipsIndex(wanted, db, log: log) { continue }
            let keys = try wantedKeys(table: wanted.table, columns: wanted.columns, db)
            var serving: [String] = []  // the indexes on the table with exactly these keys
            for name in try String.fetchAll(db, sql: "SELECT name FROM pragma_index_list(?) WHERE partial = 0 ORDER BY name", arguments: [wanted.table])
            where try plainKeys(of: name, db) == keys {
                serving.append(name)
            }
            let isOurs = { (name: String) in name.caseInsensitiveCompare(wanted.name) == .orderedSame }
            if let existing = serving.first(where: { !isOurs($0) }) {
                if serving.contains(where: isOurs) { try db.execute(sql: "DROP INDEX \(wanted.name.quotedDatabaseIdentifier)") }
                log.reused(.init(wanted: wanted.name, existing: existing, keys: "\(wanted.table)(\(wanted.columns))"))
            } else if !serving.contains(where: isOurs) {
                let taken = try Bool.fetchOne(db, sql: "SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", arguments: [wanted.name]) ?? false
                let name = taken ? "journey_" + wanted.name : wanted.name
                try db.execute(sql: "CREATE INDEX IF NOT EXISTS \(name.quotedDatabaseIdentifier) ON \(wanted.table)(\(wanted.columns))")
            }
        }
    }

    /// Whether `wanted` cannot be made because its table lacks a key column (a platform without
    /// `posts.visibility`); if so, notes it for the report (``MigrationReport/indexesSkipped``).
    static func skipsIndex(_ wanted: (name: String, table: String, columns: String), _ db: Database, log: MigrationLog) throws -> Bool {
        let present = Set(try String.fetchAll(db, sql: "SELECT lower(name) FROM pragma_table_info(?)", arguments: [wanted.table]))
        let missing = try wantedKeys(table: wanted.table, columns: wanted.columns, db).map(\.column).filter { !present.contains($0) }
        guard !missing.isEmpty else { return false }
        log.skipped(.init(name: wanted.name, keys: "\(wanted.table)(\(wanted.columns))", missing: missing.map { "\(wanted.table).\($0)" }))
        return true
    }
}
