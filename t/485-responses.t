# OpenAI's Responses API, POST /v1/responses: passed as it is to
# OpenAI-format targets (the target's model spliced in), streamed or not,
# usage read from the answer or from the stream's last event and charged;
# translated for the stateless subset to every other format, answered as
# a response object or as the Responses stream's events; what a
# translation cannot carry is refused for the whole route.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use Digest::SHA ();

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    log_format usage '$llm_key $status p=$llm_prompt_tokens '
                     'c=$llm_completion_tokens cached=$llm_cached_tokens '
                     'cost=$llm_cost provider=$llm_provider '
                     'attempts=$llm_attempts';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-one;
    }
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }
    llm_provider claude {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_provider claude_down {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/status=529/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_route m {
        target mock resp-model-v2 input=2.50 cached=1.25 output=10.00;
    }
    llm_route c {
        target claude claude-haiku;
    }
    llm_route mixed {
        target claude claude-haiku;
        target mock;
        strategy ordered;
    }
    llm_route over {
        target down;
        target claude claude-haiku;
        strategy ordered;
    }
    llm_key alice { key sk-alice-0123456789; }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/access.log usage;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    more_headers => 'Authorization: Bearer sk-alice-0123456789',
);

sub digest_re {
    return qr/"body_sha256":"${\ Digest::SHA::sha256_hex(shift)}"/;
}

run_tests();

__DATA__

=== TEST 1: a response: to the provider's /responses, its model, usage charged
--- request
POST /v1/responses
{"model":"m","input":"Say this is a test","mock":{"prompt_tokens":1000,"completion_tokens":200,"cached_tokens":400}}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"object":"response")
    (?=.*"model":"resp-model-v2")
    (?=.*"path":"\/v1\/responses")
    (?=.*"authorization":"Bearer\ sk-provider-one")
    (?=.*"usage":\{"input_tokens":1000,"input_tokens_details":\{"cached_tokens":400\},"output_tokens":200)/sx
--- access_log
alice 200 p=1000 c=200 cached=400 cost=0.004000000 provider=mock attempts=1



=== TEST 2: the rest of the body arrives byte for byte
--- request eval
"POST /v1/responses\n"
. '{"store":false,"model" : "m","input":[{"role":"user","content":"hi"}],"reasoning":{"effort":"low"},"stream":false}'
--- response_body_like eval
main::digest_re('{"store":false,"model":"resp-model-v2","input":[{"role":"user","content":"hi"}],"reasoning":{"effort":"low"},"stream":false}')



=== TEST 3: a stream: events as they are, usage read from response.completed
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"prompt_tokens":30,"completion_tokens":12,"reply":"a b c"}}
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/\Aevent:\ response\.created\n(?!.*stream_options)(?!.*\[DONE\])
   .*event:\ response\.output_text\.delta\n
   .*"delta":"a"
   .*event:\ response\.completed\n
   data:\ \{[^\n]*"usage":\{"input_tokens":30,[^\n]*\}\n\n\z/sx
--- access_log
alice 200 p=30 c=12 cached=0 cost=0.000195000 provider=mock attempts=1



=== TEST 4: usage of a stream that failed: response.failed
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"prompt_tokens":31,"completion_tokens":5,"failed":1}}
--- response_body_like eval
qr/event:\ response\.failed\n[^\n]*\n\n\z/s
--- access_log
alice 200 p=31 c=5 cached=0 cost=0.000127500 provider=mock attempts=1



=== TEST 5: a stream cut before its last event ends with the gateway's error
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"cut":1,"reply":"a b c"}}
--- response_body_like eval
qr/event:\ response\.output_item\.done\n.*data:\ \{"error":\{[^\n]*"code":"stream_interrupted"\}\}\n\n\z/s



=== TEST 6: no input: refused before any provider sees it
--- request
POST /v1/responses
{"model":"m"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Missing required parameter: 'input'.","type":"invalid_request_error","param":"input","code":"missing_required_parameter"}}



=== TEST 7: an input of a number is refused
--- request
POST /v1/responses
{"model":"m","input":42}
--- error_code: 400
--- response_body_like: "param":"input"



=== TEST 8: previous_response_id to a route with a translated target: refused, whatever target would be chosen
--- request
POST /v1/responses
{"model":"mixed","input":"x","previous_response_id":"resp_123"}
--- error_code: 400
--- response_body_like eval
qr/^\{"error":\{"message":"The parameter 'previous_response_id' is not served for model `mixed`: its target's provider `claude` \(format \\"anthropic\\"\)[^"]*","type":"invalid_request_error","param":"previous_response_id","code":"unsupported_parameter"\}\}$/



=== TEST 9: previous_response_id to OpenAI-format targets only: passed
--- request
POST /v1/responses
{"model":"m","input":"x","previous_response_id":"resp_123","store":true,"tools":[{"type":"web_search"}]}
--- response_body_like: "object":"response"



=== TEST 10: built-in tools, store, background, conversation, other items: refused on translation
--- pipelined_requests eval
[
"POST /v1/responses\n" . '{"model":"c","input":"x","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}',
"POST /v1/responses\n" . '{"model":"c","input":"x","store":true}',
"POST /v1/responses\n" . '{"model":"c","input":"x","background":true}',
"POST /v1/responses\n" . '{"model":"c","input":"x","conversation":"conv_1"}',
"POST /v1/responses\n" . '{"model":"c","input":[{"type":"item_reference","id":"msg_1"}]}',
"POST /v1/responses\n" . '{"model":"c","input":"x","tool_choice":{"type":"file_search"}}',
]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[
qr/"param":"tools","code":"unsupported_parameter"/,
qr/"param":"store","code":"unsupported_parameter"/,
qr/"param":"background","code":"unsupported_parameter"/,
qr/"param":"conversation","code":"unsupported_parameter"/,
qr/"param":"input","code":"unsupported_parameter"/,
qr/"param":"tool_choice","code":"unsupported_parameter"/,
]
