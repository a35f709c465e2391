package Test::Nginx::LLM;

=head1 NAME

Test::Nginx::LLM - low-level helpers for nginx tests written in plain Perl

=head1 SYNOPSIS

    use strict;
    use warnings;
    use lib 't/lib';
    use Test::More;
    use Test::Nginx::LLM qw(start_nginx http_request http_stream wait_until
                            check_no_alerts);

    my $ngx = start_nginx(
        name        => 'mytest',          # servroot: t/servroot-mytest
        master      => 1,                 # master_process on
        workers     => 2,
        http_config => 'map $uri $x { default 1; }',
        config      => 'location /t { echo hello; }',   # server{} level
    );

    my $res = http_request(port => $ngx->port, uri => '/t');
    is $res->{status}, 200, 'status';
    is $res->{body}, "hello\n", 'body';

    my @pieces;
    http_stream(port => $ngx->port, uri => '/sse',
                on_data => sub { my ($data, $t) = @_; push @pieces, $data; 1 });

    ok $ngx->reload(config => 'location /t { echo bye; }'), 'reloaded';

    $ngx->stop;
    $ngx->check_clean('no alerts, crashes or sanitizer reports');
    done_testing;

=head1 DESCRIPTION

This module is the engine under our L<Test::Nginx::Socket> and can be used
directly by tests that are not data driven (several nginx instances at once,
reloads, streaming responses, timing of chunks, ...).

Every nginx started here runs in the foreground (C<daemon off>) as a child
of the test process. It is stopped when its handle is destroyed or when the
test process exits (END block, also after C<die>, SIGINT or SIGTERM); on
Linux the kernel also sends it SIGTERM if the test process is killed
(PR_SET_PDEATHSIG). A stale nginx left in a servroot by an earlier, killed
run is stopped (via its F<logs/nginx.pid>) before a new one is started.

No function here sleeps "to be sure": every wait is a bounded poll for a
condition (see C<wait_until>).

=head1 GENERATED nginx.conf

    daemon off;
    master_process off|on;
    worker_processes N;
    user root;                                  # only when running as uid 0
    error_log <servroot>/logs/error.log debug;  # or log_level
    pid <servroot>/logs/nginx.pid;
    env X;                                      # env option / env_to_nginx
    load_module <each .so of TEST_NGINX_LOAD_MODULES>;
    <main_config>
    events { worker_connections 1024; }         # or worker_connections
    http {
        access_log <servroot>/logs/access.log;
        client_body_temp_path <servroot>/client_body_temp;  # unless set in
        proxy_temp_path <servroot>/proxy_temp;              # http_config
        fastcgi_temp_path ...; uwsgi_temp_path ...; scgi_temp_path ...;
        default_type text/plain;
        keepalive_timeout 65;
        <http_config>
        server {
            listen 127.0.0.1:<port>;
            server_name localhost;
            client_max_body_size 30M;
            <config>
            location / { root html; index index.html; }  # unless no_root_location
        }
    }

Any C<$TEST_NGINX_XXX> token in main_config, http_config and config is
replaced by the environment variable of that name; for an instance,
C<$TEST_NGINX_SERVER_PORT>, C<$TEST_NGINX_SERVROOT>,
C<$TEST_NGINX_SERVER_ROOT> (the real Test::Nginx's name) and
C<$TEST_NGINX_HTML_DIR> are that instance's own values. An unknown variable
is an error.

nginx is run as C<nginx -p E<lt>servrootE<gt>/ -c E<lt>servrootE<gt>/conf/nginx.conf>;
its stdout and stderr go to F<E<lt>servrootE<gt>/logs/stderr.log> (where
configuration errors found before the error log is opened end up).

=head1 ENVIRONMENT

=over

=item TEST_NGINX_BINARY

nginx to run (default: C<nginx> in PATH, else F</usr/sbin/nginx>).

=item TEST_NGINX_LOAD_MODULES

Space-separated paths of dynamic modules; each becomes a C<load_module> line.

=item TEST_NGINX_USE_VALGRIND

Run nginx under C<valgrind --tool=memcheck --leak-check=full
--show-possibly-lost=no --error-exitcode=0 --keep-debuginfo=yes
--log-file=E<lt>servrootE<gt>/logs/valgrind.%p.log> (C<--keep-debuginfo>
because nginx unloads its modules before valgrind's leak check; plus
C<--suppressions=t/valgrind.suppress> when that file exists). After nginx
stops, errors ("Invalid read/write", "uninitialised", "definitely lost")
whose stack mentions C<ngx_http_llm> are problems (see C<problems>).
Start/stop/request timeouts are multiplied by 5 under valgrind.

=item TEST_NGINX_USE_ASAN

Path of F<libasan.so>, optionally followed (space-separated) by other
runtimes such as F<libubsan.so>: nginx gets them as C<LD_PRELOAD> (plus
every module of TEST_NGINX_LOAD_MODULES that is linked against libasan,
so that it stays mapped after nginx's dlclose() at exit and its frames in
leak reports can be symbolized) and
C<ASAN_OPTIONS=detect_leaks=1:log_path=E<lt>servrootE<gt>/logs/asan:abort_on_error=0:exitcode=0:fast_unwind_on_malloc=0:...>
(any ASAN_OPTIONS already in the environment are appended, so they win;
F<t/lsan.suppress>, if present, is passed to LeakSanitizer). Every
AddressSanitizer error report in F<logs/asan.*> is a problem, and so is
every LeakSanitizer leak record whose stack mentions C<ngx_http_llm>: the
stock nginx binary itself "leaks" its cycle at exit, which is not ours
to report. Other unexpected ASan/LSan output (e.g. "LeakSanitizer has
encountered a fatal error") is a problem too. UBSAN_OPTIONS gets the same
common options plus C<print_stacktrace=1> (ASan and UBSan share their
common flags when both are loaded: they must agree). UBSan writes its
reports to stderr, which nginx redirects into error.log: every
C<runtime error:> (with its stack) or C<ERROR: AddressSanitizer> line in
error.log or stderr.log is a problem, with or without this variable (only
instrumented code, i.e. our module, can produce one).

=item TEST_NGINX_SANITIZER_FRAME_RE

Regex a valgrind error's or an LSan leak's stack must match to count
(default C<ngx_http_llm>; C<.> counts them all).

=item TEST_NGINX_TIMEOUT

Default HTTP request timeout in seconds (default 10).

=back

=head1 FUNCTIONS

All are exported on request (C<:all> exports everything).

=cut

use strict;
use warnings;

use Carp qw(croak);
use Cwd ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Fcntl qw(:flock);
use Exporter 'import';
use File::Basename ();
use File::Path ();
use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(
    start_nginx http_request http2_request http_stream wait_until
    check_no_alerts find_alerts free_port nginx_binary
    expand_env build_request chunk_encode valgrind_errors asan_errors
    read_file lock_resource
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our $DefaultTimeout = $ENV{TEST_NGINX_TIMEOUT} || 10;

# Regex that the stack of a valgrind error or LSan leak must match to count.
our $FrameRe = $ENV{TEST_NGINX_SANITIZER_FRAME_RE} // 'ngx_http_llm';

# Timeouts get this factor under valgrind.
sub slow_factor { $ENV{TEST_NGINX_USE_VALGRIND} ? 5 : 1 }

=head2 nginx_binary()

The nginx executable (TEST_NGINX_BINARY, C<nginx> in PATH, F</usr/sbin/nginx>).

=cut

sub nginx_binary {
    return $ENV{TEST_NGINX_BINARY} if $ENV{TEST_NGINX_BINARY};
    for my $dir (split /:/, $ENV{PATH} // '') {
        next unless length $dir;
        my $f = "$dir/nginx";
        return $f if -f $f && -x _;
    }
    return '/usr/sbin/nginx';
}

=head2 wait_until($cond, timeout => $s, interval => 0.02, desc => '...')

Calls C<$cond> until it returns a true value (which is returned), at most
C<timeout> seconds (default 10). Sleeps C<interval> seconds (default 0.02)
between calls, never past the deadline. On timeout returns a false value
and, if C<desc> is given, prints a diag "timed out waiting for DESC".

=cut

sub wait_until {
    my ($cond, %o) = @_;
    my $timeout  = $o{timeout}  // 10;
    my $interval = $o{interval} // 0.02;
    my $deadline = time + $timeout;
    while (1) {
        my $r = $cond->();
        return $r if $r;
        my $left = $deadline - time;
        if ($left <= 0) {
            Test::More::diag("timed out after ${timeout}s waiting for $o{desc}")
                if defined $o{desc};
            return 0;
        }
        sleep($interval < $left ? $interval : $left);
    }
}

=head2 expand_env($text, \%overrides)

Replaces every C<$TEST_NGINX_XXX> in C<$text> by C<$overrides-E<gt>{XXX}>
or C<$ENV{XXX}>; dies if neither is defined. References are returned as is.

=cut

sub expand_env {
    my ($text, $over) = @_;
    return $text if !defined $text || ref $text;
    $over ||= {};
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $v = exists $over->{$1} ? $over->{$1} : $ENV{$1};
        defined $v or die "No environment variable $1 defined (used as \$$1)\n";
        $v;
    }ge;
    return $text;
}

=head2 free_port()

A TCP port on 127.0.0.1 that is free right now (chosen by the kernel).

=cut

sub free_port {
    for (1 .. 20) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 1)
            or next;
        my $port = $s->sockport;
        close $s;
        return $port if $port && !port_listening($port);
    }
    croak "cannot find a free TCP port";
}

