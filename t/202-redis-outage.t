# Redis goes away and comes back (fail=open, the default): no client
# request fails, a warning is logged at a bounded rate, and once Redis is
# back it gets every gateway's spend again, even though it restarted
# empty: values are absolute, rewritten by the next sync. A FLUSHALL under
# running gateways is repaired the same way. nginx -s quit is prompt while
# Redis is down.
#
# A script: redis-server is stopped, started again empty, and flushed while
# gateways run.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_OUTAGE_PORT} // 16381;
my @PORTS = (4990, 4991);
my @MOCKS = (4992, 4993);

my $redis = LLM::Redis->start(port => $REDIS_PORT);

sub gateway {
    my ($i, $node) = @_;

    return start_nginx(
        name        => "redis-outage-$node",
        port        => $PORTS[$i],
        master      => 1,
        workers     => 2,
        http_config => LLM::Redis::mock_config($MOCKS[$i]) . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT sync=200ms timeout=500ms node=$node
              prefix=outage:;
    llm_provider mock { url http://127.0.0.1:$MOCKS[$i]/v1; }
    llm_route m { target mock; }
    llm_team eng { budget 1000000tokens/day; tpm 1000000; }
    llm_key carol {
        key sk-carol-outage-0001; team eng; rpm 1000;
        budget 500000tokens/day;
    }
    log_format spend '\$llm_key \$status \$llm_prompt_tokens '
                     '\$llm_completion_tokens';
CONF
        config => <<'CONF',
    location /metrics {
        llm_status prometheus;
    }

    location /v1/ {
        access_log logs/spend.log spend;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    );
}

my @gw = (gateway(0, 'a'), gateway(1, 'b'));

my $n = 0;

# completions of 10 + 1..9 tokens, so that every step adds a new total
sub ask {
    my ($srv) = @_;
    my $c = 1 + $n++ % 9;

    return http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => 'Bearer sk-carol-outage-0001' },
        body => '{"model":"m","max_tokens":20,"messages":[{"role":"user",'
              . '"content":"x"}],"mock":{"prompt_tokens":10,'
              . '"completion_tokens":' . $c . '}}');
}

# what the provider reported to each gateway, from its log
sub reported {
    my %by;

    for my $i (0, 1) {
        for (split /\n/, Test::Nginx::LLM::read_file(
                             $gw[$i]->servroot . '/logs/spend.log'))
        {
            my (undef, $status, $p, $c) = split / /;
            $by{ $i ? 'b' : 'a' } += $p + $c if $status == 200;
        }
    }

    return \%by;
}

sub fleet {
    my ($key) = @_;
    my $h = $redis->hgetall($key) // return undef;
    my %by;

    for my $field (keys %$h) {
        my ($node) = $field =~ /^(\w+):/ or next;
        $by{$node} += $h->{$field};
    }

    return \%by;
}

my $day = LLM::Redis::day();
my $key_day = "outage:key:carol:tokens:day:$day";
my $team_day = "outage:team:eng:tokens:day:$day";

sub converged {
    my ($what) = @_;
    my $want;

    # the access log is written in the log phase, which may come after
    # the client has its response: read it again each time
    my $ok = wait_until(sub {
        $want = reported();
        for my $k ($key_day, $team_day) {
            my $f = fleet($k) // return 0;
            return 0 unless ($f->{a} // -1) == $want->{a}
                            && ($f->{b} // -1) == $want->{b};
        }
        1;
    }, timeout => 15, desc => $what);

    diag(explain({ reported => $want, key => fleet($key_day),
                   team => fleet($team_day) }))
        unless $ok;

    return $ok;
}

my @failed;

sub traffic {
    my ($rounds) = @_;

    for (1 .. $rounds) {
        for my $srv (@gw) {
            my $res = ask($srv);
            push @failed, "$res->{status} " . ($res->{error} // '')
                unless ($res->{status} // 0) == 200;
        }
    }
}

traffic(5);
ok(converged('first spend'), 'Redis has both gateways\' spend');

# llm_redis_up, from whichever worker answers
sub redis_up {
    my ($srv, $want) = @_;
    return wait_until(sub {
        my $m = http_request(port => $srv->port, uri => '/metrics')->{body};
        $m =~ /^llm_redis_up $want$/m
            && $m =~ /^llm_redis_last_sync_age_seconds \d+\.\d{3}$/m;
    }, desc => "llm_redis_up $want");
}

ok(redis_up($gw[0], 1), 'the metrics say Redis is up');

# Redis stops: requests go on

my @pos = map { $_->error_log_size } @gw;
my $t0 = time;

$redis->stop;

traffic(5);

for my $i (0, 1) {
    ok($gw[$i]->wait_for_log(qr/llm: redis \S+ disconnected/,
                             from => $pos[$i]),
       $gw[$i]->name . ': notices');

    # (a worker that warned less than 10 s before, say of a timeout while
    # it started, does not warn again yet)
    ok($gw[$i]->wait_for_log(
           qr/\[warn\].*llm: redis 127\.0\.0\.1:$REDIS_PORT unavailable: /),
       $gw[$i]->name . ': warns that Redis is unavailable');
}

# let the workers retry a few times (their backoff grows from 100 ms)
ok(wait_until(sub {
       my @tries = $gw[0]->error_log(from => $pos[0])
                   =~ /llm: redis connecting to/g;
       @tries >= 4;
   }), 'a keeps trying');

traffic(5);

ok(redis_up($_, 0), $_->name . ': the metrics say Redis is down') for @gw;

# Redis restarts empty

$redis->start_again;
my $outage = time - $t0;

traffic(5);

ok(redis_up($_, 1), $_->name . ': the metrics say Redis is up again') for @gw;

is(scalar @failed, 0, 'no request failed while Redis was away')
    or diag(join "\n", @failed);

ok(converged('after the restart'),
   'Redis converges to what each gateway spent, rewritten after its loss');

for my $i (0, 1) {
    my @warns = $gw[$i]->error_log(from => $pos[$i])
                =~ /llm: redis \S+ unavailable/g;

    my @tries = $gw[$i]->error_log(from => $pos[$i])
                =~ /llm: redis connecting to/g;

    # at most one a worker every 10 s, however often it tries
    ok(@warns <= 2 * (1 + int($outage / 10)),
       $gw[$i]->name . ': ' . @warns . ' warnings in '
       . sprintf('%.1f', $outage) . ' s, from 2 workers, for '
       . @tries . ' attempts to connect');

    ok($gw[$i]->wait_for_log(qr/\[notice\].*llm: redis \S+ is available again/,
                             from => $pos[$i]),
       $gw[$i]->name . ': says when Redis is back');
}

# the data goes while the gateways stay connected

$redis->cmd('FLUSHALL');

ok(converged('after FLUSHALL'),
   'a FLUSHALL is repaired by the next syncs too');

traffic(3);

is(scalar @failed, 0, 'no request failed');
ok(converged('at the end'), 'and the last spend is there too');

# nginx -s quit while Redis is down: prompt

$redis->stop;

my $t = time;
ok($gw[0]->stop, 'a stops cleanly');
ok(time - $t < 3 * LLM::Redis::slow(), sprintf 'a quit in %.2f s with Redis down', time - $t);

$gw[1]->stop;
$_->check_clean($_->name . ': no alerts') for @gw;

done_testing();
