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
use JSON::PP ();
use LLM::Fixtures;
use LLM::Faults qw(fault_server openai_error_ok);
use LLM::Routing qw(chat idle_target);
use Test::Nginx::LLM qw(start_nginx free_port http_request wait_until);

my $SLOW = Test::Nginx::LLM::slow_factor();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $faults = fault_server();
my $F = $faults->port;

my %base = (anthropic => '/v1', gemini => '/v1beta', bedrock => '');
my %auth = (anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');
my @cases = map { my $d = $_; map { [$d, $_] } qw(rst_body bad_chunk junk_json) }
            qw(anthropic gemini bedrock);

my $http = $LLM::Fixtures::MOCK_HTTP_CONFIG
    . "    llm_provider healthy { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }\n";
for my $c (@cases) {
    my ($d, $fault) = @$c;
    $http .= <<CONF;
    llm_provider ${d}_$fault {
        url http://127.0.0.1:$F/$fault,dialect=$d$base{$d};
        format $d;
        $auth{$d}
    }
    llm_route ${d}_$fault { target ${d}_$fault m; target healthy; }
    llm_route ${d}_${fault}_alone { target ${d}_$fault m; }
CONF
}

# streams whose provider keeps the connection open after the last event
my @open = (['gemini', ''], ['gemini', ',late=1'], ['gemini', ',plain=1'],
            ['anthropic', ''], ['bedrock', ''], ['openai', ''],
            ['openai', ',plain=1']);
for my $o (@open) {
    my ($d, $opt) = @$o;
    (my $name = "open_$d$opt") =~ s/[,=]/_/g;
    my $fmt = $d eq 'openai' ? '' : "format $d;";
    my $url = $d eq 'openai' ? "http://127.0.0.1:$F/sse_open$opt/v1"
            : "http://127.0.0.1:$F/sse_open,dialect=$d$opt$base{$d}";
    my $a = $d eq 'openai' ? '' : $auth{$d};
    $http .= <<CONF;
    llm_provider $name { url $url; $fmt $a keepalive 4; }
    llm_route $name { target $name m; }
CONF
}
# Gemini streams that a safety filter stops: no answer's count in the
# usage of their last chunk
my @blocked = (['open_gemini_blocked', 'blocked=1'],
               ['open_gemini_prompt_blocked', 'blocked=prompt']);
for my $b (@blocked) {
    $http .= <<CONF;
    llm_provider $b->[0] {
        url http://127.0.0.1:$F/sse_open,dialect=gemini,$b->[1]$base{gemini};
        format gemini; $auth{gemini} keepalive 4;
    }
    llm_route $b->[0] { target $b->[0] m; }
CONF
}
$http .= "    log_format usage '\$llm_model p=\$llm_prompt_tokens "
       . "c=\$llm_completion_tokens';\n";

# a stream on its way into the cache (buffered): the same, and it is stored
my $CACHED = free_port();
$http .= <<CONF;
    proxy_cache_path cache keys_zone=open:1m;
    server {
        listen 127.0.0.1:$CACHED;
        location /v1/ {
            proxy_read_timeout ${\ (30 * $SLOW)}s;
            llm_gateway;
            include \$TEST_NGINX_LLM_PARAMS;
            proxy_cache open;
            proxy_cache_valid 200 10m;
            llm_cache deterministic;
        }
    }
CONF

my $srv = start_nginx(
    name        => 'translated-cut',
    http_config => $http,
    config      => <<CONF,
    location /v1/ {
        proxy_read_timeout ${\ (30 * $SLOW)}s;
        access_log logs/usage.log usage;
        llm_gateway;
        include \$TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);
my $port = $srv->port;

for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $name = "${d}_$fault";

    my $res = chat($port, $name, timeout => 10 * $SLOW);
    is($res->{status}, 200, "$name: answered");
    is(($res->header('x-llm-provider') // '') . ' '
       . ($res->header('x-llm-attempts') // ''),
       'healthy 2', "$name: by the next target, in a second attempt");
    like($res->{body}, qr/"object":"chat.completion"/, "$name: a completion");

    $res = chat($port, "${name}_alone", timeout => 10 * $SLOW);
    openai_error_ok($res, 502, 'upstream_error', "$name alone: a whole 502");

    # the failed attempts, twice (with and without a next target)
    my $t = idle_target($port, $name, 'm');
    ok($t && $t->{failures} == 2 && $t->{successes} == 0,
       "$name: llm_status counts two failures, no success")
        or diag explain $t;
}

# Anthropic's door to a translated target: its own error shape
my $res = http_request(port => $port, method => 'POST', uri => '/v1/messages',
                       headers => { 'Content-Type' => 'application/json',
                                    'anthropic-version' => '2023-06-01' },
                       body => '{"model":"gemini_rst_body_alone",'
                             . '"max_tokens":10,"messages":'
                             . '[{"role":"user","content":"x"}]}',
                       timeout => 10 * $SLOW);
is($res->{status}, 502, '/v1/messages: a 502');
my $err = eval { JSON::PP::decode_json($res->{body}) } // {};
is($err->{type}, 'error', '/v1/messages: in Anthropic\'s shape');
ok($err->{error} && $err->{error}{message}, '/v1/messages: with a message');

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
    my $res = http_request(port => $port, method => 'POST',
                           uri => '/v1/messages',
                           headers => { 'Content-Type' => 'application/json',
                                        'anthropic-version' => '2023-06-01' },
                           body => qq({"model":"$name","max_tokens":10,)
                                 . '"stream":true,"messages":'
                                 . '[{"role":"user","content":"x"}]}',
                           timeout => 5 * $SLOW);
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
