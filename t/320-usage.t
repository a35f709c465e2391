# Usage and cost: from the provider's usage object, from the usage chunk
# of a stream (asked for on the client's behalf, and taken out again when
# the client did not ask), estimated when a stream breaks off or a
# provider reports none; priced at the serving target's prices.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cached=$llm_cached_tokens cost=$llm_cost';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route m {
        target mock input=2.50 output=10.00 cached=1.25;
    }
    llm_key alice { key sk-alice-0123456789; }
CONF
    config => $LLM::Fixtures::USAGE_CONFIG,
    more_headers => 'Authorization: Bearer sk-alice-0123456789',
);

run_tests();

__DATA__

=== TEST 1: a completion's usage and cost, cached tokens at their price
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}],"mock":{"prompt_tokens":1000,"completion_tokens":200,"cached_tokens":400}}
--- response_body_like: "usage":\{"prompt_tokens":1000,"completion_tokens":200
--- access_log
alice p=1000 c=200 cached=400 cost=0.004000000



=== TEST 2: a stream's usage, asked of the provider, not shown to the client
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"mock":{"prompt_tokens":30,"completion_tokens":12}}
--- response_body_like eval
qr/\A(?!.*"usage")(?=.*"include_usage":true).*data: \[DONE\]\n\n\z/s
--- access_log
alice p=30 c=12 cached=0 cost=0.000195000



=== TEST 3: the client that asks for usage gets the chunk
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}],"mock":{"prompt_tokens":30,"completion_tokens":12}}
--- response_body_like: "choices":\[\],"usage":\{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42\}\}\n\ndata: \[DONE\]\n\n$
--- access_log
alice p=30 c=12 cached=0 cost=0.000195000



=== TEST 4: stream_options without include_usage gets it, the rest kept
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"messages":[{"role":"user","content":"x"}]}')



=== TEST 5: empty stream_options
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"m","stream":true,"stream_options":{},"messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}')



=== TEST 6: include_usage false becomes true for the provider only
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"m","stream":true,"stream_options":{"include_usage" : false},"messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
qr/(?!.*"usage")${\ LLM::Fixtures::body_digest_re('{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}')}/s



=== TEST 7: stream_options null
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}')



=== TEST 8: no stream_options at all
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}')



=== TEST 9: a non-boolean include_usage is refused
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"stream_options":{"include_usage":"yes"},"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "param":"stream_options"



=== TEST 10: a provider that reports no usage: estimated from the text
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"0123456789abcdef"}],"mock":{"no_usage":1,"reply":"abcdefghijklmnopqrstuvwxyz"}}
--- response_body_unlike: "usage"
--- access_log eval
# prompt: "user" and the 16 bytes, 20 bytes or 5 tokens, and 4 a message;
# completion: "assistant", the 26-byte reply, "stop": 39 bytes, 10 tokens
[qr/^alice p=9 c=10 cached=0 cost=0\.000122500$/m]



=== TEST 11: a stream cut short is charged for what arrived
--- http_config
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cost=$llm_cost';
    llm_provider cut {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
    }
    llm_route m {
        target cut input=2.50 output=10.00;
    }
    llm_key alice { key sk-alice-0123456789; }
    # a stream that ends before its last chunk, its usage and [DONE]
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            default_type text/event-stream;
            return 200 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}

data: {"choices":[{"index":0,"delta":{"content":"0123456789abcdef0123456789abcdef"}}]}

';
        }
    }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: "code":"stream_interrupted"
--- access_log eval
# prompt: 5 bytes, 2 tokens, and 4; completion: "assistant", "" and 32
# bytes of content: 41 bytes, 11 tokens
[qr/^alice p=6 c=11 cost=0\.000125000$/m]



=== TEST 12: a failed request costs nothing
--- http_config
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cost=$llm_cost';
    llm_provider busy {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }
    llm_route m { target busy input=2.50 output=10.00; }
    llm_key alice { key sk-alice-0123456789; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- access_log
alice p=0 c=0 cost=0.000000000



=== TEST 13: a translated answer whose usage is beyond belief is estimated, not charged (nor overflowed)
--- http_config
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cost=$llm_cost';
    llm_provider absurd {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        format anthropic;
        key sk-absurd-0123456789;
    }
    llm_route m { target absurd input=2.50 output=10.00; }
    llm_key alice { key sk-alice-0123456789; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            default_type application/json;
            return 200 '{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"0123456789abcdef"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":999999999999999999,"output_tokens":999999999999999999}}';
        }
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- access_log eval
# prompt: 5 bytes, 2 tokens, and 4; completion: the 16 bytes of text
# translated, 4 tokens
[qr/^alice p=6 c=4 cost=0\.000055000$/m]
--- error_log
reported a usage beyond belief (999999999999999999 prompt, 999999999999999999 completion, 0 cached, 0 cache write tokens): estimated instead



=== TEST 13b: an absurd count of cached tokens is quoted in the warning too
--- http_config
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cost=$llm_cost';
    llm_provider absurd {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        format anthropic;
        key sk-absurd-0123456789;
    }
    llm_route m { target absurd input=2.50 output=10.00; }
    llm_key alice { key sk-alice-0123456789; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            default_type application/json;
            return 200 '{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"0123456789abcdef"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":999999999999999}}';
        }
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- access_log eval
[qr/^alice p=6 c=4 cost=0\.000055000$/m]
--- error_log eval
qr/reported a usage beyond belief \(\d+ prompt, 4 completion, 999999999999999 cached, 0 cache write tokens\): estimated instead/



=== TEST 14: Bedrock's usage with no valid count (only cache counts default to 0): estimated, not zero
--- http_config
    log_format usage '$llm_key p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cost=$llm_cost';
    llm_provider bedrock {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route m { target bedrock input=2.50 output=10.00; }
    llm_key alice { key sk-alice-0123456789; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            default_type application/json;
            return 200 '{"output":{"message":{"role":"assistant","content":[{"text":"0123456789abcdef"}]}},"stopReason":"end_turn","usage":{"inputTokens":-5,"outputTokens":"12","totalTokens":3.7}}';
        }
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- access_log eval
[qr/^alice p=6 c=4 cost=0\.000055000$/m]



=== TEST 15: more cached tokens than prompt tokens: the cost is never negative
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}],"mock":{"prompt_tokens":10,"completion_tokens":0,"cached_tokens":1000}}
--- access_log
alice p=10 c=0 cached=1000 cost=0.001250000
