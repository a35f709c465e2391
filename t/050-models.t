# GET /v1/models and /v1/models/{id}, from the configured routes, each
# model with the endpoints its route serves: those the endpoints
# themselves would not refuse for it (docs/endpoints.md).

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
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key k;
        format anthropic;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1beta;
        key k;
        format gemini;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        format bedrock;
        region us-east-1;
        key k;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/openai;
        key k;
        format azure;
    }
    llm_guard secrets { deny openai_key "sk-[A-Za-z0-9]{20,}"; }
    llm_route claude { target an claude-x; }
    llm_route mixed { target openai; target an claude-x; }
    llm_route gem { target gm gemini-x; target az; }
    llm_route titan { target bd amazon.titan-embed-text-v2:0; }
    llm_route cohere { target bd cohere.embed-english-v3; target openai; }
    llm_route br-claude { target bd anthropic.claude-x; }
    llm_route guarded { target openai; guard secrets; }
    llm_route "br/*" { target bd "*"; }
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
\{"id":"gpt-4o","object":"model","created":\d+,"owned_by":"openai",
"endpoints":\["chat.completions","messages","responses","embeddings","completions"\]\},
\{"id":"team\/\\"quoted\\"","object":"model","created":\d+,"owned_by":"openai",
"endpoints":\["chat.completions","messages","responses","embeddings","completions"\]\},
\{"id":"claude",[^}]*"owned_by":"an",
"endpoints":\["chat.completions","messages","responses","messages.count_tokens"\]\},
\{"id":"mixed",[^}]*"endpoints":\["chat.completions","messages","responses","completions",
"messages.count_tokens"\]\},
\{"id":"gem",[^}]*"endpoints":\["chat.completions","messages","responses","embeddings"\]\},
\{"id":"titan",[^}]*"endpoints":\["chat.completions","messages","responses","embeddings"\]\},
\{"id":"cohere",[^}]*"endpoints":\["chat.completions","messages","responses","embeddings",
"completions"\]\},
\{"id":"br-claude",[^}]*"endpoints":\["chat.completions","messages","responses"\]\},
\{"id":"guarded",[^}]*"endpoints":\["chat.completions","messages","responses","embeddings",
"completions"\]\}
\]\}$/x



=== TEST 2: one model
--- request
GET /v1/models/gpt-4o
--- response_body_like: ^\{"id":"gpt-4o","object":"model","created":\d+,"owned_by":"openai","endpoints":\["chat.completions","messages","responses","embeddings","completions"\]\}$



=== TEST 3: a model of a glob route, with a slash in its id
--- request
GET /v1/models/openai/gpt-4.1
--- response_body_like: ^\{"id":"openai/gpt-4.1","object":"model","created":\d+,"owned_by":"openai","endpoints":\["chat.completions","messages","responses","embeddings","completions"\]\}$



=== TEST 4: a pattern's model: its endpoints by the model asked for (an embedding model)
--- request
GET /v1/models/br/amazon.titan-embed-text-v2:0
--- response_body_like: ^\{"id":"br/amazon.titan-embed-text-v2:0","object":"model","created":\d+,"owned_by":"bd","endpoints":\["chat.completions","messages","responses","embeddings"\]\}$



=== TEST 5: a pattern's model: not an embedding model
--- request
GET /v1/models/br/anthropic.claude-x
--- response_body_like: ^\{"id":"br/anthropic.claude-x","object":"model","created":\d+,"owned_by":"bd","endpoints":\["chat.completions","messages","responses"\]\}$



=== TEST 6: one Anthropic model: it counts tokens, makes no embeddings
--- request
GET /v1/models/claude
--- response_body_like: ^\{"id":"claude","object":"model","created":\d+,"owned_by":"an","endpoints":\["chat.completions","messages","responses","messages.count_tokens"\]\}$



=== TEST 7: what the list says is what the endpoints do: embeddings of claude refused
--- request
POST /v1/embeddings
{"model":"claude","input":"x"}
--- error_code: 400
--- response_body_like: "code":"unsupported_model"



=== TEST 8: and legacy completions of a route with its own guard policy served, its rules applied
--- request eval
["POST /v1/completions\n" . '{"model":"guarded","prompt":"x"}',
 "POST /v1/completions\n" . '{"model":"guarded","prompt":"x sk-abcdefghijklmnopqrstuvwxyz"}']
--- error_code eval
[200, 400]
--- response_body_like eval
['"object":"text_completion"', '"code":"content_policy_violation"']



=== TEST 9: and Responses calls of a route with its own guard policy served (through chat), its rules applied
--- request eval
["POST /v1/responses\n" . '{"model":"guarded","input":"x"}',
 "POST /v1/responses\n" . '{"model":"guarded","input":"x sk-abcdefghijklmnopqrstuvwxyz"}']
--- error_code eval
[200, 400]
--- response_body_like eval
['"object":"response"', '"code":"content_policy_violation"']



=== TEST 10: and token counts of a route without an Anthropic target refused
--- request
POST /v1/messages/count_tokens
{"model":"gem","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: cannot count tokens



=== TEST 11: an unknown model
--- request
GET /v1/models/nope
--- error_code: 404
--- response_body chomp
{"error":{"message":"The model `nope` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}



=== TEST 12: a model whose providers are all disabled is not there
--- request
GET /v1/models/only-offline
--- error_code: 404
--- response_body_like: "code":"model_not_found"



=== TEST 13: HEAD has the headers only
--- request
HEAD /v1/models
--- response_headers
Content-Type: application/json
--- response_body chomp



=== TEST 14: POST is not allowed
--- request
POST /v1/models
{}
--- error_code: 405
--- response_body_like: "code":"method_not_allowed"



=== TEST 15: no routes, an empty list
--- http_config
--- request
GET /v1/models
--- response_body chomp
{"object":"list","data":[]}
