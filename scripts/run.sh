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
#
# An example with llm_redis (fleet) gets its own redis-server on port + 7
# (REDIS_PORT) and a second gateway "b" on port + 1 (B_PORT), as its header describes.

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

fleet=
if grep -q '^ *llm_redis 127\.0\.0\.1:6379' "$prefix/conf/nginx.conf"; then
    fleet=1
fi

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

if [ -z "$fleet" ]; then
    exec "$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf" -g 'daemon off;'
fi

# a fleet: Redis, gateway a (this port, with the mock) and gateway b
redis_port=${REDIS_PORT:-$((port + 7))}
b_port=${B_PORT:-$((port + 1))}
b_prefix=$prefix/b

sed -i "s/llm_redis 127\.0\.0\.1:6379/llm_redis 127.0.0.1:$redis_port/" \
    "$prefix/conf/nginx.conf"
mkdir -p "$b_prefix/conf" "$b_prefix/logs"
ln -sfn "$prefix/modules" "$b_prefix/modules"
cp "$prefix/conf/llm_proxy_params" "$b_prefix/conf/"
sed -e "s/127\.0\.0\.1:$port;/127.0.0.1:$b_port;/" -e 's/node=a/node=b/' \
    -e '/^    # BEGIN mock/,/^    # END mock/d' \
    "$prefix/conf/nginx.conf" > "$b_prefix/conf/nginx.conf"

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
             --appendonly no --dir "$prefix" \
             --logfile "$prefix/logs/redis.log" &
redis_pid=$!
"$nginx" -p "$b_prefix" -c "$b_prefix/conf/nginx.conf" -g 'daemon off;' &
b_pid=$!
"$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf" -g 'daemon off;' &
a_pid=$!

echo "gateway b on http://127.0.0.1:$b_port, Redis on 127.0.0.1:$redis_port"
echo "  redis-cli -p $redis_port --scan --pattern 'llm:*'"

stop() {
    kill -QUIT "$a_pid" "$b_pid" 2>/dev/null || :
    wait "$a_pid" "$b_pid" 2>/dev/null || :
    kill "$redis_pid" 2>/dev/null || :
    wait "$redis_pid" 2>/dev/null || :
}

trap 'stop; exit 0' INT TERM QUIT

# either gateway or Redis ending ends the fleet
while kill -0 "$a_pid" 2>/dev/null && kill -0 "$b_pid" 2>/dev/null \
      && kill -0 "$redis_pid" 2>/dev/null
do
    sleep 1 &
    wait $! || :
done

stop
exit 1
