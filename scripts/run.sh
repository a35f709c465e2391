#!/bin/sh
# make run: renders conf.examples/quickstart.conf into build/run (the port,
# the mock's socket, this system's DNS resolver) and runs nginx in the
# foreground with the module built in build/.
#
#   scripts/run.sh [port]

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-8080}
nginx=${NGINX:-/usr/sbin/nginx}
prefix=$top/build/run

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/modules"

ln -sf "$top/build/ngx_http_llm_module.so" "$prefix/modules/"
ln -sf /usr/lib/nginx/modules/ngx_http_js_module.so "$prefix/modules/"
cp "$top/conf.examples/llm_proxy_params" "$prefix/conf/"
rm -rf "$prefix/conf/mock"
cp -r "$top/conf.examples/mock" "$prefix/conf/mock"

resolver=$(awk '$1 == "nameserver" { printf "%s ", $2 }' /etc/resolv.conf \
           2>/dev/null | sed 's/ $//')
resolver=${resolver:-"1.1.1.1 8.8.8.8"}

sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/" \
    -e "s#/tmp/ngx-llm-mock.sock#$prefix/mock.sock#g" \
    -e "s/resolver 1\.1\.1\.1 8\.8\.8\.8/resolver $resolver/" \
    -e "s#^js_path .*#js_path $prefix/conf/mock;#" \
    -e "s#js_path   mock;#js_path   $prefix/conf/mock;#" \
    "$top/conf.examples/quickstart.conf" > "$prefix/conf/nginx.conf"

if [ "$(id -u)" = 0 ]; then
    # workers run as root only here, to read the build tree
    sed -i '1i user root;' "$prefix/conf/nginx.conf"
fi

rm -f "$prefix/mock.sock"

"$nginx" -t -q -p "$prefix" -c "$prefix/conf/nginx.conf"

cat <<MSG

ngx_http_llm_module gateway on http://127.0.0.1:$port (Ctrl-C stops it)

  curl http://127.0.0.1:$port/v1/models
  curl http://127.0.0.1:$port/v1/chat/completions \\
       -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'

configuration: $prefix/conf/nginx.conf    logs: $prefix/logs/

MSG

exec "$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf"
