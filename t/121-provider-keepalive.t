# A provider's "keepalive": its own upstream block, so that attempts reuse
# idle connections to it instead of opening one each. The providers below
# answer with the number of requests their connection has carried.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

our $COUNTING_SERVER = <<'CONF';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        listen unix:$TEST_NGINX_SERVROOT/provider.sock;
        access_log off;
        location /stream/ {
            default_type text/event-stream;
            echo 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"requests=$connection_requests"},"finish_reason":null}]}';
            echo;
            echo_flush;
            echo 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
            echo;
            echo 'data: [DONE]';
            echo;
        }
        # the stream's last event, then the end of the chunked body
        # 50 ms later, in a segment of its own
        location /late/ {
            default_type text/event-stream;
            echo 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"requests=$connection_requests"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
            echo;
            echo 'data: [DONE]';
            echo;
            echo_flush;
            echo_sleep 0.05;
        }
        location / {
            default_type application/json;
            return 200 '{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"requests=$connection_requests"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
CONF

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;     # nginx must stop at ours
    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => $http . $COUNTING_SERVER);
});

run_tests();

__DATA__

=== TEST 1: with keepalive, the attempts of three requests share one connection
--- http_config
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 4;
    }
    llm_route m { target counting; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . '{"model":"m","messages":[{"role":"user","content":"hi"}]}' } 1 .. 3]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"content":"requests=1"', '"content":"requests=2"', '"content":"requests=3"']
--- no_error_log
[error]



=== TEST 2: without keepalive, or with keepalive off, each attempt opens a connection of its own
--- http_config
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
    }
    llm_provider counting_off {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive off;
    }
    llm_route m { target counting; }
    llm_route n { target counting_off; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . qq({"model":"$_","messages":[{"role":"user","content":"hi"}]}) }
     qw(m m n n)]
--- response_body_like eval
[('"content":"requests=1"') x 4]
--- no_error_log
[error]



=== TEST 2c: a stream (chunked, to its last event) leaves its connection to the next request
--- http_config
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/stream/v1;
        keepalive 2;
    }
    llm_route m { target counting; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' } 1 .. 2]
--- response_body_like eval
['"content":"requests=1".*data: \[DONE\]', '"content":"requests=2".*data: \[DONE\]']
--- no_error_log
[error]



=== TEST 2c2: a stream whose provider ends its body a little after the last event: the connection is still reused
The gateway waits a moment for the end of the body after a stream's last
event before it ends the stream itself (and closes the connection).
--- http_config
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/late/v1;
        keepalive 2;
    }
    llm_route m { target counting; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' } 1 .. 3]
--- response_body_like eval
['"content":"requests=1".*data: \[DONE\]', '"content":"requests=2".*data: \[DONE\]', '"content":"requests=3".*data: \[DONE\]']
--- no_error_log
[error]



=== TEST 2d: keepalive timeout=: an idle connection is closed after it
A request to a provider that answers in 100 ms lies between the two to
the pooled one: its connection, idle for 1 ms at most, is closed by then.
--- http_config
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 timeout=1ms;
    }
    llm_provider slow {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=100/v1;
    }
    llm_route m { target counting; }
    llm_route s { target slow; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . qq({"model":"$_","messages":[{"role":"user","content":"hi"}]}) }
     qw(m s m)]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"content":"requests=1"', '"object":"chat.completion"', '"content":"requests=1"']
--- no_error_log
[error]



=== TEST 2e: a provider that closes idle connections itself: the pool lets them go, nothing fails
It closes them after 500 ms (nginx's keepalive_timeout on its side, as
uvicorn does after 5 s); a request to another provider that answers in
a second lies between the second and the third to it.
--- http_config
    server {
        listen unix:$TEST_NGINX_SERVROOT/closing.sock;
        keepalive_timeout 500ms;
        access_log off;
        location / {
            default_type application/json;
            return 200 '{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"requests=$connection_requests"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
    llm_provider closing {
        url http://unix:$TEST_NGINX_SERVROOT/closing.sock:/v1;
        keepalive 2;
    }
    llm_provider slow {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=1000/v1;
    }
    llm_route m { target closing; }
    llm_route s { target slow; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . qq({"model":"$_","messages":[{"role":"user","content":"hi"}]}) }
     qw(m m s m)]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
['"content":"requests=1"', '"content":"requests=2"', '"object":"chat.completion"', '"content":"requests=1"']
--- no_error_log
[error]
[warn]



=== TEST 3: a unix socket with keepalive, and a timeout longer than the time between requests
--- http_config
    llm_provider counting {
        url http://unix:$TEST_NGINX_SERVROOT/provider.sock:/v1;
        keepalive 2 timeout=1h;
    }
    llm_route m { target counting; }
--- request eval
[map { "POST /v1/chat/completions\n"
       . '{"model":"m","messages":[{"role":"user","content":"hi"}]}' } 1 .. 2]
--- response_body_like eval
['"content":"requests=1"', '"content":"requests=2"']
--- no_error_log
[error]



=== TEST 4: failover between two pooled providers keeps each one's pool
--- http_config
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        keepalive 2;
    }
    llm_provider counting {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2;
    }
    llm_route m {
        target dead;
        target counting;
    }
