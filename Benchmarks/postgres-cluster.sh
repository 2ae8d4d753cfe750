#!/usr/bin/env bash
# The throwaway PostgreSQL cluster of the benchmark's PostgreSQL section (BENCHMARKS.md).
#
#   Benchmarks/postgres-cluster.sh start   # prints postgresql://postgres@127.0.0.1:PORT/journey_bench
#   Benchmarks/postgres-cluster.sh stop
#
# Made by scripts/postgres-test-cluster.sh (initdb as the `postgres` user, trust on 127.0.0.1), but
# started with durable settings: the test cluster runs with fsync=off, which would hide the cost of
# every commit. Here fsync and synchronous_commit stay on (the defaults); what is tuned is said:
# shared_buffers 2GB (a quarter of what a small dedicated server would give it), max_wal_size 8GB
# and checkpoint_timeout 30min (no forced checkpoint in the middle of a load or a batch).
# $JOURNEY_PG_DIR (default /tmp/pgb), $JOURNEY_PG_PORT (default 5470), $JOURNEY_PG_BIN as the test script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export JOURNEY_PG_DIR=${JOURNEY_PG_DIR:-/tmp/pgb} JOURNEY_PG_PORT=${JOURNEY_PG_PORT:-5470}
bin=${JOURNEY_PG_BIN:-/usr/lib/postgresql/15/bin}
data="$JOURNEY_PG_DIR/data"
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
case "${1:-}" in
start)
    if [ ! -f "$data/PG_VERSION" ]; then
        bash "$here/../scripts/postgres-test-cluster.sh" start >/dev/null
        bash "$here/../scripts/postgres-test-cluster.sh" stop
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$data" -l "$JOURNEY_PG_DIR/server.log" -w -t 60 start -o "-p $JOURNEY_PG_PORT -k $JOURNEY_PG_DIR \
            -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on -c synchronous_commit=on \
            -c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=30min" >/dev/null
    fi
    if [ -z "$(as_postgres "$bin/psql" -h "$JOURNEY_PG_DIR" -p "$JOURNEY_PG_PORT" -U postgres -At -c "SELECT 1 FROM pg_database WHERE datname = 'journey_bench'" postgres)" ]; then
        as_postgres "$bin/createdb" -h "$JOURNEY_PG_DIR" -p "$JOURNEY_PG_PORT" -U postgres journey_bench
    fi
    echo "postgresql://postgres@127.0.0.1:$JOURNEY_PG_PORT/journey_bench"
    ;;
stop)
    as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 64
    ;;
esac
