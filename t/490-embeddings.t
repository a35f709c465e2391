# POST /v1/embeddings: routed by model like chat, the body sent to
# OpenAI-format targets as it came with the target's model, to Azure at
# its deployment's embeddings URL, failed over like chat; and bad input
# refused with OpenAI-shaped 400s. The mock's vectors (conf.examples/mock/
# openai.js, vector()) are computed here again: the answers are compared
# value by value, base64 ones with the expected values packed as
# little-endian float32 (the vectors are exact in float32).

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use MIME::Base64 ();

# the mock's vector of a text (or of token ids, as JSON): see openai.js
sub mock_vector {
    my ($s, $dims) = @_;
    my $h = 0;
    $h = ($h * 31 + ord($_)) % 65521 for split //, $s;
    return map { (($h + 37 * $_) % 512 - 256) / 256 } 0 .. ($dims // 8) - 1;
}

# its numbers as JavaScript's JSON writes them
sub js_num { my $n = shift; $n == int($n) ? sprintf('%d', $n) : "$n" }

sub floats_re {
    my ($s, $dims) = @_;
    return join(',', map { quotemeta js_num($_) } mock_vector($s, $dims));
}

sub base64_of {
    my ($s, $dims) = @_;
    return MIME::Base64::encode_base64(pack('f<*', mock_vector($s, $dims)),
                                       '');
}

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        $block->set_value('config', $LLM::Fixtures::GATEWAY_CONFIG);
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a string input: the target's model spliced in, vector and usage
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-one;
    }
    llm_route embed { target mock text-embedding-3-small; }
--- request
POST /v1/embeddings
{"model":"embed","input":"hello world"}
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"object":"list")
    (?=.*"data":\[\{"object":"embedding","index":0,"embedding":\[${\ main::floats_re('hello world')}\]\}\])
    (?=.*"model":"text-embedding-3-small")
    (?=.*"path":"\/v1\/embeddings")
    (?=.*"authorization":"Bearer\ sk-provider-one")
    (?=.*"usage":\{"prompt_tokens":3,"total_tokens":3\})/sx
--- no_error_log
[error]



=== TEST 2: an array input, dimensions passed: one vector per text, in order
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock e-1; }
--- request
POST /v1/embeddings
{"model":"embed","input":["one","two","three"],"dimensions":4}
--- error_code: 200
--- response_body_like eval
qr/^(?=.*"index":0,"embedding":\[${\ main::floats_re('one', 4)}\])
    (?=.*"index":1,"embedding":\[${\ main::floats_re('two', 4)}\])
    (?=.*"index":2,"embedding":\[${\ main::floats_re('three', 4)}\])
    (?=.*"dimensions":4)
    (?=.*"inputs":3)/sx



=== TEST 3: base64, as the SDKs ask by default: passed to OpenAI as it is
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock e-1; }
--- request
POST /v1/embeddings
{"model":"embed","input":["a","b"],"encoding_format":"base64"}
--- error_code: 200
--- response_body_like eval
qr/^(?=.*"index":0,"embedding":"${\ quotemeta main::base64_of('a')}")
    (?=.*"index":1,"embedding":"${\ quotemeta main::base64_of('b')}")
    (?=.*"encoding_format":"base64")/sx



=== TEST 4: token ids go to an OpenAI-format target as they are
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock e-1; }
--- request
POST /v1/embeddings
{"model":"embed","input":[[1,2,3],[4,5]]}
--- error_code: 200
--- response_body_like eval
qr/^(?=.*"index":0,"embedding":\[${\ main::floats_re('[1,2,3]')}\])
    (?=.*"index":1,"embedding":\[${\ main::floats_re('[4,5]')}\])
    (?=.*"prompt_tokens":5)/sx



=== TEST 5: Azure: the deployment's embeddings URL, its api-version
--- http_config
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/azure/openai;
        format azure;
        key az-key;
        api_version 2024-10-21;
    }
    llm_route embed { target az my-embedding-deployment; }
