package Test::Nginx::Socket;

=head1 NAME

Test::Nginx::Socket - our small implementation of the Test::Nginx::Socket API

=head1 SYNOPSIS

    # t/010-example.t
    use Test::Nginx::Socket 'no_plan';   # or: plan tests => ... (see below)

    repeat_each(1);     # run every block this many times
    no_shuffle();       # run blocks in file order (default: shuffled)
    # workers(2); master_on(); log_level('info'); no_root_location();

    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t {
            echo "hello, $http_x_foo";
        }
    --- more_headers
    X-Foo: bar
    --- request
    GET /t
    --- response_body
    hello, bar
    --- no_error_log
    [error]

=head1 DESCRIPTION

A compatible subset of the CPAN/openresty L<Test::Nginx::Socket>, built on
L<Test::Base> (blocks come from the test file's C<__DATA__>, Test::Base
filters such as C<--- request eval> or C<--- response_body chomp> work, as do
C<--- ONLY>, C<--- SKIP> and C<--- LAST>) and on L<Test::Nginx::LLM> (process
control and the HTTP client). Tests written for it are valid for the real
module, except for our own additions (C<--- wait_for_log>,
C<--- allow_alert>) and the plan counts (one extra assertion per block, see
L</"WHAT COUNTS AS ONE TEST">).

For every block (and every repetition of it, see C<repeat_each>) the
harness: recreates C<conf/>, C<logs/> and C<html/> in the servroot, writes
C<--- user_files>, writes C<conf/nginx.conf> (template in
L<Test::Nginx::LLM/"GENERATED nginx.conf">), starts nginx as a child process
(C<daemon off>) and waits until it listens (and, with C<master_on>, until its
workers run), sends the request, checks the response, stops nginx with
SIGQUIT (waits for it to exit; SIGKILL and failure after 10 s), then checks
the error log (so log-phase and shutdown messages are always there), and
finally checks that nothing went wrong globally: no C<[alert]>, C<[crit]>,
C<[emerg]> line or worker crash in error.log/stderr, a clean exit of nginx,
and no valgrind/ASan report (when enabled).

If nginx fails to start, the first assertion of the block fails with its
stderr and error log shown and the other assertions of the block are
skipped (so the plan still adds up).

=head1 EXPORTED FUNCTIONS

C<run_tests>, C<repeat_each(N)>, C<no_shuffle>, C<workers(N)>,
C<master_on>, C<master_off>, C<master_process_enabled(bool)>,
C<log_level('debug')>, C<no_long_string>, C<no_root_location>,
C<add_block_preprocessor(sub { my $block = shift; ... })> (run before each
block; may call C<$block-E<gt>set_value(name =E<gt> value)>),
C<env_to_nginx('FOO', 'BAR=1')> (C<env> directives), C<server_port>,
C<server_root>, C<html_dir>, C<timeout(seconds)>, C<bail_out>, and from
Test::Base/Test::More: C<plan>, C<blocks>, C<is>, C<ok>, C<like>, C<diag>,
C<pass>, C<fail>, ...

=head1 SECTIONS

=over

=item main_config, http_config, config

Inserted in the main context, in C<http {}> and in the C<server {}> block.

=item user_files

Files created under html_dir before nginx starts:

    --- user_files
    >>> index.html
    <p>hi</p>
    >>> sub/a.txt
    aaa

(or C<eval> returning C<[[name =E<gt> content], ...]>).

=item log_level

Per-block error_log level (default: C<log_level()> or C<debug>).

=item request

C<METHOD URI [HTTP/1.x]> on the first line (leading blank and C<#> comment
lines are skipped); what follows is the body. Exactly as the real module:
leading and trailing whitespace of the body is removed and a
C<Content-Length> header is added (unless more_headers has one). With
C<Transfer-Encoding: chunked> in more_headers, a body that already is valid
chunked encoding is sent verbatim, any other body is chunk-encoded for you.
C<Host: localhost> and C<Connection: close> are added unless given.

Several requests, one after the other on new connections to the same
nginx (as the real module): C<--- request eval> returning an array,
C<["GET /a", "POST /b\nbody"]>. Then every response section given must be
an array with one element per request (C<--- error_code eval [200, 429]>,
C<--- response_body_like eval [...]>; a single value is refused, as the
real module bails out), C<more_headers> may be one such array, and the
log sections are checked after each request as well as at the end (so a
pattern in C<error_log> must be there from the first request on).
Assertion names end in C<(req N)>, N from 0.

=item raw_request

Bytes sent verbatim (usually with C<eval>).

=item http2

The server listens for HTTP/2 without TLS (C<listen ... http2>, or
C<http2 on;> from nginx 1.25.1) and the requests of the block are sent by
curl with C<--http2-prior-knowledge>, as the real module does. A
C<Transfer-Encoding: chunked> request goes without a length (HTTP/2 has
no chunked encoding). Not with C<raw_request> (refused, as by the real
module).

=item more_headers