# True if something listens on 127.0.0.1:$port (or 0.0.0.0:$port). Uses
# /proc/net/tcp so that no connection is made (a probe connection would
# show up in nginx's error log); falls back to a connect() probe.
sub port_listening {
    my ($port) = @_;
    my $hex = sprintf '%04X', $port;
    my $seen_proc;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        $seen_proc = 1;
        while (my $l = <$fh>) {
            my @f = split ' ', $l;
            next unless @f > 3 && $f[3] eq '0A';      # LISTEN
            return 1 if $f[1] =~ /:$hex$/;
        }
    }
    return 0 if $seen_proc;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return $s ? 1 : 0;
}

# Number of server-side TCP connections on 127.0.0.1:$port that are still
# open in nginx (ESTABLISHED, SYN_RECV or CLOSE_WAIT), from /proc/net/tcp;
# undef if that file cannot be read.
sub open_connections {
    my ($port) = @_;
    my $hex = sprintf '%04X', $port;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    my $n = 0;
    while (my $l = <$fh>) {
        my @f = split ' ', $l;
        next unless @f > 3 && $f[1] =~ /:$hex$/;
        $n++ if $f[3] eq '01' || $f[3] eq '03' || $f[3] eq '08';
    }
    return $n;
}

=head2 lock_resource($lock_file, what => '...', timeout => $s)

Takes an exclusive flock on C<$lock_file> (created if needed) and returns
its handle; the lock lasts until the handle is closed or the process
exits. If another process holds it, prints a diag once and waits, at most
C<timeout> seconds (default TEST_NGINX_LOCK_TIMEOUT or 1800), then dies.
Used so that concurrent test runs do not share a servroot or a port.

=cut

sub lock_resource {
    my ($file, %o) = @_;
    open my $fh, '>>', $file or croak "cannot open lock file $file: $!";
    return $fh if flock($fh, LOCK_EX | LOCK_NB);
    my $what = $o{what} // $file;
    Test::More::diag("waiting for $what: in use by another test run (lock $file)");
    my $timeout = $o{timeout} // $ENV{TEST_NGINX_LOCK_TIMEOUT} // 1800;
    wait_until(sub { flock($fh, LOCK_EX | LOCK_NB) }, timeout => $timeout, interval => 0.2)
        or croak "gave up waiting ${timeout}s for $what (lock $file)";
    return $fh;
}

# Lock file for a TCP port, shared by all checkouts on this machine.
sub port_lock_file {
    my ($port) = @_;
    return File::Spec->catfile(File::Spec->tmpdir, "test-nginx-port-$port.lock");
}

=head2 read_file($path)

Whole file content ('' if it does not exist).

=cut

sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return '';
    local $/;
    my $c = <$fh>;
    return $c // '';
}

=head2 find_alerts($log_text, %opt)

Returns the offending lines of an nginx error log: C<[alert]>, C<[crit]>,
C<[emerg]> lines and worker crashes (C<exited on signal>, C<core dumped>).
C<allow =E<gt> ['emerg', ...]> tolerates those levels (crash lines are
always reported).

=cut

sub find_alerts {
    my ($text, %o) = @_;
    my %allow = map { $_ => 1 } @{ $o{allow} || [] };
    my @levels = grep { !$allow{$_} } qw(alert crit emerg);
    my $lvl = @levels ? join('|', @levels) : undef;
    my @bad;
    for my $line (split /\n/, $text // '') {
        if ((defined $lvl && $line =~ /\[(?:$lvl)\]/)
            || $line =~ /exited on signal|core dumped/)
        {
            push @bad, $line;
        }
    }
    return @bad;
}

=head2 check_no_alerts($log_text, $test_name, %opt)

One test assertion: passes if C<find_alerts> finds nothing, otherwise fails
and prints the offending lines. Returns the assertion's result.

=cut

sub check_no_alerts {
    my ($text, $name, %o) = @_;
    $name //= 'no [alert], [crit], [emerg] or crash in error.log';
    my @bad = find_alerts($text, %o);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = Test::More::ok(!@bad, $name);
    Test::More::diag(join "\n", 'offending error.log lines:', _cap_lines(\@bad))
        if @bad;
    return $ok;
}

sub _cap_lines {
    my ($lines, $max) = @_;
    $max ||= 30;
    my @l = @$lines;
    if (@l > $max) {
        my $n = @l - $max;
        @l = (@l[0 .. $max - 1], "... ($n more lines)");
    }
    return @l;
}

=head2 valgrind_errors($log_text, $frame_re)

Parses one valgrind log and returns the error records (each a string) of
kind "Invalid read/write", "uninitialised" or "definitely lost" whose text
matches C<$frame_re> (default: TEST_NGINX_SANITIZER_FRAME_RE or
C<ngx_http_llm>).

=cut

sub valgrind_errors {
    my ($text, $frame_re) = @_;
    $frame_re //= $FrameRe;
    my (@records, @cur);
    for my $line (split /\n/, $text // '') {
        if ($line =~ /^==\d+==\s*$/) {               # record separator
            push @records, join("\n", @cur) if @cur;
            @cur = ();
            next;
        }
        push @cur, $line if $line =~ /^==\d+==/;
    }
    push @records, join("\n", @cur) if @cur;
    my @bad;
    for my $r (@records) {
        my ($head) = split /\n/, $r;
        next unless $head =~ /Invalid (?:read|write)|uninitialised|definitely lost/;
        next unless $r =~ /$frame_re/;
        push @bad, $r;
    }
    return @bad;
}

=head2 asan_errors($log_text, $frame_re)

Parses one sanitizer log file and returns what counts as errors: the
whole report if it has an AddressSanitizer error (or any other unexpected
C<ERROR:>), every UBSan C<runtime error:> with its stack, and the
LeakSanitizer leak records whose stack matches C<$frame_re> (default as
for C<valgrind_errors>).

=cut

