# Guard policies (llm_guard): deny rules on PCRE2 over what a request's
# messages say (content strings, text parts, tool-call arguments, tool
# results, Anthropic's system prompt), refused with 400 and the code
# content_policy_violation in the client's API, naming the policy and the
# rule but never the text; bad rules stop nginx -t with the rule and the
# offset.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }

    llm_guard secrets {
        deny openai_key  "sk-[A-Za-z0-9]{20,}";
        deny password    "(?i)password\s*[:=]";
    }
CONF
    config => <<'CONF',
    llm_guard_policy secrets;

    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }

    location /open/v1/ {
        llm_guard_policy off;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: a key in a user message is refused, the key never echoed
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"use sk-abcdefghijklmnopqrstuvwxyz please"}]}
--- error_code: 400
--- response_body chomp
{"error":{"message":"The request was refused by the guard policy `secrets` (rule `openai_key`).","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}
--- error_log
llm: request refused by guard policy "secrets", rule "openai_key"
--- no_error_log
abcdefghijklmnop



=== TEST 2: a clean request goes to the provider
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"what is a password manager?"}]}
--- response_body_like: "object":"chat\.completion"



=== TEST 3: a text part, case-insensitive by the rule's (?i)
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello"},{"type":"text","text":"my PASSWORD: hunter2"}]}]}
--- error_code: 400
--- response_body_like: ^(?![\s\S]*hunter2)[\s\S]*?rule `password`



=== TEST 4: tool-call arguments and tool results are read too
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"m","messages":[{"role":"user","content":"hi"},'
 . '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",'
 . '"function":{"name":"login","arguments":"{\"q\": \"my password: x\"}"}}]}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"m","messages":[{"role":"user","content":"hi"},'
 . '{"role":"tool","tool_call_id":"c1","content":"token sk-ABCDEFGHIJKLMNOPQRSTUVWX"}]}']
--- error_code eval
[400, 400]
--- response_body_like eval
["rule `password`", "rule `openai_key`"]



=== TEST 5: names and roles are not text: a role or a name never matches
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard roles {
        deny role_word "user|assistant|login";
    }
--- config
    location /v1/ {
        llm_guard_policy roles;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"login","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}
--- response_body_like: "object":"chat\.completion"



=== TEST 6: "llm_guard_policy off" in a location
--- request
POST /open/v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"use sk-abcdefghijklmnopqrstuvwxyz please"}]}
--- response_body_like: "object":"chat\.completion"



=== TEST 7: Anthropic's door: the system prompt, and Anthropic's error shape
--- more_headers
anthropic-version: 2023-06-01
--- request
POST /v1/messages
{"model":"m","max_tokens":10,"system":[{"type":"text","text":"the admin password = 42"}],"messages":[{"role":"user","content":"hi"}]}
--- error_code: 400
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"The request was refused by the guard policy `secrets` (rule `password`)."}}



=== TEST 8: a bad pattern stops nginx -t: the policy, the rule, PCRE2's words, the offset
--- http_config
    llm_guard bad {
        deny fine   "abc";
        deny broken "a(b";
    }
--- config
--- must_die
--- error_log
guard policy "bad", rule "broken": missing closing parenthesis at offset 3 of its pattern



=== TEST 9: a rule that can match an empty text
--- http_config
    llm_guard empty {
        deny nothing "x*";
    }
--- config
--- must_die
--- error_log
guard policy "empty", rule "nothing": it can match an empty text in



=== TEST 10: an unknown policy
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- config
    location /v1/ {
        llm_guard_policy nope;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- must_die
--- error_log
unknown guard policy "nope"



=== TEST 11: a policy without rules, and a line that is not a rule
--- http_config
    llm_guard none {
    }
--- config
--- must_die
--- error_log
guard policy "none" has no rules



=== TEST 12: a policy at the http level, for every server below
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard_policy words;
    llm_guard words {
        deny forbidden "\bforbidden\b";
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"a forbidden word"}]}
--- error_code: 400
--- response_body_like: rule `forbidden`



=== TEST 13: two policies of one name
--- http_config
    llm_guard twice { deny x "abc"; }
    llm_guard twice { deny y "def"; }
--- config
--- must_die
--- error_log
duplicate guard policy "twice", first defined in
