# Keys created at run time (llm_redis keys=on): a key the configuration
# does not know is looked up in Redis by its SHA-256 and works without a
# reload, with the team, models and limits Redis gives it. The plain key
# never reaches Redis, nor this module's log lines.
#
# A script: keys are written into a redis-server of the test's own while the
# gateway runs.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request build_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_KEYS_PORT} // 16383;

my $redis = LLM::Redis->start(port => $REDIS_PORT);

my $srv = start_nginx(
    name        => 'redis-keys',
    port        => 4990,
    master      => 1,
    workers     => 1,           # what a worker caches is its own
    http_config => LLM::Redis::mock_config(4992) . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT sync=200ms keys=on prefix=k:;
    llm_provider mock { url http://127.0.0.1:4992/v1; }
    llm_route m { target mock input=1.00 output=1.00; }
    llm_route other { target mock; }
    llm_team eng { models m; }
    log_format who '\$llm_key \$llm_team \$status';
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/who.log who;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my @plain;

# a key in Redis: HSET k:apikey:<sha256 hex> field value ...
sub add_key {
    my ($key, @fields) = @_;
    push @plain, $key;
    $redis->cmd('HSET', 'k:apikey:' . sha256_hex($key), @fields);
}

sub ask {
    my ($key, %o) = @_;

    return http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $key" },
        body => '{"model":"' . ($o{model} // 'm') . '","max_tokens":94,'
              . '"messages":[{"role":"user","content":"x"}],'
              . '"mock":{"prompt_tokens":20,"completion_tokens":80}}');
}

sub code_of {
    my ($res) = @_;
    return eval { decode_json($res->{body})->{error}{code} } // '';
}

# unknown keys

my $res = ask('sk-nobody-runtime-0001');
push @plain, 'sk-nobody-runtime-0001';
is($res->{status}, 401, 'a key Redis does not have: 401');
is(code_of($res), 'invalid_api_key', 'invalid_api_key');

$res = http_request(port => $srv->port, method => 'POST',
                    uri => '/v1/chat/completions',
                    body => '{"model":"m","messages":[]}');
is($res->{status}, 401, 'keys=on: the gateway requires a key');

# a key added at run time

add_key('sk-carol-runtime-0001', name => 'carol', team => 'eng', rpm => 2);

$res = ask('sk-carol-runtime-0001');
is($res->{status}, 200, 'a key added to Redis works without a reload');
is($res->header('x-ratelimit-limit-requests'), 2, 'with its rpm from Redis');

is(ask('sk-carol-runtime-0001')->{status}, 200, 'second request');

$res = ask('sk-carol-runtime-0001');
is($res->{status}, 429, 'the third in a minute is refused: rpm 2');
is(code_of($res), 'rate_limit_exceeded', 'rate_limit_exceeded');

$res = ask('sk-carol-runtime-0001', model => 'other');
is($res->{status}, 403, 'the team\'s models apply');

ok(wait_until(sub {
       Test::Nginx::LLM::read_file($srv->servroot . '/logs/who.log')
       =~ /^carol eng 200$/m
   }), '$llm_key and $llm_team name it');

# the model list, with a key not seen before

add_key('sk-judy-runtime-0001', name => 'judy');

$res = http_request(port => $srv->port, uri => '/v1/models',
                    headers => { 'x-api-key' => 'sk-judy-runtime-0001' });
is($res->{status}, 200, 'GET /v1/models after a lookup, key in x-api-key');
like($res->{body}, qr/"id":"m"/, 'the models');

# budgets: "budget", "budget2", ... each one or a list

add_key('sk-dave-runtime-0001', name => 'dave',
        budget => '150tokens/day', budget2 => '1usd/day,10usd/month');

is(ask('sk-dave-runtime-0001')->{status}, 200, 'a key with budgets');

$res = ask('sk-dave-runtime-0001');
is($res->{status}, 429, 'its token budget from Redis applies');
is(code_of($res), 'insufficient_quota', 'insufficient_quota');

my $day = LLM::Redis::day();

ok(wait_until(sub {
       ($redis->hsum("k:key:dave:tokens:day:$day") // 0) == 100
       && ($redis->hsum("k:key:dave:usd:day:$day") // 0) == 100000
   }), 'its spend goes to Redis like a configured key\'s (nano-USD)');

# models of its own, as a comma-separated list

add_key('sk-erin-runtime-0001', name => 'erin', models => 'x, other');

is(ask('sk-erin-runtime-0001', model => 'other')->{status}, 200,
   'a model of its list');
is(ask('sk-erin-runtime-0001')->{status}, 403, 'not another');

# a key whose team is not configured is refused, and the operator told

my $pos = $srv->error_log_size;

add_key('sk-frank-runtime-0001', name => 'frank', team => 'nope');

$res = ask('sk-frank-runtime-0001');
is($res->{status}, 401, 'a key of an unknown team is refused');

my $hex = sha256_hex('sk-frank-runtime-0001');
ok($srv->wait_for_log(qr/\[error\].*llm: redis key "k:apikey:$hex" is refused: its team "nope" is not a configured llm_team/,
                      from => $pos),
   'with an error naming the Redis key and the team');

add_key('sk-grace-runtime-0001', team => 'eng');
is(ask('sk-grace-runtime-0001')->{status}, 401, 'a key without a name too');

# concurrent requests for a new key: all wait for the answer

add_key('sk-heidi-runtime-0001', name => 'heidi');

my $req = build_request(
    method => 'POST', uri => '/v1/chat/completions',
    headers => { Authorization => 'Bearer sk-heidi-runtime-0001' },
    body => '{"model":"m","max_tokens":10,"messages":[{"role":"user",'
          . '"content":"x"}]}');

my @socks = map {
    IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $srv->port)
        or die "connect: $!"
} 1 .. 10;

print {$_} $req for @socks;

my @status = map { local $/; my $r = <$_>; ($r // '') =~ m{^HTTP/1\.1 (\d+)} }
             @socks;

is_deeply(\@status, [(200) x 10], 'ten requests at once for a new key');

# Redis goes away: a key seen before still works, a new one cannot be
# verified

$redis->stop;

is(ask('sk-erin-runtime-0001', model => 'other')->{status}, 200,
   'a cached key works while Redis is down');

$res = ask('sk-ivan-runtime-0001');
is($res->{status}, 503, 'a key not seen before cannot be verified: 503');
is(code_of($res), 'key_store_unavailable', 'key_store_unavailable');

# Redis is back, empty: a key added now works

$redis->start_again;

add_key('sk-ivan-runtime-0001', name => 'ivan');

ok(wait_until(sub { ask('sk-ivan-runtime-0001')->{status} == 200 }),
   'lookups resume once Redis is back');

# the plain keys: not in Redis, not in our log lines

ok(wait_until(sub { $redis->keys_matching('k:key:ivan:*') }),
   'spend was written again');

my $dump = '';

for my $k ($redis->keys_matching('*')) {
    $dump .= "$k " . join(' ', @{ $redis->cmd('HGETALL', $k) }) . "\n";
}

$srv->stop;

my $log = $srv->error_log;

for my $key (@plain) {
    unlike($dump, qr/\Q$key\E/, "$key is not in Redis");

    # nginx's core writes request headers at debug level (see
    # docs/directives.md): every other line must be free of it
    my @lines = grep { /\Q$key\E/ && !/ http header: "(?:Authorization|x-api-key): / }
                split /\n/, $log;

    is(scalar @lines, 0, "$key is in no log line but nginx's header dump")
        or diag(join "\n", @lines[0 .. ($#lines < 4 ? $#lines : 4)]);
}

ok(grep({ /llm: redis key lookup/ } split /\n/, $log),
   'the log has the lookups (debug level)');

$srv->check_clean('no alerts');

done_testing();
