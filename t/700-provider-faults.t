# Providers that fail before their answer starts: they refuse the
# connection, reset it, close it, stall before the first byte, drip their
# answer one byte a second, or send bytes that are not HTTP at all. Nothing
# has reached the client yet, so (docs/directives.md, Failover):
#
#   - a route with a second, healthy target fails over to it: the client
#     gets that target's answer (a completion, or a whole stream);
#   - a route with only the faulty target answers OpenAI-shaped JSON:
#     502 upstream_error, 504 upstream_timeout, or 504 deadline_exceeded
#     once the route's deadline passed (then without failover);
#
# for completions and streams alike (a stream that never started gets JSON,
# not SSE), each failure counted against the faulty target in llm_status,
# and no worker crash or [crit]/[alert]/[emerg] in the error log. The
# faulty providers are real servers: a forked Perl server (LLM::Faults)
# misbehaving byte by byte, and a port nothing listens on. An interim
# answer (103 Early Hints), a redirect or a 200 with an empty body is not
# an answer either.
#
# A script: faulty providers are forked Perl servers that misbehave byte by
# byte.

use strict;
use warnings;

use Test::More;
use LLM::FaultGateway;
use LLM::Faults qw(openai_error_ok);
use LLM::Routing qw(chat idle_target status_target);
use Test::Nginx::LLM qw(free_port);

my $SLOW = Test::Nginx::LLM::slow_factor();

my $gw = LLM::FaultGateway->new;
my $faults = $gw->faults;
my $DEAD = free_port();                       # nothing listens there

# fault => [provider url, expected status and code for a route alone,
#           what the error log says]
my %FAULTS = (
    refuse    => ["http://127.0.0.1:$DEAD/v1", 502, 'upstream_error',
                  qr/connect\(\) failed \(111: Connection refused\)/],
    rst       => [$gw->fault_url('rst'), 502, 'upstream_error',
                  qr/\(104: Connection reset by peer\) while reading response header/],
    close     => [$gw->fault_url('close'), 502, 'upstream_error',
                  qr/upstream prematurely closed connection while reading response header/],
    junk_http => [$gw->fault_url('junk_http'), 502, 'upstream_error',
                  qr/upstream sent no valid HTTP\/1\.0 header/],
    hint103   => [$gw->fault_url('hint103'), 502, 'upstream_error',
                  qr/llm: provider "f_hint103" answered with status 103, which is not an answer/],
    redirect  => [$gw->fault_url('redirect'), 502, 'upstream_error',
                  qr/llm: provider "f_redirect" answered with status 302, which is not an answer/],
    empty     => [$gw->fault_url('empty'), 502, 'upstream_error',
                  qr/llm: provider "f_empty" answered 200 with an empty body, which is not an answer/],
    stall     => [$gw->fault_url('stall'), 504, 'upstream_timeout',
                  qr/upstream timed out \(110: Connection timed out\) while reading response header/],
    drip      => [$gw->fault_url('drip,ms=1000'), 504, 'deadline_exceeded',
                  qr/llm: deadline of \d+ ms for model "\w+-drip" passed/],
);

my $DEADLINE = 1500 * $SLOW;                  # ms, routes of the dripping provider

# streams that fail after their header, before any event of the answer
# (chunked, as providers stream): their header is held, so they fail over
my %SSE_FAULTS = (
    sse_error => [502, 'upstream_error', qr/answered with an error: Overloaded/],
    sse_stall => [504, 'upstream_timeout', undef],
    sse_close => [502, 'upstream_error', undef],
);

for my $name (sort keys %FAULTS) {
    $gw->target("f_$name", url => $FAULTS{$name}[0],
                alone => "solo-$name", pair => "pair-$name",
                next_model => 'pair-served',
                route => $name eq 'drip' ? "deadline ${DEADLINE}ms;" : undef);
}
for my $name (sort keys %SSE_FAULTS) {
    $gw->target("f_$name", fault => $name, alone => "solo-$name",
                pair => "pair-$name", next_model => 'pair-served');
}

# the dripping provider sends a byte a second: a longer read timeout
my $srv = $gw->start(name => 'faults-700', read_timeout => 5 * $SLOW . 's',
                     short_read_timeout => 500 * $SLOW . 'ms');
my $port = $srv->port;

sub ask {
    my ($model, $stream) = @_;
    return chat($port, $model, stream => $stream, timeout => 10 * $SLOW,
                uri => ($model =~ /stall/ ? '/short' : '') . '/v1/chat/completions');
}

