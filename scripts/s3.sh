# Sourced by scripts/test.sh: an S3-compatible server for the second pass (moto in server
# mode, pinned in tests/s3/requirements.txt, installed into tests/s3/.venv when missing).
# Not a command of its own.

# start_s3: starts moto on a free port of 127.0.0.1, waits until it answers, stops it on
# exit. Exports TEST_S3_ENDPOINT and the (dummy) credentials the server's S3 client signs with.
start_s3() {
    ensure_venv tests/s3/.venv tests/s3/requirements.txt "the S3-compatible test server (moto)" \
        tests/s3/.venv/bin/moto_server --help
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    s3_log="$(mktemp)"
    tests/s3/.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$s3_log" 2>&1 &
    s3_pid=$!
    trap 'kill "$s3_pid" 2>/dev/null || true; wait "$s3_pid" 2>/dev/null || true; rm -f "$s3_log"' EXIT
    export TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=chai-test AWS_SECRET_ACCESS_KEY=chai-test-secret AWS_REGION=us-east-1
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$TEST_S3_ENDPOINT/')" 2>/dev/null; then
            echo "== S3-compatible server (moto) at $TEST_S3_ENDPOINT"
            return 0
        fi
        sleep 0.1
    done
    echo "FAILED: moto did not answer at $TEST_S3_ENDPOINT" >&2
    cat "$s3_log" >&2
    return 1
}
