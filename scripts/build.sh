#!/bin/bash
# Configures an nginx source tree for building ngx_http_llm_module as a
# dynamic module whose binary signature matches the nginx it is loaded in.
#
#   scripts/build.sh <nginx-src> <build-dir> [extra configure flags...]
#
# For Debian's nginx-dev tree the configure flags of the packaged nginx are
# in conf_flags; for another tree, the flags of the nginx binary given in
# $NGINX_BIN (nginx -V) are used, else --with-compat alone.

set -euo pipefail

src=$1
dir=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)

rm -rf "$dir"
mkdir -p "$dir"
cp -a "$src"/. "$dir"/

flags=()
if [ -f "$src/conf_flags" ]; then
    # shellcheck disable=SC1091
    . "$src/conf_flags"
    flags=("${NGX_CONF_FLAGS[@]}")
elif [ -n "${NGINX_BIN:-}" ] && [ -x "${NGINX_BIN}" ]; then
    eval "flags=($("$NGINX_BIN" -V 2>&1 | sed -n 's/^configure arguments: //p'))"
    # keep only flags that shape the binary interface
    keep=()
    for f in "${flags[@]}"; do
        case "$f" in
        --with-compat|--with-debug|--with-threads|--with-http_ssl_module|\
        --with-http_v2_module|--with-pcre*|--prefix=*|--modules-path=*)
            keep+=("$f") ;;
        esac
    done
    flags=("${keep[@]}")
else
    flags=(--with-compat)
fi

cd "$dir"
# a release tarball has ./configure; a checkout of nginx's repository has
# it in auto/
configure=./configure
[ -x "$configure" ] || configure=auto/configure
"$configure" "${flags[@]}" "$@" --add-dynamic-module="$top" >configure.log 2>&1 || {
    tail -40 configure.log
    exit 1
}
