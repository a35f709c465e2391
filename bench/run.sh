#!/bin/sh
# make bench: the same mock provider reached directly, through plain nginx
# proxy_pass, through the gateway (keys, routing, accounting), from the
# gateway's cache, and through the Portkey gateway; non-streaming with wrk,
# streaming with bench/sse.mjs; then what a guard policy of 20 rules costs,
# how the gateway's cost grows with body size, routes and keys, and open
# streams; and a CPU profile of it.
# Writes bench/RESULTS.md, keeping what follows its "written by hand" line.
#
#   bench/run.sh /abs/path/to/ngx_http_llm_module.so
#
# BENCH_SECONDS      seconds per wrk row (default 10)
# BENCH_QUICK=1      a short run: 2 s rows, fewer held streams and scales
# BENCH_CONNECTIONS  wrk connections (64)     BENCH_STREAMS  SSE clients (50)
# BENCH_HELD         streams held open (1000) BENCH_SCALES "10 100 1000 10000"
# BENCH_PORT         the ports used are the 9 after it (18080)
# BENCH_PROFILE=0    no perf profile
# BENCH_CALLGRIND=0  no callgrind rows (instructions per request)
# BENCH_ONLY=callgrind  only the callgrind rows, printed, RESULTS.md untouched
# BENCH_ONLY=scale   only the 10,000 keys rows (paired rounds), printed
# BENCH_ONLY=guard   only the guardrails rows and their targets, printed,
#                    RESULTS.md untouched (what issue 16's figures need)
# BENCH_CG_ROWS="proxy gateway"  only these callgrind rows
# BENCH_PAIRED_ROUNDS  rounds of the throughput targets' paths
#                    alternated (3): the targets read their median
# NGINX_BIN          the nginx measured (/usr/sbin/nginx), with the module
#                    built for it: one built from source with -g names
#                    nginx's own functions in callgrind's and perf's
#                    reports (Debian's is stripped); the mock stays
#                    Debian's nginx, for its echo module

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
nginx_src=${NGINX_SRC:-/usr/share/nginx/src}
module=$1
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# nginx reads $NGINX as sockets to inherit: it must not be set
unset NGINX
prefix=$top/build/bench

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    secs=${BENCH_SECONDS:-2} held=${BENCH_HELD:-200}
    scales=${BENCH_SCALES:-"10 10000"}
else
    secs=${BENCH_SECONDS:-10} held=${BENCH_HELD:-1000}
    scales=${BENCH_SCALES:-"10 100 1000 10000"}
fi
conns=${BENCH_CONNECTIONS:-64}
streams=${BENCH_STREAMS:-50}
# streams last 100 ms: half a row's time gives thousands of them
stream_secs=$(( (secs + 1) / 2 ))
# the scaling and body-size rows are many: shorter ones
short_secs=$(( (secs + 1) / 2 ))
paired_rounds=${BENCH_PAIRED_ROUNDS:-3}
chunks=20 gap=0.005

base=${BENCH_PORT:-18080}
mock_port=$((base + 1)) proxy_port=$((base + 2)) gateway_port=$((base + 3))
cache_port=$((base + 4)) open_port=$((base + 5)) portkey_port=$((base + 6))
proxy16_port=$((base + 7)) gateway16_port=$((base + 8))
guard_port=$((base + 9))

. "$top/bench/lib.sh"

# --- set up ------------------------------------------------------------------

for p in $mock_port $proxy_port $gateway_port $cache_port $open_port \
         $portkey_port $proxy16_port $gateway16_port $guard_port; do
    port_free "$p" || { echo "port $p is in use (BENCH_PORT=...)" >&2; exit 1; }
done

rm -rf "$prefix"
mkdir -p "$prefix/logs"

