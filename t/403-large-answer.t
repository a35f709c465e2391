# A large translated answer: Anthropic's of 300,000 characters of text,
# whole and as a stream, reaches an OpenAI client whole (the answer is
# read whole up to 64 MiB before it is translated; docs/dialects.md). The
# fixture is written by the block and served by the fixture mock.

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
            js_content fixture.serve;
        }
    }
    llm_provider big {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/fixture/fixture=anthropic:big.json/v1;
        format anthropic;
        key k;
    }
    llm_provider bigs {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/fixture/fixture=anthropic:big.sse/v1;
        format anthropic;
        key k;
    }
    llm_route big { target big m; }
    llm_route bigs { target bigs m; }
CONF
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

my $text = 'a' x 300000;

sub answer {
    return '{"id":"msg_big","type":"message","role":"assistant","model":"m",'
         . '"content":[{"type":"text","text":"' . $text . '"}],'
         . '"stop_reason":"end_turn","usage":{"input_tokens":5,'
         . '"output_tokens":75000}}';
}

sub stream {
    my $e = sub { "event: $_[0]\ndata: $_[1]\n\n" };
    return $e->('message_start', '{"type":"message_start","message":{"id":'
                . '"msg_big","type":"message","role":"assistant","model":"m",'
                . '"content":[],"usage":{"input_tokens":5,"output_tokens":1}}}')
         . $e->('content_block_start', '{"type":"content_block_start",'
                . '"index":0,"content_block":{"type":"text","text":""}}')
         . $e->('content_block_delta', '{"type":"content_block_delta",'
                . '"index":0,"delta":{"type":"text_delta","text":"'
                . $text . '"}}')
         . $e->('content_block_stop', '{"type":"content_block_stop","index":0}')
         . $e->('message_delta', '{"type":"message_delta","delta":'
                . '{"stop_reason":"end_turn"},"usage":{"output_tokens":75000}}')
         . $e->('message_stop', '{"type":"message_stop"}');
}

run_tests();

__DATA__

=== TEST 1: a completion of 300,000 characters
--- user_files eval
">>> anthropic/big.json\n" . main::answer()
--- request
POST /v1/chat/completions
{"model":"big","messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/"content":"(?:a{60000}){5}".*"completion_tokens":75000/s



=== TEST 2: a stream with an event of 300,000 characters
--- user_files eval
">>> anthropic/big.sse\n" . main::stream()
--- request
POST /v1/chat/completions
{"model":"bigs","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like eval
qr/"content":"(?:a{60000}){5}".*data: \[DONE\]\n\n\z/s
