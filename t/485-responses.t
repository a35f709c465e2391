# OpenAI's Responses API, POST /v1/responses: passed as it is to
# OpenAI-format targets (the target's model spliced in), streamed or not,
# usage read from the answer or from the stream's last event and charged;
# translated for the stateless subset to every other format, answered as
# a response object or as the Responses stream's events; what a
# translation cannot carry is refused for the whole route.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    log_format usage '$llm_key $status p=$llm_prompt_tokens '
                     'c=$llm_completion_tokens cached=$llm_cached_tokens '
                     'cost=$llm_cost provider=$llm_provider '
                     'attempts=$llm_attempts';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-one;
    }
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }
    llm_provider claude {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_provider claude_down {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/status=529/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_provider claude_echo {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_provider claude_err {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/error_event=1/v1;
        format anthropic;
        key sk-ant-mock-key;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/prompt_tokens=9,completion_tokens=4/v1;
        key az-key;
        format azure;
    }
    llm_provider vllm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo=1/v1;
        responses chat;
    }
    llm_route m {
        target mock resp-model-v2 input=2.50 cached=1.25 output=10.00;
    }
    llm_route v { target vllm qwen3; }
    llm_route ce { target claude_echo claude-haiku; }
    llm_route cerr { target claude_err claude-haiku; }
    llm_provider gm_safe {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/safety=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route g { target gm gemini-2.5-flash; }
    llm_route gsafe { target gm_safe gemini-2.5-flash; }
    llm_route b { target bd anthropic.claude-3-haiku; }
    llm_route a { target az gpt-4o; }
    llm_route c {
        target claude claude-haiku;
    }
    llm_route mixed {
        target claude claude-haiku;
        target mock;
        strategy ordered;
    }
    llm_route over {
        target down;
        target claude claude-haiku;
        strategy ordered;
    }
    llm_key alice { key sk-alice-0123456789; }
CONF
    config => $LLM::Fixtures::USAGE_CONFIG,
    more_headers => 'Authorization: Bearer sk-alice-0123456789',
);

run_tests();

__DATA__

=== TEST 1: a response: to the provider's /responses, its model, usage charged
--- request
POST /v1/responses
{"model":"m","input":"Say this is a test","mock":{"prompt_tokens":1000,"completion_tokens":200,"cached_tokens":400}}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"object":"response")
    (?=.*"model":"resp-model-v2")
    (?=.*"path":"\/v1\/responses")
    (?=.*"authorization":"Bearer\ sk-provider-one")
    (?=.*"usage":\{"input_tokens":1000,"input_tokens_details":\{"cached_tokens":400\},"output_tokens":200)/sx
--- access_log
alice 200 p=1000 c=200 cached=400 cost=0.004000000 provider=mock attempts=1



=== TEST 2: the rest of the body arrives byte for byte
--- request eval
"POST /v1/responses\n"
. '{"store":false,"model" : "m","input":[{"role":"user","content":"hi"}],"reasoning":{"effort":"low"},"stream":false}'
--- response_body_like eval
LLM::Fixtures::body_digest_re('{"store":false,"model":"resp-model-v2","input":[{"role":"user","content":"hi"}],"reasoning":{"effort":"low"},"stream":false}')



=== TEST 3: a stream: events as they are, usage read from response.completed
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"prompt_tokens":30,"completion_tokens":12,"reply":"a b c"}}
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/\Aevent:\ response\.created\n(?!.*stream_options)(?!.*\[DONE\])
   .*event:\ response\.output_text\.delta\n
   .*"delta":"a"
   .*event:\ response\.completed\n
   data:\ \{[^\n]*"usage":\{"input_tokens":30,[^\n]*\}\n\n\z/sx
--- access_log
alice 200 p=30 c=12 cached=0 cost=0.000195000 provider=mock attempts=1



=== TEST 4: usage of a stream that failed: response.failed
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"prompt_tokens":31,"completion_tokens":5,"failed":1}}
--- response_body_like eval
qr/event:\ response\.failed\n[^\n]*\n\n\z/s
--- access_log
alice 200 p=31 c=5 cached=0 cost=0.000127500 provider=mock attempts=1