cleanup() {
    pid_stop "$prefix/perf.pid"
    pid_stop "$prefix/held.pid"
    pid_stop "$prefix/portkey.pid"
    nginx_stop nginx
    nginx_stop mock
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Portkey, pinned by bench/portkey/package-lock.json
(
    cd "$top/bench/portkey"
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
        npm ci --no-audit --no-fund --loglevel=error
        touch node_modules
    fi
)

# the mock's streams: echo module directives, one event an "echo"
q="'"
event() {
    printf 'echo -n %s%s\\n\\n%s;\necho_flush;\n' "$q" "data: $1" "$q"
}
chunk() {
    printf '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}' "$1" "$2"
}
stream_echo() {    # events gap
    event "$(chunk '{"role":"assistant","content":""}' null)"
    i=1
    while [ $i -le "$1" ]; do
        printf 'echo_sleep %s;\n' "$2"
        event "$(chunk "{\"content\":\"tok$i \"}" null)"
        i=$((i + 1))
    done
    event "$(chunk '{}' '"stop"')"
    event '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":20,"total_tokens":40}}'
    event '[DONE]'
}
stream_echo $chunks $gap > "$prefix/stream.echo"
# held open: an event every half second for a minute
stream_echo 120 0.5 > "$prefix/slow.echo"

: > "$prefix/scale.conf"

subst() {
    sed -e "s#@PREFIX@#$prefix#g" -e "s#@MODULE@#$module#g" \
        -e "s#@PARAMS@#$top/conf.examples/llm_proxy_params#g" \
        -e "s#@MOCK_PORT@#$mock_port#g" -e "s#@PROXY_PORT@#$proxy_port#g" \
        -e "s#@GATEWAY_PORT@#$gateway_port#g" \
        -e "s#@CACHE_PORT@#$cache_port#g" -e "s#@OPEN_PORT@#$open_port#g" \
        -e "s#@PROXY16_PORT@#$proxy16_port#g" \
        -e "s#@GATEWAY16_PORT@#$gateway16_port#g" \
        -e "s#@GUARD_PORT@#$guard_port#g" \
        -e "s#@CHUNKS@#$chunks#g" -e "s#@GAP@#$gap#g" \
        "$top/bench/$1.conf.in" > "$prefix/$2.conf"
}
subst mock mock
subst nginx nginx

# request bodies: a chat completion, the same streamed, and both with
# temperature 0 for the cache
body() {    # model stream temperature content
    s=
    [ "$2" = true ] && s='"stream":true,"stream_options":{"include_usage":true},'
    printf '{"model":"%s",%s"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%s"}],"temperature":%s,"max_tokens":128}\n' \
        "$1" "$s" "$4" "$3"
}
say='Write one sentence about nginx and why a gateway inside it is fast.'
body gpt-4o-mini false 0.7 "$say" > "$prefix/chat.json"
body gpt-4o-mini false 0 "$say" > "$prefix/chat0.json"
body gpt-4o-mini-unpooled false 0.7 "$say" > "$prefix/unpooled.json"
body gpt-4o-mini-stream true 0.7 "$say" > "$prefix/stream.json"
body gpt-4o-mini-stream true 0 "$say" > "$prefix/stream0.json"
body gpt-4o-mini-slow true 0.7 "$say" > "$prefix/slow.json"
# 1 KiB, 32 KiB and 1 MiB: the user's message padded to the size
for size in 1024 32768 262144 1048576; do
    pad=$((size - $(body gpt-4o-mini false 0.7 "" | wc -c)))
    body gpt-4o-mini false 0.7 "$(head -c $pad /dev/zero | tr '\0' x)" \
        > "$prefix/body$size.json"
done
# the guard rows: a 4 KiB conversation, four messages of prose (system,
# user, assistant, user) that no rule of the guard policy matches
msgs=$(tr -d '\n' < "$top/bench/prompt4k.json")
body4k() {    # model stream
    s=
    [ "$2" = true ] && s='"stream":true,"stream_options":{"include_usage":true},'
    printf '{"model":"%s",%s"messages":%s,"temperature":0.7,"max_tokens":128}\n' \
        "$1" "$s" "$msgs"
}
body4k gpt-4o-mini false > "$prefix/chat4k.json"
body4k gpt-4o-mini-stream true > "$prefix/stream4k.json"

# headers: the gateway key (which nginx alone ignores); Portkey is told
# the provider, its key and where it is (the mock's path for each kind)
printf '%s\n' 'Content-Type: application/json' \
    'Authorization: Bearer sk-bench-client' > "$prefix/client.h"
for kind in "" stream slow; do
    printf '%s\n' 'Content-Type: application/json' \
        'Authorization: Bearer sk-bench-provider' \
        'x-portkey-provider: openai' \
        "x-portkey-custom-host: http://127.0.0.1:$mock_port${kind:+/$kind}/v1" \
        > "$prefix/portkey${kind:+-$kind}.h"
done

portkey_start() {
    NODE_ENV=production node --require "$top/bench/portkey/loopback.cjs" \
        "$top/bench/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
        --port=$portkey_port --headless >> "$prefix/logs/portkey.log" 2>&1 &
    echo $! > "$prefix/portkey.pid"
    portkey_pid=$!
}

only=${BENCH_ONLY:-}
nginx_start mock
nginx_start nginx
[ -n "$only" ] || portkey_start
mock_pid=$(nginx_worker mock)
front_pid=$(nginx_worker nginx)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

url=/v1/chat/completions
direct=http://127.0.0.1:$mock_port
proxy=http://127.0.0.1:$proxy_port
gateway=http://127.0.0.1:$gateway_port
cached=http://127.0.0.1:$cache_port
open=http://127.0.0.1:$open_port
proxy16=http://127.0.0.1:$proxy16_port
guard=http://127.0.0.1:$guard_port
gateway16=http://127.0.0.1:$gateway16_port
portkey=http://127.0.0.1:$portkey_port

# --- every path really reaches the mock, streams included ----------------------

[ -n "$only" ] ||
    wait_ok "$portkey$url" "$prefix/chat.json" "$prefix/portkey.h"

# check NAME URL BODY HEADERS PATTERN...: the response has every pattern
check() {
    curl -sN -i -H "@$4" --data-binary "@$3" "$2" > "$prefix/check.out" 2>&1 \
        || true
    what=$1
    shift 4
    for pattern; do
        if ! grep -q -- "$pattern" "$prefix/check.out"; then
            echo "$what: no \"$pattern\" in its answer:" >&2
            head -c 2000 "$prefix/check.out" >&2
            exit 1
        fi
    done
}

stream_ok() {    # what every stream must have
    check "$@" '^HTTP/1.1 200' 'text/event-stream' "tok$chunks " '"usage"' \
        'data: \[DONE\]'
}
for u in "$direct" "$proxy" "$gateway" "$open"; do
    check "$u" "$u$url" "$prefix/chat.json" "$prefix/client.h" \
        '^HTTP/1.1 200' 'How can I help you today'
done
stream_ok direct "$direct/stream$url" "$prefix/stream.json" "$prefix/client.h"
stream_ok proxy "$proxy/stream$url" "$prefix/stream.json" "$prefix/client.h"
stream_ok gateway "$gateway$url" "$prefix/stream.json" "$prefix/client.h" \
    'x-llm-provider: mock_stream'
check gateway "$gateway$url" "$prefix/chat.json" "$prefix/client.h" \
    'x-llm-provider: mock'
check unpooled "$gateway$url" "$prefix/unpooled.json" "$prefix/client.h" \
    'x-llm-provider: mock_unpooled' 'How can I help you today'
if [ -z "$only" ]; then
    check portkey "$portkey$url" "$prefix/chat.json" "$prefix/portkey.h" \
        '^HTTP/1.1 200' 'How can I help you today'
    stream_ok portkey "$portkey$url" "$prefix/stream.json" \
        "$prefix/portkey-stream.h"
fi
check "nginx proxy_cache" "$proxy/cached$url" "$prefix/chat0.json" \
    "$prefix/client.h" 'X-Cache: MISS'
check "nginx proxy_cache" "$proxy/cached$url" "$prefix/chat0.json" \
    "$prefix/client.h" 'X-Cache: HIT' 'How can I help you today'
# a miss stores the answer, then every request is a hit
for kind in chat0 stream0; do
    check cache "$cached$url" "$prefix/$kind.json" "$prefix/client.h" \
        'x-llm-cache: MISS'
    check cache "$cached$url" "$prefix/$kind.json" "$prefix/client.h" \
        'x-llm-cache: HIT' '^HTTP/1.1 200'
done
check "gateway without a key" "$gateway$url" "$prefix/chat.json" \
    "$prefix/portkey.h" '^HTTP/1.1 401'
# the guarded gateway: the same answers, and no rule matched the bench's
# texts (every llm_guard_hits_total of the policy is 0); then a request
# that one rule refuses, so that the policy is known to be applied
for b in chat chat4k; do
    check guard "$guard$url" "$prefix/$b.json" "$prefix/client.h" \
        '^HTTP/1.1 200' 'x-llm-provider: mock' 'How can I help you today?"'
done
# (a guarded answer is written again from its text, cut where rules
# could still match: the last token is its own event, "20 ")
for b in stream stream4k; do
    check guard "$guard$url" "$prefix/$b.json" "$prefix/client.h" \
        '^HTTP/1.1 200' 'text/event-stream' "\"$chunks \"" '"usage"' \
        'data: \[DONE\]' 'x-llm-provider: mock_stream'
done
curl -s "$guard/metrics" > "$prefix/guard.metrics"
n=$(grep -c '^llm_guard_hits_total{policy="bench"' "$prefix/guard.metrics" || true)
hits=$(awk '/^llm_guard_hits_total\{policy="bench"/ && $NF != 0' \
       "$prefix/guard.metrics")
if [ "$n" -lt 20 ] || [ -n "$hits" ]; then
    echo "guard: $n series of the policy (20 rules or more expected), rules that matched:" >&2
    echo "$hits" >&2
    exit 1
fi
sed 's/"content":"You are a/"content":"password: x. You are a/' \
    "$prefix/chat.json" > "$prefix/guard-deny.json"
check "guard, a refused request" "$guard$url" "$prefix/guard-deny.json" \
    "$prefix/client.h" '^HTTP/1.1 400' 'content_policy_violation'

# --- routes and keys configured: the files for N of each ------------------------

# route scale-i to the mock, key sk-scale-i in the bench team
scale_files() {
    awk -v n="$1" -v p="$prefix" 'BEGIN {
        printf "llm_keys_file %s/scale.keys;\n", p
        for (i = 1; i <= n; i++)
            printf "llm_route scale-%05d { target mock gpt-4o-mini-2024-07-18 input=0.15 output=0.60; }\n", i
    }' > "$prefix/scale.conf"
    awk -v n="$1" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "scale-%05d sk-scale-%05d team=bench rpm=1000000000 budget=1000000usd/day;\n", i, i
    }' > "$prefix/scale.keys"
}

# --- callgrind: instructions per request ---------------------------------------

cgrows=$prefix/callgrind.txt
# each path with one connection, the worker under callgrind; then nginx
# is started again as it was
callgrind_rows() {
    : > "$cgrows"
    : > "$prefix/scale.conf"
    nginx_stop nginx
    cg_pid=$(cg_start nginx)
    h=$prefix/client.h
    while read -r name u b; do
        case " ${BENCH_CG_ROWS:-$name} " in *" $name "*) ;; *) continue ;; esac
        r=$(cg_run "$u" "$prefix/$b" "$h" "$cg_pid")
        echo "$name $r" >> "$cgrows"
    done <<ROWS
