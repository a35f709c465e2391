#!/bin/sh
# SDK end-to-end tests: starts a gateway (with a mock provider) from
# t/client/nginx.conf.in and runs the node tests in t/client against it.
#
#   scripts/client-test.sh /abs/path/to/ngx_http_llm_module.so

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
module=$1
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# nginx reads $NGINX as sockets to inherit: it must not be set
unset NGINX
prefix=$top/t/servroot-client
port=${CLIENT_TEST_PORT:-1990}
mock_port=$((port + 1))
dead_port=$((port + 2))

cd "$top/t/client"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

rm -rf "$prefix"
mkdir -p "$prefix/logs" "$prefix/conf"

sed -e "s#@PREFIX@#$prefix#g" -e "s#@MODULE@#$module#g" \
    -e "s#@MODULES@#/usr/lib/nginx/modules#g" \
    -e "s#@MOCK_DIR@#$top/conf.examples/mock#g" \
    -e "s#@PARAMS@#$top/conf.examples/llm_proxy_params#g" \
    -e "s#@PORT@#$port#g" -e "s#@MOCK_PORT@#$mock_port#g" \
    -e "s#@DEAD_PORT@#$dead_port#g" \
    nginx.conf.in > "$prefix/conf/nginx.conf"

"$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf"

stop() {
    if [ -f "$prefix/logs/nginx.pid" ]; then
        kill -QUIT "$(cat "$prefix/logs/nginx.pid")" 2>/dev/null || true
    fi
}
trap stop EXIT

# wait until the gateway answers (bounded)
i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/v1/models"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "gateway did not start"; exit 1; }
    sleep 0.05
done

status=0
GATEWAY_URL="http://127.0.0.1:$port" node --test --test-reporter=spec \
    "$top"/t/client/*.test.mjs || status=$?

if grep -E '\[(alert|emerg|crit)\]|exited on signal' "$prefix/logs/error.log"
then
    echo "client tests: the gateway logged alerts (above)"
    status=1
fi

exit $status
