# Self-tests of Test::Nginx::LLM (helpers for hand-written tests) and
# meta-tests of Test::Nginx::Socket: small test files that must FAIL in
# known ways are run in a subprocess and their TAP output is checked, so we
# know the harness really reports broken responses, alerts, crashes, etc.
# Uses plain nginx + the echo module only.

use strict;
use warnings;

use Cwd ();
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use Test::Nginx::LLM qw(:all);

$ENV{TEST_NGINX_LOAD_MODULES} //= '/usr/lib/nginx/modules/ngx_http_echo_module.so';

#############################################################################
note 'pure helpers';

{
    my $log = join "\n",
        '2024/01/01 00:00:00 [notice] 1#1: start worker process 2',
        '2024/01/01 00:00:00 [alert] 1#1: worker process 2 exited on signal 9',
        '2024/01/01 00:00:00 [crit] 2#2: *1 connect() failed',
        '2024/01/01 00:00:00 [emerg] 1#1: unknown directive "x"',
        '2024/01/01 00:00:00 [error] 2#2: *1 open() failed';
    is scalar(find_alerts($log)), 3, 'find_alerts: alert, crit and emerg lines';
    is scalar(find_alerts($log, allow => ['alert', 'crit', 'emerg'])), 1,
        'find_alerts: a crash line is reported even when levels are allowed';
    is scalar(find_alerts("x [notice] y\nz [error] w\n")), 0, 'find_alerts: clean log';
}

{
    my $vg = <<'_EOL_';
==42== Memcheck, a memory error detector
==42==
==42== Invalid read of size 8
==42==    at 0x4C2E0: ngx_http_llm_parse (ngx_http_llm_module.c:120)
==42==    by 0x1234: ngx_http_core_content_phase (in /usr/sbin/nginx)
==42==
==42== Invalid write of size 1
==42==    at 0x9999: ngx_cpymem (in /usr/sbin/nginx)
==42==
==42== 64 bytes in 1 blocks are definitely lost in loss record 1 of 2
==42==    at 0x483B7F3: malloc (vg_replace_malloc.c:307)
==42==    by 0x2222: ngx_http_llm_init (ngx_http_llm_module.c:50)
==42==
==42== 32 bytes in 1 blocks are still reachable in loss record 2 of 2
==42==    by 0x2223: ngx_http_llm_init (ngx_http_llm_module.c:51)
==42==
_EOL_
    my @e = valgrind_errors($vg);
    is scalar(@e), 2, 'valgrind_errors: 2 errors with ngx_http_llm frames';
    like $e[0], qr/Invalid read/, 'valgrind_errors: invalid read';
    like $e[1], qr/definitely lost/, 'valgrind_errors: definite leak';
    is scalar(valgrind_errors($vg, qr/./)), 3, 'valgrind_errors: any frame with qr/./';
}

{
    my $leaks = <<'_EOL_';
=================================================================
==7==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 16 byte(s) in 1 object(s) allocated from:
    #0 0x7f in __interceptor_malloc
    #1 0x55 in ngx_http_llm_handler (/x/ngx_http_llm_module.so+0x10)

Indirect leak of 4096 byte(s) in 1 object(s) allocated from:
    #0 0x7f in __interceptor_malloc
    #1 0x55 in ngx_alloc (/usr/sbin/nginx+0x4ccfe)

SUMMARY: AddressSanitizer: 4112 byte(s) leaked in 2 allocation(s).
_EOL_
    my @e = asan_errors($leaks);
    is scalar(@e), 1, 'asan_errors: only the leak with an ngx_http_llm frame';
    like $e[0], qr/Direct leak of 16 byte/, 'asan_errors: the right record';
    is scalar(my @a = asan_errors("==7==ERROR: AddressSanitizer: heap-buffer-overflow\n")),
        1, 'asan_errors: an ASan error always counts';
    is scalar(my @b = asan_errors('')), 0, 'asan_errors: empty file';
}

