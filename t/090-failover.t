# Failover across providers: each attempt is built for its own target
# (URL, key, model), nothing reaches the client before an attempt
# succeeds, and when none does the client gets the last provider's error.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use Digest::SHA ();

no_shuffle();

# a second mock server that logs what every attempt carried
our $ATTEMPTS = <<'CONF';
    log_format attempts '$uri $status';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        client_body_buffer_size 16m;
        access_log logs/attempts.log attempts;
        # the mock logs what each attempt carried, at info level
        error_log logs/error.log info;
        location / {
            postpone_output 0;
            js_content openai.chat;
        }
    }
CONF

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
    $block->set_value(http_config => $ATTEMPTS . <<'CONF' . $http);
    log_format gateway '$status attempts=$llm_attempts provider=$llm_provider '
                       'target=$llm_target_model upstream=[$upstream_status]';
CONF
});

run_tests();

__DATA__

=== TEST 1: dead, 500, 429 and healthy: served by the healthy one
--- http_config
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key sk-dead;
    }
    llm_provider err500 {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=500/v1;
        key sk-err500;
    }
    llm_provider limited {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=429/v1;
        key sk-limited;
    }
    llm_provider healthy {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        key sk-healthy;
    }
    llm_route chain {
        target dead    model-dead;
        target err500  model-500;
        target limited model-429;
        target healthy model-ok;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"model":"model-ok")(?=.*"authorization":"Bearer sk-healthy")/s
--- access_log eval
[qr/^200 attempts=4 provider=healthy target=model-ok upstream=\[502 : 500 : 429 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+|mock received \S+ model=\S+ auth=[^,\n]+/
--- grep_error_log_out
llm: provider "dead" failed with 502
mock received /status=500/v1/chat/completions model=model-500 auth=Bearer sk-err500
llm: provider "err500" failed with 500
mock received /status=429/v1/chat/completions model=model-429 auth=Bearer sk-limited
llm: provider "limited" failed with 429
mock received /v1/chat/completions model=model-ok auth=Bearer sk-healthy



=== TEST 2: when every attempt fails, the last provider's own error
--- http_config
    llm_provider err503 {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=503/v1;
    }
    llm_provider limited {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=429,retry_after=7/v1;
    }
    llm_route chain {
        target err503;
        target limited;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- error_code: 429
--- response_headers
Retry-After: 7
Content-Type: application/json
--- response_body chomp
{"error":{"message":"mock provider error 429","type":"requests","param":null,"code":"rate_limit_exceeded"}}
--- access_log eval
[qr/^429 attempts=2 provider=limited target=chain upstream=\[503 : 429\]$/m]



=== TEST 3: when the last attempt gets no answer: a 502 naming it
--- http_config
    llm_provider err500 {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=500/v1;
    }
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
    }
    llm_route chain {
        target err500;
        target dead;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body chomp
{"error":{"message":"Model `chain` failed after 2 attempts; the last attempt, to provider `dead`, ended with status 502.","type":"server_error","param":null,"code":"upstream_error"}}



=== TEST 4: attempts 1 makes one attempt
--- http_config
    llm_provider err503 {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=503/v1;
    }
    llm_provider healthy {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
    }
    llm_route chain {
        target err503;
        target healthy;
        attempts 1;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_body_like: "message":"mock provider error 503"
--- access_log eval
[qr/^503 attempts=1 provider=err503 /m]



=== TEST 5: attempts bounds the attempts
--- http_config
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=500/v1; }
    llm_provider b { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=502/v1; }
    llm_provider c { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target a;
        target b;
        target c;
        attempts 2;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body_like: "message":"mock provider error 502"
--- access_log eval
[qr/^502 attempts=2 provider=b target=chain upstream=\[500 : 502\]$/m]



=== TEST 6: a client error does not fail over
--- http_config
    llm_provider picky { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=400/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target picky;
        target healthy;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- access_log eval
[qr/^400 attempts=1 provider=picky /m]



=== TEST 7: a disabled provider is skipped
--- http_config
    llm_provider absent {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target absent;
        target healthy;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- access_log eval
[qr/^200 attempts=1 provider=healthy target=chain upstream=\[200\]$/m]



=== TEST 8: a stream fails over before its first byte
--- http_config
    llm_provider busy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=503/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target busy;
        target healthy streamed-model;
    }
--- request
POST /v1/chat/completions
{"model":"chain","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Type: text/event-stream
!Retry-After
--- response_body_like: \A(data: \{[^\n]*"model":"streamed-model"[^\n]*\}\n\n)+data: \[DONE\]\n\n\z



=== TEST 9: a failed attempt's headers do not leak into the served response
--- http_config
    llm_provider limited {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=429,retry_after=30/v1;
    }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target limited;
        target healthy;
    }
--- request
POST /v1/chat/completions
{"model":"chain","messages":[{"role":"user","content":"x"}]}
--- response_headers
!Retry-After
Content-Type: application/json
--- response_body_like: "object":"chat.completion"



=== TEST 10: the request body of a large request survives failovers
--- http_config
    llm_provider busy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/status=503/v1; }
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route chain {
        target busy  "busy-model";
        target dead  "dead-model";
        target healthy "the-final-model";
    }
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log gateway;
    }
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"chain","messages":[{"role":"user","content":"' . ('w' x 30000) . '"}]}'
--- response_body_like eval
my $sent = '{"model":"the-final-model","messages":[{"role":"user","content":"'
         . ('w' x 30000) . '"}]}';
qr/"body_sha256":"${\ Digest::SHA::sha256_hex($sent)}"/
--- error_log
file: yes