proxy $proxy$url chat.json
gateway $gateway$url chat.json
open $open$url chat.json
cache $cached$url chat0.json
nginx_cache $proxy/cached$url chat0.json
proxy_1k $proxy$url body1024.json
gateway_1k $gateway$url body1024.json
proxy_32k $proxy$url body32768.json
gateway_32k $gateway$url body32768.json
proxy_256k $proxy$url body262144.json
gateway_256k $gateway$url body262144.json
proxy_1m $proxy$url body1048576.json
gateway_1m $gateway$url body1048576.json
g_guard $guard$url chat.json
g_gateway_4k $gateway$url chat4k.json
g_guard_4k $guard$url chat4k.json
g_gateway_stream $gateway$url stream4k.json
g_guard_stream $guard$url stream4k.json
ROWS
    cg_stop "$cg_pid"
    # N keys and routes, each request with its own (as the scale rows):
    # what the per-request cost does with N, without the machine's noise;
    # with this machine's first level of data cache and its L2 simulated
    # as the last level, the misses a request (what N costs beyond
    # instructions: its keys, routes and meters spread over more memory);
    # proxy_pass's first, for what the gateway touches beyond nginx's own
    case " ${BENCH_CG_ROWS:-scale} " in
    *" scale "*)
        cg_opts="--cache-sim=yes --D1=$(cache_geometry 1) --LL=$(cache_geometry 2)"
        cg_pid=$(cg_start nginx)
        cg_opts=""
        r=$(cg_run "$proxy$url" "$prefix/chat.json" "$h" "$cg_pid")
        echo "scale_proxy $r" >> "$cgrows"
        cg_stop "$cg_pid" ;;
    esac
    for n in 1 10000; do
        case " ${BENCH_CG_ROWS:-scale} " in *" scale "*) ;; *) continue ;; esac
        scale_files "$n"
        cg_opts="--cache-sim=yes --D1=$(cache_geometry 1) --LL=$(cache_geometry 2)"
        cg_pid=$(cg_start nginx)
        cg_opts=""
        export BENCH_SCALE=$n
        r=$(cg_run "$gateway$url" "$prefix/chat.json" "$h" "$cg_pid")
        unset BENCH_SCALE
        echo "scale_$n $r" >> "$cgrows"
        cg_stop "$cg_pid"
    done
    : > "$prefix/scale.conf"
    nginx_start nginx
    front_pid=$(nginx_worker nginx)
}

cg_get() { awk -v n="$1" '$1 == n { print $2 }' "$cgrows"; }

# the targets of issue 15 that the rows above measure
issue_targets() {
    b32=$(awk '$1 == 32768 { printf "%+.1f", $9 - $5 }' "$brows")
    b1m=$(awk '$1 == 1048576 { printf "%.2f", $6 / $2 }' "$brows")
    r=$(ratio "$(get open 2)" "$(get proxy 2)")
    h=$(ratio "$(get cache 2)" "$(get proxy 2)")
    n=$(ratio "$(get cache 2)" "$(get nginx_cache 2)")
    echo "| routing only ≥ 0.97× proxy_pass's throughput | $(paired_text open); its row ${r}× | $(met "$(paired open | cut -d' ' -f1)" 0.97) |"
    echo "| cache hit ≥ 1.5× proxy_pass's throughput | $(paired_text cache); its row ${h}× | $(met "$(paired cache | cut -d' ' -f1)" 1.5) |"
    echo "| cache hit ≥ 0.9× plain nginx proxy_cache hit's throughput | $(paired_text cache nginx_cache); its row ${n}× | $(met "$(paired cache nginx_cache | cut -d' ' -f1)" 0.9) |"
    echo "| 32 KiB body: added CPU ≤ 8 µs | $b32 µs | $(met "$b32" 8 le) |"
    echo "| 1 MiB body ≥ 0.8× proxy_pass's throughput | ${b1m}× | $(met "$b1m" 0.8) |"
    if [ -s "$rounds" ]; then
        grow=$(awk 'NR == 1 { b = $1 } { a = $2 } END { printf "%.1f", (a - b) / 1024 }' "$rounds")
        after=$(awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $2 / 1024 }' "$rounds")
        echo "| RSS after 1,000 streams within 1 MiB of before, flat over rounds | after rounds: $after MiB (+$grow) | $(met "$grow" 1 le) |"
    fi
    # against N = 1 measured the same way (a reload, then a short row),
    # not against the main row: a short row just after a reload is
    # slower whatever N is
    k=$(awk '$1 == 1 { one = $2 } $1 == 10000 { n = $2 }
             END { if (one && n) printf "%.2f", n / one }' "$srows_scale")
    ki=
    if [ -n "$(cg_get scale_1)" ] && [ -n "$(cg_get scale_10000)" ]; then
        ki=" (instructions a request: $(ratio "$(cg_get scale_10000)" "$(cg_get scale_1)")× one"
        ki="$ki$(awk '$1 == "scale_1" { a = $5 } $1 == "scale_10000" { b = $5 }
                     END { if (b != "") printf "; L2 misses %s against %s", b, a }' "$cgrows"))"
    fi
    kp=$(paired 10000 1 "$sprows" | cut -d' ' -f1)
    if [ -n "$kp" ]; then
        echo "| 10,000 keys and routes ≥ 0.95× one | all 10,000 in turn against one, paired in one configuration: $(paired_text 10000 1 "$sprows"); after a reload each: ${k}×$ki | $(met "$kp" 0.95) |"
    elif [ -n "$k" ]; then
        echo "| 10,000 keys and routes ≥ 0.95× one (both rows after a reload) | ${k}×$ki | $(met "$k" 0.95) |"
    fi
    return 0
}

cg_targets() {
    [ -s "$cgrows" ] || return 0
    g=$(ratio "$(cg_get gateway)" "$(cg_get proxy)")
    c=$(ratio "$(cg_get cache)" "$(cg_get nginx_cache)")
    echo "| gateway ≤ 1.3× proxy_pass's instructions | ${g}× | $(met "$g" 1.3 le) |"
    echo "| cache hit ≤ 1.11× a plain nginx cache hit's instructions | ${c}× | $(met "$c" 1.11 le) |"
}

callgrind_table() {
    if [ ! -s "$cgrows" ]; then
        echo "No callgrind rows (BENCH_CALLGRIND=0)."
        return
    fi
    p=$(cg_get proxy)
    echo "| path | instructions/request | / proxy_pass | requests counted |"
    echo "|------|---------------------:|-------------:|-----------------:|"
    while read -r name ir n _; do
        case $name in
        g_*) continue ;;    # the guard rows: in their own section
        *_1k|*_32k|*_256k|*_1m)
            size=${name#*_}
            base=$(cg_get "proxy_$size") ;;
        *) size= base=$p ;;
        esac
        case $name in
        proxy*)      label="nginx proxy_pass${size:+, $size body}" ;;
        gateway*)    label="gateway: keys, routing, accounting${size:+, $size body}" ;;
        open)        label='gateway, routing only (llm_auth off)' ;;
        cache)       label='gateway, cache hit' ;;
        nginx_cache) label='plain nginx proxy_cache hit' ;;
        scale_proxy) label='nginx proxy_pass, caches simulated' ;;
        scale_*)     label="gateway, N = ${name#scale_} keys and routes, each used in turn" ;;
        esac
        echo "| $label | $ir | $(ratio "$ir" "$base") | $n |"
    done < "$cgrows"
    awk '$1 ~ /^scale_/ && NF >= 5 {
            if (!done++) {
                print ""
                print "The N rows and a proxy_pass row ran with the caches"
                print "simulated (this CPU'"'"'s first levels of data and"
                print "instruction cache, and its L2 as the last): misses of"
                print "data reads and writes a request, which is what N costs"
                print "beyond instructions, and of instruction fetches."
                print ""
                print "| N keys and routes | L1 data misses/request | L2 misses/request | L1 instruction misses/request |"
                print "|------------------:|-----------------------:|------------------:|------------------------------:|"
            }
            n = substr($1, 7)
            if (n == "proxy") n = "proxy_pass"
            printf "| %s | %s | %s | %s |\n", n, $4, $5, (NF >= 6) ? $6 : "-"
         }' "$cgrows"
}

