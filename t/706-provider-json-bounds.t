# Provider JSON is bounded: tool arguments nested 100,000 levels deep, or
# an answer of more values than one may hold (1,100,000 here), are not
# built into a tree nor written out again (the writer recurses): the
# client gets the failed answer's 502 (a completion) or the stream goes on
# without that event, and the worker lives on. Anthropic, Gemini (answer
# and stream) and Bedrock. Each block writes its provider's answer
# (user_files), which a server of the block's own sends as a static file;
# unless a block says otherwise, it expects the 502, an OpenAI-shaped error,
# and no worker killed by a signal.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use LLM::Faults ();

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    server {
        # the answer the block wrote, whole (Content-Length), to a POST
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        client_max_body_size 1m;
        types {
            application/json json;
            text/event-stream sse;
        }
        location /json/ { error_page 405 =200 /answer.json; return 405; }
        location /sse/ { error_page 405 =200 /answer.sse; return 405; }
        location /answer. { internal; }
    }
    llm_provider anthropic {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/json/v1;
        format anthropic;
        key k;
    }
    llm_provider gemini {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/json/v1beta;
        format gemini;
        key k;
    }
    llm_provider gemini_stream {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/sse/v1beta;
        format gemini;
        key k;
    }
    llm_provider bedrock {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/json;
        format bedrock;
        region us-east-1; access_key AKIDEXAMPLE; secret_key s3cr3t;
    }
    llm_route anthropic { target anthropic m; }
    llm_route gemini { target gemini m; }
    llm_route gemini_stream { target gemini_stream m; }
    llm_route bedrock { target bedrock m; }
CONF
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    timeout => 60,
    error_code => 502,
    response_body_like => '"code":"upstream_error"',
    no_error_log => "exited on signal\n",
);

# the provider's answer as a user_files section: one tool call whose
# arguments are nested deep=N levels, or an array of wide=N values
sub answer {
    my ($dialect, $how, $stream) = @_;
    my ($kind, $n) = split /=/, $how;
    my $args = $kind eq 'deep' ? ('[' x $n) . (']' x $n)
                               : '[' . join(',', (0) x $n) . ']';
    return '>>> answer.' . ($stream ? 'sse' : 'json') . "\n"
           . LLM::Faults::dialect_tool_call($dialect, $stream, $args);
}

run_tests();

__DATA__

=== TEST 1: anthropic, arguments 100,000 levels deep: a 502, OpenAI-shaped
--- user_files eval
main::answer(anthropic => 'deep=100000')
--- request
POST /v1/chat/completions
{"model":"anthropic","messages":[{"role":"user","content":"x"}]}


=== TEST 2: anthropic, 1,100,000 values: a 502, OpenAI-shaped
--- user_files eval
main::answer(anthropic => 'wide=1100000')
--- request
POST /v1/chat/completions
{"model":"anthropic","messages":[{"role":"user","content":"x"}]}


=== TEST 3: gemini, arguments 100,000 levels deep: a 502, OpenAI-shaped
--- user_files eval
main::answer(gemini => 'deep=100000')
--- request
POST /v1/chat/completions
{"model":"gemini","messages":[{"role":"user","content":"x"}]}


=== TEST 4: gemini, 1,100,000 values: a 502, OpenAI-shaped
--- user_files eval
main::answer(gemini => 'wide=1100000')
--- request
POST /v1/chat/completions
{"model":"gemini","messages":[{"role":"user","content":"x"}]}


=== TEST 5: bedrock, arguments 100,000 levels deep: a 502, OpenAI-shaped
--- user_files eval
main::answer(bedrock => 'deep=100000')
--- request
POST /v1/chat/completions
{"model":"bedrock","messages":[{"role":"user","content":"x"}]}


=== TEST 6: bedrock, 1,100,000 values: a 502, OpenAI-shaped
--- user_files eval
main::answer(bedrock => 'wide=1100000')
--- request
POST /v1/chat/completions
{"model":"bedrock","messages":[{"role":"user","content":"x"}]}


=== TEST 7: a gemini stream, arguments 100,000 levels deep: the stream ends properly, with the text around the event and without the arguments
--- user_files eval
main::answer(gemini => 'deep=100000', 1)
--- request
POST /v1/chat/completions
{"model":"gemini_stream","stream":true,"messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*\[\[\[\[)(?=.*"content":"Hi").*data: \[DONE\]\n\n\z/s
