#ifndef JOURNEY_SQLITE_H
#define JOURNEY_SQLITE_H

/// Sets SQLite's process-wide `SQLITE_CONFIG_MEMSTATUS` (https://sqlite.org/c3ref/c_config_covering_index_scan.html):
/// nonzero `enabled` keeps the memory statistics, zero turns them off. `sqlite3_config` is C-variadic,
/// which Swift cannot call; this is the one call Journey needs from it.
///
/// Returns SQLite's result code: `SQLITE_OK` (0), or `SQLITE_MISUSE` (21) once SQLite is initialized
/// (after the process opened its first connection), when the setting can no longer change.
int journey_sqlite_config_memstatus(int enabled);

#endif
