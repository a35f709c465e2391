# Misconfiguration stops nginx at start (as nginx -t would), naming the
# file and line.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

$ENV{LLM_TEST_KEY_FROM_ENV} = 'sk-from-env-1234';

run_tests();

__DATA__

=== TEST 1: a route names an unknown provider: the target's line is named
--- http_config
    llm_route m {
        # five lines
        # between
        # the route
        # and its
        # target
        target nobody;
    }
--- must_die
--- error_log eval
qr/target in \S+nginx\.conf:(\d+) names unknown llm_provider "nobody" \(llm_route "m" in line (??{ $1 - 6 })\)/



=== TEST 2: a provider without url
--- http_config
    llm_provider p {
        key abc;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*llm_provider "p" has no "url" in \S+nginx\.conf:\d+/



=== TEST 3: a url without scheme
--- http_config
    llm_provider p {
        url api.openai.com/v1;
    }
--- must_die
--- error_log eval
qr/invalid url "api.openai.com\/v1": it must start with "http:\/\/" or "https:\/\/" in \S+nginx\.conf:\d+/



=== TEST 4: a url with a query string
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1?key=x;
    }
--- must_die
--- error_log
query strings and fragments are not allowed



=== TEST 5: an unknown format
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1;
        format cohere-v9;
    }
--- must_die
--- error_log
unknown provider format "cohere-v9"



=== TEST 6: an unknown directive in a provider
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1;
        model gpt-4o;
    }
--- must_die
--- error_log
unknown directive "model" in llm_provider



=== TEST 7: a duplicate provider
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_provider p { url http://127.0.0.1/v2; }
--- must_die
--- error_log
duplicate llm_provider "p"



=== TEST 8: a key from an unset variable
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE;
    }
--- must_die
--- error_log
environment variable "LLM_TEST_SURELY_UNSET_VARIABLE" of llm_provider "p" is not set



=== TEST 9: a key from a missing file
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1;
        key file:/nonexistent/key.txt;
    }
--- must_die
--- error_log
open() "/nonexistent/key.txt" failed



=== TEST 10: a provider named by hostname needs a resolver
--- http_config
    llm_provider p {
        url https://api.example.invalid/v1;
    }
--- must_die
--- error_log eval
qr/llm_provider "p" in \S+nginx\.conf:\d+ names host "api\.example\.invalid", which needs a "resolver" in the gateway location "\/v1\/"/



=== TEST 11: with a resolver it starts
--- http_config
    llm_provider p {
        url https://api.example.invalid/v1;
    }
    llm_route m { target p; }
--- config
    resolver 127.0.0.1:1 ipv6=off;
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
GET /v1/models
--- response_body_like: "id":"m"



=== TEST 12: a host that is an upstream block needs no resolver
--- http_config
    upstream pool { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
    llm_provider p { url http://pool/v1; }
    llm_route m { target p; }
--- request
GET /v1/models
--- response_body_like: "id":"m"



=== TEST 13: a provider's own header needs no proxy_set_header line: it reaches the provider once
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        header X-Custom-Thing yes;
    }
    llm_route m { target p; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like eval
qr/"headers":"(?![^"]*x-custom-thing[^"]*x-custom-thing)[^"]*x-custom-thing/



=== TEST 14: a gateway without the snippet
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
--- config
    location /v1/ {
        llm_gateway;
    }
--- must_die
--- error_log
llm_gateway location "/v1/" has no proxy_pass: include llm_proxy_params in it



=== TEST 15: a gateway without the failover error_page
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass $llm_upstream;
    }
--- must_die
--- error_log
needs "error_page 502 504 = $uri$is_args$args;" and "recursive_error_pages on;"



=== TEST 16: a provider key needs no proxy_set_header line: the module writes it
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; key sk-1; }
    llm_route m { target p; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass $llm_upstream;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like: "authorization":"Bearer sk-1"



=== TEST 16b: a gateway whose proxy_pass is neither llm_upstream nor $llm_upstream
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; key sk-1; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass http://127.0.0.1:$server_port;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- must_die
--- error_log
llm_gateway location "/v1/" needs "proxy_pass https://llm_upstream;" (or $llm_upstream): include llm_proxy_params in it



=== TEST 16b2: a gateway whose proxy_pass is another fixed URL, beside one whose is $llm_upstream
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; key sk-1; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass $llm_upstream;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }

    location /v2/ {
        llm_gateway;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- must_die
--- error_log
llm_gateway location "/v2/" needs "proxy_pass https://llm_upstream;" (or $llm_upstream), not another URL: include llm_proxy_params in it



=== TEST 16c: a provider's several headers and its dialect's per-attempt one arrive once each, its own first; the log has their values, not the key
--- http_config
    # a hop before the mock, logging the request as it arrived
    log_format hop escape=json 'hop $echo_client_request_headers';
    log_format sent 'sent a=[$llm_header_x_a] b=[$llm_header_x_b] '
                    'version=[$llm_header_anthropic_version] '
                    'beta=[$llm_header_anthropic_beta] '
                    'key=[$llm_header_x_api_key]';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            access_log logs/access.log hop;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/anthropic/v1;
        format anthropic;
        key sk-ant-mock-key;
        header X-A one;
        header X-B two;
    }
    llm_route m { target p claude; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log sent;
    }
