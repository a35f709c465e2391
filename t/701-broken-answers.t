# Providers whose answer starts and then goes wrong, or is not what it
# claims: reset mid-response, a stream cut in the middle of an event, an
# event or a body that is not JSON, a 200 carrying an error, an answer of
# 10 MiB, an event of 10 MiB, a stream dripped byte by byte, a stream
# whose connection stays open after its final event.
#
# Once a response started nothing can fail over (docs/directives.md,
# Failover and Streaming), so a route with a healthy second target behaves
# as one without:
#
#   - a stream gets the events that were whole, never half of one, then
#     an SSE error event with code stream_interrupted and a properly ended
#     response;
#   - a completion's header waits for its whole body: one cut short of its
#     Content-Length (t/709) or whose whole body is not JSON fails over;
#     one that is the provider's error reaches the client as it came;
#   - each of these counts as a failure of the target in llm_status, while
#     a 10 MiB answer is passed on whole, with its usage read, at a cost in
#     CPU linear in its size (the worker's CPU time is the measure).
#
# No worker crash, no [crit]/[alert]/[emerg], no sanitizer report (a
# response that never ends must free what its scan allocated).
#
# A script: faulty providers are forked Perl servers that misbehave byte by
# byte.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use Test::More;
use LLM::FaultGateway;
use LLM::Faults qw(openai_error_ok sse_error_event parse_sse
                   sse_stream completion_json big_completion big_stream
                   cpu_seconds);
use LLM::Routing qw(chat idle_target);
use LLM::Dialects qw(post);
use JSON::PP ();
use Test::Nginx::LLM qw(free_port read_file);

my $SLOW = Test::Nginx::LLM::slow_factor();

my $gw = LLM::FaultGateway->new;
my $faults = $gw->faults;
my $MOCK = 'http://127.0.0.1:$TEST_NGINX_MOCK_PORT';

my %URL = (
    rst_body  => 'rst_body,kib=64',
    cut_event => 'cut_event',
    junk_json => 'junk_json',
    junk_sse  => 'junk_sse',
    error_200 => 'error_200',
    big       => 'big,mib=10',
    big_event => 'big_event',
    drip      => 'drip,ms=2',
    hang      => 'ok,hold=60',
);

# an error with a usage member, in one piece (a Content-Length): the
# usage read from the end must not make it an answer
$gw->target('f_error_usage', pair => 'error_usage',
            url => "$MOCK/fixture/fixture=openai:error-usage.json,length=1/v1");
# a whole body that is not JSON with no next target (f_junk_json's model)
$gw->http("    llm_route junk_json_alone { target f_junk_json junk_json; }\n");
# Anthropic's own answer at its door, whose whole body is not JSON
$gw->target('f_a_junk', fault => 'junk_json', dialect => 'anthropic',
            model => 'a_junk', pair => 'a_junk', alone => 'a_junk_alone');

# a provider that compresses its answer though nobody asked it to: not
# read, not "not JSON", passed on as it came
my $GZ = free_port();
$gw->http(<<CONF);
    server {
        listen 127.0.0.1:$GZ;
        location /v1/ {
            add_header Content-Encoding gzip;
            default_type application/json;
            return 200 "(compressed bytes)";
        }
    }
CONF
$gw->target('f_gzipped', url => "http://127.0.0.1:$GZ/v1", pair => 'gzipped');
# translated (Anthropic's format for an OpenAI client): nothing to write
$gw->target('f_t_gzipped', url => "http://127.0.0.1:$GZ/v1",
            dialect => 'anthropic', pair => 't_gzipped');
# the same at Anthropic's door, in its own API
$gw->target('f_a_gzipped', url => "http://127.0.0.1:$GZ/v1",
            dialect => 'anthropic', model => 'a_gzipped', pair => 'a_gzipped');

