# Rule-based routing (docs/routing.md): regex route names with their
# captures in target models, tried with globs in configuration order
# after exact names; "when" rules that send a request to an '@' route
# (its targets, failover included), the first that holds winning; regex
# entries in keys' model lists; and bad regexes stopping nginx with
# file, line and PCRE2's message.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

our $ROUTES = <<'CONF';
    llm_provider exact  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider glob   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider regex  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider deflt  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider big    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider text   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider hdr    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider var    { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider tools  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider down   { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1; }
    llm_provider up     { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }

    llm_route gpt-4o                     { target exact; }
    llm_route "gpt-*"                    { target glob glob-*; }
    llm_route "~^gpt-(\d+)$"             { target regex never-$1; }
    llm_route "~^o(\d)-(mini|max)$"      { target regex $2-o$1; }
    llm_route "o*"                       { target glob never; }
    llm_route "~*^claude-(.+)$"          { target regex anthropic-$1; }
    llm_route "~^x-\d+$"                 { target regex whole-$0; }

    llm_route @big   { target big   big-model; }
    llm_route @text  { target text  text-model; }
    llm_route @hdr   { target hdr   hdr-model; }
    llm_route @var   { target var   var-model; }
    llm_route @tools { target tools tools-model; }
    llm_route @fo    { target down  fo-down; target up fo-up; }
    llm_route @ant   { target an    claude-x; }

    llm_route auto {
        when prompt_tokens >= 100            @big;
        when last_user ~* "prove|derive"     @text;
        when header X-Tier = gold            @hdr;
        when $arg_v ~ ^x[0-9]+$              @var;
        when header x-plain !~ ^yes$         @fo;
        when tools                           @tools;
        when header x-dialect = anthropic    @ant;
        target deflt default-model;
    }
CONF

# a key of the team "research" and a key of no team
our $TEAM = <<'CONF';
    llm_provider deflt { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider team  { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route @research { target team team-model; }
    llm_route auto {
        when team research @research;
        target deflt;
    }
    llm_team research { }
    llm_key carol { key sk-carol-0123456789; team research; }
    llm_key dave { key sk-dave-0123456789; }
CONF

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => $ROUTES,
    more_headers => "x-plain: yes\n",
);

run_tests();

__DATA__

=== TEST 1: a regex route: its captures in the target's model, in any order
--- request
POST /v1/chat/completions
{"model":"o3-mini","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: regex
x-llm-model: mini-o3
--- response_body_like: "model":"mini-o3"



=== TEST 2: $0 is the whole match
--- request
POST /v1/chat/completions
{"model":"x-42","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: regex
x-llm-model: whole-x-42



=== TEST 3: "~*" is caseless
--- request
POST /v1/chat/completions
{"model":"CLAUDE-Opus","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: regex
x-llm-model: anthropic-Opus



=== TEST 4: an exact name wins over the glob and the regex that match it
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: exact



=== TEST 5: a glob listed before a matching regex wins
--- request
POST /v1/chat/completions
{"model":"gpt-5","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: glob
x-llm-model: glob-5



=== TEST 6: a regex listed before a matching glob wins
--- request
POST /v1/chat/completions
{"model":"o1-max","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: regex
x-llm-model: max-o1



=== TEST 7: no rule holds: the route's own targets
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"hello"}]}
--- response_headers
x-llm-provider: deflt
x-llm-model: default-model



=== TEST 8: prompt_tokens: a long prompt (400 bytes of text, 100 tokens)
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"auto","messages":[{"role":"user","content":"' . ("a" x 400)
. '"}]}'
--- response_headers
x-llm-provider: big
x-llm-model: big-model



=== TEST 9: prompt_tokens: 380 bytes of text are not enough
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"auto","messages":[{"role":"user","content":"' . ("a" x 380)
. '"}]}'
--- response_headers
x-llm-provider: deflt



=== TEST 10: last_user: a caseless regex on the last user message
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Please PROVE that"}]}
--- response_headers
x-llm-provider: text
x-llm-model: text-model



=== TEST 11: last_user: the text parts of a content array
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"text","text":"derive it"}]}]}
--- response_headers
x-llm-provider: text



=== TEST 12: last_user: only the last user message counts
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"prove it"},{"role":"assistant","content":"prove"},{"role":"user","content":"thanks"}]}
--- response_headers
x-llm-provider: deflt



=== TEST 13: last_user through the Anthropic front door: content blocks
--- request
POST /v1/messages
{"model":"auto","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"derive it"}]}]}
--- response_headers
x-llm-provider: text
--- response_body_like: "type":"message"



=== TEST 14: first match wins: a long prompt that says "prove" goes to @big
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"auto","messages":[{"role":"user","content":"prove ' . ("a" x 400)
. '"}]}'
--- response_headers
x-llm-provider: big



=== TEST 15: header = value
--- more_headers
x-plain: yes
X-Tier: gold
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: hdr



=== TEST 16: header = value: another value does not hold
--- more_headers
x-plain: yes
X-Tier: silver
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: deflt



=== TEST 17: a variable and a regex ($arg_v)
--- request
POST /v1/chat/completions?v=x12
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: var



=== TEST 18: tools
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}
--- response_headers
x-llm-provider: tools



=== TEST 19: "!~": a missing header holds; failover within the chosen list
--- more_headers
X-Other: 1
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: up
x-llm-model: fo-up
x-llm-attempts: 2



=== TEST 20: a rule's route in another API: the body is translated
--- more_headers
x-plain: yes
x-dialect: anthropic
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"hello"}]}
--- response_headers
x-llm-provider: an
x-llm-model: claude-x
--- response_body_like: "object":"chat.completion"



