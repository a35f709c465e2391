# What the gateway tells about its routing: the x-llm-* response headers,
# the $llm_ttfb, $llm_upstream_latency and $llm_overhead variables in an
# access log, and the llm_status page of a fresh nginx (the routes as
# configured). The status of targets after requests is in
# t/161-status-targets.t.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log timing;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);

add_block_preprocessor(sub {
    my $block = shift;
    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => <<'CONF' . $http);
    log_format timing '$status provider=$llm_provider attempts=$llm_attempts '
                      'ttfb=$llm_ttfb latency=$llm_upstream_latency '
                      'overhead=$llm_overhead';
CONF
});

run_tests();

__DATA__

=== TEST 1: the headers of a completion
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock m-served; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: mock
x-llm-model: m-served
x-llm-attempts: 1
--- response_headers_like
x-llm-overhead-ms: \d+\.\d{3}



=== TEST 2: the headers after a failover name the attempt that answered
--- http_config
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target dead   m-dead;
        target broken m-broken;
        target mock   m-last;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: mock
x-llm-model: m-last
x-llm-attempts: 3
--- response_headers_like
x-llm-overhead-ms: \d+\.\d{3}



=== TEST 3: the headers of a stream
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock m-stream; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Type: text/event-stream
x-llm-provider: mock
x-llm-model: m-stream
x-llm-attempts: 1
--- response_headers_like
x-llm-overhead-ms: \d+\.\d{3}



=== TEST 4: the headers of the gateway's own error after the attempts
--- http_config
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_route m {
        target broken m-broken;
        target dead   m-dead;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_headers
x-llm-provider: dead
x-llm-model: m-dead
x-llm-attempts: 2
--- response_headers_like
x-llm-overhead-ms: \d+\.\d{3}
--- response_body_like: "code":"upstream_error"



=== TEST 5: the headers of a provider's error passed on
--- http_config
    llm_provider picky { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=400/v1; }
    llm_route m { target picky m-picky; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_headers
x-llm-provider: picky
x-llm-model: m-picky
x-llm-attempts: 1



=== TEST 6: no routing headers when no attempt was made
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- request
POST /v1/chat/completions
{"model":"unknown","messages":[{"role":"user","content":"x"}]}
--- error_code: 404
--- response_headers
!x-llm-provider
!x-llm-model
!x-llm-attempts
--- response_body_like: "code":"model_not_found"



=== TEST 7: access log: $llm_ttfb and $llm_upstream_latency in seconds with ms, $llm_overhead with us
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=200/v1; }
    llm_route m { target mock; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- access_log eval
# the mock waits 200 ms before it answers: both times include that wait
[qr/^200 provider=mock attempts=1 ttfb=(?:0\.[2-9]\d\d|[1-9]\d*\.\d{3}) latency=(?:0\.[2-9]\d\d|[1-9]\d*\.\d{3}) overhead=\d+\.\d{6}$/m]



=== TEST 8: access log: a stream's $llm_ttfb is the time to its first event
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=200,gap=100/v1; }
    llm_route m { target mock; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"a b c","chunks":3}}
--- response_body_like: data: \[DONE\]\n\n\z
--- access_log eval
# first event after 200 ms; the whole stream takes 5 gaps of 100 ms more
[qr/^200 provider=mock attempts=1 ttfb=(?:0\.[2-9]\d\d|[1-9]\d*\.\d{3}) latency=(?:0\.[7-9]\d\d|[1-9]\d*\.\d{3}) overhead=\d+\.\d{6}$/m]



=== TEST 9: access log: after a failover the variables describe the attempt that answered
--- http_config
    llm_provider quick_fail { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider slow { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=300/v1; }
    llm_route m {
        target quick_fail;
        target slow;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- access_log eval
# the failed attempt answered at once; the one that served waited 300 ms
[qr/^200 provider=slow attempts=2 ttfb=(?:0\.[3-9]\d\d|[1-9]\d*\.\d{3}) latency=(?:0\.[3-9]\d\d|[1-9]\d*\.\d{3}) overhead=\d+\.\d{6}$/m]



=== TEST 10: access log: no attempt, no times
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- request
POST /v1/chat/completions
{"model":"unknown","messages":[{"role":"user","content":"x"}]}
--- error_code: 404
--- access_log eval
[qr/^404 provider=- attempts=0 ttfb=- latency=- overhead=\d+\.\d{6}$/m]



=== TEST 11: llm_status of a fresh nginx: the routes as configured, no targets yet
--- http_config
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider b { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider absent {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_route spread {
        strategy weighted;
        target a m-a weight=3;
        target b weight=1;
        target absent;
    }
    llm_route careful {
        strategy cost;
        target a input=1 output=2;
        retries 2;
        attempts 5;
        deadline 1500ms;
    }
    llm_route "team/*" {
        strategy latency;
        target b "*";
    }
--- request
GET /llm/status
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/\A\{"version":"\d+\.\d+\.\d+","time":\d+,"routes":\[
\{"name":"spread","strategy":"weighted","attempts":3,"retries":0,"deadline_ms":0,"targets":\[
\{"provider":"a","model":"m-a","weight":3,"enabled":true\},
\{"provider":"b","model":"","weight":1,"enabled":true\},
\{"provider":"absent","model":"","weight":1,"enabled":false\}\]\},
\{"name":"careful","strategy":"cost","attempts":5,"retries":2,"deadline_ms":1500,"targets":\[
\{"provider":"a","model":"","weight":1,"enabled":true\}\]\},
\{"name":"team\/\*","strategy":"latency","attempts":1,"retries":0,"deadline_ms":0,"targets":\[
\{"provider":"b","model":"\*","weight":1,"enabled":true\}\]\}\],
"targets":\[\],"series":\[\],"spend":\[\],"guards":\[\],"redis":null\}\n\z/x



=== TEST 12: llm_status: the default attempts are targets x (retries + 1), at most 8
--- http_config
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route three {
        target a one;
        target a two;
        target a three;
        retries 1;
    }
    llm_route capped {
        target a one;
        target a two;
        retries 7;
    }
--- request
GET /llm/status
--- response_body_like: "name":"three","strategy":"ordered","attempts":6,"retries":1,.*"name":"capped","strategy":"ordered","attempts":8,"retries":7,



=== TEST 13: llm_status answers GET only
--- http_config
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target a; }
--- request
POST /llm/status
{}
--- error_code: 405



=== TEST 14: the version: at start-up with the libraries built with, and in the status
--- request
GET /llm/status
--- response_body_like: \A\{"version":"\d+\.\d+\.\d+",
--- error_log eval
qr/\[notice\].*ngx_http_llm_module\/\d+\.\d+\.\d+ \(yajl \d+\.\d+\.\d+, hiredis \d+\.\d+\.\d+, OpenSSL \d/