# the Responses API from an OpenAI-format target: a whole answer that says
# it failed ("status":"failed" with an error, or an error object alone)
# and a stream that ends with response.failed are whole, and failures
my %RESPONSES = (
    rs_ok            => 'responses.json,length=1',
    rs_failed        => 'responses-failed.json,length=1',
    rs_error         => 'error.json,length=1',
    rs_failed_stream => 'responses-failed.sse',
);
# translated dialects whose 2xx body is the provider's error
$gw->target('f_a_over', dialect => 'anthropic',
            url => "$MOCK/fixture/fixture=anthropic:overloaded.json,length=1/v1",
            pair => 'a_over', alone => 'a_over_alone');
$gw->target('f_g_error', dialect => 'gemini',
            url => "$MOCK/fixture/fixture=gemini:error.json,length=1/v1beta",
            pair => 'g_error', alone => 'g_error_alone');
for my $name (sort keys %RESPONSES) {
    $gw->target("f_$name", pair => $name,
                url => "$MOCK/fixture/fixture=openai:$RESPONSES{$name}/v1");
}
for my $name (sort keys %URL) {
    $gw->target("f_$name", fault => $URL{$name}, pair => $name);
}

my $srv = $gw->start(name => 'faults-701', read_timeout => 5 * $SLOW . 's',
                     short_read_timeout => 500 * $SLOW . 'ms');
my $port = $srv->port;

sub ask {
    my ($model, $stream, %o) = @_;
    return chat($port, $model, stream => $stream, timeout => 10 * $SLOW, %o);
}

# the route's faulty target after $n requests, all failures
sub failed_ok {
    my ($name, $n) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $gw->counts_ok("f_$name", $name, $n, 0,
                   "llm_status: $n failure(s) of the target, no success");
}

sub served_by_fault {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
       "f_$name 1", 'the faulty target answered, in one attempt: no failover';
}


subtest 'reset in the middle of a completion: held, it fails over' => sub {
    my $res = ask('rst_body', 0);
    is $res->{status}, 200, 'answered';
    is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
       'healthy 2', 'by the next target: nothing of the first had gone out';
    ok $res->{complete}, 'a whole response';
    like $res->{body}, qr/"object":"chat.completion"/, 'a completion';
    like $srv->error_log, qr/\(104: Connection reset by peer\) while reading upstream/,
        'the error log says why';
    failed_ok('rst_body', 1);
};


subtest 'reset in the middle of a stream: whole events, then the error event' => sub {
    my $res = ask('rst_body', 1);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'rst_body');
    ok $res->{complete}, 'a properly ended response' or diag $res->{error};
    my @ev = parse_sse($res->{body});
    is scalar @ev, 3, 'three events: the two whole ones and the error';
    is $ev[0]{choices}[0]{delta}{role}, 'assistant', 'the first whole event';
    like $ev[1]{choices}[0]{delta}{content}, qr/\Az{1023} \z/, 'the second whole event';
    my $err = sse_error_event($res);
    is $err->{code}, 'stream_interrupted', 'the last: code stream_interrupted';
    is $err->{message}, 'The connection to the provider broke off in the middle of the stream.',
        'the connection broke off';
    unlike $res->{body}, qr/"index":0,"delta":\{"content":"z{0,1000}\z/, 'no half event';
    failed_ok('rst_body', 2);
};


subtest 'a stream cut in the middle of an event (FIN): the error event' => sub {
    my $res = ask('cut_event', 1);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'cut_event');
    ok $res->{complete}, 'a properly ended response' or diag $res->{error};
    my ($first) = split /(?<=\n\n)/, sse_stream('cut_event', 'Hello', ' from', ' a', ' fault');
    is $res->{body}, $first . 'data: {"error":{"message":"The provider ended the stream '
        . 'before it was complete.","type":"server_error","param":null,'
        . '"code":"stream_interrupted"}}' . "\n\n",
        'the whole event, then the error event; nothing of the half event';
    failed_ok('cut_event', 1);
};


