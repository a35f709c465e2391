# Golden translations: recorded-shape provider responses (t/fixtures/
# <dialect>/, written from the providers' API references) go through the
# gateway to an OpenAI client; the output must be exactly the expected
# file (<fixture>.expected), ids and times aside. Streams are also served
# split in two at every byte offset (two chunks of the response, read in
# separate buffers), and one byte per chunk: the output must not change.
# Usage goes into the
# accounting ($llm_*_tokens in the access log).
#
# GOLDEN_WRITE=1 writes the expected files instead (review them!).
#
# A script: every fixture served split at every byte offset: thousands of
# generated requests.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post normalize slurp offsets fixture_length);
use Test::Nginx::LLM qw(start_nginx);

my $dir = "$ENV{TEST_NGINX_FIXTURE_DIR}";

# dialect, fixture, stream, status, more controls, usage "prompt completion
# cached" (undef: none reported)
my @cases = (
    [anthropic => 'text.json',          0, 200, '', '12 10 0'],
    [anthropic => 'tools.json',         0, 200, '', '2572 89 2000'],
    [anthropic => 'tools.sse',          1, 200, '', '2572 89 2000'],
    # broken off by an error event: estimated from what arrived (the
    # request's 5 bytes and 4 a message; "Partial"), as OpenAI's are
    [anthropic => 'error.sse',          1, 200, '', '6 2 0'],
    [anthropic => 'overloaded.json',    0, 529, '', undef],
    [gemini    => 'text.json',          0, 200, '', '8 12 4'],
    [gemini    => 'tools.json',         0, 200, '', '40 20 0'],
    [gemini    => 'safety.json',        0, 200, '', '11 0 0'],
    [gemini    => 'blocked.json',       0, 200, '', '9 0 0'],
    [gemini    => 'stream.sse',         1, 200, '', '8 12 2'],
    [gemini    => 'usage-last.sse',     1, 200, '', '5 3 0'],
    [gemini    => 'error.json',         0, 429, '', undef],
    [bedrock   => 'text.json',          0, 200, '', '30 8 0'],
    [bedrock   => 'tools.json',         0, 200, '', '1375 70 1000'],
    [bedrock   => 'stream.es.json',     1, 200, '', '1375 70 1000'],
    [bedrock   => 'exception.es.json',  1, 200, '', undef],
    [bedrock   => 'throttled.json',     0, 429,
     'errortype=ThrottlingException', undef],

    # damaged frames: in the prelude of the second message, in the
    # headers of the first; the stream ends with an error event
    [bedrock   => 'stream.es.json',     1, 200, 'corrupt=186', undef],
    # broken before its answer began: failed (502), as if it had never
    # answered (its chunked stream's header was held)
    [bedrock   => 'stream.es.json',     1, 200, 'corrupt=20',  undef, 502],
);

my %base = (anthropic => '/v1', gemini => '/v1beta', bedrock => '');
my %auth = (anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');

my $conf = <<'CONF';
    log_format golden '$llm_model p=$llm_prompt_tokens '
                      'c=$llm_completion_tokens cached=$llm_cached_tokens';
CONF

for my $i (0 .. $#cases) {
    my ($dialect, $file, $stream, $status, $more) = @{ $cases[$i] };
    my $controls = "fixture=$dialect:$file,status=$status"
                   . ($more ? ",$more" : '');

    $conf .= <<"CONF";
    llm_provider c$i {
        url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/fixture/$controls$base{$dialect};
        format $dialect;
        $auth{$dialect}
    }
    llm_route "c$i-*" { target c$i "split-*"; }
CONF
}

my $srv = start_nginx(
    name        => 'dialect-golden',
    log_level   => 'info',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $conf,
    config      => <<'CONF',
    location /v1/ {
        access_log logs/golden.log golden;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

sub request {
    my ($i, $split) = @_;
    my $stream = $cases[$i][2];

    return post($srv->port, '/v1/chat/completions', {
        model => "c$i-$split",
        messages => [{ role => 'user', content => 'x' }],
        $stream ? (stream => JSON::PP::true(),
                   stream_options => { include_usage => JSON::PP::true() })
                : (),
    });
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, $stream, $status, $more, $usage, $expect) = @{ $cases[$i] };
    my $name = "$dialect/$file" . ($more ? " ($more)" : '');
    # the status the client gets, if not the provider's
    $status = $expect // $status;
    my $golden = "$dir/$dialect/$file"
                 . ($more =~ /corrupt=(\d+)/ ? ".corrupt$1" : '')
                 . '.expected';

    my $res = request($i, 999999);
    my $out = normalize($res->{body} // '');

    is($res->{status}, $status, "$name: status $status kept");

    if ($ENV{GOLDEN_WRITE}) {
        open my $fh, '>:raw', $golden or die "$golden: $!";
        print $fh $out;
        close $fh;
    }

    is($out, slurp($golden), "$name: the expected OpenAI output");

    like($res->header('content-type') // '',
         $stream && $status == 200 ? qr{^text/event-stream$}
                                   : qr{^application/json$},
         "$name: content type");

    next unless $stream;

    my $length = fixture_length($dir, $dialect, $file);
    my ($bad, $n);

    for my $k (offsets($length)) {
        my $r = request($i, $k);
        $n++;

        if (normalize($r->{body} // '') ne $out) {
            $bad = $k;
            diag("split at $k:\n" . ($r->{body} // '(none)'));
            last;
        }
    }

    ok(!defined $bad, "$name: the same output split at each of $n offsets");

    # and in as many pieces as it has bytes

    $res = request($i, 'bytewise');
    is(normalize($res->{body} // ''), $out, "$name: the same output bytewise");
}

$srv->stop;

# usage: the log line of each whole request

my %log;
for my $line (split /\n/, slurp($srv->servroot . '/logs/golden.log')) {
    $log{$1} = $2 if $line =~ /^(c\d+)-999999 (.*)$/;
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, undef, undef, undef, $usage) = @{ $cases[$i] };
    next unless defined $usage;

    my ($p, $c, $cached) = split / /, $usage;
    is($log{"c$i"}, "p=$p c=$c cached=$cached",
       "$dialect/$file: usage in the accounting");
}

$srv->check_clean('no alerts');

done_testing();