{
    # Response parser: a chunked response fed one byte at a time.
    my $raw = "HTTP/1.1 100 Continue\r\n\r\n"
            . "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
            . "3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n";
    my @pieces;
    my $p = Test::Nginx::LLM::ResponseParser->new(
        on_data => sub { push @pieces, $_[0]; 1 });
    $p->feed($_, 0) for split //, $raw;
    ok $p->{complete} && !$p->{error}, 'parser: byte-by-byte chunked response complete';
    is $p->{status}, 200, 'parser: 100 Continue skipped';
    is $p->{body}, 'abc0123456789abcdef', 'parser: chunked body decoded';
    is_deeply [map { $_->[1] } @{ $p->{chunks} }], ['abc', '0123456789abcdef'],
        'parser: chunk boundaries kept';
    is join('', @pieces), $p->{body}, 'parser: on_data got the whole body';
    is_deeply $p->{headers}{'x-a'}, [1, 2], 'parser: repeated header kept';
    is_deeply $p->{trailers}{'x-trailer'}, ['t'], 'parser: trailer';

    my $bad = Test::Nginx::LLM::ResponseParser->new;
    $bad->feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0);
    like $bad->{error}, qr/invalid chunked data/, 'parser: bad chunk size detected';

    my $short = Test::Nginx::LLM::ResponseParser->new;
    $short->feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0);
    $short->eof;
    like $short->{error}, qr/7 bytes of the body/, 'parser: premature EOF detected';

    ok Test::Nginx::LLM::is_chunked_encoding(chunk_encode('hello')),
        'chunk_encode output is valid chunked encoding';
    ok !Test::Nginx::LLM::is_chunked_encoding("hello\n"), 'plain text is not';
    my $req = build_request(method => 'POST', uri => '/x', body => 'abc',
                            headers => ['X-A' => 1, 'X-A' => 2]);
    is $req, "POST /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . "X-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n\r\nabc", 'build_request';
}

{
    local $ENV{TEST_NGINX_FOO} = 'bar';
    is expand_env('a $TEST_NGINX_FOO $TEST_NGINX_X b', { TEST_NGINX_X => 1 }), 'a bar 1 b',
        'expand_env';
    ok !eval { expand_env('$TEST_NGINX_NO_SUCH_VAR_HERE'); 1 }, 'expand_env: unknown var dies';

    my $t0 = time;
    is wait_until(sub { 'yes' }, timeout => 5), 'yes', 'wait_until returns the value';
    cmp_ok time - $t0, '<', 0.05, 'wait_until does not sleep when already true';
    my $n = 0;
    $t0 = time;
    ok !wait_until(sub { ++$n > 1e9 }, timeout => 0.2, interval => 0.05),
        'wait_until gives up';
    my $took = time - $t0;
    ok $took >= 0.2 && $took < 0.5, "wait_until is bounded by its timeout ($took s)";
}

#############################################################################
note 'two instances at once, streaming, reloads';

my $a = start_nginx(name => 'harness-a', config => <<'_EOC_');
    location = /who { echo "A $TEST_NGINX_SERVER_PORT"; }
    location = /sse {
        echo "data: one";
        echo;
        echo_flush;
        echo_sleep 0.1;
        echo "data: two";
        echo;
    }
    location = /sse-slow {
        echo "data: one";
        echo;
        echo_flush;
        echo_sleep 2;
        echo "data: two";
        echo;
    }
_EOC_
my $b = start_nginx(name => 'harness-b', master => 1, workers => 2, config => <<'_EOC_');
    location = /who { echo "B"; }
_EOC_

ok $a->is_alive && $b->is_alive, 'both instances run at the same time';
isnt $a->port, $b->port, 'different ports';
isnt $a->servroot, $b->servroot, 'different servroots';
like $a->servroot, qr{/t/servroot-harness-a$}, 'servroot named after the instance';
is scalar(my @w = $b->worker_pids), 2, 'B has 2 workers';

my $ra = http_request(port => $a->port, uri => '/who');
my $rb = http_request(port => $b->port, uri => '/who');
is $ra->{body}, 'A ' . $a->port . "\n", 'A answers (with its own port substituted)';
is $rb->{body}, "B\n", 'B answers';
is_deeply $ra->{headers}{'content-type'}, ['text/plain'], 'headers are lowercased arrays';
is $ra->header('Content-Type'), 'text/plain', 'header() method';
ok $ra->{complete} && !$ra->{error}, 'response complete';

