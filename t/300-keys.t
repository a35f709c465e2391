# Gateway keys: Bearer or x-api-key, kept as SHA-256 digests, from
# nginx.conf or a keys file; teams and organisations; model allowlists;
# gateways without keys stay open.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-key;
    }
    llm_route gpt-4o { target mock; }
    llm_route gpt-4o-mini { target mock; }
    llm_route claude-haiku { target mock; }

    llm_org acme { }
    llm_team eng {
        org acme;
        models "gpt-*" claude-haiku;
    }

    llm_key alice {
        key sk-alice-0123456789;
        team eng;
        models gpt-4o claude-haiku;
    }

    # bob's key given as its digest: sha256("sk-bob-0123456789")
    llm_key bob {
        key sha256:7abecd79d98aa79deaacf9745bb505d7d72abe4dd36edc1b977d1345863ad3b5;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: no key
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body chomp
{"error":{"message":"You didn't provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY), or in an x-api-key header.","type":"authentication_error","param":null,"code":"missing_api_key"}}



=== TEST 2: a wrong key
--- log_level: info
--- more_headers
Authorization: Bearer sk-alice-0123456780
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body chomp
{"error":{"message":"Incorrect API key provided.","type":"authentication_error","param":null,"code":"invalid_api_key"}}
--- no_error_log
sk-alice-0123456780



=== TEST 3: a Bearer key, and the provider gets its own key only
--- more_headers
Authorization: Bearer sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"authorization":"Bearer sk-provider-key")(?=.*"x_api_key":null)/s



=== TEST 3b: the scheme's name in any case (RFC 9110: case-insensitive)
--- more_headers
Authorization: bEARER sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/(?=.*"authorization":"Bearer sk-provider-key")(?=.*"x_api_key":null)/s



=== TEST 3c: another scheme, or one a letter off, carries no key
--- more_headers
Authorization: Bearen sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 3d: the scheme without its space is no Bearer either
--- more_headers
Authorization: Bearer_sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 4: an x-api-key, as Anthropic clients send
--- more_headers
x-api-key: sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 5: the key's model list refuses others
--- more_headers
Authorization: Bearer sk-alice-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}
--- error_code: 403
--- response_body chomp
{"error":{"message":"The key `alice` may not use model `gpt-4o-mini`.","type":"permission_error","param":"model","code":"model_not_allowed"}}



=== TEST 6: the team's model list applies too
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route gpt-4o { target mock; }
    llm_route claude-haiku { target mock; }
    llm_team eng { models "gpt-*"; }
    llm_key carol { key sk-carol-0123456789; team eng; }
--- more_headers
Authorization: Bearer sk-carol-0123456789
--- request
POST /v1/chat/completions
{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}
--- error_code: 403
--- response_body_like: "code":"model_not_allowed"



