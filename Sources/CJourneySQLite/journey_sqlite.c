#include "journey_sqlite.h"

#include <sqlite3.h>

int journey_sqlite_config_memstatus(int enabled) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, enabled);
}
