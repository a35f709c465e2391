# A soak: 1,000 streams held open at once through one gateway worker, in
# three waves. Every stream arrives whole (all its events and [DONE]); the
# worker's memory after the third wave is what it was after the first (it
# does not grow with the streams served), and what one open stream costs
# is reported. The mock provider is an nginx of its own, so that the
# gateway worker's memory is the gateway's.
#
# A script: 1,000 streams held open at once, three times over, and the
# worker's memory read.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);
use LLM::Faults qw(vm_rss_kib);
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx free_port wait_until);

my $STREAMS = $ENV{SOAK_STREAMS} || 1000;
my $WAVES = 3;
my $SLOW = Test::Nginx::LLM::slow_factor();
my $SANITIZED = $ENV{TEST_NGINX_USE_ASAN} || $ENV{TEST_NGINX_USE_VALGRIND};

my $mock_port = free_port();

my $mock = start_nginx(
    name               => 'soak-mock',
    workers            => 2,
    master             => 1,
    log_level          => 'warn',
    worker_connections => 4096,
    main_config        => 'worker_rlimit_nofile 8192;',
    http_config        => LLM::Redis::mock_config($mock_port),
    no_root_location   => 1,
);

my $srv = start_nginx(
    name               => 'soak',
    master             => 1,
    workers            => 1,
    log_level          => 'warn',
    worker_connections => 8192,
    main_config        => 'worker_rlimit_nofile 16384;',
    http_config        => <<CONF,
    llm_zone llm:4m;
    llm_provider mock { url http://127.0.0.1:$mock_port/v1; }
    llm_route m { target mock; }
    access_log off;
CONF
    config             => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my ($worker) = $srv->worker_pids;
ok($worker, 'one gateway worker');

# 10 content events 0.3 s apart: every stream of a wave is open at once
# (HTTP/1.0: the body ends with the connection, not chunked)
my $body = '{"model":"m","stream":true,"messages":[{"role":"user",'
         . '"content":"soak"}],"mock":{"chunks":10,"gap":300,'
         . '"reply":"a b c d e f g h i j"}}';
my $request = "POST /v1/chat/completions HTTP/1.0\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nConnection: close\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";

# one wave: all streams opened, then read to their ends; returns the
# number that arrived whole, and the worker's memory while all were open
sub wave {
    my ($streams) = @_;
    my (@conns, $peak);

    for (1 .. $streams) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $srv->port, Proto => 'tcp',
                                      Timeout => 10 * $SLOW)
            or return (0, 0, "connect: $!");
        $s->blocking(0);
        syswrite($s, $request) == length($request)
            or return (0, 0, 'a request not sent whole');
        push @conns, { sock => $s, data => '' };
    }

    my $sel = IO::Select->new(map { $_->{sock} } @conns);
    my %by_fd = map { (fileno($_->{sock}) => $_) } @conns;
    my $started = 0;
    my $deadline = time + 60 * $SLOW;

    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $c = $by_fd{ fileno $s };
            my $n = sysread($s, my $buf, 65536);
            if (!$n) {
                $sel->remove($s);
                close $s;
                next;
            }
            $started++ if $c->{data} eq '' && $buf =~ /data: /;
            $c->{data} .= $buf;
        }

        # every stream has had an event and none has ended: all are open
        if (!defined $peak && $started == $streams
            && !grep { $_->{data} =~ /\[DONE\]/ } @conns)
        {
            $peak = vm_rss_kib($worker);
        }
    }

    my $whole = grep {
        $_->{data} =~ m{\AHTTP/1\.[01] 200 }
        && join('', $_->{data} =~ /"content":"([^"]*)"/g)
           eq 'a b c d e f g h i j'
        && $_->{data} =~ /data: \[DONE\]\n\n\z/
    } @conns;

    return ($whole, $peak // 0);
}

# warm up: the zone's nodes and the worker's first allocations
wave(20);

my $idle = vm_rss_kib($worker);
my @after;

for my $w (1 .. $WAVES) {
    my ($whole, $peak, $why) = wave($STREAMS);
    is($whole, $STREAMS, "wave $w: $STREAMS streams open at once, all whole")
        or diag($why // '');
    push @after, vm_rss_kib($worker);

    if ($w == 1 && !$SANITIZED) {
        ok($peak, 'the worker\'s memory measured with every stream open');
        diag(sprintf('worker RSS: idle %d KiB, %d streams open %d KiB: '
                     . '%.1f KiB a stream', $idle, $STREAMS, $peak,
                     ($peak - $idle) / $STREAMS));
    }
}

diag('worker RSS after each wave: ' . join(', ', map { "$_ KiB" } @after));

# what a wave leaves allocated (pools freed, malloc's arenas kept) is
# reused by the next: 5 % or 2 MiB of slack at most
SKIP: {
    # ASan keeps freed memory in quarantine, valgrind its own heap: the
    # worker's RSS says nothing of the module's there
    skip 'memory is not measured under a sanitizer or valgrind', 1
        if $SANITIZED;

    my $slack = $after[0] / 20 > 2048 ? $after[0] / 20 : 2048;
    cmp_ok($after[-1], '<=', $after[0] + $slack,
           'the worker\'s memory did not grow from wave 1 to wave ' . $WAVES);
}

is_deeply([$srv->worker_pids], [$worker], 'the same worker all along');

$srv->check_clean('no worker crash, nothing above [error]');
$mock->check_clean('the mock: no crash');

done_testing();
