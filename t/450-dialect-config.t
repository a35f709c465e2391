# Configuration of dialects: options of the right format only, AWS
# credentials required; the headers a dialect sends need no lines.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

# credentials from the environment would hide TEST 3's point
delete @ENV{qw(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN)};

LLM::Fixtures::defaults(config => $LLM::Fixtures::GATEWAY_CONFIG);

run_tests();

__DATA__

=== TEST 1: an option of another format
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        region us-east-1;
    }
--- must_die
--- error_log
"region" is not an option of format "openai" in llm_provider "p"



=== TEST 2: options may come before the format
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        version 2023-06-01;
        max_tokens 512;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_route m { target p claude-x; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- response_body_like: "content":"Hello from the mock provider\. You said: hi"



=== TEST 3: Bedrock without credentials
--- http_config
    llm_provider b {
        url https://bedrock-runtime.eu-central-1.amazonaws.com;
        format bedrock;
    }
--- must_die
--- error_log
llm_provider "b" of format bedrock has no AWS credentials



=== TEST 4: a Bedrock region that is not one
--- http_config
    llm_provider b {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region "us east";
        access_key AKIDEXAMPLE;
        secret_key s;
    }
--- must_die
--- error_log
invalid region "us east" in llm_provider "b"



=== TEST 5: Bedrock's signature headers need no proxy_set_header lines: the mock verifies the signature
--- http_config
    llm_provider b {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route m { target b m; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass $llm_upstream;
        proxy_pass_request_headers off;
        proxy_set_header Host $llm_upstream_host;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "object":"chat.completion"



=== TEST 6: anthropic-version is the "version" option
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
        header anthropic-version 2023-01-01;
    }
--- must_die
--- error_log
sets anthropic-version with "header": use "version"



=== TEST 7: an unknown format
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        format vertex;
    }
--- must_die
--- error_log
unknown provider format "vertex"