sub asan_errors {
    my ($text, $frame_re) = @_;
    $frame_re //= $FrameRe;
    return () unless defined $text && $text =~ /\S/;
    my @errors = $text =~ /^==\d+==\s*ERROR: (.*)$/mg;
    my @bad;
    if (grep { !/^LeakSanitizer: detected memory leaks/ } @errors) {
        push @bad, $text;
        return @bad;
    }
    while ($text =~ /^(.*runtime error:.*\n(?:[ \t]+#\d+ .*\n)*)/mg) {
        push @bad, $1;
    }
    for my $rec (split /\n(?=(?:Direct|Indirect) leak of )/, $text) {
        next unless $rec =~ /^(?:Direct|Indirect) leak of /;
        $rec =~ s/\n\s*\n.*//s;                # up to the blank line
        push @bad, $rec if $rec =~ /$frame_re/;
    }
    return @bad;
}

=head2 start_nginx(%opt)

Creates a fresh servroot, writes nginx.conf and starts nginx; waits until it
listens on its port and, with C<master>, until all its workers exist.
Dies with nginx's stderr and error log if it fails to start. Returns a
L</"SERVER HANDLE">. Options:

    name          used for the default servroot t/servroot-<name>
                  (default: <test file basename>-<counter>)
    servroot      directory (made absolute); locked (flock on
                  <servroot>.lock) while the handle lives, so that two
                  runs of the same test wait for each other
    port          default: a free port (an explicit one is locked too)
    master        bool, master_process on (default off)
    workers       worker_processes (default 1)
    log_level     default 'debug'
    main_config, http_config, config   text inserted in the template
    worker_connections   default 1024
    no_root_location   bool
    env           arrayref of env directives ('FOO', 'FOO=bar')
    load_modules  arrayref (default: TEST_NGINX_LOAD_MODULES)
    start_timeout seconds (default 20, x5 under valgrind, x3 under ASan)
    stop_timeout  seconds (default 10, x5 under valgrind)

=cut

sub start_nginx {
    my %o = @_;
    my $srv = Test::Nginx::LLM::Server->new(%o);
    $srv->prepare_servroot;
    $srv->start
        or croak "nginx '$srv->{name}' failed to start: $srv->{start_error}";
    return $srv;
}

=head2 build_request(%opt)

Builds the bytes of an HTTP request: C<method> (GET), C<uri> (/),
C<version> (HTTP/1.1), C<headers> (hashref name =E<gt> value|[values], or
arrayref of name =E<gt> value pairs), C<body>. Adds C<Host: localhost> and
C<Connection: close> unless given, and C<Content-Length> for a body unless
a Content-Length or Transfer-Encoding header is given. With
C<Transfer-Encoding: chunked> the body is chunk-encoded, unless it already
is valid chunked encoding.

=cut

sub build_request {
    my %o = @_;
    my $method  = $o{method}  // 'GET';
    my $uri     = $o{uri}     // '/';
    my $version = $o{version} // 'HTTP/1.1';
    my @h;
    my $hdrs = $o{headers};
    if (ref $hdrs eq 'HASH') {
        for my $k (sort keys %$hdrs) {
            my $v = $hdrs->{$k};
            push @h, [$k, $_] for (ref $v eq 'ARRAY' ? @$v : ($v));
        }
    } elsif (ref $hdrs eq 'ARRAY') {
        croak "headers arrayref must hold name => value pairs" if @$hdrs % 2;
        for (my $i = 0; $i < @$hdrs; $i += 2) {
            push @h, [$hdrs->[$i], $hdrs->[$i + 1]];
        }
    } elsif (defined $hdrs) {
        croak "headers must be a hashref or an arrayref";
    }
    my %has = map { (lc $_->[0] => $_->[1]) } @h;
    my $body = $o{body};
    my $chunked = defined $has{'transfer-encoding'}
        && $has{'transfer-encoding'} =~ /\bchunked\b/i;
    if ($chunked && defined $body && !is_chunked_encoding($body)) {
        $body = chunk_encode($body);
    }
    my $head = "$method $uri $version\r\n";
    $head .= "Host: localhost\r\n" unless exists $has{host};
    $head .= "Connection: close\r\n" unless exists $has{connection};
    $head .= "$_->[0]: $_->[1]\r\n" for @h;
    if (defined $body && !$chunked && !exists $has{'content-length'}
        && (length $body || $method =~ /^(?:POST|PUT|PATCH)$/))
    {
        $head .= 'Content-Length: ' . length($body) . "\r\n";
    }
    return $head . "\r\n" . ($body // '');
}

=head2 chunk_encode($body)

Encodes C<$body> as one data chunk plus the last chunk.

=cut

sub chunk_encode {
    my ($body) = @_;
    return "0\r\n\r\n" unless length $body;
    return sprintf("%x\r\n", length $body) . $body . "\r\n0\r\n\r\n";
}

# True if $data is exactly one complete chunked-encoded body.
sub is_chunked_encoding {
    my ($data) = @_;
    return 0 unless length $data;
    my $p = Test::Nginx::LLM::ResponseParser->new(body_only => 'chunked');
    $p->feed($data, 0);
    return $p->{complete} && !$p->{error} && $p->{buf} eq '' ? 1 : 0;
}

=head2 http_request(%opt)

Sends one request to 127.0.0.1 and reads the response. Options: C<port>
(required), C<host> (127.0.0.1), C<method>, C<uri>, C<version>,
C<headers>, C<body> (see C<build_request>), or C<raw> (bytes sent
verbatim instead); C<timeout> (seconds without any progress, i.e. between
two successive socket events, like the real Test::Nginx; default
TEST_NGINX_TIMEOUT or 10, x5 under valgrind); C<total_timeout> (cap on the
whole exchange, default 3 x timeout); C<on_data> (see C<http_stream>).

Returns a hashref (blessed into Test::Nginx::LLM::Response, whose
C<$res-E<gt>header('Name')> gives all values of a header joined by ", ",
or undef):

    status     status code (undef if no valid status line was read)
    reason, protocol
    headers    { lowercased name => [values] }
    raw_headers  status line and header lines as received
    body       decoded body (chunked transfer encoding removed)
    chunks     [[time, data], ...] each decoded chunk (chunked responses)
    trailers   { lowercased name => [values] }
    raw        every byte received
    reads      [[time, bytes], ...] each read from the socket
    t_start, t_first_byte, t_end   Time::HiRes times
    complete   1 if the response was complete (length/chunks/EOF)
    timed_out  1 if the timeout expired first
    aborted    1 if on_data asked to stop
    error      description of a connect/write/protocol error, or undef

The read loop ends when the message is complete (Content-Length reached,
last chunk read, or EOF when there is no length), so it works with
keep-alive connections too.

=cut

sub http_request {
    my %o = @_;
    my $port = $o{port} // croak "http_request: port is required";
    my $host = $o{host} // '127.0.0.1';
    my $timeout = $o{timeout} // $DefaultTimeout * slow_factor();
    my $req = defined $o{raw} ? $o{raw} : build_request(%o);
    my $method = $o{method};
    if (!defined $method) {
        ($method) = $req =~ /^\s*(\S+)/;
        $method //= 'GET';
    }

    my $t0 = time;
    my $hard_deadline = $t0 + ($o{total_timeout} // 3 * $timeout);
    my $deadline = $t0 + $timeout;
    my $progress = sub {          # idle deadline moves on each I/O event
        my $d = time + $timeout;
        $deadline = $d < $hard_deadline ? $d : $hard_deadline;
    };
    my $res = {
        status => undef, reason => undef, protocol => undef,
        headers => {}, raw_headers => '', body => '', chunks => [],
        trailers => {}, raw => '', reads => [], t_start => $t0,
        t_first_byte => undef, t_end => undef,
        complete => 0, timed_out => 0, aborted => 0, error => undef,
    };
    bless $res, 'Test::Nginx::LLM::Response';

    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                     Proto => 'tcp', Timeout => $timeout);
    if (!$sock) {
        $res->{error} = "cannot connect to $host:$port: " . ($@ || $!);
        $res->{t_end} = time;
        return $res;
    }
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $parser = Test::Nginx::LLM::ResponseParser->new(
        head_request => ($method eq 'HEAD'), on_data => $o{on_data});
    my $sel = IO::Select->new($sock);
    my ($off, $len, $eof) = (0, length $req, 0);

    my $read_some = sub {
        my $n = sysread($sock, my $buf, 65536);
        if (!defined $n) {
            return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $res->{error} //= "read error: $!";
            $eof = 1;
            return 0;
        }
        if ($n == 0) {
            $eof = 1;
            return 0;
        }
        my $now = time;
        $progress->();
        $res->{t_first_byte} //= $now;
        push @{ $res->{reads} }, [$now, $buf];
        $res->{raw} .= $buf;
        $parser->feed($buf, $now);
        return 1;
    };

    # Send the request; read anything the server sends meanwhile (it may
    # answer early, e.g. 413, and close).
    while ($off < $len && !$eof && !$parser->done) {
        my $left = $deadline - time;
        if ($left <= 0) { $res->{timed_out} = 1; last }
        my ($r, $w) = IO::Select->select($sel, $sel, undef, $left);
        if ($r && @$r) { $read_some->() }
        if ($w && @$w && !$eof) {
            my $n = syswrite($sock, $req, 65536, $off);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $res->{write_error} = "write error after $off of $len bytes: $!";
                last;
            }
            $off += $n;
            $progress->();
        }
    }

    # Read the response.
    while (!$eof && !$parser->done && !$res->{timed_out}) {
        my $left = $deadline - time;
        if ($left <= 0) { $res->{timed_out} = 1; last }
        my @r = $sel->can_read($left);
        next unless @r;
        $read_some->();
    }
    close $sock;

    $parser->eof if $eof && !$parser->done;
    $res->{t_end} = time;
    $res->{$_} = $parser->{$_}
        for qw(status reason protocol headers raw_headers body chunks trailers);
    $res->{complete} = $parser->{complete} ? 1 : 0;
    $res->{aborted}  = $parser->{stopped} ? 1 : 0;
    $res->{error} //= $parser->{error};
    if (!$res->{complete} && !$res->{aborted}) {
        if ($res->{timed_out}) {
            $res->{error} //= time >= $hard_deadline - 0.001
                ? 'client gave up: total timeout of '
                  . sprintf('%.3g', $hard_deadline - $t0) . 's reached'
                : "client socket timed out (no data for ${timeout}s)";
        } elsif ($res->{write_error}) {
            $res->{error} //= $res->{write_error};
        } else {
            $res->{error} //= 'connection closed before the response was complete';
        }
    }
    return $res;
}

=head2 http_stream(%opt)

Like C<http_request> (same options and result) but C<on_data> is
required: C<on_data-E<gt>($decoded_data, $time)> is called for the body
bytes decoded from each socket read as soon as they arrive (chunked
encoding is decoded incrementally). Return true to go on reading, false to
stop and close the connection (C<aborted> is then set). This lets a test
look at the first SSE event before the server has sent the next one.

=cut

sub http_stream {
    my %o = @_;
    croak "http_stream: on_data is required" unless ref $o{on_data} eq 'CODE';
    return http_request(%o);
}

=head2 http2_request(%opt)

Like C<http_request> (C<port>, C<raw>, C<timeout>) over HTTP/2 without
TLS (prior knowledge), sent by curl as the real Test::Nginx does for
C<--- http2>. The HTTP/1.1 text in C<raw> says what is sent: its method,
URI, headers (but C<Host>, which curl sends as C<:authority>, and
C<Connection>) and body. A C<Transfer-Encoding: chunked> request is sent
with the body decoded and no length: HTTP/2's frames carry a body of
unknown length. The result has the fields of C<http_request>'s but
C<chunks> and C<reads> (empty): curl gives the whole response.

=cut

sub http2_request {
    my %o = @_;
    my $port = $o{port} // croak "http2_request: port is required";
    croak "http2_request: on_data is not supported" if $o{on_data};
    my $timeout = $o{timeout} // $DefaultTimeout * slow_factor();
    my $req = defined $o{raw} ? $o{raw} : build_request(%o);
    my ($head, $body) = split /\r?\n\r?\n/, $req, 2;
    $body //= '';
    my ($first, @lines) = split /\r?\n/, $head;
    my ($method, $uri) = $first =~ m{^\s*(\S+)\s+(\S+)}
        or croak "http2_request: bad request line '$first'";

    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my @args = ('curl', '-sS', '--http2-prior-knowledge', '-X', $method,
                '-H', 'User-Agent:', '-H', 'Accept:',
                '--max-time', 3 * $timeout, '--connect-timeout', $timeout,
                '-D', "$dir/head", '-o', "$dir/body", '--stderr', "$dir/err");
    my ($chunked, $type) = (0, 0);
    for my $l (@lines) {
        my ($k, $v) = split /\s*:\s*/, $l, 2;
        $v //= '';
        next if $k =~ /^(?:connection|content-length)$/i;
        if ($k =~ /^transfer-encoding$/i) {
            $chunked = $v =~ /\bchunked\b/i;
            next;
        }
        $type = 1 if $k =~ /^content-type$/i;
        push @args, '-H', "$k: $v";
    }
    if ($chunked) {
        my $p = Test::Nginx::LLM::ResponseParser->new(body_only => 'chunked');
        $p->feed($body, 0);
        $body = $p->{body};
        push @args, '-H', 'Content-Length:';
    }
    if (length $body || $method eq 'POST' || $method eq 'PUT') {
        open my $fh, '>:raw', "$dir/req" or croak "cannot write $dir/req: $!";
        print $fh $body;
        close $fh;
        push @args, '--data-binary', "\@$dir/req";
        push @args, '-H', 'Content-Type:' unless $type;
    }
    push @args, "http://127.0.0.1:$port$uri";

    my $res = {
        status => undef, reason => '', protocol => undef,
        headers => {}, raw_headers => '', body => '', chunks => [],
        trailers => {}, raw => '', reads => [], t_start => time,
        t_first_byte => undef, t_end => undef,
        complete => 0, timed_out => 0, aborted => 0, error => undef,
    };
    bless $res, 'Test::Nginx::LLM::Response';

    my $rc = system(@args);
    $res->{t_end} = time;
    $res->{raw_headers} = read_file("$dir/head") // '';
    $res->{body} = read_file("$dir/body") // '';
    $res->{raw} = $res->{raw_headers} . $res->{body};
    if ($res->{raw_headers} =~ m{^(HTTP/\S+)\s+(\d{3})[^\n]*\n(.*?)\r?\n\r?\n}s) {
        ($res->{protocol}, $res->{status}) = ($1, $2);
        for my $l (split /\r?\n/, $3) {
            my ($k, $v) = split /\s*:\s*/, $l, 2;
            push @{ $res->{headers}{lc $k} }, $v // '';
        }
    }
    if ($rc == 0 && defined $res->{status}) {
        $res->{complete} = 1;
    } else {
        my $err = read_file("$dir/err") // '';
        $err =~ s/\s+$//;
        $res->{timed_out} = ($rc >> 8) == 28 ? 1 : 0;
        $res->{error} = "curl exited with " . ($rc >> 8) . ": $err";
    }
    return $res;
}

package Test::Nginx::LLM::Response;

sub header {
    my ($self, $name) = @_;
    my $v = $self->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

#############################################################################
# Incremental HTTP/1.x response parser.

package Test::Nginx::LLM::ResponseParser;

use strict;
use warnings;

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        buf => '', state => 'head', status => undef, reason => undef,
        protocol => undef, headers => {}, trailers => {}, raw_headers => '',
        body => '', chunks => [], complete => 0, error => undef,
        stopped => 0, remaining => 0, head_request => $o{head_request},
        on_data => $o{on_data},
    }, $class;
    if ($o{body_only}) {                      # only decode a chunked body
        $self->{state} = 'chunk_size';
    }
    return $self;
}

sub done { my $s = shift; $s->{complete} || $s->{error} || $s->{stopped} }

sub feed {
    my ($self, $data, $time) = @_;
    return if $self->done;
    $self->{buf} .= $data;
    my $decoded = '';
    while (!$self->{complete} && !$self->{error}) {
        my $st = $self->{state};
        if ($st eq 'head') {
            last unless $self->_parse_head;
        } elsif ($st eq 'length') {
            last unless length $self->{buf};
            my $take = substr($self->{buf}, 0, $self->{remaining}, '');
            $decoded .= $take;
            $self->{remaining} -= length $take;
            $self->{complete} = 1 if $self->{remaining} == 0;
        } elsif ($st eq 'eof') {
            $decoded .= $self->{buf};
            $self->{buf} = '';
            last;
        } elsif ($st eq 'chunk_size') {
            if ($self->{buf} =~ s/\A([0-9a-fA-F]+)[ \t]*(?:;[^\r\n]*)?\r\n//) {
                my $size = hex $1;
                if ($size == 0) {
                    $self->{state} = 'trailer';
                } else {
                    $self->{remaining} = $size;
                    $self->{state} = 'chunk_data';
                    push @{ $self->{chunks} }, [$time, ''];
                }
            } elsif ($self->{buf} =~ /\A[0-9a-fA-F]*(?:[ \t]*;[^\r\n]*)?\r?\z/
                     && length $self->{buf} < 4096)
            {
                last;                         # need more data
            } else {
                $self->_error('invalid chunked data (bad chunk size line: "'
                              . _excerpt($self->{buf}) . '")');
            }
        } elsif ($st eq 'chunk_data') {
            last unless length $self->{buf};
            my $take = substr($self->{buf}, 0, $self->{remaining}, '');
            $decoded .= $take;
            $self->{chunks}[-1][1] .= $take;
            $self->{remaining} -= length $take;
            $self->{state} = 'chunk_crlf' if $self->{remaining} == 0;
        } elsif ($st eq 'chunk_crlf') {
            last if length $self->{buf} < 2;
            if (substr($self->{buf}, 0, 2, '') ne "\r\n") {
                $self->_error('invalid chunked data (no CRLF after chunk data)');
            }
            $self->{state} = 'chunk_size';
        } elsif ($st eq 'trailer') {
            last unless $self->{buf} =~ s/\A([^\r\n]*)\r\n//;
            my $line = $1;
            if ($line eq '') {
                $self->{complete} = 1;
            } elsif ($line =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/) {
                push @{ $self->{trailers}{lc $1} }, $2;
            }
        } else {
            die "bad parser state $st";
        }
    }
    if (length $decoded) {
        $self->{body} .= $decoded;
        if ($self->{on_data}) {
            my $go = $self->{on_data}->($decoded, $time);
            $self->{stopped} = 1 if defined $go && !$go;
        }
    }
    return;
}

sub eof {
    my $self = shift;
    return if $self->done;
    if ($self->{state} eq 'eof') {
        $self->{complete} = 1;
    } elsif ($self->{state} eq 'head' && length $self->{buf}) {
        $self->_error('connection closed inside the response header: "'
                      . _excerpt($self->{buf}) . '"');
    } elsif ($self->{state} eq 'head') {
        $self->_error('connection closed without any response');
    } elsif ($self->{state} eq 'length') {
        $self->_error("connection closed with $self->{remaining} bytes of "
                      . 'the body (Content-Length) missing');
    } else {
        $self->_error('connection closed before the last chunk');
    }
}

sub _error { $_[0]{error} //= $_[1] }

sub _excerpt {
    my $s = substr($_[0], 0, 60);
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}

sub _parse_head {
    my $self = shift;
    if ($self->{buf} !~ /\AHTTP\//) {
        # not (yet) a status line
        return 0 if length $self->{buf} < 5 && "HTTP/" =~ /\A\Q$self->{buf}\E/;
        $self->{state} = 'eof';              # HTTP/0.9-like: all is body
        return 1;
    }
    my $end = index $self->{buf}, "\r\n\r\n";
    my $sep = 4;
    if ($end < 0) {
        $end = index $self->{buf}, "\n\n";
        $sep = 2;
    }
    return 0 if $end < 0;
    my $head = substr($self->{buf}, 0, $end + $sep, '');
    my @lines = split /\r?\n/, $head;
    my $status_line = shift @lines;
    if ($status_line !~ m{^(HTTP/\d+\.\d+)\s+(\d{3})(?:\s+(.*))?$}) {
        $self->_error("invalid status line: \"$status_line\"");
        return 0;
    }
    my ($proto, $code, $reason) = ($1, $2, $3 // '');
    my %h;
    my $last;
    for my $l (@lines) {
        if ($l =~ /^[ \t]+(.*)$/ && defined $last) {     # obsolete folding
            $h{$last}[-1] .= " $1";
            next;
        }
        if ($l =~ /^([^:]+?)\s*:\s*(.*?)\s*$/) {
            $last = lc $1;
            push @{ $h{$last} }, $2;
        }
    }
    if ($code >= 100 && $code < 200 && $code != 101) {
        return 1;                     # interim response: parse the next one
    }
    $self->{raw_headers} = $head;
    @$self{qw(protocol status reason headers)} = ($proto, $code + 0, $reason, \%h);
    my $te = join ',', @{ $h{'transfer-encoding'} || [] };
    my $cl = $h{'content-length'} ? $h{'content-length'}[0] : undef;
    if ($self->{head_request} || $code == 204 || $code == 304) {
        $self->{complete} = 1;
    } elsif ($te =~ /\bchunked\b/i) {
        $self->{state} = 'chunk_size';
    } elsif (defined $cl && $cl =~ /^\s*(\d+)\s*$/) {
        $self->{remaining} = $1;
        $self->{state} = 'length';
        $self->{complete} = 1 if $1 == 0;
    } else {
        $self->{state} = 'eof';
    }
    return 1;
}

#############################################################################
# One nginx instance.

package Test::Nginx::LLM::Server;

=head1 SERVER HANDLE

Returned by C<start_nginx> (also used by L<Test::Nginx::Socket>).

=over

=item ->port, ->servroot, ->html_dir, ->name, ->pid, ->conf_file

=item ->error_log(from =E<gt> $offset)

Content of F<logs/error.log> (from a byte offset, e.g. one taken earlier
with C<-E<gt>error_log_size>).

=item ->stderr

Content of F<logs/stderr.log>.

=item ->worker_pids

Pids of the current worker processes (master mode; not those that are
shutting down after a reload). In single-process mode: the nginx pid.

=item ->is_alive

True while nginx runs (reaps it if it exited).

=item ->wait_for_log($regex, timeout =E<gt> $s, from =E<gt> $offset)

Polls the error log until it matches; returns true/false.

=item ->reload(%changes)

Master mode only (nginx cannot really reconfigure in single-process mode:
the new cycle gets no connections). Optionally updates C<main_config>,
C<http_config>, C<config>, C<workers>, rewrites nginx.conf, sends SIGHUP
and waits (bounded) until the reload is done: the expected number of new
workers runs and every old worker has exited or is "shutting down" (it
then no longer accepts connections, so the next request is served by the
new configuration). Pass C<wait_old =E<gt> 1> to wait until the old
workers have exited. Returns false (and sets C<$srv-E<gt>{reload_error}>,
also printed as a diag) if nginx logged an C<[emerg]>, died, or did not
finish in time (C<quiet =E<gt> 1>: no diag).

=item ->stop(timeout =E<gt> $s, drain_timeout =E<gt> $s)

First waits (at most C<drain_timeout>, default 5 s; 0 disables) until nginx
has no open client connection on its port left, so that requests in
progress finish (log phase, pool cleanups) even in single-process mode,
where SIGQUIT exits at once. Then sends SIGQUIT and waits for nginx to exit;
after C<timeout> (default 10 s) kills it with SIGKILL and records that as a
problem. Returns true if nginx exited by itself with status 0.

=item ->problems(%opt)

After C<stop>: the list of problems found: C<[alert]/[crit]/[emerg]> or
crash lines in the error log and stderr (C<allow =E<gt> [levels]> or
C<allow_alert =E<gt> 1> to skip the level check), a non-zero exit status or
death by signal, having needed SIGKILL, valgrind errors and ASan reports.

=item ->check_clean($test_name, %opt)

One assertion: no C<problems> (stops nginx first; an nginx that was
already gone counts as a problem).

=back

=cut

use strict;
use warnings;

use Carp qw(croak);
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(time sleep);

my %Live;        # pid => weakened handle, for cleanup at exit
my $Counter = 0;
my $OwnerPid = $$;

sub new {
    my ($class, %o) = @_;
    my $self = bless {}, $class;
    my $base = File::Basename::basename($0);
    $base =~ s/\.t$//;
    $base =~ s/[^\w.-]+/_/g;
    $self->{name} = $o{name} // ($base . '-' . ++$Counter);
    my $root = $o{servroot} // "t/servroot-$self->{name}";
    $root = File::Spec->rel2abs($root);
    $root =~ s{/+$}{};
    $self->{servroot} = $root;
    $self->{port}     = $o{port} // Test::Nginx::LLM::free_port();
    $self->{master}   = $o{master} ? 1 : 0;
    $self->{workers}  = $o{workers} // 1;
    $self->{worker_connections} = $o{worker_connections} // 1024;
    $self->{log_level} = $o{log_level} // 'debug';
    $self->{no_root_location} = $o{no_root_location} ? 1 : 0;
    # HTTP/2 without TLS (prior knowledge): 'listen' (before 1.25.1) or
    # 'directive' ("http2 on;", 1.25.1 and later)
    $self->{http2}    = $o{http2} // '';
    $self->{env}      = $o{env} || [];
    $self->{load_modules} = $o{load_modules}
        || [grep { length } split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} // ''];
    $self->{binary}   = $o{binary} // Test::Nginx::LLM::nginx_binary();
    $self->{valgrind} = $o{valgrind} // $ENV{TEST_NGINX_USE_VALGRIND};
    $self->{asan}     = $o{asan} // $ENV{TEST_NGINX_USE_ASAN};
    my $f = $self->{valgrind} ? 5 : 1;
    # ASan's start-up (OpenSSL's initialisation, unwound malloc by malloc)
    # takes seconds, and many times that on a busy machine
    $self->{start_timeout} = $o{start_timeout}
                             // 20 * ($self->{asan} ? 3 : $f);
    $self->{stop_timeout}  = $o{stop_timeout}  // 10 * $f;
    $self->{drain_timeout} = $o{drain_timeout} // 5 * $f;
    $self->{$_} = $o{$_} // '' for qw(main_config http_config config);
    $self->{problems} = [];
    unless ($o{no_lock}) {
        $self->{locks} = [Test::Nginx::LLM::lock_resource("$root.lock",
                                                          what => "servroot $root")];
        push @{ $self->{locks} }, Test::Nginx::LLM::lock_resource(
            Test::Nginx::LLM::port_lock_file($self->{port}), what => "port $self->{port}")
            if defined $o{port};
    }
    return $self;
}

sub port      { $_[0]{port} }
sub servroot  { $_[0]{servroot} }
sub html_dir  { "$_[0]{servroot}/html" }
sub name      { $_[0]{name} }
sub pid       { $_[0]{pid} }
sub conf_file { "$_[0]{servroot}/conf/nginx.conf" }
sub log_dir   { "$_[0]{servroot}/logs" }
sub error_log_file { "$_[0]{servroot}/logs/error.log" }

sub error_log {
    my ($self, %o) = @_;
    my $c = Test::Nginx::LLM::read_file($self->error_log_file);
    return $o{from} ? substr($c, $o{from} < length $c ? $o{from} : length $c) : $c;
}

sub error_log_size { -s $_[0]->error_log_file || 0 }
sub stderr { Test::Nginx::LLM::read_file("$_[0]{servroot}/logs/stderr.log") }
sub access_log { Test::Nginx::LLM::read_file("$_[0]{servroot}/logs/access.log") }

# Values that $TEST_NGINX_* tokens get for this instance.
sub env_overrides {
    my $self = shift;
    return {
        TEST_NGINX_SERVER_PORT => $self->{port},
        TEST_NGINX_SERVROOT    => $self->{servroot},
        TEST_NGINX_SERVER_ROOT => $self->{servroot},   # the real module's name
        TEST_NGINX_HTML_DIR    => $self->html_dir,
    };
}

# Removes the servroot's generated subdirectories (never the servroot
# itself nor unknown files) and recreates conf/, logs/ and html/.
sub prepare_servroot {
    my ($self, %o) = @_;
    my $r = $self->{servroot};
    my @dirs = $o{logs_only} ? ("$r/logs")
             : ("$r/conf", "$r/logs", "$r/html", glob("$r/*_temp"),
                glob("$r/*_cache"));
    File::Path::remove_tree(@dirs) if grep { -e } @dirs;
    File::Path::make_path("$r/conf", "$r/logs", "$r/html");
    return 1;
}

sub conf_text {
    my $self = shift;
    my $r = $self->{servroot};
    my $over = $self->env_overrides;
    my ($main, $http, $server) = map { Test::Nginx::LLM::expand_env($self->{$_}, $over) }
                                 qw(main_config http_config config);
    my $c = "daemon off;\n";
    $c .= 'master_process ' . ($self->{master} ? 'on' : 'off') . ";\n";
    $c .= "worker_processes $self->{workers};\n";
    $c .= "user root;\n" if $> == 0 && $main !~ /^\s*user\s/m;
    $c .= "error_log $r/logs/error.log $self->{log_level};\n";
    $c .= "pid $r/logs/nginx.pid;\n";
    for my $e (@{ $self->{env} }) {
        $c .= "env " . ($e =~ /\s/ ? "'$e'" : $e) . ";\n";
    }
    $c .= "load_module $_;\n" for @{ $self->{load_modules} };
    $c .= "\n$main\n" if length $main;
    $c .= "\nevents {\n    worker_connections $self->{worker_connections};\n}\n\nhttp {\n";
    $c .= "    access_log $r/logs/access.log;\n";
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $http =~ /\b${t}_temp_path\b/;
        $c .= "    ${t}_temp_path $r/${t}_temp;\n";
    }
    $c .= "    default_type text/plain;\n    keepalive_timeout 65;\n";
    $c .= "\n$http\n" if length $http;
    my $h2 = $self->{http2};
    $c .= "\n    server {\n        listen 127.0.0.1:$self->{port}"
        . ($h2 eq 'listen' ? ' http2' : '') . ";\n"
        . ($h2 eq 'directive' ? "        http2 on;\n" : '')
        . "        server_name localhost;\n        client_max_body_size 30M;\n\n";
    $c .= "$server\n" if length $server;
    $c .= "\n        location / {\n            root html;\n"
        . "            index index.html;\n        }\n"
        unless $self->{no_root_location};
    $c .= "    }\n}\n";
    return $c;
}

sub write_conf {
    my $self = shift;
    my $text = $self->conf_text;
    File::Path::make_path("$self->{servroot}/conf");
    open my $fh, '>', $self->conf_file or croak "cannot write " . $self->conf_file . ": $!";
    print $fh $text;
    close $fh or croak "cannot write " . $self->conf_file . ": $!";
    return $text;
}

sub command {
    my $self = shift;
    my @cmd;
    if ($self->{valgrind}) {
        @cmd = ('valgrind', '--tool=memcheck', '--leak-check=full',
                '--show-possibly-lost=no', '--error-exitcode=0',
                '--keep-debuginfo=yes',    # modules are dlclose()d at exit
                "--log-file=$self->{servroot}/logs/valgrind.%p.log");
        push @cmd, '--suppressions=' . File::Spec->rel2abs('t/valgrind.suppress')
            if -f 't/valgrind.suppress';
    }
    push @cmd, $self->{binary}, '-p', "$self->{servroot}/", '-c', $self->conf_file;
    return @cmd;
}

# Stops an nginx left running in this servroot by an earlier (killed) run.
sub _kill_stale {
    my $self = shift;
    my $pidfile = "$self->{servroot}/logs/nginx.pid";
    my $pid = Test::Nginx::LLM::read_file($pidfile);
    return unless $pid =~ /^\s*(\d+)\s*$/;
    $pid = $1;
    return if $self->{pid} && $pid == $self->{pid};
    return unless _alive($pid);
    my $cmdline = Test::Nginx::LLM::read_file("/proc/$pid/cmdline");
    return unless $cmdline =~ /nginx|valgrind|memcheck/;
    Test::More::diag("stopping stale nginx (pid $pid) of $self->{servroot}");
    kill 'QUIT', $pid;
    Test::Nginx::LLM::wait_until(sub { !_alive($pid) }, timeout => 10)
        or kill 'KILL', $pid;
    Test::Nginx::LLM::wait_until(sub { !_alive($pid) }, timeout => 5);
}

sub _alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    my $stat = Test::Nginx::LLM::read_file("/proc/$pid/stat");
    return 0 if $stat =~ /\)\s+[ZX]\s/;     # zombie: as good as gone
    return 1;
}

