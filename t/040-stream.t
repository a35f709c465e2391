# Streamed completions: server-sent events pass through unbuffered and
# intact, in order, with the provider's model name in every event.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-stream-provider;
    }
    llm_route streamer {
        target mock stream-model;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: a stream's events, in order, and [DONE]
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"one two"}],"mock":{"reply":"alpha beta gamma","chunks":3}}
--- response_headers
Content-Type: text/event-stream
X-Accel-Buffering: no
--- response_body_like eval
qr/\A
data:\ \{[^\n]*"delta":\{"role":"assistant","content":"","refusal":null\}[^\n]*\}\n\n
data:\ \{[^\n]*"model":"stream-model"[^\n]*"delta":\{"content":"alpha\ "\}[^\n]*\}\n\n
data:\ \{[^\n]*"delta":\{"content":"beta\ "\}[^\n]*\}\n\n
data:\ \{[^\n]*"delta":\{"content":"gamma"\}[^\n]*\}\n\n
data:\ \{[^\n]*"delta":\{\},"logprobs":null,"finish_reason":"stop"\}[^\n]*\}\n\n
data:\ \[DONE\]\n\n
\z/x



=== TEST 2: the provider was asked for a stream with its own key
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"stream":true)(?=.*"authorization":"Bearer sk-stream-provider")(?=.*data: \[DONE\]\n\n\z)/s



=== TEST 3: usage arrives when the client asks for it
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}],"mock":{"prompt_tokens":11,"completion_tokens":7}}
--- response_body_like: "choices":\[\],"usage":\{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18\}\}\n\ndata: \[DONE\]\n\n$



=== TEST 4: a stream the provider refuses is an ordinary JSON error
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=400/v1;
    }
    llm_route streamer {
        target mock;
    }
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_headers
Content-Type: application/json
!X-Accel-Buffering
--- response_body_like: "message":"mock provider error 400"



=== TEST 5: stream: false is an ordinary completion
--- request
POST /v1/chat/completions
{"model":"streamer","stream":false,"messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Type: application/json
!X-Accel-Buffering
--- response_body_like: "object":"chat.completion"



=== TEST 6: a long stream with pauses arrives whole
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"a b c d e f g h i j k l m n o p q r s t","chunks":20,"gap":20}}
--- response_body_like eval
my $re = CORE::join '', map { qq{data: [^\\n]*"content":"$_ ?"[^\\n]*\\n\\n} } 'a' .. 't';
qr/$re/s



=== TEST 7: a client that did not ask for usage sees no usage member at all
The gateway asks the provider for usage, and OpenAI then puts "usage":null
in every chunk; OpenAI would send this client none.
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"reply":"alpha beta","chunks":2}}
--- response_body_like eval
qr/\A(?:data: \{(?:(?!"usage")[^\n])*"object":"chat\.completion\.chunk"(?:(?!"usage")[^\n])*\}\n\n){4}data: \[DONE\]\n\n\z/



=== TEST 8: a client that asked gets "usage":null in its chunks, as from OpenAI
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}],"mock":{"reply":"alpha beta","chunks":2}}
--- response_body_like eval
qr/\A(?:data: \{[^\n]*"usage":null[^\n]*\}\n\n){4}data: \{[^\n]*"choices":\[\],"usage":\{[^\n]*\}\n\ndata: \[DONE\]\n\n\z/



=== TEST 9: a recorded OpenAI stream: "usage":null cut wherever it stands
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:tools.sse/v1;
    }
    llm_route streamer {
        target mock;
    }
--- request
POST /v1/chat/completions
{"model":"streamer","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/\A(?:data: \{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",(?:(?!"usage")[^\n])*\}\n\n)+data: \[DONE\]\n\n\z/
