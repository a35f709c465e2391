#!/bin/sh
# make run: renders an example of conf.examples/ (quickstart by default)
# into build/run/<example> (its ports, the mock's socket, this system's
# DNS resolver) and runs nginx in the foreground with the module built in
# build/.
#
#   scripts/run.sh [port [example]]
#
# The examples listen on 127.0.0.1:8080 and run their mock providers on
# 127.0.0.1:8089 (or a unix socket): they become the given port and the
# port + 9 (MOCK_PORT to choose it). RUN_PREFIX replaces build/run/<example>,
# LLM_MODULE build/ngx_http_llm_module.so.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-8080}
example=${2:-quickstart}
mock_port=${MOCK_PORT:-$((port + 9))}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# nginx reads $NGINX as sockets to inherit: it must not be set
unset NGINX
prefix=${RUN_PREFIX:-$top/build/run/$example}
conf=$top/conf.examples/$example.conf

if [ ! -f "$conf" ]; then
    echo "run.sh: no example $conf; there are:" \
         $(cd "$top/conf.examples" && ls ./*.conf | sed 's#^\./##; s#\.conf$##')
    exit 2
fi

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/modules"

ln -sf "${LLM_MODULE:-$top/build/ngx_http_llm_module.so}" \
       "$prefix/modules/ngx_http_llm_module.so"
ln -sf /usr/lib/nginx/modules/ngx_http_js_module.so "$prefix/modules/"
cp "$top/conf.examples/llm_proxy_params" "$top/conf.examples/llm_log_format" \
   "$prefix/conf/"
rm -rf "$prefix/conf/mock"
cp -r "$top/conf.examples/mock" "$prefix/conf/mock"

resolver=$(awk '$1 == "nameserver" { printf "%s ", $2 }' /etc/resolv.conf \
           2>/dev/null | sed 's/ $//')
resolver=${resolver:-"1.1.1.1 8.8.8.8"}

sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" \
    -e "s/127\.0\.0\.1:8089/127.0.0.1:$mock_port/g" \
    -e "s#/tmp/ngx-llm-mock.sock#$prefix/mock.sock#g" \
    -e "s#set \$mock_state_dir /tmp;#set \$mock_state_dir $prefix;#" \
    -e "s/resolver 1\.1\.1\.1 8\.8\.8\.8/resolver $resolver/" \
    -e "s#js_path   mock;#js_path   $prefix/conf/mock;#" \
    "$conf" > "$prefix/conf/nginx.conf"

if [ "$(id -u)" = 0 ]; then
    # workers run as root only here, to read the build tree
    sed -i '1i user root;' "$prefix/conf/nginx.conf"
fi

rm -f "$prefix/mock.sock"

"$nginx" -t -q -p "$prefix" -c "$prefix/conf/nginx.conf" -g 'daemon off;'

cat <<MSG

ngx_http_llm_module gateway ($example) on http://127.0.0.1:$port
(Ctrl-C stops it)

  curl http://127.0.0.1:$port/v1/models
  curl http://127.0.0.1:$port/v1/chat/completions \\
       -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'

  status page: http://127.0.0.1:$port/llm/status?format=html
  configuration: $prefix/conf/nginx.conf    logs: $prefix/logs/
  the example's own header says what else to try: $conf

MSG

exec "$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf" -g 'daemon off;'
