# Request translation: OpenAI chat requests as each dialect's mock
# receives them. The mocks (anthropic.js, gemini.js, bedrock.js) check
# authentication as the real APIs do and, with echo=1, answer with what
# they received; the blocks compare that text exactly, as it stands in the
# OpenAI answer the client gets. With the debug log on, no key, secret,
# token or signature may reach it.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use LLM::Dialects qw(encode_json echoed_re);
use Digest::SHA ();
use Encode ();

no_shuffle();
log_level('debug');

LLM::Fixtures::defaults(
    more_headers => 'Content-Type: application/json',
    no_error_log => [qr/sk-ant-mock-key|gemini-mock-key|wJalrXUtnFEMI|FQoGZXIvYXdzE|az-key|ABSK-mock|Signature=[0-9a-f]{64}/],
    config => <<'CONF',
    location /v1/ {
        client_body_buffer_size 1k;      # larger bodies: a temporary file
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    http_config => <<'CONF',
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        key sk-ant-mock-key;
        format anthropic;
        max_tokens 1000;
    }
    llm_provider an_badkey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-wrong;
        format anthropic;
        version 2023-06-01;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/echo=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider gm_badkey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key not-the-key;
        format gemini;
    }
    llm_provider gm_nokey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        format gemini;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_provider bd_token {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1,token=1;
        format bedrock;
        region eu-west-3;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
        session_token FQoGZXIvYXdzE;
    }
    llm_provider bd_badsecret {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key not-the-secret;
    }
    llm_provider bd_bearer {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1,bearer=1;
        format bedrock;
        region us-west-2;
        key ABSK-mock;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
    }
    llm_provider az_fixed {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
        deployment my-gpt4o;
        api_version 2025-01-01-preview;
    }

    llm_route an { target an claude-x; }
    llm_route an_badkey { target an_badkey claude-x; }
    llm_route gm { target gm gemini-x; }
    llm_route gm_badkey { target gm_badkey gemini-x; }
    llm_route gm_nokey { target gm_nokey gemini-x; }
    llm_route bd { target bd anthropic.claude-3-5-sonnet-20240620-v1:0; }
    llm_route bd_token { target bd_token amazon.nova-pro-v1:0; }
    llm_route bd_badsecret { target bd_badsecret m; }
    llm_route bd_bearer { target bd_bearer m; }
    llm_route az { target az gpt-4o-deployment; }
    llm_route az_fixed { target az_fixed; }
    llm_route az_v1 { target az_v1 gpt-4o-deployment; }
    llm_route az_v1_echo { target az_v1_echo gpt-4o-deployment; }

    llm_provider oa {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider az_v1 {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
        api_version v1;
    }
    llm_provider az_v1_echo {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/azure/echo=1/openai;
        format azure;
        api_version v1;
    }
    llm_route oa { target oa gpt-x; }

    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        error_log logs/mock2.log info;
        location /azure/ {
            default_type application/json;
            return 200 '{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"$request_uri $http_api_key"},"finish_reason":"stop"}]}';
        }
    }
CONF
);


# the request of the first block of each dialect: a conversation with a
# system and a developer message, images, a tool call and its result

our %Conversation = (
    messages => [
        { role => 'system', content => 'Be brief.' },
        { role => 'developer', content => [{ type => 'text',
                                             text => 'Use English.' }] },
        { role => 'user', content => [
            { type => 'text', text => 'What is on these?' },
            { type => 'image_url',
              image_url => { url => 'data:image/png;base64,iVBORw0KGgo=' } },
            { type => 'image_url',
              image_url => { url => 'https://example.com/cat.png' } },
        ] },
        { role => 'assistant', content => 'Let me check the weather.',
          tool_calls => [{ id => 'call_1', type => 'function',
                           function => { name => 'get_weather',
                                         arguments => '{"location":"Paris"}' } }] },
        { role => 'tool', tool_call_id => 'call_1', content => '18C, sunny' },
        { role => 'user', content => 'Thanks, and tomorrow?' },
    ],
    tools => [{ type => 'function', function => {
        name => 'get_weather', description => 'The weather somewhere',
        parameters => { type => 'object',
                        properties => { location => { type => 'string' } },
                        required => ['location'] } } }],
    tool_choice => { type => 'function',
                     function => { name => 'get_weather' } },
    parallel_tool_calls => JSON::PP::false(),
    stop => 'END',
    temperature => 0.5,
    top_p => 0.9,
    max_completion_tokens => 50,
    user => 'user-1',
    seed => 7,
);

