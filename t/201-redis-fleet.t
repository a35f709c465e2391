# Two gateways sharing one Redis (llm_redis): a budget holds for the
# fleet. Each writes its own spend into a hash field of its own and learns
# the other's at the next sync; under concurrent load the fleet overshoots
# a budget by at most the drift bound of docs/redis.md.
#
# A script: two gateways and a redis-server of the test's own, under
# concurrent load.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use JSON::PP qw(decode_json);
use POSIX ();
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_FLEET_PORT} // 16380;
my @PORTS = (4990, 4991);           # gateways a and b
my @MOCKS = (4992, 4993);           # their mock providers
my $SYNC = 0.2;                     # seconds

my $redis = LLM::Redis->start(port => $REDIS_PORT);

sub gateway {
    my ($i, $node) = @_;

    return start_nginx(
        name        => "redis-fleet-$node",
        port        => $PORTS[$i],
        master      => 1,
        workers     => 2,
        http_config => LLM::Redis::mock_config($MOCKS[$i]) . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT sync=200ms node=$node prefix=fleet:;
    llm_provider mock { url http://127.0.0.1:$MOCKS[$i]/v1; }
    llm_route m { target mock; }
    llm_key alice { key sk-alice-fleet-0001; budget 1000tokens/day; }
    llm_key bob { key sk-bob-fleet-0002; budget 3000tokens/day; }
    log_format spend '\$llm_key \$status \$llm_prompt_tokens '
                     '\$llm_completion_tokens';
CONF
        config => <<'CONF',
    location /v1/ {
        access_log logs/spend.log spend;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    );
}

my @gw = (gateway(0, 'a'), gateway(1, 'b'));
my ($A, $B) = @gw;

# every request reserves 6 + 94 = 100 tokens and uses 20 + 80 = 100
sub ask {
    my ($srv, $key, %o) = @_;
    my $mock = '"prompt_tokens":20,"completion_tokens":80'
               . ($o{delay} ? ',"delay":' . $o{delay} : '');

    return http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $key" },
        body => '{"model":"m","max_tokens":94,"messages":[{"role":"user",'
              . '"content":"x"}],"mock":{' . $mock . '}}');
}

sub code_of {
    my ($res) = @_;
    return eval { decode_json($res->{body})->{error}{code} } // '';
}

# the hash of a meter, by node: { a => ..., b => ... }
sub fleet {
    my ($key) = @_;
    my $h = $redis->hgetall($key) // {};
    my %by;

    for my $field (keys %$h) {
        my ($node) = $field =~ /^(\w+):\d+\.[0-9a-f]{4}$/ or next;
        $by{$node} += $h->{$field};
    }

    return \%by;
}

my $day = LLM::Redis::day();
my $alice = "fleet:key:alice:tokens:day:$day";

# 1. The budget holds across the two gateways, step by step

is(ask($B, 'sk-alice-fleet-0001')->{status}, 200, 'b: alice spends 100');
is(ask($A, 'sk-alice-fleet-0001')->{status}, 200, "a: alice spends 100")
    for 1 .. 8;

ok(wait_until(sub {
       my $f = fleet($alice);
       ($f->{a} // 0) == 800 && ($f->{b} // 0) == 100;
   }, timeout => 10, desc => 'a=800 b=100 in Redis'),
   'Redis has each gateway\'s spend in a field of its own');

like(join(' ', keys %{ $redis->hgetall($alice) }),
     qr/^(?:[ab]:\d+\.[0-9a-f]{4}(?: |$)){2}$/,
     'fields are <node>:<start time>.<random>');

ok($redis->cmd('TTL', $alice) > 86400, 'the hash expires after two days');

ok($B->wait_for_log(qr/llm: redis fleet \Q$alice\E: 800,/),
   'b learned that a spent 800');

is(ask($B, 'sk-alice-fleet-0001')->{status}, 200,
   'b: 100 more fit the 1000 of the fleet');

my $res = ask($B, 'sk-alice-fleet-0001');
is($res->{status}, 429, 'b: the fleet\'s budget is spent');
is(code_of($res), 'insufficient_quota', 'b: insufficient_quota');

ok($A->wait_for_log(qr/llm: redis fleet \Q$alice\E: 200,/),
   'a learned that b spent 200');

$res = ask($A, 'sk-alice-fleet-0001');
is($res->{status}, 429, 'a refuses too');

ok(wait_until(sub { ($redis->hsum($alice) // 0) == 1000 }, timeout => 10),
   'the fleet spent exactly its budget of 1000');

# 2. Under concurrent load on both gateways, until each refuses: the
# overshoot stays within the drift bound, measured from the rates seen

sub hammer {
    my ($srv) = @_;

    pipe(my $r, my $w) or die "pipe: $!";

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        close $r;
        my ($served, $max, $t0) = (0, 0, time);

        for (1 .. 200) {
            my $t = time;
            my $res = ask($srv, 'sk-bob-fleet-0002', delay => 20);
            my $lat = time - $t;
            $max = $lat if $lat > $max;
            last unless $res->{status} == 200;
            $served++;
        }

        print {$w} join(' ', $served, time - $t0, $max), "\n";
        close $w;
        POSIX::_exit(0);
    }

    close $w;
    return [$pid, $r];
}

my @kids = map { hammer($_) } @gw;
my @seen;

for my $k (@kids) {
    my $fh = $k->[1];
    my $line = <$fh> // '0 1 0';
    waitpid($k->[0], 0);
    push @seen, [split ' ', $line];
}

my $served = $seen[0][0] + $seen[1][0];
my $total = 100 * $served;

# tokens per second each gateway spent, and the longest request
my @rate = map { 100 * $_->[0] / $_->[1] } @seen;
my $rate = $rate[0] > $rate[1] ? $rate[0] : $rate[1];
my $dur = $seen[0][2] > $seen[1][2] ? $seen[0][2] : $seen[1][2];

# (N - 1) x rate x (sync interval with its jitter + a sync's round trip
# + a request's duration), plus one request: spend is admitted whole
my $bound = 1 * $rate * ($SYNC * 1.125 + 0.05 + $dur) + 100;

diag(sprintf 'a served %d, b %d: %d tokens of 3000; %.0f tokens/s at '
     . 'most, drift bound %.0f', $seen[0][0], $seen[1][0], $total, $rate,
     $bound);

ok($seen[0][0] > 0 && $seen[1][0] > 0, 'both gateways served');
ok($total >= 2900, 'the fleet spent its budget');
ok($total <= 3000 + $bound, 'overshoot within the drift bound');

my $bob = "fleet:key:bob:tokens:day:$day";

ok(wait_until(sub { ($redis->hsum($bob) // 0) == $total }, timeout => 10),
   'Redis converges to what the gateways spent');

for my $srv (@gw) {
    $res = ask($srv, 'sk-bob-fleet-0002');
    is($res->{status}, 429, $srv->name . ': refuses once the fleet is spent');
}

# what the provider reported, by the gateways' logs, is what Redis has

$_->stop for @gw;

my %reported;

for my $i (0, 1) {
    for (split /\n/, Test::Nginx::LLM::read_file(
                         $gw[$i]->servroot . '/logs/spend.log'))
    {
        my ($key, $status, $p, $c) = split / /;
        next unless $status == 200;
        $reported{$key}{ $i ? 'b' : 'a' } += $p + $c;
    }
}

is_deeply(fleet($alice), $reported{alice},
          'alice: Redis has what the provider reported, per gateway');
is_deeply(fleet($bob), $reported{bob},
          'bob: Redis has what the provider reported, per gateway');

$_->check_clean($_->name . ': no alerts') for @gw;

$redis->stop;

done_testing();