# a wrk row: loaded, then with one connection (results are assigned
# before they are used, so that a failure stops)
row() {    # name url body headers pid
    export BENCH_BODY=$3 BENCH_HEADERS=$4
    loaded=$(wrk_run "$2" "$conns" "$secs" "$5" "$1")
    alone=$(wrk_run "$2" 1 "$(( (secs + 2) / 3 ))" "$5" "$1-1")
    echo "$1 $loaded $alone" | awk '{ print $1, $2, $3, $4, $5, $7, $8 }'
}

# --- guardrails: the gateway with and without a policy of 20 rules ----------------

guard_rows() {

    # the 4 KiB conversation, not streamed (wrk) and streamed (sse.mjs); the
    # small request of the rows above through the guarded gateway too, which
    # tells what checking the answer costs apart from the prompt
    grows=$prefix/guard.txt
    {
        row gateway_4k "$gateway$url" "$prefix/chat4k.json" "$prefix/client.h" \
            "$front_pid"
        row guard_4k "$guard$url" "$prefix/chat4k.json" "$prefix/client.h" \
            "$front_pid"
        row guard "$guard$url" "$prefix/chat.json" "$prefix/client.h" \
            "$front_pid"
    } > "$grows"
    gsrows=$prefix/guard-streams.txt
    : > "$gsrows"
    r=$(sse_run "$gateway$url" "$prefix/stream4k.json" "$prefix/client.h" \
        "$front_pid")
    echo "gateway_4k $r" >> "$gsrows"
    r=$(sse_run "$guard$url" "$prefix/stream4k.json" "$prefix/client.h" \
        "$front_pid")
    echo "guard_4k $r" >> "$gsrows"
    # one stream at a time, three times as long (about 9 streams a second):
    # TTFT without queueing behind other streams' work
    one_secs=$((stream_secs * 3))
    r=$(streams=1 stream_secs=$one_secs; sse_run "$gateway$url" \
        "$prefix/stream4k.json" "$prefix/client.h" "$front_pid")
    echo "gateway_4k_1 $r" >> "$gsrows"
    r=$(streams=1 stream_secs=$one_secs; sse_run "$guard$url" \
        "$prefix/stream4k.json" "$prefix/client.h" "$front_pid")
    echo "guard_4k_1 $r" >> "$gsrows"
    # the check alone: the policy's rules on the prompt's texts, in-process,
    # by the gateway's own engine (no network, no kernel time)
    perl -MJSON::PP -e 'local $/; my $m = decode_json(<STDIN>);
        print "$_->{content}\n" for @$m' < "$top/bench/prompt4k.json" \
        > "$prefix/guard-texts.txt"
    sed -n '/llm_guard bench {/,/^    }/p' "$top/bench/nginx.conf.in" \
        | perl -ne 'print "$1\n" if /^\s+(?:redact|deny|log|allow)\s+\S+\s+("(?:[^"\\]|\\.)*"|[^;\s]+)/' \
        | perl -pe 's/^"(.*)"$/$1/; s/\\(["\\])/$1/g' > "$prefix/guard-rules.txt"
    cc -O2 -o "$prefix/guard_engine" -I "$nginx_src/src/core" \
        -I "$nginx_src/src/event" -I "$nginx_src/src/os/unix" \
        -I "$top/build/nginx/objs" -I "$top/ngx_http_llm_module" \
        "$top/bench/guard_engine.c" "$top/t/unit/pool_malloc.c" \
        "$top/ngx_http_llm_module/ngx_http_llm_redact.c" \
        "$top/ngx_http_llm_module/ngx_http_llm_redact_literal.c" \
        "$top/ngx_http_llm_module/ngx_http_llm_guard_detect.c" -lpcre2-8
    engine=$("$prefix/guard_engine" "$prefix/guard-rules.txt" \
             "$prefix/guard-texts.txt")
}

# the guardrails rows: the gateway with and without the policy
gget() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$grows"; }
gsget() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$gsrows"; }
sub_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
sub_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }

guard_targets() {
    added=$(sub_us "$(gget guard_4k 5)" "$(gget gateway_4k 5)")
    ttft=$(sub_ms "$(gsget guard_4k_1 3)" "$(gsget gateway_4k_1 3)")
    alone=$(echo "$engine" | awk '{ printf "%.2f", $1 * 4096 / $2 }')
    echo "| ≤ 10 µs of CPU per 4 KiB checked (20 rules; the answer's check and re-encoding included) | $added µs | $(met "$added" 10 le) |"
    echo "| the same, the check alone: the engine on the prompt's texts in-process, per 4 KiB (median of 5 rounds of 2,000) | $alone µs | $(met "$alone" 10 le) |"
    echo "| TTFT unchanged when nothing can match (1 client: TTFT p50 within 1 ms; a held token would wait the ${gap} s to the next event) | $ttft ms | $(met "$ttft" 1 le) |"
}

if [ "$only" = guard ]; then
    guard_rows
    echo "| row | req/s | p50 ms | p99 ms | CPU µs/request |"
    awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$grows"
    echo
    guard_targets
    exit 0
fi

# paired_run FILE PID PATH...: $paired_rounds rounds of the paths one
# after the other, the order reversed every other round; "round path
# wrk_run's fields" a line in FILE. A number as a path is that many keys
# and routes of the scale configuration, each request with its own.
paired_run() {
    file=$1 measured=$2
    shift 2
    i=1
    while [ "$i" -le "$paired_rounds" ]; do
        order=$*
        if [ $((i % 2)) -eq 0 ]; then
            order=$(echo "$*" | tr ' ' '\n' | tac | tr '\n' ' ')
        fi
        for name in $order; do
            b=chat.json
            case $name in
            proxy)       u=$proxy$url ;;
            open)        u=$open$url ;;
            cache)       u=$cached$url b=chat0.json ;;
            nginx_cache) u=$proxy/cached$url b=chat0.json ;;
            *)           u=$gateway$url ;;
            esac
            export BENCH_BODY=$prefix/$b BENCH_HEADERS=$prefix/client.h
            case $name in [0-9]*) export BENCH_SCALE=$name ;; esac
            r=$(wrk_run "$u" "$conns" "$short_secs" "$measured" \
                "paired-$name")
            unset BENCH_SCALE
            echo "$i $name $r" >> "$file"
        done
        i=$((i + 1))
    done
}

# scale_paired_rows: the rounds of 10,000 keys in turn against one
scale_paired_rows() {
    [ -s "$sprows" ] || return 0
    echo "| round | one key, requests/s | 10,000 in turn, requests/s | ratio | CPU µs/request, one | CPU µs/request, 10,000 |"
    echo "|------:|--------------------:|---------------------------:|------:|--------------------:|-----------------------:|"
    awk '{ rps[$1, $2] = $3; cpu[$1, $2] = $6; if ($1 > nr) nr = $1 }
         END {
             for (r = 1; r <= nr; r++)
                 printf "| %d | %s | %s | %.2f | %s | %s |\n", r,
                        rps[r, 1], rps[r, 10000], rps[r, 10000] / rps[r, 1],
                        cpu[r, 1], cpu[r, 10000]
         }' "$sprows"
}

