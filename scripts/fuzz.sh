#!/usr/bin/env bash
# Schemathesis (PyPI, pinned in tests/fuzz/requirements.txt, installed into the ignored
# tests/fuzz/.venv when missing) against the server's own OpenAPI document: every operation,
# every check (tests/fuzz/schemathesis.toml says where and why one is off), signed in as a
# fresh user. The server runs on SQLite in a temporary folder and is stopped at the end.
#
#   scripts/fuzz.sh                     what the test command runs: a fixed seed; the
#                                       examples, coverage and fuzzing phases
#   FUZZ_SEED=random scripts/fuzz.sh    a new seed each run (printed at the end)
#   FUZZ_PHASES=examples,coverage,fuzzing,stateful scripts/fuzz.sh
#                                       chains of calls too (their data depends on the
#                                       server's answers, so a seed does not repeat a run)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ=tests/fuzz

if [ ! -x "$FUZZ/.venv/bin/schemathesis" ]; then
    echo "== installing schemathesis (pip)"
    python3 -m venv "$FUZZ/.venv"
    "$FUZZ/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$FUZZ/requirements.txt"
fi

cargo build --locked --quiet --bin chai-tapri
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_env=(
    "PORT=$port" "HOST=127.0.0.1" "DATABASE_URL=sqlite://$work/fuzz.db" "LOG_DIR=$work/logs"
    "LOG_LEVEL=warn" "JWT_SECRET=fuzz-secret-fuzz-secret-fuzz-secret-fuzz" "BCRYPT_COST=4"
    "RATE_LIMIT_ENABLED=false"
)
(cd "$work" && exec env -i "${server_env[@]}" "$OLDPWD/target/debug/chai-tapri" >"$work/server.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$base/health')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
token="$(python3 - "$base" <<'PY'
import json, sys, urllib.request
body = json.dumps({"username": "fuzzer", "email": "fuzzer@example.com",
                   "password": "fuzz-password"}).encode()
req = urllib.request.Request(sys.argv[1] + "/api/auth/signup", data=body,
                             headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["data"]["token"])
PY
)"
seed=()
if [ "${FUZZ_SEED:-1}" != "random" ]; then
    seed=(--seed "${FUZZ_SEED:-1}")
fi
echo "== schemathesis against $base/api/openapi.json"
status=0
"$FUZZ/.venv/bin/schemathesis" --config-file "$FUZZ/schemathesis.toml" run \
    "$base/api/openapi.json" -H "Authorization: Bearer $token" \
    --phases "${FUZZ_PHASES:-examples,coverage,fuzzing}" \
    --workers 1 --no-color "${seed[@]}" || status=$?
if grep -q '"status":500\|status=500' "$work/server.log" 2>/dev/null; then
    echo "the server logged a 500" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    tail -n 50 "$work/server.log" || true
fi
exit "$status"
