# Metrics: after a known set of requests every counter moved by exactly
# the expected amount, in the Prometheus exposition and in the JSON
# status alike; promtool accepts the exposition; label values are escaped;
# the formats are chosen by ?format= or by the llm_status directive.
#
# A script: the checks are differences between /metrics read before and
# after known sets of requests to one running nginx (counters in its
# shared memory), once the requests are counted (waited for); a block runs
# one request per nginx, and echo subrequests cannot reach the gateway
# (llm_gateway does not serve a subrequest).

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use File::Temp qw(tempfile);
use JSON::PP ();
use LLM::Fixtures;
use LLM::Metrics qw(val delta);
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $servroot = 't/servroot-metrics';
remove_tree("$servroot/cache");

my $srv = start_nginx(
    name        => 'metrics',
    servroot    => $servroot,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    proxy_cache_path cache keys_zone=llm:1m;

    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
    }

    llm_route chat { target mock m1 input=2.00 output=8.00; }
    llm_route fo { target broken b1; target mock m2 input=1.00 output=1.00; }
    llm_route "any/*" { target mock "*"; }

    llm_org acme { }
    llm_team eng { org acme; budget 5usd/day; budget 100000tokens/month; }
    llm_key alice { key sk-alice-0123456789; team eng; }
    llm_key bob { key sk-bob-0123456789; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
    }
    location = /llm/status {
        llm_status;
    }
    location = /metrics {
        llm_status prometheus;
    }
CONF
);

my $port = $srv->port;

sub ask {
    my ($key, $body) = @_;
    return http_request(port => $port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { Authorization => "Bearer sk-$key-0123456789",
                                     'Content-Type' => 'application/json' },
                        body => JSON::PP->new->canonical->encode($body));
}

