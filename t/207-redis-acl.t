# llm_redis with an ACL user (Redis 6+): "user=NAME password=SECRET" sends
# AUTH NAME SECRET, and the fleet's state is written as that user; the
# password is in no log. A script: a redis-server of its own, its users set
# up at run time.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_ACL_PORT} // 16391;
my $redis = LLM::Redis->start(port => $REDIS_PORT);

# the gateway's user may do everything; the default user needs another
# password, so that AUTH without the user name would fail
$redis->cmd(qw(ACL SETUSER gateway on >gw-Secret-41 ~* &* +@all));
$redis->cmd(qw(ACL SETUSER default resetpass >not-the-gateways));
$redis->{auth} = ['gateway', 'gw-Secret-41'];
is($redis->cmd('PING'), 'PONG', 'the test speaks to Redis as that user');

my $srv = start_nginx(
    name        => 'redis-acl',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT user=gateway password=gw-Secret-41
              sync=200ms prefix=acl:;
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }
    llm_key alice { key sk-alice-acl-0001; budget 1000000tokens/day; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $res = http_request(port => $srv->port, method => 'POST',
                       uri => '/v1/chat/completions',
                       headers => { Authorization => 'Bearer sk-alice-acl-0001' },
                       body => '{"model":"m","messages":[{"role":"user","content":"x"}]}');
is($res->{status}, 200, 'a request of a key with a budget');

ok(wait_until(sub { my $k = $redis->cmd('KEYS', 'acl:*');
                    $k && grep { /^acl:key:alice:tokens:day:/ } @$k },
              timeout => 10, interval => 0.05, desc => 'the spend in Redis'),
   'the gateway wrote the key\'s spend as its ACL user');

unlike($srv->error_log, qr/gw-Secret-41/, 'the password is in no log');
unlike($srv->error_log, qr/WRONGPASS|NOAUTH/, 'Redis refused nothing');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