--- request
POST /v1/embeddings
{"model":"embed","input":"hi"}
--- error_code: 200
--- response_body_like eval
qr/"path":"\/azure\/openai\/deployments\/my-embedding-deployment\/embeddings"/



=== TEST 6: Azure with a fixed deployment: its embeddings URL too
--- http_config
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/azure/openai;
        format azure;
        deployment fixed-dep;
    }
    llm_route embed { target az; }
--- request
POST /v1/embeddings
{"model":"embed","input":"hi"}
--- error_code: 200
--- response_body_like eval
qr/"path":"\/azure\/openai\/deployments\/fixed-dep\/embeddings"/



=== TEST 7: Azure's v1 API: <url>/v1/embeddings, no api-version (the model in the body: t/410)
--- http_config
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        format azure;
        api_version v1;
    }
    llm_route embed { target az d; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            default_type application/json;
            return 200 '{"object":"list","data":[],"model":"$request_uri","usage":{"prompt_tokens":1,"total_tokens":1}}';
        }
    }
--- request
POST /v1/embeddings
{"model":"embed","input":"hi"}
--- error_code: 200
--- response_body_like: "model":"/azure/openai/v1/embeddings"



=== TEST 8: failover: a 503 from the first target, the second answers
--- http_config
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed {
        target broken e-broken;
        target mock e-good;
        strategy ordered;
    }
--- request
POST /v1/embeddings
{"model":"embed","input":"again"}
--- error_code: 200
--- response_headers
x-llm-attempts: 2
--- response_body_like eval
qr/^(?=.*"model":"e-good")
    (?=.*"embedding":\[${\ main::floats_re('again')}\])/sx



=== TEST 9: an unknown model is a 404 like chat's
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
--- request
POST /v1/embeddings
{"model":"nope","input":"x"}
--- error_code: 404
--- response_body_like chomp
"code":"model_not_found"



=== TEST 10: GET is not allowed
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
--- request
GET /v1/embeddings
--- error_code: 405



=== TEST 11: bad inputs: each an OpenAI-shaped 400 naming its parameter
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
--- request eval
[
 "POST /v1/embeddings\n{\"model\":\"embed\"}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":[]}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":\"\"}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":[\"a\",1]}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":{\"a\":1}}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":[[1,-2]]}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":\"a\",\"encoding_format\":\"int8\"}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":\"a\",\"dimensions\":0}",
 "POST /v1/embeddings\n{\"model\":\"embed\",\"input\":\"a\",\"dimensions\":\"8\"}",
 "POST /v1/embeddings\n{\"input\":\"a\"}",
 "POST /v1/embeddings\n",
]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400]
--- response_body_like eval
[
 qr/"message":"Missing required parameter: 'input'\.".*"param":"input","code":"missing_required_parameter"/s,
 qr/"message":"'input' must not be an empty array\.".*"param":"input"/s,
 qr/"message":"'input' must not hold an empty string\.".*"param":"input"/s,
 qr/"message":"Invalid type for 'input\[1\]': expected a string, as the first item is\.".*"param":"input"/s,
 qr/"message":"Invalid type for 'input': expected a string, an array of strings, or token ids\.".*"param":"input"/s,
 qr/"message":"Invalid token id in 'input': expected integers from 0\.".*"param":"input"/s,
 qr/"message":"Invalid value for 'encoding_format': expected 'float' or 'base64'\.".*"param":"encoding_format"/s,
 qr/"message":"Invalid value for 'dimensions': expected an integer from 1 to 65536\.".*"param":"dimensions"/s,
 qr/"param":"dimensions"/,
 qr/"param":"model","code":"missing_required_parameter"/,
 qr/"message":"The request body is empty: a JSON object with \\"model\\" and \\"input\\" is expected\."/,
]



