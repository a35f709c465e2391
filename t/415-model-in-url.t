# A client's model name that reaches a provider's URL (a glob route whose
# target passes the client's name: Gemini's /models/{model}:..., Azure's
# /deployments/{model}/...) can never change that URL: a name with "?",
# "#", "/", ":", "%", spaces, or "." / ".." alone gets a 400 before
# anything is sent (the request would carry the provider's key); Bedrock's
# /model/{id}/... percent-encodes it.
#
# The Azure mock (the second server) writes the URI of every request it
# gets to access.log; the Gemini and Bedrock mocks answer with what they
# received (echo=1).

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/echo=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route "gm/*" { target gm "*"; }
    llm_route "az/*" { target az "*"; }
    llm_route "bd/*" { target bd "*"; }

    log_format seen '$request_uri';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        access_log logs/access.log seen;
        location /azure/ {
            default_type application/json;
            return 200 '{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}';
        }
    }
CONF
);

# a block with "--- refused: MODEL": that model is asked for, and refused
# before anything is sent
add_block_preprocessor(sub {
    my $block = shift;
    my $model = LLM::Fixtures::section($block, 'refused');

    return unless defined $model;

    $block->set_value(request => "POST /v1/chat/completions\n"
                      . '{"model":"' . $model . '","messages":'
                      . '[{"role":"user","content":"x"}]}');
    $block->set_value(error_code => 400);
    $block->set_value(response_body_like =>
                      '"param":"model","code":"invalid_model"');
    $block->set_value(no_access_log => '/azure/');
    $block->set_value(no_error_log =>
                      qr/gemini.*(?:key=x|files|streamGenerateContent)/);
});

run_tests();

__DATA__



=== TEST 1: gemini: a query string is refused, nothing is sent
--- refused: gm/a?key=x



=== TEST 2: gemini: a fragment is refused, nothing is sent
--- refused: gm/a#b



=== TEST 3: gemini: a path out of the model's segment is refused, nothing is sent
--- refused: gm/../../v1/files



=== TEST 4: gemini: ".." alone is refused, nothing is sent
--- refused: gm/..



=== TEST 5: gemini: "." alone is refused, nothing is sent
--- refused: gm/.



=== TEST 6: gemini: a space is refused, nothing is sent
--- refused: gm/a b



=== TEST 7: gemini: a slash is refused, nothing is sent
--- refused: gm/a/b



=== TEST 8: gemini: a colon: another method is refused, nothing is sent
--- refused: gm/x:streamGenerateContent



=== TEST 9: gemini: a percent sign is refused, nothing is sent
--- refused: gm/a%2fb



=== TEST 10: gemini: a non-ASCII letter is refused, nothing is sent
--- refused eval
"gm/a\xc3\xa9"



=== TEST 11: azure: a query string is refused, nothing is sent
--- refused: az/a?key=x



=== TEST 12: azure: a fragment is refused, nothing is sent
--- refused: az/a#b



=== TEST 13: azure: a path out of the model's segment is refused, nothing is sent
--- refused: az/../../v1/files



=== TEST 14: azure: ".." alone is refused, nothing is sent
--- refused: az/..



=== TEST 15: azure: "." alone is refused, nothing is sent
--- refused: az/.



=== TEST 16: azure: a space is refused, nothing is sent
--- refused: az/a b



=== TEST 17: azure: a slash is refused, nothing is sent
--- refused: az/a/b



=== TEST 18: azure: a colon: another method is refused, nothing is sent
--- refused: az/x:streamGenerateContent



=== TEST 19: azure: a percent sign is refused, nothing is sent
--- refused: az/a%2fb



=== TEST 20: azure: a non-ASCII letter is refused, nothing is sent
--- refused eval
"az/a\xc3\xa9"



=== TEST 21: gemini: a plain name is served, in the path as it is
--- request
POST /v1/chat/completions
{"model":"gm/gemini-1.5-pro_002","messages":[{"role":"user","content":"x"}]}
--- response_body_like: \\"path\\":\\"/gemini/echo=1/v1beta/models/gemini-1\.5-pro_002:generateContent\\"



=== TEST 22: gemini: "models/" as a prefix
--- request
POST /v1/chat/completions
{"model":"gm/models/gemini-x","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat\.completion"



=== TEST 23: azure: a plain deployment name, in the path as it is
--- request
POST /v1/chat/completions
{"model":"az/my-gpt4o.v2","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "content":"ok"
--- access_log eval
qr{^/azure/openai/deployments/my-gpt4o\.v2/chat/completions\?api-version=}m



=== TEST 24: bedrock: any name is sent, percent-encoded in the path (its ids carry ":" and "/" of their own)
--- request
POST /v1/chat/completions
{"model":"bd/a?b#c/../d","messages":[{"role":"user","content":"x"}]}
--- response_body_like: \\"path\\":\\"/bedrock/echo=1/model/a%3Fb%23c%2F\.\.%2Fd/converse\\"
