# Provider JSON is bounded: tool arguments nested 100,000 levels deep, or
# an answer of more values than one may hold (1,100,000 here), are not
# built into a tree nor written out again (the writer recurses): the
# client gets the failed answer's 502 (a completion) or the stream goes on
# without that event, and the worker lives on. Anthropic, Gemini (answer
# and stream) and Bedrock.
#
# A script: the provider is a forked process (LLM::Faults writes the
# 100,000-deep and 1,100,000-wide JSON), and the worker's pid is read
# before the seven requests to one running nginx and after each of them.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Faults qw(fault_server);
use LLM::Dialects qw(encode_json sse_events);
use Test::Nginx::LLM qw(start_nginx http_request);

my $faults = fault_server();
my $F = $faults->port;

my %base = (anthropic => '/v1', gemini => '/v1beta', bedrock => '');
my %auth = (anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');
my @cases = ((map { [$_, 'deep=100000', 0], [$_, 'wide=1100000', 0] }
              qw(anthropic gemini bedrock)), [gemini => 'deep=100000', 1]);

my $conf = '';
for my $i (0 .. $#cases) {
    my ($d, $how) = @{ $cases[$i] };
    $conf .= <<"CONF";
    llm_provider c$i {
        url http://127.0.0.1:$F/ok,dialect=$d,$how$base{$d};
        format $d;
        $auth{$d}
    }
    llm_route c$i { target c$i m; }
CONF
}

my $srv = start_nginx(
    name        => 'provider-json-bounds',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $conf,
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my ($worker) = $srv->worker_pids;

for my $i (0 .. $#cases) {
    my ($d, $how, $stream) = @{ $cases[$i] };
    my $name = "$d $how" . ($stream ? ' stream' : '');
    my $res = http_request(port => $srv->port, method => 'POST',
                           uri => '/v1/chat/completions', timeout => 60,
                           body => encode_json({
        model => "c$i", messages => [{ role => 'user', content => 'x' }],
        $stream ? (stream => JSON::PP::true()) : () }));

    if ($stream) {
        my @ev = sse_events($res->{body} // '');
        is($ev[-1][1], '[DONE]', "$name: the stream ends properly");
        like($res->{body}, qr/"content":"Hi"/, "$name: with the text around it");
        unlike($res->{body}, qr/\[\[\[\[/, "$name: without the arguments");
    } else {
        is($res->{status}, 502, "$name: 502");
        like($res->{body}, qr/"code":"upstream_error"/,
             "$name: an OpenAI-shaped error");
    }
    is(($srv->worker_pids)[0], $worker, "$name: the same worker answers on");
}

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