subtest 'a completion cut short without a Content-Length: passed on as it came' => sub {
    my $res = ask('cut_event', 0);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'cut_event');
    is $res->{body}, substr(completion_json('cut_event', 'Hello from a fault'), 0, 60),
        'the 60 bytes the provider sent';
    failed_ok('cut_event', 2);
};


subtest 'a 200 whose whole body is not JSON: held, it fails over' => sub {
    my $res = ask('junk_json', 0);
    $gw->failover_ok($res, 'junk_json');
    like $res->{body}, qr/"object":"chat.completion"/, 'a completion';
    unlike $res->{body}, qr/<html>/, 'nothing of the body that is not JSON';
    failed_ok('junk_json', 1);

    $res = ask('junk_json_alone', 0);
    openai_error_ok($res, 502, 'upstream_error', 'without a next target: a whole 502');
    failed_ok('junk_json', 2);
};


subtest 'at Anthropic\'s door, Anthropic\'s 200 whose whole body is not JSON: it fails over' => sub {
    my $res = $gw->messages('a_junk', timeout => 10 * $SLOW);
    $gw->failover_ok($res, 'a_junk');
    like $res->{body}, qr/"type":"message"/, 'a message, in Anthropic\'s shape';
    failed_ok('a_junk', 1);

    $res = $gw->messages('a_junk_alone', timeout => 10 * $SLOW);
    $gw->error_502_ok($res, 'anthropic', 'a_junk_alone');
    failed_ok('a_junk', 2);
};


subtest 'a compressed answer (Content-Encoding): passed on as it came' => sub {
    my $res = ask('gzipped', 0);
    is $res->{status}, 200, 'status 200';
    is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
       'f_gzipped 1', 'from its target, in one attempt';
    is $res->header('content-encoding'), 'gzip', 'with its Content-Encoding';
    is $res->{body}, "(compressed bytes)", 'its bytes';
    $gw->counts_ok('f_gzipped', 'gzipped', 0, 1,
                   'llm_status: a success of the target, no failure');

    $res = $gw->messages('a_gzipped', timeout => 10 * $SLOW);
    is $res->{status}, 200, 'at Anthropic\'s door: status 200';
    is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
       'f_a_gzipped 1', 'at Anthropic\'s door: from its target, in one attempt';
    is $res->header('content-encoding') . ' ' . $res->{body},
       'gzip (compressed bytes)', 'at Anthropic\'s door: as it came';
    $gw->counts_ok('f_a_gzipped', 'a_gzipped', 0, 1,
                   'at Anthropic\'s door: a success of the target');

    $res = ask('t_gzipped', 0);
    is $res->{status}, 200, 'translated: answered';
    is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
       'healthy 2', 'translated: by the next target, nothing of it written';
    like $res->{body}, qr/"object":"chat.completion"/, 'translated: a completion';
};


