# Embeddings are charged like completions: the provider's prompt_tokens,
# no completion tokens, the cost at the target's input price, in the
# access log and in the key's spend; and cached with the same key rules:
# the second identical request is a HIT (embeddings are deterministic, so
# "llm_cache deterministic" takes them without temperature 0), the same
# body at /v1/chat/completions does not share its key.
#
# A script: several requests to one running nginx (the hit needs the miss
# before it, in the same nginx and cache), then its log read once all
# lines are written (waited for); a block runs one request per nginx.

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until read_file);

my $servroot = 't/servroot-embeddings-usage';
remove_tree("$servroot/cache");

my $srv = start_nginx(
    name        => 'embeddings-usage',
    servroot    => $servroot,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    include $TEST_NGINX_LLM_LOG_FORMAT;
    proxy_cache_path cache keys_zone=llm:1m;

    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }

    llm_route embed { target mock e-1 input=0.02 output=10.00; }

    llm_key alice { key sk-alice-0123456789; }
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
    location = /llm/status {
        llm_status;
    }
CONF
);

my $log = $srv->servroot . '/logs/llm.json';

sub ask {
    my ($body, $uri) = @_;
    return http_request(port => $srv->port, method => 'POST',
                        uri => $uri // '/v1/embeddings',
                        headers => { Authorization =>
                                         'Bearer sk-alice-0123456789' },
                        body => $body);
}

sub entries {
    my ($n) = @_;
    my @lines;
    wait_until(sub {
        @lines = split /\n/, eval { read_file($log) } // '';
        @lines >= $n;
    }, timeout => 10, interval => 0.02, desc => "$n log lines");
    return map { JSON::PP::decode_json($_) } @lines;
}

my $r = ask('{"model":"embed","input":["a","b"],'
            . '"mock":{"prompt_tokens":1000}}');
is($r->{status}, 200, 'embeddings answered');
like($r->{body}, qr/"usage":\{"prompt_tokens":1000,"total_tokens":1000\}/,
     'the provider reports 1000 prompt tokens');

my $q = '{"model":"embed","input":"cache me","mock":{"prompt_tokens":50}}';
is(ask($q)->header('x-llm-cache'), 'MISS', 'first: MISS');
my $hit = ask($q);
is($hit->header('x-llm-cache'), 'HIT', 'the same again: HIT');
like($hit->{body}, qr/"object":"list"/, 'the hit is the list');

# counted once their answers ended: the spend and the route's series
sub status {
    return JSON::PP::decode_json(
        http_request(port => $srv->port, uri => '/llm/status')->{body});
}

my ($alice, $series);
wait_until(sub {
    ($alice) = grep { $_->{scope} eq 'key' && $_->{name} eq 'alice' }
               @{ status()->{spend} };
    $alice && $alice->{requests} >= 3;
}, timeout => 10, interval => 0.02, desc => 'requests to be counted');

($series) = grep { $_->{route} eq 'embed' } @{ status()->{series} };
is($series->{prompt_tokens}, 1050, 'series: 1000 + 50 prompt tokens (the '
   . 'hit is free)');
is($series->{completion_tokens}, 0, 'series: no completion tokens');
cmp_ok(abs($alice->{cost_usd} - 1050 * 0.02 / 1e6), '<', 1e-12,
       'the key spent 1050 tokens at $0.02 per million');

# the same body at the chat door is no embeddings request: its own key
my $chat = ask('{"model":"embed","input":"cache me","mock":{"prompt_tokens":'
               . '50},"messages":[{"role":"user","content":"x"}],'
               . '"temperature":0}', '/v1/chat/completions');
is($chat->header('x-llm-cache'), 'MISS', 'chat with that body: a MISS');

my @e = entries(4);

is($e[0]{uri}, '/v1/embeddings', 'the uri');
is($e[0]{route}, 'embed', 'the route');
is($e[0]{target_model}, 'e-1', 'the target');
is($e[0]{prompt_tokens}, '1000', 'prompt tokens charged');
is($e[0]{completion_tokens}, '0', 'no completion tokens');
is($e[0]{cost_usd}, '0.000020000', 'cost: 1000 x $0.02 per million');
is($e[1]{cache}, 'MISS', 'logged: a miss');
is($e[2]{cache}, 'HIT', 'logged: then a hit');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
