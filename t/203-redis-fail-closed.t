# llm_redis fail=closed: while Redis has been unreachable for more than
# two sync intervals, keys with limits that count across the fleet are
# refused with 503 accounting_unavailable; keys without such limits go on.
# Service resumes once Redis is back.
#
# A script: redis-server is stopped and started again while the gateway
# runs.

use strict;
use warnings;

use Test::More;
use JSON::PP qw(decode_json);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_CLOSED_PORT} // 16382;

my $redis = LLM::Redis->start(port => $REDIS_PORT);

my $srv = start_nginx(
    name        => 'redis-fail-closed',
    port        => 4990,
    master      => 1,
    workers     => 2,
    http_config => LLM::Redis::mock_config(4992) . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT sync=200ms timeout=300ms fail=closed
              prefix=closed:;
    llm_provider mock { url http://127.0.0.1:4992/v1; }
    llm_route m { target mock; }
    llm_key limited { key sk-limited-closed-01; budget 100000tokens/day; }
    llm_key parallel { key sk-parallel-closed-01; parallel 5; }
    llm_team eng { rpm 1000; }
    llm_key member { key sk-member-closed-01; team eng; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

sub ask {
    my ($key) = @_;

    return http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $key" },
        body => '{"model":"m","max_tokens":20,"messages":[{"role":"user",'
              . '"content":"x"}]}');
}

sub code_of {
    my ($res) = @_;
    return eval { decode_json($res->{body})->{error}{code} } // '';
}

for my $key (qw(sk-limited-closed-01 sk-parallel-closed-01
                sk-member-closed-01))
{
    is(ask($key)->{status}, 200, "$key: served while Redis is there");
}

my $pos = $srv->error_log_size;

$redis->stop;

my $res;

ok(wait_until(sub { $res = ask('sk-limited-closed-01'); $res->{status} == 503 },
              timeout => 10),
   'a key with a budget is refused once Redis is gone');

is(code_of($res), 'accounting_unavailable', 'code accounting_unavailable');
is($res->header('Retry-After'), 1, 'Retry-After: 1');
like($res->{body}, qr/"type":"server_error"/, 'an OpenAI-shaped error');

$res = ask('sk-member-closed-01');
is($res->{status}, 503, 'so is a key whose team has a limit');

is(ask('sk-parallel-closed-01')->{status}, 200,
   'a key with a local limit only (parallel) is served');

ok($srv->wait_for_log(qr/llm: key "limited" refused: redis \S+ unavailable/,
                      from => $pos),
   'the refusal is logged');

$redis->start_again;

ok(wait_until(sub { ask('sk-limited-closed-01')->{status} == 200 },
              timeout => 10),
   'served again once Redis is back');

# (each worker reconnects on its own backoff)
ok(wait_until(sub { ask('sk-member-closed-01')->{status} == 200 },
              timeout => 10),
   'the team\'s key too');

$srv->check_clean('no alerts');

done_testing();
