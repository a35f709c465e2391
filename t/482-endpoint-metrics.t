# Metrics of the endpoints beside chat: legacy completions and Responses
# calls (whole and streamed, as they are and translated) are counted with
# their tokens and cost like chat answers; a
# token count is counted as a request of no tokens and no cost; the key's
# spend counts both.
#
# A script: the checks are differences between /metrics read before and
# after known requests to one running nginx, once the requests are
# counted (waited for), as in t/600-metrics.t.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures;
use LLM::Metrics qw(val delta);
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $srv = start_nginx(
    name        => 'endpoint-metrics',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/input_tokens=9/v1;
        key sk-ant-mock-key;
        format anthropic;
    }

    llm_route text { target mock t1 input=2.00 output=8.00; }
    llm_route claude { target an c1 input=3.00 output=15.00; }
    llm_route resp { target mock r1 input=2.00 cached=1.00 output=8.00; }
    llm_route rclaude { target an c2 input=3.00 output=15.00; }

    llm_key alice { key sk-alice-0123456789; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
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

sub post {
    my ($uri, $body) = @_;
    return http_request(port => $port, method => 'POST', uri => $uri,
                        headers => { 'x-api-key' => 'sk-alice-0123456789',
                                     'anthropic-version' => '2023-06-01',
                                     'Content-Type' => 'application/json' },
                        body => JSON::PP->new->canonical->encode($body));
}

sub scrape { return LLM::Metrics::scrape($port) }

sub spend_requests {
    my $res = http_request(port => $port, uri => '/llm/status');
    my ($s) = grep { $_->{scope} eq 'key' && $_->{name} eq 'alice' }
              @{ JSON::PP::decode_json($res->{body})->{spend} };
    return $s ? $s->{requests} : 0;
}

my $T = 'model=t1,provider=mock,route=text';
my $C = 'model=c1,provider=an,route=claude';

my $m0 = scrape();

my $r = post('/v1/completions',
             { model => 'text', prompt => 'x',
               mock => { prompt_tokens => 100, completion_tokens => 20 } });
is($r->{status}, 200, 'a completion');

$r = post('/v1/completions',
          { model => 'text', prompt => ['x'], stream => JSON::PP::true,
            mock => { prompt_tokens => 30, completion_tokens => 12 } });
like($r->{body}, qr/"object":"text_completion".*data: \[DONE\]\n\n\z/s,
     'a streamed completion');

$r = post('/v1/messages/count_tokens',
          { model => 'claude',
            messages => [{ role => 'user', content => 'Hello' }] });
is($r->{body}, '{"input_tokens":9}', 'a token count');

$r = post('/v1/responses',
          { model => 'resp', input => 'x',
            mock => { prompt_tokens => 100, completion_tokens => 20,
                      cached_tokens => 40 } });
like($r->{body}, qr/"object":"response"/, 'a response');

$r = post('/v1/responses',
          { model => 'resp', input => 'x', stream => JSON::PP::true,
            mock => { prompt_tokens => 30, completion_tokens => 12 } });
like($r->{body}, qr/event: response\.completed\n[^\n]*\n\n\z/s,
     'a streamed response');

$r = post('/v1/responses',
          { model => 'rclaude', input => 'Hello', stream => JSON::PP::true });
like($r->{body}, qr/event: response\.completed\n[^\n]*\n\n\z/s,
     'a streamed response translated from Anthropic');

wait_until(sub { spend_requests() >= 6 }, timeout => 10, interval => 0.02,
           desc => 'requests to be counted');

my $m1 = scrape();

is(delta($m0, $m1, "llm_requests_total{$T,status=2xx}"), 2,
   'completions: 2 answered');
is(delta($m0, $m1, "llm_tokens_total{$T,kind=prompt}"), 130,
   'completions: prompt tokens 100 + 30');
is(delta($m0, $m1, "llm_tokens_total{$T,kind=completion}"), 32,
   'completions: completion tokens 20 + 12');
# 100 * 2 + 20 * 8 + 30 * 2 + 12 * 8 = 516 micro-dollars
is(val($m1, "llm_cost_usd_total{$T}"), '0.000516000', 'completions: cost');

is(delta($m0, $m1, "llm_requests_total{$C,status=2xx}"), 1,
   'count_tokens: one request');
is(delta($m0, $m1, "llm_tokens_total{$C,kind=prompt}"), 0,
   'count_tokens: no prompt tokens');
is(delta($m0, $m1, "llm_tokens_total{$C,kind=completion}"), 0,
   'count_tokens: no completion tokens');
cmp_ok(val($m1, "llm_cost_usd_total{$C}") // 0, '==', 0,
       'count_tokens: no cost');

my $R = 'model=r1,provider=mock,route=resp';
my $A = 'model=c2,provider=an,route=rclaude';

is(delta($m0, $m1, "llm_requests_total{$R,status=2xx}"), 2,
   'responses: 2 answered');
is(delta($m0, $m1, "llm_tokens_total{$R,kind=prompt}"), 130,
   'responses: prompt tokens 100 + 30');
is(delta($m0, $m1, "llm_tokens_total{$R,kind=cached}"), 40,
   'responses: cached prompt tokens');
is(delta($m0, $m1, "llm_tokens_total{$R,kind=completion}"), 32,
   'responses: completion tokens 20 + 12');
# 60 * 2 + 40 * 1 + 20 * 8 + 30 * 2 + 12 * 8 = 476 micro-dollars
is(val($m1, "llm_cost_usd_total{$R}"), '0.000476000', 'responses: cost');

is(delta($m0, $m1, "llm_requests_total{$A,status=2xx}"), 1,
   'translated response: one request');
is(delta($m0, $m1, "llm_tokens_total{$A,kind=prompt}"), 9,
   'translated response: the provider\'s prompt tokens');
cmp_ok(delta($m0, $m1, "llm_tokens_total{$A,kind=completion}"), '>', 0,
       'translated response: completion tokens');

is(spend_requests(), 6, 'the key spent 6 requests');

done_testing();
