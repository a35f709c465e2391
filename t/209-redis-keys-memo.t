# Keys created at run time (llm_redis keys=on) are not in a worker's memo
# of authenticated keys (t/301): they can be deleted in Redis, and their
# entities are freed when no request holds them. A key deleted in Redis
# is refused once the worker asks Redis again (here at once: key_cache=1,
# and another unknown key takes its place), however often it was used
# before, while a configured key stays in the memo.
#
# A script: keys are written into and deleted from a redis-server of the
# test's own while the gateway runs.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(sha256_hex);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_MEMO_PORT} // 16397;

my $redis = LLM::Redis->start(port => $REDIS_PORT);

my $srv = start_nginx(
    name        => 'redis-keys-memo',
    master      => 1,
    workers     => 1,           # what a worker caches is its own
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT keys=on key_cache=1 prefix=km:;
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_key alice { key sk-alice-0123456789; }
CONF
    config => <<'CONF',
    location /v1/ {
        add_header X-Key-Name "$llm_key" always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

sub ask {
    my ($key) = @_;
    my $res = http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $key" },
        body => '{"model":"m","messages":[{"role":"user","content":"x"}]}');
    return ($res->{status} // 0) . ' ' . ($res->header('X-Key-Name') // '-');
}

sub memo_hits {
    my ($from) = @_;
    my $n = () = $srv->error_log(from => $from)
                 =~ /llm: key (?:from the memo|remembered)/g;
    return $n;
}

$redis->cmd('HSET', 'km:apikey:' . sha256_hex('sk-carol-runtime-0001'),
            name => 'carol');

my $from = $srv->error_log_size;

is(ask('sk-carol-runtime-0001'), '200 carol', 'a key made in Redis');
is(ask('sk-carol-runtime-0001'), '200 carol', 'again (from the Redis cache)');
is(ask('sk-carol-runtime-0001'), '200 carol', 'and again');
is(memo_hits($from), 0, 'never in the memo of configured keys');

is(ask('sk-alice-0123456789'), '200 alice', 'a configured key');
is(ask('sk-alice-0123456789'), '200 alice', 'again');
is(memo_hits($from), 2, 'remembered, then from the memo');

# revoked: deleted in Redis; an unknown key takes carol's place in the
# worker's cache of one
$redis->cmd('DEL', 'km:apikey:' . sha256_hex('sk-carol-runtime-0001'));

is(ask('sk-nobody-runtime-0001'), '401 -', 'an unknown key: 401');
is(ask('sk-carol-runtime-0001'), '401 -',
   'the revoked key is refused when Redis is asked again');
is(ask('sk-carol-runtime-0001'), '401 -', 'and stays refused');
is(ask('sk-alice-0123456789'), '200 alice', 'the configured key still works');

$srv->check_clean('no alerts');

done_testing();