{
    # The server sleeps 2 s between the events; the client stops at the
    # first piece of data: getting exactly event one proves it was
    # delivered before the second was even produced (no timing asserted).
    my @pieces;
    my $first = http_stream(port => $a->port, uri => '/sse-slow', on_data => sub {
        my ($data, $t) = @_;
        push @pieces, [$data, $t];
        return 0;
    });
    is scalar(@pieces), 1, 'on_data called once, then asked to stop';
    is $pieces[0][0], "data: one\n\n", 'first event received alone';
    ok $first->{aborted} && !$first->{complete}, 'stream aborted by the client';
    is $first->{body}, "data: one\n\n", 'body holds what arrived until then';
    ok $pieces[0][1] >= $first->{t_start}, 'on_data gets the arrival time';

    my @all;
    my $res = http_stream(port => $a->port, uri => '/sse',
                          on_data => sub { push @all, $_[0]; 1 });
    is join('', @all), "data: one\n\ndata: two\n\n", 'all events, in order';
    is $res->{body}, join('', @all), 'body = what on_data got';
    ok $res->{complete} && !$res->{error}, 'stream complete';
    is join('', map { $_->[1] } @{ $res->{chunks} }), $res->{body},
        'chunks hold the decoded body';
    cmp_ok scalar(@{ $res->{reads} }), '>=', 1, 'reads recorded';
    ok $res->{reads}[0][0] <= $res->{reads}[-1][0], 'reads carry timestamps';
}

{
    my %old = map { $_ => 1 } $b->worker_pids;
    ok $b->reload(config => 'location = /who { echo "B2"; }'), 'reload B (master mode)';
    my @new = $b->worker_pids;
    is scalar(@new), 2, 'B has 2 workers after reload';
    ok !grep({ $old{$_} } @new), 'all workers are new';
    is http_request(port => $b->port, uri => '/who')->{body}, "B2\n", 'B serves the new config';

    ok $b->reload(config => 'location = /who { echo "B3"; }', wait_old => 1),
        'reload B waiting for old workers to exit';
    is http_request(port => $b->port, uri => '/who')->{body}, "B3\n", 'B serves B3';

    my $pos = $b->error_log_size;
    ok !$b->reload(config => 'location = /who { bogus_directive; }', quiet => 1),
        'bad reload fails';
    like $b->{reload_error}, qr/unknown directive "bogus_directive"/, 'reload error shown';
    is http_request(port => $b->port, uri => '/who')->{body}, "B3\n", 'old config still serves';
    like $b->error_log(from => $pos), qr/\[emerg\]/, 'error_log(from => offset)';

    ok !eval { $a->reload; 1 }, 'reload refuses single-process mode';
}

ok $a->stop, 'A stops cleanly';
ok !$a->is_alive, 'A is gone';
$a->check_clean('A: no alerts, crashes or sanitizer reports');
$b->check_clean('B: clean apart from the [emerg] of the bad reload', allow => ['emerg']);

#############################################################################
note 'crash detection';

{
    my $c = start_nginx(name => 'harness-crash', master => 1,
                        config => 'location = /t { echo ok; }');
    my ($w) = $c->worker_pids;
    kill 'KILL', $w;
    ok $c->wait_for_log(qr/exited on signal 9/, timeout => 10),
        'master logs the killed worker';
    ok wait_until(sub { my ($n) = $c->worker_pids; $n && $n != $w }, timeout => 10),
        'a new worker was spawned';
    $c->stop;
    my @p = $c->problems;
    ok scalar(grep { /exited on signal 9/ } @p), 'the crash is a problem'
        or diag explain \@p;

    my $d = start_nginx(name => 'harness-crash1', config => 'location = /t { echo ok; }');
    kill 'KILL', $d->pid;
    ok wait_until(sub { !$d->is_alive }, timeout => 10), 'single-process nginx killed';
    ok !$d->stop, 'stop reports the unclean end';
    like join("\n", $d->problems), qr/exited before it was stopped: killed by signal 9/,
        'a dead single-process nginx is a problem';
}

{
    my $e = eval { start_nginx(name => 'harness-bad', config => 'nonsense_here;') };
    ok !$e, 'start_nginx dies on a bad config';
    like $@, qr/unknown directive "nonsense_here"/, 'with nginx\'s message';
}

#############################################################################
note 'meta-tests of Test::Nginx::Socket';

my $lib = Cwd::abs_path('t/lib');
my $tmp = tempdir(CLEANUP => 1);

