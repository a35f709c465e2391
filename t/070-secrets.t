# Provider keys stay in the gateway: never in the error log (even at debug
# level), response headers, error bodies, or variables outside the proxy
# module; and the client's key never reaches a provider.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();
log_level('debug');

LLM::Fixtures::defaults(
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log secrets;
        add_header X-Leak-Test "[$llm_header_authorization]";
    }
CONF
    http_config => <<'CONF',
    log_format secrets 'auth=[$llm_header_authorization] '
                       'org=[$llm_header_openai_organization] '
                       'client=[$http_authorization]';
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key sk-PROVIDER-DOWN-secret;
    }
    llm_provider busy {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
        key sk-PROVIDER-BUSY-secret;
    }
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-PROVIDER-MOCK-secret;
        header OpenAI-Organization org-visible;
    }
    llm_route m {
        target down;
        target busy;
        target mock;
    }
    llm_route broken {
        target down;
    }
    # errors that quote the key they were sent
    llm_provider quoting {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-quotes-key.json,status=401,length=1/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider quoting_split {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-quotes-key.json,status=401,split=60/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider aquoting {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:error-quotes-key.json,status=401,length=1/v1;
        format anthropic;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider aquoting_stream {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:error-quotes-key.sse/v1;
        format anthropic;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider quoting_stream {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-event-quotes-key.sse/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider quoting_responses {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:responses-failed-quotes-key.sse/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_route q_stream { target quoting_stream; }
    llm_route q_responses { target quoting_responses; }
    llm_provider quoting_nested {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-quotes-key.json,status=401,length=1/v1;
        key QUOTED-secret-0001;
        header x-api-key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_route q_nested { target quoting_nested; }
    # a key with '/', which the error's JSON writes "\/"
    llm_provider quoting_escaped {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-quotes-escaped-key.json,status=401,length=1/v1;
        key sk-PROVIDER/QUOTED/secret-0002;
    }
    llm_route q_escaped { target quoting_escaped; }
    # the same errors with a 200
    llm_provider quoting_200 {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error-quotes-key.json,status=200,length=1/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_provider aquoting_200 {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:error-quotes-key.json,status=200,length=1/v1;
        format anthropic;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_route q_200 { target quoting_200; }
    llm_route aq_200 { target aquoting_200; }
    # a provider whose answer echoes the Authorization it got in a header
    llm_provider echoing {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        key sk-PROVIDER-QUOTED-secret-0001;
    }
    llm_route q_echo { target echoing; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            add_header X-Echo-Authorization $http_authorization;
            default_type application/json;
            return 200 '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
        }
    }
    llm_route q { target quoting; }
    llm_route q_split { target quoting_split; }
    llm_route aq { target aquoting; }
    llm_route aq_stream { target aquoting_stream; }
CONF
);

run_tests();

__DATA__

=== TEST 1: a completion after two failovers leaves no key in the debug log
--- more_headers
Authorization: Bearer sk-CLIENT-key
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"authorization":"Bearer sk-PROVIDER-MOCK-secret")(?=.*"x_api_key":null)/s
--- raw_response_headers_like: X-Leak-Test: \[\]\r\n
--- no_error_log
sk-PROVIDER-DOWN-secret
sk-PROVIDER-BUSY-secret
sk-PROVIDER-MOCK-secret
--- access_log
auth=[-] org=[org-visible] client=[Bearer sk-CLIENT-key]



=== TEST 2: the provider saw its key, not the client's
--- more_headers
Authorization: Bearer sk-CLIENT-key
x-api-key: sk-CLIENT-other
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_unlike: sk-CLIENT



=== TEST 3: a failure leaves no key in the error body, headers or log
--- request
POST /v1/chat/completions
{"model":"broken","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body_unlike: sk-PROVIDER
--- raw_response_headers_unlike: sk-PROVIDER
--- no_error_log
sk-PROVIDER-DOWN-secret



=== TEST 4: a stream leaves no key in the debug log
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: data: \[DONE\]
--- raw_response_headers_unlike: sk-PROVIDER
--- no_error_log
sk-PROVIDER-MOCK-secret



=== TEST 5: debug logging resumes after the upstream request is built
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"
--- error_log
http upstream process header
http proxy status 200



=== TEST 6: a provider's error that quotes its key: passed on with the key masked, not logged
--- request
POST /v1/chat/completions
{"model":"q","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
^\{"error":\{"message":"Incorrect API key provided: \*{30}\. You can find your API key at https://platform\.openai\.com/account/api-keys\.","type":"invalid_request_error","param":null,"code":"invalid_api_key"\}\}$
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 7: the same error cut by the network in the middle of the key: masked all the same
--- request
POST /v1/chat/completions
{"model":"q_split","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
^\{"error":\{"message":"Incorrect API key provided: \*{30}\. You can
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 8: translated (Anthropic's error to an OpenAI client): the key masked in the message
--- request
POST /v1/chat/completions
{"model":"aq","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
^\{"error":\{"message":"invalid x-api-key: \*{30}","type":"authentication_error",
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 9: at Anthropic's door, Anthropic's error as it came but for the key
--- request
POST /v1/messages
{"model":"aq","max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body eval
qq({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ${\ ('*' x 30)}"},"request_id":"req_011QuotesKey"}\n)
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 10: a translated stream: the key masked in its error event and in what the log quotes of its events
--- request
POST /v1/chat/completions
{"model":"aq_stream","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like chomp
"message":"key \*{30} was revoked"
--- error_log eval
[qr/sent an error in its response: permission_error: key \*{30} was revoked/,
 qr/sent an event the gateway does not understand: "not JSON, with \*{30} in it"/]
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 11: token counting at Anthropic's door: its error passed with the key masked
--- request
POST /v1/messages/count_tokens
{"model":"aq","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body eval
qq({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ${\ ('*' x 30)}"},"request_id":"req_011QuotesKey"}\n)
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 12: a stream in the client's own API whose error event quotes the key: masked in it
--- request
POST /v1/chat/completions
{"model":"q_stream","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like chomp
"content":"Partial".*\n\ndata: \{"error":\{"message":"The key \*{30} was revoked\.",
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 13: the same at Anthropic's door, Anthropic's stream: its error event masked
--- request
POST /v1/messages
{"model":"aq_stream","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- response_body_like chomp
event: error\ndata: \{"type":"error","error":\{"type":"permission_error","message":"key \*{30} was revoked"\}\}
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 14: the Responses API's stream ending with response.failed: its error masked
--- request
POST /v1/responses
{"model":"q_responses","stream":true,"input":"x"}
--- response_body_like chomp
event: response\.failed\ndata: .*"message":"The key \*{30} was revoked\."
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 15: one secret within another (the key, in a header's value): the longer masked whole
--- request
POST /v1/chat/completions
{"model":"q_nested","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
^\{"error":\{"message":"Incorrect API key provided: \*{30}\. You can
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 16: a key with '/' that the error's JSON escapes ("\/"): masked as written
--- request
POST /v1/chat/completions
{"model":"q_escaped","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
^\{"error":\{"message":"Incorrect API key provided: \*{32}\. You can find your API key at https:\\/\\/platform
--- no_error_log
QUOTED



=== TEST 17: the same error translated for Anthropic's door: decoded, then masked
--- request
POST /v1/messages
{"model":"q_escaped","max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like chomp
"message":"Incorrect API key provided: \*{30}\. You can
--- no_error_log
QUOTED



=== TEST 18: the error with a 200, in the client's own API: masked all the same
--- request
POST /v1/chat/completions
{"model":"q_200","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like chomp
^\{"error":\{"message":"Incorrect API key provided: \*{30}\. You can find your API key at https://platform\.openai\.com/account/api-keys\.","type":"invalid_request_error","param":null,"code":"invalid_api_key"\}\}$
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 19: Anthropic's error with a 200 at Anthropic's door: masked
--- request
POST /v1/messages
{"model":"aq_200","max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body eval
qq({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ${\ ('*' x 30)}"},"request_id":"req_011QuotesKey"}\n)
--- no_error_log
sk-PROVIDER-QUOTED



=== TEST 20: a provider's header that echoes the key: masked in what the client gets
--- request
POST /v1/chat/completions
{"model":"q_echo","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_headers eval
"X-Echo-Authorization: Bearer " . ('*' x 30)
--- response_body_like: "content":"ok"
