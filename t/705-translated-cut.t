# A translated answer (Anthropic, Gemini, Bedrock target; not a stream) is
# read whole before anything reaches the client, so one that breaks off in
# the middle of its body (a reset, a chunk that is not one), or whose
# whole body is not JSON, is a failed
# attempt like a 5xx: the route's next target answers; with none left
# the client gets a 502 in its own API's shape (OpenAI's, or Anthropic's at
# /v1/messages), never an empty reply; llm_status counts a failure of the
# target, not a success. A script: fault servers are forked processes.
#
# A stream ends at its last event, even from a provider that then keeps
# its connection open (its chunked body not ended): Gemini's chunk with the
# finish reason and the final usage (or the usage chunk after it, or a
# chunk a safety filter blocked, whose usage has no answer's count),
# Anthropic's message_stop, Bedrock's metadata event, OpenAI's [DONE]. The
# client gets the finish, the usage and [DONE] (or message_delta and
# message_stop) 250 ms after it, not a stream_interrupted error at
# proxy_read_timeout (30 s here; the client gives up after 5 s without a
# byte); the request is accounted with the provider's usage, and the
# provider's connection is not reused though the provider's keepalive is
# on (a second stream is served alike).

use strict;
use warnings;

use Test::More;
use LLM::FaultGateway qw(gateway_location);
use LLM::Faults ();
use LLM::Routing qw(chat);
use Test::Nginx::LLM qw(free_port http_request wait_until);

my $SLOW = Test::Nginx::LLM::slow_factor();

my $gw = LLM::FaultGateway->new;
my $faults = $gw->faults;

my @cases = map { my $d = $_; map { [$d, $_] } qw(rst_body bad_chunk junk_json) }
            qw(anthropic gemini bedrock);

$gw->dialect_fault(@$_) for @cases;

# streams whose provider keeps the connection open after the last event
my @open = (['gemini', ''], ['gemini', ',late=1'], ['gemini', ',plain=1'],
            ['anthropic', ''], ['bedrock', ''], ['openai', ''],
            ['openai', ',plain=1']);
for my $o (@open) {
    my ($d, $opt) = @$o;
    (my $name = "open_$d$opt") =~ s/[,=]/_/g;
    $gw->target($name, fault => "sse_open$opt", dialect => $d,
                conf => 'keepalive 4;', model => 'm', alone => $name);
}
# Gemini streams that a safety filter stops: no answer's count in the
# usage of their last chunk
for my $b (['open_gemini_blocked', 'blocked=1'],
           ['open_gemini_prompt_blocked', 'blocked=prompt']) {
    $gw->target($b->[0], fault => "sse_open,$b->[1]", dialect => 'gemini',
                conf => 'keepalive 4;', model => 'm', alone => $b->[0]);
}
$gw->http("    log_format usage '\$llm_model p=\$llm_prompt_tokens "
          . "c=\$llm_completion_tokens';\n");

# a stream on its way into the cache (buffered): the same, and it is stored
my $CACHED = free_port();
my $timeout = 30 * $SLOW . 's';
my $cached = gateway_location('/v1/', $timeout, 'proxy_cache open;',
                              'proxy_cache_valid 200 10m;',
                              'llm_cache deterministic;');
$gw->http(<<CONF);
    proxy_cache_path cache keys_zone=open:1m;
    server {
        listen 127.0.0.1:$CACHED;
$cached    }
CONF

my $srv = $gw->start(name => 'translated-cut', read_timeout => $timeout,
                     v1 => ['access_log logs/usage.log usage;']);
my $port = $srv->port;

for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $name = "${d}_$fault";

    my $res = chat($port, $name, timeout => 10 * $SLOW);
    $gw->failover_ok($res, $name);
    like($res->{body}, qr/"object":"chat.completion"/, "$name: a completion");

    $res = chat($port, "${name}_alone", timeout => 10 * $SLOW);
    $gw->error_502_ok($res, 'openai', "$name alone");

    # the failed attempts, twice (with and without a next target)
    $gw->counts_ok($name, 'm', 2, 0,
                   "$name: llm_status counts two failures, no success");
}

# Anthropic's door to a translated target: its own error shape
my $res = $gw->messages('gemini_rst_body_alone', timeout => 10 * $SLOW);
$gw->error_502_ok($res, 'anthropic', '/v1/messages');

