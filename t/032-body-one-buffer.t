# A body nginx kept in a temporary file (larger than
# client_body_buffer_size) goes upstream from one buffer, up to 256 KiB:
# in pieces it would meet delayed ACKs on a keepalive connection and stall
# 20-40 ms (bench/RESULTS.md). The provider gets the same bytes either
# way, the model's name replaced (the SHA-256 of what the mock received).

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use Digest::SHA ();

# what the provider must receive: the body with the target's model
sub received {
    my ($text) = @_;
    my $body = '{"model":"mock-model","messages":[{"role":"user",'
             . qq{"content":"$text"\}]\}};
    return qr/"body_sha256":"${\ Digest::SHA::sha256_hex($body)}"/;
}

no_shuffle();

LLM::Fixtures::defaults(
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route m { target mock mock-model; }
    llm_auth off;
CONF
    config => <<'CONF',
    location /v1/ {
        client_body_buffer_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: 8 KiB in a file: one buffer upstream, the model replaced
--- request eval
qq{POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"${\ ('y' x 8000)}"}]}}
--- response_body_like eval
main::received('y' x 8000)
--- error_log eval
qr/llm body: 80\d\d bytes upstream from one buffer/



=== TEST 2: 300 KiB: sent as it lies, in pieces
--- request eval
qq{POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"${\ ('z' x 300000)}"}]}}
--- response_body_like eval
main::received('z' x 300000)
--- no_error_log
upstream from one buffer
