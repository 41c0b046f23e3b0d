#!/usr/bin/env bash
# Runs one scenario of the load tool against a fresh server and prints the tool's result line.
#
#   scripts/bench.sh <fanout|connect|http|history> [tool options]
#
# The server is the release binary on a free port with a temporary SQLite database,
# BCRYPT_COST=4, rate limits and the per-address connection cap off; it is stopped (and
# its data removed) afterwards.
#   BENCH_PIN=1            server on core 0, load tool on core 1 with one worker thread (taskset)
#   BENCH_DATABASE_URL=…   PostgreSQL instead (a schema of its own, dropped at the end)
#   BENCH_REDIS_URL=…      Redis for presence and the Socket.IO adapter (a key prefix of its own)
#   SERVER_ENV="K=V …"     more server settings, e.g. SERVER_ENV="PRESENCE_BROADCAST=shared"
#   BENCH_SERVER=path      another server binary (an older build, for a before/after pair)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --locked --quiet -p chai-tapri -p chai-tapri-bench
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
name="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
secret="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
database="sqlite://$work/bench.db"
schema=""
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    case "$BENCH_DATABASE_URL" in *\?*) sep='&' ;; *) sep='?' ;; esac
    schema="bench_$name"
    database="${BENCH_DATABASE_URL}${sep}schema=$schema"
fi
server_env=(
    "PORT=$port" "HOST=127.0.0.1" "DATABASE_URL=$database" "LOG_DIR=$work/logs" "LOG_LEVEL=warn"
    "JWT_SECRET=$secret" "BCRYPT_COST=4" "RATE_LIMIT_ENABLED=false"
    # Every socket and connection of the tool comes from 127.0.0.1.
    "MAX_CONNECTIONS_PER_IP=1000000"
)
if [ -n "${BENCH_REDIS_URL:-}" ]; then
    server_env+=("REDIS_URL=$BENCH_REDIS_URL" "REDIS_PREFIX=chai:bench:$name:")
fi
read -ra extra <<<"${SERVER_ENV:-}"
server_env+=("${extra[@]}")

server_cmd=("${BENCH_SERVER:-$PWD/target/release/chai-tapri}")
tool_cmd=("$PWD/target/release/chai-tapri-bench")
if [ "${BENCH_PIN:-}" = 1 ]; then
    server_cmd=("$(command -v taskset)" -c 0 "${server_cmd[@]}")
    tool_cmd=(taskset -c 1 "${tool_cmd[@]}")
    case " $* " in *" --threads"*) ;; *) set -- "$@" --threads 1 ;; esac
fi

(cd "$work" && exec env -i "${server_env[@]}" "${server_cmd[@]}" >"$work/server.log" 2>&1) &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    if [ -s "$work/server.log" ]; then
        echo "--- server log (last 20 lines)" >&2
        tail -n 20 "$work/server.log" >&2
    fi
    if [ -n "$schema" ] && command -v psql >/dev/null; then
        psql -q "$BENCH_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
echo "server pid $server on 127.0.0.1:$port (${schema:+PostgreSQL schema $schema, }${BENCH_REDIS_URL:+Redis, }pinned: ${BENCH_PIN:-0})" >&2
"${tool_cmd[@]}" "$@" --url "http://127.0.0.1:$port" --server-pid "$server"