sub chat {
    my ($model, %o) = @_;
    return { model => $model,
             messages => [{ role => 'user', content => $o{content} // 'hi' }],
             %o{grep { exists $o{$_} } qw(stream temperature mock)} };
}

sub scrape { return LLM::Metrics::scrape($port) }

sub status {
    my $res = http_request(port => $port, uri => '/llm/status');
    return JSON::PP::decode_json($res->{body});
}

sub spend_requests {
    my ($scope, $name) = @_;
    my ($s) = grep { $_->{scope} eq $scope && $_->{name} eq $name }
              @{ status()->{spend} };
    return $s ? $s->{requests} : 0;
}

# a request is counted when its response ended, which the client may see
# a moment before: wait until the totals caught up
sub settled {
    my (%want) = @_;
    wait_until(sub {
        for my $who (keys %want) {
            return 0 if spend_requests(split /:/, $who) < $want{$who};
        }
        1;
    }, timeout => 10, interval => 0.02, desc => 'requests to be counted');
}

my $S = 'model=m1,provider=mock,route=chat';

# --- a known set of requests -------------------------------------------

my $m0 = scrape();

is(ask(alice => chat('chat', mock => { prompt_tokens => 100,
                                       completion_tokens => 20 }))->{status},
   200, 'alice: a completion');
is(ask(alice => chat('chat', content => 'again',
                     mock => { prompt_tokens => 100, completion_tokens => 20,
                               cached_tokens => 40 }))->{status},
   200, 'alice: another, with cached tokens');
my $stream = ask(alice => chat('chat', stream => JSON::PP::true,
                               mock => { prompt_tokens => 30,
                                         completion_tokens => 12 }));
like($stream->{body}, qr/data: \[DONE\]\n\n\z/, 'alice: a stream');
is(ask(bob => chat('fo', mock => { prompt_tokens => 10,
                                   completion_tokens => 5 }))->{status},
   200, 'bob: answered after a failover');
is(ask(bob => chat('nowhere'))->{status}, 404, 'bob: an unknown model');

settled('key:alice' => 3, 'key:bob' => 2);

my $m1 = scrape();

is(delta($m0, $m1, "llm_requests_total{$S,status=2xx}"), 3,
   'requests: 3 answered on chat');
is(delta($m0, $m1, "llm_tokens_total{$S,kind=prompt}"), 230,
   'prompt tokens: 100 + 100 + 30');
is(delta($m0, $m1, "llm_tokens_total{$S,kind=completion}"), 52,
   'completion tokens: 20 + 20 + 12');
is(delta($m0, $m1, "llm_tokens_total{$S,kind=cached}"), 40,
   'cached tokens: 40');
# (100 - 40) * 2 + 40 * 2 (no cached price: the input price) ... per
# million: 2 * (100 * 2 + 20 * 8) + 30 * 2 + 12 * 8 = 876 micro-dollars
is(val($m1, "llm_cost_usd_total{$S}"), '0.000876000', 'cost, exactly');
is(delta($m0, $m1, "llm_failovers_total{$S,cause=http_500}"), 0,
   'no failover on chat');

my $F = 'model=m2,provider=mock,route=fo';
is(delta($m0, $m1, "llm_requests_total{$F,status=2xx}"), 1,
   'fo: one answered');
is(delta($m0, $m1, "llm_failovers_total{$F,cause=http_500}"), 0,
   'fo: no failover counted for the target that answered');
is(delta($m0, $m1,
         'llm_failovers_total{model=b1,provider=broken,route=fo,cause=http_500}'),
   1, 'fo: one failover, counted for the target that failed, with its cause');
is(val($m1, "llm_cost_usd_total{$F}"), '0.000015000', 'fo: its cost');
is(delta($m0, $m1, 'llm_requests_total{model=,provider=,route=,status=4xx}'),
   1, 'the unknown model: a 4xx without a route');

# histograms: one observation per answered request
is(delta($m0, $m1, "llm_request_duration_seconds_count{$S}"), 3,
   'duration: 3 observations');
is(delta($m0, $m1, "llm_request_duration_seconds_bucket{$S,le=+Inf}"), 3,
   'duration: +Inf bucket holds them all');
is(delta($m0, $m1, "llm_time_to_first_byte_seconds_count{$S}"), 3,
   'ttfb: 3 observations');
is(delta($m0, $m1, "llm_gateway_overhead_seconds_count{$S}"), 3,
   'overhead: 3 observations');
my @b = map { val($m1, "llm_request_duration_seconds_bucket{$S,le=$_}") }
        qw(0.1 0.25 0.5 1 2.5 5 10 30 60 120 +Inf);
is_deeply([sort { $a <=> $b } @b], \@b, 'buckets are cumulative');

# spenders: the key, its team, the team's organisation
is(val($m1, 'llm_spend_requests_total{name=alice,scope=key}'), 3, 'alice: 3');
is(val($m1, 'llm_spend_requests_total{name=eng,scope=team}'), 3, 'eng: 3');
is(val($m1, 'llm_spend_requests_total{name=acme,scope=org}'), 3, 'acme: 3');
is(val($m1, 'llm_spend_requests_total{name=bob,scope=key}'), 2,
   'bob: 2, the refused one too');
is(val($m1, 'llm_spend_usd_total{name=eng,scope=team}'), '0.000876000',
   'eng spent what chat cost');
is(val($m1, 'llm_spend_tokens_total{kind=completion,name=alice,scope=key}'), 52,
   'alice: completion tokens');
is(val($m1, 'llm_budget_remaining{name=eng,period=day,scope=team,unit=usd}'),
   '4.999124000', 'eng: what remains of the day');
is(val($m1, 'llm_budget_remaining{name=eng,period=month,scope=team,unit=tokens}'),
   100000 - 282, 'eng: tokens left this month');

# targets
is(val($m1, 'llm_target_state{model=m1,provider=mock,state=closed}'), 1,
   'mock/m1 is closed');
is(val($m1, 'llm_target_state{model=m1,provider=mock,state=open}'), 0,
   'and not open');
is(val($m1, 'llm_target_inflight{model=m1,provider=mock}'), 0,
   'nothing in flight');
ok(defined val($m1, 'llm_target_latency_seconds{model=m1,provider=mock,signal=ttfb}'),
   'a ttfb average for mock/m1');

# --- the cache ----------------------------------------------------------

my $q = chat('chat', temperature => 0, content => 'cache me');
is(ask(alice => $q)->header('x-llm-cache'), 'MISS', 'a miss');
is(ask(alice => $q)->header('x-llm-cache'), 'HIT', 'a hit');
my $nc = http_request(port => $port, method => 'POST',
                      uri => '/v1/chat/completions',
                      headers => { Authorization => 'Bearer sk-alice-0123456789',
                                   'Cache-Control' => 'no-cache' },
                      body => JSON::PP->new->canonical->encode($q));
is($nc->header('x-llm-cache'), 'BYPASS', 'a bypass');
settled('key:alice' => 6);

my $m2 = scrape();
is(delta($m1, $m2, "llm_cache_requests_total{$S,result=hit}"), 1, 'cache: 1 hit');
is(delta($m1, $m2, "llm_cache_requests_total{$S,result=miss}"), 1,
   'cache: 1 miss');
is(delta($m1, $m2, "llm_cache_requests_total{$S,result=bypass}"), 1,
   'cache: 1 bypass');
is(delta($m1, $m2, "llm_requests_total{$S,status=2xx}"), 3,
   'all three answered');

# --- the JSON status says the same --------------------------------------

my $st = status();
my ($series) = grep { $_->{route} eq 'chat' } @{ $st->{series} };
is($series->{requests}{'2xx'}, val($m2, "llm_requests_total{$S,status=2xx}"),
   'json: requests as in the exposition');
is($series->{prompt_tokens}, val($m2, "llm_tokens_total{$S,kind=prompt}"),
   'json: prompt tokens as in the exposition');
# the means are the histograms' sums over their counts (the buckets')
my $n = val($m2, "llm_time_to_first_byte_seconds_count{$S}");
cmp_ok(abs($series->{ttfb_ms_avg}
           - val($m2, "llm_time_to_first_byte_seconds_sum{$S}") / $n * 1000),
       '<', 0.001, 'json: the mean time to first byte, as in the exposition');
$n = val($m2, "llm_gateway_overhead_seconds_count{$S}");
cmp_ok(abs($series->{overhead_us_avg}
           - val($m2, "llm_gateway_overhead_seconds_sum{$S}") / $n * 1e6),
       '<', 0.06, 'json: the mean overhead, as in the exposition');
# the first three requests (no temperature 0) were not eligible: bypasses
is_deeply($series->{cache}, { hit => 1, miss => 1, bypass => 4 },
          'json: cache results since the start');
my ($eng) = grep { $_->{scope} eq 'team' && $_->{name} eq 'eng' }
            @{ $st->{spend} };
is(scalar @{ $eng->{budgets} }, 2, 'json: eng has two budgets');
is($eng->{budgets}[0]{period}, 'day', 'json: the first is daily');
cmp_ok(abs($eng->{budgets}[0]{limit} - 5), '<', 1e-9, 'json: of $5');
cmp_ok(abs($eng->{budgets}[0]{limit} - $eng->{budgets}[0]{remaining}
           - $eng->{cost_usd}), '<', 1e-9,
       'json: what remains is the limit less what was spent');
my ($bob) = grep { $_->{name} eq 'bob' } @{ $st->{spend} };
is_deeply($bob->{budgets}, [], 'json: bob has no budget');

# --- Anthropic's door counts as OpenAI's ---------------------------------

sub door {
    my ($key, $body, %h) = @_;
    return http_request(port => $port, method => 'POST', uri => '/v1/messages',
                        headers => { 'x-api-key' => "sk-$key-0123456789",
                                     'anthropic-version' => '2023-06-01',
                                     'Content-Type' => 'application/json',
                                     %h },
                        body => JSON::PP->new->canonical->encode($body));
}

sub message {
    my (%o) = @_;
    return { model => 'chat', max_tokens => 50,
             messages => [{ role => 'user', content => $o{content} // 'hi' }],
             %o{grep { exists $o{$_} } qw(stream temperature)} };
}

my $before = spend_requests(key => 'alice');
my $d0 = scrape();
my $st0 = status();
is(door(alice => message())->{status},
   200, 'door: a message');
like(door(alice => message(stream => JSON::PP::true))->{body},
     qr/event: message_stop/, 'door: a streamed message');
my $dq = message(temperature => 0, content => 'cache me at the door');
is(door(alice => $dq)->header('x-llm-cache'), 'MISS', 'door: a miss');
is(door(alice => $dq)->header('x-llm-cache'), 'HIT', 'door: a hit');
settled('key:alice' => $before + 4);

my $d1 = scrape();
is(delta($d0, $d1, "llm_requests_total{$S,status=2xx}"), 4,
   'door: 4 requests answered on chat');
# what the door's answers used, as charged to the key (the mock reads no
# settings from an Anthropic body: its default usage)
for my $kind (qw(prompt completion)) {
    my $charged = delta($d0, $d1,
                        "llm_spend_tokens_total{kind=$kind,name=alice,scope=key}");
    cmp_ok($charged, '>', 0, "door: $kind tokens charged to the key");
    is(delta($d0, $d1, "llm_tokens_total{$S,kind=$kind}"), $charged,
       "door: $kind tokens counted as charged");
}
is(delta($d0, $d1, "llm_cache_requests_total{$S,result=hit}"), 1,
   'door: the hit is counted');
is(delta($d0, $d1, "llm_cache_requests_total{$S,result=miss}"), 1,
   'door: the miss is counted');
cmp_ok(delta($d0, $d1, "llm_cost_usd_total{$S}"), '>', 0,
       'door: spend moved');
is(delta($d0, $d1, "llm_request_duration_seconds_count{$S}"), 4,
   'door: durations observed');
my ($sx0) = grep { $_->{route} eq 'chat' } @{ $st0->{series} };
my ($sx1) = grep { $_->{route} eq 'chat' } @{ status()->{series} };
is($sx1->{requests}{'2xx'} - $sx0->{requests}{'2xx'}, 4,
   'json: the door\'s requests in the series');

# --- promtool accepts it -------------------------------------------------

# a model name that needs escaping in a label
is(ask(bob => chat("any/we\"ird\\name"))->{status}, 200,
   'a model with a quote and a backslash');
settled('key:bob' => 3);

BAIL_OUT('promtool is not installed: scripts/deps.sh test installs it')
    unless -x '/usr/bin/promtool';

my $exposition = http_request(port => $port, uri => '/metrics')->{body};
my ($fh, $file) = tempfile(UNLINK => 1);
print $fh $exposition;
close $fh;
my $out = `promtool check metrics < $file 2>&1`;
is($? >> 8, 0, 'promtool check metrics passes') or diag $out;
is($out, '', 'without a single remark') or diag $out;

my $m3 = scrape();
is(val($m3, 'llm_requests_total{model=we\\"ird\\\\name,provider=mock,route=any/*,status=2xx}'),
   1, 'the label value is escaped');

# --- formats --------------------------------------------------------------

my $res = http_request(port => $port, uri => '/metrics');
like($res->header('content-type'), qr{^text/plain; version=0\.0\.4},
     'prometheus: its content type');
is($res->header('cache-control'), 'no-store', 'never cached');
like($res->{body}, qr/^# HELP llm_requests_total .+\n# TYPE llm_requests_total counter\n/m,
     'HELP and TYPE');

$res = http_request(port => $port, uri => '/metrics?format=json');
is($res->header('content-type'), 'application/json',
   '?format=json overrides the directive');
ok(eval { JSON::PP::decode_json($res->{body}) }, 'and it is JSON');

$res = http_request(port => $port, uri => '/llm/status?format=prometheus');
like($res->{body}, qr/^llm_requests_total\{/m,
     '?format=prometheus on a JSON location');

$res = http_request(port => $port, uri => '/llm/status?format=html');
is($res->{status}, 200, 'the page');
like($res->header('content-type'), qr{^text/html}, 'as HTML');
unlike($res->{body}, qr/(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i,
       'with no external assets');

$res = http_request(port => $port, uri => '/llm/status?format=xml');
is($res->{status}, 400, 'an unknown format: 400');
like($res->{body}, qr/"param":"format"/, 'an OpenAI-shaped error');

$res = http_request(port => $port, method => 'POST', uri => '/metrics',
                    body => '{}');
is($res->{status}, 405, 'GET only');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
