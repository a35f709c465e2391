# Clients over HTTP/2 (what browsers and many SDKs speak to an nginx with
# "listen ... http2" or "http2 on"): nginx reads the request body from
# DATA frames, with or without a content-length, and the gateway must get
# the same body, answer the same way, fail over and refuse the same
# errors as over HTTP/1.1. The provider side stays HTTP/1.1.
#
# openresty's Test::Nginx writes "http2 on;" for every nginx from 1.19.9,
# a directive nginx has only from 1.25.1: under it, with an older nginx,
# the blocks are skipped (skip_eval); ours writes "listen ... http2" there.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

# a chat body with the target's model: what the provider must receive
sub chat_body {
    return '{"model":"mock-model","messages":[{"role":"user","content":"'
         . $_[0] . '"}]}';
}

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
    }
    llm_route m { target mock mock-model; }
    llm_route fo {
        target down  mock-model;
        target mock  mock-model;
    }
    llm_auth off;
    log_format usage '$server_protocol $status $llm_provider '
                     '$llm_prompt_tokens $llm_completion_tokens';
CONF
    config => <<'CONF',
    location /v1/ {
        client_body_buffer_size 1k;
        client_max_body_size    64k;
        access_log $TEST_NGINX_SERVER_ROOT/logs/access.log usage;
        add_header X-Protocol $server_protocol always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: a completion over HTTP/2: the provider gets the body with the target's model
--- http2
--- skip_eval: 6: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"over h2"}]}
--- response_headers
X-Protocol: HTTP/2.0
x-llm-provider: mock
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('over h2'))
--- access_log eval
qr/^HTTP\/2\.0 200 mock [1-9]\d* [1-9]\d*$/m



=== TEST 2: a stream over HTTP/2: every event, [DONE], and its usage counted
--- http2
--- skip_eval: 6: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"stream"}]}
--- response_headers
X-Protocol: HTTP/2.0
Content-Type: text/event-stream
--- response_body_like eval
qr/\A(?:data: \{"id":[^\n]*\n\n){3,}data: \[DONE\]\n\n\z/s
--- access_log eval
qr/^HTTP\/2\.0 200 mock [1-9]\d* [1-9]\d*$/m



=== TEST 3: a body without a length (DATA frames to the end of the stream), kept in a file
--- http2
--- skip_eval: 4: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- more_headers
Transfer-Encoding: chunked
--- request eval
qq{POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"${\ ('w' x 20000)}"}]}}
--- response_headers
X-Protocol: HTTP/2.0
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('w' x 20000))



=== TEST 4: failover over HTTP/2: the next target gets the whole body again
--- http2
--- skip_eval: 7: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- request eval
qq{POST /v1/chat/completions
{"model":"fo","messages":[{"role":"user","content":"${\ ('f' x 20000)}"}]}}
--- response_headers
X-Protocol: HTTP/2.0
x-llm-provider: mock
x-llm-attempts: 2
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('f' x 20000))
--- error_log
provider "down" failed with 502



=== TEST 5: a body over client_max_body_size without a length: 413 in OpenAI's shape
--- http2
--- skip_eval: 5: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- more_headers
Transfer-Encoding: chunked
--- request eval
qq{POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"${\ ('x' x 70000)}"}]}}
--- error_code: 413
--- response_headers
X-Protocol: HTTP/2.0
Content-Type: application/json
--- response_body_like chomp
^\{"error":\{"message":"[^"]+","type":"invalid_request_error","param":null,"code":"request_too_large"\}\}$



=== TEST 6: JSON that is not: 400 in OpenAI's shape, over HTTP/2 as over HTTP/1.1
--- http2
--- skip_eval: 5: $INC{'Test/Nginx/Util.pm'} && $Test::Nginx::Util::NginxVersion < 1.025001
--- request
POST /v1/chat/completions
{"model":"m","messages":[
--- error_code: 400
--- response_headers
X-Protocol: HTTP/2.0
Content-Type: application/json
--- response_body_like chomp
^\{"error":\{"message":"[^"]+","type":"invalid_request_error","param":null,"code":null\}\}$
