# Prompt cache breakpoints (docs/cache.md): Anthropic's cache_control on
# system blocks, message content blocks and tools, through Anthropic's
# door and as an extension on OpenAI's content parts and tools. Anthropic
# targets get cache_control on the matching block, Bedrock targets a
# {"cachePoint":{"type":"default"}} block after it, other targets none.
# The mocks answer with what they received (echo=1); the blocks compare
# the translated bodies exactly.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use LLM::Dialects qw(encode_json echoed_re);

no_shuffle();

LLM::Fixtures::defaults(
    more_headers => "Content-Type: application/json\nanthropic-version: 2023-06-01",
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/echo=1/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1,bearer=1;
        format bedrock;
        region us-east-1;
        key ABSK-mock;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/echo=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider oa {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo=1/v1;
    }
    llm_route an { target an claude-x; }
    llm_route bd { target bd anthropic.claude-x; }
    llm_route gm { target gm gemini-x; }
    llm_route oa { target oa gpt-x; }
    llm_route an-auto { target an claude-x; cache_breakpoint auto; }
    llm_route bd-auto { target bd anthropic.claude-x; cache_breakpoint auto; }
    llm_route oa-auto { target oa gpt-x; cache_breakpoint auto; }
CONF
);


my $cc = { type => 'ephemeral' };

# Anthropic's door: breakpoints on the system, a text, an image, a tool
# result and a tool

our %Door = (
    max_tokens => 20,
    system => [{ type => 'text', text => 'S1.' },
               { type => 'text', text => 'S2.', cache_control => $cc },
               { type => 'text', text => 'S3.' }],
    messages => [
        { role => 'user', content => [
            { type => 'text', text => 'Doc.', cache_control => $cc },
            { type => 'image', source => { type => 'base64',
                                           media_type => 'image/png',
                                           data => 'iVBORw0KGgo=' },
              cache_control => $cc },
            { type => 'text', text => 'Q?' } ] },
        { role => 'assistant', content => [
            { type => 'tool_use', id => 't1', name => 'f',
              input => { a => 1 } } ] },
        { role => 'user', content => [
            { type => 'tool_result', tool_use_id => 't1', content => 'R',
              cache_control => $cc } ] },
    ],
    tools => [{ name => 'f', description => 'F',
                input_schema => { type => 'object' },
                cache_control => $cc }],
);

# OpenAI's door: the same, as the extension on parts and tools
our %Chat = (
    max_tokens => 20,
    messages => [
        { role => 'system', content => [
            { type => 'text', text => 'S1.' },
            { type => 'text', text => 'S2.',
              cache_control => { type => 'ephemeral', ttl => '1h' } },
            { type => 'text', text => 'S3.' } ] },
        { role => 'user', content => [
            { type => 'text', text => 'Doc.', cache_control => $cc },
            { type => 'text', text => 'Q?' } ] },
        { role => 'assistant', content => undef,
          tool_calls => [{ id => 't1', type => 'function',
                           function => { name => 'f',
                                         arguments => '{"a":1}' } }] },
        { role => 'tool', tool_call_id => 't1', content => [
            { type => 'text', text => 'R', cache_control => $cc } ] },
    ],
    tools => [{ type => 'function', cache_control => $cc,
                function => { name => 'f', description => 'F',
                              parameters => { type => 'object' } } }],
);

# what follows the messages in Bedrock's body, from either door: the
# system split at its breakpoint, and the tool's
our $BedrockRest = '
    "system":[{"text":"S1.\nS2."},{"cachePoint":{"type":"default"}},
        {"text":"S3."}],
    "inferenceConfig":{"maxTokens":20},
    "toolConfig":{"tools":[{"toolSpec":{"name":"f","description":"F",
        "inputSchema":{"json":{"type":"object"}}}},
        {"cachePoint":{"type":"default"}}]}}';

# no breakpoint of its own: a route's "cache_breakpoint auto" adds them
our %Plain = (
    max_tokens => 20,
    messages => [
        { role => 'system', content => 'S1.' },
        { role => 'developer', content => [{ type => 'text', text => 'D1.' },
                                           { type => 'text', text => 'D2.' }] },
        { role => 'user', content => 'Q?' },
    ],
    tools => [map { { type => 'function', function => {
                          name => $_, parameters => { type => 'object' } } } }
              qw(f g)],
);

our %PlainDoor = (
    max_tokens => 20,
    system => 'S1.',
    messages => [{ role => 'user', content => 'Q?' }],
    tools => [map { { name => $_, input_schema => { type => 'object' } } }
              qw(f g)],
);

