# Usage of an answer that comes whole (a Content-Length, one piece): read
# from the end of the body, from the root's "usage" member, by a reader of
# its own instead of every token of the body (docs/architecture.md,
# "Reading usage from an answer's end"). The same numbers as a read of the
# whole body in every case: "usage" in strings after the real one
# (escaped, or closing a string), or as a value, a "usage" member of a
# later object, one only nested (estimated then), the usage further than
# 2 KiB from the end, the key written with an escape; members of every
# kind after usage, usage's in any order, duplicates, counts that are not
# integers, escapes, pretty-printing; what the reader leaves to the scanner
# (a name with an escape, details as an array, deep nesting) and answers
# that are not JSON (bytes after the root, a control character, invalid
# UTF-8, a leading zero: 502 either way). Each answer is also served
# chunked (no Content-Length), which is read whole token by token: the
# access log must say the same. The debug line tells the answers read from
# the end from those read whole. t/701 has a 200 carrying an error and a
# usage.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();
log_level('debug');

# each answer of t/fixtures/openai/usage-*.json twice: with a
# Content-Length (route "NAME") and chunked (route "NAME_chunked")
my $http = <<'CONF';
    log_format usage '$llm_route p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cached=$llm_cached_tokens';
CONF
for my $name (qw(tail quoted nested-after nested-only far escaped-key value
                  after order escapes pretty numbers floats duplicates junk
                  junk-brace second second-escaped escaped-name details-array
                  deep control bad-utf8 leading-zero)) {
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



=== TEST 8: usage followed by members of every kind
--- request
POST /v1/chat/completions
{"model":"after","messages":[{"role":"user","content":"x"}]}
--- access_log
after p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 8b: the same chunked
--- request
POST /v1/chat/completions
{"model":"after_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
after_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 9: usage members in another order, details first
--- request
POST /v1/chat/completions
{"model":"order","messages":[{"role":"user","content":"x"}]}
--- access_log
order p=10 c=20 cached=7
--- error_log
llm: usage read from the answer's end



=== TEST 9b: the same chunked
--- request
POST /v1/chat/completions
{"model":"order_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
order_chunked p=10 c=20 cached=7
--- no_error_log
llm: usage read from the answer's end



=== TEST 10: escapes and UTF-8 in strings in and after usage
--- request
POST /v1/chat/completions
{"model":"escapes","messages":[{"role":"user","content":"x"}]}
--- access_log
escapes p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 10b: the same chunked
--- request
POST /v1/chat/completions
{"model":"escapes_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
escapes_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 11: pretty-printed, white space everywhere
--- request
POST /v1/chat/completions
{"model":"pretty","messages":[{"role":"user","content":"x"}]}
--- access_log
pretty p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 11b: the same chunked
--- request
POST /v1/chat/completions
{"model":"pretty_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
pretty_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 12: a fraction, an exponent, a sign or 13 digits do not replace a count
--- request
POST /v1/chat/completions
{"model":"numbers","messages":[{"role":"user","content":"x"}]}
--- access_log
numbers p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 12b: the same chunked
--- request
POST /v1/chat/completions
{"model":"numbers_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
numbers_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 13: counts that are not integers: none taken, the 12-digit one is
--- request
POST /v1/chat/completions
{"model":"floats","messages":[{"role":"user","content":"x"}]}
--- access_log
floats p=0 c=0 cached=999999999999
--- error_log
llm: usage read from the answer's end



=== TEST 13b: the same chunked
--- request
POST /v1/chat/completions
{"model":"floats_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
floats_chunked p=0 c=0 cached=999999999999
--- no_error_log
llm: usage read from the answer's end



=== TEST 14: the last count of duplicates, values that are not numbers skipped
--- request
POST /v1/chat/completions
{"model":"duplicates","messages":[{"role":"user","content":"x"}]}
--- access_log
duplicates p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 14b: the same chunked
--- request
POST /v1/chat/completions
{"model":"duplicates_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
duplicates_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 15: bytes after the root: not JSON
--- request
POST /v1/chat/completions
{"model":"junk","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
junk p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 15b: the same chunked
--- request
POST /v1/chat/completions
{"model":"junk_chunked","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
junk_chunked p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 16: a brace after the root: not JSON
--- request
POST /v1/chat/completions
{"model":"junk_brace","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
junk_brace p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 16b: the same chunked
--- request
POST /v1/chat/completions
{"model":"junk_brace_chunked","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
junk_brace_chunked p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 17: a usage before the last at the root: the last one is read
--- request
POST /v1/chat/completions
{"model":"second","messages":[{"role":"user","content":"x"}]}
--- access_log
second p=1234 c=56 cached=1024
--- error_log
llm: usage read from the answer's end



=== TEST 17b: the same chunked
--- request
POST /v1/chat/completions
{"model":"second_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
second_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 18: a later usage written with an escape: for the scanner, the last one
--- request
POST /v1/chat/completions
{"model":"second_escaped","messages":[{"role":"user","content":"x"}]}
--- access_log
second_escaped p=99 c=99 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 18b: the same chunked
--- request
POST /v1/chat/completions
{"model":"second_escaped_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
second_escaped_chunked p=99 c=99 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 19: a name in usage with an escape: read by the scanner
--- request
POST /v1/chat/completions
{"model":"escaped_name","messages":[{"role":"user","content":"x"}]}
--- access_log
escaped_name p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 19b: the same chunked
--- request
POST /v1/chat/completions
{"model":"escaped_name_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
escaped_name_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 20: prompt_tokens_details an array: read by the scanner
--- request
POST /v1/chat/completions
{"model":"details_array","messages":[{"role":"user","content":"x"}]}
--- access_log
details_array p=1234 c=56 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 20b: the same chunked
--- request
POST /v1/chat/completions
{"model":"details_array_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
details_array_chunked p=1234 c=56 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 21: nesting deeper than the tail reader goes
--- request
POST /v1/chat/completions
{"model":"deep","messages":[{"role":"user","content":"x"}]}
--- access_log
deep p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 21b: the same chunked
--- request
POST /v1/chat/completions
{"model":"deep_chunked","messages":[{"role":"user","content":"x"}]}
--- access_log
deep_chunked p=1234 c=56 cached=1024
--- no_error_log
llm: usage read from the answer's end



=== TEST 22: a control character in a string after usage: not JSON
--- request
POST /v1/chat/completions
{"model":"control","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
control p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 22b: the same chunked
--- request
POST /v1/chat/completions
{"model":"control_chunked","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
control_chunked p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 23: invalid UTF-8 after usage: not JSON
--- request
POST /v1/chat/completions
{"model":"bad_utf8","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
bad_utf8 p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 23b: the same chunked
--- request
POST /v1/chat/completions
{"model":"bad_utf8_chunked","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
bad_utf8_chunked p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 24: a leading zero in usage: not JSON
--- request
POST /v1/chat/completions
{"model":"leading_zero","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
leading_zero p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end



=== TEST 24b: the same chunked
--- request
POST /v1/chat/completions
{"model":"leading_zero_chunked","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
leading_zero_chunked p=0 c=0 cached=0
--- no_error_log
llm: usage read from the answer's end
