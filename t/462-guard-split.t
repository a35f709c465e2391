# Streamed redaction that cannot leak, through real requests: recorded-
# shape streams of every dialect (t/fixtures) go through a guard policy
# whose rules match text and tool arguments that the providers' events
# cut apart, to OpenAI clients and at Anthropic's door, served split in
# two at every byte offset and one byte per chunk. At every split the
# client's text and arguments, put together, are exactly the unguarded
# answer's with the rules applied (leftmost match, the first rule among
# those at one place; Perl's alternation has the same semantics), so no
# byte of a match ever went out; the whole output is the same at every
# split; usage in the accounting is what the unguarded answer counts.
#
# A script: thousands of generated requests.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post normalize slurp offsets sse_events decode_json
                     fixture_length);
use Test::Nginx::LLM qw(start_nginx);

my $dir = "$ENV{TEST_NGINX_FIXTURE_DIR}";

# the rules, in the policy's order: name, pattern (bytes), placeholder
my @rules = (
    [weather => 'check\s+the\s+weather', '[WEATHER]'],
    [city    => 'San Francisco|Paris',   '[CITY]'],
    [hello   => 'Hel+o',                 '[HI]'],
    [world   => 'wörld',                 '[WORLD]'],
    [lookup  => 'look\s+it\s+up',        '[LOOKUP]'],
    [key     => 'location',              '[KEY]'],
    [sign    => 'WZPZ',                  '[SIGN]'],
);

# dialect, fixture, client door
my @cases = (
    [anthropic => 'tools.sse',      'openai'],
    [gemini    => 'stream.sse',     'openai'],
    [bedrock   => 'stream.es.json', 'openai'],
    [openai    => 'tools.sse',      'openai'],
    [openai    => 'tools.sse',      'anthropic'],
    [anthropic => 'tools.sse',      'anthropic'],
);

my %base = (anthropic => '/v1', gemini => '/v1beta', bedrock => '',
            openai => '/v1');
my %auth = (anthropic => 'key k;', gemini => 'key k;', openai => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');

my $conf = <<'CONF';
    log_format usage '$llm_model p=$llm_prompt_tokens '
                     'c=$llm_completion_tokens guard=$llm_guard';
    llm_guard split {
CONF

for my $rule (@rules) {
    $conf .= "        redact $rule->[0] \"$rule->[1]\" \"$rule->[2]\";\n";
}

$conf .= "    }\n";

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
    name        => 'guard-split',
    log_level   => 'info',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $conf,
    config      => <<'CONF',
    location /v1/ {
        access_log logs/usage.log usage;
        llm_guard_policy split;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }

    location /open/v1/ {
        access_log logs/open.log usage;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

sub request {
    my ($i, $split, $prefix) = @_;
    my $door = $cases[$i][2];

    if ($door eq 'anthropic') {
        return post($srv->port, "$prefix/v1/messages", {
            model => "c$i-$split", max_tokens => 100, stream => JSON::PP::true(),
            messages => [{ role => 'user', content => 'x' }],
        }, 'anthropic-version' => '2023-06-01');
    }

    return post($srv->port, "$prefix/v1/chat/completions", {
        model => "c$i-$split", stream => JSON::PP::true(),
        stream_options => { include_usage => JSON::PP::true() },
        messages => [{ role => 'user', content => 'x' }],
    });
}

# the client's text, and each tool's arguments, put together (bytes)

sub parts {
    my ($door, $body) = @_;
    my ($text, @args) = ('');

    for my $ev (sse_events($body)) {
        my $data = $ev->[1];
        next unless $data =~ /^\{/;

        my $d = decode_json($data);

        if ($door eq 'anthropic') {
            next unless ($d->{type} // '') eq 'content_block_delta';
            my $delta = $d->{delta};
            $text .= $delta->{text} // '';
            $args[$d->{index}] .= $delta->{partial_json}
                if defined $delta->{partial_json};
            next;
        }

        for my $c (@{ $d->{choices} // [] }) {
            $text .= $c->{delta}{content} // '';
            for my $t (@{ $c->{delta}{tool_calls} // [] }) {
                $args[$t->{index}] .= $t->{function}{arguments} // '';
            }
        }
    }

    my @all = ($text, grep { defined } @args);
    utf8::encode($_) for @all;

    return join "\n--\n", @all;
}

my $any = join '|', map { "($_->[1])" } @rules;

sub redact {
    my ($text) = @_;

    $text =~ s{$any}{
        my $n = (grep { defined $-[$_ + 1] } 0 .. $#rules)[0];
        $rules[$n][2];
    }ge;

    return $text;
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, $door) = @{ $cases[$i] };
    my $name = "$dialect/$file to $door clients";

    my $open = request($i, 999999, '/open');
    is($open->{status}, 200, "$name: unguarded: 200");

    my $want = redact(parts($door, $open->{body} // ''));
    isnt($want, parts($door, $open->{body} // ''),
         "$name: the rules match something");

    my $res = request($i, 999999, '');
    my $out = normalize($res->{body} // '');

    is($res->{status}, 200, "$name: guarded: 200");
    is(parts($door, $res->{body} // ''), $want,
       "$name: text and arguments redacted");

    my $length = fixture_length($dir, $dialect, $file);
    my ($bad, $n);

    for my $k ((offsets($length)), 'bytewise') {
        my $r = request($i, $k, '');
        $n++;

        if (parts($door, $r->{body} // '') ne $want
            || normalize($r->{body} // '') ne $out)
        {
            $bad = $k;
            diag("split at $k:\n" . ($r->{body} // '(none)'));
            last;
        }
    }

    ok(!defined $bad, "$name: the same redacted output split at each of "
                      . "$n offsets and bytewise");
}

$srv->stop;

# usage: unchanged by redaction; $llm_guard names the rules that fired

my (%open, %guarded);

for my $line (split /\n/, slurp($srv->servroot . '/logs/open.log')) {
    $open{$1} = $2 if $line =~ /^(c\d+)-999999 (p=\S+ c=\S+)/;
}

for my $line (split /\n/, slurp($srv->servroot . '/logs/usage.log')) {
    $guarded{$1} = [$2, $3] if $line =~ /^(c\d+)-999999 (p=\S+ c=\S+) guard=(.*)$/;
}

for my $i (0 .. $#cases) {
    my ($dialect, $file, $door) = @{ $cases[$i] };

    is($guarded{"c$i"}[0], $open{"c$i"},
       "$dialect/$file to $door clients: usage as without the guard");
    like($guarded{"c$i"}[1], qr{^split/\w+:redact:response(?:,split/\w+:redact:response)*$},
         "$dialect/$file to $door clients: \$llm_guard names the rules");
}

$srv->check_clean('no alerts');

done_testing();