subtest 'a 200 carrying an error: passed on, a failure of the target' => sub {
    my $err = '{"error":{"message":"overloaded, in a 200","type":"server_error",'
            . '"param":null,"code":null}}';
    my $res = ask('error_200', 0);
    is $res->{status}, 200, 'completion: 200';
    served_by_fault($res, 'error_200');
    is $res->{body}, $err, 'completion: the provider\'s error, as it came';
    failed_ok('error_200', 1);

    $res = ask('error_200', 1);
    is $res->{status}, 200, 'stream: 200';
    ok $res->{complete}, 'stream: a properly ended response';
    my @ev = parse_sse($res->{body});
    is_deeply [map { $_->{error}{code} // 'null' } @ev], ['null', 'stream_interrupted'],
        'stream: the provider\'s error event, then stream_interrupted (no [DONE] came)';
    is $ev[0]{error}{message}, 'overloaded, in a 200', 'the provider\'s event as it came';
    failed_ok('error_200', 2);
};


subtest 'a 200 carrying an error and a usage: passed on, a failure of the target' => sub {
    my $res = ask('error_usage', 0);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'error_usage');
    is $res->{body}, read_file("$ENV{TEST_NGINX_FIXTURE_DIR}/openai/error-usage.json"),
        'the provider\'s error, as it came';
    failed_ok('error_usage', 1);
};


subtest 'the Responses API: an answer or a stream that failed is a failure of the target' => sub {
    my $fixtures = "$ENV{TEST_NGINX_FIXTURE_DIR}/openai";
    my %file = (rs_ok => 'responses.json', rs_failed => 'responses-failed.json',
                rs_error => 'error.json', rs_failed_stream => 'responses-failed.sse');

    for my $name (sort keys %file) {
        my $stream = $name =~ /stream/ ? JSON::PP::true() : JSON::PP::false();
        my $res = post($port, '/v1/responses',
                       { model => $name, input => 'Hi', stream => $stream });
        is $res->{status}, 200, "$name: 200";
        served_by_fault($res, $name);
        is $res->{body}, read_file("$fixtures/$file{$name}"),
            "$name: the provider's answer, as it came";
    }

    $gw->counts_ok('f_rs_ok', 'rs_ok', 0, 1, 'rs_ok: a success of the target');
    failed_ok($_, 1) for qw(rs_failed rs_error rs_failed_stream);
};


subtest 'a translated 2xx carrying the provider\'s error: the next target answers' => sub {
    for my $name (qw(a_over g_error)) {
        my $res = ask($name, 0);
        is $res->{status}, 200, "$name: 200";
        is $res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
           'healthy 2', "$name: from the second target, after the first failed";
        like $res->{body}, qr/"object":"chat\.completion"/, "$name: a completion";
        failed_ok($name, 1);
    }
    like $srv->error_log, qr/Overloaded/, 'the error log has what the provider said';

    # at Anthropic's door, Anthropic's answer passes as it comes
    my $res = post($port, '/v1/messages',
                   { model => 'a_over', max_tokens => 10,
                     messages => [{ role => 'user', content => 'Hi' }] });
    is $res->{status}, 200, '/v1/messages: 200';
    served_by_fault($res, 'a_over');
    is $res->{body}, read_file("$ENV{TEST_NGINX_FIXTURE_DIR}/anthropic/overloaded.json"),
        '/v1/messages: the provider\'s error, as it came';
    failed_ok('a_over', 2);
};


subtest 'a translated 2xx carrying the provider\'s error, no target left: what the provider said' => sub {
    # Gemini's error says 429 (RESOURCE_EXHAUSTED); Anthropic's overloaded
    # error has no status of its own: a 502
    my %want = (a_over_alone  => [502, 'server_error', 'f_a_over', 'Overloaded'],
                g_error_alone => [429, 'rate_limit_error', 'f_g_error',
                                  'Resource has been exhausted (e.g. check quota).']);
    for my $name (sort keys %want) {
        my ($status, $type, $provider, $message) = @{ $want{$name} };
        my $res = ask($name, 0);
        is $res->{status}, $status, "$name: $status";
        my $err = eval { JSON::PP::decode_json($res->{body}) } || {};
        is $err->{error}{type}, $type, "$name: $type";
        is $err->{error}{code}, 'upstream_error', "$name: upstream_error";
        is $err->{error}{message}, "Model `$name` failed after 1 attempt; "
           . "provider `$provider` answered with an error: $message",
           "$name: the provider's own message";
        $gw->counts_ok($provider, $name, 1, 0, "$name: a failure of the target");
    }
    like $srv->error_log, qr/provider "f_g_error" failed with 429 for model "g_error_alone"/,
        'the error log has the status the error said';
};


subtest 'events that are not JSON are passed on as they are' => sub {
    my $res = ask('junk_sse', 1);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'junk_sse');
    is $res->{body}, "this is not a field\n\n: a comment\n\ndata: {not json\n\ndata: [DONE]\n\n",
        'every event as the provider sent it, up to [DONE]';
    my $t = idle_target($port, 'f_junk_sse', 'junk_sse');
    is $t->{successes}, 1, 'a stream that reached [DONE] is a success';
};


