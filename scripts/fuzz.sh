#!/bin/sh
# make fuzz: builds nginx with the module compiled in by clang-14 under
# libFuzzer, AddressSanitizer and UBSan, links every harness of fuzz/
# against it, and runs each one.
#
#   scripts/fuzz.sh [seconds per harness] [harness ...]
#   scripts/fuzz.sh short [harness ...]
#
# "short" (make fuzz-short, part of make test) is reproducible: a fixed
# seed, the seeds of fuzz/corpus/ only and the number of inputs of
# fuzz/short-runs for each harness, so that make test does not pass or
# fail by chance.
#
# First every input of fuzz/regressions/<harness>/ is replayed (each was
# once a crash); then the harness runs for the given time (default 300)
# from the seeds of fuzz/corpus/<harness>/, with what earlier runs found
# in build/fuzz/corpus/<harness>/. A crash leaves its input in
# build/fuzz/crashes/<harness>/ and fails the run: add it to
# fuzz/regressions/<harness>/ once fixed.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-300}
[ $# -gt 0 ] && shift
build=$top/build/fuzz
cc=clang-14
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-g -O1 -fno-omit-frame-pointer $san -fsanitize=fuzzer-no-link"

harnesses=${*:-$(cd "$top/fuzz" && ls fuzz_*.c | sed 's/\.c$//')}

# nginx's full sources (nginx-dev has only its headers): the upstream
# tarball of Debian's nginx, from Debian's archive, checked

version=1.22.1
sha256=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31
src=${NGINX_FULL_SRC:-$build/nginx-$version}

if [ ! -f "$src/src/core/nginx.c" ]; then
    mkdir -p "$build"
    tarball=$build/nginx_$version.orig.tar.gz
    if [ ! -f "$tarball" ]; then
        # from the mirrors apt uses (and its proxy), then Debian's own
        proxy=$(apt-config dump Acquire::http::Proxy 2>/dev/null \
                | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
        mirrors=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* \
                      2>/dev/null \
                  | sed -n -e 's/^URIs: *//p' -e 's/^deb  *\(\[[^]]*\] *\)\{0,1\}\([^ ]*\) .*/\2/p' \
                  | tr ' ' '\n' | grep -v security | sort -u)
        for m in $mirrors http://deb.debian.org/debian; do
            if https_proxy=$proxy http_proxy=$proxy curl -sSf \
                   -o "$tarball.tmp" \
                   "$m/pool/main/n/nginx/nginx_$version.orig.tar.gz"
            then
                mv "$tarball.tmp" "$tarball"
                break
            fi
        done
        [ -f "$tarball" ] || { echo "fuzz: could not download nginx" \
                                    "$version's source; NGINX_FULL_SRC" \
                                    "can name a local copy" >&2; exit 1; }
    fi
    echo "$sha256  $tarball" | sha256sum -c --quiet
    tar xzf "$tarball" -C "$build"
fi

# nginx and the module, instrumented (rebuilt when a source changed)

stamp=$build/nginx/objs/nginx
if [ ! -f "$stamp" ] || [ -n "$(find "$top/config" "$top/ngx_http_llm_module" \
                                     -newer "$stamp" | head -1)" ]; then
    if [ ! -f "$build/nginx/objs/Makefile" ] \
       || [ "$top/config" -nt "$build/nginx/objs/Makefile" ] \
       || [ "$(cat "$build/nginx/.src" 2>/dev/null)" != "$src" ]; then
        rm -rf "$build/nginx"
        mkdir -p "$build/nginx"
        cp -a "$src"/. "$build/nginx"/
        (cd "$build/nginx" && ./configure --with-cc="$cc" \
             --with-cc-opt="$cflags" --with-ld-opt="$san -fsanitize=fuzzer-no-link" \
             --with-http_ssl_module --add-module="$top" >/dev/null)
        echo "$src" > "$build/nginx/.src"
    fi
    make -s -C "$build/nginx" -f objs/Makefile -j"$(nproc)" >/dev/null
fi

# nginx's objects without its main(): libFuzzer brings its own

objs=$build/objs.list
find "$build/nginx/objs" -name '*.o' ! -path '*/src/core/nginx.o' \
     ! -name 'fuzz_*' > "$objs"
incs="-Isrc/core -Isrc/event -Isrc/event/modules -Isrc/os/unix -Iobjs
      -Isrc/http -Isrc/http/modules"
libs=$(sed -n '/$(LINK) -o objs\/nginx/,/-Wl,-E/p' \
           "$build/nginx/objs/Makefile" | grep -o -- ' -l[^ ]*' | tr '\n' ' ')

if [ ! -f "$build/nginx_main.o" ] \
   || [ "$build/nginx/objs/nginx" -nt "$build/nginx_main.o" ]; then
    (cd "$build/nginx" && $cc $cflags -Dmain=ngx_fuzz_nginx_main \
         $incs -c src/core/nginx.c \
         -o "$build/nginx_main.o")
fi

status=0

for h in $harnesses; do
    bin=$build/$h
    # the harnesses are held to the module's warnings (nginx's own set)
    (cd "$build/nginx" && $cc $cflags -fsanitize=fuzzer \
         -W -Wall -Wpointer-arith -Wno-unused-parameter -Werror \
         $incs -I"$top/ngx_http_llm_module" \
         -I"$top/fuzz" "$top/fuzz/$h.c" "$build/nginx_main.o" \
         $(cat "$objs") $libs -o "$bin")

    mkdir -p "$build/corpus/$h" "$build/crashes/$h"

    if [ -d "$top/fuzz/regressions/$h" ] \
       && [ -n "$(ls -A "$top/fuzz/regressions/$h")" ]; then
        echo "fuzz: $h: replaying fuzz/regressions/$h"
        "$bin" -runs=0 "$top/fuzz/regressions/$h"/* >"$build/$h.replay.log" 2>&1 \
            || { cat "$build/$h.replay.log"; status=1; continue; }
    fi

    if [ "$secs" = short ]; then
        runs=$(sed -n "s/^$h  *//p" "$top/fuzz/short-runs")
        [ -n "$runs" ] || { echo "fuzz: $h is not in fuzz/short-runs"; exit 1; }
        corpus=$build/short/$h
        rm -rf "$corpus"
        mkdir -p "$corpus"
        bound="-seed=1 -runs=$runs"
        echo "fuzz: $h, $runs inputs from seed 1"
    else
        corpus=$build/corpus/$h
        bound="-max_total_time=$secs"
        echo "fuzz: $h for ${secs}s"
    fi

    # inputs up to FUZZ_MAX_LEN (1 MiB): deep nesting and amplification
    # need room
    if ! "$bin" $bound -timeout=10 -rss_limit_mb=2048 \
             -max_len="${FUZZ_MAX_LEN:-1048576}" \
             -print_final_stats=1 -artifact_prefix="$build/crashes/$h/" \
             "$corpus" "$top/fuzz/corpus/$h" \
             >"$build/$h.log" 2>&1; then
        tail -40 "$build/$h.log"
        echo "fuzz: $h failed; its input is in $build/crashes/$h/"
        status=1
    else
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
             "$build/$h.log" | tail -2 | sed "s/^/fuzz: $h: /"
    fi
done

exit $status
