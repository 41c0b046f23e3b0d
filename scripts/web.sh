#!/usr/bin/env bash
# The web client (web/): rebuilt from source and compared with the committed build in
# web/dist (which the binary embeds), its JavaScript's gzipped size checked against 150 KB,
# then tested in a real Chromium — Debian's `chromium`, driven by playwright-core — against
# the debug server. Installs what is missing: the npm packages (pinned in
# web/package-lock.json) into web/node_modules, and `chromium` with apt-get. With
# SCREENSHOTS_DIR set (an absolute path) the browser test also saves the main screens there
# (docs/screenshots holds the README's).
set -euo pipefail
cd "$(dirname "$0")/.."
WEB=web
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$WEB/node_modules/.bin/vite" ] || [ ! -d "$WEB/node_modules/playwright-core" ]; then
    echo "== installing the web client's toolchain (npm ci)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Chromium, and a colour emoji font for the reactions in the screenshots.
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/noto ] || missing+=(fonts-noto-color-emoji)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif [ ! -x "$CHROMIUM" ]; then
        echo "!! the browser tests need $CHROMIUM (apt-get install chromium, as root)" >&2
        exit 1
    fi
fi

echo "== web client: type check, build, and compare with web/dist"
built="$(mktemp -d)"
trap 'rm -rf "$built"' EXIT
(cd "$WEB" && node_modules/.bin/tsc --noEmit && node_modules/.bin/vite build --logLevel warn --outDir "$built" --emptyOutDir)
if ! diff -r "$built" "$WEB/dist"; then
    echo "!! web/dist differs from a build of web/src: run 'cd web && npm run build' and commit web/dist" >&2
    exit 1
fi
js_gzip=0
for f in "$WEB"/dist/assets/*.js; do
    js_gzip=$((js_gzip + $(gzip -9 -c "$f" | wc -c)))
done
echo "   shipped JavaScript: $js_gzip bytes gzipped (limit 153600)"
if [ "$js_gzip" -gt 153600 ]; then
    echo "!! the web client's JavaScript is over 150 KB gzipped" >&2
    exit 1
fi

echo "== web client in Chromium (playwright-core)"
cargo build --locked --quiet --bin chai-tapri
(cd "$WEB" && CHAI_TAPRI_BIN="$PWD/../target/debug/chai-tapri" CHROMIUM="$CHROMIUM" node --test tests/)
