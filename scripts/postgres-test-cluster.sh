#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the JourneyPostgres tests (SPEC §10).
#
#   scripts/postgres-test-cluster.sh start   # prints postgresql://postgres@127.0.0.1:PORT/journey_test
#   scripts/postgres-test-cluster.sh stop
#
# Both are idempotent: `start` on a running cluster only prints its URL (and creates the database if
# it is missing); `stop` on a stopped one does nothing. The cluster lives in $JOURNEY_PG_DIR
# (default /tmp/journey-pg-test), listens on 127.0.0.1:$JOURNEY_PG_PORT (default 54329) and on a
# socket in the same folder, trusts every local connection, and is owned by the `postgres` user. It
# allows 400 connections: the suites run in parallel, each test with a database and pools of its own.
# Needs Debian's postgresql-15 (CI: apt-get install postgresql-15). Typical use:
#
#   export JOURNEY_TEST_POSTGRES_URL=$(scripts/postgres-test-cluster.sh start)
#   swift test --filter JourneyPostgresTests
#   scripts/postgres-test-cluster.sh stop
set -euo pipefail

dir=${JOURNEY_PG_DIR:-/tmp/journey-pg-test}
port=${JOURNEY_PG_PORT:-54329}
bin=${JOURNEY_PG_BIN:-/usr/lib/postgresql/15/bin}
database=journey_test
data="$dir/data"

# Runs a command as the postgres user (CI and developers run as root; initdb refuses root).
as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        "$@"
    else
        runuser -u postgres -- "$@"
    fi
}

running() {
    [ -f "$data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

case "${1:-}" in
start)
    if [ ! -x "$bin/initdb" ]; then
        echo "PostgreSQL 15 is not installed at $bin (apt-get install postgresql-15)" >&2
        exit 69
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$dir"
        chown postgres: "$dir" 2>/dev/null || true
        as_postgres "$bin/initdb" -D "$data" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if ! running; then
        as_postgres "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" >/dev/null ||
            { cat "$dir/server.log" >&2; exit 1; }
    fi
    if [ -z "$(as_postgres "$bin/psql" -h "$dir" -p "$port" -U postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$database'" postgres)" ]; then
        as_postgres "$bin/createdb" -h "$dir" -p "$port" -U postgres "$database"
    fi
    echo "postgresql://postgres@127.0.0.1:$port/$database"
    ;;
stop)
    if running; then
        as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 64
    ;;
esac
