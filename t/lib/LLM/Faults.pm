package LLM::Faults;

=head1 NAME

LLM::Faults - misbehaving providers and helpers for the fault-injection
tests (t/70x-*.t)

=head1 SYNOPSIS

    use LLM::Faults qw(fault_server openai_error_ok sse_events);

    my $f = fault_server();           # a forked Perl HTTP server
    # llm_provider rst { url http://127.0.0.1:$port/rst/v1; }
    my @seen = $f->requests;          # what reached it: "rst model=m stream=0"

=head1 DESCRIPTION

C<fault_server> forks a small HTTP server (one process per connection)
whose misbehaviour is chosen by the first segment of the request path,
i.e. by the provider's C<url>: C<http://127.0.0.1:PORT/NAME[,k=v...]/v1>.
It reads the whole request first (the gateway's request), logs one line
per request (C<NAME model=M stream=0|1 auth=HEADER=VALUE bytes=N
sha256=HEX> of the body it got; C<auth=-> without a key), then:

    rst         resets the connection (SO_LINGER 0), nothing sent
    close       closes it (FIN), nothing sent
    stall       sends nothing; holds the connection until the gateway
                closes it (at most 120 s)
    drip        sends a valid answer (a completion, or a stream for
                "stream":true) one byte every ms=N milliseconds
                (default 1000); from=N: the first N bytes at once
    rst_body    sends the header and part of the body (half the JSON, or
                two whole events and half of a third), then resets
    cut_len     the header with the answer's Content-Length, half the
                JSON, then closes (FIN) short of that length
    bad_chunk   a chunked answer: half the JSON in a first chunk, then a
                chunk size that is not hexadecimal, then FIN
    cut_event   the header (no length), then one whole event and half of
                the next (or 60 bytes of the JSON), then closes (FIN)
    junk_http   no status line at all: bytes that are not HTTP, then FIN
    hint103     "103 Early Hints" first, then the whole valid answer
    sse_error   a chunked stream whose first event is an error, then its end
    sse_stall   a chunked stream's header, then nothing (held 120 s)
    sse_close   a chunked stream's header, then FIN before any chunk
    redirect    302 to another URL, an empty body
    empty       200 application/json with Content-Length: 0
    junk_json   200 application/json whose body is not JSON
    junk_sse    200 text/event-stream: lines that are not SSE fields and
                events whose data is not JSON, then data: [DONE]
    big         a 10 MiB answer: one completion whose content is 10 MiB,
                or a stream of 10 MiB in 1 KiB events, then [DONE]
    big_event   stream: one event of 10 MiB (no blank line before the end)
    error_200   200 with an OpenAI error: a JSON body, or for a stream an
                SSE error event, then the end of the response
    ok          a valid answer at once; hold=N: then keeps the connection
                open for N seconds (a stream without length never ends)
    sse_open    a whole stream in the provider's own format
                (dialect=openai|anthropic|gemini|bedrock, default openai),
                7 prompt and 4 completion tokens, its last event included,
                chunked but without the last chunk, then holds the
                connection (at most 120 s); late=1: a Gemini stream whose
                finish chunk lacks the answer's count, which a usage chunk
                after it brings; plain=1: no chunked encoding nor length
                (Connection: close, the end would be a FIN); blocked=1: a
                Gemini stream stopped by a safety filter after its first
                text (finishReason SAFETY), blocked=prompt: a Gemini
                prompt refused (promptFeedback, no candidates), both with
                a usage that has no answer's count

C<dialect=anthropic|gemini|bedrock>: a completion (not a stream) in that
provider's own JSON instead of OpenAI's, for translated targets; with
C<deep=N> (or C<wide=N>) an answer whose one tool call has arguments
nested N levels deep (or an array of N values), a Gemini stream too.

Answers to streams are SSE (C<text/event-stream>); C<len=1> gives them a
Content-Length (default: none, C<Connection: close>, end by FIN).

LLM::FaultGateway puts a gateway in front of this server: its providers,
routes (a faulty target alone, and with a healthy one after it) and
locations.

=cut

use strict;
use warnings;

use Carp qw(croak);
use Compress::Zlib ();
use Digest::SHA ();
use File::Spec;
use File::Temp ();
use Scalar::Util ();
use Exporter 'import';
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER SO_REUSEADDR);
use Time::HiRes qw(sleep time);
use Test::More ();