# the stream ends at its last event, the provider's connection still open
my $usage = sub {
    my ($model) = @_;
    my @l = grep { /^\Q$model\E / }
            split /\n/, Test::Nginx::LLM::read_file($srv->log_dir . '/usage.log');
    return \@l;
};
for my $o (@open) {
    (my $name = "open_$o->[0]$o->[1]") =~ s/[,=]/_/g;
    for my $n (1, 2) {
        my $res = chat($port, $name, stream => 1, timeout => 5 * $SLOW);
        ok($res->{complete} && !$res->{timed_out}, "$name #$n: ended at once")
            or diag $res->{error};
        is($res->{status}, 200, "$name #$n: 200");
        my @ev = LLM::Faults::parse_sse($res->{body});
        my ($fin) = grep { ref $_ && $_->{choices} && @{ $_->{choices} }
                           && $_->{choices}[0]{finish_reason} } @ev;
        is($fin && $fin->{choices}[0]{finish_reason}, 'stop', "$name #$n: its finish");
        is(join('', map { ref $_ && $_->{choices} && @{ $_->{choices} }
                          ? $_->{choices}[0]{delta}{content} // '' : '' } @ev),
           'Hello there', "$name #$n: the whole answer");
        is(@ev ? $ev[-1] : undef, '[DONE]', "$name #$n: [DONE] last");
        unlike($res->{body}, qr/stream_interrupted/, "$name #$n: no error event");
    }
    wait_until(sub { @{ $usage->($name) } == 2 }, timeout => 5 * $SLOW);
    is_deeply($usage->($name), ["$name p=7 c=4", "$name p=7 c=4"],
              "$name: accounted with the provider's usage");
}

# a blocked Gemini stream ends at its last chunk too: with the filter's
# finish, the text before it, and the prompt's count
for my $b (['open_gemini_blocked', 'Hello'], ['open_gemini_prompt_blocked', '']) {
    my ($name, $text) = @$b;
    my $res = http_request(port => $port, method => "POST",
                           uri => "/v1/chat/completions",
                           headers => { 'Content-Type' => 'application/json' },
                           body => qq({"model":"$name","stream":true,)
                                 . '"stream_options":{"include_usage":true},'
                                 . '"messages":[{"role":"user","content":"x"}]}',
                           timeout => 5 * $SLOW);
    ok($res->{complete} && !$res->{timed_out}, "$name: ended at once")
        or diag $res->{error};
    my @ev = LLM::Faults::parse_sse($res->{body});
    my ($fin) = grep { ref $_ && $_->{choices} && @{ $_->{choices} }
                       && $_->{choices}[0]{finish_reason} } @ev;
    is($fin && $fin->{choices}[0]{finish_reason}, 'content_filter',
       "$name: the filter's finish");
    is(join('', map { ref $_ && $_->{choices} && @{ $_->{choices} }
                      ? $_->{choices}[0]{delta}{content} // '' : '' } @ev),
       $text, "$name: the text before it");
    my ($u) = grep { ref $_ && $_->{usage} } @ev;
    is($u && $u->{usage}{prompt_tokens}, 7, "$name: the prompt's count");
    is(@ev ? $ev[-1] : undef, '[DONE]', "$name: [DONE] last");
    unlike($res->{body}, qr/stream_interrupted/, "$name: no error event");
}

# the usage chunk a translated stream gives the client who asks for it
$res = http_request(port => $port, method => "POST",
                       uri => "/v1/chat/completions",
                       headers => { 'Content-Type' => 'application/json' },
                       body => '{"model":"open_gemini","stream":true,'
                             . '"stream_options":{"include_usage":true},'
                             . '"messages":[{"role":"user","content":"x"}]}',
                       timeout => 5 * $SLOW);
my ($u) = grep { ref $_ && $_->{usage} } LLM::Faults::parse_sse($res->{body});
is($u && "$u->{usage}{prompt_tokens} $u->{usage}{completion_tokens}", '7 4',
   'open_gemini: the usage chunk');

# Anthropic's door: message_delta and message_stop, at once
for my $name (qw(open_gemini open_anthropic)) {
    my $res = $gw->messages($name, stream => 1, timeout => 5 * $SLOW);
    ok($res->{complete} && !$res->{timed_out}, "/v1/messages $name: ended at once")
        or diag $res->{error};
    my @ev = LLM::Faults::parse_sse($res->{body});
    my ($delta) = grep { ref $_ && ($_->{type} // '') eq 'message_delta' } @ev;
    is($delta && "$delta->{delta}{stop_reason} $delta->{usage}{output_tokens}",
       'end_turn 4', "/v1/messages $name: message_delta with the usage");
    is(ref $ev[-1] && $ev[-1]{type}, 'message_stop',
       "/v1/messages $name: message_stop last");
}

for my $name (qw(open_gemini open_openai)) {
    my $body = qq({"model":"$name","temperature":0,"stream":true,)
             . qq("messages":[{"role":"user","content":"cache me $$ @{[time]}"}]});
    my $before = () = $faults->requests;
    my @res = map { http_request(port => $CACHED, method => 'POST',
                                 uri => '/v1/chat/completions', body => $body,
                                 timeout => 5 * $SLOW) } 1, 2;
    ok($res[0]{complete} && !$res[0]{timed_out}, "cached $name: ended at once")
        or diag $res[0]{error};
    like($res[0]{body}, qr/"content":" there".*data: \[DONE\]\n\n\z/s,
         "cached $name: the whole stream");
    is(join(' ', map { $_->header('x-llm-cache') // '-' } @res), 'MISS HIT',
       "cached $name: stored");
    is($res[1]{body} =~ s/"created":\d+//gr, $res[0]{body} =~ s/"created":\d+//gr,
       "cached $name: the same stream from the cache");
    is(scalar(() = $faults->requests) - $before, 1,
       "cached $name: the provider asked once");
}

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
