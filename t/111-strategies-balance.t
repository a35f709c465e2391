# Strategies over many requests: weighted's exact smooth round-robin
# sequence and counts, latency following the faster target (also when the
# two swap speeds while nginx runs), and ordered skipping a target whose
# breaker is open.
#
# Which target served is read from the x-llm-provider response header.
#
# A script: hundreds of requests to one running nginx, in order, the mock's
# speeds changed between them.

use strict;
use warnings;

use File::Spec;
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat idle_target mock_file);
use Test::Nginx::LLM qw(start_nginx);

# our own ports (3990-3999), so that other test runs do not collide
my $PORT = 3990;
$ENV{TEST_NGINX_MOCK_PORT} = 3991;

my $srv = start_nginx(
    name        => 'routing-111',
    servroot    => File::Spec->rel2abs('t/servroot-routing-111'),
    port        => $PORT,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider b { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }

    llm_route spread {
        strategy weighted;
        target a weight=3;
        target b weight=1;
    }

    # the mock reads each provider's delay from a file on every request
    llm_provider one { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay_file=speed_one/v1; }
    llm_provider two { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay_file=speed_two/v1; }

    # explore 100%: the first requests measure both targets (whichever is
    # listed first), so that the rest is decided by the measurements only
    llm_route quick {
        strategy latency;
        explore 100%;
        target one;
        target two;
    }

    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
        health failure_ratio=100% min_requests=2 cooldown=60s;
    }
    llm_route ordered {
        target broken;
        target b ordered-b;
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);

# the providers that served $n requests, in order
sub served {
    my ($model, $n) = @_;
    my @who;
    for (1 .. $n) {
        my $res = chat($PORT, $model);
        push @who, ($res->{status} // 0) == 200
                   ? $res->header('x-llm-provider') // 'no-header'
                   : 'status-' . ($res->{status} // 'none');
    }
    return @who;
}

sub count {
    my ($who, @list) = @_;
    return scalar grep { $_ eq $who } @list;
}

sub write_file { mock_file($srv, @_) }


subtest 'weighted 3:1: the smooth round-robin sequence, exactly' => sub {
    my @who = served('spread', 8);
    is "@who", 'a a b a a a b a', 'a a b a a a b a';

    push @who, served('spread', 32);
    is count('a', @who), 30, '40 requests: 30 to a';
    is count('b', @who), 10, '40 requests: 10 to b';
    is "@who[8 .. 15]", 'a a b a a a b a', 'and the sequence repeats';
};


subtest 'latency: the fast target gets the large majority, and shifts on a swap' => sub {
    write_file('speed_one', '0');
    write_file('speed_two', '150');

    my @who = served('quick', 30);
    diag "phase 1: @who" if count('one', @who) < 25;
    cmp_ok count('one', @who), '>=', 25, 'one (fast) served most of 30 requests';
    cmp_ok count('two', @who), '>=', 1, 'two (slow) was measured too';

    my $one = idle_target($PORT, 'one', 'quick');
    my $two = idle_target($PORT, 'two', 'quick');
    ok $one && $two, 'both targets are in the status';
    cmp_ok $one->{latency_samples}, '>=', 1, 'one has latency samples';
    cmp_ok $two->{latency_samples}, '>=', 1, 'two has latency samples';
    cmp_ok $one->{latency_ms}, '<', $two->{latency_ms},
        'the status shows one faster than two';

    # now one is slow and two fast
    write_file('speed_one', '150');
    write_file('speed_two', '0');

    @who = served('quick', 30);
    diag "phase 2: @who" if count('two', @who) < 25;
    cmp_ok count('two', @who), '>=', 25, 'after the swap two served most of 30';
    is $who[-1], 'two', 'and the last one';
};


subtest 'ordered: a target whose breaker is open is skipped' => sub {
    for my $i (1, 2) {
        my $res = chat($PORT, 'ordered');
        is $res->{status}, 200, "request $i: 200";
        is $res->header('x-llm-provider'), 'b', "request $i: b served";
        is $res->header('x-llm-attempts'), 2, "request $i: after broken failed";
    }

    my $t = idle_target($PORT, 'broken', 'ordered');
    is $t->{state}, 'open', 'two failures of two opened the breaker';
    is $t->{requests}, 2, 'broken had 2 requests';

    my $res = chat($PORT, 'ordered');
    is $res->header('x-llm-provider'), 'b', 'b serves';
    is $res->header('x-llm-attempts'), 1, 'at once: broken is skipped';
    is idle_target($PORT, 'broken', 'ordered')->{requests}, 2,
        'broken got no request';
};

$srv->stop;
$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
