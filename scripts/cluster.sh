#!/usr/bin/env bash
# The cluster test: nginx (deploy/nginx, rendered for free ports) in front of three nodes on
# one PostgreSQL and one Redis; 100 clients of the official JS client chat through it while
# one node is killed with SIGKILL and started again, then Redis and PostgreSQL are restarted
# under it (tests/e2e/cluster/cluster.mjs says what is shown). Needs PostgreSQL (TEST_PG_URL
# as scripts/test.sh) and redis-server, of which it starts its own on a free port; installs
# nginx from Debian's packages and the JS client from npm when missing. Restarting
# PostgreSQL needs root and pg_ctlcluster with the cluster on 127.0.0.1:5432: elsewhere that
# step is skipped loudly (under CI=true it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
source scripts/nginx.sh

PG_URL="${TEST_PG_URL:-postgres://127.0.0.1:5432/test}"

skip_or_fail() { # what why
    if [ "${CI:-}" = "true" ]; then
        echo "FAILED: CI=true needs $1, and $2" >&2
        exit 1
    fi
    echo "!! SKIPPED $1: $2."
}
command -v redis-server >/dev/null || { skip_or_fail "the cluster test" "redis-server is not installed"; exit 0; }

pg_ctl=""
rest="${PG_URL#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"
if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && [ "$rest" = "127.0.0.1:5432" ]; then
    read -r pg_version pg_cluster < <(pg_lsclusters --no-header | awk '$3 == 5432 { print $1, $2; exit }')
    if [ -n "${pg_version:-}" ]; then
        pg_ctl="pg_ctlcluster --skip-systemctl-redirect $pg_version $pg_cluster"
    fi
fi
[ -n "$pg_ctl" ] || skip_or_fail "the PostgreSQL restart of the cluster test" \
    "it needs root, pg_ctlcluster and the cluster on 127.0.0.1:5432"

ensure_debs nginx nginx openssl openssl
if [ ! -d tests/e2e/node_modules/socket.io-client ]; then
    echo "== installing the JS client (npm ci)"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build --locked --quiet --bin chai-tapri

work="$(mktemp -d)"
name="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
cleanup() {
    [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    if command -v psql >/dev/null 2>&1; then
        psql "$PG_URL" -qAt -c "DROP SCHEMA IF EXISTS t_$name CASCADE" >/dev/null 2>&1 || true
    fi
    if [ "${KEEP_CLUSTER_LOGS:-}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ports=()
for _ in 1 2 3 4 5; do
    ports+=("$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')")
done
nginx_port=${ports[3]}
redis_port=${ports[4]}
REDIS="redis://127.0.0.1:$redis_port"
render_nginx "$work/nginx" "$nginx_port" - "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}"

case "$PG_URL" in *\?*) sep='&' ;; *) sep='?' ;; esac
secret="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
NODE_ENV="$(python3 - "$PG_URL$sep" "$name" "$REDIS" "$secret" "$work" <<'PY'
import json, sys
pg, name, redis, secret, work = sys.argv[1:]
print(json.dumps({
    "APP_ENV": "test", "HOST": "127.0.0.1",
    "DATABASE_URL": f"{pg}schema=t_{name}",
    "REDIS_URL": redis, "REDIS_PREFIX": f"chai:test:{name}:",
    "JWT_SECRET": secret, "BCRYPT_COST": "4",
    # nginx is the only peer: it is trusted to say who the client is.
    "TRUSTED_PROXIES": "127.0.0.1",
    "RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_MESSAGES": "40/1m",
    "RATE_LIMIT_API": "100000/15m", "RATE_LIMIT_AUTH": "100000/15m",
    # A dead node's users are announced offline within this and a third of it.
    "PRESENCE_NODE_TTL": "6s",
    "STORAGE_URL": f"{work}/uploads", "LOG_FORMAT": "json", "SHUTDOWN_TIMEOUT": "5s",
}))
PY
)"
export NODE_ENV WORK="$work" NGINX_DIR="$work/nginx" NGINX_URL="http://127.0.0.1:$nginx_port"
export NODE_PORTS="${ports[0]},${ports[1]},${ports[2]}" CHAI_BIN="$PWD/target/debug/chai-tapri"
export REDIS_PORT="$redis_port" PG_CTL="$pg_ctl"

echo "== cluster: nginx on $NGINX_URL in front of 3 nodes ($NODE_PORTS), PostgreSQL + Redis (:$redis_port)"
status=0
(cd tests/e2e && node cluster/cluster.mjs) || status=$?
if [ "$status" -ne 0 ]; then
    for f in "$work"/node*.log "$work/nginx.log" "$work/nginx/logs/error.log"; do
        [ -f "$f" ] || continue
        echo "--- $f (last 30 lines)"
        tail -n 30 "$f"
    done
fi
exit "$status"