=== TEST 12: more inputs than 2048 are refused
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
--- request eval
"POST /v1/embeddings\n{\"model\":\"embed\",\"input\":["
. CORE::join(',', ('"x"') x 2049) . "]}"
--- error_code: 400
--- response_body_like chomp
'input' may hold at most 2048 items, not 2049\.



=== TEST 13: a route with an Anthropic target cannot make embeddings
--- http_config
    llm_provider claude {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
    }
    llm_route embed { target claude claude-x; }
--- request
POST /v1/embeddings
{"model":"embed","input":"a"}
--- error_code: 400
--- response_body_like chomp
"message":"The model `embed` cannot make embeddings: provider `claude` \(anthropic\) serves none\.".*"param":"model","code":"unsupported_model"



=== TEST 14: Gemini: batchEmbedContents, outputDimensionality, OpenAI's list
--- http_config
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route embed { target gm gemini-embedding-001; }
--- request
POST /v1/embeddings
{"model":"embed","input":["first text","second"],"dimensions":4}
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body eval
'{"object":"list","data":[{"object":"embedding","index":0,"embedding":['
. main::floats_re('first text', 4) =~ s/\\//gr
. ']},{"object":"embedding","index":1,"embedding":['
. main::floats_re('second', 4) =~ s/\\//gr
. ']}],"model":"embed","usage":{"prompt_tokens":4,"total_tokens":4}}'



=== TEST 15: Gemini: base64 made by the gateway, little-endian float32
--- http_config
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route embed { target gm models/gemini-embedding-001; }
--- request
POST /v1/embeddings
{"model":"embed","input":"a string","encoding_format":"base64"}
--- error_code: 200
--- response_body eval
'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"'
. main::base64_of('a string') . '"}],"model":"embed",'
. '"usage":{"prompt_tokens":2,"total_tokens":2}}'



=== TEST 16: Gemini: token ids cannot be sent, a 400 before any attempt
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route embed { target mock; target gm gemini-embedding-001; }
--- request
POST /v1/embeddings
{"model":"embed","input":[1,2,3]}
--- error_code: 400
--- response_body_like chomp
"message":"Token ids in 'input' can be sent to OpenAI-format providers only; model `embed` may use provider `gm` \(gemini\): send text\.".*"param":"input"



=== TEST 17: failover across dialects: OpenAI-format 503, Gemini answers
--- http_config
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route embed {
        target broken e-1;
        target gm gemini-embedding-001;
        strategy ordered;
    }
--- request
POST /v1/embeddings
{"model":"embed","input":"over"}
--- error_code: 200
--- response_headers
x-llm-attempts: 2
--- response_body_like eval
qr/^\{"object":"list","data":\[\{"object":"embedding","index":0,"embedding":\[${\ main::floats_re('over')}\]\}\],"model":"embed"/



=== TEST 18: Gemini's error is OpenAI-shaped
--- http_config
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key not-the-key;
        format gemini;
    }
    llm_route embed { target gm gemini-embedding-001; }
--- request
POST /v1/embeddings
{"model":"embed","input":"x"}
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"message":"API key not valid\. Please pass a valid API key\.".*"type":



=== TEST 19: Bedrock Titan v2: InvokeModel signed, its token count charged
--- http_config
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route embed { target bd amazon.titan-embed-text-v2:0; }
--- request
POST /v1/embeddings
{"model":"embed","input":"titan text","dimensions":4}
--- error_code: 200
--- response_body eval
'{"object":"list","data":[{"object":"embedding","index":0,"embedding":['
. main::floats_re('titan text', 4) =~ s/\\//gr
. ']}],"model":"embed","usage":{"prompt_tokens":7,"total_tokens":7}}'



=== TEST 20: Bedrock Titan takes one text: an array of two is a 400
--- http_config
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route embed { target bd amazon.titan-embed-text-v2:0; }
--- request
POST /v1/embeddings
{"model":"embed","input":["a","b"]}
--- error_code: 400
--- response_body_like chomp
"message":"Bedrock's Titan embedding model `amazon\.titan-embed-text-v2:0` takes one text a request: send 'input' as one string\.","type":"invalid_request_error","param":"input"



