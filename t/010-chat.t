# Chat completions routed to an OpenAI-format provider: the model name is
# rewritten for the target, the provider gets its own key and never the
# client's, and the rest of the body arrives unchanged.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use Digest::SHA ();

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the target's model replaces the client's, the provider gets its key
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-one;
    }
    llm_route gpt-4o {
        target mock gpt-4o-2024-08-06;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Authorization: Bearer sk-client-secret
x-api-key: sk-client-other
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"object":"chat\.completion")
    (?=.*"model":"gpt-4o-2024-08-06")
    (?=.*"authorization":"Bearer\ sk-provider-one")
    (?=.*"x_api_key":null)
    (?=.*"path":"\/v1\/chat\/completions")
    (?=.*"content":"Hello\ from\ the\ mock\ provider\.\ You\ said:\ Hello")/sx
--- no_error_log
sk-provider-one



=== TEST 2: the rest of the body arrives byte for byte
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route small {
        target mock a-much-longer-provider-model-name;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n"
. '{"temperature":0.2,"model" :  "small" ,"messages":[{"role":"user",'
. '"content":"ünïcödé \u00e9 \"quoted\" \\\\ back\\nslash ✓ 😀"}],"n":1}'
--- response_body_like eval
my $sent = '{"temperature":0.2,"model":"a-much-longer-provider-model-name" ,'
         . '"messages":[{"role":"user","content":"ünïcödé \u00e9 \"quoted\" '
         . '\\\\ back\\nslash ✓ 😀"}],"n":1}';
utf8::encode($sent) if utf8::is_utf8($sent);
qr/"body_sha256":"${\ Digest::SHA::sha256_hex($sent)}"/



=== TEST 3: without a target model the client's name passes, body untouched
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route passthrough-model {
        target mock;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"passthrough-model", "messages":[{"role":"user","content":"x"}]}'
--- response_body_like eval
my $sent = '{"model":"passthrough-model", "messages":[{"role":"user",'
         . '"content":"x"}]}';
qr/(?=.*"model":"passthrough-model")(?=.*"body_sha256":"${\ Digest::SHA::sha256_hex($sent)}")/s



=== TEST 4: a glob route passes what its '*' matched
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "openai/*" {
        target mock "*";
    }
    llm_route "*-fast" {
        target mock "turbo-*-v2";
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"openai/gpt-4.1-mini","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"gpt-4\.1-mini"



=== TEST 5: a glob's capture can sit inside the target model
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "*-fast" {
        target mock "turbo-*-v2";
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"llama-fast","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"turbo-llama-v2"



=== TEST 6: an exact route wins over a glob; globs go in configuration order
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "gpt-*" {
        target mock first-glob;
    }
    llm_route "gpt-4*" {
        target mock second-glob;
    }
    llm_route gpt-4o {
        target mock exact;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"exact"



=== TEST 7: the first matching glob serves
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "gpt-*" {
        target mock first-glob;
    }
    llm_route "gpt-4*" {
        target mock second-glob;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"first-glob"



=== TEST 8: an escaped model name is routed by its value
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route gpt-4o {
        target mock routed;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"gp\u0074-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"routed"



=== TEST 9: a model name with quotes and backslashes is written as JSON
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "odd/*" {
        target mock "*";
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"odd/a\"b\\c","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"a\\"b\\\\c"



=== TEST 10: a provider's extra header travels once, also with the proxy_set_header line of an older llm_proxy_params; Host is the provider's
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        host api.example.test;
        header X-Extra "extra value";
        header OpenAI-Organization org-42;
    }
    llm_route m {
        target mock;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_set_header X-Extra $llm_header_x_extra;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"extra":"extra value")(?=.*"host":"api\.example\.test")(?=.*"headers":"(?![^"]*x-extra[^"]*x-extra)[^"]*x-extra[^"]*openai-organization)/s
--- response_headers
!OpenAI-Organization



=== TEST 11: the provider's base path is kept
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/some/prefix/v1/;
    }
    llm_route m {
        target mock;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "path":"/some/prefix/v1/chat/completions"



=== TEST 12: any location prefix works, and a trailing slash
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route m {
        target mock;
    }
--- config
    location /openai/v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /openai/v1/chat/completions/
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 13: a provider in an upstream block, with keepalive
--- http_config
    upstream mock_pool {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 4;
    }
    llm_provider pool {
        url http://mock_pool/v1;
        host mock.internal;
        key sk-pool;
    }
    llm_route m {
        target pool;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"host":"mock\.internal")(?=.*"authorization":"Bearer sk-pool")/s



=== TEST 14: a provider on a unix socket
--- http_config
    llm_provider sock {
        url http://unix:$TEST_NGINX_SERVER_ROOT/mock.sock:/v1;
    }
    llm_route m {
        target sock;
    }
    server {
        listen unix:$TEST_NGINX_SERVER_ROOT/mock.sock;
        location / {
            postpone_output 0;
            js_content openai.chat;
        }
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"host":"localhost")(?=.*"path":"\/v1\/chat\/completions")/s



=== TEST 15: variables describe the attempt in the access log
--- http_config
    log_format llm 'model=$llm_model route=$llm_route provider=$llm_provider '
                   'target=$llm_target_model attempts=$llm_attempts '
                   'stream=$llm_stream';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route "fam/*" {
        target mock "x-*";
    }
--- config
    location /v1/ {
        access_log logs/access.log llm;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"fam/one","stream":false,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"x-one"
--- access_log
model=fam/one route=fam/* provider=mock target=x-one attempts=1 stream=0



=== TEST 16: llm_response_headers off: no x-llm-* on an answer, a cache hit or a failure; the log still knows
--- http_config
    log_format llm 'provider=$llm_provider attempts=$llm_attempts';
    proxy_cache_path llm_cache keys_zone=answers:1m;
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
    }
    llm_route m {
        target mock;
    }
    llm_route down {
        target down;
    }
    llm_response_headers off;
--- config
    location /v1/ {
        access_log logs/access.log llm;
        proxy_cache answers;
        proxy_cache_valid 200 1m;
        llm_cache on;
        add_header X-Cache $llm_cache_status;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"down\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[200, 200, 502]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "!X-Cache"]
--- raw_response_headers_unlike eval
[qr/^x-llm-/mi, qr/^x-llm-/mi, qr/^x-llm-/mi]
--- response_body_like eval
['"object":"chat\.completion"', '"object":"chat\.completion"', '"code":"upstream_error"']
--- access_log
provider=mock attempts=1