# Test::Nginx::LLM loaded when first needed: block files that only build
# provider answers with this module also run under the real Test::Nginx
for my $name (qw(free_port read_file wait_until)) {
    no strict 'refs';
    *$name = sub {
        require Test::Nginx::LLM;
        return &{"Test::Nginx::LLM::$name"}(@_);
    };
}

our @EXPORT_OK = qw(fault_server completion_json dialect_json big_completion big_stream
                    sse_stream sse_event
                    openai_error_ok sse_error_event parse_sse cpu_seconds
                    vm_rss_kib);

my $Json = JSON::PP->new->canonical;

=head2 completion_json($model, $content)

A chat.completion JSON document with usage.

=cut

=head2 dialect_json($dialect, $model, $content)

A non-streamed answer in a provider's own format: Anthropic's message,
Gemini's generateContent response, Bedrock's Converse response.

=cut

sub dialect_json {
    my ($dialect, $model, $content) = @_;
    return $Json->encode(
        $dialect eq 'anthropic' ? {
            id => 'msg_fault', type => 'message', role => 'assistant',
            model => $model, content => [{ type => 'text', text => $content }],
            stop_reason => 'end_turn', stop_sequence => undef,
            usage => { input_tokens => 3, output_tokens => 2 } }
        : $dialect eq 'gemini' ? {
            candidates => [{ content => { role => 'model',
                                          parts => [{ text => $content }] },
                             finishReason => 'STOP', index => 0 }],
            usageMetadata => { promptTokenCount => 3, candidatesTokenCount => 2,
                               totalTokenCount => 5 },
            modelVersion => $model }
        : $dialect eq 'bedrock' ? {
            output => { message => { role => 'assistant',
                                     content => [{ text => $content }] } },
            stopReason => 'end_turn',
            usage => { inputTokens => 3, outputTokens => 2, totalTokens => 5 },
            metrics => { latencyMs => 10 } }
        : croak "unknown dialect $dialect");
}

=head2 dialect_tool_call($dialect, $stream, $args_json)

