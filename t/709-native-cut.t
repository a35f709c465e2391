# An answer in the client's own API (not a stream; an OpenAI-format target
# at /v1/chat/completions, an Anthropic one at /v1/messages) is held as a
# translated one is (t/705): its header waits until all of its body has
# come, so that one whose body breaks after the header (the connection
# reset, closed short of its Content-Length, a chunk that is not one) is a
# failed attempt like a 5xx: the route's next target answers, in a second
# attempt; with none left the client gets a whole 502 in its own API's
# shape, never an empty reply nor a truncated 200; llm_status counts a
# failure of the target, not a success. A whole answer, in one read or in
# several, reaches the client as it came. A script: fault servers are
# forked processes.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures;
use LLM::Faults qw(fault_server openai_error_ok);
use LLM::Routing qw(chat idle_target);
use Test::Nginx::LLM qw(start_nginx free_port http_request);

my $SLOW = Test::Nginx::LLM::slow_factor();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $faults = fault_server();
my $F = $faults->port;

my @faults = qw(rst_body cut_len bad_chunk);
my @cases = map { my $d = $_; map { [$d, $_] } @faults } qw(openai anthropic);

my $http = $LLM::Fixtures::MOCK_HTTP_CONFIG
    . "    llm_provider healthy { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n";
for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $conf = $d eq 'openai' ? "url http://127.0.0.1:$F/$fault/v1;"
             : "url http://127.0.0.1:$F/$fault,dialect=anthropic/v1; "
               . "format anthropic; key k;";
    $http .= <<CONF;
    llm_provider ${d}_$fault { $conf }
    llm_route ${d}_$fault { target ${d}_$fault m; target healthy; }
    llm_route ${d}_${fault}_alone { target ${d}_$fault m; }
CONF
}

# whole answers, at once and a byte a millisecond after the first 100
for my $d (qw(openai anthropic)) {
    my $dialect = $d eq 'openai' ? '' : ',dialect=anthropic';
    my $fmt = $d eq 'openai' ? '' : 'format anthropic; key k;';
    $http .= <<CONF;
    llm_provider ${d}_ok { url http://127.0.0.1:$F/ok$dialect/v1; $fmt }
    llm_route ${d}_ok { target ${d}_ok m; }
    llm_provider ${d}_drip { url http://127.0.0.1:$F/drip,ms=1,from=100$dialect/v1; $fmt }
    llm_route ${d}_drip { target ${d}_drip m; }
CONF
}

my $srv = start_nginx(
    name        => 'native-cut',
    http_config => $http,
    config      => <<CONF,
    location /v1/ {
        proxy_read_timeout ${\ (30 * $SLOW)}s;
        llm_gateway;
        include \$TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

sub ask {
    my ($d, $model) = @_;
    return chat($port, $model, timeout => 10 * $SLOW) if $d eq 'openai';
    return http_request(port => $port, method => 'POST',
                        uri => '/v1/messages',
                        headers => { 'Content-Type' => 'application/json',
                                     'anthropic-version' => '2023-06-01' },
                        body => '{"model":"' . $model . '","max_tokens":10,'
                              . '"messages":[{"role":"user","content":"x"}]}',
                        timeout => 10 * $SLOW);
}

for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $name = "${d}_$fault";

    my $res = ask($d, $name);
    is($res->{status}, 200, "$name: answered");
    is(($res->header('x-llm-provider') // '') . ' '
       . ($res->header('x-llm-attempts') // ''),
       'healthy 2', "$name: by the next target, in a second attempt");
    my $body = eval { JSON::PP::decode_json($res->{body}) } // {};
    is($body->{$d eq 'openai' ? 'object' : 'type'},
       $d eq 'openai' ? 'chat.completion' : 'message',
       "$name: a whole answer in the client's API");

    $res = ask($d, "${name}_alone");
    if ($d eq 'openai') {
        openai_error_ok($res, 502, 'upstream_error', "$name alone: a whole 502");
    } else {
        is($res->{status}, 502, "$name alone: a 502");
        my $err = eval { JSON::PP::decode_json($res->{body}) } // {};
        is($err->{type}, 'error', "$name alone: in Anthropic's shape");
        ok($err->{error} && $err->{error}{message},
           "$name alone: with a message");
    }

    # the failed attempts, twice (with and without a next target)
    my $t = idle_target($port, $name, 'm');
    ok($t && $t->{failures} == 2 && $t->{successes} == 0,
       "$name: llm_status counts two failures, no success")
        or diag explain $t;
}

for my $d (qw(openai anthropic)) {
    for my $how (qw(ok drip)) {
        my $name = "${d}_$how";
        my $res = ask($d, $name);
        is($res->{status}, 200, "$name: 200");
        is(($res->header('x-llm-provider') // '') . ' '
           . ($res->header('x-llm-attempts') // ''),
           "$name 1", "$name: by the target, at once");
        my $body = eval { JSON::PP::decode_json($res->{body}) } // {};
        like(($d eq 'openai' ? $body->{choices}[0]{message}{content}
                             : $body->{content}[0]{text}) // '',
             qr/^Hello from a fault$/, "$name: the whole answer, as it came");
        my $t = idle_target($port, $name, 'm');
        ok($t && $t->{successes} == 1 && $t->{failures} == 0,
           "$name: llm_status counts a success") or diag explain $t;
    }
}

done_testing();
