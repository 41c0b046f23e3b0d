#!/usr/bin/env bash
# The whole test suite: formatting, lints, the tests on SQLite without Redis, and the same
# tests again on PostgreSQL + Redis (127.0.0.1:5432 database `test`, 127.0.0.1:6379). Each
# pass ends with the end-to-end suites of the official Socket.IO clients (scripts/e2e.sh,
# which installs them with npm and pip into ignored folders when missing). The first pass also
# runs Schemathesis against the OpenAPI document (scripts/fuzz.sh, pip into an ignored folder)
# and the web client's checks and browser tests (scripts/web.sh: npm into web/node_modules,
# Debian's chromium with apt-get when missing).
# The second pass stores files in an S3-compatible server (moto, scripts/s3.sh, pip into an
# ignored folder); the first in a local directory. Before them, scripts/deploy-check.sh
# checks the deployment files (systemd unit, nginx configuration).
#
# With CI=true the PostgreSQL + Redis pass is mandatory; elsewhere it is skipped, loudly,
# when either service is not reachable. Override the addresses with TEST_PG_URL and
# TEST_REDIS (for example TEST_PG_URL=postgres://me@db.local:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${TEST_PG_URL:-postgres://127.0.0.1:5432/test}"
REDIS_URL_FOR_TESTS="${TEST_REDIS:-redis://127.0.0.1:6379}"

reachable() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

host_port() { # url -> "host port"
    local rest="${1#*://}"
    rest="${rest#*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    local host="${rest%%:*}" port="${rest##*:}"
    [ "$port" = "$rest" ] && port="$2"
    echo "$host $port"
}

# Tests that need PostgreSQL or Redis are #[ignore]d: pass 1 counts them as skipped, pass 2
# ("all") runs them.
run_tests() { # default|all
    if cargo nextest --version >/dev/null 2>&1; then
        # The storage fault tests run on their own (below), only where a tmpfs can be mounted.
        cargo nextest run --locked --workspace --no-fail-fast --run-ignored "$1" \
            -E 'not test(/^faults::/)'
    else
        local extra=()
        [ "$1" = all ] && extra=(-- --include-ignored --skip faults::)
        cargo test --locked --workspace --no-fail-fast "${extra[@]}"
    fi
}

# Runs, on their own, the #[ignore]d tests whose path starts with $1.
run_alone() { # test-path-prefix
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --locked --no-fail-fast --run-ignored only -E "test(/^$1/)"
    else
        cargo test --locked --test api "$1" -- --ignored
    fi
}

# A step this machine cannot run: fatal under CI=true, a loud SKIPPED line elsewhere.
cannot() { # what why
    if [ "${CI:-}" = "true" ]; then
        echo "FAILED: CI=true needs $1, and $2" >&2
        exit 1
    fi
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! SKIPPED $1: $2."
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

# The shipped systemd unit and nginx configuration; the log-rotation test drives the real
# logrotate (both installed from Debian's packages when missing).
scripts/deploy-check.sh
source scripts/packages.sh
ensure_debs logrotate logrotate

echo "== pass 1 of 2: SQLite, in-process presence (no Redis)"
TEST_DATABASE_URL="" TEST_REDIS_URL="" run_tests default

# Storage faults mount a small tmpfs under the database: they need root.
echo "== storage faults (a tmpfs under the SQLite database)"
mnt="$(mktemp -d)"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    umount "$mnt"
    TEST_DATABASE_URL="" TEST_REDIS_URL="" run_alone faults::a_full_disk
else
    cannot "the storage fault tests" "mounting a tmpfs needs root"
fi
rmdir "$mnt"
E2E_DATABASE_URL="" E2E_REDIS_URL="" scripts/e2e.sh
# The OpenAPI document, fuzzed by Schemathesis against a server on SQLite.
scripts/fuzz.sh
# The web client: its build checked against web/dist, then two people in Chromium.
scripts/web.sh

read -r pg_host pg_port <<<"$(host_port "$PG_URL" 5432)"
read -r redis_host redis_port <<<"$(host_port "$REDIS_URL_FOR_TESTS" 6379)"
if ! reachable "$pg_host" "$pg_port" || ! reachable "$redis_host" "$redis_port"; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAILED: PostgreSQL ($pg_host:$pg_port) or Redis ($redis_host:$redis_port) is not reachable, and CI=true requires the second pass" >&2
        exit 1
    fi
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! SKIPPED pass 2 of 2 (PostgreSQL + Redis): $pg_host:$pg_port or $redis_host:$redis_port is not reachable."
    echo "!! Start PostgreSQL (trust auth, database 'test') and Redis, or point TEST_PG_URL /"
    echo "!! TEST_REDIS at them, then run scripts/test.sh again."
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    exit 0
fi

# Each test makes its own schema (t_<uuid>) and Redis prefix (chai:test:<uuid>:); clear
# what earlier runs left behind.
if command -v psql >/dev/null 2>&1; then
    psql "$PG_URL" -qAt -v ON_ERROR_STOP=0 >/dev/null 2>&1 <<'SQL' || true
DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $$;
SQL
fi
if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$REDIS_URL_FOR_TESTS" --scan --pattern 'chai:test:*' 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL_FOR_TESTS" DEL >/dev/null 2>&1 || true
fi

# Files go to an S3-compatible server in this pass (a bucket per test).
# shellcheck source=scripts/test-server.sh
source scripts/test-server.sh
# shellcheck source=scripts/s3.sh
source scripts/s3.sh
start_s3

echo "== pass 2 of 2: PostgreSQL ($pg_host:$pg_port) + Redis ($redis_host:$redis_port) + S3 ($TEST_S3_ENDPOINT)"
TEST_DATABASE_URL="$PG_URL" TEST_REDIS_URL="$REDIS_URL_FOR_TESTS" run_tests all
E2E_DATABASE_URL="$PG_URL" E2E_REDIS_URL="$REDIS_URL_FOR_TESTS" E2E_S3_ENDPOINT="$TEST_S3_ENDPOINT" \
    scripts/e2e.sh
# The fault tests below bring their own storage.
unset TEST_S3_ENDPOINT

# Redis restarted under two nodes: a redis-server of the test's own, so the shared one stays up.
echo "== storage faults: Redis restarted under two nodes"
if command -v redis-server >/dev/null; then
    TEST_DATABASE_URL="" TEST_REDIS_URL="" run_alone faults::redis_
else
    cannot "the Redis fault test" "redis-server is not installed"
fi

# Last, alone, since it stops the PostgreSQL every other test uses: a server that outlives
# its database. It needs pg_ctlcluster (the cluster on port 5432) and the right to run it.
echo "== storage faults: PostgreSQL stopped and started under a running server"
if command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ] && [ "$pg_host:$pg_port" = "127.0.0.1:5432" ]; then
    TEST_DATABASE_URL="$PG_URL" TEST_REDIS_URL="" run_alone faults::pg_
else
    cannot "the PostgreSQL fault test" "it needs root, pg_ctlcluster and the cluster on 127.0.0.1:5432"
fi

# The cluster test: nginx (installed from Debian's packages when missing) in front of three
# nodes on PostgreSQL + Redis, one node killed with SIGKILL mid-chat (scripts/cluster.sh).
echo "== cluster: nginx + 3 nodes + PostgreSQL + Redis, a node killed mid-chat"
TEST_PG_URL="$PG_URL" TEST_REDIS="$REDIS_URL_FOR_TESTS" scripts/cluster.sh
