# A worker keeps at most "key_cache" keys of those looked up in Redis
# (llm_redis keys=on). When every one of them is still being looked up
# (Redis is slow), a new unknown key is not queued without bound: it gets
# an OpenAI-shaped 503 with Retry-After at once, and the error log says
# why, naming the setting. The lookups in flight are answered when Redis
# is back.
#
# A script: Redis is paused (CLIENT PAUSE) while requests wait, then
# resumed.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request build_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_LOOKUPS_PORT} // 16394;
my $SLOW = LLM::Redis::slow();

my $redis = LLM::Redis->start(port => $REDIS_PORT);

my $srv = start_nginx(
    name        => 'redis-key-lookups',
    master      => 1,
    workers     => 1,           # what a worker caches is its own
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT keys=on key_cache=3 timeout=120s;
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
CONF
    config      => $LLM::Fixtures::GATEWAY_CONFIG,
);

sub request_text {
    my ($key) = @_;
    return build_request(
        method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $key", Host => 'localhost',
                     Connection => 'close' },
        body => '{"model":"m","messages":[{"role":"user","content":"x"}]}');
}

# Redis answers: an unknown key is a 401 (and the gateway is connected)
ok(wait_until(sub {
       http_request(port => $srv->port, method => 'POST',
                    uri => '/v1/chat/completions',
                    headers => { Authorization => 'Bearer sk-first-unknown-01' },
                    body => '{"model":"m","messages":[]}')->{status} == 401
   }, timeout => 10 * $SLOW), 'with Redis answering, an unknown key gets 401');

# Redis stops answering for a while (less than llm_redis timeout, after
# which the gateway would give up on it): three lookups wait
$redis->cmd('CLIENT', 'PAUSE', 6000 * $SLOW, 'ALL');

my $from = $srv->error_log_size;
my @waiting;
for my $i (1 .. 3) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->port)
        or die "connect: $!";
    print $s request_text("sk-waiting-key-000$i");
    push @waiting, $s;
}

ok(wait_until(sub {
       my $log = substr($srv->error_log, $from);
       my $n = () = $log =~ /llm: redis key lookup, waiting/g;
       $n >= 3;
   }, timeout => 10 * $SLOW), 'three key lookups wait for Redis');

# two more unknown keys, while the three still wait: each is refused at
# once, the log says why once (at most every 10 seconds)
for my $key ('sk-one-too-many', 'sk-two-too-many') {
    my $res = http_request(port => $srv->port, method => 'POST',
                           uri => '/v1/chat/completions',
                           headers => { Authorization => "Bearer $key" },
                           body => '{"model":"m","messages":[{"role":"user",'
                                 . '"content":"x"}]}');
    is($res->{status}, 503, "$key: another unknown key gets 503 at once");
    is(($res->{headers}{'retry-after'} || [])->[0], 1,
       "$key: with Retry-After: 1");
    my $err = eval { decode_json($res->{body})->{error} } || {};
    is($err->{code}, 'key_store_unavailable',
       "$key: in an OpenAI-shaped error")
        or diag $res->{body};
    ok($err->{message} && $err->{type}, "$key: with a message and a type");
}
my @why = substr($srv->error_log, $from)
          =~ /^.*\[error\].*keys being looked up in redis at once.*$/mg;
is(scalar @why, 1, 'the error log says why once') or diag join "\n", @why;
like($why[0] // '', qr/3 keys being looked up in redis at once.*key_cache=3/,
     'naming the setting');

# Redis is back: the waiting requests are answered (unknown keys: 401)
for my $s (@waiting) {
    local $/;
    my $answer = <$s> // '';
    like($answer, qr{^HTTP/1\.1 401 }, 'a waiting lookup is answered when '
                                       . 'Redis is back');
}

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
