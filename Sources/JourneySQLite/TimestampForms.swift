import Foundation
import GRDB
import JourneyStorage

/// Which platform timestamp columns hold anything but canonical text, kept by triggers, so that the
/// metrics statements compare canonical data as text and pay for ``TimestampFunctions`` only where
/// another form was ever written (SPEC §8).
///
/// For canonical text (`YYYY-MM-DD HH:MM:SS[.SSS]`, a real UTC date and time) text order is time
/// order, so `created_at >= '2026-10-30 07:03:19'` is an index range that gives the same answer as
/// `journey_instant(created_at) >= 1793343799` for every row, and costs nothing per row. Any other form
/// needs the parser on every row (BENCHMARKS.md, "Timestamp forms", measured it at up to 1.5× the
/// batch's read side). `journey_timestamp_columns` holds, for each column the set-based metrics read,
/// how many non-canonical values were ever written; migration counts the existing ones once, and
/// triggers on insert and update add each new one. Both metrics statements carry both ways, each
/// guarded by the column's count through a `CROSS JOIN` on that table (one primary-key lookup, the
/// outer loop), so only one way runs. The count only grows (a deleted value is not subtracted): a
/// column that once held another form keeps the parser, which is right for every form.
///
/// The triggers use SQLite's built-in functions only, so every writer, in any process, fires them.
enum TimestampForms {
    /// The columns the set-based metrics compare with the window: `(table, column)`.
    static let watched: [(table: String, column: String)] = [("posts", "created_at"), ("events", "start_date")]

    /// True (never NULL) when `value` is canonical text that SQLite's own `strftime` writes back
    /// unchanged once normalized (`'+0 days'`): a real date and time (no February 30, no hour 24, no
    /// second 60), with no fraction or exactly three digits of it. Every such value reads as the same instant through ``Timestamp``, form `canonical`.
    static func isCanonical(_ value: String) -> String {
        """
        (typeof(\(value)) = 'text'
         AND (length(\(value)) = 19 OR (length(\(value)) = 23 AND substr(\(value), 20, 1) = '.' AND substr(\(value), 21) GLOB '[0-9][0-9][0-9]'))
         AND substr(\(value), 1, 19) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
         AND strftime('%Y-%m-%d %H:%M:%S', substr(\(value), 1, 19), '+0 days') IS substr(\(value), 1, 19))
        """
    }

    /// The table, the first count of each column, and the triggers that keep the counts.
    static var installSQL: String {
        var sql = """
            CREATE TABLE journey_timestamp_columns (
                table_name TEXT NOT NULL,
                column_name TEXT NOT NULL,
                noncanonical INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (table_name, column_name));

            """
        for (table, column) in watched {
            let counted = "UPDATE journey_timestamp_columns SET noncanonical = noncanonical + 1 WHERE table_name = '\(table)' AND column_name = '\(column)';"
            let odd = "NEW.\(column) IS NOT NULL AND NOT \(isCanonical("NEW.\(column)"))"
            sql += """
                INSERT INTO journey_timestamp_columns(table_name, column_name, noncanonical)
                SELECT '\(table)', '\(column)', COUNT(*) FROM \(table) WHERE \(column) IS NOT NULL AND NOT \(isCanonical(column));
                CREATE TRIGGER journey_\(table)_\(column)_form_insert AFTER INSERT ON \(table) WHEN \(odd) BEGIN
                    \(counted)
                END;
                CREATE TRIGGER journey_\(table)_\(column)_form_update AFTER UPDATE OF \(column) ON \(table) WHEN \(odd) BEGIN
                    \(counted)
                END;

                """
        }
        return sql
    }
}
