# Golden Responses answers: recorded-shape provider responses
# (t/fixtures/<dialect>/) go through the gateway to a client of OpenAI's
# Responses API (POST /v1/responses); the output must be exactly the
# expected file (<fixture>.responses.expected), ids and times aside. An
# OpenAI-format target's Responses answer must pass byte for byte. Streams
# are also served split in two at every byte offset, and one byte per
# chunk: the output must not change. Usage goes into the accounting
# ($llm_*_tokens in the access log).
#
# GOLDEN_WRITE=1 writes the expected files instead (review them!).

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post slurp offsets fixture_length);
use Test::Nginx::LLM qw(start_nginx);

my $dir = "$ENV{TEST_NGINX_FIXTURE_DIR}";

# dialect, fixture, stream, usage "prompt completion cached"
my @cases = (
    [openai    => 'responses.json',     0, '37 11 11'],
    [openai    => 'responses.sse',      1, '37 11 11'],
    [anthropic => 'text.json',          0, '12 10 0'],
    [anthropic => 'tools.json',         0, '2572 89 2000'],
    [anthropic => 'tools.sse',          1, '2572 89 2000'],
    [anthropic => 'error.sse',          1, undef],
    [gemini    => 'text.json',          0, '8 12 4'],
    [gemini    => 'tools.json',         0, '40 20 0'],
    [gemini    => 'stream.sse',         1, '8 12 2'],
    [bedrock   => 'tools.json',         0, '1375 70 1000'],
    [bedrock   => 'stream.es.json',     1, '1375 70 1000'],
);

my %base = (openai => '/v1', anthropic => '/v1', gemini => '/v1beta',
            bedrock => '');
my %auth = (openai => 'key k;', anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');

my $conf = <<'CONF';
    log_format golden '$llm_model p=$llm_prompt_tokens '
                      'c=$llm_completion_tokens cached=$llm_cached_tokens';
CONF

for my $i (0 .. $#cases) {
    my ($dialect, $file) = @{ $cases[$i] };

    $conf .= <<"CONF";
    llm_provider c$i {
        url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/fixture/fixture=$dialect:$file$base{$dialect};
        format $dialect;
        $auth{$dialect}
    }
    llm_route "c$i-*" { target c$i "split-*"; }
CONF
}

my $srv = start_nginx(
    name        => 'responses-golden',
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

# ids and times the gateway makes
sub normalize {
    my ($text) = @_;

    $text =~ s/"created_at":\d+/"created_at":0/g;
    $text =~ s/\b(resp_|msg_|fc_|call_)[A-Za-z0-9]{24}\b/${1}ID/g;
    $text =~ s/split-(?:\d+|bytewise)/split-N/g;

    return $text;
}

sub request {
    my ($i, $split) = @_;

    return post($srv->port, '/v1/responses', {
        model => "c$i-$split",
        input => 'x',
        $cases[$i][2] ? (stream => JSON::PP::true()) : (),
    });
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, $stream) = @{ $cases[$i] };
    my $name = "$dialect/$file";
    my $native = $dialect eq 'openai';
    my $golden = "$dir/$dialect/$file.responses.expected";

    my $res = request($i, 999999);
    my $out = $native ? $res->{body} // '' : normalize($res->{body} // '');

    is($res->{status}, 200, "$name: status");

    if ($native) {
        is($out, slurp("$dir/$dialect/$file"), "$name: passed byte for byte");

    } else {
        if ($ENV{GOLDEN_WRITE}) {
            open my $fh, '>:raw', $golden or die "$golden: $!";
            print $fh $out;
            close $fh;
        }

        is($out, slurp($golden), "$name: the expected Responses output");
    }

    like($res->header('content-type') // '',
         $stream ? qr{^text/event-stream$} : qr{^application/json},
         "$name: content type");

    next unless $stream;

    my $length = fixture_length($dir, $dialect, $file);
    my ($bad, $n);

    for my $k (offsets($length)) {
        my $r = request($i, $k);
        my $body = $r->{body} // '';
        $n++;

        if (($native ? $body : normalize($body)) ne $out) {
            $bad = $k;
            diag("split at $k:\n$body");
            last;
        }
    }

    ok(!defined $bad, "$name: the same output split at each of $n offsets");

    $res = request($i, 'bytewise');
    is($native ? $res->{body} // '' : normalize($res->{body} // ''), $out,
       "$name: the same output bytewise");
}

$srv->stop;

# usage: the log line of each whole request

my %log;
for my $line (split /\n/, slurp($srv->servroot . '/logs/golden.log')) {
    $log{$1} = $2 if $line =~ /^(c\d+)-999999 (.*)$/;
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, undef, $usage) = @{ $cases[$i] };
    next unless defined $usage;

    my ($p, $c, $cached) = split / /, $usage;
    is($log{"c$i"}, "p=$p c=$c cached=$cached",
       "$dialect/$file: usage in the accounting");
}

$srv->check_clean('no alerts');

done_testing();