# scale_measure: N keys and routes after a reload each, then the paired rounds
scale_measure() {
    srows_scale=$prefix/scale.txt
    : > "$srows_scale"
    # N = 1 first, the row the others are compared with
    for n in 1 $(echo $scales | tr ' ' '\n' | grep -vx 1); do
        scale_files "$n"

        nginx_stop nginx
        # nginx returns once the master has read the configuration
        t0=$(date +%s.%N)
        nginx_start nginx
        load=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        pid=$(nginx_worker nginx)
        last=$(printf 'scale-%05d' "$n")
        sed "s/\"model\":\"[^\"]*\"/\"model\":\"$last\"/" "$prefix/chat.json" \
            > "$prefix/scale.json"
        printf 'Authorization: Bearer sk-%s\n' "$last" > "$prefix/scale.h"
        wait_ok "$gateway$url" "$prefix/scale.json" "$prefix/scale.h"

        export BENCH_BODY=$prefix/chat.json BENCH_HEADERS=$prefix/client.h \
               BENCH_SCALE=$n
        r=$(wrk_run "$gateway$url" "$conns" "$short_secs" "$pid" "scale$n")
        unset BENCH_SCALE
        set -- $r
        echo "$n $1 $2 $3 $4 $(rss_kib "$pid") $load" >> "$srows_scale"
    done

    # paired, as the throughput targets: in the configuration of the largest
    # N, all 10,000 keys and routes in turn against one of them, alternated
    # with no reload between (a row just after a reload moved by a third
    # between runs whatever N was)
    sprows=$prefix/scale-paired.txt
    : > "$sprows"
    if [ "$n" = 10000 ]; then
        paired_run "$sprows" "$pid" 1 10000
    fi
}

if [ "$only" = scale ]; then
    scales=10000
    scale_measure
    scale_paired_rows
    exit 0
fi

if [ "$only" = callgrind ]; then
    callgrind_rows
    callgrind_table
    exit 0
fi

nscales=$(( $(echo $scales | wc -w) + 1 ))
estimate=$(( 10 * (secs + (secs + 2) / 3 + 2) + 13 * (stream_secs + 3)
             + 6 * (short_secs + 1) + 30 + short_secs
             + nscales * (short_secs + 4) + paired_rounds * 7 * (short_secs + 1) ))
echo "every path answers; measuring for about $(( (estimate + 59) / 60 )) minutes"

# --- non-streaming: wrk, loaded and with one connection ----------------------------

rows=$prefix/rows.txt
{
    row direct "$direct$url" "$prefix/chat.json" "$prefix/client.h" "$mock_pid"
    row proxy "$proxy$url" "$prefix/chat.json" "$prefix/client.h" "$front_pid"
    row gateway "$gateway$url" "$prefix/chat.json" "$prefix/client.h" "$front_pid"
    # next to the gateway row it is compared with: after the cache row it
    # measured up to a third slower than alone (a machine this small
    # drifts between rows), although it runs fewer instructions
    row open "$open$url" "$prefix/chat.json" "$prefix/client.h" "$front_pid"
    row cache "$cached$url" "$prefix/chat0.json" "$prefix/client.h" "$front_pid"
    row nginx_cache "$proxy/cached$url" "$prefix/chat0.json" \
        "$prefix/client.h" "$front_pid"
    row portkey "$portkey$url" "$prefix/chat.json" "$prefix/portkey.h" \
        "$portkey_pid"
    # last: its connections leave sockets in TIME_WAIT for a minute
    row unpooled "$gateway$url" "$prefix/unpooled.json" "$prefix/client.h" \
        "$front_pid"
} > "$rows"
echo "non-streaming done"

# get NAME FIELD: a field of a row of $rows (2 rps, 3 p50, 4 p99, 5 cpu,
# 6 p50 with one connection, 7 its p99)
get() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$rows"; }

# --- paired rounds: the throughput targets' paths alternated ----------------------
#
# One row of each path, one after the other, is at the mercy of what the
# machine does meanwhile (rows moved +-15 % between runs). Here each round
# runs proxy_pass and the paths compared with it back to back, the order
# reversed every other round, and a path's ratio is taken within its
# round: the targets read the median of the rounds.

prows=$prefix/paired.txt
: > "$prows"
paired_paths="proxy gateway open cache nginx_cache"
# shellcheck disable=SC2086 # the paths, one word each
paired_run "$prows" "$front_pid" $paired_paths
echo "paired rounds done"

# paired A [B [FILE]]: "median min max" of A's requests/s over B's
# (proxy_pass unless named) within each round (of the paired rounds
# unless FILE is given)
paired() {
    awk -v a="$1" -v b="${2:-proxy}" '
        $2 == a { x[$1] = $3 } $2 == b { y[$1] = $3 }
        END {
            n = 0
            for (r in x) if (y[r] > 0) v[++n] = x[r] / y[r]
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
                    t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
                }
            if (n % 2) med = v[(n + 1) / 2]
            else med = (v[n / 2] + v[n / 2 + 1]) / 2
            if (n) printf "%.2f %.2f %.2f\n", med, v[1], v[n]
        }' "${3:-$prows}"
}

# paired_text A [B]: "median× (min–max×)"
paired_text() {
    paired "$@" | awk '{ printf "%s× (%s–%s×)", $1, $2, $3 }'
}

# paired_rows: the rounds as a table, requests/s and the ratios
paired_rows() {
    awk -v paths="$paired_paths" '
        BEGIN { np = split(paths, p, " ") }
        { v[$1, $2] = $3; if ($1 > nr) nr = $1 }
        END {
            for (r = 1; r <= nr; r++) {
                line = "| " r
                for (i = 1; i <= np; i++) line = line " | " v[r, p[i]]
                pr = v[r, "proxy"]
                line = line sprintf(" | %.2f | %.2f | %.2f | %.2f |",
                                    v[r, "gateway"] / pr, v[r, "open"] / pr,
                                    v[r, "cache"] / pr,
                                    v[r, "cache"] / v[r, "nginx_cache"])
                print line
            }
        }' "$prows"
}

# --- streaming: bench/sse.mjs --------------------------------------------------------

srows=$prefix/streams.txt
: > "$srows"
stream_row() {    # name, then sse_run's arguments
    name=$1
    shift
    r=$(sse_run "$@")
    echo "$name $r" >> "$srows"
}
stream_row direct "$direct/stream$url" "$prefix/stream.json" \
    "$prefix/client.h" "$mock_pid"
stream_row proxy "$proxy/stream$url" "$prefix/stream.json" \
    "$prefix/client.h" "$front_pid"
stream_row gateway "$gateway$url" "$prefix/stream.json" \
    "$prefix/client.h" "$front_pid"
stream_row cache "$cached$url" "$prefix/stream0.json" \
    "$prefix/client.h" "$front_pid"
stream_row portkey "$portkey$url" "$prefix/stream.json" \
    "$prefix/portkey-stream.h" "$portkey_pid"
echo "streaming done"

guard_rows
echo "guardrails done"

# --- request body size: proxy_pass and gateway --------------------------------------

brows=$prefix/bodies.txt
: > "$brows"
for size in 1024 32768 262144 1048576; do
    export BENCH_BODY=$prefix/body$size.json BENCH_HEADERS=$prefix/client.h
    p=$(wrk_run "$proxy$url" "$conns" "$short_secs" "$front_pid" p$size)
    g=$(wrk_run "$gateway$url" "$conns" "$short_secs" "$front_pid" g$size)
    echo "$size $p $g" >> "$brows"
done
# nginx's default client_body_buffer_size: a 32 KiB body in a temporary
# file, one connection (the latency of a request alone)
export BENCH_BODY=$prefix/body32768.json BENCH_HEADERS=$prefix/client.h
stall_p=$(wrk_run "$proxy16$url" 1 "$short_secs" "$front_pid" p16)
stall_g=$(wrk_run "$gateway16$url" 1 "$short_secs" "$front_pid" g16)
echo "body sizes done"

# --- streams held open: memory per stream -------------------------------------------

hrows=$prefix/held.txt
: > "$hrows"
# each from a new process, which has not yet grown for other rows
held_row() {    # name, then held_run's arguments but the pid
    name=$1
    shift
    if [ "$name" = portkey ]; then
        pid_stop "$prefix/portkey.pid"
        portkey_start
        wait_ok "$portkey$url" "$prefix/chat.json" "$prefix/portkey.h"
        pid=$portkey_pid
    else
        nginx_stop nginx
        nginx_start nginx
        front_pid=$(nginx_worker nginx)
        pid=$front_pid
    fi
    r=$(held_run "$@" "$pid")
    echo "$name $r" >> "$hrows"
}
held_row gateway "$gateway$url" "$prefix/slow.json" "$prefix/client.h"
# the same worker, two more rounds: what is left after each
rounds=$prefix/rounds.txt
awk '$1 == "gateway" { print $2, $6 }' "$hrows" > "$rounds"
for round in 2 3; do
    set -- $(held_run "$gateway$url" "$prefix/slow.json" "$prefix/client.h" \
             "$front_pid")
    echo "- $5" >> "$rounds"
