# A body that arrives in several pieces lands in several buffers; each
# piece is sent only once nginx has read the previous one (a condition on
# nginx's own debug log, not a sleep). The provider must still receive the
# client's bytes with only the model replaced.
#
# A script: the body is sent piece by piece, each piece once nginx's debug
# log shows it read the last.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use Digest::SHA qw(sha256_hex);
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx build_request wait_until);

my $srv = start_nginx(
    name        => 'body-pieces',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route small {
        target mock provider-side;
    }
CONF
    config => <<'CONF',
    location /v1/ {
        client_body_buffer_size 64k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $content = join '', map { chr(ord('a') + $_ % 26) x 997 } 0 .. 5;
my $body = qq({"messages":[{"role":"user","content":"$content"}],"model":"small"});
my $expected = qq({"messages":[{"role":"user","content":"$content"}],)
             . qq("model":"provider-side"});

my $request = build_request(method => 'POST', uri => '/v1/chat/completions',
                            body => $body);
my $head_len = index($request, "\r\n\r\n") + 4;

# headers with the first piece, then two more pieces
my @cuts = ($head_len + 1500, $head_len + 3000, length $request);

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $srv->port, Timeout => 10)
    or die "connect: $!";

my $from = 0;
my $reads = 0;

for my $cut (@cuts) {
    my $piece = substr($request, $from, $cut - $from);
    $sock->syswrite($piece) == length $piece or die "write: $!";
    $from = $cut;

    last if $cut == length $request;

    # nginx logs every read of the body; wait until it took this piece
    my $seen = $reads;
    ok(wait_until(sub {
        my @recv = $srv->error_log =~ /http client request body recv \d+/g;
        $reads = @recv;
        return $reads > $seen;
    }, timeout => 10, desc => 'nginx read the piece'),
       "nginx read the body piece ending at byte $cut");
}

my $response = '';
while (1) {
    my $n = $sock->sysread(my $buf, 65536);
    last unless $n;
    $response .= $buf;
}

like($response, qr{^HTTP/1\.1 200 }, 'the completion succeeds');
like($response, qr/"body_sha256":"${\ sha256_hex($expected)}"/,
     'the provider got the pieces in order, model replaced');

my ($segments) = $srv->error_log =~ /llm body: \d+ bytes in (\d+) segments/;
ok(defined $segments && $segments > 1,
   'the body was in more than one buffer (' . ($segments // 'none') . ')');

$srv->stop;
$srv->check_clean('no alerts');

done_testing();