# Runs a test file in a subprocess; returns (\@results, $stderr, $exit)
# where results are [ok(1|0), number, name, skip(1|0)].
sub run_meta {
    my ($name, $code) = @_;
    my $file = "$tmp/$name.t";
    open my $fh, '>', $file or die $!;
    print $fh $code;
    close $fh;
    local $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot-$name";
    local $ENV{TEST_NGINX_SERVER_PORT} = free_port();
    local $ENV{TEST_NGINX_NO_SHUFFLE} = 1;
    local $ENV{TMPDIR} = $tmp;              # its port lock file goes there too
    # The meta-tests check the harness logic (with timings that valgrind
    # would upset), so they run without valgrind; TEST_NGINX_USE_ASAN is
    # kept: an ASan-built module in TEST_NGINX_LOAD_MODULES needs it.
    local $ENV{HARNESS_ACTIVE};
    local $ENV{TEST_NGINX_USE_VALGRIND};
    delete $ENV{$_} for qw(HARNESS_ACTIVE TEST_NGINX_USE_VALGRIND);
    my $out = `$^X -I$lib $file 2>$tmp/$name.err`;
    my $exit = $? >> 8;
    my @res;
    for (split /\n/, $out) {
        next unless /^(not ok|ok) (\d+)(?: - (.*?))?(?: # skip (.*))?$/;
        push @res, [$1 eq 'ok' ? 1 : 0, $2, $3 // $4 // '', defined $4 ? 1 : 0];
    }
    my $err = Test::Nginx::LLM::read_file("$tmp/$name.err");
    return (\@res, $err, $exit, $out);
}

# Checks results against [[ok, name-substring], ...] in order.
sub check_meta {
    my ($label, $res, $want, $out, $err) = @_;
    my @got = map { [$_->[0], $_->[2]] } @$res;
    my $ok = @got == @$want;
    for my $i (0 .. $#$want) {
        last unless $ok;
        my ($w_ok, $w_name) = @{ $want->[$i] };
        $ok = 0 unless $got[$i][0] == $w_ok && index($got[$i][1], $w_name) >= 0;
        diag "mismatch at assertion $i: want [$w_ok, $w_name], got [@{$got[$i]}]" unless $ok;
    }
    ok $ok, $label or diag "TAP:\n$out\nSTDERR:\n$err";
}

{
    my $code = <<'_EOT_';
use Test::Nginx::Socket;
plan tests => 39;
run_tests();

__DATA__

=== TEST 1: wrong body
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
bye

=== TEST 2: wrong status
--- config
    location = /t { echo hello; }
--- request
GET /t
--- error_code: 404

=== TEST 3: wrong headers
--- config
    location = /t { add_header X-Foo bar; echo hello; }
--- request
GET /t
--- response_headers
X-Foo: baz
!Content-Type
X-Missing:

=== TEST 4: error_log / no_error_log
--- config
    location = /t { echo hello; }
--- request
GET /t
--- error_log
this text is not in the log
--- no_error_log
[notice]

=== TEST 5: [crit] in error.log fails the global check
--- config
    location = /t { proxy_pass http://unix:/nonexistent/harness.sock; }
--- request
GET /t
--- error_code: 502

=== TEST 6: allow_alert
--- config
    location = /t { proxy_pass http://unix:/nonexistent/harness.sock; }
--- request
GET /t
--- error_code: 502
--- allow_alert

=== TEST 7: nginx does not start
--- config
    location = /t { not_a_directive; }
--- request
GET /t
--- response_body
x

=== TEST 8: must_die but nginx starts
--- config
    location = /t { echo hello; }
--- must_die

=== TEST 9: client timeout without abort
--- config
    location = /t { echo start; echo_flush; echo_sleep 1; echo end; }
--- request
GET /t
--- timeout: 0.2

=== TEST 10: connection closed without response
--- config
    location = /t { return 444; }
--- request
GET /t

=== TEST 11: wait_for_log never matching
--- config
    location = /t { echo hello; }
--- request
GET /t
--- timeout: 0.3
--- wait_for_log: no such line ever

=== TEST 12: long body mismatch shows where
--- config
    location = /t { echo_duplicate 1001 x; }
--- request
GET /t
--- response_body eval
("x" x 1000) . "y"

=== TEST 13: response_body_like mismatch
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body_like: ^bye

=== TEST 14: grep_error_log_out mismatch
--- config
    location = /t { echo hello; }
--- request
GET /nope
--- error_code: 404
--- grep_error_log: No such file
--- grep_error_log_out
something else
_EOT_
    my ($res, $err, $exit, $out) = run_meta('failing', $code);
    check_meta('failing blocks fail exactly where expected', $res, [
        [1, 'TEST 1: wrong body - status code ok'],
        [0, 'TEST 1: wrong body - response_body'],
        [1, 'TEST 1: wrong body - no [alert]'],
        [0, 'TEST 2: wrong status - status code ok'],
        [1, 'TEST 2: wrong status - no [alert]'],
        [1, 'TEST 3: wrong headers - status code ok'],
        [0, 'TEST 3: wrong headers - header X-Foo ok'],
        [0, 'TEST 3: wrong headers - header Content-Type not present'],
        [0, 'TEST 3: wrong headers - header X-Missing ok'],
        [1, 'TEST 3: wrong headers - no [alert]'],
        [1, 'TEST 4: error_log / no_error_log - status code ok'],
        [0, 'TEST 4: error_log / no_error_log - pattern "this text is not in the log" matches'],
        [0, 'TEST 4: error_log / no_error_log - pattern "[notice]" does not match'],
        [1, 'TEST 4: error_log / no_error_log - no [alert]'],
        [1, 'TEST 5: [crit] in error.log fails the global check - status code ok'],
        [0, 'TEST 5: [crit] in error.log fails the global check - no [alert]'],
        [1, 'TEST 6: allow_alert - status code ok'],
        [1, 'TEST 6: allow_alert - no [alert]'],
        [0, 'TEST 7: nginx does not start - status code ok'],
        [1, 'TEST 7: nginx does not start - not run'],
        [1, 'TEST 7: nginx does not start - not run'],
        [0, 'TEST 8: must_die but nginx starts - nginx dies at startup as expected'],
        [1, 'TEST 8: must_die but nginx starts - no [alert]'],
        [0, 'TEST 9: client timeout without abort - status code ok'],
        [1, 'TEST 9: client timeout without abort - no [alert]'],
        [0, 'TEST 10: connection closed without response - status code ok'],
        [1, 'TEST 10: connection closed without response - no [alert]'],
        [1, 'TEST 11: wait_for_log never matching - status code ok'],
        [0, 'TEST 11: wait_for_log never matching - wait_for_log matched'],
        [1, 'TEST 11: wait_for_log never matching - no [alert]'],
        [1, 'TEST 12: long body mismatch shows where - status code ok'],
        [0, 'TEST 12: long body mismatch shows where - response_body'],
        [1, 'TEST 12: long body mismatch shows where - no [alert]'],
        [1, 'TEST 13: response_body_like mismatch - status code ok'],
        [0, 'TEST 13: response_body_like mismatch - response_body_like'],
        [1, 'TEST 13: response_body_like mismatch - no [alert]'],
        [1, 'TEST 14: grep_error_log_out mismatch - status code ok'],
        [0, 'TEST 14: grep_error_log_out mismatch - grep_error_log_out'],
        [1, 'TEST 14: grep_error_log_out mismatch - no [alert]'],
    ], $out, $err);
    is $exit, 16, 'exit status = number of failures (16)';
    unlike $err, qr/planned \d+ tests? but/, 'plan count matched';
    like $err, qr/\[crit\].*connect\(\) to unix:/, 'diag shows the [crit] line';
    like $err, qr/unknown directive "not_a_directive"/, 'diag shows why nginx did not start';
    like $err, qr/strings begin to differ at byte 1000/, 'long string diff excerpt';
    like $err, qr/client socket timed out/, 'timeout reported';
    like $err, qr/connection closed without any response/, 'premature close reported';
}

{
    my $code = <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
repeat_each(2);
master_on();
workers(2);
run_tests();

__DATA__

=== TEST 1: master mode with 2 workers
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
hello
--- grep_error_log eval
qr/start worker process \d+/
--- grep_error_log_out eval
qr/\A(?:start worker process \d+\n){2}\z/

=== TEST 2: stops here
--- config
    location = /t { echo hello; }
--- request
GET /t
--- LAST

=== TEST 3: after LAST: never run
--- config
    location = /t { echo hello; }
--- request
GET /t
_EOT_
    my ($res, $err, $exit, $out) = run_meta('repeat', $code);
    my @want;
    for my $r (1, 2) {
        push @want, map { [1, "TEST 1: master mode with 2 workers - $_ (repeat $r/2)"] }
            'status code ok', 'response_body - response is expected', 'grep_error_log_out',
            'no [alert]/[crit]/[emerg], crash or sanitizer report';
    }
    for my $r (1, 2) {
        push @want, map { [1, "TEST 2: stops here - $_ (repeat $r/2)"] }
            'status code ok', 'no [alert]/[crit]/[emerg], crash or sanitizer report';
    }
    check_meta("repeat_each, no_plan, master_on/workers, --- LAST", $res, \@want, $out, $err);
    is $exit, 0, 'all passed';
    like $out, qr/^1\.\.12$/m, 'no_plan prints the count at the end';
}

{
    # several requests in a block: each checked against its own element;
    # a wrong second answer fails there only; expectations that are not
    # arrays, or more_headers without an element for a request, fail the
    # block before anything is sent
    my $code = <<'_EOT_';
use Test::Nginx::Socket tests => 11;
run_tests();

__DATA__

=== TEST 1: the second answer is wrong
--- config
    location = /n { echo "n=$arg_n"; }
--- request eval
["GET /n?n=1", "GET /n?n=2"]
--- response_body eval
["n=1\n", "n=3\n"]
--- error_log
this text is not in the log

=== TEST 2: one expected body for two requests
--- config
    location = /n { echo "n=$arg_n"; }
--- request eval
["GET /n?n=1", "GET /n?n=2"]
--- response_body
n=1

=== TEST 3: more_headers lacks the second request's
--- config
    location = /n { echo "n=$arg_n"; }
--- request eval
["GET /n?n=1", "GET /n?n=2"]
--- more_headers eval
["X-A: 1"]
--- error_code eval
[200, 200]
_EOT_
    my ($res, $err, $exit, $out) = run_meta('multi', $code);
    my $t1 = 'TEST 1: the second answer is wrong';
    check_meta('several requests in a block', $res, [
        [1, "$t1 - status code ok (req 0)"],
        [1, "$t1 - response_body - response is expected (req 0)"],
        [0, "$t1 - pattern \"this text is not in the log\" matches a line in error.log (req 0)"],
        [1, "$t1 - status code ok (req 1)"],
        [0, "$t1 - response_body - response is expected (req 1)"],
        [0, "$t1 - pattern \"this text is not in the log\" matches a line in error.log (req 1)"],
        [1, "$t1 - no [alert]"],
        [0, 'TEST 2: one expected body for two requests - block setup'],
        [0, 'TEST 3: more_headers lacks the second request\'s - status code ok (req 0)'],
        [1, 'TEST 3: more_headers lacks the second request\'s'],
        [1, 'TEST 3: more_headers lacks the second request\'s'],
    ], $out, $err);
    like $err, qr/--- response_body: with several requests, the expected values must be an array/,
        'why a single expectation is refused';
    like $err, qr/--- more_headers has no element for request 1/,
        'why a request without headers is refused';
}

{
    # two body checks: the real module checks only the first; ours refuses
    # the block rather than report a check it never made
    my $code = <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
run_tests();

__DATA__

=== TEST 1: a body like and unlike
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body_like: hello
--- response_body_unlike: hello
_EOT_
    my ($res, $err, $exit, $out) = run_meta('twobody', $code);
    check_meta('two body checks in a block: refused', $res, [
        [0, 'TEST 1: a body like and unlike - block setup'],
    ], $out, $err);
    like $err, qr/--- response_body_unlike is never checked with --- response_body_like/,
        'why the second body check is refused';
}

{
    # nginx (single process) dies while a block runs: the request fails and
    # the global check reports the unexpected exit.
    my $code = <<'_EOT_';
use Test::Nginx::Socket tests => 6;
use Time::HiRes ();
{
    no warnings 'redefine';
    my $orig = \&Test::Nginx::Socket::http_request;
    *Test::Nginx::Socket::http_request = sub {
        my $pid = Test::Nginx::LLM::read_file(server_root() . '/logs/nginx.pid');
        if ($Test::Nginx::Socket::KillNow && $pid =~ /(\d+)/) {
            kill 'KILL', $1;
            Test::Nginx::LLM::wait_until(sub { !-d "/proc/$1" || `cat /proc/$1/stat` =~ /\) Z/ });
        }
        $orig->(@_);
    };
}
add_block_preprocessor(sub { $Test::Nginx::Socket::KillNow = defined $_[0]->kill_nginx });
run_tests();

__DATA__

=== TEST 1: nginx killed before the request
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
hello
--- kill_nginx

=== TEST 2: the next block runs normally
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
hello
_EOT_
    my ($res, $err, $exit, $out) = run_meta('crash', $code);
    check_meta('a dead nginx fails the block', $res, [
        [0, 'TEST 1: nginx killed before the request - status code ok'],
        [0, 'TEST 1: nginx killed before the request - response_body'],
        [0, 'TEST 1: nginx killed before the request - no [alert]'],
        [1, 'TEST 2: the next block runs normally - status code ok'],
        [1, 'TEST 2: the next block runs normally - response_body'],
        [1, 'TEST 2: the next block runs normally - no [alert]'],
    ], $out, $err);
    like $err, qr/exited before it was stopped: killed by signal 9/, 'the exit is reported';
}

done_testing;
