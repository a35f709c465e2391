# The cache key's digest of a body is computed only for requests that
# may be cached: with "llm_cache deterministic", a request with a
# temperature above 0 (or "x-llm-cache: off") is not digested at all, and
# one with temperature 0 is, once, even when it is tried on two targets.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    proxy_cache_path llm_cache keys_zone=llm:1m;
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
    }
    llm_route m { target mock; }
    llm_route twice { target dead; target mock; strategy ordered; }
    llm_auth off;
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache deterministic;
    }
CONF
);

# an object of 6,000 members: its key's member list outgrows
# "llm_request_memory 1x"
our $WIDE_BODY = '{"model":"m","temperature":0,"messages":[{"role":"user",'
    . '"content":"wide"}],"metadata_wide":{'
    . join(',', map { sprintf '"k%05d":%d', $_, $_ } 1 .. 6000) . '}}';

run_tests();

__DATA__

=== TEST 1: a temperature above 0: not cacheable, no digest
--- request
POST /v1/chat/completions
{"model":"m","temperature":0.7,"messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-cache: BYPASS
--- no_error_log
llm cache: the body's digest



=== TEST 2: temperature 0: cacheable, digested
--- request eval
# a new question every run: the cache outlives the test
sprintf 'POST /v1/chat/completions
{"model":"m","temperature":0,"messages":[{"role":"user","content":"%020d"}]}',
    time * 100000 + $$
--- response_headers
x-llm-cache: MISS
--- error_log
llm cache: the body's digest, 91 bytes



=== TEST 3: temperature 0 but the client says no: no digest
--- more_headers
x-llm-cache: off
--- request
POST /v1/chat/completions
{"model":"m","temperature":0,"messages":[{"role":"user","content":"not me"}]}
--- response_headers
x-llm-cache: BYPASS
--- no_error_log
llm cache: the body's digest



=== TEST 4: digested once for two attempts
--- request eval
sprintf 'POST /v1/chat/completions
{"model":"twice","temperature":0,"messages":[{"role":"user","content":"%020d"}]}',
    time * 100000 + $$
--- response_headers
x-llm-cache: MISS
x-llm-provider: mock
--- grep_error_log eval
qr/llm cache: the body's digest/
--- grep_error_log_out
llm cache: the body's digest



=== TEST 5: "llm_cache on": the digest is fed in the request's own scan, no second pass
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache on;
    }
--- request eval
sprintf 'POST /v1/chat/completions
{"model":"twice","temperature":0.7,"messages":[{"role":"user","content":"%020d"}]}',
    time * 100000 + $$
--- response_headers
x-llm-cache: MISS
x-llm-provider: mock
--- grep_error_log eval
qr/llm cache: the body's digest[^,]*, \d+ bytes[^"\n]*/
--- grep_error_log_out eval
qr/\Allm cache: the body's digest, \d+ bytes, in the request's scan\n\z/



=== TEST 6: "llm_cache on", the client says no: no digest at all
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache on;
    }
--- more_headers
x-llm-cache: off
--- request
POST /v1/chat/completions
{"model":"m","temperature":0.7,"messages":[{"role":"user","content":"not me either"}]}
--- response_headers
x-llm-cache: BYPASS
--- no_error_log
llm cache: the body's digest



=== TEST 7: a key digested in the scan is the key of a pass of its own: "on" hits what "deterministic" stored
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache deterministic;
    }
    location /on/v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache on;
    }
--- request eval
my $q = sprintf '{"model":"m","temperature":0,"stop":["\\u00e9t\\u00e9",'
              . '"%s"],"messages":[{"role":"user","content":"%020d"}]}',
                'x' x 300, time * 100000 + $$;
["POST /v1/chat/completions\n$q", "POST /on/v1/chat/completions\n$q"]
--- response_headers eval
["x-llm-cache: MISS", "x-llm-cache: HIT"]
--- grep_error_log eval
qr/llm cache: the body's digest[^,]*, \d+ bytes[^"\n]*/
--- grep_error_log_out eval
qr/\Allm cache: the body's digest, \d+ bytes
llm cache: the body's digest, \d+ bytes, in the request's scan\n\z/



=== TEST 8: a key that would take more than llm_request_memory: the request is answered, not cached (a pass of its own)
--- config
    location /v1/ {
        llm_request_memory 1x;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache deterministic;
    }
--- request eval
"POST /v1/chat/completions\n$main::WIDE_BODY"
--- error_code: 200
--- response_headers
x-llm-cache: BYPASS
--- error_log
this request's cache key would take more memory than llm_request_memory allows: not cached



=== TEST 9: the same with "llm_cache on": the digest of the scan is dropped, not the request
--- config
    location /v1/ {
        llm_request_memory 1x;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 1m;
        llm_cache on;
    }
--- request eval
"POST /v1/chat/completions\n$main::WIDE_BODY"
--- error_code: 200
--- response_headers
x-llm-cache: BYPASS
--- error_log
this request's cache key would take more memory than llm_request_memory allows: not cached
--- no_error_log
in the request's scan
