# Guard policies on answers and on the texts of requests: redact rules
# replace what they match with a placeholder (in answers streamed or not,
# tool-call arguments included, and in the request before any provider
# sees it), deny rules stop an answer with the client API's error, log
# rules change nothing; allow rules, max_hold and on_overflow; the
# configuration's errors. t/462 checks streamed answers of every dialect
# split at every byte offset.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_provider card {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/reply=card%204111%201111%201111%201111%20ok/v1;
    }
    llm_route card { target card; }

    # a policy per route: one gateway location (each costs nginx a load
    # of the CA bundle, slow under ASan's unwinding)
    llm_route prompts { target mock; guard prompts; }
    llm_route topics  { target mock; guard topics; }
    llm_route held    { target mock; guard held; }
    llm_route dropped { target mock; guard dropped; }
    llm_route detect  { target mock; guard detect; }
    llm_route phones  { target mock; guard phones; }
    llm_route visible { target mock; guard visible; }

    llm_guard pii {
        redact email    "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";
        redact card     "\b(?:\d{4} ){3}\d{4}\b" "[CARD]";
        deny   secret   "sk-[A-Za-z0-9]{20,}" where=both;
        log    greeting "(?i)\bhello\b";
        redact city     "\bParis\b" where=response;
    }

    llm_guard prompts {
        redact codename "project\s+falcon" "[CODENAME]" where=request;
        redact email    "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
                        where=request;
    }

    llm_guard topics {
        allow billing "(?i)\b(invoice|billing|refund)\b";
    }

    llm_guard held {
        redact block "BEGIN[\s\S]*?END" "[BLOCK]";
        max_hold 64;
    }

    llm_guard detect {
        redact card  @card;
        redact iban  @iban;
        redact email @email;
        redact key   @api_key;
        redact ip    @ipv4;
        redact v6    @ipv6;
        redact ssn   @us_ssn;
        redact aws   @aws_key;
        redact gh    @github_token;
        redact jwt   @jwt;
        redact pem   @private_key;
        deny   word  "(?i)password";
    }

    llm_guard phones {
        redact phone @phone;
    }

    llm_guard visible {
        redact word "password";
        ignore_invisible off;
    }

    llm_guard dropped {
        redact block "BEGIN[\s\S]*?END" "[BLOCK]";
        max_hold 64;
        on_overflow redact;
    }
CONF
    config => <<'CONF',
    llm_guard_policy pii;

    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: an answer redacted: e-mail and card replaced, the rest as it was
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"write to alice@example.com or pay with 4111 1111 1111 1111 today"}}
--- response_body_like: "message":\{"role":"assistant","content":"write to \[EMAIL\] or pay with \[CARD\] today".*"usage":\{"prompt_tokens":1,"completion_tokens":21,
--- response_headers
Content-Type: application/json
--- no_error_log
alice@
[alert]



=== TEST 2: a streamed answer: a card cut into four events goes out as one placeholder
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"write to alice@example.com or pay with 4111 1111 1111 1111 today"}}
--- response_body_like: \A(?!.*(?:alice|4111|1111)).*"content":"\[EMAIL\]".*"content":"\[CARD\]".*"content":" ".*"content":"today".*data: \[DONE\]\n\n\z
--- response_headers
Content-Type: text/event-stream



=== TEST 3: what cannot become a match goes out at once; held text only where one could start
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"one two 4111 1111 end"}}
--- response_body_like: "content":"one "\}.*"content":"two "\}.*"content":"4111 1111 "\}.*"content":"end"\}



=== TEST 4: a deny rule stops a streamed answer before the match, with an error event
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"here it is: sk-abcdefghijklmnopqrstuvwxyz and more"}}
--- response_body_like: \A(?!.*abcdefghij)(?!.*and more).*"content":"here ".*data: \{"error":\{"message":"The answer was stopped by the guard policy `pii` \(rule `secret`\)\.","type":"invalid_request_error","param":null,"code":"content_policy_violation"\}\}\n\n
--- error_log
llm: answer stopped by guard policy "pii", rule "secret"
--- no_error_log
abcdefghij



=== TEST 5: a deny rule on an answer that is not streamed: 400, the error alone
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"here it is: sk-abcdefghijklmnopqrstuvwxyz"}}
--- error_code: 400
--- response_body chomp
{"error":{"message":"The answer was stopped by the guard policy `pii` (rule `secret`).","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}



=== TEST 6: a log rule changes nothing and says so in the error log
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"Hello there"}}
--- response_body_like: "content":"Hello there"
--- error_log
llm: guard policy "pii", rule "greeting" matched the answer



