# A worker remembers the gateway keys it authenticated by a keyed hash
# (SipHash-2-4-128) of them, their length and their entity: a key seen
# again is not hashed with SHA-256 ("llm: key from the memo" at debug
# level), on one keep-alive connection as across connections. A key one
# byte away from a remembered one, or a prefix or an extension of it, is
# refused and never found in the memo. The memo is sized by the
# configuration's keys (2,000 from a keys file: 2,048 sets of two), and
# where more keys share a set than it holds, all find their own entity,
# and near misses none. A reload forgets (new workers, a new memo): keys
# changed in the keys file take effect.
#
# A script: requests are pipelined on keep-alive connections, and the
# error log (debug) counts what the memo did.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use LLM::Fixtures;
use Test::Nginx::LLM;

my $KEYS = 2000;

my $HTTP = $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF';
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }

    llm_key alice { key sk-alice-0123456789; }
    llm_key bob {
        # sha256("sk-bob-0123456789")
        key sha256:7abecd79d98aa79deaacf9745bb505d7d72abe4dd36edc1b977d1345863ad3b5;
    }
    llm_keys_file $TEST_NGINX_SERVER_ROOT/html/keys;
CONF

my $CONFIG = <<'CONF';
    location /v1/ {
        add_header X-Key-Name "$llm_key" always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF

sub keys_file {
    my ($srv, $text) = @_;
    open my $fh, '>', $srv->html_dir . '/keys' or die "keys: $!";
    print $fh $text;
    close $fh;
}

sub many_keys {
    join '', map { sprintf "k%04d sk-many-%04d-0123456789;\n", $_, $_ }
             1 .. $KEYS;
}

# requests pipelined on one connection, the last closes it: per request,
# the status and the X-Key-Name (or '-')
sub pipelined {
    my ($port, @reqs) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";

    my $out = '';
    for my $i (0 .. $#reqs) {
        my ($how, $key, $uri) = @{ $reqs[$i] };
        my $header = $how eq 'x-api-key' ? "x-api-key: $key"
                                         : "Authorization: Bearer $key";
        my $conn = $i == $#reqs ? 'close' : 'keep-alive';
        $uri //= '/v1/models';
        if ($uri eq '/v1/models') {
            $out .= "GET $uri HTTP/1.1\r\nHost: localhost\r\n$header\r\n"
                  . "Connection: $conn\r\n\r\n";
        } else {
            my $body = '{"model":"m","messages":[{"role":"user",'
                     . '"content":"x"}]}';
            $out .= "POST $uri HTTP/1.1\r\nHost: localhost\r\n$header\r\n"
                  . "Content-Type: application/json\r\n"
                  . "Content-Length: " . length($body) . "\r\n"
                  . "Connection: $conn\r\n\r\n$body";
        }
    }

    print $s $out;
    local $/;
    my $in = <$s> // '';
    close $s;

    # each answer: its head, then a body of Content-Length or chunks
    my @res;
    while ($in =~ /\G(HTTP\/1\.1 (\d{3}) .*?\r\n\r\n)/gcs) {
        my ($head, $status) = ($1, $2);
        my ($name) = $head =~ /^X-Key-Name: (\S*)\r$/mi;
        push @res, [$status, $name // '-'];

        if ($head =~ /^Content-Length: (\d+)\r$/mi) {
            pos($in) += $1;
        } elsif ($head =~ /^Transfer-Encoding: chunked\r$/mi) {
            while ($in =~ /\G([0-9a-fA-F]+)\r\n/gc) {
                my $n = hex $1;
                pos($in) += $n + 2;
                last if $n == 0;
            }
        }
    }

    return @res;
}

sub count {
    my ($srv, $from, $re) = @_;
    my $n = () = $srv->error_log(from => $from) =~ /$re/g;
    return $n;
}

my $srv = Test::Nginx::LLM::Server->new(
    name => 'keys-memo', master => 1, workers => 1,
    http_config => $HTTP, config => $CONFIG);
$srv->prepare_servroot;
keys_file($srv, many_keys());
$srv->start or die "nginx did not start: $srv->{start_error}";

# --- one keep-alive connection, then others ------------------------------

my $from = $srv->error_log_size;
my @r = pipelined($srv->port, (['bearer', 'sk-alice-0123456789']) x 3,
                  ['bearer', 'sk-alice-0123456789', '/v1/chat/completions']);

is_deeply(\@r, [([200, 'alice']) x 4],
          'a key on one keep-alive connection, four times');
is(count($srv, $from, qr/llm: key remembered/), 1, 'remembered once');
is(count($srv, $from, qr/llm: key from the memo/), 3,
   'then found in the memo, without a SHA-256');

$from = $srv->error_log_size;
@r = (pipelined($srv->port, ['bearer', 'sk-alice-0123456789']),
      pipelined($srv->port, ['x-api-key', 'sk-alice-0123456789']),
      pipelined($srv->port, ['bearer', 'sk-bob-0123456789']),
      pipelined($srv->port, ['bearer', 'sk-bob-0123456789']));

is_deeply(\@r, [[200, 'alice'], [200, 'alice'], [200, 'bob'], [200, 'bob']],
          'across connections, as Bearer or x-api-key; a key by its digest');
is(count($srv, $from, qr/llm: key from the memo/), 3,
   'alice twice and bob once from the memo');
is(count($srv, $from, qr/llm: key remembered/), 1, 'bob remembered');

# --- near misses of a remembered key -------------------------------------

my @near = ('sk-alice-0123456780',      # the last byte
            'Sk-alice-0123456789',      # the first
            'sk-alice-0123456789 ',     # with a space: nginx trims it
            'sk-alice-012345678',       # a prefix
            'sk-alice-01234567890',     # an extension
            'sk-alice-0123456789sk-alice-0123456789',
            'sk-alice-');

$from = $srv->error_log_size;
@r = pipelined($srv->port, map { ['bearer', $_] } @near);

is_deeply([map { $_->[0] } @r], [401, 401, 200, 401, 401, 401, 401],
          'one byte off, a prefix, an extension: 401 (a trailing space is '
          . 'not part of the header)');
is(count($srv, $from, qr/llm: key from the memo/), 1,
   'none found in the memo but the key itself');
is(count($srv, $from, qr/llm: key remembered/), 0,
   'a refused key is not remembered');

# --- more keys than the memo holds ---------------------------------------

# keepalive_requests is 1000: 400 requests a connection
my @want = map { sprintf 'k%04d', $_ } 1 .. $KEYS;
my @reqs = map { ['bearer', sprintf 'sk-many-%04d-0123456789', $_] } 1 .. $KEYS;

for my $round (1 .. 2) {
    $from = $srv->error_log_size;
    my @got;
    for (my $i = 0; $i < @reqs; $i += 400) {
        my $j = $i + 399 > $#reqs ? $#reqs : $i + 399;
        push @got, pipelined($srv->port, @reqs[$i .. $j]);
    }
    is(scalar @got, $KEYS, "round $round: $KEYS answers");
    my @bad = grep { $got[$_][0] != 200 || $got[$_][1] ne $want[$_] }
              0 .. $#got;
    is(scalar @bad, 0, "round $round: every key finds its own entity")
        or diag explain [@got[@bad[0 .. ($#bad < 4 ? $#bad : 4)]]];

    my $hits = count($srv, $from, qr/llm: key from the memo/);
    my $new = count($srv, $from, qr/llm: key remembered/);
    is($hits + $new, $KEYS, "round $round: each from the memo or remembered");
    if ($round == 1) {
        is($hits, 0, 'round 1: none known yet');
    } else {
        # the memo is sized by the configuration's 2,003 keys: 2,048
        # sets of two, each with the last two of its keys; taken
        # backwards, a set gives back min(its keys, 2), about 1,800 in
        # all (Poisson, 0.98 keys a set): more than the 1,024 entries a
        # memo of fixed size had
        ok($hits > 1600 && $hits <= $KEYS, "round 2: $hits from the memo");
    }

    @reqs = reverse @reqs;
    @want = reverse @want;
}

# near misses of remembered keys, many: refused
my @miss = map { (['bearer', sprintf 'sk-many-%04d-0123456788', $_],
                  ['bearer', sprintf 'sk-many-%04d-012345678', $_],
                  ['bearer', sprintf 'sk-many-%04d-01234567899', $_]) }
           1 .. 100;
$from = $srv->error_log_size;
@r = pipelined($srv->port, @miss);
is(scalar(grep { $_->[0] == 401 && $_->[1] eq '-' } @r), 300,
   'near misses of 100 remembered keys: 401 each');
is(count($srv, $from, qr/llm: key from the memo/), 0, 'none from the memo');

# --- a reload forgets ----------------------------------------------------

keys_file($srv, "k0001 sk-many-0002-0123456789;\n"
              . "zed sk-zed-0123456789;\n");
ok($srv->reload, 'reload with another keys file');

@r = pipelined($srv->port, ['bearer', 'sk-many-0001-0123456789'],
               ['bearer', 'sk-many-0002-0123456789'],
               ['bearer', 'sk-zed-0123456789'],
               ['bearer', 'sk-alice-0123456789']);
is_deeply(\@r, [[401, '-'], [200, 'k0001'], [200, 'zed'], [200, 'alice']],
          'after a reload: a removed key 401, a key renamed its new name');

# the plain keys are in no log line (but nginx's own header dump)
my @lines = grep { /sk-(?:alice|bob|many)-/
                   && !/ http header: "(?:Authorization|x-api-key): / }
            split /\n/, $srv->error_log;
is(scalar @lines, 0, 'no key in the log') or diag join "\n", @lines[0 .. 2];

$srv->check_clean('no alerts');

done_testing();
