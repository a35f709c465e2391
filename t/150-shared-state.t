# The llm_zone is shared by all workers and survives a reload: with a
# master and two workers, counters in the status JSON add up the requests
# whichever worker served them (and whichever answers the status), the
# weighted sequence is one for all workers, and after "nginx -s reload"
# the new workers see the counters, the weighted position and a breaker
# opened before the reload.
#
# The gateway listens with reuseport on its own port, so that the kernel
# spreads the connections over both workers; $pid in the access log tells
# which worker served.
#
# A script: a master with two workers, and "nginx -s reload" between
# requests.

use strict;
use warnings;

use File::Spec;
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat status_json);
use Test::Nginx::LLM qw(start_nginx wait_until read_file);

my $PORT = 3990;               # the harness's server (unused)
my $GW = 3994;                 # the gateway, reuseport
$ENV{TEST_NGINX_MOCK_PORT} = 3991;
$ENV{TEST_NGINX_GATEWAY_PORT} = $GW;

my $ROUTES = <<'CONF';
    log_format shared '$pid $status provider=$llm_provider route=$llm_route';

    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider a { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider b { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
        health failure_ratio=100% min_requests=1 cooldown=10m;
    }

    llm_route shared { target mock m-shared; }

    llm_route spread {
        strategy weighted;
        target a weight=3;
        target b weight=1;
    }

    llm_route guarded {
        target broken;
        target mock m-guarded;
    }
CONF

my $SERVER = <<'CONF';
    server {
        listen 127.0.0.1:$TEST_NGINX_GATEWAY_PORT reuseport;

        location /v1/ {
            llm_gateway;
            include $TEST_NGINX_LLM_PARAMS;
            access_log logs/access.log shared;
        }

        location = /llm/status {
            llm_status;
            access_log logs/access.log shared;
        }
    }
CONF

my $srv = start_nginx(
    name        => 'routing-150',
    servroot    => File::Spec->rel2abs('t/servroot-routing-150'),
    port        => $PORT,
    master      => 1,
    workers     => 2,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $ROUTES . $SERVER,
);

my $access = $srv->servroot . '/logs/access.log';

# worker pid => requests it served for that route
sub served_by_pid {
    my ($route) = @_;
    my %pids;
    for (split /\n/, read_file($access)) {
        $pids{$1}++ if /^(\d+) \d+ provider=\S* route=\Q$route\E$/;
    }
    return \%pids;
}

sub shared_target {
    my ($provider, $model) = @_;
    my $st = status_json($GW);
    my ($t) = grep { $_->{provider} eq $provider && $_->{model} eq $model }
              @{ $st->{targets} };
    return $t;
}

# waits until the target shows $want requests, successes and nothing in
# flight (every worker's log phase has run)
sub settled {
    my ($provider, $model, $want) = @_;
    my $t;
    wait_until(sub {
        $t = shared_target($provider, $model);
        $t && $t->{inflight} == 0 && $t->{successes} == $want;
    }, timeout => 10, interval => 0.02, desc => "$provider/$model: $want successes");
    return $t;
}

my $sent = 0;

subtest 'counters add up the requests of both workers' => sub {
    # at least 10 requests, and until both workers served some
    while ($sent < 10 || keys %{ served_by_pid('shared') } < 2) {
        last if $sent >= 200;
        my $res = chat($GW, 'shared');
        $res->{status} == 200 or diag "request $sent: " . ($res->{status} // 'none');
        $sent++;
        wait_until(sub { (() = read_file($access) =~ /route=shared$/mg) >= $sent },
                   timeout => 5);
    }

    my $pids = served_by_pid('shared');
    is scalar(keys %$pids), 2, "both workers served ($sent requests)"
        or diag explain $pids;

    my $t = settled('mock', 'm-shared', $sent);
    ok $t, 'the status shows the target';
    is $t->{requests}, $sent, "requests $sent";
    is $t->{successes}, $sent, "successes $sent";
    is $t->{failures}, 0, 'failures 0';
    is $t->{last_status}, 200, 'last_status 200';
    is $t->{latency_samples}, $sent, "latency_samples $sent";

    # the status, answered by either worker, says the same
    my %answered;
    for (1 .. 10) {
        my $u = shared_target('mock', 'm-shared');
        $answered{ "requests=$u->{requests} successes=$u->{successes}" }++;
    }
    is_deeply [keys %answered], ["requests=$sent successes=$sent"],
        'every status answer has the same counters';
};


subtest 'weighted: one sequence for both workers' => sub {
    my @who = map { chat($GW, 'spread')->header('x-llm-provider') // 'none' } 1 .. 8;
    is "@who", 'a a b a a a b a', 'a a b a a a b a';

    # stop mid-cycle (a a), to go on after the reload (b a)
    push @who, map { chat($GW, 'spread')->header('x-llm-provider') // 'none' } 1 .. 2;
    is "@who[8, 9]", 'a a', 'then a a';
};


subtest 'a breaker opened by one worker holds for all' => sub {
    my $res = chat($GW, 'guarded');
    is $res->header('x-llm-attempts'), 2, 'broken failed, the request failed over';

    my $t = shared_target('broken', 'guarded');
    is $t->{state}, 'open', 'broken: open';

    for my $i (1 .. 6) {
        $res = chat($GW, 'guarded');
        is $res->header('x-llm-attempts'), 1, "request $i: broken skipped";
    }
    is shared_target('broken', 'guarded')->{requests}, 1, 'broken got one request';
};


my %old_workers = map { $_ => 1 } $srv->worker_pids;

# a real change of configuration: one more route
ok $srv->reload(http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $ROUTES
                               . "    llm_route added { target mock m-added; }\n"
                               . $SERVER),
    'reloaded';

my @new_workers = $srv->worker_pids;
is scalar(grep { $old_workers{$_} } @new_workers), 0, 'all workers are new';


subtest 'after the reload: counters, weighted position and breaker are kept' => sub {
    my $st = status_json($GW);
    ok scalar(grep { $_->{name} eq 'added' } @{ $st->{routes} }),
        'the new configuration answers';

    my $t = shared_target('mock', 'm-shared');
    is $t->{requests}, $sent, "requests still $sent";
    is $t->{successes}, $sent, "successes still $sent";

    my @who = map { chat($GW, 'spread')->header('x-llm-provider') // 'none' } 1 .. 2;
    is "@who", 'b a', 'the weighted sequence goes on where it was (b a)';

    $t = shared_target('broken', 'guarded');
    is $t->{state}, 'open', 'broken: still open';
    cmp_ok $t->{available_in_ms}, '>', 0, 'broken: available_in_ms > 0';

    my $res = chat($GW, 'guarded');
    is $res->header('x-llm-provider'), 'mock', 'guarded: mock serves';
    is $res->header('x-llm-attempts'), 1, 'guarded: broken is skipped';

    is chat($GW, 'shared')->{status}, 200, 'one more request';
    $t = settled('mock', 'm-shared', $sent + 1);
    is $t->{requests}, $sent + 1, 'counted on top of the old ones';

    my %now = map { $_ => 1 } @new_workers;
    my $pids = served_by_pid('shared');
    ok scalar(grep { $now{$_} } keys %$pids), 'served by a new worker';
};

$srv->stop;
$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
