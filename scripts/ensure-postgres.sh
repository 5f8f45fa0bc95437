#!/usr/bin/env bash
# Make sure the local Postgres the tests use (127.0.0.1:5432, user postgres) is running.
#
#   running              -> says so, exit 0
#   installed, stopped   -> starts the cluster(s) with pg_ctlcluster, waits up to 30 s
#   not installed        -> says how to install it; exit 1 when CI=true (the Postgres tests would
#                           fail there), else exit 0 with a warning that they will be skipped
#
# PGHOST/PGPORT override the address (default 127.0.0.1:5432).
set -euo pipefail

HOST="${PGHOST:-127.0.0.1}"
PORT="${PGPORT:-5432}"
WAIT_SECONDS=30

in_ci() {
    case "${CI:-}" in
        1 | true | TRUE | True | yes) return 0 ;;
        *) return 1 ;;
    esac
}

# Exit for "Postgres cannot be had": a failure under CI, a warning elsewhere.
give_up() {
    echo "postgres: $1" >&2
    if in_ci; then
        echo "postgres: CI=true, so this is an error: the tests that need Postgres would fail." >&2
        exit 1
    fi
    echo "postgres: WARNING: tests that need Postgres will be skipped (they fail under CI=true)." >&2
    exit 0
}

is_ready() {
    pg_isready -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1
}

# Login check as the tests do it (trust auth on loopback); a warning only, the tests say the rest.
check_login() {
    if command -v psql >/dev/null 2>&1 &&
        ! psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        echo "postgres: WARNING: the server answers but 'psql -h $HOST -p $PORT -U postgres' cannot log in;" \
            "tests use AUTOMATION_TEST_PG_URL (default postgresql+psycopg2://postgres@$HOST:$PORT/postgres)." >&2
    fi
}

if command -v pg_isready >/dev/null 2>&1 && is_ready; then
    echo "postgres: running on $HOST:$PORT"
    check_login
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ] ||
    [ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]; then
    give_up "PostgreSQL is not installed (no pg_ctlcluster / no cluster under /etc/postgresql).
postgres: install it with:  sudo apt-get update && sudo apt-get install -y postgresql
postgres: (on Debian/Ubuntu this creates and starts cluster 'main' on port 5432; the tests connect as
postgres: user 'postgres' over 127.0.0.1, so allow trust or set AUTOMATION_TEST_PG_URL with a password)"
fi

if ! command -v pg_isready >/dev/null 2>&1; then
    give_up "pg_isready is missing (package postgresql-client): cannot tell whether Postgres is up."
fi

echo "postgres: not answering on $HOST:$PORT; starting it"
for cluster_dir in /etc/postgresql/*/*/; do
    [ -f "$cluster_dir/postgresql.conf" ] || continue
    cluster="$(basename "$cluster_dir")"
    version="$(basename "$(dirname "$cluster_dir")")"
    echo "postgres: pg_ctlcluster --skip-systemctl-redirect $version $cluster start"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>&1 | sed 's/^/postgres:   /' || true
done

start=$SECONDS
while ! is_ready; do
    if ((SECONDS - start >= WAIT_SECONDS)); then
        give_up "still not accepting connections on $HOST:$PORT after ${WAIT_SECONDS}s (see /var/log/postgresql/)."
    fi
    sleep 1
done
echo "postgres: running on $HOST:$PORT (started in $((SECONDS - start))s)"
check_login
