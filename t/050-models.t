# GET /v1/models and /v1/models/{id}, from the configured routes.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider openai {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider offline {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_route gpt-4o {
        target offline;
        target openai;
    }
    llm_route "team/\"quoted\"" {
        target openai x;
    }
    llm_route only-offline {
        target offline;
    }
    llm_route "openai/*" {
        target openai "*";
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: the list: exact routes with an enabled provider, in order
--- request
GET /v1/models
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{"object":"list","data":\[
\{"id":"gpt-4o","object":"model","created":\d+,"owned_by":"openai"\},
\{"id":"team\/\\"quoted\\"","object":"model","created":\d+,"owned_by":"openai"\}
\]\}$/x



=== TEST 2: one model
--- request
GET /v1/models/gpt-4o
--- response_body_like: ^\{"id":"gpt-4o","object":"model","created":\d+,"owned_by":"openai"\}$



=== TEST 3: a model of a glob route, with a slash in its id
--- request
GET /v1/models/openai/gpt-4.1
--- response_body_like: ^\{"id":"openai/gpt-4.1","object":"model","created":\d+,"owned_by":"openai"\}$



=== TEST 4: an unknown model
--- request
GET /v1/models/nope
--- error_code: 404
--- response_body chomp
{"error":{"message":"The model `nope` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}



=== TEST 5: a model whose providers are all disabled is not there
--- request
GET /v1/models/only-offline
--- error_code: 404
--- response_body_like: "code":"model_not_found"



=== TEST 6: HEAD has the headers only
--- request
HEAD /v1/models
--- response_headers
Content-Type: application/json
--- response_body chomp



=== TEST 7: POST is not allowed
--- request
POST /v1/models
{}
--- error_code: 405
--- response_body_like: "code":"method_not_allowed"



=== TEST 8: no routes, an empty list
--- http_config
--- request
GET /v1/models
--- response_body chomp
{"object":"list","data":[]}
