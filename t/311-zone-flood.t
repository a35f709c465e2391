# A client cannot evict budgets: thousands of distinct model names through
# a glob route (each a target and a series in the zone) fill a small
# llm_zone, and the zone makes room from them, never from a key's live
# limits and budgets: what the key spent today stays spent. A script:
# thousands of requests, and the budget tried before and after; then the
# same with the budgets shared through Redis (llm_redis), where the value
# the gateway writes to Redis must not be reset either.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_FLOOD_PORT} // 16393;
my $SLOW = LLM::Redis::slow();
my $FLOOD = 1500;

# each request reserves about 16 tokens; the mock reports 35 used
sub ask {
    my ($srv, $key, $model) = @_;
    return http_request(port => $srv->port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { Authorization => "Bearer $key" },
                        body => '{"model":"' . $model . '","max_tokens":10,'
                              . '"messages":[{"role":"user","content":"x"}],'
                              . '"mock":{"prompt_tokens":30,"completion_tokens":5}}');
}

sub flood_case {
    my ($name, $redis_conf, $redis) = @_;

    my $srv = start_nginx(
        name        => $name,
        http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_zone small:32k;
    $redis_conf
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "any/*" { target mock "*"; max_models 100000; }
    llm_key alice { key sk-alice-flood-0001; budget 40tokens/day; }
    llm_key bob { key sk-bob-flood-0002; budget 100000000tokens/day; }
CONF
        config      => $LLM::Fixtures::GATEWAY_CONFIG,
    );

    my $day = LLM::Redis::day();
    my $alice = "flood:key:alice:tokens:day:$day";
    my $bob = "flood:key:bob:tokens:day:$day";

    is(ask($srv, 'sk-alice-flood-0001', 'any/first')->{status}, 200,
       "$name: alice spends 35 of her 40 tokens");
    ok(wait_until(sub {
           ask($srv, 'sk-alice-flood-0001', 'any/second')->{status} == 429
       }, timeout => 10 * $SLOW, interval => 0.05),
       "$name: then her budget refuses the next request");

    ok(wait_until(sub { ($redis->hsum($alice) // 0) == 35 },
                  timeout => 10 * $SLOW),
       "$name: Redis holds her 35") if $redis;

    # a flood of model names, from another key: far more than the zone holds
    my %status;
    for my $i (1 .. $FLOOD) {
        $status{ ask($srv, 'sk-bob-flood-0002',
                     sprintf('any/m-%05d-%s', $i, 'x' x 40))->{status} }++;
    }
    is($status{200}, $FLOOD, "$name: the flood is served")
        or diag explain \%status;

    if ($redis) {
        # a sync after the flood: bob's spend in it has reached Redis
        ok(wait_until(sub { ($redis->hsum($bob) // 0) == 35 * $FLOOD },
                      timeout => 20 * $SLOW),
           "$name: the gateway synced with Redis after the flood");
        is($redis->hsum($alice), 35, "$name: Redis still holds what alice "
                                     . 'spent');
    }

    my $res = ask($srv, 'sk-alice-flood-0001', 'any/again');
    is($res->{status}, 429,
       "$name: after the flood, what alice spent today is still spent");
    like($res->{body}, qr/insufficient_quota/, "$name: her budget refuses her");

    $srv->check_clean("$name: no alerts, crashes or sanitizer reports");
    $srv->stop;
}

flood_case('zone-flood', '');

my $redis = LLM::Redis->start(port => $REDIS_PORT);
flood_case('zone-flood-redis',
           "llm_redis 127.0.0.1:$REDIS_PORT sync=100ms node=a prefix=flood:;",
           $redis);

done_testing();