=== TEST 7: the same rules at Anthropic's door, in Anthropic's events
--- more_headers
anthropic-version: 2023-06-01
--- request
POST /v1/messages
{"model":"card","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}
--- response_body_like: \A(?!.*1111).*event: content_block_delta\ndata: \{"type":"content_block_delta","index":0,"delta":\{"type":"text_delta","text":"\[CARD\]"\}\}.*event: message_stop



=== TEST 8: request texts redacted before the provider sees them (the mock echoes its body)
--- request
POST /v1/chat/completions
{"model":"prompts","messages":[{"role":"system","content":"you help project  falcon"},{"role":"user","content":[{"type":"text","text":"mail bob@example.com"}]}],"mock":{"echo":1}}
--- response_body_like: ^(?![\s\S]*(?:falcon|bob@))[\s\S]*?you help \[CODENAME\].*mail \[EMAIL\]



=== TEST 9: a request that no allow rule matches is refused; one that matches goes on
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"topics","messages":[{"role":"user","content":"write me a poem"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"topics","messages":[{"role":"user","content":"where is my Refund?"}]}']
--- error_code eval
[400, 200]
--- response_body_like eval
["The request was refused by the guard policy `topics` \\(no allow rule matched\\)\\.",
 '"object":"chat\.completion"']



=== TEST 10: held text past max_hold ends the stream (on_overflow end, the default)
--- request
POST /v1/chat/completions
{"model":"held","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"start BEGIN aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg never ends"}}
--- response_body_like: \A(?!.*aaaa).*"content":"start".*more than its max_hold had to be held back
--- error_log
held text reached max_hold 64



=== TEST 11: on_overflow redact: the held text is replaced and the stream goes on
--- request
POST /v1/chat/completions
{"model":"dropped","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"start BEGIN aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg never ends"}}
--- response_body_like: \A(?!.*aaaa).*"content":"start".*"content":"\[REDACTED\]".*data: \[DONE\]



=== TEST 12: a tool call's arguments redacted (the mock calls the first tool with "Paris"), streamed or not
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"go","parameters":{"type":"object","properties":{"to":{"type":"string"}}}}}],"mock":{"tools":1}}',
 "POST /v1/chat/completions\n"
 . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"go","parameters":{"type":"object","properties":{"to":{"type":"string"}}}}}],"mock":{"tools":1}}']
--- response_body_like eval
['\A(?!.*Paris).*"arguments":"\{\\\\"to\\\\":\\\\"\[CITY\]\\\\"\}"',
 '\A(?!.*Paris).*"arguments":"\[CITY\]".*"finish_reason":"tool_calls".*data: \[DONE\]']



=== TEST 13: lines a policy does not know, and rules in the wrong place
--- http_config
    llm_guard bad {
        block x "abc";
    }
--- config
--- must_die
--- error_log
invalid line "block" in guard policy "bad": deny, allow, redact, log, max_hold, on_overflow, ignore_invisible, roles or messages is expected



=== TEST 14: an allow rule reads requests only
--- http_config
    llm_guard bad {
        allow x "abc" where=response;
    }
--- config
--- must_die
--- error_log
allow rule "x" reads requests only



=== TEST 15: where= takes request, response or both
--- http_config
    llm_guard bad {
        redact x "abc" where=answers;
    }
--- config
--- must_die
--- error_log
invalid "where=answers" of rule "x": request, response or both is expected



=== TEST 16: max_hold has bounds
--- http_config
    llm_guard bad {
        redact x "abc";
        max_hold 2m;
    }
--- config
--- must_die
--- error_log
invalid max_hold "2m": from 64 to 1048576 bytes