# Child pids of $ppid with their cmdlines: [[pid, cmdline], ...].
sub _children {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return;
    for my $p (readdir $dh) {
        next unless $p =~ /^\d+$/;
        my $stat = Test::Nginx::LLM::read_file("/proc/$p/stat");
        next unless $stat =~ /\)\s+(\S)\s+(\d+)/;
        next unless $2 == $ppid && $1 ne 'Z';
        (my $cmd = Test::Nginx::LLM::read_file("/proc/$p/cmdline")) =~ s/\0+/ /g;
        push @kids, [$p, $cmd];
    }
    closedir $dh;
    return @kids;
}

sub worker_pids {
    my $self = shift;
    return () unless $self->{pid} && !$self->{reaped};
    return ($self->{pid}) unless $self->{master};
    my @kids = _children($self->{pid});
    my @w = grep { $_->[1] =~ /worker process/ && $_->[1] !~ /shutting down/ } @kids;
    # Under valgrind process titles are not visible: take every child that
    # is not a cache helper.
    @w = grep { $_->[1] !~ /cache (?:manager|loader)|shutting down/ } @kids
        if !@w && !grep { $_->[1] =~ /nginx:/ } @kids;
    return map { $_->[0] } @w;
}

# All children (workers, shutting-down workers, cache helpers).
sub _all_child_pids {
    my $self = shift;
    return () unless $self->{pid} && !$self->{reaped};
    return map { $_->[0] } _children($self->{pid});
}

