# Request translation: OpenAI chat requests as each dialect's mock
# receives them. The mocks (anthropic.js, gemini.js, bedrock.js) check
# authentication as the real APIs do and, with echo=1, answer with what
# they received; the test compares the translated body exactly. With the
# debug log on, no key, secret, token or signature may reach it.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post decode_json sse_events);
use Test::Nginx::LLM qw(start_nginx);
use Digest::SHA ();

my $srv = start_nginx(
    name        => 'dialect-requests',
    log_level   => 'debug',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        key sk-ant-mock-key;
        format anthropic;
        max_tokens 1000;
    }
    llm_provider an_badkey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-wrong;
        format anthropic;
        version 2023-06-01;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/echo=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider gm_badkey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key not-the-key;
        format gemini;
    }
    llm_provider gm_nokey {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        format gemini;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_provider bd_token {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1,token=1;
        format bedrock;
        region eu-west-3;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
        session_token FQoGZXIvYXdzE;
    }
    llm_provider bd_badsecret {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key not-the-secret;
    }
    llm_provider bd_bearer {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1,bearer=1;
        format bedrock;
        region us-west-2;
        key ABSK-mock;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
    }
    llm_provider az_fixed {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
        deployment my-gpt4o;
        api_version 2025-01-01-preview;
    }

    llm_route an { target an claude-x; }
    llm_route an_badkey { target an_badkey claude-x; }
    llm_route gm { target gm gemini-x; }
    llm_route gm_badkey { target gm_badkey gemini-x; }
    llm_route gm_nokey { target gm_nokey gemini-x; }
    llm_route bd { target bd anthropic.claude-3-5-sonnet-20240620-v1:0; }
    llm_route bd_token { target bd_token amazon.nova-pro-v1:0; }
    llm_route bd_badsecret { target bd_badsecret m; }
    llm_route bd_bearer { target bd_bearer m; }
    llm_route az { target az gpt-4o-deployment; }
    llm_route az_fixed { target az_fixed; }

    llm_provider oa {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route oa { target oa gpt-x; }

    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        error_log logs/mock2.log info;
        location /azure/ {
            default_type application/json;
            return 200 '{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"$request_uri $http_api_key"},"finish_reason":"stop"}]}';
        }
    }
CONF
    config => <<'CONF',
    location /v1/ {
        client_body_buffer_size 1k;      # larger bodies: a temporary file
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $port = $srv->port;


# what the mock received: the answer's text, whole or from a stream

sub received {
    my ($route, $req) = @_;
    my $res = post($port, '/v1/chat/completions', { model => $route, %$req });
    my $text;

    if (($res->header('content-type') // '') =~ /event-stream/) {
        $text = join '', map {
            my $d = $_->[1] eq '[DONE]' ? {} : decode_json($_->[1]);
            $d->{choices}[0]{delta}{content} // '';
        } sse_events($res->{body});

    } else {
        my $d = eval { decode_json($res->{body}) } || {};
        $text = $d->{choices}[0]{message}{content};
    }

    # the text is characters already
    return ($res, scalar eval { JSON::PP->new->decode($text) }, $text);
}


my $conversation = [
    { role => 'system', content => 'Be brief.' },
    { role => 'developer', content => [{ type => 'text',
                                         text => 'Use English.' }] },
    { role => 'user', content => [
        { type => 'text', text => 'What is on these?' },
        { type => 'image_url',
          image_url => { url => 'data:image/png;base64,iVBORw0KGgo=' } },
        { type => 'image_url',
          image_url => { url => 'https://example.com/cat.png' } },
    ] },
    { role => 'assistant', content => 'Let me check the weather.',
      tool_calls => [{ id => 'call_1', type => 'function',
                       function => { name => 'get_weather',
                                     arguments => '{"location":"Paris"}' } }] },
    { role => 'tool', tool_call_id => 'call_1', content => '18C, sunny' },
    { role => 'user', content => 'Thanks, and tomorrow?' },
];

my $tools = [{ type => 'function', function => {
    name => 'get_weather', description => 'The weather somewhere',
    parameters => { type => 'object',
                    properties => { location => { type => 'string' } },
                    required => ['location'] } } }];

my %request = (
    messages => $conversation,
    tools => $tools,
    tool_choice => { type => 'function',
                     function => { name => 'get_weather' } },
    parallel_tool_calls => JSON::PP::false(),
    stop => 'END',
    temperature => 0.5,
    top_p => 0.9,
    max_completion_tokens => 50,
    user => 'user-1',
    seed => 7,
);


# Anthropic

my ($res, $seen) = received(an => \%request);

is_deeply($seen->{body}, {
    model => 'claude-x',
    max_tokens => 50,
    system => "Be brief.\n\nUse English.",
    messages => [
        { role => 'user', content => [
            { type => 'text', text => 'What is on these?' },
            { type => 'image', source => { type => 'base64',
                                           media_type => 'image/png',
                                           data => 'iVBORw0KGgo=' } },
            { type => 'image', source => {
                type => 'url', url => 'https://example.com/cat.png' } } ] },
        { role => 'assistant', content => [
            { type => 'text', text => 'Let me check the weather.' },
            { type => 'tool_use', id => 'call_1', name => 'get_weather',
              input => { location => 'Paris' } } ] },
        { role => 'user', content => [
            { type => 'tool_result', tool_use_id => 'call_1',
              content => '18C, sunny' },
            { type => 'text', text => 'Thanks, and tomorrow?' } ] },
    ],
    stop_sequences => ['END'],
    temperature => 0.5,
    top_p => 0.9,
    metadata => { user_id => 'user-1' },
    tools => [{ name => 'get_weather', description => 'The weather somewhere',
                input_schema => $tools->[0]{function}{parameters} }],
    tool_choice => { type => 'tool', name => 'get_weather',
                     disable_parallel_tool_use => JSON::PP::true() },
}, 'anthropic: the translated request') or diag explain $seen;

is_deeply($seen->{headers}, {
    'x-api-key' => '(set)', 'anthropic-version' => '2023-06-01',
    'anthropic-beta' => undef, 'content-type' => 'application/json',
    authorization => undef,
}, 'anthropic: its headers, not the client\'s');
is($seen->{path}, '/anthropic/echo=1/v1/messages', 'anthropic: the path');

($res, $seen) = received(an => {
    messages => [{ role => 'user', content => 'hi' }],
    stream => JSON::PP::true(),
    tool_choice => 'required',
});

is_deeply($seen->{body}, {
    model => 'claude-x', max_tokens => 1000, stream => JSON::PP::true(),
    messages => [{ role => 'user', content => [{ type => 'text',
                                                 text => 'hi' }] }],
    tool_choice => { type => 'any' },
}, 'anthropic: the provider\'s max_tokens, a stream, "required"');

$res = post($port, '/v1/chat/completions',
            { model => 'an_badkey', messages => [{ role => 'user',
                                                   content => 'x' }] });
is($res->{status}, 401, 'anthropic: a wrong key is a 401');
is_deeply(decode_json($res->{body}), { error => {
    message => 'invalid x-api-key', type => 'authentication_error',
    param => undef, code => 'authentication_error' } },
    'anthropic: its error in OpenAI\'s shape');


# Gemini

($res, $seen) = received(gm => \%request);

is_deeply($seen->{body}, {
    contents => [
        { role => 'user', parts => [
            { text => 'What is on these?' },
            { inlineData => { mimeType => 'image/png',
                              data => 'iVBORw0KGgo=' } },
            { fileData => { mimeType => 'image/png',
                            fileUri => 'https://example.com/cat.png' } } ] },
        { role => 'model', parts => [
            { text => 'Let me check the weather.' },
            { functionCall => { name => 'get_weather',
                                args => { location => 'Paris' } } } ] },
        { role => 'user', parts => [
            { functionResponse => { name => 'get_weather',
                                    response => { content => '18C, sunny' } } },
            { text => 'Thanks, and tomorrow?' } ] },
    ],
    systemInstruction => { parts => [{ text => "Be brief.\n\nUse English." }] },
    generationConfig => { maxOutputTokens => 50, temperature => 0.5,
                          topP => 0.9, stopSequences => ['END'] },
    tools => [{ functionDeclarations => [{
        name => 'get_weather', description => 'The weather somewhere',
        parameters => $tools->[0]{function}{parameters} }] }],
    toolConfig => { functionCallingConfig => {
        mode => 'ANY', allowedFunctionNames => ['get_weather'] } },
}, 'gemini: the translated request') or diag explain $seen;

is($seen->{path}, '/gemini/echo=1/v1beta/models/gemini-x:generateContent',
   'gemini: the model and method in the path');
is($seen->{headers}{authorization}, undef, 'gemini: no Authorization');

($res, $seen) = received(gm => {
    messages => [{ role => 'user', content => 'hi' }],
    stream => JSON::PP::true(),
    response_format => { type => 'json_object' },
});

is($seen->{path},
   '/gemini/echo=1/v1beta/models/gemini-x:streamGenerateContent',
   'gemini: streams use streamGenerateContent');
is_deeply($seen->{args}, { alt => 'sse' }, 'gemini: with alt=sse');
is_deeply($seen->{body}{generationConfig},
          { responseMimeType => 'application/json' },
          'gemini: json_object asks for JSON');

$res = post($port, '/v1/chat/completions',
            { model => 'gm_badkey', messages => [{ role => 'user',
                                                   content => 'x' }] });
is($res->{status}, 400, 'gemini: a wrong key is its 400');
is(decode_json($res->{body})->{error}{code}, 'INVALID_ARGUMENT',
   'gemini: with its status as the code');

$res = post($port, '/v1/chat/completions',
            { model => 'gm_nokey', messages => [{ role => 'user',
                                                  content => 'x' }] });
is($res->{status}, 403, 'gemini: no key is its 403');
is(decode_json($res->{body})->{error}{type}, 'permission_error',
   'gemini: a permission error');


# Bedrock: the mock checks the SigV4 signature with the secret

($res, $seen) = received(bd => \%request);

is($res->{status}, 200, 'bedrock: the signature is accepted');
is_deeply($seen->{body}, {
    messages => [
        { role => 'user', content => [
            { text => 'What is on these?' },
            { image => { format => 'png',
                         source => { bytes => 'iVBORw0KGgo=' } } } ] },
        { role => 'assistant', content => [
            { text => 'Let me check the weather.' },
            { toolUse => { toolUseId => 'call_1', name => 'get_weather',
                           input => { location => 'Paris' } } } ] },
        { role => 'user', content => [
            { toolResult => { toolUseId => 'call_1',
                              content => [{ text => '18C, sunny' }] } },
            { text => 'Thanks, and tomorrow?' } ] },
    ],
    system => [{ text => 'Be brief.' }, { text => 'Use English.' }],
    inferenceConfig => { maxTokens => 50, temperature => 0.5, topP => 0.9,
                         stopSequences => ['END'] },
    toolConfig => {
        tools => [{ toolSpec => {
            name => 'get_weather', description => 'The weather somewhere',
            inputSchema => { json => $tools->[0]{function}{parameters} } } }],
        toolChoice => { tool => { name => 'get_weather' } } },
}, 'bedrock: the translated request') or diag explain $seen;

is($seen->{path}, '/bedrock/echo=1/model/'
   . 'anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse',
   'bedrock: the model id, encoded, in the path');
like($seen->{headers}{authorization},
     qr{^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=\(valid\)$},
     'bedrock: the Authorization header');

($res, $seen) = received(bd_token => {
    messages => [{ role => 'user', content => 'hi' }],
    stream => JSON::PP::true(),
});

is($res->{status}, 200, 'bedrock: a session token is sent and signed');
like($seen->{path}, qr{/model/amazon\.nova-pro-v1%3A0/converse-stream$},
     'bedrock: streams use converse-stream');
like($seen->{headers}{authorization},
     qr{/eu-west-3/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,},
     'bedrock: with the token among the signed headers');

($res, $seen) = received(bd_bearer => {
    messages => [{ role => 'user', content => 'hi' }] });

is($seen->{headers}{authorization}, 'Bearer ABSK-mock',
   'bedrock: an API key is a bearer token');

$res = post($port, '/v1/chat/completions',
            { model => 'bd_badsecret', messages => [{ role => 'user',
                                                      content => 'x' }] });
is($res->{status}, 403, 'bedrock: a wrong secret is refused as AWS would');
is(decode_json($res->{body})->{error}{code}, 'InvalidSignatureException',
   'bedrock: with its error type as the code');


# a body in a temporary file is translated the same

my $long = join ' ', map { "word$_ \x{fc}n\x{ef} \x{2713}" } 1 .. 2000;

($res, $seen) = received(an => {
    messages => [{ role => 'system', content => 'Be brief.' },
                 { role => 'user', content => $long }] });
is_deeply($seen->{body}{messages},
          [{ role => 'user', content => [{ type => 'text', text => $long }] }],
          'a body read from a temporary file');


# an OpenAI route of the same gateway: no tree, the body spliced

my $raw = '{"model" :"oa", "messages":[{"role":"user","content":"x"}],'
        . '"n":1}';
(my $sent = $raw) =~ s/"model" :"oa"/"model":"gpt-x"/;

$res = post($port, '/v1/chat/completions', $raw);
is(decode_json($res->{body})->{mock}{body_sha256},
   Digest::SHA::sha256_hex($sent),
   'an OpenAI target still gets the client\'s bytes, model spliced');


# Azure: the deployment and the API version in the URL, api-key

$res = post($port, '/v1/chat/completions',
            { model => 'az', messages => [{ role => 'user',
                                            content => 'x' }] });
is(decode_json($res->{body})->{choices}[0]{message}{content},
   '/azure/openai/deployments/gpt-4o-deployment/chat/completions'
   . '?api-version=2024-10-21 az-key',
   'azure: the target model as the deployment');

$res = post($port, '/v1/chat/completions',
            { model => 'az_fixed', messages => [{ role => 'user',
                                                  content => 'x' }] });
is(decode_json($res->{body})->{choices}[0]{message}{content},
   '/azure/openai/deployments/my-gpt4o/chat/completions'
   . '?api-version=2025-01-01-preview az-key',
   'azure: a fixed deployment and api_version');

$srv->stop;

unlike(Test::Nginx::LLM::read_file($srv->servroot . '/logs/error.log'),
       qr/sk-ant-mock-key|gemini-mock-key|wJalrXUtnFEMI|FQoGZXIvYXdzE|az-key|ABSK-mock|Signature=[0-9a-f]{64}/,
       'no provider secret, session token or signature in the log');

$srv->check_clean('no alerts');

done_testing();
