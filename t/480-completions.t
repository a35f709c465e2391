# Legacy text completions, POST /v1/completions: passed to OpenAI-format
# targets as they are (the target's model spliced in, usage asked for in
# streams), answered as text_completion objects, usage charged; the
# route's targets in other formats are skipped, and a route with none in
# OpenAI's format is refused; keys' model allowlists hold; a guard policy
# reads prompts and answers as it reads chat's.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    log_format usage '$llm_key $status p=$llm_prompt_tokens '
                     'c=$llm_completion_tokens cost=$llm_cost '
                     'provider=$llm_provider attempts=$llm_attempts';
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
    }
    llm_route m {
        target mock text-model-v2 input=2.50 output=10.00;
    }
    llm_route twice {
        target down;
        target mock;
        strategy ordered;
    }
    llm_route mixed {
        target claude claude-haiku;
        target mock;
        strategy ordered;
    }
    llm_route claude-only {
        target claude claude-haiku;
    }
    llm_guard legacy {
        deny   secret "sk-[A-Za-z0-9]{20,}" where=both;
        redact email  "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";
    }
    llm_route guarded {
        target mock text-model-v2;
        guard legacy;
    }
    llm_key alice {
        key sk-alice-0123456789;
        models m twice mixed claude-only guarded;
    }
CONF
    config => $LLM::Fixtures::USAGE_CONFIG,
    more_headers => 'Authorization: Bearer sk-alice-0123456789',
);

run_tests();

__DATA__