=== TEST 5: a stream cut before its last event ends with the gateway's error
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"x","mock":{"cut":1,"reply":"a b c"}}
--- response_body_like eval
qr/event:\ response\.output_item\.done\n.*data:\ \{"error":\{[^\n]*"code":"stream_interrupted"\}\}\n\n\z/s



=== TEST 6: no input: refused before any provider sees it
--- request
POST /v1/responses
{"model":"m"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Missing required parameter: 'input'.","type":"invalid_request_error","param":"input","code":"missing_required_parameter"}}



=== TEST 7: an input of a number is refused
--- request
POST /v1/responses
{"model":"m","input":42}
--- error_code: 400
--- response_body_like: "param":"input"



=== TEST 8: previous_response_id to a route with a translated target: refused, whatever target would be chosen
--- request
POST /v1/responses
{"model":"mixed","input":"x","previous_response_id":"resp_123"}
--- error_code: 400
--- response_body_like eval
qr/^\{"error":\{"message":"The parameter 'previous_response_id' is not served for model `mixed`: its target's provider `claude` \(format \\"anthropic\\"\)[^"]*","type":"invalid_request_error","param":"previous_response_id","code":"unsupported_parameter"\}\}$/



=== TEST 9: previous_response_id to OpenAI-format targets only: passed
--- request
POST /v1/responses
{"model":"m","input":"x","previous_response_id":"resp_123","store":true,"tools":[{"type":"web_search"}]}
--- response_body_like: "object":"response"



=== TEST 10: built-in tools, store, background, conversation, other items: refused on translation
--- request eval
[
"POST /v1/responses\n" . '{"model":"c","input":"x","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}',
"POST /v1/responses\n" . '{"model":"c","input":"x","store":true}',
"POST /v1/responses\n" . '{"model":"c","input":"x","background":true}',
"POST /v1/responses\n" . '{"model":"c","input":"x","conversation":"conv_1"}',
"POST /v1/responses\n" . '{"model":"c","input":[{"type":"item_reference","id":"msg_1"}]}',
"POST /v1/responses\n" . '{"model":"c","input":"x","tool_choice":{"type":"file_search"}}',
]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[
qr/"param":"tools","code":"unsupported_parameter"/,
qr/"param":"store","code":"unsupported_parameter"/,
qr/"param":"background","code":"unsupported_parameter"/,
qr/"param":"conversation","code":"unsupported_parameter"/,
qr/"param":"input","code":"unsupported_parameter"/,
qr/"param":"tool_choice","code":"unsupported_parameter"/,
]



=== TEST 10b: on translation, an input item that is malformed is told so (not "not served")
--- request eval
[map { "POST /v1/responses\n" . qq({"model":"c","input":$_}) }
 '[{}]', '[5]', '[{"role":"user","content":5}]', '[{"role":"bogus","content":"x"}]',
 '[{"role":"user","content":[{"text":"x"}]}]', '[{"type":"function_call"}]',
 '[{"type":"function_call_output","call_id":"c"}]', '[{"type":5}]', '""']
--- error_code eval
[(400) x 9]
--- response_body_like eval
[
qr/"message":"Invalid 'input\[0\]': a message's role is user, assistant, system or developer\.","type":"invalid_request_error","param":"input","code":null/,
qr/"message":"Invalid 'input\[0\]': expected an object\."/,
qr/"message":"Invalid 'input\[0\]': a message's content is a string or a list of parts\."/,
qr/"message":"Invalid 'input\[0\]': a message's role is user, assistant, system or developer\."/,
qr/"message":"Invalid 'input\[0\]': each part of a message's content needs a type\."/,
qr/"message":"Invalid 'input\[0\]': a function_call needs its call_id, name and arguments\."/,
qr/"message":"Invalid 'input\[0\]': a function_call_output needs its call_id and output\."/,
qr/"message":"Invalid 'input\[0\]': its type must be a string\."/,
qr/"message":"Invalid 'input': an empty string\.","type":"invalid_request_error","param":"input"/,
]



=== TEST 10c: store and background of another type than a boolean: refused as OpenAI refuses them, whatever the target
--- request eval
[map { "POST /v1/responses\n" . qq({"model":"$_->[0]","input":"x",$_->[1]}) }
 ['m', '"store":"false"'], ['m', '"background":0'], ['c', '"store":[]'],
 ['m', '"background":{}'], ['m', '"store":0.5'], ['m', '"store":null,"background":false']]
--- error_code eval
[400, 400, 400, 400, 400, 200]
--- response_body_like eval
[
qr/^\{"error":\{"message":"Invalid type for 'store': expected a boolean, but got a string instead\.","type":"invalid_request_error","param":"store","code":null\}\}$/,
qr/^\{"error":\{"message":"Invalid type for 'background': expected a boolean, but got an integer instead\.","type":"invalid_request_error","param":"background","code":null\}\}$/,
qr/"message":"Invalid type for 'store': expected a boolean, but got an array instead\.","type":"invalid_request_error","param":"store"/,
qr/"message":"Invalid type for 'background': expected a boolean, but got an object instead\.","type":"invalid_request_error","param":"background"/,
qr/"message":"Invalid type for 'store': expected a boolean, but got a decimal instead\.","type":"invalid_request_error","param":"store"/,
qr/"object":"response"/,
]



=== TEST 11: translated to Anthropic: a response object, usage charged
--- request
POST /v1/responses
{"model":"c","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Hi there"}]}],"max_output_tokens":50}
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{"id":"[^"]+","object":"response","created_at":\d+,"status":"completed","error":null,"incomplete_details":null,"model":"[^"]+","output":\[\{"id":"msg_\w+","type":"message","status":"completed","role":"assistant","content":\[\{"type":"output_text","text":"[^"]*Hi there[^"]*","annotations":\[\]\}\]\}\],"usage":\{"input_tokens":\d+,"input_tokens_details":\{"cached_tokens":\d+\},"output_tokens":\d+,"output_tokens_details":\{"reasoning_tokens":0\},"total_tokens":\d+\}\}$/
--- access_log eval
qr/^alice 200 p=\d+ c=\d+ cached=\d+ cost=[\d.]+ provider=claude attempts=1$/



