# Failover across dialects: each attempt is built for its own target
# (URL, headers, body), and the answer comes back in the client's API.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(config => $LLM::Fixtures::GATEWAY_CONFIG);

run_tests();

__DATA__

=== TEST 1: an OpenAI target fails with 503, the Anthropic one answers
--- http_config
    llm_provider oa { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_route m { target oa gpt-x; target an claude-x; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hello"}]}
--- response_headers
x-llm-provider: an
x-llm-attempts: 2
Content-Type: application/json
--- response_body_like: ^\{"id":"msg_mock1","object":"chat\.completion",.*"content":"Hello from the mock provider\. You said: hello"
--- error_log
provider "oa" failed with 503



=== TEST 2: an Anthropic target is overloaded (529), the Gemini one streams
--- http_config
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/status=529/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route m { target an claude-x; target gm gemini-x; }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"hello"}]}
--- response_headers
x-llm-provider: gm
Content-Type: text/event-stream
--- response_body_like: \Adata: \{"id":"mock-resp-1",.*"content":"hello".*data: \[DONE\]\n\n\z
--- error_log
provider "an" failed with 529



=== TEST 3: Bedrock throttles (429), OpenAI answers an Anthropic client
--- http_config
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/status=429;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_provider oa { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target bd m1; target oa gpt-x; }
--- request
POST /v1/messages
{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}
--- response_headers
x-llm-provider: oa
x-llm-attempts: 2
--- response_body_like: ^\{"id":"chatcmpl-mock-\w+","type":"message","role":"assistant","model":"gpt-x","content":\[\{"type":"text","text":"Hello from the mock provider\. You said: hello"\}\],"stop_reason":"end_turn"



=== TEST 4: the last attempt's error, in the client's shape, status kept
--- http_config
    llm_provider oa { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/status=400/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route m { target oa gpt-x; target gm gemini-x; }
--- request
POST /v1/messages
{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}
--- error_code: 400
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"mock gemini error 400"}}
