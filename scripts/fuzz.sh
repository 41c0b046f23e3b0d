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
# shellcheck source=scripts/test-server.sh
source scripts/test-server.sh

ensure_venv "$FUZZ/.venv" "$FUZZ/requirements.txt" "schemathesis" \
    "$FUZZ/.venv/bin/schemathesis" --version

# The fuzzing user is a server admin, so the whole audit log is read too.
start_test_server "ADMIN_USERNAMES=fuzzer"
base="$SERVER_URL"
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