for my $name (sort keys %FAULTS) {
    my ($url, $status, $code, $log_re) = @{ $FAULTS{$name} };

    subtest "$name: alone, the client gets $status $code" => sub {
        my $from = $srv->error_log_size;
        my $seen = () = $faults->requests;

        for my $stream (0, 1) {
            my $kind = $stream ? 'stream' : 'completion';
            my $res = ask("solo-$name", $stream);
            my $err = openai_error_ok($res, $status, $code,
                                      "$kind: $status, OpenAI JSON, code $code");
            like $err->{message}, qr/`(?:solo-$name|f_$name)`/, "$kind: the message names the model or provider"
                if $err;
            is $res->header('x-llm-provider'), "f_$name", "$kind: x-llm-provider f_$name";
            is $res->header('x-llm-attempts'), 1, "$kind: one attempt";
        }

        like $srv->error_log(from => $from), $log_re, 'the error log says why';

        my $t = idle_target($port, "f_$name", "solo-$name");
        ok $t, 'the target has nothing in flight';
        is $t->{failures}, 2, 'both requests count as failures of the target';
        is $t->{successes}, 0, 'and none as a success';
        is $t->{timeouts}, 2, 'both as timeouts' if $code eq 'upstream_timeout';

        if ($name ne 'refuse') {
            my @got = $faults->requests_since($seen);
            is scalar(grep { /^\Q$name\E model=solo-$name / } @got), 2,
                'the faulty provider received both requests';
        }
    };

    subtest "$name: with a healthy target, "
            . ($name eq 'drip' ? 'the deadline ends the request' : 'it fails over') => sub {
        my $healthy = status_target($port, 'healthy', 'pair-served');
        my $before = $healthy ? $healthy->{successes} : 0;

        for my $stream (0, 1) {
            my $kind = $stream ? 'stream' : 'completion';
            my $res = ask("pair-$name", $stream);

            if ($name eq 'drip') {
                # docs: the deadline bounds the whole request, failovers
                # included: once it passed, no other attempt is made
                openai_error_ok($res, 504, 'deadline_exceeded',
                                "$kind: 504 deadline_exceeded, no failover");
                is $res->header('x-llm-attempts'), 1, "$kind: one attempt";
                next;
            }

            is $res->{status}, 200, "$kind: 200";
            ok $res->{complete}, "$kind: a complete response"
                or diag $res->{error};
            is $res->header('x-llm-provider'), 'healthy', "$kind: served by the healthy target";
            is $res->header('x-llm-attempts'), 2, "$kind: after two attempts";
            if ($stream) {
                is $res->header('content-type'), 'text/event-stream', 'stream: SSE';
                like $res->{body},
                     qr/\A(?:data: \{[^\n]*"model":"pair-served"[^\n]*\}\n\n)+data: \[DONE\]\n\n\z/,
                     'stream: the healthy target\'s whole stream, nothing else';
            } else {
                like $res->{body}, qr/\A\{"id":"chatcmpl-mock-[^\n]*"model":"pair-served"/,
                     'completion: the healthy target\'s answer';
            }
        }

        my $t = idle_target($port, "f_$name", "pair-$name");
        is $t->{failures}, 2, 'the faulty target: two failures';
        if ($name ne 'drip') {
            is idle_target($port, 'healthy', 'pair-served')->{successes},
                $before + 2, 'the healthy target: two more successes';
        }
    };
}


for my $name (sort keys %SSE_FAULTS) {
    my ($status, $code, $message) = @{ $SSE_FAULTS{$name} };

    subtest "$name: a stream that fails before its answer: alone, $status $code" => sub {
        my $from = $srv->error_log_size;
        my $res = ask("solo-$name", 1);
        my $err = openai_error_ok($res, $status, $code, "$status, OpenAI JSON, code $code");
        like $err->{message}, $message, 'the provider\'s message' if $err && $message;
        is $res->header('x-llm-attempts'), 1, 'one attempt';
        like $srv->error_log(from => $from),
             $name eq 'sse_stall' ? qr/upstream timed out/
                                  : qr/llm: the stream of provider "f_$name" for model "solo-$name" failed before its answer began|upstream prematurely closed connection/,
             'the error log says why';
        my $t = idle_target($port, "f_$name", "solo-$name");
        is $t->{failures}, 1, 'a failure of the target';
    };

    subtest "$name: with a healthy target, it fails over" => sub {
        my $res = ask("pair-$name", 1);
        is $res->{status}, 200, 'status 200';
        ok $res->{complete}, 'a complete response' or diag $res->{error};
        is $res->header('x-llm-provider'), 'healthy', 'served by the healthy target';
        is $res->header('x-llm-attempts'), 2, 'after two attempts';
        like $res->{body},
             qr/\A(?:data: \{[^\n]*"model":"pair-served"[^\n]*\}\n\n)+data: \[DONE\]\n\n\z/,
             'the healthy target\'s whole stream, nothing of the first';
        is idle_target($port, "f_$name", "pair-$name")->{failures}, 1,
            'the faulty target: a failure';
    };
}


subtest 'the deadline is kept against a provider that drips its header' => sub {
    # the drip would take minutes; the deadline ends it after 1.5 s
    my $res = ask('solo-drip', 1);
    is $res->{status}, 504, 'status 504';
    ok !$res->{timed_out}, 'answered long before the client gave up (10 s)';
    cmp_ok $res->{t_end} - $res->{t_start}, '<', $DEADLINE / 1000 + 3 * $SLOW,
        'within the deadline and a generous margin';
};

$srv->stop;
$srv->check_clean('no worker crash, nothing above [error], no sanitizer report');
$faults->stop;

done_testing();
