# A stream that fails once it started: the provider ends it before its
# "data: [DONE]", or its connection breaks off. The client gets the events
# that were whole, then
#
#   data: {"error":{...,"code":"stream_interrupted"}}
#
# and a properly ended response (the harness fails the status check of a
# chunked response that is not properly terminated). No failover: the
# stream started. That the failure counts against the target is checked
# in t/120-health.t (status JSON).

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

# providers that break their streams, on the second mock port
our $BREAKERS = <<'CONF';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;

        # one whole event, then the end (chunked): no [DONE]
        location /early/ {
            default_type text/event-stream;
            echo_read_request_body;
            echo -n "data: {\"id\":\"e1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"},\"finish_reason\":null}]}\n\n";
        }

        # the same, with a Content-Length
        location /early_length/ {
            default_type text/event-stream;
            return 200 "data: {\"id\":\"e1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"},\"finish_reason\":null}]}\n\n";
        }

        # a whole event, then half of the next one
        location /half/ {
            default_type text/event-stream;
            echo_read_request_body;
            echo -n "data: {\"id\":\"h1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"whole\"}}]}\n\ndata: {\"id\":\"h2\",\"choices\":[{\"ind";
        }

        # proxies the mock's slow stream (1 s between events) and gives up
        # after 300 ms of silence: the connection breaks mid-stream
        location /cut/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gap=1000/;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 300ms;
        }
    }

    llm_provider early { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/early/v1; }
    llm_provider early_length { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/early_length/v1; }
    llm_provider half { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/half/v1; }
    llm_provider cut { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/cut/v1; }
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
CONF

LLM::Fixtures::defaults(config => $LLM::Fixtures::GATEWAY_CONFIG);

add_block_preprocessor(sub {
    my $block = shift;
    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => $BREAKERS . $http);
});

run_tests();

__DATA__

=== TEST 1: the provider ends the stream before [DONE]: the error event, then a proper end
--- http_config
    llm_route m { target early; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Type: text/event-stream
Transfer-Encoding: chunked
x-llm-provider: early
--- response_body eval
qq{data: {"id":"e1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n}
. qq{data: {"error":{"message":"The provider ended the stream before it was complete.","type":"server_error","param":null,"code":"stream_interrupted"}}\n\n}
--- error_log
llm: the stream of provider "early" for model "m" failed: The provider ended the stream before it was complete.



=== TEST 2: the same from a provider that sent a Content-Length
--- http_config
    llm_route m { target early_length; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Type: text/event-stream
!Content-Length
x-llm-provider: early_length
--- response_body eval
qq{data: {"id":"e1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n}
. qq{data: {"error":{"message":"The provider ended the stream before it was complete.","type":"server_error","param":null,"code":"stream_interrupted"}}\n\n}
--- error_log
llm: the stream of provider "early_length" for model "m" failed: The provider ended the stream before it was complete.



=== TEST 3: never half an event: the whole ones, then the error event
--- http_config
    llm_route m { target half; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body eval
qq{data: {"id":"h1","choices":[{"index":0,"delta":{"content":"whole"}}]}\n\n}
. qq{data: {"error":{"message":"The provider ended the stream before it was complete.","type":"server_error","param":null,"code":"stream_interrupted"}}\n\n}



=== TEST 4: the provider's connection breaks mid-stream: the error event, then a proper end
--- http_config
    llm_route m { target cut cut-model; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"one two three","chunks":3}}
--- timeout: 4
--- response_headers
Content-Type: text/event-stream
Transfer-Encoding: chunked
x-llm-provider: cut
--- response_body_like eval
qr/\A
data:\ \{[^\n]*"model":"cut-model"[^\n]*"delta":\{"role":"assistant"[^\n]*\}\n\n
data:\ \{"error":\{"message":"The\ connection\ to\ the\ provider\ broke\ off\ in\ the\ middle\ of\ the\ stream\.","type":"server_error","param":null,"code":"stream_interrupted"\}\}\n\n
\z/x
--- error_log
llm: the stream of provider "cut" for model "m" failed: The connection to the provider broke off in the middle of the stream.
--- no_error_log
[crit]



=== TEST 5: a stream that started does not fail over
--- http_config
    llm_route m {
        target early;
        target backup;
    }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: early
x-llm-attempts: 1
--- response_body_like: \A[^\n]*"content":"partial"[^\n]*\n\ndata: \{"error":\{[^\n]*"code":"stream_interrupted"\}\}\n\n\z
--- no_error_log
failing over



=== TEST 6: a complete stream gets no error event
--- http_config
    llm_route m { target backup; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"one two","chunks":2}}
--- response_body_like: "content":"two"[^\n]*\n\n(?:data: [^\n]*\n\n)?data: \[DONE\]\n\n\z
--- no_error_log
llm: the stream of provider