Extra request headers, one C<Name: value> per line (C<#> lines skipped);
with several requests, an array of such texts, one per request.

=item timeout

Client timeout in seconds (C<0.5>, C<500ms>), as in the real module the
longest wait between two socket events (default C<timeout()>,
TEST_NGINX_TIMEOUT or 10; x5 under valgrind); the whole exchange is also
capped at 3 times that. A timeout makes the status check fail, unless
C<--- abort> is given.

=item abort, ignore_response

C<abort>: a client timeout is expected, not a failure. C<ignore_response>:
no response checks at all.

=item error_code, error_code_like

Expected status (exact, or a regex). Without either, 200 is expected (like
the real module). The status check also fails if the response was
incomplete or malformed (premature close, bad chunked encoding, timeout).

=item response_headers

One header per line: C<Name: value> (the values of a repeated header are
joined by C<, >), C<!Name> (must be absent), C<Name:> (present and empty).

=item response_headers_like

C<Name: regex> per line (anchored: C<^regex$>).

=item raw_response_headers_like, raw_response_headers_unlike

Regex (C</s>) on the raw status line and headers.

=item response_body

Exact body (decoded). With C<eval> it may be a C<qr//>. Differences are
shown as an excerpt around the first differing byte, or in full after
C<no_long_string()>.

=item response_body_like, response_body_unlike

Regex applied with C</s> semantics (the section text, including a trailing
newline unless you use C<chomp>; or a C<qr//> via C<eval>).

=item error_log, no_error_log

One pattern per non-empty line: a substring that must (not) appear in
error.log (stderr.log included). With C<eval>: a C<qr//> or an arrayref of
strings and C<qr//>s. Checked after nginx stopped (and, with several
requests, after each request but the last, while nginx runs).

=item shutdown_error_log, no_shutdown_error_log

Same as error_log/no_error_log (the log is always read after shutdown).

=item grep_error_log, grep_error_log_out

Every error.log line matching the pattern (substring, or C<qr//> via eval)
contributes the matched text plus "\n"; the result must equal
grep_error_log_out (or match it if that is a C<qr//>).

=item access_log, no_access_log

Like error_log/no_error_log, on access.log.

=item wait_for_log (ours)

A regex: after the response, poll error.log until it matches (bounded by the
block timeout). Use it for log-phase or timer effects.

=item wait

Seconds to sleep after the response (real Test::Nginx; prefer
wait_for_log).

=item must_die

nginx must fail to start (optionally: with this exit code). No request is
sent; error_log/no_error_log still apply ([emerg] lines are expected).

=item allow_alert (ours)

Do not fail the block for C<[alert]>/C<[crit]>/C<[emerg]> lines (crashes,
unclean exits and sanitizer reports still fail). An C<error_log> pattern
containing C<[alert>, C<[crit> or C<[emerg> allows that level too.

=item skip_nginx, skip_eval

C<N: E<lt>op E<gt> x.y.z [: reason]> / C<N: perl-expression>: if true the
block emits N skipped tests instead of running.

=item ONLY, SKIP, LAST

Test::Base's: run only this block / skip it / stop after it.

=back

Any C<$TEST_NGINX_XXX> in main_config, http_config, config, user_files,
request, raw_request, more_headers, response_body(_like/_unlike),
response_headers(_like), error_log, no_error_log, grep_error_log_out and
wait_for_log is replaced by that environment variable (an undefined one
fails the block). TEST_NGINX_SERVER_PORT, TEST_NGINX_SERVROOT,
TEST_NGINX_SERVER_ROOT and TEST_NGINX_HTML_DIR are always defined; of
these the real module defines only TEST_NGINX_SERVER_PORT and
TEST_NGINX_SERVER_ROOT, so block files meant for both use those (and
C<$TEST_NGINX_SERVER_ROOT/html> for the html directory).

=head1 WHAT COUNTS AS ONE TEST

Per block and per repetition:

=over

=item * 1 for the status check, if the block has a request/raw_request and
no C<ignore_response> (even without C<error_code>: 200 is then expected)

=item * with several requests, the status, header and body checks count
once per request, and the log patterns (but not the shutdown ones, the
grep or the global check) once per request

=item * 1 for each line of response_headers and of response_headers_like

=item * 1 each for raw_response_headers_like, raw_response_headers_unlike

=item * 1 for the body check (response_body, response_body_like or
response_body_unlike: only one of them, or the block fails at setup; the
real module would check only the first)

=item * 1 for each pattern of error_log, no_error_log, shutdown_error_log,
no_shutdown_error_log, access_log, no_access_log

=item * 1 for grep_error_log (with grep_error_log_out)

=item * 1 for wait_for_log

=item * 1 for C<must_die> (and then no status/header/body checks)

=item * 1 for the global check (always; our addition, the real module has
none, so our counts are the real ones plus one per block)

=back

So C<plan tests =E<gt> repeat_each() * (blocks() * N + M)>. A block with
skip_nginx/skip_eval in effect emits exactly the N it declares.

=head1 ENVIRONMENT

TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES, TEST_NGINX_USE_VALGRIND,
TEST_NGINX_USE_ASAN, TEST_NGINX_TIMEOUT: see L<Test::Nginx::LLM>. Also:

=over

=item TEST_NGINX_SERVER_PORT

Port (default 1984; TEST_NGINX_PORT is accepted too).

=item TEST_NGINX_SERVROOT

Server root (default F<t/servroot>, made absolute).

=item TEST_NGINX_RANDOMIZE

Use a free port and F<t/servroot_PID> so that test files can run in
parallel (C<prove -j>). Without it, test files (and concurrent runs from
other checkouts) sharing the servroot or the port wait for each other:
C<run_tests> holds an flock on F<E<lt>servrootE<gt>.lock> and on
F</tmp/test-nginx-port-E<lt>portE<gt>.lock>.

=item TEST_NGINX_LOCK_TIMEOUT

How long to wait for those locks (default 1800 s).

=item TEST_NGINX_NO_SHUFFLE

Run blocks in file order.

=item TEST_NGINX_SLEEP

Extra seconds to sleep after each response before stopping nginx
(default 0).

=item TEST_NGINX_VERBOSE

Print the request, the raw response and the conf path of every block.

=back

=cut

use strict;
use warnings;

use Test::Base -base;

use Encode ();
use File::Path ();
use File::Spec;
use List::Util qw(shuffle);
use Test::More ();
use Time::HiRes qw(sleep time);
use Test::Nginx::LLM qw(http_request expand_env free_port nginx_binary);

our @EXPORT = qw(
    run_tests plan repeat_each no_shuffle workers master_on master_off
    master_process_enabled log_level no_long_string add_block_preprocessor
    env_to_nginx server_port server_root html_dir no_root_location
    timeout bail_out
);

our $RepeatEach      = 1;
our $NoShuffle       = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Workers         = 1;
our $MasterOn        = 0;
our $LogLevel        = 'debug';
our $NoLongString    = 0;
our $NoRootLocation  = 0;
our $Timeout         = $ENV{TEST_NGINX_TIMEOUT} || 10;
our $Sleep           = $ENV{TEST_NGINX_SLEEP} || 0;
our $Verbose         = $ENV{TEST_NGINX_VERBOSE} || 0;
our @EnvToNginx;
our @BlockPreprocessors;

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServRoot   = $ENV{TEST_NGINX_SERVROOT} || 't/servroot';
if ($ENV{TEST_NGINX_RANDOMIZE}) {
    $ServerPort = free_port();
    $ServRoot   = "t/servroot_$$";
}
$ServRoot = File::Spec->rel2abs($ServRoot);
$ServRoot =~ s{/+$}{};
_export_env();

sub _export_env {
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
    $ENV{TEST_NGINX_SERVROOT}    = $ServRoot;
    $ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;     # the real module's name
    $ENV{TEST_NGINX_HTML_DIR}    = "$ServRoot/html";
}

sub repeat_each { $RepeatEach = shift if @_; return $RepeatEach }
sub no_shuffle { $NoShuffle = 1 }
sub workers { $Workers = shift if @_; return $Workers }
sub master_on { $MasterOn = 1 }
sub master_off { $MasterOn = 0 }
sub master_process_enabled { $MasterOn = shift() ? 1 : 0 if @_; return $MasterOn }
sub log_level { $LogLevel = shift if @_; return $LogLevel }
sub no_long_string { $NoLongString = 1 }
sub no_root_location { $NoRootLocation = 1 }
sub add_block_preprocessor { push @BlockPreprocessors, @_ }
sub env_to_nginx { push @EnvToNginx, @_ }
sub timeout { $Timeout = shift if @_; return $Timeout }
sub server_root { $ServRoot }
sub html_dir { "$ServRoot/html" }
sub bail_out { Test::More::BAIL_OUT(join '', @_) }

sub server_port {
    if (@_) {
        $ServerPort = shift;
        _export_env();
    }
    return $ServerPort;
}

#############################################################################
# Running

our @Locks;

sub run_tests {
    Test::More::plan('no_plan') unless Test::More->builder->has_plan;
    my $root = $ServRoot;
    File::Path::make_path($root);
    # Concurrent runs (another prove, another checkout) must not share the
    # servroot or the port: wait for them.
    @Locks = (Test::Nginx::LLM::lock_resource("$root.lock", what => "servroot $root"),
              Test::Nginx::LLM::lock_resource(Test::Nginx::LLM::port_lock_file($ServerPort),
                                              what => "port $ServerPort"));
    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        tn_run_block($block);
    }
    return;
}

# nginx version as a number (1.22.1 -> 1022001), cached.
my $NginxVersion;
sub tn_nginx_version {
    return $NginxVersion if defined $NginxVersion;
    my $bin = nginx_binary();
    my $out = `$bin -v 2>&1`;
    $NginxVersion = $out =~ m{nginx/(\d+)\.(\d+)\.(\d+)} ? tn_canon($1, $2, $3) : 0;
    return $NginxVersion;
}

sub tn_canon { $_[0] * 1_000_000 + $_[1] * 1_000 + $_[2] }

# Returns (count, reason) if the block must be skipped.
sub tn_skip_spec {
    my ($block) = @_;
    my $name = $block->name;
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ m{^\s*(\d+)\s*:\s*([<>]=?|==)\s*(\d+)\.(\d+)\.(\d+)\s*(?::\s*(.*?))?\s*$}s
            or bail_out("$name - invalid --- skip_nginx spec: $spec");
        my ($n, $op, $reason) = ($1, $2, $6);
        my $want = tn_canon($3, $4, $5);
        my $have = tn_nginx_version();
        my $skip = $op eq '<'  ? $have <  $want
                 : $op eq '<=' ? $have <= $want
                 : $op eq '>'  ? $have >  $want
                 : $op eq '>=' ? $have >= $want
                 :               $have == $want;
        return ($n, $reason || "nginx version $op $3.$4.$5") if $skip;
    }
    if (defined(my $spec = $block->skip_eval)) {
        $spec =~ m{^\s*(\d+)\s*:\s*(.*)$}s
            or bail_out("$name - invalid --- skip_eval spec: $spec");
        my ($n, $code) = ($1, $2);
        my $skip = eval $code;
        bail_out("$name - skip_eval: failed to eval \"$code\": $@") if $@;
        return ($n, 'skip_eval') if $skip;
    }
    return;
}

sub tn_run_block {
    my ($block) = @_;
    return if defined $block->SKIP;
    my $name = $block->name;
    if (my ($n, $reason) = tn_skip_spec($block)) {
        Test::More->builder->skip("$name - $reason") for 1 .. $n;
        return;
    }
    for my $rep (1 .. $RepeatEach) {
        my $suffix = $RepeatEach > 1 ? " (repeat $rep/$RepeatEach)" : '';
        tn_run_once($block, $suffix);
    }
}

# Splits a pattern section into a list of strings/regexes.
sub tn_patterns {
    my ($v, $over) = @_;
    return () unless defined $v;
    return ($v) if ref $v eq 'Regexp';
    return grep { defined } map { ref $_ ? $_ : expand_env($_, $over) } @$v
        if ref $v eq 'ARRAY';
    chomp(my $s = $v);
    return map { expand_env($_, $over) } grep { length } split /\n+/, $s;
}

sub tn_value_contains {
    my ($v, $needle) = @_;
    return 0 unless defined $v;
    return index($v, $needle) >= 0 if !ref $v || ref $v eq 'Regexp';
    return scalar grep { defined $_ && index("$_", $needle) >= 0 } @$v
        if ref $v eq 'ARRAY';
    return 0;
}

sub tn_fmt {
    my $s = shift;
    $s = "$s";
    $s =~ s/\n/\\n/g;
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return length $s > 200 ? substr($s, 0, 200) . '...' : $s;
}

# Builds the list of checks of a block: each {phase, name, run}. The
# number of entries is exactly the number of assertions emitted.
sub tn_plan_checks {
    my ($block, $suffix, $over) = @_;
    my $name = $block->name;
    my @c;
    my $add = sub {
        my ($phase, $label, $run, $req) = @_;
        push @c, { phase => $phase, name => "$name - $label$suffix", run => $run,
                   req => $req // 0 };
    };

    my $n = tn_request_count($block);

    if (defined $block->must_die) {
        $add->('die', 'nginx dies at startup as expected', \&tn_check_must_die);
    } elsif ($n && !defined $block->ignore_response) {
        for my $i (0 .. $n - 1) {
            my $req = $n > 1 ? " (req $i)" : '';
            tn_plan_response_checks($block, $over, $n, $i,
                                    sub { $add->('response', "$_[0]$req", $_[1], $i) });
        }
    }

    if (defined $block->wait_for_log) {
        $add->('wait', 'wait_for_log matched', \&tn_check_wait_for_log);
    }

    if (defined $block->grep_error_log) {
        $add->('log', 'grep_error_log_out', sub { tn_check_grep($block, $over, @_) });
    }

    # as the real module: with several requests, the logs are also checked
    # after each one but the last (so what they must show, they show from
    # the first request on)
    for my $i (0 .. ($n > 1 ? $n - 1 : 0)) {
        my $phase = $i < $n - 1 ? 'log-between' : 'log';
        my $req = $n > 1 ? " (req $i)" : '';
        for my $spec (['error_log', 'error.log', 1], ['shutdown_error_log', 'error.log', 1],
                      ['no_error_log', 'error.log', 0], ['no_shutdown_error_log', 'error.log', 0],
                      ['access_log', 'access.log', 1], ['no_access_log', 'access.log', 0])
        {
            my ($section, $file, $want) = @$spec;
            next if $phase eq 'log-between' && $section =~ /shutdown/;
            for my $pat (tn_patterns(scalar $block->$section, $over)) {
                my $p = tn_fmt($pat);
                $add->($phase, ($want ? "pattern \"$p\" matches a line in $file"
                                      : "pattern \"$p\" does not match a line in $file")
                               . $req,
                       sub { tn_check_log_pattern($pat, $file, $want, @_) }, $i);
            }
        }
    }

    $add->('global', 'no [alert]/[crit]/[emerg], crash or sanitizer report',
           sub { tn_check_global($block, @_) });
    return @c;
}

# The expected value of a response section for request $i of $n: with
# several requests it must be an array, one element per request (as
# get_indexed_value() of the real module).
sub tn_indexed {
    my ($block, $section, $n, $i) = @_;
    my $v = $block->$section;
    return $v unless defined $v;
    if ($n > 1) {
        die "--- $section: with several requests, the expected values must be "
            . "an array (--- $section eval [...]), one per request\n"
            unless ref $v eq 'ARRAY';
        return $v->[$i];
    }
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

sub tn_plan_response_checks {
    my ($block, $over, $n, $i, $add) = @_;
    my %v = map { ($_ => tn_indexed($block, $_, $n, $i)) }
        qw(error_code error_code_like raw_response_headers_like
           raw_response_headers_unlike response_headers response_headers_like
           response_body response_body_like response_body_unlike);

    # the real module reads only the first of them: a second would be a
    # check that looks made and is not
    my @body = grep { defined $v{$_} } qw(response_body response_body_like
                                          response_body_unlike);
    die "--- $body[1] is never checked with --- $body[0] (only the first"
        . " counts, as in the real module): one pattern can say both\n"
        if @body > 1;

    $add->('status code ok', sub { tn_check_status(\%v, @_) });
    for my $which (qw(raw_response_headers_like raw_response_headers_unlike)) {
        next unless defined $v{$which};
        my $pat = expand_env($v{$which}, $over);
        $add->($which eq 'raw_response_headers_like'
                   ? 'raw resp headers like' : 'raw resp headers unlike',
               sub {
                   my ($ctx, $t) = @_;
                   my $raw = $ctx->{res}{raw_headers} // '';
                   $which eq 'raw_response_headers_like'
                       ? Test::More::like($raw, qr/$pat/s, $t)
                       : Test::More::unlike($raw, qr/$pat/s, $t);
               });
    }
    for my $h (tn_header_specs($v{response_headers}, $over)) {
        my ($key, $val) = @$h;
        if (!defined $val) {
            $add->("header $key not present", sub {
                my ($ctx, $t) = @_;
                my $got = $ctx->{res}{headers}{lc $key};
                Test::More::ok(!$got, $t)
                    or Test::More::diag("  got: $key: " . join(', ', @$got));
            });
        } else {
            $add->("header $key ok", sub {
                my ($ctx, $t) = @_;
                my $got = $ctx->{res}{headers}{lc $key};
                Test::More::is($got ? join(', ', @$got) : undef, $val, $t);
            });
        }
    }
    for my $h (tn_header_specs($v{response_headers_like}, $over)) {
        my ($key, $val) = @$h;
        $add->("header $key like ok", sub {
            my ($ctx, $t) = @_;
            my $got = $ctx->{res}{headers}{lc $key};
            Test::More::like($got ? join(', ', @$got) : '', qr/^$val$/, $t);
        });
    }
    if (defined $v{response_body}) {
        $add->('response_body - response is expected',
               sub { tn_check_body_exact($v{response_body}, $over, @_) });
    } elsif (defined $v{response_body_like} || defined $v{response_body_unlike}) {
        my $type = defined $v{response_body_like} ? 'like' : 'unlike';
        $add->("response_body_$type - response is expected",
               sub { tn_check_body_like($v{"response_body_$type"}, $type, $over, @_) });
    }
}

sub tn_request_count {
    my ($block) = @_;
    return 1 if defined $block->raw_request;
    my $req = $block->request;
    return 0 unless defined $req;
    return ref $req eq 'ARRAY' ? scalar @$req : 1;
}

sub tn_header_specs {
    my ($text, $over) = @_;
    return () unless defined $text;
    my @h;
    for my $line (split /\n/, expand_env($text, $over)) {
        $line =~ s/^\s+|\s+$//g;
        next unless length $line;
        if ($line =~ s/^!\s*//) {
            push @h, [$line, undef];
        } else {
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            push @h, [$k, $v // ''];
        }
    }
    return @h;
}

sub tn_run_once {
    my ($block, $suffix) = @_;
    my $name = $block->name;
    my $ctx = { block => $block };
    my %over = (TEST_NGINX_SERVER_PORT => $ServerPort, TEST_NGINX_SERVROOT => $ServRoot,
                TEST_NGINX_SERVER_ROOT => $ServRoot,
                TEST_NGINX_HTML_DIR => "$ServRoot/html");
    my @checks = eval { tn_plan_checks($block, $suffix, \%over) };
    if ($@) {
        # cannot even count: one failure
        Test::More::fail("$name - block setup$suffix");
        Test::More::diag($@);
        return;
    }
    my $fail_rest = sub {
        my ($msg) = @_;
        my ($first, @rest) = @checks;
        Test::More::ok(0, $first->{name});
        Test::More::diag($msg);
        Test::More->builder->skip("$name - not run: see the failure above") for @rest;
    };

    my $server = eval { tn_make_server($block, \%over) };
    return $fail_rest->("$name - setup failed: $@") unless $server;
    $ctx->{server} = $server;
    Test::More::diag("$name: conf " . $server->conf_file) if $Verbose;

    my $timeout = tn_timeout($block);
    if (defined $block->must_die) {
        $ctx->{start_state} = $server->start(expect_death => 1);
        $server->stop(expect_exited => 1) if $server->{pid};
    } else {
        if (!$server->start) {
            return $fail_rest->("$name - nginx failed to start:\n$server->{start_error}");
        }
        my @reqs = eval { tn_block_requests($block, \%over) };
        if ($@) {
            $server->stop;
            return $fail_rest->("$name - bad request section: $@");
        }
        for my $i (0 .. $#reqs) {
            my %req = %{ $reqs[$i] };
            $ctx->{res} = defined $block->http2
                ? Test::Nginx::LLM::http2_request(port => $ServerPort,
                                                  timeout => $timeout, %req)
                : http_request(port => $ServerPort, timeout => $timeout, %req);
            if ($Verbose) {
                Test::More::diag("$name: request $i:\n" . tn_excerpt($req{raw}, 2000));
                Test::More::diag("$name: response:\n" . tn_excerpt($ctx->{res}{raw}, 4000));
            }
            $_->{run}->($ctx, $_->{name})
                for grep { $_->{phase} eq 'response' && $_->{req} == $i } @checks;
            next if $i == $#reqs;
            sleep $block->wait if $block->wait;
            $ctx->{log} = [map { "$_\n" } split /\n/, $server->error_log . $server->stderr];
            $ctx->{access_log} = [map { "$_\n" } split /\n/, $server->access_log];
            local $ctx->{between} = 1;
            $_->{run}->($ctx, $_->{name})
                for grep { $_->{phase} eq 'log-between' && $_->{req} == $i } @checks;
        }
        sleep $block->wait if $block->wait;
        sleep $Sleep if $Sleep;
        if (defined(my $re = $block->wait_for_log)) {
            $re = expand_env($re, \%over) unless ref $re;
            if (!ref $re) {
                chomp $re;
                $re = qr/$re/;
            }
            $ctx->{wait_for_log_re} = $re;
            $ctx->{wait_for_log_ok} = $server->wait_for_log($re, timeout => $timeout);
        }
    }

    for my $phase (qw(die wait)) {
        $_->{run}->($ctx, $_->{name}) for grep { $_->{phase} eq $phase } @checks;
    }

    $server->stop(expect_exited => defined $block->must_die);
    $ctx->{log} = [map { "$_\n" } split /\n/, $server->error_log . $server->stderr];
    $ctx->{access_log} = [map { "$_\n" } split /\n/, $server->access_log];
    for my $phase (qw(log global)) {
        $_->{run}->($ctx, $_->{name}) for grep { $_->{phase} eq $phase } @checks;
    }
    return;
}

sub tn_timeout {
    my ($block) = @_;
    my $t = $block->timeout;
    if (defined $t && $t =~ /^\s*([\d.]+)\s*(ms|s)?\s*$/) {
        $t = $2 && $2 eq 'ms' ? $1 / 1000 : $1;
    } else {
        $t = $Timeout;
    }
    return $t * Test::Nginx::LLM::slow_factor();
}

sub tn_make_server {
    my ($block, $over) = @_;
    my $srv = Test::Nginx::LLM::Server->new(
        name => 'socket', servroot => $ServRoot, port => $ServerPort, no_lock => 1,
        workers => $Workers, master => $MasterOn,
        log_level => $block->log_level // $LogLevel,
        no_root_location => $NoRootLocation, env => [@EnvToNginx],
        http2 => !defined $block->http2 ? ''
                 : tn_nginx_version() >= tn_canon(1, 25, 1) ? 'directive'
                 : 'listen',
        map { ($_ => expand_env($block->$_ // '', $over)) }
            qw(main_config http_config config));
    $srv->prepare_servroot;
    tn_write_user_files($block, $over);
    return $srv;
}

sub tn_write_user_files {
    my ($block, $over) = @_;
    my $spec = $block->user_files;
    return unless defined $spec;
    my @files;
    if (ref $spec eq 'ARRAY') {
        @files = map { [$_->[0], $_->[1]] } @$spec;
    } else {
        my $cur;
        for my $line (split /^/, $spec) {
            if ($line =~ /^>>> (\S+)/) {
                push @files, $cur = [$1, ''];
            } elsif ($cur) {
                $cur->[1] .= $line;
            } else {
                die "user_files: content before the first '>>> name' line\n"
                    if $line =~ /\S/;
            }
        }
    }
    for my $f (@files) {
        my ($fname, $content) = @$f;
        die "user_files: bad file name '$fname'\n" if $fname =~ m{(?:^|/)\.\.(?:/|$)};
        my $path = html_dir() . "/$fname";
        (my $dir = $path) =~ s{/[^/]+$}{};
        File::Path::make_path($dir);
        open my $fh, '>:raw', $path or die "cannot write $path: $!\n";
        print $fh expand_env($content, $over);
        close $fh;
    }
}

# Returns the http_request() arguments of each request of the block: none,
# one, or one per element of --- request eval [...] (an element may itself
# be an array of pieces, sent as one request). --- more_headers may be an
# array too, one element per request.
sub tn_block_requests {
    my ($block, $over) = @_;
    if (defined(my $raw = $block->raw_request)) {
        die "--- http2 cannot go with --- raw_request\n" if defined $block->http2;
        $raw = join '', @$raw if ref $raw eq 'ARRAY';
        return ({ raw => expand_env($raw, $over) });
    }
    my $req = $block->request;
    return () unless defined $req;
    return ({ tn_block_request($block, $over, $req, 0) }) unless ref $req;
    die "--- request: a string or an array of requests\n" unless ref $req eq 'ARRAY';
    die "--- request: an empty array\n" unless @$req;
    my $i = 0;
    return map {
        { tn_block_request($block, $over, ref $_ eq 'ARRAY' ? join('', @$_) : $_, $i++) }
    } @$req;
}

# The http_request() arguments of request $i, $req its text.
sub tn_block_request {
    my ($block, $over, $req, $i) = @_;
    $req = expand_env($req, $over);
    1 while $req =~ s/^\s*\#[^\n]+\s+|^\s+//s;
    my ($first, $body) = split /\n/, $req, 2;
    die "empty request line\n" unless defined $first && length $first;
    $first =~ m{^\s*(\S+)(?:\s+(\S+))?(?:\s+(\S+))?\s*$}
        or die "bad request line \"$first\": expected 'METHOD [URI [HTTP/1.x]]'\n";
    my ($method, $uri, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $body //= '';

    my $more = $block->more_headers // '';
    if (ref $more eq 'ARRAY') {
        die "--- more_headers has no element for request $i\n"
            unless defined $more->[$i];
        $more = $more->[$i];
    }
    $more = expand_env($more, $over);
    my ($hdrs, %has) = ('');
    for my $line (split /\n+/, $more) {
        next if $line =~ /^\s*#/ || $line !~ /\S/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $v //= '';
        $v =~ s/\s+$//;
        $has{lc $k} = $v;
        $hdrs .= "$k: $v\r\n";
    }
    my $chunked = ($has{'transfer-encoding'} // '') =~ /\bchunked\b/i;
    if ($chunked) {
        if (!Test::Nginx::LLM::is_chunked_encoding($body)) {
            $body =~ s/^\s+|\s+$//gs;
            $body = Test::Nginx::LLM::chunk_encode($body);
        }
    } elsif ($body ne '' && !exists $has{'content-length'}) {
        $body =~ s/^\s+|\s+$//gs;
        $hdrs .= 'Content-Length: ' . length($body) . "\r\n";
    }
    my $head = "$method $uri $ver\r\n";
    $head .= "Host: localhost\r\n" unless exists $has{host};
    $head .= "Connection: close\r\n" unless exists $has{connection};
    return (raw => $head . $hdrs . "\r\n" . $body, method => $method);
}

sub tn_excerpt {
    my ($s, $max) = @_;
    return '(none)' unless defined $s;
    return length $s > $max ? substr($s, 0, $max) . "\n... (" . length($s) . ' bytes)' : $s;
}

#############################################################################
# Checks. Each gets ($ctx, $test_name) and emits exactly one assertion.

sub tn_check_must_die {
    my ($ctx, $t) = @_;
    my $block = $ctx->{block};
    my $srv = $ctx->{server};
    my $want = $block->must_die;
    my $state = $ctx->{start_state} // '';
    if ($state ne 'died') {
        Test::More::ok(0, $t);
        Test::More::diag("nginx did not die at startup ($state)"
                         . ($srv->{start_error} ? ": $srv->{start_error}" : ''));
        return;
    }
    if (defined $want && $want =~ /^\s*(\d+)\s*$/) {
        Test::More::is($srv->{exit_code}, $1, $t)
            or Test::More::diag('nginx ' . $srv->exit_description);
    } else {
        Test::More::ok($srv->{exit_status} != 0, $t)
            or Test::More::diag('nginx ' . $srv->exit_description);
    }
}

sub tn_check_status {
    my ($v, $ctx, $t) = @_;
    my $block = $ctx->{block};
    my $res = $ctx->{res} || {};
    my $got = $res->{status} // '';
    my $problem = $res->{error};
    undef $problem if defined $block->abort;
    if (defined(my $like = $v->{error_code_like})) {
        chomp $like;
        if ($problem) {
            Test::More::ok(0, $t);
        } else {
            Test::More::like($got, qr/$like/sm, $t);
            return;
        }
    } else {
        my $want = $v->{error_code} // 200;
        $want =~ s/^\s+|\s+$//g;
        if (!$problem) {
            Test::More::is($got, $want, $t);
            return;
        }
        Test::More::ok(0, $t);
    }
    Test::More::diag("response problem: $problem\n  status: "
                     . ($got eq '' ? '(none)' : $got) . "\n  received "
                     . length($res->{raw} // '') . " bytes:\n"
                     . tn_excerpt($res->{raw}, 1000));
}

sub tn_check_body_exact {
    my ($want, $over, $ctx, $t) = @_;
    my $got = $ctx->{res} ? $ctx->{res}{body} : undef;
    if (ref $want eq 'Regexp') {
        Test::More::like($got, $want, $t);
        return;
    }
    $want = expand_env($want, $over);
    if ($NoLongString) {
        Test::More::is($got, $want, $t);
    } else {
        tn_is_long($got, $want, $t);
    }
}

sub tn_check_body_like {
    my ($pat, $type, $over, $ctx, $t) = @_;
    my $got = $ctx->{res} ? $ctx->{res}{body} : undef;
    $pat = expand_env($pat, $over) unless ref $pat;
    $type eq 'like' ? Test::More::like($got, qr/$pat/s, $t)
                    : Test::More::unlike($got, qr/$pat/s, $t);
}

# is() for possibly long strings: on mismatch shows the lengths, where
# they start to differ and an excerpt of both around that point.
sub tn_is_long {
    my ($got, $want, $t) = @_;
    if (!defined $got || !defined $want || length($got) + length($want) < 400) {
        return Test::More::is($got, $want, $t);
    }
    return Test::More::ok(1, $t) if $got eq $want;
    Test::More::ok(0, $t);
    my $i = 0;
    my $max = length $got < length $want ? length $got : length $want;
    # binary search would be faster; strings are at most a few MB
    my $step = 4096;
    $i += $step while $i + $step <= $max && substr($got, $i, $step) eq substr($want, $i, $step);
    $i++ while $i < $max && substr($got, $i, 1) eq substr($want, $i, 1);
    my $line = 1 + (() = substr($want, 0, $i) =~ /\n/g);
    my $from = $i > 20 ? $i - 20 : 0;
    Test::More::diag(sprintf
        "         got: \"%s\"...\n            length: %d\n    expected: \"%s\"...\n"
        . "            length: %d\n    strings begin to differ at byte %d (line %d)",
        tn_fmt(substr($got, $from, 60)), length $got,
        tn_fmt(substr($want, $from, 60)), length $want, $i, $line);
}

sub tn_check_wait_for_log {
    my ($ctx, $t) = @_;
    Test::More::ok($ctx->{wait_for_log_ok}, $t)
        or Test::More::diag("error.log never matched $ctx->{wait_for_log_re}");
}

sub tn_check_log_pattern {
    my ($pat, $file, $want, $ctx, $t) = @_;
    my $lines = $file eq 'access.log' ? $ctx->{access_log} : $ctx->{log};
    my $hit;
    my $find = sub {
        for my $l (@$lines) {
            if (ref $pat ? $l =~ $pat : index($l, $pat) >= 0) {
                $hit = $l;
                last;
            }
        }
        return defined $hit;
    };
    # between requests nginx runs: it writes a request's log lines after
    # the response, so a line that must be there is waited for (after the
    # last request nginx has stopped: all is written)
    if (!$find->() && $want && $ctx->{between}) {
        my $srv = $ctx->{server};
        Test::Nginx::LLM::wait_until(sub {
            $lines = [map { "$_\n" } split /\n/,
                      $file eq 'access.log' ? $srv->access_log
                                            : $srv->error_log . $srv->stderr];
            $find->();
        }, timeout => 5 * Test::Nginx::LLM::slow_factor(), interval => 0.01);
    }
    if ($want) {
        Test::More::ok(defined $hit, $t)
            or Test::More::diag("no line of $file matches; it has " . scalar(@$lines)
                                . ' lines, see ' . $ctx->{server}->log_dir);
    } else {
        Test::More::ok(!defined $hit, $t)
            or Test::More::diag("but it matches this line:\n$hit");
    }
}

sub tn_check_grep {
    my ($block, $over, $ctx, $t) = @_;
    my $pat = $block->grep_error_log;
    my $want = $block->grep_error_log_out;
    if (!defined $want) {
        Test::More::ok(0, $t);
        Test::More::diag('--- grep_error_log needs --- grep_error_log_out');
        return;
    }
    $pat = expand_env($pat, $over);
    $want = expand_env($want, $over);
    my $out = '';
    for my $l (@{ $ctx->{log} }) {
        if (ref $pat ? $l =~ $pat : $l =~ /\Q$pat\E/) {
            $out .= "$&\n" if $& !~ /\n/;
        }
    }
    if (ref $want eq 'Regexp') {
        Test::More::like($out, $want, $t);
    } elsif ($NoLongString) {
        Test::More::is($out, $want, $t);
    } else {
        tn_is_long($out, $want, $t);
    }
}

sub tn_check_global {
    my ($block, $ctx, $t) = @_;
    my @allow;
    if (defined $block->allow_alert) {
        @allow = qw(alert crit emerg);
    } else {
        for my $lvl (qw(alert crit emerg)) {
            push @allow, $lvl
                if grep { tn_value_contains(scalar $block->$_, "[$lvl") }
                   qw(error_log shutdown_error_log no_error_log grep_error_log);
        }
        push @allow, 'emerg' if defined $block->must_die;
    }
    $ctx->{server}->check_clean($t, allow => \@allow);
}

1;
