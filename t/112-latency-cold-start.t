# The latency strategy's cold start: a target never measured takes the
# next request as soon as it has none in flight, so a new route measures
# every target within its first requests, and a target added by a reload
# is tried at once; an unmeasured target that fails gets no burst: one
# request at a time, and none once its breaker opened. A script: the
# order of many requests, and a reload.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat idle_target);
use Test::Nginx::LLM qw(start_nginx);

my $providers = $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF';
    llm_provider slow { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=30/v1; }
    llm_provider fast { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider late { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        health failure_ratio=100% min_requests=2 cooldown=60s;
    }
    llm_route sick {
        strategy latency;
        target dead;
        target fast sick-fast;
    }
CONF

my $srv = start_nginx(
    name        => 'latency-cold-start',
    master      => 1,
    http_config => $providers . <<'CONF',
    llm_route cold {
        strategy latency;
        target slow;
        target fast;
    }
CONF
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

# who served each of $n requests, one after the other, each counted
# (nothing in flight) before the next
sub served {
    my ($model, $n) = @_;
    my @who;
    for (1 .. $n) {
        my $res = chat($port, $model);
        my $p = $res->header('x-llm-provider') // 'none';
        push @who, $p . ($res->header('x-llm-attempts') == 1 ? ''
                         : '/' . $res->header('x-llm-attempts'));
        idle_target($port, $p, $res->header('x-llm-model'));
    }
    return @who;
}

my @who = served('cold', 2);
is("@who", 'slow fast',
   'a new route: each target takes one of the first two requests');

# now both are measured: the slower one is not chosen over the faster
# by the cold-start rule any more (by power of two choices, the faster
# wins every draw of the pair)
@who = served('cold', 6);
is(scalar(grep { $_ eq 'fast' } @who), 6, 'then the faster serves')
    or diag "@who";

ok($srv->reload(http_config => $providers . <<'CONF'), 'reload, a target added');
    llm_route cold {
        strategy latency;
        target slow;
        target fast;
        target late;
    }
CONF

@who = served('cold', 1);
is("@who", 'late', 'the added target takes the first request after the reload');

# an unmeasured target that fails: tried once per request while its
# breaker lets it (2 failures open it), never again after
@who = served('sick', 6);
is("@who", 'fast/2 fast/2 fast fast fast fast',
   'the dead target cost two requests a failover each, then none');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