# True if the shared object depends on the ASan runtime.
my %AsanBuilt;
sub _is_asan_built {
    my ($so) = @_;
    return $AsanBuilt{$so} //= do {
        my $c = Test::Nginx::LLM::read_file($so);
        index($c, 'libasan.so') >= 0 ? 1 : 0;
    };
}

sub _reap {
    my $self = shift;
    return 1 if $self->{reaped};
    return 0 unless $self->{pid};
    my $r = waitpid($self->{pid}, WNOHANG);
    return 0 if $r == 0;
    if ($r == $self->{pid}) {
        $self->{exit_status} = $?;
    } else {                       # -1: not our child any more (?)
        return 0 if _alive($self->{pid});
        $self->{exit_status} //= -1;
    }
    $self->{reaped} = 1;
    $self->{exit_code}   = $self->{exit_status} >= 0 ? $self->{exit_status} >> 8 : undef;
    $self->{exit_signal} = $self->{exit_status} >= 0 ? $self->{exit_status} & 127 : undef;
    $self->{core_dumped} = $self->{exit_status} >= 0 ? $self->{exit_status} & 128 : undef;
    delete $Live{ $self->{pid} };
    return 1;
}

sub is_alive {
    my $self = shift;
    return 0 unless $self->{pid};
    return !$self->_reap;
}

