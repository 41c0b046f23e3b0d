# Sourced by scripts/test.sh: Debian packages the tests drive (nginx, logrotate), installed
# when missing. Not a command of its own.

# ensure_debs <command> <package> [<command> <package> …]: installs each package whose
# command is not on PATH (apt-get; root). Services the packages bring are not started: the
# tests run their own instances on free ports.
ensure_debs() {
    local missing=()
    while [ $# -ge 2 ]; do
        command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2")
        shift 2
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "FAILED: ${missing[*]} missing, and installing them needs root and apt-get" >&2
        return 1
    fi
    echo "== installing ${missing[*]} (apt-get)"
    # policy-rc.d 101: "do not start services" while the packages install.
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    local status=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
    [ -n "$created" ] && rm -f "$policy"
    return "$status"
}