=== TEST 21: Bedrock Cohere Embed: texts, search_document, base64 made here
--- http_config
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route embed { target bd cohere.embed-english-v3; }
--- request
POST /v1/embeddings
{"model":"embed","input":["uno","dos"],"encoding_format":"base64"}
--- error_code: 200
--- response_body eval
'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"'
. main::base64_of('uno') . '"},{"object":"embedding","index":1,'
. '"embedding":"' . main::base64_of('dos') . '"}],"model":"embed",'
. '"usage":{"prompt_tokens":2,"total_tokens":2}}'



=== TEST 22: Bedrock: a model that is not an embedding model is a 400
--- http_config
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route embed { target bd anthropic.claude-3-haiku; }
--- request
POST /v1/embeddings
{"model":"embed","input":"a"}
--- error_code: 400
--- response_body_like chomp
"message":"The Bedrock model `anthropic\.claude-3-haiku` is not an embedding model this gateway knows \(amazon\.titan-embed-\*, cohere\.embed-\*\)\."



=== TEST 23: guard policies read the input: deny refuses, redact rewrites
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock e-1; }
    llm_guard secrets {
        deny openai_key "sk-[A-Za-z0-9]{20,}";
        redact email "[a-z]+@[a-z]+\.com" "[EMAIL]";
    }
--- config
    llm_guard_policy secrets;
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
[
 "POST /v1/embeddings\n"
 . '{"model":"embed","input":["fine","key sk-abcdefghijklmnopqrstuvwxyz"]}',
 "POST /v1/embeddings\n"
 . '{"cache":false,"model":"embed","input":["mail bob@example.com now",'
 . '"plain"],"dimensions":2}',
]
--- error_code eval
[400, 200]
--- response_body_like eval
[
 qr/^\{"error":\{"message":"The request was refused by the guard policy `secrets` \(rule `openai_key`\)\.","type":"invalid_request_error","param":null,"code":"content_policy_violation"\}\}$/,
 qr/^(?=.*"index":0,"embedding":\[${\ main::floats_re('mail [EMAIL] now', 2)}\])
    (?=.*"index":1,"embedding":\[${\ main::floats_re('plain', 2)}\])
    (?=.*"model":"e-1")
    (?=.*"dimensions":2)
    (?!.*example)/sx,
]



=== TEST 24: token ids cannot be read by a policy's rules: refused
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
    llm_guard secrets { deny openai_key "sk-[A-Za-z0-9]{20,}"; }
--- config
    llm_guard_policy secrets;
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/embeddings
{"model":"embed","input":[1,2,3]}
--- error_code: 400
--- response_body_like chomp
"message":"The request could not be checked by the guard policy `secrets`\."



=== TEST 25: more than 4 MiB of input text is a 413
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route embed { target mock; }
--- config
    location /v1/ {
        client_max_body_size 8m;
        client_body_buffer_size 8m;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/embeddings\n{\"model\":\"embed\",\"input\":[\"" . ('x' x (2 * 1024 * 1024)) . "\",\"" . ('y' x (2 * 1024 * 1024 + 1)) . "\"]}"
--- error_code: 413
--- response_body chomp
{"error":{"message":"'input' holds 4194305 bytes; this gateway takes at most 4194304.","type":"invalid_request_error","param":"input","code":"request_too_large"}}



=== TEST 26: a model id ending in /embeddings is still a model's URL
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "acme/embeddings" { target mock e-1; }
--- request
GET /v1/models/acme/embeddings
--- error_code: 200
--- response_body_like chomp
^\{"id":"acme/embeddings","object":"model","created":\d+,"owned_by":"[^"]*","endpoints":\[[^]]*\]\}$
