# Azure's streams are OpenAI's: its events of content filter results alone
# (prompt_filter_results first, content_filter_offsets later) never reach
# the client, every event it gets is a chat.completion.chunk with a
# choice, and a content-filter finish stays finish_reason
# "content_filter". Recorded-shape Azure streams (t/fixtures/azure/), served
# whole and split at every byte offset. A script: every event of many
# answers is read as JSON.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post slurp offsets sse_events decode_json);
use Test::Nginx::LLM qw(start_nginx);

my $dir = $ENV{TEST_NGINX_FIXTURE_DIR};

my $conf = '';
for my $f (qw(stream filtered)) {
    $conf .= <<"CONF";
    llm_provider az_$f {
        url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/fixture/fixture=azure:$f.sse/openai;
        key az-key;
        format azure;
    }
    llm_route "$f-*" { target az_$f "split-*"; }
CONF
}

my $srv = start_nginx(
    name        => 'azure-stream',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $conf,
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

sub chunks {
    my ($model, $usage) = @_;
    my $res = post($srv->port, '/v1/chat/completions', {
        model => $model, stream => JSON::PP::true(),
        messages => [{ role => 'user', content => 'x' }],
        $usage ? (stream_options => { include_usage => JSON::PP::true() })
               : () });
    my @ev = sse_events($res->{body} // '');
    return ($res, map { $_->[1] } @ev);
}

# what a client of OpenAI's checks on every chunk
sub check {
    my ($name, $res, @data) = @_;
    my ($ok, $why) = (1, '');
    $ok = 0, $why = "status $res->{status}" unless $res->{status} == 200;
    $ok = 0, $why = 'no [DONE] last' unless @data && $data[-1] eq '[DONE]';
    my @json = map { decode_json($_) } @data[0 .. $#data - 1];
    for my $c (@json) {
        next if $ok == 0;
        if (($c->{object} // '') ne 'chat.completion.chunk') {
            ($ok, $why) = (0, "object " . ($c->{object} // 'missing'));
        } elsif (!@{ $c->{choices} } && !$c->{usage}) {
            ($ok, $why) = (0, 'a chunk without choices or usage');
        } elsif (@{ $c->{choices} } && !$c->{choices}[0]{delta}) {
            ($ok, $why) = (0, 'a choice without a delta');
        } elsif (exists $c->{prompt_filter_results}) {
            ($ok, $why) = (0, 'prompt_filter_results');
        }
    }
    ok($ok, "$name: every event is an OpenAI chunk") or diag $why;
    return @json;
}

my ($res, @data) = chunks('stream-999999');
my @json = check('stream', $res, @data);
is(join('', map { $_->{choices}[0]{delta}{content} // '' } @json),
   'Hello there.', 'stream: the text whole');
is(scalar @json, 4, 'stream: role, two pieces of text, finish');
is($json[-1]{choices}[0]{finish_reason}, 'stop', 'stream: finish stop');

($res, @data) = chunks('filtered-999999');
@json = check('filtered', $res, @data);
is($json[-1]{choices}[0]{finish_reason}, 'content_filter',
   'filtered: finish_reason content_filter');
is($json[-1]{choices}[0]{content_filter_results}{violence}{filtered},
   JSON::PP::true(), 'filtered: with Azure\'s results in the chunk');

# split at every offset: the same events
my $whole = join "\n", map { $_->{choices}[0]{delta}{content} // '' }
                       check('stream again', chunks('stream-999999'));
my $bad = 0;
for my $k (offsets(length slurp("$dir/azure/stream.sse"))) {
    my ($r, @d) = chunks("stream-$k");
    my @j = eval { map { decode_json($_) } @d[0 .. $#d - 1] };
    my $got = join "\n", map { $_->{choices}[0]{delta}{content} // '' } @j;
    my $objects = grep { ($_->{object} // '') ne 'chat.completion.chunk' } @j;
    if ($got ne $whole || $objects || $d[-1] ne '[DONE]') {
        $bad++;
        diag "split at $k: differs" if $bad < 4;
    }
}
is($bad, 0, 'stream: split at every offset, the same chunks');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
