package LLM::Redis;

=head1 NAME

LLM::Redis - a redis-server of a test's own, and a small client for it

=head1 SYNOPSIS

    use LLM::Redis;

    my $redis = LLM::Redis->start(port => 16379);
    $redis->cmd('HSET', 'llm:apikey:...', name => 'alice');
    my $h = $redis->hgetall('llm:key:alice:tokens:day:20454');
    $redis->stop;                  # or ->restart, ->flushall
    $redis->start_again;

=head1 DESCRIPTION

Starts C<redis-server --port PORT --save '' --appendonly no --daemonize no>
as a child process (bound to 127.0.0.1, its files and log under
F<t/servroot-redis-PORT>), waits until it answers PING, and stops it when
the test ends (END block, also after die). The port is locked (as the
harness locks nginx ports) so that two runs never share a server. Never
uses port 6379.

C<cmd> speaks RESP over a fresh TCP connection and returns the reply:
a scalar for strings, integers and status replies, an array ref for
arrays, C<undef> for nil; an error reply dies unless C<eval>ed. If the
server is down it returns C<undef> and sets C<$LLM::Redis::error>.

=cut

use strict;
use warnings;

use Carp qw(croak);
use File::Path ();
use File::Spec;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::Nginx::LLM qw(wait_until lock_resource);
use LLM::Fixtures ();

our $error;

my %Live;
my $OwnerPid = $$;

sub start {
    my ($class, %o) = @_;
    my $port = $o{port} // croak 'LLM::Redis->start: port is required';
    croak 'port 6379 is not for tests' if $port == 6379;
    my $self = bless {
        port => $port,
        dir  => File::Spec->rel2abs("t/servroot-redis-$port"),
        args => $o{args} || [],
    }, $class;
    $self->{lock} = lock_resource(
        Test::Nginx::LLM::port_lock_file($port), what => "redis port $port");
    File::Path::rmtree($self->{dir});
    File::Path::mkpath($self->{dir});
    $self->start_again or croak "redis-server on port $port did not start:\n"
        . Test::Nginx::LLM::read_file("$self->{dir}/redis.log");
    return $self;
}

sub port { $_[0]{port} }

sub start_again {
    my $self = shift;
    croak 'redis is running' if $self->{pid};
    if (Test::Nginx::LLM::port_listening($self->{port})) {
        croak "port $self->{port} is in use";
    }
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/redis.log" or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        # the kernel stops it if the test dies without its END blocks
        my %prctl = (x86_64 => 157, aarch64 => 167);
        my ($arch) = (POSIX::uname())[4];
        syscall($prctl{$arch}, 1, 15, 0, 0, 0) if $prctl{$arch // ''};
        {
            exec 'redis-server', '--port', $self->{port},
                 '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                 '--daemonize', 'no', '--dir', $self->{dir},
                 @{ $self->{args} };
        }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $Live{$pid} = $self;
    return wait_until(sub {
        my $r = eval { $self->cmd('PING') };
        return defined $r && $r eq 'PONG';
    }, timeout => 10);
}

sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return 1;
    delete $Live{$pid};
    kill 'TERM', $pid;
    my $gone = wait_until(sub { waitpid($pid, WNOHANG) != 0 }, timeout => 10);
    if (!$gone) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    # the port is free again once nothing listens
    wait_until(sub { !Test::Nginx::LLM::port_listening($self->{port}) },
               timeout => 10);
    return $gone;
}

# SIGKILL: Redis dies at once, its clients see the connection reset
sub kill {
    my $self = shift;
    my $pid = delete $self->{pid} or return 1;
    delete $Live{$pid};
    CORE::kill 'KILL', $pid;
    waitpid($pid, 0);
    return wait_until(sub { !Test::Nginx::LLM::port_listening($self->{port}) },
                      timeout => 10);
}

# a restart that keeps nothing: --save '' and no AOF
sub restart {
    my $self = shift;
    $self->stop;
    return $self->start_again;
}

sub is_running { defined $_[0]{pid} }

=head2 LLM::Redis::mock_config($port)

The mock provider's server block (as LLM::Fixtures puts in every test),
listening on C<$port>: for tests that run several nginx at once.

=cut

sub mock_config {
    my ($port) = @_;
    (my $conf = $LLM::Fixtures::MOCK_HTTP_CONFIG)
        =~ s/\$TEST_NGINX_MOCK_PORT\b/$port/g;
    return $conf;
}

=head2 LLM::Redis::day()

The current UTC day as the gateway numbers budget windows (days since
1970-01-01).

=cut

sub day { int(time / 86400) }

=head2 LLM::Redis::slow()

The factor for time limits: 5 under a sanitizer or valgrind (where fork
and exit alone take seconds), else 1.

=cut

sub slow {
    return ($ENV{TEST_NGINX_USE_ASAN} || $ENV{TEST_NGINX_USE_VALGRIND}) ? 5 : 1;
}

sub cmd {
    my ($self, @args) = @_;
    $error = undef;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 2);
    if (!$s) {
        $error = "connect: $!";
        return undef;
    }
    # a server with ACL users: ->{auth} = [user, password]
    for my $cmd ($self->{auth} ? (['AUTH', @{ $self->{auth} }]) : (), \@args) {
        my $req = '*' . @$cmd . "\r\n";
        $req .= '$' . length($_) . "\r\n$_\r\n" for @$cmd;
        print {$s} $req;
        last if $cmd == \@args;
        my $ok = _read_reply($s);
        die "redis error: $$ok\n" if ref $ok eq 'LLM::Redis::Error';
    }
    my $reply = _read_reply($s);
    close $s;
    die "redis error: $$reply\n" if ref $reply eq 'LLM::Redis::Error';
    return $reply;
}

sub hgetall {
    my ($self, $key) = @_;
    my $r = $self->cmd('HGETALL', $key);
    return undef unless defined $r;
    return { @$r };
}

# sum of a hash's values (0 if it does not exist)
sub hsum {
    my ($self, $key) = @_;
    my $h = $self->hgetall($key) // return undef;
    my $sum = 0;
    $sum += $_ for values %$h;
    return $sum;
}

sub keys_matching {
    my ($self, $pattern) = @_;
    my $r = $self->cmd('KEYS', $pattern);
    my @keys = $r ? sort @$r : ();
    return @keys;
}

sub _read_line {
    my ($s) = @_;
    my $line = <$s>;
    die "redis: connection closed\n" unless defined $line;
    $line =~ s/\r\n\z//;
    return $line;
}

sub _read_reply {
    my ($s) = @_;
    my $line = _read_line($s);
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+' || $t eq ':';
    return bless \$rest, 'LLM::Redis::Error' if $t eq '-';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length $buf < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length $buf, length $buf);
            die "redis: short read\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [map { _read_reply($s) } 1 .. $rest];
    }
    die "redis: unexpected reply '$line'\n";
}

sub DESTROY {
    my $self = shift;
    local ($@, $!, $?);
    $self->stop if $$ == $OwnerPid && $self->{pid};
}

END {
    local ($@, $!, $?);
    if ($$ == $OwnerPid) {
        $_->stop for grep { defined } values %Live;
    }
}

1;