# %Chat as Bedrock receives it
our $ChatToBedrock = '"body":{"messages":[
    {"role":"user","content":[
        {"text":"Doc."},{"cachePoint":{"type":"default"}},{"text":"Q?"}]},
    {"role":"assistant","content":[
        {"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]},
    {"role":"user","content":[
        {"toolResult":{"toolUseId":"t1","content":[{"text":"R"}]}},
        {"cachePoint":{"type":"default"}}]}],' . $BedrockRest;

sub door {
    my ($model, %request) = @_;
    return "POST /v1/messages\n" . encode_json({ model => $model, %request });
}

sub chat {
    my ($model, %request) = @_;
    return "POST /v1/chat/completions\n"
           . encode_json({ model => $model, %request });
}

# a regex for an answer whose text holds $json (the mock's echo)
sub echoed {
    my $re = echoed_re(shift);
    return qr/$re/;
}

# no cache_control anywhere in what the mock received
sub none { qr/^(?!.*cache_control)(?!.*cachePoint).*"(?:content|text)":"/s }

run_tests();

__DATA__

=== TEST 1: Anthropic's door to Bedrock: a cachePoint after each marked block, in system, content and tools
--- request eval
::door(bd => %::Door)
--- response_body_like eval
::echoed('"body":{"messages":[
    {"role":"user","content":[
        {"text":"Doc."},{"cachePoint":{"type":"default"}},
        {"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}},
        {"cachePoint":{"type":"default"}},
        {"text":"Q?"}]},
    {"role":"assistant","content":[
        {"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]},
    {"role":"user","content":[
        {"toolResult":{"toolUseId":"t1","content":[{"text":"R"}]}},
        {"cachePoint":{"type":"default"}}]}],' . $::BedrockRest)



=== TEST 2: Anthropic's door to Anthropic: the body as it came, cache_control and all
--- request eval
::door(an => %::Door)
--- response_body_like eval
::echoed('"body":' . ::encode_json({ %::Door, model => 'claude-x' }))



=== TEST 3: OpenAI's door to Anthropic: cache_control on the matching blocks, the system as blocks
--- request eval
::chat(an => %::Chat)
--- response_body_like eval
::echoed('"body":{"model":"claude-x","max_tokens":20,
    "system":[{"type":"text","text":"S1.\nS2.",
        "cache_control":{"ttl":"1h","type":"ephemeral"}},
        {"type":"text","text":"S3."}],
    "messages":[
        {"role":"user","content":[
            {"type":"text","text":"Doc.","cache_control":{"type":"ephemeral"}},
            {"type":"text","text":"Q?"}]},
        {"role":"assistant","content":[
            {"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t1","content":"R",
                "cache_control":{"type":"ephemeral"}}]}],
    "tools":[{"name":"f","description":"F","input_schema":{"type":"object"},
        "cache_control":{"type":"ephemeral"}}]}')



=== TEST 4: OpenAI's door to Bedrock: cachePoints
--- request eval
::chat(bd => %::Chat)
--- response_body_like eval
::echoed($::ChatToBedrock)



=== TEST 5: OpenAI's door to an OpenAI target: cache_control taken out, the rest as it came
--- request eval
::chat(oa => %::Chat)
--- response_body_like eval
[::none(),
 ::echoed('"messages":[{"role":"system","content":[{"type":"text","text":"S1."},
    {"type":"text","text":"S2."},{"type":"text","text":"S3."}]},
    {"role":"user","content":[{"type":"text","text":"Doc."},
        {"type":"text","text":"Q?"}]}'),
 ::echoed('"tools":[{"type":"function","function":{"name":"f"')]



=== TEST 6: to an OpenAI target, only the breakpoints go: a schema's property of that name stays
--- request
POST /v1/chat/completions
{"model":"oa","messages":[{"role":"user","content":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}}]}],"tools":[{"type":"function","cache_control":{"type":"ephemeral"},"function":{"name":"f","parameters":{"type":"object","properties":{"cache_control":{"type":"string"}}}}}]}
--- response_body_like eval
::echoed('{"model":"gpt-x","messages":[{"role":"user","content":[{"type":"text","text":"A"}]}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",
        "properties":{"cache_control":{"type":"string"}}}}}]}')



=== TEST 6b: nor does the gateway's own "cache" member, whichever place it has
--- request eval
["POST /v1/chat/completions\n"
 . '{"cache":true,"model":"oa","messages":[{"role":"user","content":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}}]}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"oa","messages":[{"role":"user","content":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}}]}],"cache":{"no-store":true}}']
