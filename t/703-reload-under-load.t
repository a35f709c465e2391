# "nginx -s reload" every second under sustained load, streams and
# completions: not one client request fails (each is checked whole: a
# complete completion, or a stream with all its events and [DONE]), streams
# in flight across a reload finish on the old workers, and the shared state
# survives (docs/directives.md, llm_zone): the llm_status counters of the
# target keep growing across reloads, and in the end count exactly the
# requests the clients made.
#
# A master with two workers; the load comes from forked clients, each
# writing one line per request; the failures are counted exactly.
#
# A script: "nginx -s reload" every second under load from forked clients.

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use LLM::Fixtures;
use LLM::Routing qw(chat status_json status_target);
use Test::Nginx::LLM qw(start_nginx free_port read_file wait_until);

my $SLOW = Test::Nginx::LLM::slow_factor();
my $RELOADS = $ENV{RELOADS} || 8;

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

sub routes {
    my ($generation) = @_;
    # each reload is a real change of configuration: one more route
    return $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF;
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_route load { target mock m-load; }
    llm_route generation-$generation { target mock; }
CONF
}

my $srv = start_nginx(
    name        => 'faults-703',
    master      => 1,
    workers     => 2,
    log_level   => 'info',           # debug lines of thousands of requests
    http_config => routes(0),
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

my $dir = tempdir(CLEANUP => 1);
my $stop = "$dir/stop";

# a client: requests one after the other until told to stop; one line
# per request: "ok <kind> <start> <end>" or "FAIL <kind> <why>"
sub client {
    my ($id, $stream, $gap) = @_;
    open my $out, '>>', "$dir/client-$id" or POSIX::_exit(1);
    $out->autoflush(1);
    while (!-e $stop) {
        my $res = chat($port, 'load', stream => $stream, timeout => 10 * $SLOW,
                       mock => { reply => 'one two three four five', chunks => 5,
                                 gap => $gap });
        my $why;
        if (($res->{status} // 0) != 200) {
            $why = 'status ' . ($res->{status} // 'none') . ' ' . ($res->{error} // '');
        } elsif (!$res->{complete}) {
            $why = 'incomplete: ' . ($res->{error} // '?');
        } elsif ($stream) {
            my $text = join '', $res->{body} =~ /"content":"([^"]*)"/g;
            $why = "stream content \"$text\"" unless $text eq 'one two three four five';
            $why = 'no [DONE]' unless $res->{body} =~ /data: \[DONE\]\n\n\z/;
            $why = 'error event' if $res->{body} =~ /"error":/;
        } else {
            $why = 'not the completion'
                unless $res->{body} =~ /"content":"one two three four five"/;
        }
        my $kind = $stream ? 'stream' : 'completion';
        print $out $why ? "FAIL $kind $why\n"
                        : sprintf("ok %s %.3f %.3f\n", $kind, $res->{t_start}, $res->{t_end});
        # a steady load, not a saturating one: the harness sees a reload
        # done once the new workers idle in their event loop
        sleep 0.01;
    }
    close $out;
}

# 3 completion and 3 stream clients; one stream client's streams last
# 2.5 s, so that some are in flight at every reload
my @clients = ([0, 10], [0, 0], [0, 30], [1, 50], [1, 20], [1, 500]);
my @pids;
for my $i (0 .. $#clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        client($i, @{ $clients[$i] });
        POSIX::_exit(0);
    }
    push @pids, $pid;
}

sub results {
    my @lines;
    push @lines, split /\n/, read_file("$dir/client-$_") for 0 .. $#clients;
    return @lines;
}

ok wait_until(sub { results() >= 20 }, timeout => 20 * $SLOW),
    'the load runs';

my (@reload_at, @counts);
my $ok_reloads = 0;
for my $gen (1 .. $RELOADS) {
    my $next = time + 1;
    push @reload_at, time;
    $ok_reloads++ if $srv->reload(http_config => routes($gen));
    my $t = status_target($port, 'mock', 'm-load');
    push @counts, $t ? $t->{requests} : 0;
    # one reload a second: pacing, not waiting for something
    sleep $next - time if $next > time;
}
is $ok_reloads, $RELOADS, "$RELOADS reloads, one a second, all done";

my $routes = status_json($port)->{routes};
ok scalar(grep { $_->{name} eq "generation-$RELOADS" } @$routes),
    'the last configuration is the one in service';

open my $fh, '>', $stop or die "$stop: $!";
close $fh;
waitpid $_, 0 for @pids;

my @r = results();
my @fail = grep { /^FAIL/ } @r;
my $total = @r;
is scalar @fail, 0, "no client request failed ($total requests)"
    or diag join "\n", @fail[0 .. ($#fail < 20 ? $#fail : 19)];
cmp_ok scalar(grep { /^ok stream/ } @r), '>=', 2 * $RELOADS, 'streams were served';
cmp_ok scalar(grep { /^ok completion/ } @r), '>=', 2 * $RELOADS, 'completions were served';

my $across = 0;
for my $line (grep { /^ok stream/ } @r) {
    my (undef, undef, $t0, $t1) = split ' ', $line;
    $across++ if grep { $t0 < $_ && $_ < $t1 } @reload_at;
}
cmp_ok $across, '>=', 1, "streams in flight across a reload completed ($across)";

is_deeply [grep { $counts[$_] < $counts[$_ - 1] } 1 .. $#counts], [],
    'the target\'s request counter never went back across reloads'
    or diag "@counts";
cmp_ok $counts[-1], '>', $counts[0], "and kept growing (@counts[0, -1])";

my $t;
ok wait_until(sub {
    $t = status_target($port, 'mock', 'm-load');
    $t && $t->{inflight} == 0 && $t->{requests} == $total;
}, timeout => 10 * $SLOW), "in the end it counts every request: $total"
    or diag explain $t;
is $t->{successes}, $total, 'all of them successes';
is $t->{failures}, 0, 'no failure';

$srv->stop;
$srv->check_clean('no worker crash, nothing above [error], no sanitizer report');

done_testing();
