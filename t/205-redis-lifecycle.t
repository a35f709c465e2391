# The Redis connection across nginx's life: nginx -s quit writes what was
# not yet synced and completes promptly; a reload leaves one connection a
# worker (the old workers exit promptly, the zone's counters keep their
# field); a Redis that accepts connections but never answers is given up
# after the timeout, and does not hold nginx when it quits.
#
# A script: nginx is quit and reloaded, and Redis made silent, while
# connected.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until lock_resource);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_LIFE_PORT} // 16384;
my $MUTE_PORT = $ENV{TEST_NGINX_REDIS_MUTE_PORT} // 16385;

# time limits: a sanitizer makes fork and exit slow
my $SLOW = LLM::Redis::slow();

my $redis = LLM::Redis->start(port => $REDIS_PORT);

sub gateway {
    my (%o) = @_;

    return start_nginx(
        name        => $o{name},
        port        => 4990,
        master      => 1,
        workers     => 2,
        http_config => LLM::Redis::mock_config(4992) . <<CONF . ($o{more} // ''),
    llm_redis 127.0.0.1:$o{redis} $o{params} prefix=life: node=n;
    llm_provider mock { url http://127.0.0.1:4992/v1; }
    llm_route m { target mock; }
    llm_key alice { key sk-alice-life-0001; budget 100000tokens/day; }
CONF
        config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
    );
}

sub ask {
    my ($srv, $tokens) = @_;

    return http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => 'Bearer sk-alice-life-0001' },
        body => '{"model":"m","max_tokens":20,"messages":[{"role":"user",'
              . '"content":"x"}],"mock":{"prompt_tokens":' . $tokens
              . ',"completion_tokens":0}}');
}

# connections to Redis other than our own
sub clients {
    my $list = $redis->cmd('CLIENT', 'LIST') // '';
    return scalar grep { !/cmd=client/ } split /\n/, $list;
}

my $day = LLM::Redis::day();
my $meter = "life:key:alice:tokens:day:$day";

# 1. quit writes what the next sync would have written

my $srv = gateway(name => 'redis-life-quit', redis => $REDIS_PORT,
                  params => 'sync=1h');

ok(wait_until(sub { clients() == 2 }), 'one connection a worker');

is(ask($srv, 7)->{status}, 200, 'a request');
is($redis->hsum($meter), 0, 'not synced yet: the interval is an hour');

my $t = time;
ok($srv->stop, 'nginx quits');
my $took = time - $t;
ok($took < 2 * $SLOW, sprintf 'promptly, while connected (%.2f s)', $took);

is($redis->hsum($meter), 7, 'the last spend was written on the way out');
ok(wait_until(sub { clients() == 0 }), 'and the connections closed');

$srv->check_clean('quit: no alerts');
undef $srv;                     # its port's lock goes with it

# 2. reload: new workers connect, old ones leave, counters keep their field

$srv = gateway(name => 'redis-life-reload', redis => $REDIS_PORT,
               params => 'sync=100ms');

is(ask($srv, 5)->{status}, 200, 'a request');
ok(wait_until(sub { $redis->hsum($meter) == 12 }), 'synced');

my @fields = keys %{ $redis->hgetall($meter) };
is(scalar @fields, 2, 'a field for this nginx, one for the one before');

for my $round (1 .. 3) {
    $t = time;
    ok($srv->reload(wait_old => 1,
                    http_config => $srv->{http_config}
                                   . "    llm_route m$round { target mock; }\n"),
       "reload $round");
    $took = time - $t;
    ok($took < 5 * $SLOW, sprintf 'old workers gone in %.2f s', $took);
}

ok(wait_until(sub { clients() == 2 }), 'still one connection a worker');

is(ask($srv, 3)->{status}, 200, 'a request after the reloads');
ok(wait_until(sub { $redis->hsum($meter) == 15 }), 'synced');

is_deeply([sort keys %{ $redis->hgetall($meter) }], [sort @fields],
          'into the same field: the zone, and its counters, lived on');

$t = time;
$srv->stop;
ok(time - $t < 2 * $SLOW, 'quit');
$srv->check_clean('reload: no alerts');
undef $srv;

# 3. a Redis that never answers

my $lock = lock_resource(Test::Nginx::LLM::port_lock_file($MUTE_PORT),
                         what => "port $MUTE_PORT");
my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                 LocalPort => $MUTE_PORT, Listen => 64,
                                 ReuseAddr => 1)
    or die "listen: $!";

$srv = gateway(name => 'redis-life-mute', redis => $MUTE_PORT,
               params => 'sync=100ms timeout=300ms');

ok($srv->wait_for_log(qr/llm: redis \S+ unavailable: connection timed out/),
   'a Redis that does not answer times out');

is(ask($srv, 1)->{status}, 200, 'requests are served meanwhile');

$t = time;
ok($srv->stop, 'nginx quits');
$took = time - $t;
ok($took < 1.5 * $SLOW, sprintf 'promptly (%.2f s)', $took);

$srv->check_clean('mute redis: no alerts');
undef $srv;

close $mute;

# 4. Redis down from the start: quit is prompt

$redis->stop;

$srv = gateway(name => 'redis-life-down', redis => $REDIS_PORT,
               params => 'sync=100ms');

ok($srv->wait_for_log(qr/llm: redis \S+ unavailable: Connection refused/),
   'Redis is not there');
is(ask($srv, 1)->{status}, 200, 'requests are served');

$t = time;
ok($srv->stop, 'nginx quits');
ok(time - $t < 1.5 * $SLOW, sprintf 'promptly (%.2f s)', time - $t);

$srv->check_clean('redis down: no alerts');

done_testing();