sub exit_description {
    my $self = shift;
    return 'still running' unless $self->{reaped};
    return 'unknown exit status' unless defined $self->{exit_code};
    my $d = $self->{exit_signal} ? "killed by signal $self->{exit_signal}"
                                 : "exit code $self->{exit_code}";
    $d .= ' (core dumped)' if $self->{core_dumped};
    return $d;
}

sub _spawn {
    my $self = shift;
    my @cmd = $self->command;
    my $log = "$self->{servroot}/logs/stderr.log";
    my $pid = fork;
    croak "fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        # child
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>>&', \*STDOUT or POSIX::_exit(126);
        if ($self->{asan}) {
            # ASan-built modules are preloaded too: nginx dlclose()s its
            # modules at exit, before LeakSanitizer symbolizes the stacks
            # of leaks ("<unknown module>" frames would never match).
            $ENV{LD_PRELOAD} = join ' ', $self->{asan},
                grep { _is_asan_built($_) } @{ $self->{load_modules} };
            # ASan and UBSan share their "common" flags when both are
            # loaded: whichever parses last wins. Give both the same ones
            # (same report file prefix too), then their specific ones.
            my $common = "detect_leaks=1:log_path=$self->{servroot}/logs/asan"
                . ':abort_on_error=0:exitcode=0:fast_unwind_on_malloc=0';
            $ENV{ASAN_OPTIONS} = "$common:detect_odr_violation=0"
                . ($ENV{ASAN_OPTIONS} ? ":$ENV{ASAN_OPTIONS}" : '');
            $ENV{UBSAN_OPTIONS} = "$common:print_stacktrace=1"
                . ($ENV{UBSAN_OPTIONS} ? ":$ENV{UBSAN_OPTIONS}" : '');
            if (-f 't/lsan.suppress') {
                $ENV{LSAN_OPTIONS} = 'suppressions=' . File::Spec->rel2abs('t/lsan.suppress')
                    . ($ENV{LSAN_OPTIONS} ? ":$ENV{LSAN_OPTIONS}" : '');
            }
        }
        # Have the kernel send SIGTERM to nginx if the test process dies.
        my %prctl = (x86_64 => 157, aarch64 => 167);
        my ($arch) = (POSIX::uname())[4];
        if (my $nr = $prctl{$arch // ''}) {
            syscall($nr, 1, 15, 0, 0, 0);     # PR_SET_PDEATHSIG, SIGTERM
        }
        { exec { $cmd[0] } @cmd; }
        print STDERR "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{reaped} = 0;
    delete @$self{qw(exit_status exit_code exit_signal core_dumped killed stop_ok)};
    $Live{$pid} = $self;
    weaken($Live{$pid});
    return $pid;
}

# True once $pid has created its epoll instance (nginx does that in its
# event module's init_process, after installing its signal handlers).
# Where /proc/PID/fd cannot be read, gives true.
sub _has_event_loop {
    my ($pid) = @_;
    opendir my $dh, "/proc/$pid/fd" or return 1;
    for my $fd (readdir $dh) {
        my $l = readlink "/proc/$pid/fd/$fd" // next;
        return 1 if $l =~ /eventpoll/;
    }
    return 0;
}

my %EpollSyscalls = (x86_64 => [232, 281, 441], aarch64 => [22, 441]);

# True while $pid is blocked in epoll_wait(), i.e. idle in its event loop.
# This is the readiness condition: the listening socket exists long
# before (during configuration), and in single-process mode a SIGQUIT
# that arrives after the handlers are installed but before the first
# epoll_wait() is only noticed at the next event, so nginx would hang.
# Uses /proc/PID/wchan, else /proc/PID/syscall, else the epoll fd check.
sub _in_event_loop {
    my ($pid) = @_;
    my $wchan = Test::Nginx::LLM::read_file("/proc/$pid/wchan");
    return 1 if $wchan =~ /epoll/;
    my $sc = Test::Nginx::LLM::read_file("/proc/$pid/syscall");
    if ($sc =~ /^(\d+)\s/) {
        my $nr = $1;
        my ($arch) = (POSIX::uname())[4];
        return (grep { $_ == $nr } @{ $EpollSyscalls{$arch // ''} || [] }) ? 1 : 0;
    }
    return 0 if $sc =~ /^running/ || ($wchan ne '' && $wchan ne '0');
    return _has_event_loop($pid);      # no usable /proc information
}

sub _ready {
    my $self = shift;
    return 0 unless Test::Nginx::LLM::port_listening($self->{port});
    return _in_event_loop($self->{pid}) unless $self->{master};
    my @w = $self->worker_pids;
    return 0 unless @w >= $self->{workers};
    return (grep { _in_event_loop($_) } @w) == @w ? 1 : 0;
}

sub _startup_report {
    my ($self, $msg) = @_;
    my $err = $self->stderr;
    my @log = split /\n/, $self->error_log;
    my @emerg = grep { /\[(?:emerg|alert|crit)\]/ } @log;
    @log = @log[-30 .. -1] if @log > 30;
    return join "\n", $msg,
        '--- stderr.log ---', ($err eq '' ? '(empty)' : $err),
        '--- error.log [emerg|alert|crit] lines ---', (@emerg ? @emerg : '(none)'),
        '--- error.log (last lines) ---', (@log ? @log : '(empty)'),
        '--- conf: ' . $self->conf_file;
}

=pod

C<-E<gt>start(expect_death =E<gt> 1)> is used for configurations that must
make nginx fail: it returns 'died' if nginx exited during startup and
'running' if it started (C<-E<gt>start> without it returns true/false and
sets C<start_error>).

=cut

sub start {
    my ($self, %o) = @_;
    croak "nginx $self->{name} is already running" if $self->is_alive;
    $self->{problems} = [];
    delete $self->{start_error};
    $self->_kill_stale;
    if (Test::Nginx::LLM::port_listening($self->{port})) {
        $self->{start_error} = "port $self->{port} is already in use "
            . "(another nginx or test still running?)";
        return $o{expect_death} ? 'port-busy' : 0;
    }
    $self->write_conf;
    $self->_spawn;
    my $state = Test::Nginx::LLM::wait_until(sub {
        return 'died' unless $self->is_alive;
        return $self->_ready ? 'running' : 0;
    }, timeout => $self->{start_timeout}, interval => 0.01);
    if ($o{expect_death}) {
        if (!$state) {          # neither died nor became ready in time
            $self->stop;
            $self->{start_error} = "nginx neither died nor became ready within "
                . "$self->{start_timeout}s";
            return 'timeout';
        }
        return $state;
    }
    if (!$state) {
        $self->{start_error} = $self->_startup_report(
            "nginx did not become ready (port $self->{port}"
            . ($self->{master} ? ", $self->{workers} workers" : '')
            . ") within $self->{start_timeout}s");
        $self->stop;
        return 0;
    }
    if ($state eq 'died') {
        $self->{start_error} = $self->_startup_report(
            'nginx exited during startup: ' . $self->exit_description);
        return 0;
    }
    return 1;
}

sub wait_for_log {
    my ($self, $re, %o) = @_;
    my $from = $o{from} // 0;
    $re = qr/$re/ unless ref $re;
    return Test::Nginx::LLM::wait_until(
        sub { $self->error_log(from => $from) =~ $re },
        timeout => $o{timeout} // 10 * Test::Nginx::LLM::slow_factor(),
        interval => $o{interval} // 0.02);
}

sub reload {
    my ($self, %o) = @_;
    delete $self->{reload_error};
    croak "reload: nginx $self->{name} is not running" unless $self->is_alive;
    croak "reload: needs master mode (start_nginx(master => 1))" unless $self->{master};
    for my $k (qw(main_config http_config config workers)) {
        $self->{$k} = $o{$k} if exists $o{$k};
    }
    # (a reload reads the configuration again: as slow as a start)
    my $timeout = $o{timeout}
                  // 20 * ($self->{asan} ? 3 : Test::Nginx::LLM::slow_factor());
    my $pos = $self->error_log_size;
    my @old = $self->_all_child_pids;
    my %old = map { $_ => 1 } @old;
    $self->write_conf;
    kill 'HUP', $self->{pid};
    my $failed = sub {
        (grep { /\[emerg\]/ } split /\n/, $self->error_log(from => $pos))[0];
    };
    # An old worker is out once it exited or set its title to "... is
    # shutting down" (right before closing its listening sockets). Under
    # valgrind titles are not visible: then it must have exited.
    my $retired = sub {
        my ($pid) = @_;
        return 1 unless _alive($pid);
        return 0 if $o{wait_old};
        (my $cmd = Test::Nginx::LLM::read_file("/proc/$pid/cmdline")) =~ s/\0+/ /g;
        return $cmd =~ /shutting down/ ? 1 : 0;
    };
    my $ok = Test::Nginx::LLM::wait_until(sub {
        return 'failed' if $failed->() || !$self->is_alive;
        my @new = grep { !$old{$_} } $self->worker_pids;
        return 0 unless @new >= $self->{workers};
        return 0 if grep { !_in_event_loop($_) } @new;
        return 0 if grep { !$retired->($_) } @old;
        return 'ok';
    }, timeout => $timeout, interval => 0.01);
    if (!$ok || $ok ne 'ok') {
        my $why = !$ok ? "reload did not complete within ${timeout}s"
                : !$self->is_alive ? 'nginx died during reload: ' . $self->exit_description
                : 'reload failed: ' . ($failed->() // '?');
        $self->{reload_error} = $why;
        Test::More::diag("nginx $self->{name}: $why") unless $o{quiet};
        return 0;
    }
    return 1;
}

sub stop {
    my ($self, %o) = @_;
    return $self->{stop_ok} if !$self->{pid} || $self->{reaped} && exists $self->{stop_ok};
    if ($self->{reaped}) {                  # exited on its own before stop
        push @{ $self->{problems} },
            'nginx exited before it was stopped: ' . $self->exit_description
            unless $o{expect_exited};
        $self->{stop_ok} = 0;
        return 0;
    }
    my $timeout = $o{timeout} // $self->{stop_timeout};
    # Let requests in progress finish first (their log phase and pool
    # cleanups run), even in single-process mode where SIGQUIT exits at once.
    my $drain = $o{drain_timeout} // $self->{drain_timeout};
    Test::Nginx::LLM::wait_until(sub {
        !$self->is_alive || !Test::Nginx::LLM::open_connections($self->{port})
    }, timeout => $drain, interval => 0.01) if $drain > 0;
    my @kids = $self->_all_child_pids;
    return $self->stop(%o) if $self->{reaped};
    kill 'QUIT', $self->{pid};
    # SIGQUIT is re-sent every second: a signal that nginx received
    # outside epoll_wait() can go unnoticed until the next event.
    my $next_quit = time + 1;
    my $ok = Test::Nginx::LLM::wait_until(sub {
        return 1 if $self->_reap;
        if (time >= $next_quit) {
            kill 'QUIT', $self->{pid};
            $next_quit = time + 1;
        }
        return 0;
    }, timeout => $timeout, interval => 0.005);
    if (!$ok) {
        push @{ $self->{problems} },
            "nginx (pid $self->{pid}) did not exit within ${timeout}s after SIGQUIT; "
            . 'sent SIGKILL';
        @kids = (@kids, $self->_all_child_pids);
        kill 'KILL', $self->{pid}, @kids;
        Test::Nginx::LLM::wait_until(sub { $self->_reap }, timeout => 10, interval => 0.01)
            or waitpid($self->{pid}, 0);
        $self->_reap;
        $self->{killed} = 1;
    }
    # workers normally exit before the master; make sure none is left
    if (@kids && !Test::Nginx::LLM::wait_until(sub { !grep { _alive($_) } @kids },
                                               timeout => 5))
    {
        my @left = grep { _alive($_) } @kids;
        push @{ $self->{problems} }, "nginx child processes left behind: @left; killed";
        kill 'KILL', @left;
    }
    $self->{stop_ok} = !$self->{killed} && !$self->{exit_status} ? 1 : 0;
    if (!$self->{killed} && $self->{exit_status} && !$o{expect_exited}) {
        push @{ $self->{problems} }, 'nginx exited with ' . $self->exit_description;
    }
    return $self->{stop_ok};
}

sub valgrind_report {
    my $self = shift;
    my @bad;
    for my $f (sort glob("$self->{servroot}/logs/valgrind.*.log")) {
        push @bad, map { "$f:\n$_" } Test::Nginx::LLM::valgrind_errors(
            Test::Nginx::LLM::read_file($f));
    }
    return @bad;
}

sub asan_report {
    my $self = shift;
    my @bad;
    for my $f (sort glob("$self->{servroot}/logs/asan.*")) {
        for my $e (Test::Nginx::LLM::asan_errors(Test::Nginx::LLM::read_file($f))) {
            $e = substr($e, 0, 16000) . "\n... (truncated)" if length $e > 16000;
            push @bad, "$f:\n$e";
        }
    }
    push @bad, $self->_sanitizer_lines_in_logs;
    return @bad;
}

# nginx redirects its stderr into error.log once started, so sanitizer
# output written to stderr (UBSan's, in particular) ends up there.
sub _sanitizer_lines_in_logs {
    my $self = shift;
    my @bad;
    for my $f (['error.log', $self->error_log], ['stderr.log', $self->stderr]) {
        my ($fname, $text) = @$f;
        while ($text =~ /^(.*(?:runtime error:|ERROR: AddressSanitizer).*\n(?:[ \t]*#\d+ .*\n){0,30})/mg) {
            push @bad, "$fname:\n$1";
        }
    }
    return @bad;
}

sub problems {
    my ($self, %o) = @_;
    my @allow = @{ $o{allow} || [] };
    @allow = qw(alert crit emerg) if $o{allow_alert};
    my @p = @{ $self->{problems} };
    my $log = $self->error_log . "\n" . $self->stderr;
    my @bad = Test::Nginx::LLM::find_alerts($log, allow => \@allow);
    push @p, join "\n", 'error.log/stderr.log:',
        Test::Nginx::LLM::_cap_lines(\@bad) if @bad;
    push @p, map { "valgrind: $_" } $self->valgrind_report if $self->{valgrind};
    push @p, map { "Sanitizer: $_" } $self->{asan} ? $self->asan_report
                                                  : $self->_sanitizer_lines_in_logs;
    return @p;
}

sub check_clean {
    my ($self, $name, %o) = @_;
    $name //= "nginx $self->{name}: no alerts, crashes or sanitizer reports";
    $self->stop;      # records an unexpected exit if nginx is already gone
    my @p = $self->problems(%o);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = Test::More::ok(!@p, $name);
    Test::More::diag(join "\n", @p) if @p;
    return $ok;
}

sub DESTROY {
    my $self = shift;
    local ($@, $!, $?);
    return unless $$ == $OwnerPid;
    $self->stop(timeout => 5) if $self->{pid} && !$self->{reaped};
}

sub _cleanup_all {
    return unless $$ == $OwnerPid;
    for my $srv (grep { defined } values %Live) {
        $srv->stop(timeout => 5) if $srv->{pid} && !$srv->{reaped};
    }
}

END {
    local ($@, $!);
    my $status = $?;
    _cleanup_all();
    $? = $status;
}

# Make SIGINT/SIGTERM run END blocks (and so stop nginx) unless the test
# installed its own handlers.
for my $sig (qw(INT TERM)) {
    $SIG{$sig} = sub { _cleanup_all(); exit 128 + ($sig eq 'INT' ? 2 : 15) }
        if !defined $SIG{$sig} || $SIG{$sig} eq '' || $SIG{$sig} eq 'DEFAULT';
}

1;
