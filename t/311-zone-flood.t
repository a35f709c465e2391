# A client cannot evict budgets: thousands of distinct model names through
# a glob route (each a target and a series in the zone) fill a small
# llm_zone, and the zone makes room from them, never from a key's live
# limits and budgets: what the key spent today stays spent. A script:
# thousands of requests, and the budget tried before and after.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $srv = start_nginx(
    name        => 'zone-flood',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_zone small:32k;
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "any/*" { target mock "*"; }
    llm_key alice { key sk-alice-flood-0001; budget 40tokens/day; }
    llm_key bob { key sk-bob-flood-0002; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /metrics {
        llm_status prometheus;
    }
CONF
);
my $port = $srv->port;

# each request reserves about 16 tokens; the mock reports 35 used
sub ask {
    my ($key, $model) = @_;
    return http_request(port => $port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { Authorization => "Bearer $key" },
                        body => '{"model":"' . $model . '","max_tokens":10,'
                              . '"messages":[{"role":"user","content":"x"}],'
                              . '"mock":{"prompt_tokens":30,"completion_tokens":5}}');
}

is(ask('sk-alice-flood-0001', 'any/first')->{status}, 200,
   'alice spends 35 of her 40 tokens');
ok(wait_until(sub { ask('sk-alice-flood-0001', 'any/second')->{status} == 429 },
              timeout => 10, interval => 0.05),
   'then her budget refuses the next request');

# a flood of model names, from another key: far more than the zone holds
my %status;
for my $i (1 .. 1500) {
    $status{ ask('sk-bob-flood-0002', sprintf('any/m-%05d-%s', $i, 'x' x 40))->{status} }++;
}
is($status{200}, 1500, 'the flood is served') or diag explain \%status;

my $res = ask('sk-alice-flood-0001', 'any/again');
is($res->{status}, 429, 'after the flood, what alice spent today is still spent');
like($res->{body}, qr/insufficient_quota/, 'her budget refuses her');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
