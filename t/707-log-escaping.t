# What providers send reaches the error log escaped: an event the gateway
# does not understand, whose data lines (joined by newlines) carry a fake
# log line and binary bytes, is logged on one line, its control and
# non-ASCII bytes as \xHH; and so is a provider's error message. The
# fixtures are written by each block (user_files) and served by the
# fixture mock from the test's html directory.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        error_log logs/mock.log info;
        location /fixture/ {
            set $mock_fixture_dir $TEST_NGINX_SERVER_ROOT/html;
            postpone_output 0;
            js_content fixture.serve;
        }
    }
    llm_provider inject {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/fixture/fixture=anthropic:inject.sse/v1;
        format anthropic;
        key k;
    }
    llm_provider err {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/fixture/fixture=anthropic:error.json,status=529/v1;
        format anthropic;
        key k;
    }
    llm_route inject { target inject m; }
    llm_route err { target err m; }
CONF
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

# Anthropic's stream, with an event of two data lines after its first
sub inject_sse {
    my $file = "$ENV{TEST_NGINX_FIXTURE_DIR}/anthropic/tools.sse";
    open my $fh, '<', $file or die "$file: $!";
    my $stream = do { local $/; <$fh> };
    close $fh;
    $stream =~ s/\n\n/\n\nevent: content_block_delta\ndata: {not json\ndata: 2026\/12\/05 00:00:00 [warn] 1#1: forged \x01\xff line\n\n/
        or die "no event in $file";
    return $stream;
}

run_tests();

__DATA__

=== TEST 1: an event not understood: the stream goes on, the event logged on one line, escaped
--- log_level: info
--- user_files eval
">>> anthropic/inject.sse\n" . main::inject_sse()
--- request
POST /v1/chat/completions
{"model":"inject","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: data: \[DONE\]
--- error_log eval
qr/does not understand: "\{not json\\x0a2026\/12\/05 00:00:00 \[warn\] 1#1: forged \\x01\\xff line"/
--- no_error_log eval
qr/^2026\/12\/05 00:00:00 \[warn\]/m



=== TEST 2: a provider's error message: its status passes on, no forged line logged
--- log_level: info
--- user_files eval
">>> anthropic/error.json\n"
. '{"type":"error","error":{"type":"overloaded\nerror",'
. '"message":"line one\n2026/12/05 00:00:00 [warn] 1#1: forged \u0007"}}'
--- request
POST /v1/chat/completions
{"model":"err","messages":[{"role":"user","content":"x"}]}
--- error_code: 529
--- no_error_log eval
qr/^2026\/12\/05 00:00:00 \[warn\]/m
