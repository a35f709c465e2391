#!/bin/sh
# make bench: the mock provider direct, plain proxy_pass to it, and the
# gateway in front of it, measured with wrk in one run on loopback.
# Prints a table and writes it to bench/RESULTS.md.
#
#   bench/run.sh /abs/path/to/ngx_http_llm_module.so
#
# BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 64).

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
module=$1
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# nginx reads $NGINX as sockets to inherit: it must not be set
unset NGINX
prefix=$top/build/bench
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-64}
mock_port=18081
proxy_port=18082
gateway_port=18083

rm -rf "$prefix"
mkdir -p "$prefix/logs"

sed -e "s#@PREFIX@#$prefix#g" -e "s#@MODULE@#$module#g" \
    -e "s#@PARAMS@#$top/conf.examples/llm_proxy_params#g" \
    -e "s#@MOCK_PORT@#$mock_port#g" -e "s#@PROXY_PORT@#$proxy_port#g" \
    -e "s#@GATEWAY_PORT@#$gateway_port#g" \
    "$top/bench/nginx.conf.in" > "$prefix/nginx.conf"

"$nginx" -p "$prefix" -c "$prefix/nginx.conf"
trap 'kill -QUIT "$(cat "$prefix/logs/nginx.pid")" 2>/dev/null || true' EXIT

cat > "$prefix/body.json" <<'JSON'
{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one sentence about nginx and why a gateway inside it is fast."}],"temperature":0.7,"max_tokens":128}
JSON
export BENCH_BODY="$prefix/body.json"

url=/v1/chat/completions
for p in $mock_port $proxy_port $gateway_port; do
    i=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' \
               -d @"$BENCH_BODY" "http://127.0.0.1:$p$url")" = 200 ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "port $p does not answer 200"; exit 1; }
        sleep 0.05
    done
done

# ms from wrk's "1.23ms" / "456.00us" / "1.01s"
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

run() {
    # warm up, then measure
    wrk -t1 -c"$conns" -d2s -s "$top/bench/post.lua" \
        "http://127.0.0.1:$1$url" >/dev/null
    wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$top/bench/post.lua" \
        "http://127.0.0.1:$1$url" > "$prefix/wrk.$1.txt"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$prefix/wrk.$1.txt")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$prefix/wrk.$1.txt")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$prefix/wrk.$1.txt")")
    errors=$(awk '/Non-2xx|Socket errors/ { print }' "$prefix/wrk.$1.txt")
    if [ -n "$errors" ]; then
        echo "errors on port $1: $errors" >&2
        exit 1
    fi
    echo "$rps $p50 $p99"
}

set -- $(run $mock_port);    m_rps=$1; m_p50=$2; m_p99=$3
set -- $(run $proxy_port);   p_rps=$1; p_p50=$2; p_p99=$3
set -- $(run $gateway_port); g_rps=$1; g_p50=$2; g_p99=$3

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f", (a - b) * 1000 }'; }

table=$(cat <<TABLE
| path                         | requests/s | p50 ms | p99 ms |
|------------------------------|-----------:|-------:|-------:|
| mock provider direct         | $m_rps | $m_p50 | $m_p99 |
| nginx proxy_pass → mock      | $p_rps | $p_p50 | $p_p99 |
| gateway (llm_gateway) → mock | $g_rps | $g_p50 | $g_p99 |

gateway / proxy_pass: throughput $(ratio "$g_rps" "$p_rps"), p50 $(ratio "$g_p50" "$p_p50") ($(diff_us "$g_p50" "$p_p50") µs), p99 $(ratio "$g_p99" "$p_p99")
TABLE
)

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)

cat > "$top/bench/RESULTS.md" <<MD
# Benchmark results

\`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores ($cpu),
nginx $("$nginx" -v 2>&1 | sed 's#.*/##'), one worker, wrk with 1 thread,
$conns connections, ${secs} s per row after a 2 s warm-up, loopback.
The same mock provider (an nginx \`return 200\` of a chat completion) is
behind every row; proxy_pass and the gateway share one keepalive pool.
The request is a $(wc -c < "$BENCH_BODY")-byte chat completion; the gateway
parses it, routes it and rewrites the model name.

$table
MD

echo "$table"
echo
echo "written to bench/RESULTS.md"
