# Routing strategies that one request shows: ordered takes the first
# target, weighted the heaviest first, cost the cheapest for this request
# (by input= and output= prices, the prompt's size and max_tokens), with
# failover in order of price and unpriced targets last.
#
# Sequences over many requests (weighted's exact order, latency) and the
# breaker's effect on ordered are in t/111-strategies-balance.t.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log gateway;
    }
CONF
);

add_block_preprocessor(sub {
    my $block = shift;
    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => <<'CONF' . $http);
    log_format gateway '$status attempts=$llm_attempts provider=$llm_provider '
                       'target=$llm_target_model upstream=[$upstream_status]';
CONF
});

run_tests();

__DATA__

=== TEST 1: ordered (the default): the first target serves
--- http_config
    llm_provider one   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider two   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider three { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target one   m-one;
        target two   m-two   input=0.01 output=0.01 weight=1000;
        target three m-three;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: one
x-llm-model: m-one
x-llm-attempts: 1
--- response_body_like: "model":"m-one"
--- access_log eval
[qr/^200 attempts=1 provider=one target=m-one upstream=\[200\]$/m]



=== TEST 2: weighted: the heaviest target gets the first request
--- http_config
    llm_provider light { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider heavy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy weighted;
        target light weight=1;
        target heavy weight=3;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: heavy
x-llm-attempts: 1



=== TEST 3: cost: the cheapest target serves, wherever it is listed
--- http_config
    llm_provider pricey { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider cheap  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider mid    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target pricey m-pricey input=10    output=30;
        target mid    m-mid    input=2.50  output=10;
        target cheap  m-cheap  input=0.15  output=0.60;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: cheap
x-llm-model: m-cheap
x-llm-attempts: 1
--- response_body_like: "model":"m-cheap"



=== TEST 4: cost: a short answer (max_tokens 1) makes the cheap-input target cheaper
--- http_config
    llm_provider cheap_in  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider cheap_out { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target cheap_out input=100 output=1;
        target cheap_in  input=1   output=100;
    }
--- request
POST /v1/chat/completions
{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: cheap_in



=== TEST 5: cost: without max_tokens the answer counts as 256 tokens: cheap output wins
--- http_config
    llm_provider cheap_in  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider cheap_out { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target cheap_in  input=1   output=100;
        target cheap_out input=100 output=1;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: cheap_out



=== TEST 6: cost: a long prompt makes the cheap-input target cheaper again
--- http_config
    llm_provider cheap_in  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider cheap_out { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target cheap_out input=100 output=1;
        target cheap_in  input=1   output=100;
    }
--- request eval
# 40000 bytes of prompt: about 10000 tokens, against 256 for the answer
"POST /v1/chat/completions\n"
. '{"model":"m","messages":[{"role":"user","content":"' . ('w' x 40000) . '"}]}'
--- response_headers
x-llm-provider: cheap_in



=== TEST 7: cost: when the cheapest fails, the next cheapest, in order of price
--- http_config
    llm_provider unpriced { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider pricey   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider mid      { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider cheap    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_route m {
        strategy cost;
        target unpriced m-unpriced;
        target pricey   m-pricey input=10   output=30;
        target mid      m-mid    input=2.50 output=10;
        target cheap    m-cheap  input=0.15 output=0.60;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: pricey
x-llm-model: m-pricey
x-llm-attempts: 3
--- access_log eval
[qr/^200 attempts=3 provider=pricey target=m-pricey upstream=\[500 : 503 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+/
--- grep_error_log_out
llm: provider "cheap" failed with 500
llm: provider "mid" failed with 503



=== TEST 8: cost: unpriced targets come last, even listed first
--- http_config
    llm_provider unpriced { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider pricey   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=502/v1; }
    llm_provider cheap    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_route m {
        strategy cost;
        target unpriced m-unpriced;
        target pricey   m-pricey input=10   output=30;
        target cheap    m-cheap  input=0.15 output=0.60;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: unpriced
x-llm-attempts: 3
--- access_log eval
[qr/^200 attempts=3 provider=unpriced target=m-unpriced upstream=\[500 : 502 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+/
--- grep_error_log_out
llm: provider "cheap" failed with 500
llm: provider "pricey" failed with 502



=== TEST 9: cost: equal prices go in configuration order
--- http_config
    llm_provider first  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider second { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider pricey { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target pricey input=5 output=5;
        target first  input=1 output=2;
        target second input=1 output=2;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: first



=== TEST 10: cost: with no prices at all, configuration order
--- http_config
    llm_provider first  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider second { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        strategy cost;
        target first;
        target second;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: second
x-llm-attempts: 2
--- access_log eval
[qr/^200 attempts=2 provider=second target=m upstream=\[503 : 200\]$/m]



=== TEST 11: weighted skips a disabled provider, whatever its weight
--- http_config
    llm_provider absent {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route w {
        strategy weighted;
        target absent  weight=100;
        target healthy weight=1;
    }
--- request
POST /v1/chat/completions
{"model":"w","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: healthy
x-llm-attempts: 1



=== TEST 12: cost skips a disabled provider, however cheap
--- http_config
    llm_provider absent {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route c {
        strategy cost;
        target absent  input=0.01 output=0.01;
        target healthy input=5    output=5;
    }
--- request
POST /v1/chat/completions
{"model":"c","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: healthy
x-llm-attempts: 1
