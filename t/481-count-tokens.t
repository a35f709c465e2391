# Anthropic's token counting, POST /v1/messages/count_tokens at the
# Anthropic door: passed to the route's first Anthropic-format target with
# the target's model, its {"input_tokens":N} passed back; nothing charged;
# a route without an Anthropic-format target is refused in Anthropic's
# error shape; keys' model allowlists hold.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    log_format count '$llm_key $status p=$llm_prompt_tokens '
                     'c=$llm_completion_tokens cost=$llm_cost '
                     'provider=$llm_provider attempts=$llm_attempts';
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider an42 {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/input_tokens=42/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider oa {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route claude { target an claude-real-name input=3 output=15; }
    llm_route plain { target an42 claude-real-name input=3 output=15; }
    llm_route mixed {
        target oa gpt-x;
        target an42 claude-real-name;
        strategy ordered;
    }
    llm_route gpt { target oa gpt-x; }
    llm_key alice {
        key sk-alice-0123456789;
        models claude plain mixed gpt;
    }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/access.log count;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    more_headers => "x-api-key: sk-alice-0123456789\nanthropic-version: 2023-06-01",
);

run_tests();

__DATA__

=== TEST 1: passed to the Anthropic target: its URL, its model, its key
--- request
POST /v1/messages/count_tokens
{"model":"claude","system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude"}]}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{"input_tokens":\d+,"mock":\{
    (?=.*"path":"\/anthropic\/echo=1\/v1\/messages\/count_tokens")
    (?=.*"x-api-key":"\(set\)")
    (?=.*"anthropic-version":"2023-06-01")
    (?=.*"model":"claude-real-name")
    (?=.*"system":"Be\ brief\.")/sx



=== TEST 2: the count as Anthropic gives it; nothing charged
--- request
POST /v1/messages/count_tokens
{"model":"plain","messages":[{"role":"user","content":"Hello"}]}
--- response_body chomp
{"input_tokens":42}
--- access_log
alice 200 p=0 c=0 cost=0.000000000 provider=an42 attempts=1



=== TEST 3: a route's other targets are skipped for its Anthropic one
--- request
POST /v1/messages/count_tokens
{"model":"mixed","messages":[{"role":"user","content":"Hello"}]}
--- response_body chomp
{"input_tokens":42}
--- access_log
alice 200 p=0 c=0 cost=0.000000000 provider=an42 attempts=1



=== TEST 4: a route without an Anthropic-format target cannot count
--- request
POST /v1/messages/count_tokens
{"model":"gpt","messages":[{"role":"user","content":"Hello"}]}
--- error_code: 400
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"The model `gpt` cannot count tokens: /v1/messages/count_tokens is served by Anthropic-format targets only, and its target's provider `oa` is in format \"openai\"."}}



=== TEST 5: messages are required, max_tokens is not
--- request
POST /v1/messages/count_tokens
{"model":"plain"}
--- error_code: 400
--- response_body_like: ^\{"type":"error","error":\{"type":"invalid_request_error","message":"Missing required parameter: 'messages'\."\}\}$



=== TEST 6: a key's model allowlist holds, before the route's formats are told
--- http_config
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider oa { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route claude { target oa; }
    llm_route other { target an; }
    llm_key bob { key sk-bob-0123456789; models other; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
x-api-key: sk-bob-0123456789
--- request
POST /v1/messages/count_tokens
{"model":"claude","messages":[{"role":"user","content":"Hello"}]}
--- error_code: 403
--- response_body chomp
{"type":"error","error":{"type":"permission_error","message":"The key `bob` may not use model `claude`."}}



=== TEST 7: the provider's error passes in Anthropic's shape
--- http_config
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/key=sk-other/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_route claude { target an; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
--- request
POST /v1/messages/count_tokens
{"model":"claude","messages":[{"role":"user","content":"Hello"}]}
--- error_code: 401
--- response_body_like: ^\{"type":"error","error":\{"type":"authentication_error","message":"invalid x-api-key"\}



=== TEST 8: a GET is not allowed, in Anthropic's shape
--- request
GET /v1/messages/count_tokens
--- error_code: 405
--- response_body_like: ^\{"type":"error","error":\{"type":"invalid_request_error"



=== TEST 9: a count is a request of no tokens: budgets that refuse any answer let it through, rpm counts it
--- http_config
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/input_tokens=7/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_route claude { target an input=3 output=15; }
    llm_key carol {
        key sk-carol-0123456789;
        rpm 3;
        budget 1tokens/day;
        budget 0.000001usd/day;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
x-api-key: sk-carol-0123456789
--- request eval
my $count = "POST /v1/messages/count_tokens\n"
          . '{"model":"claude","messages":[{"role":"user","content":"Hi"}]}';
[$count, $count,
 "POST /v1/messages\n"
 . '{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}',
 $count, $count]
--- error_code eval
[200, 200, 429, 200, 429]
--- response_body_like eval
['^\{"input_tokens":7\}$', '^\{"input_tokens":7\}$', 'Budget exhausted',
 '^\{"input_tokens":7\}$', 'requests per minute']
