# Sourced by scripts/e2e.sh and scripts/fuzz.sh: what both need to run a client against a
# fresh debug server. Not a command of its own.

# ensure_venv <dir> <requirements.txt> <what> <check command…>: a Python venv in <dir> (an
# ignored folder) with the pinned requirements, installed when the check fails.
ensure_venv() {
    local dir=$1 requirements=$2 what=$3
    shift 3
    if [ ! -x "$dir/bin/python" ] || ! "$@" >/dev/null 2>&1; then
        echo "== installing $what (pip)"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    fi
}

# start_test_server [VAR=value…]: builds and starts the server on a free port in a temporary
# folder ($work; SQLite there unless DATABASE_URL is given), stops it and removes the folder
# on exit, and waits for /health. Sets $work, $server (its pid) and $SERVER_URL.
start_test_server() {
    cargo build --locked --quiet --bin chai-tapri
    work="$(mktemp -d)"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # Later assignments win in `env`: the caller's override these defaults.
    local server_env=(
        "PORT=$port" "HOST=127.0.0.1" "DATABASE_URL=sqlite://$work/server.db"
        "LOG_DIR=$work/logs" "LOG_LEVEL=warn" "JWT_SECRET=test-secret-test-secret-test-secret-te"
        "BCRYPT_COST=4" "RATE_LIMIT_ENABLED=false" "$@"
    )
    (cd "$work" && exec env -i "${server_env[@]}" "$OLDPWD/target/debug/chai-tapri" >"$work/server.log" 2>&1) &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
    SERVER_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$SERVER_URL/health')" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
}