done
held_row proxy "$proxy/slow$url" "$prefix/slow.json" "$prefix/client.h"
held_row portkey "$portkey$url" "$prefix/slow.json" "$prefix/portkey-slow.h"
echo "held streams done"

# --- a CPU profile of the gateway's worker -----------------------------------------

profile=$prefix/profile.txt
: > "$profile"
if [ "${BENCH_PROFILE:-1}" = 1 ] && command -v perf >/dev/null 2>&1; then
    export BENCH_BODY=$prefix/chat.json BENCH_HEADERS=$prefix/client.h
    perf record -e cpu-clock -F 4999 -p "$front_pid" -o "$prefix/perf.data" \
        > "$prefix/logs/perf.log" 2>&1 &
    echo $! > "$prefix/perf.pid"
    wrk -t1 -c"$conns" -d"${short_secs}s" -s "$top/bench/post.lua" \
        "$gateway$url" > /dev/null
    # perf writes its file when interrupted
    kill -INT "$(cat "$prefix/perf.pid")"
    wait "$(cat "$prefix/perf.pid")" || true
    rm -f "$prefix/perf.pid"
    if [ -s "$prefix/perf.data" ]; then
        perf report -i "$prefix/perf.data" --stdio -q --sort dso \
            --percent-limit 0.5 2>/dev/null > "$prefix/perf.dso" || true
        perf report -i "$prefix/perf.data" --stdio -q --sort dso,sym \
            --percent-limit 0.7 2>/dev/null > "$prefix/perf.sym" || true
        perf report -i "$prefix/perf.data" --stdio -q --sort sym \
            --dsos ngx_http_llm_module.so --percent-limit 0.05 \
            2>/dev/null > "$prefix/perf.module" || true
        echo yes > "$profile"
    fi
fi
echo "profile done"

# --- routes and keys: 10 ... 10,000 of each -----------------------------------------

scale_measure
echo "scaling done"

# --- callgrind --------------------------------------------------------------------

if [ "${BENCH_CALLGRIND:-1}" = 1 ] && command -v valgrind >/dev/null 2>&1; then
    callgrind_rows
    echo "callgrind done"
else
    : > "$cgrows"
fi

# --- the report ---------------------------------------------------------------------

p_rps=$(get proxy 2) g_rps=$(get gateway 2) k_rps=$(get portkey 2)
p_cpu=$(get proxy 5) g_cpu=$(get gateway 5) k_cpu=$(get portkey 5)

table_rows() {    # file
    while read -r name rps p50 p99 cpu u50 u99; do
        case $name in
        direct)  label='mock provider direct' ;;
        proxy)   label='nginx proxy_pass → mock' ;;
        gateway) label='gateway: keys, routing, accounting → mock' ;;
        cache)   label='gateway, cache hit' ;;
        open)    label='gateway, routing only (llm_auth off)' ;;
        unpooled) label='gateway, provider without keepalive (a connection a request)' ;;
        nginx_cache) label='plain nginx proxy_cache hit (no gateway)' ;;
        portkey) label='Portkey gateway → mock' ;;
        gateway_4k) label='gateway, 4 KiB conversation' ;;
        guard_4k)   label='gateway + policy, 4 KiB conversation' ;;
        guard)      label="gateway + policy, the $(wc -c < "$prefix/chat.json")-byte request of the rows above" ;;
        esac
        echo "| $label | $rps | $p50 | $p99 | $cpu | $u50 | $u99 |"
    done < "$1"
}

stream_rows() {    # file
    while read -r name rate t50 t99 a50 a99 cpu; do
        case $name in
        direct)  label='mock provider direct' ;;
        proxy)   label='nginx proxy_pass (proxy_buffering off)' ;;
        gateway) label='gateway: keys, routing, accounting' ;;
        cache)   label='gateway, cache hit (replayed stream)' ;;
        portkey) label='Portkey gateway' ;;
        gateway_4k) label="gateway, 4 KiB conversation, $streams clients" ;;
        guard_4k)   label="gateway + policy, 4 KiB conversation, $streams clients" ;;
        gateway_4k_1) label='gateway, 4 KiB conversation, 1 client' ;;
        guard_4k_1)   label='gateway + policy, 4 KiB conversation, 1 client' ;;
        esac
        # one client: too few streams for /proc's 10 ms ticks
        case $name in *_1) cpu=– ;; esac
        echo "| $label | $rate | $t50 | $t99 | $a50 | $a99 | $cpu |"
    done < "$1"
}

body_rows() {
    while read -r size prps pp50 pp99 pcpu grps gp50 gp99 gcpu; do
        echo "| $(awk -v s="$size" 'BEGIN { print (s >= 1048576 ? s / 1048576 " MiB" : s / 1024 " KiB") }') | $prps | $pp50 | $pp99 | $pcpu | $grps | $gp50 | $gp99 | $gcpu | $(ratio "$grps" "$prps") | $(awk -v a="$gcpu" -v b="$pcpu" 'BEGIN { printf "%+.1f", a - b }') |"
    done < "$brows"
}

scale_rows() {
    echo "| the main row ($secs s, no reload) | $g_rps | $(get gateway 3) | $(get gateway 4) | $g_cpu | – | – |"
    while read -r n rps p50 p99 cpu rss t; do
        echo "| $n | $rps | $p50 | $p99 | $cpu | $(mib "$rss") | $t |"
    done < "$srows_scale"
}

# instructions: each guarded row against the same without the policy
guard_cg() {
    for n in gateway g_guard g_gateway_4k g_guard_4k g_gateway_stream \
             g_guard_stream; do
        [ -n "$(cg_get $n)" ] || {
            echo "No callgrind rows of the policy (BENCH_CALLGRIND=0 or BENCH_CG_ROWS)."
            return 0
        }
    done
    echo "| path | instructions/request | added by the policy |"
    echo "|------|---------------------:|-------------------:|"
    echo "| gateway, the $(wc -c < "$prefix/chat.json")-byte request | $(cg_get gateway) | |"
    echo "| + policy | $(cg_get g_guard) | $(sub_us "$(cg_get g_guard)" "$(cg_get gateway)" | sed 's/\.0$//') |"
    echo "| gateway, 4 KiB conversation | $(cg_get g_gateway_4k) | |"
    echo "| + policy | $(cg_get g_guard_4k) | $(sub_us "$(cg_get g_guard_4k)" "$(cg_get g_gateway_4k)" | sed 's/\.0$//') |"
    echo "| gateway, 4 KiB conversation, streamed | $(cg_get g_gateway_stream) | |"
    echo "| + policy | $(cg_get g_guard_stream) | $(sub_us "$(cg_get g_guard_stream)" "$(cg_get g_gateway_stream)" | sed 's/\.0$//') |"
    echo
    # what the 4 KiB prompt adds over the small one (whose answer is the
    # same): the check of the prompt's text alone
    awk -v a="$(cg_get g_guard_4k)" -v b="$(cg_get g_gateway_4k)" \
        -v c="$(cg_get g_guard)" -v d="$(cg_get gateway)" \
        -v n="$(( $(wc -c < "$prefix/chat4k.json") - $(wc -c < "$prefix/chat.json") ))" \
        'BEGIN {
        x = (a - b) - (c - d)
        printf "The 4 KiB row adds %.0f instructions more than the small one, whose\n", x
        printf "answer is the same: the check of %d more bytes of prompt, %.0f a byte\n", n, x / n
        printf "(20 rules, each scanning the text: PCRE2'"'"'s JIT code is most of it).\n"
        printf "Time is not derived from these: the CPU time of the rows above\n"
        printf "includes the kernel'"'"'s network work, which callgrind does not count.\n"
    }'
}