--- more_headers
anthropic-beta: b1
--- request
POST /v1/messages
{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like: "type":"message"
--- access_log eval
[qr/^hop POST \/anthropic\/v1\/messages HTTP\/1\.1\\r\\nx-a: one\\r\\nx-b: two\\r\\nanthropic-version: 2023-06-01\\r\\nx-api-key: sk-ant-mock-key\\r\\nanthropic-beta: b1\\r\\n(?!(?i).*(?:x-a|x-b|anthropic-version|x-api-key|anthropic-beta):)/,
 "sent a=[one] b=[two] version=[2023-06-01] beta=[b1] key=[-]"]



=== TEST 17: a route with two stars
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_route "a*b*" { target p; }
--- must_die
--- error_log
llm_route "a*b*" has more than one "*"



=== TEST 18: a star in the target of an exact route
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_route exact { target p "x-*"; }
--- must_die
--- error_log
target model "x-*" may have one "*", and only in a route whose name has one



=== TEST 19: a route without targets
--- http_config
    llm_route empty { }
--- must_die
--- error_log
llm_route "empty" has no "target"



=== TEST 20: retries out of range
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_route m { target p; retries 20; }
--- must_die
--- error_log
invalid "retries" value "20": it must be 0 to 7



=== TEST 21: a bad weight
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_route m { target p weight=0; }
--- must_die
--- error_log
invalid weight "weight=0": it must be 1 to 1000



=== TEST 22: a duplicate route
--- http_config
    llm_provider p { url http://127.0.0.1/v1; }
    llm_route m { target p; }
    llm_route m { target p; }
--- must_die
--- error_log
duplicate llm_route "m"



=== TEST 23: llm_gateway takes on or off
--- http_config
--- config
    location /v1/ {
        llm_gateway maybe;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- must_die
--- error_log
invalid value "maybe" in "llm_gateway" directive, it must be "on" or "off"



=== TEST 24: llm_gateway off leaves a location alone
--- http_config
--- config
    location /v1/ {
        llm_gateway off;
        return 200 "plain\n";
    }
--- request
POST /v1/chat/completions
{}
--- response_body
plain



=== TEST 25: keys from the environment and from a file, and a literal key
--- user_files
>>> key.txt
sk-from-file-5678

--- http_config
    llm_provider from_env {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key env:LLM_TEST_KEY_FROM_ENV;
    }
    llm_provider from_file {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key file:$TEST_NGINX_SERVER_ROOT/html/key.txt;
    }
    llm_route env { target from_env; }
    llm_route file { target from_file; }
--- request
POST /v1/chat/completions
{"model":"file","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "authorization":"Bearer sk-from-file-5678"



=== TEST 26: a key from the environment
--- http_config
    llm_provider from_env {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key env:LLM_TEST_KEY_FROM_ENV;
    }
    llm_route env { target from_env; }
--- request
POST /v1/chat/completions
{"model":"env","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "authorization":"Bearer sk-from-env-1234"



=== TEST 27: a key with a control character
--- http_config
    llm_provider p {
        url http://127.0.0.1/v1;
        key "sk-abc\r\nX-Injected: 1";
    }
--- must_die
--- error_log
the key of llm_provider "p" contains control characters



=== TEST 28: more provider headers than an attempt has room for
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        header x-h1 v;
        header x-h2 v;
        header x-h3 v;
        header x-h4 v;
        header x-h5 v;
        header x-h6 v;
        header x-h7 v;
        header x-h8 v;
        header x-h9 v;
        header x-h10 v;
        header x-h11 v;
        header x-h12 v;
        header x-h13 v;
        header x-h14 v;
        header x-h15 v;
        header x-h16 v;
        header x-h17 v;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*llm_provider "p" in \S+nginx\.conf:\d+ has 17 "header" lines: at most 16 with format openai/



=== TEST 29: llm_request_memory takes a multiple and a size
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target p; }
    llm_request_memory 0x;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid multiple "0x" in "llm_request_memory": a number from 1 to 1000, such as 16x, is expected in \S+nginx\.conf:\d+/



=== TEST 30: llm_request_memory's maximum is at least 64k
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target p; }
    llm_request_memory 8x 1k;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid size "1k" in "llm_request_memory": at least 64k is expected in \S+nginx\.conf:\d+/



=== TEST 31: max_models is a number from 1 to 100000
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "m/*" { target p "*"; max_models 0; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid "max_models" value "0": it must be a number from 1 to 100000 in \S+nginx\.conf:\d+/



=== TEST 32: a route of 64 targets, the most: every one kept, in order
--- http_config eval
"    llm_provider p { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n"
. "    llm_route many {\n"
. CORE::join('', map { "        target p m$_;\n" } 1 .. 64)
. "    }\n"
--- config
    location = /llm/status {
        llm_status;
    }
--- request
GET /llm/status
--- response_body_like eval
my $t = CORE::join ',', map {
    qq({"provider":"p","model":"m$_","weight":1,"enabled":true})
} 1 .. 64;
qr/"name":"many",[^\[]*"targets":\[\Q$t\E\]/



=== TEST 33: a route of 65 targets is refused
--- http_config eval
"    llm_provider p { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n"
. "    llm_route many {\n"
. CORE::join('', map { "        target p m$_;\n" } 1 .. 65)
. "    }\n"
--- must_die
--- error_log eval
qr/\[emerg\].*llm_route "many" has more than 64 targets in \S+nginx\.conf:\d+/
