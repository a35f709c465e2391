# Helpers of bench/run.sh (POSIX sh, sourced): processes, measurements,
# arithmetic. Expects $prefix, $top, $nginx, $secs, $conns to be set.

# --- processes ---------------------------------------------------------------

# nginx -p $prefix -c <conf>; its pid file is <name>.pid in $prefix/logs.
# The mock is Debian's nginx whatever NGINX_BIN says: it loads Debian's
# echo module, built for that nginx alone.
nginx_start() {
    if [ "$1" = mock ]; then
        /usr/sbin/nginx -p "$prefix" -c "$prefix/$1.conf"
    else
        "$nginx" -p "$prefix" -c "$prefix/$1.conf"
    fi
}

# fast shutdown (TERM: held streams must not keep it alive), then wait
nginx_stop() {
    pidfile=$prefix/logs/$1.pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    rm -f "$pidfile"
}

# the worker process of the nginx whose pid file is <name>.pid (not the
# cache manager or loader)
nginx_worker() {
    i=0
    while [ $i -lt 100 ]; do
        w=$(ps -o pid= -o args= --ppid "$(cat "$prefix/logs/$1.pid")" \
            | awk '/worker process/ { print $1; exit }')
        [ -n "$w" ] && { echo "$w"; return 0; }
        sleep 0.05
        i=$((i + 1))
    done
    echo "no worker process for $1" >&2
    return 1
}

# kill a background process by the pid in a file, and wait for it
pid_stop() {
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$1"
}

port_free() {
    ! ss -Hltn "sport = :$1" | grep -q .
}

# until the URL answers 200 to the POST of a body file (bounded)
wait_ok() {
    i=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "@$3" \
               --data-binary "@$2" "$1")" = 200 ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "$1 does not answer 200" >&2; return 1; }
        sleep 0.05
    done
}

# --- what a process uses -----------------------------------------------------

# CPU time in clock ticks (user + system, all threads)
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

pss_kib() {
    awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"
}

hz=$(getconf CLK_TCK)

# --- wrk ---------------------------------------------------------------------

# ms from wrk's "1.23ms" / "456.00us" / "1.01s"
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

# wrk_run URL CONNECTIONS SECONDS PID [name]: a 1 s warm-up, then the
# measurement. Prints "requests/s p50_ms p99_ms cpu_us_per_request" where
# the CPU is that of process PID (the one serving) during the measurement.
# BENCH_BODY, BENCH_HEADERS and BENCH_SCALE are passed to post.lua.
wrk_run() {
    out=$prefix/wrk.${5:-run}.txt
    wrk -t1 -c"$2" -d1s -s "$top/bench/post.lua" "$1" >/dev/null
    t0=$(cpu_ticks "$4")
    wrk -t1 -c"$2" -d"${3}s" --latency -s "$top/bench/post.lua" "$1" > "$out"
    t1=$(cpu_ticks "$4")

    requests=$(awk '/ requests in / { n = $1 } END { print n + 0 }' "$out")
    bad=$(awk '/^  Non-2xx/ { n += $NF }
               /^  Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
               END { print n + 0 }' "$out")
    # a row that fails is not a measurement: stop with what wrk said
    if [ "$requests" -eq 0 ] || [ $((bad * 100)) -gt "$requests" ]; then
        echo "wrk $1: $bad of $requests requests failed" >&2
        cat "$out" >&2
        return 1
    fi

    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$requests" \
          'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    echo "$rps $p50 $p99 $cpu"
}

# sse_run URL BODY HEADERS PID: streams for $stream_secs after a 1 s
# warm-up. Prints "streams/s ttft_p50 ttft_p99 total_p50 total_p99
# cpu_us_per_stream".
sse_run() {
    sse="node $top/bench/sse.mjs --url $1 --body $2 --headers $3"
    pid=$4
    $sse --concurrency "$streams" --duration 1 >/dev/null
    t0=$(cpu_ticks "$pid")
    out=$($sse --concurrency "$streams" --duration "$stream_secs")
    t1=$(cpu_ticks "$pid")
    set -- $out
    if [ "$1" -eq 0 ] || [ $(($2 * 100)) -gt "$1" ]; then
        echo "sse $url: $2 of $(($1 + $2)) streams failed" >&2
        return 1
    fi
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$1" \
          'BEGIN { printf "%.0f", d / hz * 1e6 / n }')
    echo "$3 $4 $5 $6 $7 $cpu"
}

# held_run URL BODY HEADERS PID: memory of process PID before, while
# and after $held slow streams are open through it. Prints "rss_before
# rss_open pss_before pss_open rss_after" in KiB.
held_run() {
    sse="node $top/bench/sse.mjs --url $1 --body $2 --headers $3"
    pid=$4
    ready=$prefix/held.ready
    rm -f "$ready"
    # a few streams first, so that what is allocated once is in "before"
    $sse --concurrency 10 --hold 0 --ready "$ready" >/dev/null
    rm -f "$ready"
    sleep 1
    rb=$(rss_kib "$pid") pb=$(pss_kib "$pid")

    $sse --concurrency "$held" --hold 3 --ready "$ready" \
        > "$prefix/held.out" &
    echo $! > "$prefix/held.pid"
    i=0
    until [ -s "$ready" ]; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$(cat "$prefix/held.pid")" 2>/dev/null
        then
            echo "held streams did not open through $url" >&2
            return 1
        fi
        sleep 0.05
    done
    ro=$(rss_kib "$pid") po=$(pss_kib "$pid")
    wait "$(cat "$prefix/held.pid")" || true
    rm -f "$prefix/held.pid"
    sleep 1
    echo "$rb $ro $pb $po $(rss_kib "$pid")"
}

# --- arithmetic for the report -----------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f", (a - b) * 1000 }'; }
per_stream() {
    awk -v a="$1" -v b="$2" -v n="$held" 'BEGIN { printf "%.1f", (b - a) / n }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# "met" when A >= B (or A <= B with "le")
met() {
    awk -v a="$1" -v b="$2" -v op="${3:-ge}" 'BEGIN {
        ok = (op == "le") ? a <= b : a >= b
        print ok ? "**met**" : "**not met**" }'
}

# --- callgrind: instructions per request -------------------------------------

# cache_geometry LEVEL: "size,associativity,line" of this CPU's data (or
# unified) cache of that level, as valgrind's --D1 and --LL take it;
# 1 MiB, 16-way, 64-byte lines when sysfs does not say
cache_geometry() {
    for d in /sys/devices/system/cpu/cpu0/cache/index*; do
        [ "$(cat "$d/level" 2>/dev/null)" = "$1" ] || continue
        [ "$(cat "$d/type")" = Instruction ] && continue
        size=$(sed 's/K$//' "$d/size")
        echo "$((size * 1024)),$(cat "$d/ways_of_associativity"),$(cat "$d/coherency_line_size")"
        return
    done
    if [ "$1" = 1 ]; then echo 32768,8,64; else echo 1048576,16,64; fi
}

# cg_start CONF: nginx under callgrind, one process (no master), nothing
# counted until cg_run zeroes and turns instrumentation on.
cg_start() {
    mkdir -p "$prefix/cg"
    # shellcheck disable=SC2086 # cg_opts: options, one word each
    valgrind --tool=callgrind --instr-atstart=no --trace-children=yes \
        ${cg_opts:-} --callgrind-out-file="$prefix/cg/out.%p" \
        --log-file="$prefix/logs/callgrind.log" \
        "$nginx" -p "$prefix" -c "$prefix/$1.conf" -g 'master_process off;'
    i=0
    until [ -s "$prefix/logs/$1.pid" ] && kill -0 "$(cat "$prefix/logs/$1.pid")" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "nginx under callgrind did not start" >&2; return 1; }
        sleep 0.05
    done
    cat "$prefix/logs/$1.pid"
}