subtest 'a 10 MiB completion: whole, with its usage, in linear time' => sub {
    my $cpu = cpu_seconds($srv->pid);
    my $res = ask('big', 0, timeout => 30 * $SLOW);
    my $used = cpu_seconds($srv->pid) - $cpu;
    is $res->{status}, 200, 'status 200';
    ok $res->{complete}, 'complete' or diag $res->{error};
    my $want = big_completion('big', 10 * 1024 * 1024);
    is length $res->{body}, length $want, 'every byte (' . length($want) . ')';
    ok sha256_hex($res->{body}) eq sha256_hex($want), 'the very bytes the provider sent';

    my $t = idle_target($port, 'f_big', 'big');
    is $t->{successes}, 1, 'a success';
    is $t->{per_token_samples}, 1,
        'its usage, after the 10 MiB of content, was read (a per-token sample)';

    # yajl lexes a token split over reads from its start again on each
    # read: fed as it came, 10 MiB of one string cost 5 to 10 s of CPU
    cmp_ok $used, '<', 2.5 * $SLOW, "the worker spent little CPU on it ($used s)";
};


subtest 'a 10 MiB stream in 1 KiB events: every event, in order' => sub {
    my $res = ask('big', 1, timeout => 30 * $SLOW);
    is $res->{status}, 200, 'status 200';
    ok $res->{complete}, 'complete' or diag $res->{error};
    ok $res->{body} eq big_stream('big', 10), 'the very events the provider sent, up to [DONE]'
        or diag 'got ' . length($res->{body}) . ' bytes';
    is idle_target($port, 'f_big', 'big')->{successes}, 2, 'a success';
};


subtest 'an event of 10 MiB: the error event instead' => sub {
    my $res = ask('big_event', 1);
    is $res->{status}, 200, 'status 200';
    served_by_fault($res, 'big_event');
    ok $res->{complete}, 'a properly ended response' or diag $res->{error};
    is $res->{body}, 'data: {"error":{"message":"The provider sent an event larger than the '
        . 'gateway accepts.","type":"server_error","param":null,'
        . '"code":"stream_interrupted"}}' . "\n\n", 'only the error event';
    failed_ok('big_event', 1);
};


subtest 'a stream dripped byte by byte: whole events only' => sub {
    my $res = ask('drip', 1);
    is $res->{status}, 200, 'status 200';
    ok $res->{complete}, 'complete' or diag $res->{error};
    my $want = sse_stream('drip', 'Hello', ' from', ' a', ' fault');
    is $res->{body}, $want, 'the provider\'s stream';
    my @chunks = map { $_->[1] } @{ $res->{chunks} };
    cmp_ok scalar @chunks, '>=', 2, 'in several pieces';
    is scalar(grep { !/\A(?:data: [^\n]+\n\n)+\z/ } @chunks), 0,
        'each piece the client got is whole events';
    is idle_target($port, 'f_drip', 'drip')->{successes}, 1, 'a success';
};

subtest 'a provider that keeps the connection after [DONE]: a whole stream' => sub {
    my $res = ask('hang', 1, uri => '/short/v1/chat/completions');
    is $res->{status}, 200, 'status 200';
    ok $res->{complete}, 'the response ends'
        or diag $res->{error};
    is $res->{body}, sse_stream('hang', 'Hello', ' from', ' a', ' fault'),
        'the provider\'s stream, with no error event after its [DONE]';
    my $t = idle_target($port, 'f_hang', 'hang');
    is $t->{successes} . ' ' . $t->{failures}, '1 0', 'a success, not a failure';
};

$srv->stop;
$srv->check_clean('no worker crash, nothing above [error], no sanitizer report');
$faults->stop;

done_testing();