=== TEST 12: translated to Anthropic, streamed: the Responses events
--- request
POST /v1/responses
{"model":"c","stream":true,"input":"Hi there"}
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/\Aevent:\ response\.created\n
   data:\ \{"type":"response\.created","sequence_number":0,"response":\{[^\n]*"status":"in_progress"[^\n]*\}\}\n\n
   event:\ response\.in_progress\n[^\n]*\n\n
   (?::\ ping\n\n)?
   event:\ response\.output_item\.added\n
   data:\ \{"type":"response\.output_item\.added","sequence_number":2,"output_index":0,"item":\{"id":"msg_\w+","type":"message","status":"in_progress","role":"assistant","content":\[\]\}\}\n\n
   event:\ response\.content_part\.added\n[^\n]*\n\n
   (?:event:\ response\.output_text\.delta\n[^\n]*\n\n)+
   event:\ response\.output_text\.done\n[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*\n\n
   event:\ response\.content_part\.done\n[^\n]*\n\n
   event:\ response\.output_item\.done\n[^\n]*\n\n
   event:\ response\.completed\n
   data:\ \{"type":"response\.completed","sequence_number":\d+,"response":\{[^\n]*"status":"completed"[^\n]*"usage":\{"input_tokens":\d+[^\n]*\}\n\n\z/sx




=== TEST 13: the request as translated: instructions, items, tools, choice, bounds
--- request
POST /v1/responses
{"model":"ce","instructions":"Be brief.","input":[{"type":"message","role":"developer","content":"Use tools."},{"role":"user","content":[{"type":"input_text","text":"Weather?"},{"type":"input_image","image_url":"https://example.com/a.png"}]},{"type":"function_call","call_id":"call_1","name":"weather","arguments":"{\"city\":\"Paris\"}"},{"type":"function_call_output","call_id":"call_1","output":"sunny"}],"tools":[{"type":"function","name":"weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"function","name":"weather"},"max_output_tokens":77,"temperature":0.5,"top_p":0.9,"store":false}
--- response_body_like eval
qr/^(?=.*\\"system\\":\\"Be\ brief\.\\\\n\\\\nUse\ tools\.\\")
    (?=.*\\"max_tokens\\":77)
    (?=.*\\"temperature\\":0\.5)
    (?=.*\\"top_p\\":0\.9)
    (?=.*\{\\"type\\":\\"text\\",\\"text\\":\\"Weather\?\\"\})
    (?=.*\{\\"type\\":\\"image\\",\\"source\\":\{\\"type\\":\\"url\\",\\"url\\":\\"https:\/\/example\.com\/a\.png\\"\}\})
    (?=.*\{\\"type\\":\\"tool_use\\",\\"id\\":\\"call_1\\",\\"name\\":\\"weather\\",\\"input\\":\{\\"city\\":\\"Paris\\"\}\})
    (?=.*\{\\"type\\":\\"tool_result\\",\\"tool_use_id\\":\\"call_1\\",\\"content\\":\\"sunny\\"\})
    (?=.*\\"tools\\":\[\{\\"name\\":\\"weather\\",\\"description\\":\\"Weather\ of\ a\ city\\",\\"input_schema\\":)
    (?=.*\\"tool_choice\\":\{\\"type\\":\\"tool\\",\\"name\\":\\"weather\\"\})
    (?!.*store)/sx



=== TEST 14: a function call answered by Anthropic: a function_call item
--- request
POST /v1/responses
{"model":"c","input":"Weather in Paris?","tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}
--- response_body_like eval
qr/"output":\[\{"id":"msg_\w+","type":"message","status":"completed","role":"assistant","content":\[\{"type":"output_text","text":"Let me check\.","annotations":\[\]\}\]\},\{"id":"fc_\w+","type":"function_call","status":"completed","call_id":"toolu_mock\w+","name":"weather","arguments":"\{\\"city\\":\\"Paris\\"\}"\}\]/



=== TEST 15: a function call streamed: its item, argument deltas, done
--- request
POST /v1/responses
{"model":"c","stream":true,"input":"Weather in Paris?","tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}
--- response_body_like eval
qr/event:\ response\.output_item\.done\n[^\n]*"type":"message"[^\n]*\n\n
   event:\ response\.output_item\.added\n
   data:\ \{"type":"response\.output_item\.added","sequence_number":\d+,"output_index":1,"item":\{"id":"(fc_\w+)","type":"function_call","status":"in_progress","call_id":"toolu_mock\w+","name":"weather","arguments":""\}\}\n\n
   (?:event:\ response\.function_call_arguments\.delta\n[^\n]*"item_id":"\1","output_index":1,"delta":[^\n]*\n\n)+
   event:\ response\.function_call_arguments\.done\n[^\n]*"arguments":"\{[^\n]*\n\n
   event:\ response\.output_item\.done\n[^\n]*"type":"function_call","status":"completed"[^\n]*\n\n
   event:\ response\.completed\n[^\n]*"output":\[\{[^\n]*"type":"message"[^\n]*\},\{"id":"\1","type":"function_call"[^\n]*\n\n\z/sx



=== TEST 16: a tool's output in the input: Anthropic says what it returned
--- request
POST /v1/responses
{"model":"c","input":[{"role":"user","content":"Weather?"},{"type":"function_call","call_id":"call_9","name":"weather","arguments":"{}"},{"type":"function_call_output","call_id":"call_9","output":"sunny and 21C"}],"tools":[{"type":"function","name":"weather"}]}
--- response_body_like: "text":"The tool said: sunny and 21C"



=== TEST 17: translated to Gemini, not streamed and streamed
--- request eval
[
"POST /v1/responses\n" . '{"model":"g","input":"Hi there"}',
"POST /v1/responses\n" . '{"model":"g","input":"Hi there","stream":true}',
]
--- response_body_like eval
[qr/\A\{"id":"resp_[^"]+","object":"response"[^\n]*"status":"completed"[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":\d+[^\n]*\}\}\z/s,
 qr/\Aevent:\ response\.created\n.*event:\ response\.output_text\.delta\n
   .*event:\ response\.completed\n[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":\d+[^\n]*\n\n\z/sx]



=== TEST 18: translated to Bedrock (Converse), not streamed and streamed
--- request eval
[
"POST /v1/responses\n" . '{"model":"b","input":"Hi there"}',
"POST /v1/responses\n" . '{"model":"b","input":"Hi there","stream":true}',
]
--- response_body_like eval
[qr/\A\{"id":"resp_[^"]+","object":"response"[^\n]*"status":"completed"[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":\d+[^\n]*\}\}\z/s,
 qr/\Aevent:\ response\.created\n.*event:\ response\.output_text\.delta\n
   .*event:\ response\.completed\n[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":\d+[^\n]*\n\n\z/sx]



=== TEST 19: translated to Azure (its chat completions)
--- request
POST /v1/responses
{"model":"a","input":"Hi there"}
--- response_body_like eval
qr/\A\{"id":"[^"]+","object":"response"[^\n]*"status":"completed"[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":9,"input_tokens_details":\{"cached_tokens":0\},"output_tokens":4,[^\n]*\}\}\z/sx
--- access_log
alice 200 p=9 c=4 cached=0 cost=0.000000000 provider=az attempts=1



=== TEST 20: translated to Azure, streamed
--- request
POST /v1/responses
{"model":"a","input":"Hi there","stream":true}
--- response_body_like eval
qr/\Aevent:\ response\.created\n.*event:\ response\.output_text\.delta\n
   .*event:\ response\.completed\n[^\n]*"text":"[^"]*Hi\ there[^"]*"[^\n]*"usage":\{"input_tokens":9,[^\n]*\n\n\z/sx
--- access_log
alice 200 p=9 c=4 cached=0 cost=0.000000000 provider=az attempts=1



=== TEST 21: failover from an OpenAI-format target to Anthropic: translated
--- request
POST /v1/responses
{"model":"over","input":"Hi there"}
--- response_body_like: ^\{"id":"[^"]+","object":"response".*"text":"Hello from the mock provider. You said: Hi there"
--- access_log eval
qr/^alice 200 p=\d+ c=\d+ cached=\d+ cost=[\d.]+ provider=claude attempts=2$/



=== TEST 22: the provider's error in the middle of a translated stream: an error event
--- request
POST /v1/responses
{"model":"cerr","input":"Hi there","stream":true}
--- response_body_like eval
qr/event:\ response\.created\n.*
   event:\ error\n
   data:\ \{"type":"error","sequence_number":\d+,"message":"[^"]+","error":\{"message":"[^"]+","type":"server_error","param":null,"code":"overloaded_error"\}\}\n\n\z/sx



=== TEST 23: an answer stopped by the provider's filter: status incomplete
--- request
POST /v1/responses
{"model":"gsafe","input":"Hi there"}
--- response_body_like: "status":"incomplete","error":null,"incomplete_details":\{"reason":"content_filter"\}



=== TEST 24: where a guard policy applies, a request that breaks a rule is refused before any provider sees it; what a translation cannot carry is refused, even for OpenAI-format targets
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard secrets { deny openai_key "sk-[A-Za-z0-9]{20,}"; }
--- config
    llm_guard_policy secrets;

    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
--- request eval
["POST /v1/responses\n" . '{"model":"m","input":"use sk-abcdefghijklmnopqrstuvwxyz please"}',
 "POST /v1/responses\n" . '{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"use sk-abcdefghijklmnopqrstuvwxyz please"}]}]}',
 "POST /v1/responses\n" . '{"model":"m","instructions":"never say sk-abcdefghijklmnopqrstuvwxyz","input":"Hi"}',
 "POST /v1/responses\n" . '{"model":"m","input":"Hi","store":true}']
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
[('{"error":{"message":"The request was refused by the guard policy `secrets` (rule `openai_key`).","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}') x 3,
 '{"error":{"message":"The parameter \'store\' is not served where a guard policy applies: guarded Responses calls are translated, without stored state, conversations, background mode or built-in tools.","type":"invalid_request_error","param":"store","code":"unsupported_parameter"}}']
--- no_error_log
[alert]



=== TEST 24b: a guarded call goes through chat, to an OpenAI-format target too: its texts redacted by role (instructions are the system's, a function call the assistant's, its output the tool's)
--- http_config
    llm_provider echo { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo=1/v1; }
    llm_route e { target echo gpt-x; }
    llm_guard mail {
        redact email @email where=request;
        roles user tool;
    }
--- config
    llm_guard_policy mail;

    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
--- request
POST /v1/responses
{"model":"e","instructions":"mail bob@example.com","input":[{"role":"user","content":[{"type":"input_text","text":"to carol@example.com"}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"to\":\"dan@example.com\"}"},{"type":"function_call_output","call_id":"c1","output":"sent to erin@example.com"}]}
--- response_body_like eval
qr/\A(?!.*(?:carol|erin)@)"?.*"object":"response".*"type":"output_text","text":"\{\\"model\\":\\"gpt-x\\",\\"messages\\":\[\{\\"role\\":\\"system\\",\\"content\\":\\"mail bob\@example\.com\\"\},\{\\"role\\":\\"user\\",\\"content\\":\[\{\\"type\\":\\"text\\",\\"text\\":\\"to \[EMAIL\]\\"\}\]\}.*dan\@example\.com.*\\"role\\":\\"tool\\".*sent to \[EMAIL\]/s
--- no_error_log
[alert]



=== TEST 24c: a guarded answer: redacted as a response object and as the Responses events; stopped by a deny rule with the API's error
--- http_config
    llm_provider echo { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo=1/v1; }
    llm_route e { target echo gpt-x; }
    llm_guard answers {
        redact email @email where=response;
        deny   word  "(?i)forbidden" where=response;
    }
--- config
    llm_guard_policy answers;

    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
--- request eval
["POST /v1/responses\n" . '{"model":"e","input":"write to alice@example.com"}',
 "POST /v1/responses\n" . '{"model":"e","input":"write to alice@example.com","stream":true}',
 "POST /v1/responses\n" . '{"model":"e","input":"say Forbidden"}',
 "POST /v1/responses\n" . '{"model":"e","input":"say Forbidden","stream":true}']
--- error_code eval
[200, 200, 400, 200]
--- response_body_like eval
['\A(?!.*alice@).*"object":"response".*"type":"output_text","text":"\{.*write to \[EMAIL\]',
 '\A(?!.*alice@).*event: response\.output_text\.delta\n.*\[EMAIL\].*event: response\.completed\n',
 '\A(?!.*Forbidden)\{"error":\{"message":"The answer was stopped by the guard policy `answers` \(rule `word`\)\.".*"code":"content_policy_violation"',
 '\A(?!.*Forbidden).*event: error\n.*"code":"content_policy_violation"']
--- no_error_log
[alert]



=== TEST 25: GET is refused
--- request
GET /v1/responses
--- error_code: 405
--- response_body_like: "code":"method_not_allowed"




=== TEST 26: "responses chat": an OpenAI-compatible server without /responses gets chat completions
--- request
POST /v1/responses
{"model":"v","input":"Hi","text":{"format":{"type":"json_schema","name":"pt","schema":{"type":"object"},"strict":true}},"max_output_tokens":12,"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"required","parallel_tool_calls":false,"user":"u1","metadata":{"a":"b"}}
--- response_body_like eval
qr/"text":"\{\\"model\\":\\"qwen3\\",\\"messages\\":\[\{\\"role\\":\\"user\\",\\"content\\":\\"Hi\\"\}\],\\"response_format\\":\{\\"type\\":\\"json_schema\\",\\"json_schema\\":\{\\"name\\":\\"pt\\",\\"schema\\":\{\\"type\\":\\"object\\"\},\\"strict\\":true\}\},\\"max_tokens\\":12,\\"tools\\":\[\{\\"type\\":\\"function\\",\\"function\\":\{\\"name\\":\\"f\\",\\"parameters\\":\{\\"type\\":\\"object\\"\}\}\}\],\\"tool_choice\\":\\"required\\",\\"parallel_tool_calls\\":false,\\"user\\":\\"u1\\"\}"/



=== TEST 27: "responses chat", streamed: usage asked for in the chat stream
--- request
POST /v1/responses
{"model":"v","input":"Hi","stream":true}
--- response_body_like eval
qr/event:\ response\.completed\n[^\n]*\\"stream\\":true,\\"stream_options\\":\{\\"include_usage\\":true\}/



=== TEST 28: never cached: the same call twice reaches the provider twice
--- http_config
    proxy_cache_path responses_cache keys_zone=responses_cache:1m;
    log_format cached '$status cache=$upstream_cache_status '
                      'llm=[$llm_cache_status] upstream=$upstream_status';
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- config
    location /v1/ {
        access_log logs/access.log cached;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache responses_cache;
        proxy_cache_valid 200 10m;
        llm_cache on;
    }
--- more_headers
--- request eval
["POST /v1/responses\n" . '{"model":"m","input":"x","temperature":0}',
 "POST /v1/responses\n" . '{"model":"m","input":"x","temperature":0}']
--- response_body_like eval
['"object":"response"', '"object":"response"']
--- access_log
200 cache=BYPASS llm=[BYPASS] upstream=200
--- no_access_log
HIT



=== TEST 29: a stream cut before its usage: estimated from the text received
--- request
POST /v1/responses
{"model":"m","stream":true,"input":"12345678","mock":{"cut":1,"reply":"abcd efgh"}}
--- response_body_like: "code":"stream_interrupted"
--- access_log
alice 200 p=6 c=3 cached=0 cost=0.000045000 provider=mock attempts=1



=== TEST 30: "responses" takes native or chat
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        responses both;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid "responses" value "both" in llm_provider "p": native or chat/



=== TEST 31: "responses" is an option of OpenAI-format providers only
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        format anthropic;
        responses chat;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"responses" is not an option of format "anthropic" in llm_provider "p"/



=== TEST 32: a key's limits hold: max_output_tokens is reserved
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_key small { key sk-small-0123456789; tpm 100; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Authorization: Bearer sk-small-0123456789
--- request eval
["POST /v1/responses\n" . '{"model":"m","input":"x","max_output_tokens":200}',
 "POST /v1/responses\n" . '{"model":"m","input":"x","max_output_tokens":50,"mock":{"prompt_tokens":5,"completion_tokens":5}}']
--- error_code eval
[429, 200]
--- response_body_like eval
['"message":"Rate limit reached for key `small`: 100 tokens per minute', '"object":"response"']




=== TEST 33: reasoning items of an earlier OpenAI turn are left out of a translation
--- request
POST /v1/responses
{"model":"ce","input":[{"role":"user","content":"Hi"},{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hello."}]},{"role":"user","content":"Again"}]}
--- response_body_like eval
qr/^(?![\s\S]*gAAAAB)[\s\S]*?\\"messages\\":\[\{\\"role\\":\\"user\\",\\"content\\":\[\{\\"type\\":\\"text\\",\\"text\\":\\"Hi\\"\}\]\},\{\\"role\\":\\"assistant\\",\\"content\\":\[\{\\"type\\":\\"text\\",\\"text\\":\\"Hello\.\\"\}\]\},\{\\"role\\":\\"user\\",\\"content\\":\[\{\\"type\\":\\"text\\",\\"text\\":\\"Again\\"\}\]\}\]/