=== TEST 7: a key configured by its digest
--- more_headers
Authorization: Bearer sk-bob-0123456789
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 8: the models list needs a key too
--- request
GET /v1/models
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 9: llm_auth off opens a location
--- config
    location /v1/ {
        llm_auth off;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 10: keys from a keys file, with attributes
--- user_files
>>> keys
# name   key                      attributes
dave     sk-dave-0123456789       team=eng models=gpt-4o,claude-*;
erin     sha256:a4e6316e7a5a3d3f5c48543c6b6e83db2d6bd4b08b2f28e8d1a04eb2e9aa6d22 rpm=5;
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route gpt-4o { target mock; }
    llm_route claude-haiku { target mock; }
    llm_route other { target mock; }
    llm_team eng { }
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
    log_format keys 'key=$llm_key team=$llm_team';
--- config
    location /v1/ {
        access_log logs/access.log keys;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Authorization: Bearer sk-dave-0123456789
--- request
POST /v1/chat/completions
{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"
--- access_log
key=dave team=eng



=== TEST 11: a keys file entry's allowlist
--- user_files
>>> keys
dave     sk-dave-0123456789       models=gpt-4o,claude-*;
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route other { target mock; }
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
--- more_headers
Authorization: Bearer sk-dave-0123456789
--- request
POST /v1/chat/completions
{"model":"other","messages":[{"role":"user","content":"x"}]}
--- error_code: 403



=== TEST 12: a keys file error names its file and line
--- user_files
>>> keys
dave     sk-dave-0123456789;
erin     sk-erin-0123456789   speed=fast;
--- http_config
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
--- must_die
--- error_log eval
qr/unknown attribute "speed" of "erin" in \S+\/html\/keys:2/



=== TEST 13: two keys with the same key
--- http_config
    llm_key a { key sk-same-0123456789; }
    llm_key b { key sk-same-0123456789; }
--- must_die
--- error_log eval
qr/key "b" in \S+nginx\.conf:(\d+) is the same as key "a" in \S+nginx\.conf:(??{ $1 - 1 })(?!\d)/



=== TEST 14: a key naming an unknown team
--- http_config
    llm_key a { key sk-a-0123456789; team nobody; }
--- must_die
--- error_log eval
qr/"a" in \S+nginx\.conf:\d+ names unknown llm_team "nobody"/



=== TEST 15: a short key
--- http_config
    llm_key a { key short; }
--- must_die
--- error_log
the key of "a" is shorter than 8 characters



=== TEST 16: two keys of one name: the error names where the first is
--- http_config
    llm_key a { key sk-a1-0123456789; }

    llm_key a { key sk-a2-0123456789; }
--- must_die
--- error_log eval
qr/duplicate key "a", first defined in \S+nginx\.conf:(\d+) in \S+nginx\.conf:(??{ $1 + 2 })(?!\d)/



=== TEST 17: rpm 0 is no limit, in nginx.conf as in Redis
--- http_config
    llm_key free { key sk-free-0123456789; rpm 0; tpm 0; }
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
--- more_headers
Authorization: Bearer sk-free-0123456789
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_headers
x-ratelimit-limit-requests: 10000
!x-provider-ratelimit-limit-requests



=== TEST 18: many keys: each finds its own entity, a near miss none
The digests are looked up in a table at most half full, probing on: with
3,000 keys, runs of occupied slots are walked for keys far from the
first or last, and a wrong key must still walk to an empty slot.
--- user_files eval
[[keys => CORE::join '', map { sprintf "k%04d sk-many-%04d-0123456789;\n", $_, $_ }
    1 .. 3000]]
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
--- config
    location /v1/ {
        add_header X-Key-Name "$llm_key" always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
[("POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}") x 6]
--- more_headers eval
[map { "Authorization: Bearer $_\n" } qw(sk-many-0001-0123456789
    sk-many-1500-0123456789 sk-many-3000-0123456789 sk-many-2999-0123456789
    sk-many-3001-0123456789 sk-many-0042-0123456789)]
--- error_code eval
[200, 200, 200, 200, 401, 200]
--- response_headers eval
["X-Key-Name: k0001", "X-Key-Name: k1500", "X-Key-Name: k3000",
 "X-Key-Name: k2999", "!X-Key-Name", "X-Key-Name: k0042"]



=== TEST 19: "text*" is the text and anything after it; a regex or another glob keeps its own meaning
"gpt-4o*" is compared as a prefix (keys.c): the text itself passes, a
shorter or other name does not; "~^o1.*" ends in a star but is a regex;
"claude-*-haiku" has its star inside.
--- http_config
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route gpt-4o { target mock; }
    llm_route gpt-4o-mini { target mock; }
    llm_route gpt-4 { target mock; }
    llm_route gpt-5o { target mock; }
    llm_route o1-preview { target mock; }
    llm_route claude-3-haiku { target mock; }
    llm_route claude-3-sonnet { target mock; }
    llm_key carol {
        key sk-carol-0123456789;
        models "gpt-4o*" "~^o1.*" "claude-*-haiku";
    }
--- request eval
[map { "POST /v1/chat/completions\n{\"model\":\"$_\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" }
    qw(gpt-4o gpt-4o-mini gpt-4 gpt-5o o1-preview claude-3-haiku claude-3-sonnet)]
--- more_headers eval
[("Authorization: Bearer sk-carol-0123456789\n") x 7]
--- error_code eval
[200, 200, 403, 403, 200, 200, 403]
