# Request bodies: in memory or spilled to a temporary file, chunked or not,
# up to 1 MiB; the provider receives exactly the client's bytes with only
# the model name replaced, wherever the "model" key stands.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route small {
        target mock provider-side-model;
    }
CONF
);

# the body a client sends, and the one the provider must get
sub chat_body {
    my ($model, $content, %o) = @_;
    my $pre = $o{pre} // '';
    my $sep = $o{sep} // ':';
    return qq({$pre"model"$sep"$model","messages":[{"role":"user",)
         . qq("content":"$content"}]});
}

run_tests();

__DATA__

=== TEST 1: a body spilled to a temporary file
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n" . main::chat_body('small', 'z' x 50000)
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('provider-side-model', 'z' x 50000))
--- error_log eval
[qr/llm body: 50059 bytes in 1 segments, file: yes/,
 'a client request body is buffered to a temporary file']



=== TEST 2: a 1 MiB body, model rewritten
--- config
    location /v1/ {
        client_max_body_size 2m;
        client_body_buffer_size 16k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n" . main::chat_body('small', 'x' x (1024 * 1024))
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('provider-side-model', 'x' x (1024 * 1024)))
--- timeout: 20



=== TEST 3: a 1 MiB body kept in memory
--- config
    location /v1/ {
        client_max_body_size 2m;
        client_body_buffer_size 2m;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n" . main::chat_body('small', 'q' x (1024 * 1024))
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('provider-side-model', 'q' x (1024 * 1024)))
--- error_log
file: no
--- timeout: 20



=== TEST 4: a chunked body
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /v1/chat/completions\n"
. LLM::Fixtures::chunked(main::chat_body('small', 'c' x 5000))
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('provider-side-model', 'c' x 5000))



=== TEST 5: a chunked body spilled to a file
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /v1/chat/completions\n"
. LLM::Fixtures::chunked(main::chat_body('small', 'f' x 40000))
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('provider-side-model', 'f' x 40000))
--- error_log
file: yes



=== TEST 6: the model key last, with whitespace around the colon
--- request eval
"POST /v1/chat/completions\n"
. qq({"messages":[{"role":"user","content":"hi"}],"temperature":0,\n  "model"\n :\t "small"\n})
--- response_body_like eval
LLM::Fixtures::body_digest_re(qq({"messages":[{"role":"user","content":"hi"}],"temperature":0,\n  "model":"provider-side-model"\n}))



=== TEST 7: only the top-level model is rewritten
--- request eval
"POST /v1/chat/completions\n"
. '{"metadata":{"model":"small"},"model":"small","messages":[{"role":"user",'
. '"content":"the \"model\":\"small\" text stays","name":"model"}],'
. '"tools":[{"type":"function","function":{"name":"f","parameters":'
. '{"type":"object","properties":{"model":{"type":"string"}}}}}]}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"metadata":{"model":"small"},"model":"provider-side-model",'
. '"messages":[{"role":"user","content":"the \"model\":\"small\" text stays",'
. '"name":"model"}],"tools":[{"type":"function","function":{"name":"f",'
. '"parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}]}')



=== TEST 8: a body whose model the target keeps is sent as received
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route small {
        target mock small;
    }
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n" . main::chat_body('small', 'k' x 3000, sep => ' : ')
--- response_body_like eval
LLM::Fixtures::body_digest_re(main::chat_body('small', 'k' x 3000, sep => ' : '))



=== TEST 9: invalid JSON deep in a temporary file: yajl's words, at its byte
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n" . main::chat_body('small', ('z' x 100000) . "\x01")
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: lexical error: invalid character inside string (at byte 100055).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 10: VT deep in a temporary file is not white space
--- config
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
my $body = main::chat_body('small', 'z' x 100000);
"POST /v1/chat/completions\n" . substr($body, 0, -1) . "\x0b}"
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: an unexpected character (at byte 100059).","type":"invalid_request_error","param":null,"code":null}}