# what the Anthropic mock received besides the body: the path, and its
# headers, not the client's
our $AnthropicSeen = '{"path":"/anthropic/echo=1/v1/messages",
    "headers":{"x-api-key":"(set)","anthropic-version":"2023-06-01",
        "anthropic-beta":null,"content-type":"application/json",
        "authorization":null},';

# a user message long enough for a temporary file, not all ASCII
our $Long = join ' ', map { "word$_ \x{fc}n\x{ef} \x{2713}" } 1 .. 2000;


# the --- request of a chat completion for $model
sub chat {
    my ($model, %request) = @_;

    return "POST /v1/chat/completions\n"
           . encode_json({ model => $model, %request });
}


# a regex for an answer whose text (whole, or one delta of a stream) is
# $json: what the mock received (LLM::Dialects::echoed_re)
sub echoed {
    my ($json) = @_;
    my $re = echoed_re($json);

    return qr/"content":"$re"/;
}

run_tests();

__DATA__

=== TEST 1: anthropic: the translated request, its headers (not the client's), the path
--- request eval
::chat(an => %::Conversation)
--- response_body_like eval
::echoed($::AnthropicSeen . '
    "body":{"model":"claude-x","max_tokens":50,
        "system":"Be brief.\n\nUse English.",
        "messages":[
            {"role":"user","content":[
                {"type":"text","text":"What is on these?"},
                {"type":"image","source":{"type":"base64",
                    "media_type":"image/png","data":"iVBORw0KGgo="}},
                {"type":"image","source":{"type":"url",
                    "url":"https://example.com/cat.png"}}]},
            {"role":"assistant","content":[
                {"type":"text","text":"Let me check the weather."},
                {"type":"tool_use","id":"call_1","name":"get_weather",
                    "input":{"location":"Paris"}}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"call_1",
                    "content":"18C, sunny"},
                {"type":"text","text":"Thanks, and tomorrow?"}]}],
        "temperature":0.5,"top_p":0.9,"stop_sequences":["END"],
        "metadata":{"user_id":"user-1"},
        "tools":[{"name":"get_weather","description":"The weather somewhere",
            "input_schema":{"properties":{"location":{"type":"string"}},
                "required":["location"],"type":"object"}}],
        "tool_choice":{"type":"tool","name":"get_weather",
            "disable_parallel_tool_use":true}}}')



=== TEST 2: anthropic: the provider's max_tokens, a stream, "required"
--- request
POST /v1/chat/completions
{"messages":[{"content":"hi","role":"user"}],"model":"an","stream":true,"tool_choice":"required"}
--- response_headers_like
Content-Type: text/event-stream.*
--- response_body_like eval
::echoed($::AnthropicSeen . '
    "body":{"model":"claude-x","max_tokens":1000,
        "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
        "stream":true,"tool_choice":{"type":"any"}}}')