=== TEST 21: '@' routes are not models clients may ask for, nor listed
--- request
POST /v1/chat/completions
{"model":"@big","messages":[{"role":"user","content":"x"}]}
--- error_code: 404
--- response_body_like: "code":"model_not_found"



=== TEST 22: the models list has exact names only
--- request
GET /v1/models
--- response_body_like: ^(?![\s\S]*"id":"(?:@|~))[\s\S]*?"id":"auto"



=== TEST 23: keys' model lists: a regex refuses what it does not match, allows what it does
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route gpt-4o-mini { target mock; }
    llm_route claude-haiku { target mock; }
    llm_key alice { key sk-alice-0123456789; models "~^gpt-4o(-mini)?$"; }
--- more_headers
Authorization: Bearer sk-alice-0123456789
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}']
--- error_code eval
[403, 200]
--- response_body_like eval
['"code":"model_not_allowed"', '"object":"chat.completion"']



=== TEST 24: a team's list: a caseless regex
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route claude-haiku { target mock; }
    llm_team eng { models gpt-4o "~*^CLAUDE-"; }
    llm_key bob { key sk-bob-0123456789; team eng; }
--- more_headers
Authorization: Bearer sk-bob-0123456789
--- request
POST /v1/chat/completions
{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 25: a keys file's comma-separated list: a regex among globs
--- user_files
>>> keys
dave     sk-dave-0123456789       models=gpt-4o,~^claude-(haiku|sonnet)$;
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route claude-haiku { target mock; }
    llm_route claude-opus { target mock; }
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
--- more_headers
Authorization: Bearer sk-dave-0123456789
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"claude-opus","messages":[{"role":"user","content":"x"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}']
--- error_code eval
[403, 200]



=== TEST 26: team: the key's team chooses, other keys get the default
--- http_config eval
$::TEAM
--- more_headers
Authorization: Bearer sk-carol-0123456789
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: team
x-llm-model: team-model



=== TEST 27: team: a key of no team gets the default
--- http_config eval
$::TEAM
--- more_headers
Authorization: Bearer sk-dave-0123456789
--- request
POST /v1/chat/completions
{"model":"auto","messages":[{"role":"user","content":"x"}]}
--- response_headers
x-llm-provider: deflt



=== TEST 28: a bad regex in a route's name: file, line, PCRE2's message
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "~^claude-(.+$" { target p; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid regex in llm_route "~\^claude-\(\.\+\$": missing closing parenthesis at offset 12 of "\^claude-\(\.\+\$" in \S+nginx\.conf:\d+/



=== TEST 29: a bad regex in a "when"
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route @x { target p; }
    llm_route m { when last_user ~ "a[b" @x; target p; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid regex after "~" in llm_route "m": missing terminating \] for character class at offset 3 of "a\[b" in \S+nginx\.conf:\d+/



=== TEST 30: a bad regex in a key's model list
--- http_config
    llm_key alice { key sk-alice-0123456789; models "~(gpt"; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid regex "~\(gpt" in "models": missing closing parenthesis at offset 4 of "\(gpt" in \S+nginx\.conf:\d+/



=== TEST 31: a target model names a capture the regex does not have
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "~^a-(\d+)$" { target p b-$2; }
--- must_die
--- error_log eval
qr/\[emerg\].*target model "b-\$2" uses \$2, but the regex of llm_route "~\^a-\(\\d\+\)\$" has 1 captures in \S+nginx\.conf:\d+/



=== TEST 32: "when" names an unknown route
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m {
        target p;
        when tools @nowhere;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"when" in \S+nginx\.conf:(\d+) names unknown llm_route "\@nowhere": it must be an exact name with no "when" of its own \(llm_route "m" in line (??{ $1 - 2 })\)/



=== TEST 33: "when" names a route with rules of its own: no chains
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route @a { when tools @b; target p; }
    llm_route @b { when tools @a; target p; }
--- must_die
--- error_log eval
qr/\[emerg\].*"when" in \S+nginx\.conf:\d+ names the llm_route "\@b": it must be an exact name with no "when" of its own/



=== TEST 34: at most 32 rules in a route
--- http_config eval
"    llm_provider p { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n"
. "    llm_route \@x { target p; }\n"
. "    llm_route m {\n" . ("        when tools \@x;\n" x 33) . "        target p;\n    }\n"
--- must_die
--- error_log eval
qr/\[emerg\].*llm_route "m" has more than 32 "when" rules in \S+nginx\.conf:\d+/



=== TEST 35: a malformed "when"
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route @x { target p; }
    llm_route m { when prompt_tokens ~ 10 @x; target p; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid "when" in llm_route "m": .* in \S+nginx\.conf:\d+/