held_rows() {
    while read -r name rb ro pb po ra; do
        case $name in
        gateway) label='gateway (nginx worker)' ;;
        proxy)   label='nginx proxy_pass (nginx worker)' ;;
        portkey) label='Portkey (node process)' ;;
        esac
        echo "| $label | $(mib "$rb") | $(mib "$ro") | $(per_stream "$rb" "$ro") | $(per_stream "$pb" "$po") | $(mib "$ra") |"
    done < "$hrows"
}

tool_rows() {
    (cd "$top" && TEST_NGINX_BINARY=$nginx \
        TEST_NGINX_LOAD_MODULES="/usr/lib/nginx/modules/ngx_http_echo_module.so /usr/lib/nginx/modules/ngx_http_js_module.so $module" \
        perl -I"$top/t/lib" "$top/bench/tool_messages.pl")
}

profile_section() {
    if [ ! -s "$profile" ]; then
        echo "No profile: perf is missing or was turned off (BENCH_PROFILE=0)."
        return
    fi
    echo "\`perf record -e cpu-clock\` of the worker for ${short_secs} s of the gateway row"
    echo "(flat, self time; /usr/sbin/nginx is stripped, so static nginx functions"
    echo "show as addresses)."
    echo
    echo "| share | in |"
    echo "|------:|----|"
    awk 'NF >= 2 { printf "| %s | %s |\n", $1, $2 }' "$prefix/perf.dso"
    echo
    echo "| share | in | function |"
    echo "|------:|----|----------|"
    awk 'NF >= 4 { s = $4; for (i = 5; i <= NF; i++) s = s " " $i
                   printf "| %s | %s | `%s` |\n", $1, $2, s }' \
        "$prefix/perf.sym" | head -25
    echo
    echo "Inside the module (share of all samples):"
    echo
    echo "| share | function |"
    echo "|------:|----------|"
    awk 'NF >= 3 { s = $3; for (i = 4; i <= NF; i++) s = s " " $i
                   printf "| %s | `%s` |\n", $1, s }' \
        "$prefix/perf.module" | head -20
}

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
marker='<!-- Everything below this line is written by hand; bench/run.sh keeps it. -->'
notes=$prefix/notes.md
if grep -q "^$marker" "$top/bench/RESULTS.md" 2>/dev/null; then
    # (the marker has a "/": no sed address)
    awk -v m="$marker" 'kept { print } $0 == m { kept = 1 }' \
        "$top/bench/RESULTS.md" > "$notes"
else
    printf '\n## Findings\n\n(none yet)\n' > "$notes"
fi

unloaded_diff=$(diff_us "$(get gateway 6)" "$(get proxy 6)")
loaded_diff=$(diff_us "$(get gateway 3)" "$(get proxy 3)")

cat > "$top/bench/RESULTS.md" <<MD
# Benchmark results