=== TEST 3: anthropic: a wrong key is a 401, its error in OpenAI's shape
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"an_badkey"}
--- error_code: 401
--- response_body chomp
{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":"authentication_error"}}



=== TEST 4: gemini: the translated request, the model and method in the path, no Authorization
--- request eval
::chat(gm => %::Conversation)
--- response_body_like eval
::echoed('{"path":"/gemini/echo=1/v1beta/models/gemini-x:generateContent",
    "args":{},
    "headers":{"x-goog-api-key":"(set)","authorization":null},
    "body":{"contents":[
            {"role":"user","parts":[
                {"text":"What is on these?"},
                {"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},
                {"fileData":{"mimeType":"image/png",
                    "fileUri":"https://example.com/cat.png"}}]},
            {"role":"model","parts":[
                {"text":"Let me check the weather."},
                {"functionCall":{"name":"get_weather",
                    "args":{"location":"Paris"}}}]},
            {"role":"user","parts":[
                {"functionResponse":{"name":"get_weather",
                    "response":{"content":"18C, sunny"}}},
                {"text":"Thanks, and tomorrow?"}]}],
        "systemInstruction":{"parts":[{"text":"Be brief.\n\nUse English."}]},
        "generationConfig":{"maxOutputTokens":50,"temperature":0.5,
            "topP":0.9,"stopSequences":["END"]},
        "tools":[{"functionDeclarations":[{"name":"get_weather",
            "description":"The weather somewhere",
            "parameters":{"properties":{"location":{"type":"string"}},
                "required":["location"],"type":"object"}}]}],
        "toolConfig":{"functionCallingConfig":{"mode":"ANY",
            "allowedFunctionNames":["get_weather"]}}}}')



=== TEST 5: gemini: streams use streamGenerateContent with alt=sse; json_object asks for JSON
--- request
POST /v1/chat/completions
{"messages":[{"content":"hi","role":"user"}],"model":"gm","response_format":{"type":"json_object"},"stream":true}
--- response_headers_like
Content-Type: text/event-stream.*
--- response_body_like eval
::echoed('{"path":"/gemini/echo=1/v1beta/models/gemini-x:streamGenerateContent",
    "args":{"alt":"sse"},
    "headers":{"x-goog-api-key":"(set)","authorization":null},
    "body":{"contents":[{"role":"user","parts":[{"text":"hi"}]}],
        "generationConfig":{"responseMimeType":"application/json"}}}')



=== TEST 6: gemini: a wrong key is its 400, with its status as the code
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"gm_badkey"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"API key not valid. Please pass a valid API key.","type":"invalid_request_error","param":null,"code":"INVALID_ARGUMENT"}}



=== TEST 7: gemini: no key is its 403, a permission error
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"gm_nokey"}
--- error_code: 403
--- response_body chomp
{"error":{"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","type":"permission_error","param":null,"code":"PERMISSION_DENIED"}}



