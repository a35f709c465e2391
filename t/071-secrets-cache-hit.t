# Provider keys on a cache hit: the $llm_header_* variables of secret
# headers are readable only while the proxy module builds an upstream
# request, and a hit builds none. add_header and log_format that name them
# show nothing, on the miss and on the hit. A script: two requests, the
# second answered from the cache.

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request read_file wait_until);

remove_tree('t/servroot-secrets-cache-hit/cache');

my $srv = start_nginx(
    name        => 'secrets-cache-hit',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    proxy_cache_path cache keys_zone=llm:1m;
    log_format secrets 'cache=$llm_cache_status auth=[$llm_header_authorization]';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-PROVIDER-CACHED-secret;
    }
    llm_route m { target mock; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
        access_log logs/secrets.log secrets;
        add_header X-Leak-Test "[$llm_header_authorization]";
    }
CONF
);

my @res = map {
    http_request(port => $srv->port, method => 'POST',
                 uri => '/v1/chat/completions',
                 body => '{"model":"m","temperature":0,'
                       . '"messages":[{"role":"user","content":"cache me"}]}')
} 1 .. 2;

is($res[0]->header('x-llm-cache'), 'MISS', 'the first is a miss');
is($res[1]->header('x-llm-cache'), 'HIT', 'the second a hit');
for my $i (0, 1) {
    is($res[$i]->header('x-leak-test'), '[]',
       ($i ? 'hit' : 'miss') . ': add_header shows no key');
    # (the mock's body says what it received: the key, by design)
    unlike($res[$i]{raw_headers}, qr/sk-PROVIDER/,
           ($i ? 'hit' : 'miss') . ': in no response header');
}

my $log = $srv->servroot . '/logs/secrets.log';
ok(wait_until(sub { (() = read_file($log) =~ /\n/g) >= 2 },
              timeout => 10, interval => 0.02), 'both requests logged');
my $lines = read_file($log);
like($lines, qr/^cache=HIT auth=\[-\]$/m, 'the hit logs no key');
unlike($lines, qr/sk-PROVIDER/, 'the access log has no key');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
