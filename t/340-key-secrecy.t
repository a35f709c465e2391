# A client's plain key is never kept: not in the shared memory zone (read
# here from a worker's memory), not in the status output, not in the log.
# Neither is a provider's key written to the zone.
#
# A script: the zone is read from a running worker's memory
# (/proc/PID/mem), between requests to the same nginx.

use strict;
use warnings;
no warnings "portable";   # 64-bit addresses in /proc/<pid>/maps

use Test::More;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request);

plan skip_all => 'reading another process\'s memory needs root'
    unless $> == 0;

my $client_key = 'sk-client-plain-7f3a9c2e5b1d';
my $provider_key = 'sk-provider-plain-4e8b2a6d';

my $srv = start_nginx(
    name        => 'key-secrecy',
    master      => 1,
    workers     => 1,
    log_level   => 'info',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_zone secrecy:1m;
    llm_provider mock {
        url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1;
        key $provider_key;
    }
    llm_route m { target mock; }
    llm_key alice { key $client_key; budget 1000000tokens/day; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /status {
        llm_status;
    }
CONF
);

for (1 .. 3) {
    my $res = http_request(
        port => $srv->port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => "Bearer $client_key" },
        body => '{"model":"m","max_tokens":10,"messages":[{"role":"user",'
              . '"content":"x"}]}');
    is($res->{status}, 200, 'a completion with the key');
}

my $status = http_request(port => $srv->port, uri => '/status');
unlike($status->{body}, qr/\Q$client_key\E/, 'not in the status output');
unlike($status->{body}, qr/\Q$provider_key\E/,
       'nor the provider\'s key');

# the zone: the 1 MB shared mapping of the worker

my ($worker) = $srv->worker_pids;
ok($worker, 'a worker runs');

my $zone = '';

open my $maps, '<', "/proc/$worker/maps" or die "maps: $!";

while (<$maps>) {
    my ($from, $to, $perms) = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/ or next;
    next unless $perms =~ /s/ && hex($to) - hex($from) == 1024 * 1024;

    open my $mem, '<:raw', "/proc/$worker/mem" or die "mem: $!";
    sysseek($mem, hex($from), 0) or die "seek: $!";
    sysread($mem, $zone, 1024 * 1024) == 1024 * 1024 or die "read: $!";
    close $mem;
    last;
}

close $maps;

like($zone, qr/key:alice/, 'the zone was found: it has the key\'s meters');
unlike($zone, qr/\Q$client_key\E/, 'the client\'s plain key is not in it');
unlike($zone, qr/\Q$provider_key\E/, 'nor the provider\'s key');

$srv->stop;

my $log = $srv->error_log;
unlike($log, qr/\Q$client_key\E/, 'the client\'s key is not in the log');
unlike($log, qr/\Q$provider_key\E/, 'nor the provider\'s key');

$srv->check_clean('no alerts');

done_testing();