=== TEST 8: bedrock: the signature is accepted (the mock checks it with the secret); the translated request, the model id encoded in the path
--- request eval
::chat(bd => %::Conversation)
--- response_body_like eval
::echoed('{"path":"/bedrock/echo=1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
    "model":"anthropic.claude-3-5-sonnet-20240620-v1:0",
    "headers":{"x-amz-date":"...","x-amz-content-sha256":"...",
        "x-amz-security-token":null,
        "authorization":"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/<date>/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=(valid)"},
    "body":{"messages":[
            {"role":"user","content":[
                {"text":"What is on these?"},
                {"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}}]},
            {"role":"assistant","content":[
                {"text":"Let me check the weather."},
                {"toolUse":{"toolUseId":"call_1","name":"get_weather",
                    "input":{"location":"Paris"}}}]},
            {"role":"user","content":[
                {"toolResult":{"toolUseId":"call_1",
                    "content":[{"text":"18C, sunny"}]}},
                {"text":"Thanks, and tomorrow?"}]}],
        "system":[{"text":"Be brief."},{"text":"Use English."}],
        "inferenceConfig":{"maxTokens":50,"temperature":0.5,"topP":0.9,
            "stopSequences":["END"]},
        "toolConfig":{"tools":[{"toolSpec":{"name":"get_weather",
            "description":"The weather somewhere",
            "inputSchema":{"json":{"properties":{"location":{"type":"string"}},
                "required":["location"],"type":"object"}}}}],
            "toolChoice":{"tool":{"name":"get_weather"}}}}}')



=== TEST 9: bedrock: a session token is sent and signed; streams use converse-stream
The mock streams its text a word at a time: the Authorization header comes
in several deltas, cut after its spaces.
--- request
POST /v1/chat/completions
{"messages":[{"content":"hi","role":"user"}],"model":"bd_token","stream":true}
--- response_headers_like
Content-Type: text/event-stream.*
--- response_body_like eval
qr{(?=.*"content":"\{\\"path\\":\\"/bedrock/echo=1,token=1/model/amazon\.nova-pro-v1%3A0/converse-stream\\",)(?=.*"content":"Credential=AKIDEXAMPLE/\d{8}/eu-west-3/bedrock/aws4_request, "\}.*"content":"SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "\}.*"content":"Signature=\(valid\)\\"\},)}s



=== TEST 10: bedrock: an API key is a bearer token
--- request
POST /v1/chat/completions
{"messages":[{"content":"hi","role":"user"}],"model":"bd_bearer"}
--- response_body_like eval
::echoed('{"path":"/bedrock/echo=1,bearer=1/model/m/converse","model":"m",
    "headers":{"x-amz-date":null,"x-amz-content-sha256":null,
        "x-amz-security-token":null,"authorization":"Bearer ABSK-mock"},
    "body":{"messages":[{"role":"user","content":[{"text":"hi"}]}]}}')



=== TEST 11: bedrock: a wrong secret is refused as AWS would, with its error type as the code
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"bd_badsecret"}
--- error_code: 403
--- response_body chomp
{"error":{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.","type":"permission_error","param":null,"code":"InvalidSignatureException"}}



=== TEST 12: a body in a temporary file is translated the same
--- request eval
::chat(an => messages => [{ role => 'system', content => 'Be brief.' },
                          { role => 'user', content => $::Long }])
--- response_body_like eval
::echoed($::AnthropicSeen . '
    "body":{"model":"claude-x","max_tokens":1000,"system":"Be brief.",
        "messages":[{"role":"user","content":[{"type":"text",
            "text":"' . $::Long . '"}]}]}}')
--- error_log
a client request body is buffered to a temporary file



=== TEST 13: an OpenAI route of the same gateway: no tree, the client's bytes with the model spliced
--- request
POST /v1/chat/completions
{"model" :"oa", "messages":[{"role":"user","content":"x"}],"n":1}
--- response_body_like eval
my $sent = '{"model":"gpt-x", "messages":[{"role":"user","content":"x"}],"n":1}';
qr/"body_sha256":"${\ Digest::SHA::sha256_hex($sent)}"/



=== TEST 14: azure: the target model as the deployment, the API version in the URL, api-key
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"az"}
--- response_body chomp
{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"/azure/openai/deployments/gpt-4o-deployment/chat/completions?api-version=2024-10-21 az-key"},"finish_reason":"stop"}]}



=== TEST 15: azure: a fixed deployment and api_version
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"az_fixed"}
--- response_body chomp
{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"/azure/openai/deployments/my-gpt4o/chat/completions?api-version=2025-01-01-preview az-key"},"finish_reason":"stop"}]}



=== TEST 16: azure's v1 API: OpenAI's path under the url, no api-version, api-key
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"az_v1"}
--- response_body chomp
{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"/azure/openai/v1/chat/completions az-key"},"finish_reason":"stop"}]}



=== TEST 17: azure's v1 API: the deployment as the body's model
--- request
POST /v1/chat/completions
{"messages":[{"content":"x","role":"user"}],"model":"az_v1_echo"}
--- response_body_like eval
qr/"content":"\{\\"messages\\":\[\{\\"content\\":\\"x\\",\\"role\\":\\"user\\"\}\],\\"model\\":\\"gpt-4o-deployment\\"\}"/



=== TEST 18: azure's v1 API takes no fixed deployment
--- http_config
    llm_provider p {
        url http://127.0.0.1:1/openai;
        format azure;
        api_version v1;
        deployment d;
    }
--- config
--- must_die
--- error_log
llm_provider "p" uses Azure's v1 API, where the model names the deployment