--- request eval
[map { "POST /v1/chat/completions\n"
       . '{"model":"m","messages":[{"role":"user","content":"hi"}]}' } 1 .. 2]
--- error_code eval
[200, 200]
--- response_body_like eval
['"content":"requests=1"', '"content":"requests=2"']
--- response_headers eval
["X-LLM-Provider: counting", "X-LLM-Provider: counting"]



=== TEST 5: a host name with keepalive is resolved when the configuration loads: no resolver needed
--- http_config
    llm_provider named {
        url http://localhost:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2;
    }
    llm_route m { target named; }
--- request
GET /v1/models
--- error_code: 200
--- response_body_like eval
qr/"id":"m","object":"model"/



=== TEST 6: a host name without keepalive still needs a resolver
--- http_config
    llm_provider named {
        url http://localhost:$TEST_NGINX_MOCK2_PORT/v1;
    }
    llm_route m { target named; }
--- must_die
--- error_log
llm_provider "named" in



=== TEST 7: keepalive 0
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 0;
    }
--- must_die
--- error_log eval
qr/invalid keepalive "0" in llm_provider "p": connections from 1 to 1024, or off in \S+nginx\.conf:\d+/



=== TEST 8: keepalive above the bound
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 1025;
    }
--- must_die
--- error_log
invalid keepalive "1025" in llm_provider "p"



=== TEST 8b: a keepalive timeout that is not one
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 timeout=2h;
    }
--- must_die
--- error_log eval
qr/invalid "timeout=2h" in keepalive of llm_provider "p": timeout=time, from 1ms to 1h in \S+nginx\.conf:\d+/



=== TEST 8c: keepalive with another parameter
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 requests=10;
    }
--- must_die
--- error_log
invalid "requests=10" in keepalive of llm_provider "p"



=== TEST 9: keepalive twice
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2;
        keepalive 3;
    }
--- must_die
--- error_log
"keepalive" is duplicate in llm_provider "p"



=== TEST 10: a provider name that cannot name an upstream block
--- http_config
    llm_provider "p:x" {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2;
    }
--- must_die
--- error_log
llm_provider "p:x" has "keepalive": its name may then have only letters, digits, '_', '-' and '.'



=== TEST 11: the block's name is the gateway's: an upstream block of that name is a conflict
--- http_config
    upstream llm_provider_p {
        server 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
    }
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2;
    }
--- must_die
--- error_log eval
qr/duplicate upstream "llm_provider_p" in \S+nginx\.conf:\d+/



=== TEST 12: a url that names an upstream block has that block's pool
--- http_config
    upstream pool {
        server 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        keepalive 2;
    }
    llm_provider p {
        url http://pool/v1;
        host 127.0.0.1;
        keepalive 2;
    }
--- must_die
--- error_log
llm_provider "p" has "keepalive", but its url names upstream "pool", whose own "keepalive" applies



=== TEST 13: resolve (names resolved at run time) needs nginx 1.27.3
--- skip_nginx: 3: >= 1.27.3
--- http_config
    llm_provider p {
        url http://localhost:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 resolve;
    }
--- no_mock
--- must_die
--- error_log eval
qr/"resolve" in keepalive of llm_provider "p" needs nginx 1\.27\.3 or newer with the upstream zone module \(this is [\d.]+\) in \S+nginx\.conf:\d+/



=== TEST 14: with resolve, nginx resolves the name at run time: with the http block's resolver
--- skip_nginx: 3: < 1.27.3
--- http_config
    llm_provider p {
        url http://localhost:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 timeout=10s resolve;
    }
--- no_mock
--- must_die
--- error_log eval
qr/no resolver defined to resolve names at run time in upstream "llm_provider_p" in \S+nginx\.conf:\d+/



=== TEST 15: resolve is for a host name
--- skip_nginx: 3: < 1.27.3
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 resolve;
    }
--- no_mock
--- must_die
--- error_log
"resolve" in keepalive of llm_provider "p" is for a url with a host name



=== TEST 16: a parameter twice
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive 2 timeout=1s timeout=2s;
    }
--- must_die
--- error_log
invalid "timeout=2s" in keepalive of llm_provider "p"



=== TEST 17: off takes no parameters
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        keepalive off timeout=1s;
    }
--- must_die
--- error_log
invalid "timeout=1s" in keepalive of llm_provider "p"
