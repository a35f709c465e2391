# llm_status after requests: every field of a target's entry and what its
# values say after completions, streams, timeouts and a request in flight;
# a glob route's targets per model actually requested.
#
# A script: the status is read after requests to one running nginx, one of
# them still in flight.

use strict;
use warnings;

use File::Spec;
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat status_json status_target idle_target start_request
                    read_response);
use Test::Nginx::LLM qw(start_nginx wait_until);

my $PORT = 3990;
$ENV{TEST_NGINX_MOCK_PORT} = 3991;

my $srv = start_nginx(
    name        => 'routing-161',
    servroot    => File::Spec->rel2abs('t/servroot-routing-161'),
    port        => $PORT,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider slow { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=200/v1; }
    llm_provider stalled { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=10000/v1; }
    llm_provider held { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=1000/v1; }

    llm_route plain { target slow m-plain; }
    llm_route streamed { target slow m-stream; }
    llm_route stalled { target stalled; target mock m-after-timeout; }
    llm_route held { target held; }
    llm_route "team/*" { target mock "*"; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location /short/v1/ {
        proxy_read_timeout 300ms;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);

sub target { idle_target($PORT, @_) }


subtest 'the fields of a target after a completion' => sub {
    my $res = chat($PORT, 'plain',
                   mock => { reply => 'one two three four', completion_tokens => 4 });
    is $res->{status}, 200, 'a completion';

    my $st = status_json($PORT);
    cmp_ok abs($st->{time} - time), '<=', 5, 'time: now, in seconds';

    my $t = target('slow', 'm-plain');
    is_deeply [sort keys %$t], [sort qw(
        provider model state available_in_ms inflight requests successes
        failures rate_limited timeouts last_status ttfb_ms ttfb_samples
        latency_ms latency_samples per_token_ms per_token_samples)],
        'the fields';

    my %want = (provider => 'slow', model => 'm-plain', state => 'closed',
                available_in_ms => 0, inflight => 0, requests => 1,
                successes => 1, failures => 0, rate_limited => 0,
                timeouts => 0, last_status => 200, ttfb_samples => 0,
                latency_samples => 1);
    is $t->{$_}, $want{$_}, "$_: $want{$_}" for sort keys %want;

    ok !defined $t->{ttfb_ms}, 'ttfb_ms: null (no stream yet)';
    cmp_ok $t->{latency_ms}, '>=', 190,
        'latency_ms: the response time, with the mock\'s 200 ms in it';
};


# docs/directives.md, strategy latency: "the cost is ... latency per output
# token, or else the whole response time"; llm_status: per_token_ms
subtest 'a completion that reports its tokens is sampled per output token' => sub {
    # the completion above had "usage":{"completion_tokens":4,...}
    my $t = target('slow', 'm-plain');
    is $t->{per_token_samples}, 1, 'per_token_samples: 1';
    ok defined $t->{per_token_ms} && $t->{per_token_ms} >= 190 / 4
                                  && $t->{per_token_ms} <= $t->{latency_ms} / 4 + 1,
        'per_token_ms: the response time / 4 completion tokens'
        or diag 'per_token_ms: ' . ($t->{per_token_ms} // 'null')
                . ", latency_ms: $t->{latency_ms}";
};


subtest 'a stream is sampled by the time to its first event' => sub {
    my $res = chat($PORT, 'streamed', stream => 1,
                   mock => { reply => 'a b', chunks => 2 });
    is $res->{status}, 200, 'a stream';
    like $res->{body}, qr/data: \[DONE\]\n\n\z/, 'complete';

    my $t = target('slow', 'm-stream');
    is $t->{successes}, 1, 'successes 1';
    is $t->{ttfb_samples}, 1, 'ttfb_samples 1';
    cmp_ok $t->{ttfb_ms}, '>=', 190, 'ttfb_ms: with the mock\'s 200 ms in it';
    is $t->{latency_samples}, 0, 'latency_samples 0';
    ok !defined $t->{latency_ms}, 'latency_ms: null';
};


subtest 'a timeout counts as a timeout and a failure' => sub {
    my $res = chat($PORT, 'stalled', timeout => 4,
                   uri => '/short/v1/chat/completions');
    is $res->{status}, 200, 'proxy_read_timeout ended the attempt, the next served';
    is $res->header('x-llm-provider'), 'mock', 'mock served';

    my $t = target('stalled', 'stalled');
    is $t->{timeouts}, 1, 'timeouts 1';
    is $t->{failures}, 1, 'failures 1';
    is $t->{successes}, 0, 'successes 0';
    is $t->{last_status}, 504, 'last_status 504';
    is $t->{state}, 'closed', 'one failure of five needed: still closed';
};


subtest 'inflight counts the requests waiting for a target' => sub {
    my $sock = start_request($PORT, 'held');
    my $t;
    ok wait_until(sub {
        $t = status_target($PORT, 'held', 'held');
        $t && $t->{inflight} == 1;
    }, timeout => 10), 'inflight 1 while the request waits';
    is $t->{requests}, 1, 'requests 1 already';
    is $t->{successes}, 0, 'successes 0 yet';

    like read_response($sock), qr{\AHTTP/1\.1 200 }, 'then it is answered';
    $t = target('held', 'held');
    ok $t, 'inflight 0 again';
    is $t->{successes}, 1, 'successes 1';
};


subtest 'a glob route\'s targets appear per model requested' => sub {
    is chat($PORT, 'team/alpha')->{status}, 200, 'team/alpha';
    is chat($PORT, 'team/beta')->{status}, 200, 'team/beta';
    is chat($PORT, 'team/beta')->{status}, 200, 'team/beta again';

    is target('mock', 'alpha')->{requests}, 1, 'mock/alpha: 1 request';
    is target('mock', 'beta')->{requests}, 2, 'mock/beta: 2 requests';

    my $st = status_json($PORT);
    my @glob = grep { $_->{provider} eq 'mock' && $_->{model} =~ /^(?:alpha|beta)$/ }
               @{ $st->{targets} };
    is scalar @glob, 2, 'two targets, one per model';
};

$srv->stop;
$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
