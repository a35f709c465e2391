#!/bin/sh
# Runs block files of t/ under openresty's own Test::Nginx, to check that
# they stay valid for it (docs/testing.md). Its lib/ directory is not
# shipped here: fetch openresty/test-nginx and name its lib/.
#
#   scripts/real-test-nginx.sh /path/to/test-nginx/lib t/010-chat.t ...
#
# Needs liblist-moreutils-perl, libtest-longstring-perl, libipc-run-perl
# and a built module (make). Ports: TEST_NGINX_PORT (3984) and the two
# after it for the mocks.

set -eu

lib=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
port=${TEST_NGINX_PORT:-3984}

# our LLM:: fixtures, without our Test::Nginx (it would shadow the real one)
llmlib=$(mktemp -d)
trap 'rm -rf "$llmlib"' EXIT
ln -s "$top/t/lib/LLM" "$llmlib/LLM"

cd "$top"
# --norc: .proverc puts t/lib, our own Test::Nginx, first
TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx} \
TEST_NGINX_LOAD_MODULES="/usr/lib/nginx/modules/ngx_http_echo_module.so /usr/lib/nginx/modules/ngx_http_js_module.so $top/build/ngx_http_llm_module.so" \
TEST_NGINX_PORT=$port TEST_NGINX_MOCK_PORT=$((port + 1)) \
TEST_NGINX_MOCK2_PORT=$((port + 2)) \
prove --norc -I"$lib" -I"$llmlib" "$@"
