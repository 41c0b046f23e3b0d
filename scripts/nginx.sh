# Sourced: renders the shipped nginx configuration (deploy/nginx) for a test instance. Not a
# command of its own.

# render_nginx <dir> <http-port> <https-port|-> <node host:port>...
# Writes <dir>/nginx.conf: the shipped files with only what a machine decides changed — the
# ports, the nodes of the upstream, the snippet's path, and (for HTTPS) a fresh self-signed
# certificate — plus an unprivileged main block (pid, logs and temp files in <dir>).
render_nginx() {
    local dir=$1 http=$2 https=$3
    shift 3
    local deploy
    deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")/../deploy/nginx" && pwd)"
    mkdir -p "$dir/conf.d" "$dir/snippets" "$dir/tls" "$dir/tmp" "$dir/logs"
    cp "$deploy/chai-tapri-locations.conf" "$dir/snippets/"
    local servers="" node
    for node in "$@"; do
        servers+="    server $node max_fails=2 fail_timeout=10s;\n"
    done
    python3 - "$deploy/chai-tapri.conf" "$dir/conf.d/chai-tapri.conf" "$http" "$dir" "$servers" <<'PY'
import re, sys
src, dst, port, d, servers = sys.argv[1:]
s = open(src).read()
lines = [l for l in s.split("\n") if not re.match(r"\s*server 127\.0\.0\.1:\d+ ", l)]
s = "\n".join(lines)
s = s.replace("    hash $chai_route consistent;\n", "    hash $chai_route consistent;\n" + servers.replace("\\n", "\n"), 1)
s = s.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;\n", "")
s = s.replace("/etc/nginx/snippets/", f"{d}/snippets/")
open(dst, "w").write(s)
PY
    if [ "$https" != - ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
            -keyout "$dir/tls/chai-tapri.key" -out "$dir/tls/chai-tapri.crt" >/dev/null 2>&1
        sed -e "s#listen 443 ssl http2;#listen 127.0.0.1:$https ssl http2;#" \
            -e '/listen \[::\]:443/d' \
            -e "s#/etc/nginx/tls/#$dir/tls/#g" \
            -e "s#/etc/nginx/snippets/#$dir/snippets/#" \
            "$deploy/chai-tapri-tls.conf" >"$dir/conf.d/chai-tapri-tls.conf"
    fi
    cat >"$dir/nginx.conf" <<CONF
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
worker_processes 1;
events { worker_connections 4096; }
http {
    # Which node answered what (the cluster test reads it).
    log_format upstream '\$msec \$upstream_addr \$status \$request_method \$uri';
    access_log $dir/logs/upstream.log upstream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/conf.d/*.conf;
}
CONF
}
