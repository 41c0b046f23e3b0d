#!/usr/bin/env bash
# End-to-end tests of the real-time API with the official clients: the JS socket.io-client
# (npm, pinned in tests/e2e/package-lock.json) and python-socketio (PyPI, pinned in
# tests/e2e/python/requirements.txt), installed into ignored folders when missing.
#
# Starts the server binary on a free port with a fresh database: SQLite by default, or
# PostgreSQL when E2E_DATABASE_URL is set (a schema of its own), with Redis when
# E2E_REDIS_URL is set (a key prefix of its own), storing files in an S3-compatible server
# when E2E_S3_ENDPOINT is set (a bucket of its own). Stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E=tests/e2e
# shellcheck source=scripts/test-server.sh
source scripts/test-server.sh

if [ ! -d "$E2E/node_modules/socket.io-client" ]; then
    echo "== installing the JS client (npm ci)"
    (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
fi
ensure_venv "$E2E/.venv" "$E2E/python/requirements.txt" "the Python client" \
    "$E2E/.venv/bin/python" -c "import socketio, requests, websocket"

name="e2e_$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
extra=()
if [ -n "${E2E_DATABASE_URL:-}" ]; then
    case "$E2E_DATABASE_URL" in *\?*) sep='&' ;; *) sep='?' ;; esac
    extra+=("DATABASE_URL=${E2E_DATABASE_URL}${sep}schema=t_${name#e2e_}")
fi
if [ -n "${E2E_REDIS_URL:-}" ]; then
    extra+=("REDIS_URL=$E2E_REDIS_URL" "REDIS_PREFIX=chai:test:$name:")
fi
if [ -n "${E2E_S3_ENDPOINT:-}" ]; then
    # A bucket of its own (moto takes an unsigned create).
    bucket="${name//_/-}"
    python3 -c "import urllib.request as u; u.urlopen(u.Request('$E2E_S3_ENDPOINT/$bucket', method='PUT'))"
    extra+=("STORAGE_URL=s3://$bucket?endpoint=$E2E_S3_ENDPOINT&region=us-east-1"
        "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-chai-test}" "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-chai-test-secret}")
fi
start_test_server "${extra[@]}"
export SERVER_URL

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
