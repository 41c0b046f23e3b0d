#!/usr/bin/env bash
# End-to-end tests of the real-time API with the official clients: the JS socket.io-client
# (npm, pinned in tests/e2e/package-lock.json) and python-socketio (PyPI, pinned in
# tests/e2e/python/requirements.txt), installed into ignored folders when missing.
#
# Starts the server binary on a free port with a fresh database: SQLite by default, or
# PostgreSQL when E2E_DATABASE_URL is set (a schema of its own), with Redis when
# E2E_REDIS_URL is set (a key prefix of its own). Stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E=tests/e2e

if [ ! -d "$E2E/node_modules/socket.io-client" ]; then
    echo "== installing the JS client (npm ci)"
    (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -x "$E2E/.venv/bin/python" ] || ! "$E2E/.venv/bin/python" -c "import socketio, requests, websocket" 2>/dev/null; then
    echo "== installing the Python client (pip)"
    python3 -m venv "$E2E/.venv"
    "$E2E/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$E2E/python/requirements.txt"
fi

cargo build --locked --quiet --bin chai-tapri
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
name="e2e_$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
database="sqlite://$work/e2e.db"
if [ -n "${E2E_DATABASE_URL:-}" ]; then
    case "$E2E_DATABASE_URL" in *\?*) sep='&' ;; *) sep='?' ;; esac
    database="${E2E_DATABASE_URL}${sep}schema=t_${name#e2e_}"
fi
server_env=(
    "PORT=$port" "HOST=127.0.0.1" "DATABASE_URL=$database" "LOG_DIR=$work/logs" "LOG_LEVEL=warn"
    "JWT_SECRET=e2e-secret-e2e-secret-e2e-secret-e2e" "BCRYPT_COST=4" "RATE_LIMIT_ENABLED=false"
)
if [ -n "${E2E_REDIS_URL:-}" ]; then
    server_env+=("REDIS_URL=$E2E_REDIS_URL" "REDIS_PREFIX=chai:test:$name:")
fi
(cd "$work" && exec env -i "${server_env[@]}" "$OLDPWD/target/debug/chai-tapri" >"$work/server.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
export SERVER_URL="http://127.0.0.1:$port"

status=0
echo "== e2e: JavaScript socket.io-client against $SERVER_URL"
(cd "$E2E" && node --test js/) || status=1
echo "== e2e: python-socketio against $SERVER_URL"
"$E2E/.venv/bin/python" "$E2E/python/test_realtime.py" || status=1
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    tail -n 50 "$work/server.log" || true
fi
exit "$status"