# cg_stop PID: valgrind writes its last dump on the way out; wait for it
cg_stop() {
    kill -TERM "$1" 2>/dev/null || true
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 1200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null || true
    rm -f "$prefix/logs/nginx.pid"
}

# cg_run URL BODY HEADERS PID: instructions executed by process PID per
# request, over a run of 1 connection; a warm-up first (caches, keepalive
# connections, the zone's entries). Deterministic, unlike time on a shared
# machine. Prints "instructions requests", and with a cache simulated
# (cg_opts="--cache-sim=yes ...") the data reads and writes that missed
# the first level and the last a request, and the instruction fetches
# that missed the first level: "... d1-misses ll-misses i1-misses".
cg_run() {
    export BENCH_BODY=$2 BENCH_HEADERS=$3
    wrk -t1 -c1 -d2s -s "$top/bench/post.lua" "$1" > /dev/null
    callgrind_control -i on "$4" > /dev/null 2>&1
    callgrind_control -z "$4" > /dev/null 2>&1
    wrk -t1 -c1 -d"${cg_secs:-4}s" -s "$top/bench/post.lua" "$1" \
        > "$prefix/cg/wrk.txt"
    callgrind_control -d "$4" > /dev/null 2>&1
    callgrind_control -i off "$4" > /dev/null 2>&1
    requests=$(awk '/ requests in / { n = $1 } END { print n + 0 }' \
               "$prefix/cg/wrk.txt")
    bad=$(awk '/^  Non-2xx/ { n += $NF } END { print n + 0 }' \
          "$prefix/cg/wrk.txt")
    if [ "$requests" -eq 0 ] || [ "$bad" -gt 0 ]; then
        echo "callgrind run of $1: $bad of $requests requests failed" >&2
        return 1
    fi
    # the newest dump of that process
    dump=$(ls -t "$prefix/cg/out.$4".* | head -1)
    awk -v n="$requests" '
        /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
        /^(summary|totals):/ { ir = $2; d1 = $(col["D1mr"]) + $(col["D1mw"])
                               ll = $(col["DLmr"]) + $(col["DLmw"])
                               i1 = $(col["I1mr"]) }
        END { printf "%.0f %d", ir / n, n
              if (col["DLmr"]) printf " %.1f %.1f %.1f", d1 / n, ll / n, i1 / n
              printf "\n" }' "$dump"
}