\`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), Linux
$(uname -r), nginx $("$nginx" -v 2>&1 | sed 's#.*/##'), Node $(node -v),
wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), Portkey gateway
$(node -p "require('$top/bench/portkey/node_modules/@portkey-ai/gateway/package.json').version")
with @hono/node-server
$(node -p "require('$top/bench/portkey/node_modules/@hono/node-server/package.json').version").

## Method

- Everything on loopback. The mock provider is an nginx of its own (one
  worker): \`return 200\` of a fixed chat completion, and for streams the
  echo module: a role event, $chunks content events ${gap} s apart, the
  finish and usage events and \`[DONE]\`.
- What is measured runs as **one process each**: one nginx worker serves
  the proxy_pass and every gateway row (\`worker_processes 1\`); Portkey is
  one Node process (Node runs JavaScript on one thread). With two cores,
  wrk (one thread), the measured process and the mock share the machine,
  so requests/s is whichever of them saturates first; **CPU µs/request**
  (user + system time of the measured process, all threads, from
  /proc/PID/stat, divided by the requests served) is the cost that does
  not depend on that: 1,000,000 / it is what one core could serve.
- Non-streaming: wrk, 1 thread, $conns connections, ${secs} s after a 1 s
  warm-up; then 1 connection for $(( (secs + 2) / 3 )) s for the latency of
  a request alone (no queueing: the added latency target is read there).
  The request is a $(wc -c < "$prefix/chat.json")-byte chat completion.
- The gateway row: a gateway key (\`llm_key\` with rpm, tpm and a budget)
  in a team with rpm, tpm, parallel and a budget, all checked and charged
  on every request in the \`llm_zone\`; a route with input and output
  prices, so that cost is computed; metrics on. The cache row adds
  \`proxy_cache\` and \`llm_cache deterministic\` to a location and sends
  the same request with temperature 0, stored by one request before.
  proxy_pass and the gateway share one keepalive pool to the mock.
- Portkey: \`@portkey-ai/gateway\` started from its package
  (\`build/start-server.js --headless\`, NODE_ENV=production), with
  \`x-portkey-provider: openai\` and \`x-portkey-custom-host\` pointing at
  the mock.
- Streaming: bench/sse.mjs, $streams concurrent clients for
  ${stream_secs} s after a 1 s warm-up; time to the first \`data:\` event
  and to \`data: [DONE]\`.
- The machine's load average (1, 5, 15 min) was $load_start when the run
  began and $load_end when it ended; anything else running on the two
  cores shows in requests/s and latency far more than in CPU µs/request.
- Before measuring, every path is checked to reach the mock, streamed and
  not (the gateway by its x-llm-provider header, Portkey by the mock's
  answer in its own, the cache by MISS then HIT).

## Non-streaming

| path | requests/s | p50 ms | p99 ms | CPU µs/request | p50 ms, 1 conn | p99 ms, 1 conn |
|------|-----------:|-------:|-------:|---------------:|---------------:|---------------:|
$(table_rows "$rows")

- gateway / proxy_pass: throughput **$(ratio "$g_rps" "$p_rps")**, CPU per
  request $(ratio "$g_cpu" "$p_cpu") ($(awk -v a="$g_cpu" -v b="$p_cpu" 'BEGIN { printf "%+.1f", a - b }') µs), p50 with
  one connection **$unloaded_diff µs**, p50 loaded $loaded_diff µs, p99
  $(ratio "$(get gateway 4)" "$(get proxy 4)")×
- gateway / Portkey: throughput **$(ratio "$g_rps" "$k_rps")×**, CPU per
  request $(ratio "$k_cpu" "$g_cpu")× less, p50 with one connection
  $(ratio "$(get portkey 6)" "$(get gateway 6)")× lower
- cache hit / proxy_pass: throughput $(ratio "$(get cache 2)" "$p_rps")
- what a provider's \`keepalive\` saves: the gateway row (a pool) against
  the same provider without one, throughput $(ratio "$g_rps" "$(get unpooled 2)")×, $(awk -v a="$(get unpooled 5)" -v b="$g_cpu" 'BEGIN { printf "%+.1f", a - b }') µs of
  CPU a request without
- what keys and accounting cost: the gateway row against routing only,
  $(awk -v a="$g_cpu" -v b="$(get open 5)" 'BEGIN { printf "%+.1f", a - b }') µs of CPU a request

## Paired rounds

The throughput targets' paths again, $short_secs s each with $conns
connections, one after the other in each round (the order reversed
every other round), so that whatever else the machine does falls on
all of them alike; a ratio is taken within its round. The targets below
read the median of the rounds (and the range), beside the single rows
above.

| round | proxy_pass | gateway | routing only | cache hit | plain nginx cache hit | gateway / proxy_pass | routing only / proxy_pass | cache hit / proxy_pass | cache hit / plain hit |
|------:|-----------:|--------:|-------------:|----------:|----------------------:|------:|------:|------:|------:|
$(paired_rows)

## Targets

| target | measured | |
|--------|----------|-|
| throughput ≥ 90 % of proxy_pass | $(paired_text gateway); its row $(awk -v a="$g_rps" -v b="$p_rps" 'BEGIN { printf "%.0f %%", a / b * 100 }') (CPU: $(awk -v a="$g_cpu" -v b="$p_cpu" 'BEGIN { printf "%.0f %%", b / a * 100 }')) | $(met "$(paired gateway | cut -d' ' -f1)" 0.90) |
| CPU ≤ +4 µs a request over proxy_pass | $(awk -v a="$g_cpu" -v b="$p_cpu" 'BEGIN { printf "%+.1f", a - b }') µs | $(met "$(awk -v a="$g_cpu" -v b="$p_cpu" 'BEGIN { printf "%.1f", a - b }')" 4 le) |
| added p50 ≤ 50 µs over proxy_pass | $unloaded_diff µs (1 connection) | $(met "$unloaded_diff" 50 le) |
| ≥ 30× Portkey's throughput | $(ratio "$g_rps" "$k_rps")× | $(met "$(ratio "$g_rps" "$k_rps")" 30) |
$(issue_targets)
$(cg_targets)

## Streaming

| path | streams/s | TTFT p50 ms | TTFT p99 ms | total p50 ms | total p99 ms | CPU µs/stream |
|------|----------:|------------:|------------:|-------------:|-------------:|--------------:|
$(stream_rows "$srows")

## Guardrails

The gateway row's server with a guard policy of 20 rules
(\`llm_guard bench\` in bench/nginx.conf.in): the 12 built-in detectors
as \`redact\`, and 8 patterns of common kinds (3 \`deny\`, 3 \`redact\`,
2 \`log\`); none matches the bench's texts (checked before measuring:
every \`llm_guard_hits_total\` of the policy is 0). The request is a
$(wc -c < "$prefix/chat4k.json")-byte chat completion, four messages of prose
(bench/prompt4k.json), compared with the same request to the gateway
without the policy. Its \`redact\` and \`log\` rules read answers too, so
a guarded answer is decoded and encoded again even in the provider's own
API, streamed or not: that cost is in these rows. wrk as above
(${secs} s, $conns connections, then one), streams as above ($streams
clients, ${stream_secs} s).

| path | requests/s | p50 ms | p99 ms | CPU µs/request | p50 ms, 1 conn | p99 ms, 1 conn |
|------|-----------:|-------:|-------:|---------------:|---------------:|---------------:|
$(table_rows "$grows")

- the policy on the 4 KiB conversation: CPU $(sub_us "$(gget guard_4k 5)" "$(gget gateway_4k 5)") µs a
  request, p50 with one connection $(diff_us "$(gget guard_4k 6)" "$(gget gateway_4k 6)") µs
- on the small request (the answer is the same):
  CPU $(sub_us "$(gget guard 5)" "$g_cpu") µs against the gateway row

| path | streams/s | TTFT p50 ms | TTFT p99 ms | total p50 ms | total p99 ms | CPU µs/stream |
|------|----------:|------------:|------------:|-------------:|-------------:|--------------:|
$(stream_rows "$gsrows")

- the policy on a streamed answer, one client: TTFT p50
  $(sub_ms "$(gsget guard_4k_1 3)" "$(gsget gateway_4k_1 3)") ms, \`[DONE]\` p50 $(sub_ms "$(gsget guard_4k_1 5)" "$(gsget gateway_4k_1 5)") ms; $streams clients: TTFT
  p50 $(sub_ms "$(gsget guard_4k 3)" "$(gsget gateway_4k 3)") ms, p99 $(sub_ms "$(gsget guard_4k 4)" "$(gsget gateway_4k 4)") ms, \`[DONE]\` p50 $(sub_ms "$(gsget guard_4k 5)" "$(gsget gateway_4k 5)") ms (queueing
  behind the other streams' added CPU); CPU $(sub_us "$(gsget guard_4k 7)" "$(gsget gateway_4k 7)") µs a stream (the
  prompt's check included)
- TTFT is the first \`data:\` event, the role's. The mock's tokens are
  \`tokN \`: a number could still grow into a phone or card number, so
  each token's number and space are held until the next event
  (${gap} s later) and go out with its \`tok\`; the last at the finish.

Instructions (callgrind, as in its section below):

$(guard_cg)

| target (issue 16) | measured | |
|--------|----------|-|
$(guard_targets)

## Request body size

wrk, $conns connections, ${short_secs} s a row; the user message padded.

| body | proxy_pass req/s | p50 ms | p99 ms | CPU µs | gateway req/s | p50 ms | p99 ms | CPU µs | gateway / proxy_pass | added CPU µs |
|-----:|------:|------:|------:|------:|------:|------:|------:|------:|------:|------:|
$(body_rows)

With nginx's default \`client_body_buffer_size\` (16k), a 32 KiB body is
kept in a temporary file; one connection, ${short_secs} s. proxy_pass
sends it upstream in pieces that meet delayed ACKs; the gateway sends a
spilled body up to 256 KiB from one buffer.

| path | requests/s | p50 ms | p99 ms | CPU µs/request |
|------|-----------:|-------:|-------:|---------------:|
| nginx proxy_pass | $(echo "$stall_p" | awk '{ print $1 " | " $2 " | " $3 " | " $4 }') |
| gateway | $(echo "$stall_g" | awk '{ print $1 " | " $2 " | " $3 " | " $4 }') |

## Routes and keys configured

N routes (\`scale-00001\` ...) and N keys in an \`llm_keys_file\`, on top of
the main configuration; wrk cycles through all N keys and routes, request
i with key i and route i, so the zone holds N key meters and N series.
Each N is measured the same way, just after a reload. The target reads
paired rounds instead (below the table): in the configuration of
10,000, wrk cycling through all 10,000 keys and routes against wrk
sending one of them, alternated with no reload between ($paired_rounds
rounds, the ratio within each, the median). Instructions a request
for N = 1 and 10,000 are in the callgrind section: they do not move
with the machine's load, as these rows do.
${short_secs} s a row, $conns connections. RSS: the worker after the run;
start: seconds until nginx has read the configuration and started.

| N | requests/s | p50 ms | p99 ms | CPU µs/request | worker RSS MiB | start s |
|--:|-----------:|-------:|-------:|---------------:|---------------:|-----------:|
$(scale_rows)

$(scale_paired_rows)

## Streams held open

$held slow streams (an event every 0.5 s) opened at once and held; the
memory of the measured process before (after a few streams), while all
are open, and a second after they are closed.

| path | RSS before MiB | RSS open MiB | RSS KiB/stream | Pss KiB/stream | RSS after MiB |
|------|---------------:|-------------:|---------------:|---------------:|--------------:|
$(held_rows)

## Translation of tool messages

Requests of 2,000 and 20,000 tool results (each after the assistant turn
that called the tool) translated for each dialect: the worker's CPU per
request, per tool message. Linear translation keeps the last column flat
between the sizes (Gemini's was quadratic before 0.2.0: 982 µs per
message at 20,000, 19.6 s for the request).

$(tool_rows)

## Instructions per request (callgrind)

The worker under \`valgrind --tool=callgrind\`, one connection, each path
in turn after a warm-up; instructions counted between two dumps and
divided by the requests wrk completed. Unlike time, this does not move
with the machine's load. Valgrind's CPU has no SHA extensions, so
OpenSSL's SHA-256 runs its plain code here: rows that hash (keys, the
cache key) count more instructions than the real CPU spends time on.

$(callgrind_table)

## Profile

$(profile_section)

$marker
MD
cat "$notes" >> "$top/bench/RESULTS.md"

sed -n '/^## Non-streaming/,/^## Profile/p' "$top/bench/RESULTS.md" | sed '$d'
echo "written to bench/RESULTS.md"
