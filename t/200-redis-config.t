# llm_redis: what the configuration accepts and refuses (with file and
# line), and that a gateway whose Redis cannot be reached still serves.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

$ENV{LLM_TEST_REDIS_PASSWORD} = 'redis-secret-1234';

run_tests();

__DATA__

=== TEST 1: a host name is refused: resolving it would block
--- http_config
    llm_redis localhost:6379;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid llm_redis address "localhost:6379": it must be an IP address and port, or unix:\/path \(host names are not resolved\) in \S+nginx\.conf:\d+/



=== TEST 2: llm_redis twice
--- http_config
    llm_redis 127.0.0.1:6380;
    llm_redis 127.0.0.1:6381;
--- must_die
--- error_log eval
qr/"llm_redis" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 3: an unknown parameter value
--- http_config
    llm_redis 127.0.0.1:6380 fail=sometimes;
--- must_die
--- error_log eval
qr/invalid llm_redis parameter "fail=sometimes" in \S+nginx\.conf:\d+/



=== TEST 4: a sync interval out of range
--- http_config
    llm_redis 127.0.0.1:6380 sync=1ms;
--- must_die
--- error_log eval
qr/invalid llm_redis "sync=1ms": it must be a time between 10ms and 1h in \S+nginx\.conf:\d+/



=== TEST 5: a password from an environment variable that is not set
--- http_config
    llm_redis 127.0.0.1:6380 password=env:LLM_TEST_NO_SUCH_VARIABLE;
--- must_die
--- error_log eval
qr/environment variable "LLM_TEST_NO_SUCH_VARIABLE" of llm_redis is not set in \S+nginx\.conf:\d+/



=== TEST 6: a node id with a space
--- http_config
    llm_redis 127.0.0.1:6380 "node=a b";
--- must_die
--- error_log eval
qr/invalid llm_redis "node=a b": at most 64 printable characters without spaces in \S+nginx\.conf:\d+/



=== TEST 7: every parameter; Redis not there: requests are served (fail=open), and the log says why, without the password
--- http_config
    llm_redis unix:$TEST_NGINX_SERVER_ROOT/no-redis.sock
              password=env:LLM_TEST_REDIS_PASSWORD db=3 timeout=500ms
              sync=200ms fail=open node=gw-1 prefix=test: keys=off;
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_key alice { key sk-alice-0123456789; budget 1000tokens/day; }
--- request
POST /v1/chat/completions
{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}]}
--- more_headers
Authorization: Bearer sk-alice-0123456789
--- error_code: 200
--- error_log eval
qr/\[warn\].*llm: redis unix:\S+no-redis\.sock unavailable: /
--- no_error_log
redis-secret-1234



=== TEST 8: an IPv6 address
--- http_config
    llm_redis [::1]:1 sync=10ms;
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- error_log eval
qr/llm: redis \[::1\]:1 unavailable: /
