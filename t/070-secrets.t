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
