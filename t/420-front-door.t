# Anthropic's door: POST /v1/messages in Anthropic's format, routed like
# any request. An OpenAI-format target gets a translated request and its
# answer, whole or streamed, comes back in Anthropic's format; an
# Anthropic target gets the body as it came (model replaced) and its
# answer as it is. Errors are Anthropic-shaped.
#
# A script: the golden stream is asked for split at every offset (2,763
# requests to one running nginx, each compared with the first answer),
# and the access log of all the requests is read at the end.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post decode_json encode_json sse_events slurp offsets);
use Test::Nginx::LLM qw(start_nginx);
use Digest::SHA ();

my $dir = $ENV{TEST_NGINX_FIXTURE_DIR};

my $srv = start_nginx(
    name        => 'front-door',
    log_level   => 'info',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    log_format door '$llm_model $llm_provider p=$llm_prompt_tokens '
                    'c=$llm_completion_tokens cached=$llm_cached_tokens';
    llm_provider oa {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/tools=1/v1;
        key sk-oa;
    }
    llm_provider oa_echo {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo=1/v1;
    }
    llm_provider oa_busy {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=400/v1;
    }
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider an_plain {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider fx {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:tools.sse/v1;
    }
    llm_provider fxj {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:tools.json/v1;
    }
    llm_provider fxb {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:broken.sse/v1;
    }
    llm_provider fxe {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=openai:error.json,status=429/v1;
    }

    llm_route gpt { target oa gpt-x; }
    llm_route echo { target oa_echo gpt-echo; }
    llm_route busy { target oa_busy; }
    llm_route claude { target an claude-real-name; }
    llm_route claude-plain { target an_plain claude-real-name; }
    llm_route gemini { target gm gemini-x; }
    llm_route "fx-*" { target fx "split-*"; }
    llm_route fxj { target fxj; }
    llm_route fxe { target fxe; }
    llm_route fxb { target fxb; }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/door.log door;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $port = $srv->port;

my @anthropic = ('anthropic-version' => '2023-06-01',
                 'x-api-key' => 'sk-client-never-forwarded');


# the request as an OpenAI provider receives it

my $request = {
    model => 'echo',
    max_tokens => 300,
    system => [{ type => 'text', text => 'S1.' },
               { type => 'text', text => 'S2.' }],
    messages => [
        { role => 'user', content => 'Weather in Paris?' },
        { role => 'assistant', content => [
            { type => 'thinking', thinking => 'hmm', signature => 'x' },
            { type => 'text', text => 'Checking.' },
            { type => 'tool_use', id => 'toolu_1', name => 'get_weather',
              input => { location => 'Paris' } } ] },
        { role => 'user', content => [
            { type => 'tool_result', tool_use_id => 'toolu_1',
              content => [{ type => 'text', text => '18C' }] },
            { type => 'text', text => 'And this?' },
            { type => 'image', source => { type => 'base64',
                                           media_type => 'image/jpeg',
                                           data => '/9j/4AAQ' } } ] },
    ],
    tools => [{ name => 'get_weather', description => 'Weather',
                input_schema => { type => 'object', properties => {
                    location => { type => 'string' } } } },
              { type => 'web_search_20250305', name => 'web_search' }],
    tool_choice => { type => 'any', disable_parallel_tool_use =>
                                        JSON::PP::true() },
    stop_sequences => ['END'],
    temperature => 0.2,
    top_k => 5,
    metadata => { user_id => 'u-9' },
};

my $res = post($port, '/v1/messages', $request, @anthropic);
is($res->{status}, 200, 'a request to an OpenAI target');

my $msg = decode_json($res->{body});
is_deeply(decode_json($msg->{content}[0]{text}), {
    model => 'gpt-echo',
    messages => [
        { role => 'system', content => "S1.\n\nS2." },
        { role => 'user', content => 'Weather in Paris?' },
        { role => 'assistant', content => 'Checking.',
          tool_calls => [{ id => 'toolu_1', type => 'function',
                           function => { name => 'get_weather',
                                         arguments => '{"location":"Paris"}' }
                        }] },
        { role => 'tool', tool_call_id => 'toolu_1', content => '18C' },
        { role => 'user', content => [
            { type => 'text', text => 'And this?' },
            { type => 'image_url',
              image_url => { url => 'data:image/jpeg;base64,/9j/4AAQ' } } ] },
    ],
    max_tokens => 300,
    tools => [{ type => 'function', function => {
        name => 'get_weather', description => 'Weather',
        parameters => { type => 'object', properties => {
            location => { type => 'string' } } } } }],
    tool_choice => 'required',
    parallel_tool_calls => JSON::PP::false(),
    stop => ['END'],
    temperature => 0.2,
    user => 'u-9',
}, 'the OpenAI request: system, turns, tool use and results, image')
    or diag $msg->{content}[0]{text};

is($msg->{type}, 'message', 'the answer is an Anthropic message');
is($msg->{role}, 'assistant', 'of the assistant');
is($msg->{stop_reason}, 'end_turn', 'stop is end_turn');
like($msg->{id}, qr/^chatcmpl-mock-/, 'the provider\'s id');


# a stream from an OpenAI target, with usage

$res = post($port, '/v1/messages', {
    model => 'gpt', max_tokens => 100, stream => JSON::PP::true(),
    messages => [{ role => 'user', content => 'one two' }] }, @anthropic);

my @events = sse_events($res->{body});
is_deeply([map { $_->[0] } @events],
          ['message_start', 'content_block_start',
           ('content_block_delta') x (@events - 5),
           'content_block_stop', 'message_delta', 'message_stop'],
          'a stream: Anthropic\'s events in order');
is(join('', map { $_->[0] eq 'content_block_delta'
                  ? decode_json($_->[1])->{delta}{text} : '' } @events),
   'Hello from the mock provider. You said: one two',
   'the text');
my $delta = decode_json($events[-2][1]);
is($delta->{delta}{stop_reason}, 'end_turn', 'message_delta: stop reason');
ok($delta->{usage}{output_tokens} > 0, 'message_delta: usage');


# tools from an OpenAI target, whole and streamed

$res = post($port, '/v1/messages', {
    model => 'gpt', max_tokens => 100,
    tools => [{ name => 'get_weather', input_schema => {
        type => 'object', properties => { location => { type => 'string' } }
    } }],
    messages => [{ role => 'user', content => 'Weather?' }] }, @anthropic);

$msg = decode_json($res->{body});
is_deeply($msg->{content}, [{ type => 'tool_use', id => 'call_mock1',
                              name => 'get_weather',
                              input => { location => 'Paris' } }],
          'a tool call becomes a tool_use block');
is($msg->{stop_reason}, 'tool_use', 'stop_reason tool_use');


# golden: an OpenAI stream with a tool call, split at every offset

my $golden = "$dir/openai/tools.sse.anthropic.expected";
my ($out, $bad, $n);

for my $k (999999, offsets(length slurp("$dir/openai/tools.sse"))) {
    $res = post($port, '/v1/messages', {
        model => "fx-$k", max_tokens => 10, stream => JSON::PP::true(),
        messages => [{ role => 'user', content => 'x' }] }, @anthropic);

    my $text = $res->{body} // '';

    if (!defined $out) {
        $out = $text;

        if ($ENV{GOLDEN_WRITE}) {
            open my $fh, '>:raw', $golden or die;
            print $fh $out;
        }

        is($out, slurp($golden), 'an OpenAI stream in Anthropic\'s events');
        next;
    }

    $n++;

    if ($text ne $out) {
        $bad = $k;
        diag("split at $k:\n$text");
        last;
    }
}

ok(!defined $bad, "the same events split at each of $n offsets");

$res = post($port, '/v1/messages', {
    model => 'fx-bytewise', max_tokens => 10, stream => JSON::PP::true(),
    messages => [{ role => 'user', content => 'x' }] }, @anthropic);
is($res->{body}, $out, 'the same events from a chunk per byte');

$res = post($port, '/v1/messages', {
    model => 'fxj', max_tokens => 10,
    messages => [{ role => 'user', content => 'x' }] }, @anthropic);

if ($ENV{GOLDEN_WRITE}) {
    open my $fh, '>:raw', "$dir/openai/tools.json.anthropic.expected" or die;
    print $fh $res->{body};
}

is($res->{body}, slurp("$dir/openai/tools.json.anthropic.expected"),
   'an OpenAI completion with a tool call as an Anthropic message');


# an Anthropic target: the body as it came, the model replaced

my $body = '{"model" : "claude","max_tokens":20,"messages":[{"role":"user",'
         . '"content":[{"type":"text","text":"hi","cache_control":'
         . '{"type":"ephemeral"}}]}],"thinking":{"type":"enabled",'
         . '"budget_tokens":1024}}';

$res = post($port, '/v1/messages', $body, @anthropic,
            'anthropic-beta' => 'prompt-caching-2024-07-31');
$msg = decode_json($res->{body});
my $seen = decode_json($msg->{content}[0]{text});

(my $sent = $body) =~ s/"claude"/"claude-real-name"/;
is_deeply($seen->{body}, decode_json($sent),
          'an Anthropic target gets the body as it came, model replaced');
is($seen->{headers}{'anthropic-beta'}, 'prompt-caching-2024-07-31',
   'and the client\'s anthropic-beta');
is($seen->{headers}{'x-api-key'}, '(set)', 'with the provider\'s key');
is($msg->{id}, 'msg_mock1', 'the answer passes as it is');

$res = post($port, '/v1/messages', {
    model => 'claude-plain', max_tokens => 20, stream => JSON::PP::true(),
    messages => [{ role => 'user', content => 'hi' }] }, @anthropic);
@events = sse_events($res->{body});
is_deeply([map { $_->[0] } @events[0 .. 2]],
          ['message_start', 'content_block_start', 'ping'],
          'an Anthropic stream passes as it is, ping included');


# any target: Gemini

$res = post($port, '/v1/messages', {
    model => 'gemini', max_tokens => 20,
    messages => [{ role => 'user', content => 'hi gemini' }] }, @anthropic);
$msg = decode_json($res->{body});
is($msg->{content}[0]{text}, 'Hello from the mock provider. You said: '
                             . 'hi gemini', 'a Gemini target');
is_deeply($msg->{usage}, { input_tokens => 21, output_tokens => 9,
                           cache_creation_input_tokens => 0,
                           cache_read_input_tokens => 0 },
          'with its usage');


# errors, in Anthropic's shape

$res = post($port, '/v1/messages', {
    model => 'nope', max_tokens => 20,
    messages => [{ role => 'user', content => 'x' }] }, @anthropic);
is($res->{status}, 404, 'an unknown model: 404');
is(decode_json($res->{body})->{error}{type}, 'not_found_error',
   'as an Anthropic not_found_error');
is(decode_json($res->{body})->{type}, 'error', 'of type error');

$res = post($port, '/v1/messages', {
    model => 'gpt', messages => [{ role => 'user', content => 'x' }] },
    @anthropic);
is($res->{status}, 400, 'max_tokens is required, as Anthropic requires it');
is_deeply(decode_json($res->{body}), { type => 'error', error => {
    type => 'invalid_request_error',
    message => 'max_tokens: Field required' } }, 'in Anthropic\'s words');

$res = post($port, '/v1/messages', {
    model => 'fxe', max_tokens => 20,
    messages => [{ role => 'user', content => 'x' }] }, @anthropic);
is($res->{status}, 429, 'a provider\'s 429 keeps its status');
is_deeply(decode_json($res->{body}), { type => 'error', error => {
    type => 'rate_limit_error',
    message => 'Rate limit reached for gpt-4o.' } },
    'an OpenAI error in Anthropic\'s shape');

$res = post($port, '/v1/messages', {
    model => 'fxb', max_tokens => 20, stream => JSON::PP::true(),
    messages => [{ role => 'user', content => 'x' }] }, @anthropic);
@events = sse_events($res->{body});
is_deeply([map { $_->[0] } @events],
          ['message_start', 'content_block_start', 'content_block_delta',
           'error'],
          'a stream that ends early ends with an error event');
is_deeply(decode_json($events[-1][1]), { type => 'error', error => {
    type => 'api_error',
    message => 'The provider ended the stream before it was complete.' } },
    'Anthropic\'s error event, which its SDK raises');

$res = http_get('/v1/messages');
is($res->{status}, 405, 'GET /v1/messages: 405');

$srv->stop;

my $log = slurp($srv->servroot . '/logs/door.log');
like($log, qr/^gpt oa p=\d+ c=\d+ cached=0$/m,
     'usage from a translated stream is accounted');
like($log, qr/^fx-999999 fx p=82 c=18 cached=64$/m,
     'the OpenAI usage chunk is accounted, cached tokens too');
like($log, qr/^claude-plain an_plain p=25 c=12 cached=0$/m,
     'usage of a stream passed as it is is accounted');

$srv->check_clean('no alerts');

done_testing();


sub http_get {
    return Test::Nginx::LLM::http_request(port => $port, uri => shift);
}
