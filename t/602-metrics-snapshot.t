# The status and /metrics are a snapshot of the whole llm_zone, copied
# without allocating under its lock: sized in one walk, copied in another.
# With many series (one per model name of a glob route) every one is
# listed exactly once, in the Prometheus exposition and in the JSON alike,
# also while other workers keep creating series between the two walks;
# and once they stop, the snapshot holds every series they made.
#
# A master with two workers; forked clients make new series (and use
# them again) while the test reads snapshots. A snapshot that gave the
# room of what was counted to entries made in between, leaving out the
# oldest, failed about one snapshot in ten here.
#
# A script: forked clients make new series while snapshots are read from two
# workers.

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat);
use Test::Nginx::LLM qw(start_nginx free_port http_request read_file
                        wait_until);

my $SLOW = Test::Nginx::LLM::slow_factor();
my $BASE = 300;             # series made before the snapshots
my $CLIENTS = 3;            # each makes up to $MAKE series meanwhile
my $MAKE = 2000;
my $ROUNDS = 150;           # snapshots read while they do, at most

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $srv = start_nginx(
    name        => 'metrics-snapshot',
    master      => 1,
    workers     => 2,
    log_level   => 'info',            # debug lines of thousands of requests
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_zone big:64m;
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "any/*" { target mock "*"; max_models 100000; }
CONF
    config      => $LLM::Fixtures::GATEWAY_CONFIG . <<'CONF',
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

# the target passes on what "*" matched: the series's model is "base-0001"
sub ask { chat($port, "any/$_[0]")->{status} }

# each series's model, with how often a snapshot lists it: the 2xx
# requests of its series and its target's state; the series and targets
# of the JSON
sub listed {
    my ($format) = @_;
    my $res = http_request(port => $port, uri => "/llm/status?format=$format");
    my (%series, %targets);

    return ({ "status $res->{status}" => 2 }, {}) if $res->{status} != 200;

    if ($format eq 'prometheus') {
        $series{$_}++ for $res->{body} =~ m{^llm_requests_total
            \{route="any/\*",provider="mock",model="([^"]+)",status="2xx"\}}mgx;
        $targets{$_}++ for $res->{body} =~ m{^llm_target_state
            \{provider="mock",model="([^"]+)",state="closed"\}}mgx;
    } else {
        $series{$_}++ for $res->{body} =~
            m{\{"route":"any/\*","provider":"mock","model":"([^"]+)"}g;
        $targets{$_}++ for $res->{body} =~
            m{\{"provider":"mock","model":"([^"]+)","state"}g;
    }
    return (\%series, \%targets);
}

# what a snapshot got wrong about the names it must list once each, and
# any name listed twice
sub wrong {
    my ($format, @names) = @_;
    my @wrong;
    my ($series, $targets) = listed($format);
    for my $what ([series => $series], [target => $targets]) {
        my ($kind, $seen) = @$what;
        push @wrong, map { "$format $kind $_ listed " . ($seen->{$_} // 0) }
                     grep { ($seen->{$_} // 0) != 1 } @names;
        push @wrong, map { "$format $kind $_ listed $seen->{$_}" }
                     grep { $seen->{$_} > 1 } sort keys %$seen;
    }
    return @wrong;
}

my @base = map { sprintf 'base-%04d', $_ } 1 .. $BASE;
my %status;
$status{ ask($_) }++ for @base;
is($status{200}, $BASE, "$BASE series made") or diag explain \%status;

my @wrong = (wrong('prometheus', @base), wrong('json', @base));
is(scalar @wrong, 0, 'each is listed once in /metrics and the JSON')
    or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];

# clients make new series, and use some again, until told to stop; each
# writes how many it made
my $dir = tempdir(CLEANUP => 1);
my $stop = "$dir/stop";

sub client {
    my ($id) = @_;
    my $made = 0;
    while (!-e $stop && $made < $MAKE) {
        last unless ask(sprintf 'c%d-%04d', $id, $made + 1) == 200;
        $made++;
        ask(sprintf 'c%d-%04d', $id, $made / 2 + 1) if $made % 4 == 0;
        if ($made % 20 == 0) {
            open my $out, '>', "$dir/made-$id.tmp" or POSIX::_exit(1);
            print $out $made;
            close $out;
            rename "$dir/made-$id.tmp", "$dir/made-$id";
        }
    }
    open my $out, '>', "$dir/done-$id" or POSIX::_exit(1);
    print $out $made;
    close $out;
}

my @pids;
for my $id (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        client($id);
        POSIX::_exit(0);
    }
    push @pids, $pid;
}

sub made { my ($id) = @_; read_file("$dir/made-$id") || 0 }

ok(wait_until(sub { !grep { made($_) < 20 } 1 .. $CLIENTS },
              timeout => 20 * $SLOW),
   'the clients make series');

# snapshots while series are made: the JSON, and now and then the larger
# Prometheus exposition (the same snapshot)
@wrong = ();
my ($rounds, $missed) = (0, 0);
for my $round (1 .. $ROUNDS) {
    my @w = wrong($round % 10 ? 'json' : 'prometheus', @base);
    $missed++ if @w;
    push @wrong, @w;
    $rounds++;
    last unless grep { !-e "$dir/done-$_" } 1 .. $CLIENTS;
}
open my $out, '>', $stop or die "$stop: $!";
close $out;
waitpid $_, 0 for @pids;

cmp_ok($rounds, '>=', 10, "$rounds snapshots read while series were made");
is($missed, 0, 'each series made before is listed once in every one of '
               . 'them')
    or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];

my @made;
for my $id (1 .. $CLIENTS) {
    my $n = read_file("$dir/done-$id");
    ok(defined $n && $n > 0, "client $id made series") or $n = 0;
    push @made, map { sprintf 'c%d-%04d', $id, $_ } 1 .. $n;
}

@wrong = (wrong('prometheus', @base, @made), wrong('json', @base, @made));
is(scalar @wrong, 0, 'then every series, ' . (@base + @made)
                     . ', is listed once in both')
    or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