=== TEST 17: built-in detectors; cards and IBANs only when their checksums hold
--- request
POST /v1/chat/completions
{"model":"detect","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"card 4111-1111-1111-1111 not 1234 5678 9012 3456, iban GB82 WEST 1234 5698 7654 32 not GB82 WEST 1234 5698 7654 33, mail a.b@c.example.org, key sk-proj-abcdefghijklmnopqrstuv, ip 192.168.10.254 not 1.2.3.4.5, v6 2001:db8::8a2e:370:7334 not std::vector or 12:30:45, ssn 123-45-6789 not 000-12-3456, aws AKIAIOSFODNN7EXAMPLE, gh ghp_abcdefghijklmnopqrstuvwxyz0123456789, jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end"}}
--- response_body_like: "content":"card \[CARD\] not 1234 5678 9012 3456, iban \[IBAN\] not GB82 WEST 1234 5698 7654 33, mail \[EMAIL\], key \[KEY\], ip \[IP\] not 1\.2\.3\.4\.5, v6 \[V6\] not std::vector or 12:30:45, ssn \[SSN\] not 000-12-3456, aws \[AWS\], gh \[GH\], jwt \[JWT\] end"



=== TEST 18: a private key, streamed line by line, goes out as one placeholder
--- request
POST /v1/chat/completions
{"model":"detect","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"here: -----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEA7 abcdef ghijkl -----END RSA PRIVATE KEY----- done"}}
--- response_body_like: \A(?!.*MIIE)(?!.*BEGIN).*"content":"\[PEM\]".*"content":"done".*data: \[DONE\]



=== TEST 19: phone numbers, international and national
--- request
POST /v1/chat/completions
{"model":"phones","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"call +14155552671 or (415) 555-2671 or 030 1234 5678, not 2024-01-15 or 42"}}
--- response_body_like: "content":"call \[PHONE\] or \[PHONE\] or \[PHONE\], not 2024-01-15 or 42"



=== TEST 20: zero-width and bidi characters do not hide a match, in requests and answers
--- request eval
["POST /v1/chat/completions\n"
 . qq({"model":"detect","messages":[{"role":"user","content":"my pass\\u200bword is x"}]}),
 "POST /v1/chat/completions\n"
 . qq({"model":"detect","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"use sk-abcdefghij\xe2\x80\x8bklmnopqrstuvwxyz\xe2\x80\xae now"}}),
 "POST /v1/chat/completions\n"
 . qq({"model":"visible","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"pass\xe2\x80\x8cword"}})]
--- error_code eval
[400, 200, 200]
--- response_body_like eval
["rule `word`",
 '"content":"use \\[KEY\\] now"',
 "\"content\":\"pass\xe2\x80\x8cword\""]



=== TEST 21: a key's policy over its team's, a team's over the location's, "guard off"
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard fruit { deny apple "apple"; }
    llm_guard strict { deny banana "banana"; }
    llm_team eng { guard strict; }
    llm_key alice { key sk-alice-0123456789; team eng; }
    llm_key bob { key sk-bob-0123456789; }
    llm_key carol { key sk-carol-0123456789; team eng; guard off; }
--- config
    location /v1/ {
        llm_guard_policy fruit;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
[map { "POST /v1/chat/completions\n"
       . qq({"model":"m","messages":[{"role":"user","content":"an $_"}]}) }
     qw(apple apple banana banana)]
--- more_headers eval
["Authorization: Bearer sk-bob-0123456789",
 "Authorization: Bearer sk-alice-0123456789",
 "Authorization: Bearer sk-alice-0123456789",
 "Authorization: Bearer sk-carol-0123456789"]
--- error_code eval
[400, 200, 400, 200]
--- response_body_like eval
["policy `fruit` \\(rule `apple`\\)", '"object":"chat\.completion"',
 "policy `strict` \\(rule `banana`\\)", '"object":"chat\.completion"']



=== TEST 22: a key that names an unknown policy
--- http_config
    llm_key dave { key sk-dave-0123456789; guard nope; }
--- config
--- must_die
--- error_log
llm_key "dave" names unknown guard policy "nope"



=== TEST 23: numbered placeholders: one number per text, in the request and the answer alike
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard anon {
        redact email @email "<EMAIL_#>";
        redact ip    @ipv4  "[IP #]";
    }
--- config
    location /v1/ {
        llm_guard_policy anon;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"m","messages":[{"role":"user","content":"a@x.example and b@y.example, then a@x.example from 10.0.0.1"}],"mock":{"echo":1}}',
 "POST /v1/chat/completions\n"
 . '{"model":"m","stream":true,"messages":[{"role":"user","content":"ask b@y.example"}],"mock":{"reply":"c@z.example or b@y.example at 10.0.0.2"}}']
--- response_body_like eval
['<EMAIL_1> and <EMAIL_2>, then <EMAIL_1> from \\[IP 1\\]',
 '\A(?!.*example).*"content":"<EMAIL_2>".*"content":"<EMAIL_1>".*"content":"\\[IP 1\\]"']



=== TEST 24: a route's policy over the location's; the route a "when" rule chose, over the route asked for
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_guard fruit { deny apple "apple"; }
    llm_guard veg { deny carrot "carrot"; }
    llm_route m { target mock; guard veg; }
    llm_route plain { target mock; }
    llm_route @open { target mock; guard off; }
    llm_route free { target mock; when header X-Open = yes @open; }
--- config
    location /v1/ {
        llm_guard_policy fruit;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
[map { my ($model, $text) = split / /; "POST /v1/chat/completions\n"
       . qq({"model":"$model","messages":[{"role":"user","content":"an $text"}]}) }
     "m apple", "m carrot", "plain apple", "free apple", "free apple"]
--- more_headers eval
["", "", "", "X-Open: yes", "X-Open: no"]
--- error_code eval
[200, 400, 400, 200, 400]
--- response_body_like eval
['"object":"chat\.completion"', "policy `veg` \\(rule `carrot`\\)",
 "policy `fruit` \\(rule `apple`\\)", '"object":"chat\.completion"',
 "policy `fruit` \\(rule `apple`\\)"]



=== TEST 25: a route that names an unknown policy
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; guard nope; }
--- config
--- must_die
--- error_log
llm_route "m" names unknown guard policy "nope"



=== TEST 26: roles and messages: which messages a policy reads
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_guard users { deny apple "apple"; roles user tool; }
    llm_guard last { deny apple "apple"; messages last_user; }
    llm_route users { target mock; guard users; }
    llm_route last { target mock; guard last; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"users","messages":[{"role":"system","content":"an apple"},{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"users","messages":[{"role":"developer","content":"hi"},{"role":"tool","tool_call_id":"c","content":"an apple"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"last","messages":[{"role":"user","content":"an apple"},{"role":"assistant","content":"apple"},{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"last","messages":[{"role":"system","content":"apple"},{"role":"user","content":[{"type":"text","text":"an apple"}]}]}']
--- error_code eval
[200, 400, 200, 400]



=== TEST 27: an unknown role
--- http_config
    llm_guard bad { deny x "x"; roles user admin; }
--- config
--- must_die
--- error_log
invalid role "admin": system, user, assistant or tool is expected



=== TEST 28: rule options caseless and utf, in either order; a (*UTF) rule holds characters whole
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_guard opts {
        redact cafe   "café" "[CAFE]" utf caseless;
        redact creme  "crème\S*" "[CREME]" caseless utf;
        redact plain  "abc" "[ABC]" caseless;
    }
--- config
    location /v1/ {
        llm_guard_policy opts;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"reply":"CAFÉ and CRÈMEbrûlée and ABC"}}
--- response_body_like: \A(?!.*(?:CAFÉ|CRÈME|brûlée|"ABC)).*"content":"\[CAFE\]".*"content":"\[CREME\]".*"content":"\[ABC\]"



=== TEST 29: an answer not streamed is matched whole; one longer than max_hold as a stream is, with the same outcome
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"held","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"one BEGIN x END two BEGIN y END"}}',
 "POST /v1/chat/completions\n"
 . '{"model":"held","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"' . ('abcdefghij ' x 12) . 'BEGIN secret END tail"}}',
 "POST /v1/chat/completions\n"
 . '{"model":"held","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"start BEGIN aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg never ends"}}',
 "POST /v1/chat/completions\n"
 . '{"model":"dropped","messages":[{"role":"user","content":"hi"}],"mock":{"reply":"start BEGIN aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg never ends"}}']
--- error_code eval
[200, 200, 400, 200]
--- response_body_like eval
['"content":"one \[BLOCK\] two \[BLOCK\]"',
 '"content":"(?:abcdefghij ){12}\[BLOCK\] tail"',
 '\A(?!.*aaaa).*"code":"content_policy_violation"',
 '\A(?!.*aaaa).*"content":"start \[REDACTED\]ffffff gggggggggg never ends"']



=== TEST 30: a compressed answer (Content-Encoding though none is asked for) cannot be checked: it fails, nothing of it goes out
--- http_config
    llm_provider gz { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1; }
    llm_route m { target gz; guard pii; }
    llm_guard pii { redact email @email; }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location /v1/ {
            add_header Content-Encoding gzip;
            default_type application/json;
            return 200 "(compressed bytes: a@example.com)";
        }
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 502
--- response_body_like: \A(?!.*compressed)\{"error":\{.*"code":"upstream_error"
