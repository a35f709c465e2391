# Usage of an answer that comes whole (a Content-Length, one piece): read
# from the end of the body, from the root's "usage" member, instead of
# every token of the body (docs/architecture.md, "Reading usage from an
# answer's end"). The same numbers as a read of the whole body in every
# case: "usage" in strings after the real one (escaped, or closing a
# string), or as a value, a "usage" member of a later object, one only
# nested (estimated then), the usage further than 2 KiB from the end, the
# key written with an escape. Each answer is also served chunked (no
# Content-Length), which is read whole token by token: the access log must
# say the same. t/701 has a 200 carrying an error and a usage.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

# each answer of t/fixtures/openai/usage-*.json twice: with a
# Content-Length (route "NAME") and chunked (route "NAME_chunked")
my $http = <<'CONF';
    log_format usage '$llm_route p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cached=$llm_cached_tokens';
CONF
for my $name (qw(tail quoted nested-after nested-only far escaped-key value)) {
    (my $route = $name) =~ s/-key$//;
    $route =~ tr/-/_/;
    for my $form (['', ',length=1'], ['_chunked', '']) {
        my ($suffix, $length) = @$form;
        $http .= "    llm_provider $route$suffix { url http://127.0.0.1:"
               . "\$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:usage-$name.json"
               . "$length/v1; }\n"
               . "    llm_route $route$suffix { target $route$suffix; }\n";
    }
}

LLM::Fixtures::defaults(
    http_config => $http,
    config => <<'CONF',
    location /v1/ {
        access_log logs/access.log usage;
        llm_auth off;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: OpenAI's answer, with members after its usage
--- request
POST /v1/chat/completions
{"model":"tail","messages":[{"role":"user","content":"x"}]}
--- response_headers
Content-Length: 585
--- response_body_like: "system_fingerprint":"fp_0ba0d124f1"\}\n\z
--- access_log
tail p=1234 c=56 cached=1024



=== TEST 1b: the same answer chunked, read whole
--- request
POST /v1/chat/completions
{"model":"tail_chunked","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "system_fingerprint":"fp_0ba0d124f1"\}\n\z
--- access_log
tail_chunked p=1234 c=56 cached=1024



=== TEST 2: "usage" in strings after the real one is not read
--- request
POST /v1/chat/completions
{"model":"quoted","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "path":"C:\\\\\\"usage"\}\n\z
--- access_log
quoted p=1234 c=56 cached=1024



=== TEST 2b: the same chunked
--- request
POST /v1/chat/completions
{"model":"quoted_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
quoted_chunked p=1234 c=56 cached=1024



=== TEST 3: a "usage" member of a later object is not the answer's
--- request
POST /v1/chat/completions
{"model":"nested_after","messages":[{"role":"user","content":"x"}]}
--- access_log
nested_after p=1234 c=56 cached=1024



=== TEST 3b: the same chunked
--- request
POST /v1/chat/completions
{"model":"nested_after_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
nested_after_chunked p=1234 c=56 cached=1024



=== TEST 4: usage only in a nested object: none reported, estimated
--- request
POST /v1/chat/completions
{"model":"nested_only","messages":[{"role":"user","content":"0123456789abcdef"}]}
--- access_log eval
# prompt: "user" and the 16 bytes, 20 bytes or 5 tokens, and 4 a message;
# completion: "assistant", the 26-byte content, "stop": 39 bytes, 10 tokens
[qr/^nested_only p=9 c=10 cached=0$/m]



=== TEST 4b: the same chunked
--- request
POST /v1/chat/completions
{"model":"nested_only_chunked","messages":[{"role":"user","content":"0123456789abcdef"}]}
--- access_log eval
[qr/^nested_only_chunked p=9 c=10 cached=0$/m]



=== TEST 5: the usage 3 KiB before the end: read all the same
--- request
POST /v1/chat/completions
{"model":"far","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "padding":"z{3000}"\}\n\z
--- access_log
far p=1234 c=56 cached=1024



=== TEST 5b: the same chunked
--- request
POST /v1/chat/completions
{"model":"far_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
far_chunked p=1234 c=56 cached=1024



=== TEST 6: the key written with an escape is "usage" too
--- request
POST /v1/chat/completions
{"model":"escaped","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "us\\u0061ge":\{
--- access_log
escaped p=1234 c=56 cached=1024



=== TEST 6b: the same chunked
--- request
POST /v1/chat/completions
{"model":"escaped_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
escaped_chunked p=1234 c=56 cached=1024



=== TEST 7: "usage" as the value of a later member
--- request
POST /v1/chat/completions
{"model":"value","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "purpose":"usage"\}\n\z
--- access_log
value p=1234 c=56 cached=1024



=== TEST 7b: the same chunked
--- request
POST /v1/chat/completions
{"model":"value_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
value_chunked p=1234 c=56 cached=1024