=== TEST 1: a completion: to the provider's /completions, its model, usage charged
--- request
POST /v1/completions
{"model":"m","prompt":"Say this is a test","max_tokens":7,"mock":{"prompt_tokens":1000,"completion_tokens":200}}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"object":"text_completion")
    (?=.*"model":"text-model-v2")
    (?=.*"path":"\/v1\/completions")
    (?=.*"authorization":"Bearer\ sk-provider-one")
    (?=.*"choices":\[\{"text":"\ and\ the\ mock\ provider\ completes:\ Say\ this\ is\ a\ test")
    (?=.*"usage":\{"prompt_tokens":1000,"completion_tokens":200)/sx
--- access_log
alice 200 p=1000 c=200 cost=0.004500000 provider=mock attempts=1



=== TEST 2: the rest of the body arrives byte for byte
--- request eval
"POST /v1/completions\n"
. '{"echo":false,"model" : "m","prompt":["one","two"],"n":2,"logprobs":null}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"echo":false,"model":"text-model-v2","prompt":["one","two"],"n":2,"logprobs":null}')



=== TEST 3: a stream: text chunks as they are, usage asked for, charged, not shown
--- request
POST /v1/completions
{"model":"m","stream":true,"prompt":"x","mock":{"prompt_tokens":30,"completion_tokens":12,"reply":"a b c"}}
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/\A(?!.*"usage")(?!.*chat\.completion)(?=.*"include_usage":true)
   (?=.*"object":"text_completion")
   (?=.*"choices":\[\{"text":"a","index":0)
   (?=.*"finish_reason":"stop")
   .*data:\ \[DONE\]\n\n\z/sx
--- access_log
alice 200 p=30 c=12 cost=0.000195000 provider=mock attempts=1



=== TEST 4: the client that asks for usage gets the usage chunk
--- request
POST /v1/completions
{"model":"m","stream":true,"stream_options":{"include_usage":true},"prompt":"x","mock":{"prompt_tokens":30,"completion_tokens":12}}
--- response_body_like: "choices":\[\],"model":"text-model-v2","system_fingerprint":"fp_mock","usage":\{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42\}\}\n\ndata: \[DONE\]\n\n$
--- access_log
alice 200 p=30 c=12 cost=0.000195000 provider=mock attempts=1



=== TEST 5: a prompt of token ids
--- request
POST /v1/completions
{"model":"m","prompt":[[1212,318],[257,1332]],"mock":{"prompt_tokens":4,"completion_tokens":3}}
--- response_body_like: "object":"text_completion"
--- access_log
alice 200 p=4 c=3 cost=0.000040000 provider=mock attempts=1



=== TEST 6: no prompt: refused before any provider sees it
--- request
POST /v1/completions
{"model":"m","max_tokens":5}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Missing required parameter: 'prompt'.","type":"invalid_request_error","param":"prompt","code":"missing_required_parameter"}}



=== TEST 7: a prompt of an object is refused
--- request
POST /v1/completions
{"model":"m","prompt":{"text":"x"}}
--- error_code: 400
--- response_body_like: "message":"Invalid type for 'prompt': got an object\.","type":"invalid_request_error","param":"prompt"



=== TEST 7b: a prompt of any other shape is refused before a provider sees it
--- request eval
[map { "POST /v1/completions\n" . qq({"model":"m","prompt":$_}) }
 '[{}]', '[1,"a"]', '[[1],"a"]', '[1.5]', '[-1]', '[]', '[[]]', '[["a"]]',
 '[[[1]]]', '[true]', '[null]', '[100000000000]', '[1e3]']
--- error_code eval
[(400) x 13]
--- response_body eval
[(q{{"error":{"message":"Invalid 'prompt': expected a string, an array of strings, an array of token ids or an array of arrays of token ids, not empty.","type":"invalid_request_error","param":"prompt","code":null}}}) x 13]



=== TEST 8: failover across two OpenAI-format targets
--- request
POST /v1/completions
{"model":"twice","prompt":"x"}
--- response_body_like: "object":"text_completion"
--- access_log
alice 200 p=1 c=12 cost=0.000000000 provider=mock attempts=2



=== TEST 9: a target of another format is skipped, not tried
--- request
POST /v1/completions
{"model":"mixed","prompt":"x"}
--- response_body_like: (?=.*"object":"text_completion")(?=.*"path":"\/v1\/completions")
--- access_log
alice 200 p=1 c=12 cost=0.000000000 provider=mock attempts=1



=== TEST 10: a route without an OpenAI-format target is refused clearly
--- request
POST /v1/completions
{"model":"claude-only","prompt":"x"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"The endpoint /v1/completions is served by OpenAI-format targets only; the targets of model `claude-only` are not (provider `claude` is in format \"anthropic\").","type":"invalid_request_error","param":"model","code":"unsupported_endpoint"}}



=== TEST 11: a key's model allowlist holds, before the route's formats are told
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider claude {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
    }
    llm_route m { target claude; }
    llm_route other { target mock; }
    llm_key bob { key sk-bob-0123456789; models other; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Authorization: Bearer sk-bob-0123456789
--- request
POST /v1/completions
{"model":"m","prompt":"x"}
--- error_code: 403
--- response_body chomp
{"error":{"message":"The key `bob` may not use model `m`.","type":"permission_error","param":"model","code":"model_not_allowed"}}



=== TEST 12: without a key, refused before the body is read
--- more_headers
--- request
POST /v1/completions
{"model":"m","prompt":"x"}
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 13: a GET is not allowed
--- request
GET /v1/completions
--- error_code: 405
--- response_body_like: "code":"method_not_allowed"



=== TEST 14: a guard policy reads the prompt: a string, or an array of strings
--- request eval
["POST /v1/completions\n" . '{"model":"guarded","prompt":"use sk-abcdefghijklmnopqrstuvwxyz please"}',
 "POST /v1/completions\n" . '{"model":"guarded","prompt":["fine","use sk-abcdefghijklmnopqrstuvwxyz"]}']
--- error_code eval
[400, 400]
--- response_body eval
[('{"error":{"message":"The request was refused by the guard policy `legacy` (rule `secret`).","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}') x 2]



=== TEST 14b: token ids cannot be read by its rules: refused, as embeddings' are
--- request eval
["POST /v1/completions\n" . '{"model":"guarded","prompt":[1212,318]}',
 "POST /v1/completions\n" . '{"model":"guarded","prompt":[[1212],[318]]}']
--- error_code eval
[400, 400]
--- response_body_like eval
[("could not be checked by the guard policy `legacy`") x 2]



=== TEST 14c: a redact rule: the provider gets the prompt redacted (the mock echoes its body)
--- request
POST /v1/completions
{"model":"guarded","prompt":"mail bob@example.com today","max_tokens":5,"mock":{"echo":1}}
--- error_code: 200
--- response_body_like: ^(?![\s\S]*bob@)\{"id":"cmpl-[^"]+","object":"text_completion","created":\d+,"model":"text-model-v2","choices":\[\{"text":"\{.*\\"prompt\\":\\"mail \[EMAIL\] today\\".*\\"max_tokens\\":5.*","index":0,"logprobs":null,"finish_reason":"stop"\}\],"usage":\{"prompt_tokens":\d+,



=== TEST 14d: an answer redacted, whole: a text_completion, its usage charged
--- request
POST /v1/completions
{"model":"guarded","prompt":"hi","mock":{"reply":"write to alice@example.com today","prompt_tokens":100,"completion_tokens":20}}
--- error_code: 200
--- response_body_like: ^(?![\s\S]*alice@)\{"id":"cmpl-mock-\w+","object":"text_completion","created":\d+,"model":"text-model-v2","choices":\[\{"text":"write to \[EMAIL\] today","index":0,"logprobs":null,"finish_reason":"stop"\}\],"usage":\{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,
--- access_log
alice 200 p=100 c=20



=== TEST 14e: an answer redacted as it streams: text_completion chunks, the placeholder whole
--- request
POST /v1/completions
{"model":"guarded","prompt":"hi","stream":true,"stream_options":{"include_usage":true},"mock":{"reply":"write to alice@example.com today","prompt_tokens":100,"completion_tokens":20}}
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_like: \A(?!.*alice)data: \{"id":"cmpl-mock-\w+","object":"text_completion","created":\d+,"model":"text-model-v2","choices":\[\{"text":"write ","index":0,"logprobs":null,"finish_reason":null\}\]\}\n\n.*"text":"\[EMAIL\]".*"text":"today".*"choices":\[\{"text":"","index":0,"logprobs":null,"finish_reason":"stop"\}\]\}\n\ndata: \{[^\n]*"choices":\[\],"usage":\{"prompt_tokens":100,"completion_tokens":20,[^\n]*\}\n\ndata: \[DONE\]\n\n\z



=== TEST 14f: a deny rule stops a streamed answer before the match, with an error event
--- request
POST /v1/completions
{"model":"guarded","prompt":"hi","stream":true,"mock":{"reply":"here it is: sk-abcdefghijklmnopqrstuvwxyz and more"}}
--- response_body_like: \A(?!.*abcdefghij)(?!.*and more).*"text":"here ".*data: \{"error":\{"message":"The answer was stopped by the guard policy `legacy` \(rule `secret`\)\.","type":"invalid_request_error","param":null,"code":"content_policy_violation"\}\}\n\n
--- error_log
llm: answer stopped by guard policy "legacy", rule "secret"



=== TEST 15: never cached: the same completion twice reaches the provider twice
--- http_config
    proxy_cache_path completions_cache keys_zone=completions_cache:1m;
    log_format cached '$status cache=$upstream_cache_status '
                      'llm=[$llm_cache_status] upstream=$upstream_status';
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- config
    location /v1/ {
        access_log logs/access.log cached;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache completions_cache;
        proxy_cache_valid 200 10m;
        llm_cache on;
    }
--- more_headers
--- request eval
["POST /v1/completions\n" . '{"model":"m","prompt":"x","temperature":0}',
 "POST /v1/completions\n" . '{"model":"m","prompt":"x","temperature":0}']
--- response_body_like eval
['"object":"text_completion"', '"object":"text_completion"']
--- access_log
200 cache=BYPASS llm=[BYPASS] upstream=200
--- no_access_log
HIT