An answer with one tool call whose arguments are the raw JSON text given:
Anthropic's, Gemini's (or Gemini's stream: text, the call, text) or
Bedrock's.

=cut

sub dialect_tool_call {
    my ($d, $stream, $args) = @_;
    return 'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"index":0}]}'
         . "\n\n"
         . 'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":'
         . '{"name":"f","args":{"a":' . $args . '}}}]},"index":0}]}' . "\n\n"
         . 'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},'
         . '"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,'
         . '"candidatesTokenCount":2,"totalTokenCount":5}}' . "\n\n"
        if $d eq 'gemini' && $stream;
    return '{"id":"msg_1","type":"message","role":"assistant","model":"m",'
         . '"content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":'
         . $args . '}}],"stop_reason":"tool_use","stop_sequence":null,'
         . '"usage":{"input_tokens":3,"output_tokens":2}}'
        if $d eq 'anthropic';
    return '{"candidates":[{"content":{"role":"model","parts":[{"functionCall":'
         . '{"name":"f","args":{"a":' . $args . '}}}]},"finishReason":"STOP",'
         . '"index":0}],"usageMetadata":{"promptTokenCount":3,'
         . '"candidatesTokenCount":2,"totalTokenCount":5}}'
        if $d eq 'gemini';
    return '{"output":{"message":{"role":"assistant","content":[{"toolUse":'
         . '{"toolUseId":"t1","name":"f","input":{"a":' . $args . '}}}]}},'
         . '"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":2,'
         . '"totalTokens":5}}'
        if $d eq 'bedrock';
    croak "unknown dialect $d";
}

sub completion_json {
    my ($model, $content) = @_;
    return $Json->encode({
        id => 'chatcmpl-fault', object => 'chat.completion', created => 1,
        model => $model,
        choices => [{ index => 0, finish_reason => 'stop',
                      message => { role => 'assistant', content => $content } }],
        usage => { prompt_tokens => 3, completion_tokens => 2, total_tokens => 5 },
    });
}

=head2 big_completion($model, $bytes)

A completion whose content is C<$bytes> times "x" (quickly built).

=cut

sub big_completion {
    my ($model, $bytes) = @_;
    my ($head, $tail) = split /CONTENT-HERE/, completion_json($model, "CONTENT-HERE");
    return $head . ('x' x $bytes) . $tail;
}

=head2 big_stream($model, $mib)

A stream of C<$mib> MiB of content in 1 KiB events, then [DONE].

=cut

sub big_stream {
    my ($model, $mib) = @_;
    my $n = int($mib * 1024 * 1024 / 1024);
    return sse_event($model, '', role => 1) . sse_event($model, 'x' x 1024) x $n
        . sse_event($model, undef, finish => 'stop') . "data: [DONE]\n\n";
}

=head2 sse_event($model, $content) / sse_stream($model, @contents)

One chunk event (C<data: {...}\n\n>); a whole stream: a role event, one
event per content, a finish event and C<data: [DONE]>.

=cut

sub sse_event {
    my ($model, $content, %o) = @_;
    my $delta = defined $content ? { content => $content } : {};
    $delta->{role} = 'assistant' if $o{role};
    return 'data: ' . $Json->encode({
        id => 'chatcmpl-fault', object => 'chat.completion.chunk', created => 1,
        model => $model,
        choices => [{ index => 0, delta => $delta,
                      finish_reason => $o{finish} }],
    }) . "\n\n";
}

sub sse_stream {
    my ($model, @contents) = @_;
    return join '', sse_event($model, '', role => 1),
        (map { sse_event($model, $_) } @contents),
        sse_event($model, undef, finish => 'stop'), "data: [DONE]\n\n";
}

=head2 parse_sse($body)

The events of an SSE body: a list of their C<data> values (decoded JSON
where it is JSON, else the text).

=cut

sub parse_sse {
    my ($body) = @_;
    my @out;
    for my $ev (split /\n\n/, $body) {
        my ($data) = $ev =~ /^data: ?(.*)$/m or next;
        my $v = eval { JSON::PP::decode_json($data) };
        push @out, defined $v ? $v : $data;
    }
    return @out;
}

=head2 openai_error_ok($res, $status, $code, $name)

One assertion: C<$res> has status C<$status>, C<Content-Type:
application/json> and an OpenAI error body
C<{"error":{"message","type","param","code"}}> whose code is C<$code>
(undef: null; a regex: matched). Returns the decoded error or undef.

=cut

sub openai_error_ok {
    my ($res, $status, $code, $name) = @_;
    my $err = eval { JSON::PP::decode_json($res->{body} // '') };
    my @why;
    push @why, 'status ' . ($res->{status} // 'none') . ", want $status"
        unless ($res->{status} // 0) == $status;
    push @why, 'content type ' . ($res->header('content-type') // 'none')
        unless ($res->header('content-type') // '') eq 'application/json';
    push @why, 'the response is not complete: ' . ($res->{error} // '?')
        unless $res->{complete};
    if (ref $err eq 'HASH' && ref $err->{error} eq 'HASH'
        && (join ',', sort keys %{ $err->{error} }) eq 'code,message,param,type'
        && defined $err->{error}{message} && length $err->{error}{message})
    {
        my $got = $err->{error}{code};
        my $match = !defined $code ? !defined $got
                  : ref $code ? defined $got && $got =~ $code
                  : defined $got && $got eq $code;
        push @why, 'code ' . ($got // 'null') . ', want ' . ($code // 'null')
            unless $match;
    } else {
        push @why, 'not an OpenAI error body';
    }
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(!@why, $name)
        or Test::More::diag(join "\n", @why, 'body: ' . substr($res->{body} // '', 0, 300));
    return @why ? undef : $err->{error};
}

=head2 sse_error_event($res)

The C<error> object of the last event of a streamed response, if that
event is an error event, else undef.

=cut

sub sse_error_event {
    my ($res) = @_;
    my @ev = parse_sse($res->{body} // '');
    return undef unless @ev && ref $ev[-1] eq 'HASH' && $ev[-1]{error};
    return $ev[-1]{error};
}

=head2 cpu_seconds(@pids)

User and system CPU time the processes used so far, in seconds (from
/proc/PID/stat).

=cut

sub cpu_seconds {
    my $ticks = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
    my $sum = 0;
    for my $pid (@_) {
        my $stat = read_file("/proc/$pid/stat");
        $stat =~ s/^.*\)\s+//s;                 # after "pid (comm)"
        my @f = split ' ', $stat;
        $sum += ($f[11] // 0) + ($f[12] // 0);   # utime, stime
    }
    return $sum / $ticks;
}

=head2 vm_rss_kib(@pids)

The resident memory of the processes, in KiB (VmRSS of /proc/PID/status).

=cut

sub vm_rss_kib {
    my $sum = 0;
    for my $pid (@_) {
        $sum += $1 if read_file("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m;
    }
    return $sum;
}

=head2 fault_server(port => $port, log => $file)

Starts the server (listening before this returns) and returns a handle:
C<-E<gt>port>, C<-E<gt>requests> (the logged lines), C<-E<gt>stop>
(also done when the handle goes away or the test exits).

=cut

my %Servers;
my $Owner = $$;

sub fault_server {
    my (%o) = @_;
    my $port = $o{port} // free_port();
    my $log = $o{log}
        // File::Temp::tempdir(CLEANUP => 1) . "/fault-server-$port.log";
    unlink $log;
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
        Listen => 1024, ReuseAddr => 1)
        or croak "fault server: cannot listen on $port: $!";
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        _serve($listen, $log);
        POSIX::_exit(0);
    }
    close $listen;
    my $self = bless { port => $port, pid => $pid, log => $log }, __PACKAGE__;
    $Servers{$pid} = $self;
    Scalar::Util::weaken($Servers{$pid});
    return $self;
}

sub port { $_[0]{port} }

sub requests {
    my ($self) = @_;
    return grep { length } split /\n/, read_file($self->{log});
}

# the lines logged since $n requests
sub requests_since {
    my ($self, $n) = @_;
    my @r = $self->requests;
    return @r[$n .. $#r];
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $Owner;
    # the whole process group: connection handlers too
    kill 'TERM', -$self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $Servers{ $self->{pid} };
    $self->{pid} = undef;
}

sub DESTROY { local ($?, $@, $!); $_[0]->stop }

END { local $?; $_->stop for grep { defined } values %Servers }

# --- the server process -----------------------------------------------------

sub _serve {
    my ($listen, $log) = @_;
    POSIX::setpgid(0, 0);
    $SIG{CHLD} = 'IGNORE';
    $SIG{PIPE} = 'IGNORE';
    $SIG{TERM} = sub { POSIX::_exit(0) };
    # exit with the test process
    my %prctl = (x86_64 => 157, aarch64 => 167);
    my ($arch) = (POSIX::uname())[4];
    syscall($prctl{$arch}, 1, 15, 0, 0, 0) if $prctl{$arch // ''};
    while (1) {
        my $c = $listen->accept or next;
        my $pid = fork;
        if (!defined $pid) { close $c; next }
        if ($pid == 0) {
            close $listen;
            $SIG{TERM} = 'DEFAULT';
            eval { _connection($c, $log) };
            POSIX::_exit(0);
        }
        close $c;
    }
}

sub _read_request {
    my ($c) = @_;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($c, $buf, 65536, length $buf);
        return unless $n;
    }
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    $len //= 0;
    while (length $body < $len) {
        my $n = sysread($c, $body, 65536, length $body);
        return unless $n;
    }
    my ($path) = $head =~ m{^\S+ (\S+)};
    return ($path, $body, $head);
}

sub _send {
    my ($c, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($c, $data, length($data) - $off, $off);
        return 0 unless $n;
        $off += $n;
    }
    return 1;
}

sub _reset {
    my ($c) = @_;
    setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    close $c;
}

# waits until the peer closes (or $max seconds)
sub _hold {
    my ($c, $max) = @_;
    my $end = time + $max;
    while (time < $end) {
        my $rin = '';
        vec($rin, fileno($c), 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, $end - time);
        next unless $n && $n > 0;
        my $r = sysread($c, my $b, 4096);
        last unless $r;
    }
}

sub _head {
    my ($type, $len) = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: $type\r\n"
        . (defined $len ? "Content-Length: $len\r\n" : '')
        . "Connection: close\r\n\r\n";
}

# one message of an AWS event stream (Bedrock's ConverseStream)
sub _es_frame {
    my ($event, $payload) = @_;
    my $h = '';
    for my $kv ([':event-type', $event], [':content-type', 'application/json'],
                [':message-type', 'event']) {
        $h .= pack('C', length $kv->[0]) . $kv->[0] . pack('Cn', 7, length $kv->[1])
            . $kv->[1];
    }
    my $prelude = pack('NN', 12 + length($h) + length($payload) + 4, length $h);
    my $msg = $prelude . pack('N', Compress::Zlib::crc32($prelude)) . $h . $payload;
    return $msg . pack('N', Compress::Zlib::crc32($msg));
}

# sse_open's stream: its events, each one a chunk
sub _open_stream {
    my ($d, $model, %o) = @_;
    my @text = ('Hello', ' there');
    if ($d eq 'gemini') {
        my $ev = sub { 'data: ' . $Json->encode($_[0]) . "\n\n" };
        my $cand = sub { +{ candidates => [{ content => { role => 'model',
                                                         parts => [{ text => $_[0] }] },
                                            index => 0, @_[1 .. $#_] }],
                           modelVersion => $model, responseId => 'open-1' } };
        my $final = { promptTokenCount => 7, candidatesTokenCount => 4,
                      totalTokenCount => 11 };
        my $prompt_only = { promptTokenCount => 7, totalTokenCount => 7 };
        # blocked: no answer to count, so no candidatesTokenCount
        if ($o{blocked} && $o{blocked} eq 'prompt') {
            return $ev->({ promptFeedback => { blockReason => 'SAFETY' },
                           usageMetadata => $prompt_only,
                           modelVersion => $model, responseId => 'open-1' });
        }
        if ($o{blocked}) {
            return ($ev->({ %{ $cand->($text[0]) }, usageMetadata => $prompt_only }),
                    $ev->({ candidates => [{ finishReason => 'SAFETY', index => 0,
                                             safetyRatings => [{
                                                 category => 'HARM_CATEGORY_HARASSMENT',
                                                 probability => 'HIGH',
                                                 blocked => JSON::PP::true() }] }],
                            usageMetadata => $prompt_only,
                            modelVersion => $model, responseId => 'open-1' }));
        }
        return ($ev->({ %{ $cand->($text[0]) },
                        usageMetadata => { promptTokenCount => 7, totalTokenCount => 7 } }),
                $o{late}
                ? ($ev->({ %{ $cand->($text[1], finishReason => 'STOP') },
                           usageMetadata => { promptTokenCount => 7,
                                              totalTokenCount => 7 } }),
                   $ev->({ usageMetadata => $final, modelVersion => $model,
                           responseId => 'open-1' }))
                : $ev->({ %{ $cand->($text[1], finishReason => 'STOP') },
                          usageMetadata => $final }));
    }
    if ($d eq 'anthropic') {
        my $ev = sub { "event: $_[0]{type}\ndata: " . $Json->encode($_[0]) . "\n\n" };
        return ($ev->({ type => 'message_start',
                        message => { id => 'msg_open', type => 'message',
                                     role => 'assistant', model => $model,
                                     content => [], stop_reason => undef,
                                     usage => { input_tokens => 7, output_tokens => 1 } } }),
                $ev->({ type => 'content_block_start', index => 0,
                        content_block => { type => 'text', text => '' } }),
                (map { $ev->({ type => 'content_block_delta', index => 0,
                               delta => { type => 'text_delta', text => $_ } }) } @text),
                $ev->({ type => 'content_block_stop', index => 0 }),
                $ev->({ type => 'message_delta',
                        delta => { stop_reason => 'end_turn', stop_sequence => undef },
                        usage => { output_tokens => 4 } }),
                $ev->({ type => 'message_stop' }));
    }
    if ($d eq 'bedrock') {
        my $ev = sub { _es_frame($_[0], $Json->encode($_[1])) };
        return ($ev->('messageStart', { role => 'assistant' }),
                (map { $ev->('contentBlockDelta', { contentBlockIndex => 0,
                                                    delta => { text => $_ } }) } @text),
                $ev->('contentBlockStop', { contentBlockIndex => 0 }),
                $ev->('messageStop', { stopReason => 'end_turn' }),
                $ev->('metadata', { usage => { inputTokens => 7, outputTokens => 4,
                                               totalTokens => 11 },
                                    metrics => { latencyMs => 1 } }));
    }
    return (sse_event($model, '', role => 1), (map { sse_event($model, $_) } @text),
            sse_event($model, undef, finish => 'stop'),
            'data: ' . $Json->encode({ id => 'chatcmpl-fault',
                                       object => 'chat.completion.chunk',
                                       created => 1, model => $model, choices => [],
                                       usage => { prompt_tokens => 7,
                                                  completion_tokens => 4,
                                                  total_tokens => 11 } }) . "\n\n",
            "data: [DONE]\n\n");
}

sub _connection {
    my ($c, $log) = @_;
    my ($path, $body, $head) = _read_request($c) or return;
    my ($spec) = $path =~ m{^/([^/]*)/};
    $spec //= '';
    my ($name, @kv) = split /,/, $spec;
    my %o = map { split /=/, $_, 2 } @kv;
    # not JSON::PP: it takes seconds over a 20 MiB body
    my ($model) = $body =~ /"model"\s*:\s*"([^"]*)"/;
    $model //= '';
    # (Gemini asks for a stream in its URL)
    my $stream = ($body =~ /"stream"\s*:\s*true/
                  || $path =~ /:streamGenerateContent/) ? 1 : 0;
    if (open my $fh, '>>', $log) {
        # the provider's key as it came: its header's name and value,
        # each one if sent twice
        my $auth = join '+', map { s/\s+$//r =~ s/:\s*/=/r }
                   $head =~ /^((?:authorization|x-api-key):[^\r\n]*)/mgi;
        syswrite $fh, "$name model=$model stream=$stream auth=" . ($auth || '-')
                      . ' bytes=' . length($body)
                      . ' sha256=' . Digest::SHA::sha256_hex($body) . "\n";
        close $fh;
    }

    my $type = $stream ? 'text/event-stream' : 'application/json';
    my $whole;
    # kib=N: an answer with N KiB of content
    my @content = $o{kib} ? (('z' x 1023) . ' ') x $o{kib} : ('Hello', ' from', ' a', ' fault');
    my $answer = $stream ? sse_stream($model, @content)
               : $o{dialect} ? dialect_json($o{dialect}, $model, join '', @content)
               : completion_json($model, join '', @content);
    if ($o{dialect} && ($o{deep} || $o{wide})) {
        # tool arguments nested deep=N levels, or an array of wide=N values
        my $args = $o{deep} ? ('[' x $o{deep}) . (']' x $o{deep})
                            : '[' . join(',', (0) x $o{wide}) . ']';
        $answer = dialect_tool_call($o{dialect}, $stream, $args);
        $type = $stream ? 'text/event-stream' : 'application/json';
        $whole = _head($type, $stream ? undef : length $answer) . $answer;
    }
    $whole //= _head($type, ($stream && !$o{len}) ? undef : length $answer) . $answer;

    if ($name eq 'rst') {
        _reset($c);
    } elsif ($name eq 'close') {
        close $c;
    } elsif ($name eq 'stall') {
        _hold($c, 120);
    } elsif ($name eq 'drip') {
        my $ms = $o{ms} // 1000;
        my $from = $o{from} // 0;
        _send($c, substr($whole, 0, $from)) or return;
        for my $i ($from .. length($whole) - 1) {
            _send($c, substr($whole, $i, 1)) or return;
            sleep $ms / 1000;
        }
        close $c;
    } elsif ($name eq 'rst_body') {
        my $part;
        if ($stream) {
            my @ev = split /(?<=\n\n)/, $answer;
            $part = $ev[0] . $ev[1] . substr($ev[2], 0, 20);
        } else {
            $part = substr($answer, 0, int(length($answer) / 2));
        }
        _send($c, _head($type, length $answer) . $part);
        # let the gateway read what was sent before the reset
        sleep 0.2;
        _reset($c);
    } elsif ($name eq 'cut_len' || $name eq 'bad_chunk') {
        my $half = substr($answer, 0, int(length($answer) / 2));
        if ($name eq 'cut_len') {
            _send($c, _head($type, length $answer) . $half);
        } else {
            _send($c, "HTTP/1.1 200 OK\r\nContent-Type: $type\r\n"
                      . "Transfer-Encoding: chunked\r\n\r\n"
                      . sprintf("%x\r\n%s\r\n", length $half, $half));
        }
        # what was sent is read before the rest breaks the body
        sleep 0.2;
        _send($c, "zz\r\nnot a chunk\r\n") if $name eq 'bad_chunk';
        close $c;
    } elsif ($name eq 'cut_event') {
        my @ev = split /(?<=\n\n)/, $answer;
        _send($c, _head($type) . ($stream ? $ev[0] . substr($ev[1], 0, 25)
                                          : substr($answer, 0, 60)));
        sleep 0.2;
        close $c;
    } elsif ($name eq 'junk_http') {
        _send($c, "\x00\x01garbage, not HTTP\r\n\r\n{\"not\":\"a response\"}\n");
        close $c;
    } elsif ($name eq 'hint103') {
        _send($c, "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
                  . $whole);
        close $c;
    } elsif ($name =~ /^sse_(error|stall|close)$/) {
        my $head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 . "Transfer-Encoding: chunked\r\n\r\n";
        if ($1 eq 'error') {
            my $ev = 'data: {"error":{"message":"Overloaded","type":"overloaded_error",'
                   . '"param":null,"code":null}}' . "\n\n";
            _send($c, $head . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $ev, $ev));
        } elsif ($1 eq 'stall') {
            _send($c, $head);
            _hold($c, 120);
        } else {
            _send($c, $head);
        }
        close $c;
    } elsif ($name eq 'sse_open') {
        my $d = $o{dialect} // 'openai';
        my @ev = _open_stream($d, $model, %o);
        my $head = "HTTP/1.1 200 OK\r\nContent-Type: "
                 . ($d eq 'bedrock' ? 'application/vnd.amazon.eventstream'
                                    : 'text/event-stream') . "\r\n"
                 . ($o{plain} ? "Connection: close\r\n"
                              : "Transfer-Encoding: chunked\r\n") . "\r\n";
        _send($c, $head . join '', map { $o{plain} ? $_
                                         : sprintf("%x\r\n%s\r\n", length $_, $_) } @ev)
            or return;
        _hold($c, 120);
        close $c;
    } elsif ($name eq 'empty') {
        _send($c, _head('application/json', 0));
        close $c;
    } elsif ($name eq 'redirect') {
        _send($c, "HTTP/1.1 302 Found\r\nLocation: http://mirror.example/v1\r\n"
                  . "Content-Length: 0\r\nConnection: close\r\n\r\n");
        close $c;
    } elsif ($name eq 'junk_json') {
        my $junk = '{"id":"x","choices":[{"message":{"content":"half' . "\x00<html>";
        _send($c, _head('application/json', length $junk) . $junk);
        close $c;
    } elsif ($name eq 'junk_sse') {
        my $junk = "this is not a field\n\n: a comment\n\ndata: {not json\n\n"
            . "data: [DONE]\n\n";
        _send($c, _head('text/event-stream', length $junk) . $junk);
        close $c;
    } elsif ($name eq 'big') {
        my $mib = $o{mib} // 10;
        if ($stream) {
            my $all = big_stream($model, $mib);
            _send($c, _head($type));
            for (my $off = 0; $off < length $all; $off += 65536) {
                _send($c, substr($all, $off, 65536)) or return;
            }
        } else {
            my $doc = big_completion($model, $mib * 1024 * 1024);
            _send($c, _head($type, length $doc) . $doc);
        }
        close $c;
    } elsif ($name eq 'big_event') {
        _send($c, _head($type) . 'data: {"choices":[{"index":0,"delta":{"content":"'
                  . ('y' x (10 * 1024 * 1024)) . '"}}]}');
        close $c;
    } elsif ($name eq 'error_200') {
        my $err = '{"error":{"message":"overloaded, in a 200","type":"server_error",'
                . '"param":null,"code":null}}';
        _send($c, $stream ? _head($type) . "data: $err\n\n"
                          : _head($type, length $err) . $err);
        close $c;
    } else {
        _send($c, $whole);
        _hold($c, $o{hold}) if $o{hold};
        close $c;
    }
}

1;
