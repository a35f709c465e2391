# The shipped JSON access-log format (conf.examples/llm_log_format): every
# line is one JSON object, with what the module knows of the request, for
# completions, streams, failovers, cache hits and refusals alike; the
# client's key is named, never written.
#
# A script: six requests to one running nginx (the cache hit needs the
# miss before it, in the same nginx and cache), then its log of six lines
# read once all are written (waited for); a block runs one request per
# nginx, and echo subrequests cannot reach the gateway (llm_gateway does
# not serve a subrequest).

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until read_file);

my $servroot = 't/servroot-access-log';
remove_tree("$servroot/cache");

my $srv = start_nginx(
    name        => 'access-log',
    servroot    => $servroot,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    include $TEST_NGINX_LLM_LOG_FORMAT;
    proxy_cache_path cache keys_zone=llm:1m;

    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=503/v1;
    }

    llm_route m { target mock m-1 input=3.00 output=15.00; }
    llm_route fo { target broken; target mock m-2; }

    llm_team eng { }
    llm_key alice { key sk-alice-0123456789; team eng; }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/llm.json llm_json;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
    }
CONF
);

my $log = $srv->servroot . '/logs/llm.json';

sub ask {
    my ($body, %o) = @_;
    return http_request(port => $srv->port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { Authorization => 'Bearer '
                                         . ($o{key} // 'sk-alice-0123456789') },
                        body => $body);
}

# the log's entries once there are n of them
sub entries {
    my ($n) = @_;
    my @lines;
    wait_until(sub {
        @lines = split /\n/, eval { read_file($log) } // '';
        @lines >= $n;
    }, timeout => 10, interval => 0.02, desc => "$n log lines");
    return map {
        my $line = $_;
        my $e = eval { JSON::PP::decode_json($line) };
        ok($e, 'a line is a JSON object') or diag $line;
        $e // {};
    } @lines;
}

is(ask('{"model":"m","messages":[{"role":"user","content":"hi"}],'
       . '"mock":{"prompt_tokens":1000,"completion_tokens":100}}')->{status},
   200, 'a completion');
like(ask('{"model":"m","stream":true,"messages":[{"role":"user",'
         . '"content":"hi"}],"mock":{"prompt_tokens":10,'
         . '"completion_tokens":4}}')->{body},
     qr/\[DONE\]/, 'a stream');
is(ask('{"model":"fo","messages":[{"role":"user","content":"hi"}]}')->{status},
   200, 'a failover');
my $q = '{"model":"m","temperature":0,"messages":[{"role":"user",'
        . '"content":"cache me"}]}';
ask($q);
is(ask($q)->header('x-llm-cache'), 'HIT', 'a cache hit');
is(ask($q, key => 'sk-nobody-0123456789')->{status}, 401, 'a refusal');

my @e = entries(6);
is(scalar @e, 6, 'six requests, six lines');

my %first = %{ $e[0] };
is($first{status}, 200, 'status as a number');
# a JSON number: decoded, 0.010 would read as 0.01, so the line is matched
like((split /\n/, read_file($log))[0], qr/"request_time":\d+\.\d{3},/,
     'request_time, seconds with milliseconds');
like($first{request_id}, qr/^[0-9a-f]{32}$/, 'request_id');
is($first{method}, 'POST', 'method');
is($first{uri}, '/v1/chat/completions', 'uri');
is($first{key}, 'alice', 'the key by name');
is($first{team}, 'eng', 'its team');
is($first{model}, 'm', 'the model asked for');
is($first{route}, 'm', 'the route');
is($first{provider}, 'mock', 'the provider');
is($first{target_model}, 'm-1', 'the provider\'s model');
is($first{attempts}, '1', 'one attempt');
is($first{stream}, '0', 'not a stream');
is($first{prompt_tokens}, '1000', 'prompt tokens');
is($first{completion_tokens}, '100', 'completion tokens');
is($first{cost_usd}, '0.004500000', 'cost: 1000 x $3 + 100 x $15 per million');
like($first{upstream_latency}, qr/^\d+\.\d{3}$/, 'upstream latency');
like($first{overhead}, qr/^\d+\.\d{6}$/, 'overhead');
is($first{upstream_status}, '200', 'upstream status');

is($e[1]{stream}, '1', 'the stream: a stream');
like($e[1]{ttfb}, qr/^\d+\.\d{3}$/, 'the stream: its time to first byte');
is($e[1]{completion_tokens}, '4', 'the stream: its usage');

is($e[2]{attempts}, '2', 'the failover: two attempts');
is($e[2]{target_model}, 'm-2', 'the failover: served by the second');
like($e[2]{upstream_status}, qr/^503\b.*\b200$/, 'the failover: 503, then 200');

is($e[3]{cache}, 'MISS', 'a miss');
is($e[4]{cache}, 'HIT', 'then a hit');

is($e[5]{status}, 401, 'the refusal');
is($e[5]{key}, '', 'no key named');
is($e[5]{route}, '', 'no route');

unlike(read_file($log), qr/sk-alice|sk-nobody/, 'no client key written');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
