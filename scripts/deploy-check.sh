#!/usr/bin/env bash
# Checks the shipped deployment files: the systemd unit with `systemd-analyze verify` (where
# systemd is installed; a loud SKIPPED line otherwise) and the nginx configuration, HTTP and
# HTTPS, with `nginx -t` (nginx is installed from Debian's packages when missing). Run by
# scripts/test.sh; the logrotate example is exercised by the test suite itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
source scripts/nginx.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== systemd-analyze verify deploy/systemd/chai-tapri.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit names the installed path; verify checks that the command exists, so the
    # copy points at this build's binary instead. Nothing else is changed.
    cargo build --locked --quiet --bin chai-tapri
    sed "s#^ExecStart=/usr/local/bin/chai-tapri#ExecStart=$PWD/target/debug/chai-tapri#" \
        deploy/systemd/chai-tapri.service >"$work/chai-tapri.service"
    # Warnings (an unknown key, a bad value) do not fail verify: any output does here.
    if ! out="$(systemd-analyze verify "$work/chai-tapri.service" 2>&1)" || [ -n "$out" ]; then
        echo "FAILED: systemd-analyze verify: $out" >&2
        exit 1
    fi
else
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! SKIPPED systemd-analyze verify: systemd is not installed on this machine."
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi

echo "== nginx -t deploy/nginx (HTTP and HTTPS)"
ensure_debs nginx nginx openssl openssl
render_nginx "$work/nginx" 18080 18443 127.0.0.1:3001 127.0.0.1:3002 127.0.0.1:3003
nginx -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf"