--- response_body_like eval
[::echoed('{"model":"gpt-x","messages":[{"role":"user","content":[{"type":"text","text":"A"}]}]}'),
 ::echoed('{"model":"gpt-x","messages":[{"role":"user","content":[{"type":"text","text":"A"}]}]}')]



=== TEST 7: Anthropic's door to an OpenAI target: none either
--- request eval
::door(oa => %::Door)
--- response_body_like eval
[::none(), ::echoed('{\"type\":\"text\",\"text\":\"Doc.\"}')]



=== TEST 8: to Gemini: none
--- request eval
::chat(gm => %::Chat)
--- response_body_like eval
[::none(), qr/S3\./]



=== TEST 9: a cache_control that is not an object is no breakpoint
--- request
POST /v1/chat/completions
{"model":"bd","messages":[{"role":"user","content":[{"type":"text","text":"A","cache_control":true},{"type":"text","text":"B"}]}]}
--- response_body_like eval
::echoed('"body":{"messages":[{"role":"user","content":[{"text":"A"},{"text":"B"}]}]}')



=== TEST 10: cache_breakpoint auto, to Anthropic: on the last system text and the last tool
--- request eval
::chat('an-auto' => %::Plain)
--- response_body_like eval
::echoed('"body":{"model":"claude-x","max_tokens":20,
    "system":[{"type":"text","text":"S1.\n\nD1.\nD2.",
        "cache_control":{"type":"ephemeral"}}],
    "messages":[{"role":"user","content":[{"type":"text","text":"Q?"}]}],
    "tools":[{"name":"f","input_schema":{"type":"object"}},
        {"name":"g","input_schema":{"type":"object"},
            "cache_control":{"type":"ephemeral"}}]}')



=== TEST 11: cache_breakpoint auto, to Bedrock: a cachePoint after the system and after the tools
--- request eval
::chat('bd-auto' => %::Plain)
--- response_body_like eval
::echoed('"body":{"messages":[{"role":"user","content":[{"text":"Q?"}]}],
    "system":[{"text":"S1."},{"text":"D1.\nD2."},
        {"cachePoint":{"type":"default"}}],
    "inferenceConfig":{"maxTokens":20},
    "toolConfig":{"tools":[
        {"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}},
        {"toolSpec":{"name":"g","inputSchema":{"json":{"type":"object"}}}},
        {"cachePoint":{"type":"default"}}]}}')



=== TEST 12: cache_breakpoint auto, Anthropic's door to Anthropic: the system string made a marked block, the last tool marked
--- request eval
::door('an-auto' => %::PlainDoor)
--- response_body_like eval
::echoed('"body":{"model":"claude-x","max_tokens":20,
    "messages":[{"content":"Q?","role":"user"}],
    "system":[{"type":"text","text":"S1.","cache_control":{"type":"ephemeral"}}],
    "tools":[{"input_schema":{"type":"object"},"name":"f"},
        {"input_schema":{"type":"object"},"name":"g",
            "cache_control":{"type":"ephemeral"}}]}')



=== TEST 13: cache_breakpoint auto, Anthropic's door with system blocks: the last one marked
--- request eval
::door('an-auto' => %::PlainDoor,
       system => [{ type => 'text', text => 'S1.' },
                  { type => 'text', text => 'S2.' }])
--- response_body_like eval
::echoed('"system":[{"text":"S1.","type":"text"},
    {"text":"S2.","type":"text","cache_control":{"type":"ephemeral"}}]')



=== TEST 14: cache_breakpoint auto, Anthropic's door to Bedrock
--- request eval
::door('bd-auto' => %::PlainDoor)
--- response_body_like eval
::echoed('"system":[{"text":"S1."},{"cachePoint":{"type":"default"}}]')



=== TEST 15: a request with breakpoints of its own gets no more
--- request eval
::chat('bd-auto' => %::Chat)
--- response_body_like eval
::echoed($::ChatToBedrock)



=== TEST 16: nor does one through Anthropic's door, its body going as it came
--- request eval
::door('an-auto' => %::Door)
--- response_body_like eval
::echoed('"body":' . ::encode_json({ %::Door, model => 'claude-x' }))



=== TEST 17: cache_breakpoint auto, to an OpenAI target: nothing
--- request eval
::chat('oa-auto' => %::Plain)
--- response_body_like eval
[::none(), qr/S1\./]



=== TEST 18: cache_breakpoint takes auto or off
--- http_config
    llm_provider p { url http://127.0.0.1:1/v1; }
    llm_route m { target p; cache_breakpoint always; }
--- config
--- must_die
--- error_log
invalid "cache_breakpoint" value "always": it must be "auto" or "off"
