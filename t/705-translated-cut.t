# A translated answer (Anthropic, Gemini, Bedrock target; not a stream) is
# read whole before anything reaches the client, so one that breaks off in
# the middle of its body, or whose whole body is not JSON, is a failed
# attempt like a 5xx: the route's next target answers; with none left
# the client gets a 502 in its own API's shape (OpenAI's, or Anthropic's at
# /v1/messages), never an empty reply; llm_status counts a failure of the
# target, not a success. A script: fault servers are forked processes.

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

my %base = (anthropic => '/v1', gemini => '/v1beta', bedrock => '');
my %auth = (anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');
my @cases = map { my $d = $_; map { [$d, $_] } qw(rst_body junk_json) }
            qw(anthropic gemini bedrock);

my $http = $LLM::Fixtures::MOCK_HTTP_CONFIG
    . "    llm_provider healthy { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n";
for my $c (@cases) {
    my ($d, $fault) = @$c;
    $http .= <<CONF;
    llm_provider ${d}_$fault {
        url http://127.0.0.1:$F/$fault,dialect=$d$base{$d};
        format $d;
        $auth{$d}
    }
    llm_route ${d}_$fault { target ${d}_$fault m; target healthy; }
    llm_route ${d}_${fault}_alone { target ${d}_$fault m; }
CONF
}

my $srv = start_nginx(
    name        => 'translated-cut',
    http_config => $http,
    config      => <<CONF,
    location /v1/ {
        proxy_read_timeout ${\ (5 * $SLOW)}s;
        llm_gateway;
        include \$TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $name = "${d}_$fault";

    my $res = chat($port, $name, timeout => 10 * $SLOW);
    is($res->{status}, 200, "$name: answered");
    is(($res->header('x-llm-provider') // '') . ' '
       . ($res->header('x-llm-attempts') // ''),
       'healthy 2', "$name: by the next target, in a second attempt");
    like($res->{body}, qr/"object":"chat.completion"/, "$name: a completion");

    $res = chat($port, "${name}_alone", timeout => 10 * $SLOW);
    openai_error_ok($res, 502, 'upstream_error', "$name alone: a whole 502");

    # the failed attempts, twice (with and without a next target)
    my $t = idle_target($port, $name, 'm');
    ok($t && $t->{failures} == 2 && $t->{successes} == 0,
       "$name: llm_status counts two failures, no success")
        or diag explain $t;
}

# Anthropic's door to a translated target: its own error shape
my $res = http_request(port => $port, method => 'POST', uri => '/v1/messages',
                       headers => { 'Content-Type' => 'application/json',
                                    'anthropic-version' => '2023-06-01' },
                       body => '{"model":"gemini_rst_body_alone",'
                             . '"max_tokens":10,"messages":'
                             . '[{"role":"user","content":"x"}]}',
                       timeout => 10 * $SLOW);
is($res->{status}, 502, '/v1/messages: a 502');
my $err = eval { JSON::PP::decode_json($res->{body}) } // {};
is($err->{type}, 'error', '/v1/messages: in Anthropic\'s shape');
ok($err->{error} && $err->{error}{message}, '/v1/messages: with a message');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
