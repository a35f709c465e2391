# Same-target retries with backoff, the attempts bound, the deadline and
# the failover set.
#
# The warn line the module logs for every failed attempt says what comes
# next: "..., retrying it" (the same target, after a backoff), "...,
# failing over" (the next target), or nothing (no attempt left).
# Nothing here measures time: the deadline blocks rely on the client's
# timeout (--- timeout) as the bound, far below the mock's delay.

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

    # the mock's fail_times counters (files rt_* in the servroot) restart
    unlink glob(server_root() . '/rt_*');

    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => <<'CONF' . $http);
    log_format gateway '$status attempts=$llm_attempts provider=$llm_provider '
                       'upstream=[$upstream_status]';
CONF
});

run_tests();

__DATA__

=== TEST 1: a target that fails twice then answers is retried, served by itself
--- http_config
    llm_provider flaky {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fail_times=2,counter=rt_flaky/v1;
    }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target flaky  m-flaky;
        target backup m-backup;
        retries 2 backoff=10ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: flaky
x-llm-model: m-flaky
x-llm-attempts: 3
--- response_body_like: "model":"m-flaky"
--- access_log eval
[qr/^200 attempts=3 provider=flaky upstream=\[503 : 503 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "flaky" failed with 503 for model "m" (attempt 1), retrying it
llm: provider "flaky" failed with 503 for model "m" (attempt 2), retrying it



=== TEST 2: retries exhausted: failing over to the next target
--- http_config
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target broken;
        target backup;
        retries 1 backoff=10ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: backup
x-llm-attempts: 3
--- access_log eval
[qr/^200 attempts=3 provider=backup upstream=\[500 : 500 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "broken" failed with 500 for model "m" (attempt 1), retrying it
llm: provider "broken" failed with 500 for model "m" (attempt 2), failing over



=== TEST 3: every target retried in turn, then the last error passed on
--- http_config
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider b { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=502/v1; }
    llm_provider c { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_route m {
        target a;
        target b;
        target c;
        retries 1 backoff=1ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_headers
x-llm-provider: c
x-llm-attempts: 6
--- response_body_like: "message":"mock provider error 503"
--- access_log eval
[qr/^503 attempts=6 provider=c upstream=\[500 : 500 : 502 : 502 : 503 : 503\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "a" failed with 500 for model "m" (attempt 1), retrying it
llm: provider "a" failed with 500 for model "m" (attempt 2), failing over
llm: provider "b" failed with 502 for model "m" (attempt 3), retrying it
llm: provider "b" failed with 502 for model "m" (attempt 4), failing over
llm: provider "c" failed with 503 for model "m" (attempt 5), retrying it
llm: provider "c" failed with 503 for model "m" (attempt 6), passed on



=== TEST 4: a provider's 504 and 529 fail over like its 5xx
--- http_config
    llm_provider gw_timeout { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=504/v1; }
    llm_provider overloaded { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=529/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target gw_timeout;
        target overloaded;
        target backup;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: backup
x-llm-attempts: 3
--- access_log eval
[qr/^200 attempts=3 provider=backup upstream=\[504 : 529 : 200\]$/m]



=== TEST 5: a connect error is retried too
--- http_config
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target dead;
        target backup;
        retries 1 backoff=1ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: backup
x-llm-attempts: 3
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "dead" failed with 502 for model "m" (attempt 1), retrying it
llm: provider "dead" failed with 502 for model "m" (attempt 2), failing over



=== TEST 6: a 429 is not retried: the next target at once
--- http_config
    llm_provider limited { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target limited;
        target backup;
        retries 3 backoff=1ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: backup
x-llm-attempts: 2
--- access_log eval
[qr/^200 attempts=2 provider=backup upstream=\[429 : 200\]$/m]
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "limited" failed with 429 for model "m" (attempt 1), failing over



=== TEST 7: a failure that opens the breaker is not retried
--- http_config
    llm_provider fragile {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
        health failure_ratio=100% min_requests=1 cooldown=1m;
    }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target fragile;
        target backup;
        retries 3 backoff=1ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: backup
x-llm-attempts: 2
--- grep_error_log eval
qr/llm: provider "\w+" failed with \d+ for model "\w+" \(attempt \d+\)(?:, (?:retrying it|failing over|passed on))?/
--- grep_error_log_out
llm: provider "fragile" failed with 500 for model "m" (attempt 1), failing over



=== TEST 8: attempts bounds the retries
--- http_config
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target broken;
        target backup;
        retries 5 backoff=1ms;
        attempts 3;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 500
--- response_headers
x-llm-provider: broken
x-llm-attempts: 3
--- response_body_like: "message":"mock provider error 500"
--- access_log eval
[qr/^500 attempts=3 provider=broken upstream=\[500 : 500 : 500\]$/m]



=== TEST 9: the deadline ends a backoff wait: 504 deadline_exceeded
--- http_config
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_route m {
        target broken;
        retries 1 backoff=60s max_backoff=60s;
        deadline 300ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- timeout: 4
--- error_code: 504
--- response_headers
x-llm-attempts: 1
--- response_body chomp
{"error":{"message":"Model `m` did not answer within the deadline of 300 ms (1 attempt).","type":"server_error","param":null,"code":"deadline_exceeded"}}
--- error_log
llm: deadline of 300 ms for model "m" passed



=== TEST 10: deadline: a provider that does not answer in time gives 504 long before it would
--- http_config
    llm_provider stalled { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=10000/v1; }
    llm_route m {
        target stalled;
        deadline 500ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- timeout: 4
--- error_code: 504
--- response_headers
Content-Type: application/json
x-llm-provider: stalled
x-llm-attempts: 1
--- response_body chomp
{"error":{"message":"Model `m` did not answer within the deadline of 500 ms (1 attempt).","type":"server_error","param":null,"code":"deadline_exceeded"}}
--- access_log eval
[qr/^504 attempts=1 provider=stalled upstream=\[504\]$/m]



=== TEST 11: deadline: no failover after it, though a healthy target is left
--- http_config
    llm_provider quick_fail {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
    }
    llm_provider stalled { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=10000/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target quick_fail;
        target stalled;
        target healthy;
        deadline 500ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- timeout: 4
--- error_code: 504
--- response_headers
x-llm-provider: stalled
x-llm-attempts: 2
--- response_body_like: "message":"Model `m` did not answer within the deadline of 500 ms \(2 attempts\)\.",.*"code":"deadline_exceeded"
--- access_log eval
[qr/^504 attempts=2 provider=stalled upstream=\[500 : 504\]$/m]



=== TEST 12: deadline: a stream that started is not bounded by it
--- http_config
    llm_provider slow_stream { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gap=200/v1; }
    llm_route m {
        target slow_stream;
        deadline 300ms;
    }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"one two three","chunks":3}}
--- timeout: 4
--- response_headers
Content-Type: text/event-stream
--- response_body_like: "content":"one ".*"content":"two ".*"content":"three".*data: \[DONE\]\n\n\z
--- no_error_log
deadline of



=== TEST 13: the last attempt timed out: 504 upstream_timeout
--- http_config
    llm_provider stalled { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=10000/v1; }
    llm_route m { target stalled; }
--- config
    location /v1/ {
        proxy_read_timeout 300ms;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log gateway;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- timeout: 4
--- error_code: 504
--- response_body chomp
{"error":{"message":"Model `m` failed after 1 attempt; the last attempt, to provider `stalled`, ended with status 504.","type":"server_error","param":null,"code":"upstream_timeout"}}



=== TEST 14: failover error timeout: a provider's 503 is passed on
--- http_config
    llm_provider busy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target busy;
        target healthy;
        failover error timeout;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_headers
x-llm-provider: busy
x-llm-attempts: 1
--- response_body_like: "message":"mock provider error 503"



=== TEST 15: failover error timeout: a connect error still fails over
--- http_config
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target dead;
        target healthy;
        failover error timeout;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: healthy
x-llm-attempts: 2



=== TEST 16: failover error timeout: a timeout fails over
--- http_config
    llm_provider stalled { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=10000/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target stalled;
        target healthy;
        failover error timeout;
    }
--- config
    location /v1/ {
        proxy_read_timeout 300ms;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log gateway;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- timeout: 4
--- response_headers
x-llm-provider: healthy
x-llm-attempts: 2
--- access_log eval
[qr/^200 attempts=2 provider=healthy upstream=\[504 : 200\]$/m]



=== TEST 17: failover http_503: a connect error is passed on as a 502
--- http_config
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target dead;
        target healthy;
        failover http_503;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_headers
x-llm-provider: dead
x-llm-attempts: 1
--- response_body chomp
{"error":{"message":"Model `m` failed after 1 attempt; the last attempt, to provider `dead`, ended with status 502.","type":"server_error","param":null,"code":"upstream_error"}}



=== TEST 18: failover http_429 http_503: a 500 is passed on, a 503 fails over
--- http_config
    llm_provider busy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target busy;
        target broken;
        target healthy;
        failover http_429 http_503;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 500
--- response_headers
x-llm-provider: broken
x-llm-attempts: 2
--- access_log eval
[qr/^500 attempts=2 provider=broken upstream=\[503 : 500\]$/m]



=== TEST 19: failover off: no retry, no failover
--- http_config
    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target broken;
        target healthy;
        retries 2 backoff=1ms;
        failover off;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 500
--- response_headers
x-llm-provider: broken
x-llm-attempts: 1
--- access_log eval
[qr/^500 attempts=1 provider=broken upstream=\[500\]$/m]
--- no_error_log
retrying it
failing over
