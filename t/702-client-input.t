# Malformed client input never reaches a provider: truncated JSON (every
# prefix of a request), random bytes, nesting 10,000 levels deep, 20 MiB
# strings, invalid UTF-8, values of the wrong type for every parameter the
# gateway reads, numbers out of range, duplicate keys, control characters
# in the model name (which reaches the x-llm-model response header), odd
# gateway keys, a body over client_max_body_size, a client that stops or
# goes away in the middle of its body. Each is a clear 4xx with an
# OpenAI-shaped error {"error":{"message","type","param","code"}}
# (docs/directives.md, llm_gateway), or for a client that stops sending,
# a closed connection: never a crash or a hang, and the providers' logs
# show that nothing reached them.
#
# What is valid gets through unchanged: a 20 MiB message reaches the
# provider byte for byte.
#
# A script: clients that stop or go away in the middle of their body
# (bytes sent with timing between them), a forked provider (LLM::Faults)
# whose requests, and the mock's log, are read after each check to show
# that nothing reached them, and generated inputs (every prefix of a
# request) sent to one running nginx.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use LLM::Fixtures;
use LLM::Faults qw(fault_server openai_error_ok);
use Test::Nginx::LLM qw(start_nginx free_port http_request read_file wait_until);

my $SLOW = Test::Nginx::LLM::slow_factor();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $faults = fault_server();
my $F = $faults->port;

my $srv = start_nginx(
    name        => 'faults-702',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<CONF,
    llm_provider mock { url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider sink { url http://127.0.0.1:$F/ok/v1; }
    llm_route m { target mock; }
    llm_route big { target sink; }
    llm_route "glob/*" { target mock "*"; }

    llm_key alice { key sk-alice-0123456789; }
    llm_auth off;
CONF
    config      => <<'CONF',
    location /v1/ {
        client_max_body_size 32m;
        client_body_buffer_size 128k;
        client_body_timeout 1s;
        proxy_read_timeout 30s;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location /keyed/v1/ {
        llm_auth on;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my $port = $srv->port;
my $mock_log = $srv->servroot . '/logs/mock.log';

# requests the providers received so far
sub provider_requests {
    my $n = () = read_file($mock_log) =~ /mock received /g;
    return $n + scalar(my @r = $faults->requests);
}

sub post {
    my ($body, %o) = @_;
    return http_request(port => $port, method => 'POST',
                        uri => $o{uri} // '/v1/chat/completions',
                        headers => $o{headers} // { 'Content-Type' => 'application/json' },
                        body => $body, timeout => $o{timeout} // 10 * $SLOW);
}

# one assertion per request: a 4xx OpenAI error with that param; nothing
# reached a provider
sub refused {
    my ($body, $status, $param, $name, %o) = @_;
    my $before = provider_requests();
    my $res = post($body, %o);
    my $err = openai_error_ok($res, $status, $o{code}, "$name: $status");
    my @why;
    push @why, 'param ' . ($err->{param} // 'null') . ', want ' . ($param // 'null')
        if $err && ($err->{param} // 'null') ne ($param // 'null');
    push @why, 'message ' . $err->{message} . " does not match $o{message}"
        if $err && $o{message} && $err->{message} !~ $o{message};
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok !@why, "$name: param " . ($param // 'null') . ($o{message} ? ', message' : '')
        or diag join "\n", @why;
    # the mock would have logged before the gateway's answer was complete
    is provider_requests(), $before, "$name: nothing reached a provider";
    return $res;
}

my $valid = '{"model":"m","messages":[{"role":"user","content":"hello"}],'
          . '"stream":false,"max_tokens":5}';


subtest 'every prefix of a valid request: 400, nothing proxied' => sub {
    my $before = provider_requests();
    my @bad;
    for my $len (0 .. length($valid) - 1) {
        my $res = post(substr($valid, 0, $len));
        my $err = eval { JSON::PP::decode_json($res->{body}) };
        push @bad, "$len: " . ($res->{status} // 'none') . ' ' . substr($res->{body}, 0, 80)
            unless ($res->{status} // 0) == 400 && $err && $err->{error}{message};
    }
    is scalar @bad, 0, 'each of ' . length($valid) . ' prefixes: 400 with an OpenAI error'
        or diag join "\n", @bad;
    is provider_requests(), $before, 'nothing reached a provider';
    is post($valid)->{status}, 200, 'the whole request is served (200)';
};


subtest 'prefixes sent chunked: 400' => sub {
    for my $len (1, 17, 40, length($valid) - 1) {
        refused(substr($valid, 0, $len), 400, undef, "chunked, $len bytes",
                headers => { 'Transfer-Encoding' => 'chunked' });
    }
};


subtest 'random bytes: 4xx, never a crash' => sub {
    srand(702);
    my $before = provider_requests();
    my @bad;
    for my $i (1 .. 40) {
        my $body = join '', map { chr int rand 256 } 1 .. 1 + int rand 300;
        # and some that start like a request
        $body = '{"model":"m","messages":[' . $body if $i % 2;
        my $res = post($body);
        my $err = eval { JSON::PP::decode_json($res->{body}) };
        push @bad, "$i: " . ($res->{status} // 'none')
            unless ($res->{status} // 0) >= 400 && ($res->{status} // 0) < 500
                   && $err && $err->{error}{message};
    }
    is scalar @bad, 0, '40 random bodies: each a 4xx OpenAI error' or diag join "\n", @bad;
    is provider_requests(), $before, 'nothing reached a provider';
};


subtest 'nesting 10,000 levels deep, anywhere: 400' => sub {
    my $deep = qr/nested more than 128 levels deep/;
    my $n = 10_000;
    refused('{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":'
            . ('[' x $n) . (']' x $n) . '}', 400, undef, 'arrays in an unknown key',
            message => $deep);
    refused('{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":'
            . ('{"a":' x $n) . '1' . ('}' x $n) . '}', 400, undef, 'objects',
            message => $deep);
    # in a content part: an array straight in content is refused as a part
    refused('{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","n":'
            . ('[' x $n) . (']' x $n) . '}]}]}', 400, undef, 'inside a message',
            message => $deep);
    refused(('[' x $n) . (']' x $n), 400, undef, 'as the body');
    refused('{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":'
            . ('[' x $n), 400, undef, 'never closed');
};


subtest 'a 20 MiB message is passed on byte for byte' => sub {
    my $body = '{"model":"big","messages":[{"role":"user","content":"'
             . ('a' x (20 * 1024 * 1024)) . '"}]}';
    my $seen = () = $faults->requests;
    my $res = post($body, timeout => 30 * $SLOW);
    is $res->{status}, 200, 'status 200';
    my @got = $faults->requests_since($seen);
    is scalar @got, 1, 'the provider got one request';
    like $got[0] // '', qr/ bytes=${\ length $body} sha256=${\ sha256_hex($body)}$/,
        'the very bytes the client sent';
};


subtest '20 MiB strings that are wrong: 4xx' => sub {
    my $big = 'b' x (20 * 1024 * 1024);
    my $res = refused(qq({"model":"$big","messages":[{"role":"user","content":"x"}]}),
                      400, 'model', 'a 20 MiB model name',
                      message => qr/longer than 256 bytes/);
    cmp_ok length $res->{body}, '<', 4096, 'the error quotes a bounded part of it';
    refused(qq({"model":"m","messages":[{"role":"user","content":"$big\xff"}]}),
            400, undef, '20 MiB of text, then an invalid byte',
            message => qr/invalid bytes in UTF8 string/);
    refused(qq({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":)
            . ('9' x (20 * 1024 * 1024)) . '}', 400, 'max_tokens', 'a 20 MiB number');
};


subtest 'a body over client_max_body_size: 413, nothing proxied' => sub {
    my $body = '{"model":"m","messages":[{"role":"user","content":"'
             . ('o' x (33 * 1024 * 1024)) . '"}]}';
    refused($body, 413, undef, '33 MiB, Content-Length', code => 'request_too_large');
    refused($body, 413, undef, '33 MiB, chunked', code => 'request_too_large',
            headers => { 'Transfer-Encoding' => 'chunked' });
};


subtest 'invalid UTF-8: 400' => sub {
    my $utf8 = qr/invalid bytes in UTF8 string/;
    refused(qq({"model":"m\xff","messages":[{"role":"user","content":"x"}]}),
            400, undef, 'in the model', message => $utf8);
    refused(qq({"model":"m","messages":[{"role":"user","con\xfe":"x"}]}),
            400, undef, 'in a key', message => $utf8);
    refused(qq({"model":"m","messages":[{"role":"user","content":"\xe2\x82"}]}),
            400, undef, 'a truncated sequence', message => $utf8);
};


subtest 'wrong types, for every parameter the gateway reads: 400' => sub {
    my $msgs = '"messages":[{"role":"user","content":"x"}]';
    my @cases = (
        [model => '42'], [model => 'true'], [model => '{}'], [model => '[]'],
        [model => '1e999'],
        [messages => '{}', qq("model":"m")], [messages => '"x"', qq("model":"m")],
        [messages => '7', qq("model":"m")], [messages => 'null', qq("model":"m")],
        [messages => '[[]]', qq("model":"m")], [messages => '["x"]', qq("model":"m")],
        [messages => '[1]', qq("model":"m")], [messages => '[null]', qq("model":"m")],
        [stream => '"true"'], [stream => '1'], [stream => '[]'], [stream => '{}'],
        [stream_options => '[]'], [stream_options => '"x"'], [stream_options => '1'],
        [stream_options => '{"include_usage":"yes"}'],
        [stream_options => '{"include_usage":[true]}'],
        [max_tokens => '-1'], [max_tokens => '0'], [max_tokens => '1.5'],
        [max_tokens => '1e3'], [max_tokens => '"10"'], [max_tokens => 'true'],
        [max_tokens => '[]'], [max_tokens => '1000000001'],
        [max_tokens => '99999999999999999999'], [max_tokens => '-0'],
        [max_completion_tokens => '-7'], [max_completion_tokens => '{}'],
        [temperature => '"hot"'], [temperature => '[]'], [temperature => 'true'],
        [user => '5'], [user => '{}'], [user => 'false'],
        [tools => '{}'], [tools => '"x"'], [tools => '3'],
        # what a translation would rewrite (tools [] , tool_choice auto)
        [tools => '[1]'], [tools => '[{},"x"]'], [tools => '[[]]'],
        [tool_choice => '5'], [tool_choice => '"x"'], [tool_choice => '[]'],
        [stop => '[1,2]'], [stop => '["a",{}]'], [stop => '{}'], [stop => 'true'],
    );
    for my $c (@cases) {
        my ($key, $value, $rest) = @$c;
        $rest //= $key eq 'model' ? $msgs : qq("model":"m",$msgs);
        my $param = $key eq 'max_completion_tokens' ? 'max_completion_tokens' : $key;
        my $body = $key eq 'messages' ? qq({$rest,"messages":$value})
                                      : qq({$rest,"$key":$value});
        refused($body, 400, $param, "$key: $value");
    }
};


subtest 'chat: content parts and tools a translation would skip: 400, as OpenAI says it' => sub {
    my $m = '"model":"m"';
    my $tool = '"messages":[{"role":"user","content":"x"}],"tools":';
    my $msg = '"messages":[{"role":"user","content":"x"},{"role":"user","content":';
    for my $c (["$tool\[{\"type\":\"function\",\"function\":{\"name\":5}}]", 'tools',
                "Invalid type for 'tools[0].function.name': expected a string, but got an integer instead."],
               ["$tool\[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":1.5}}]", 'tools',
                "Invalid type for 'tools[1].function.name': expected a string, but got a decimal instead."],
               ["$tool\[{\"type\":\"function\"}]", 'tools',
                "Missing required parameter: 'tools[0].function'."],
               ["$tool\[{\"type\":\"function\",\"function\":null}]", 'tools',
                "Missing required parameter: 'tools[0].function'."],
               ["$tool\[{\"type\":\"function\",\"function\":{\"description\":\"d\"}}]", 'tools',
                "Missing required parameter: 'tools[0].function.name'."],
               ["$tool\[{\"type\":\"function\",\"function\":\"f\"}]", 'tools',
                "Invalid type for 'tools[0].function': expected an object, but got a string instead."],
               ["$tool\[{\"type\":7,\"function\":{\"name\":\"f\"}}]", 'tools',
                "Invalid type for 'tools[0].type': expected a string, but got an integer instead."],
               ["$msg\[{\"text\":\"a\"}]}]", 'messages',
                "Missing required parameter: 'messages[1].content[0].type'."],
               ["$msg\[{\"type\":\"text\",\"text\":\"a\"},{\"type\":true,\"text\":\"b\"}]}]", 'messages',
                "Invalid type for 'messages[1].content[1].type': expected a string, but got a boolean instead."],
               ["$msg\[{\"type\":\"text\"}]}]", 'messages',
                "Missing required parameter: 'messages[1].content[0].text'."],
               ["$msg\[{\"text\":[\"a\"],\"type\":\"text\"}]}]", 'messages',
                "Invalid type for 'messages[1].content[0].text': expected a string, but got an array instead."],
               ["$msg\[{\"type\":\"text\",\"text\":null}]}]", 'messages',
                "Invalid type for 'messages[1].content[0].text': expected a string, but got null instead."],
               ["$msg\[\"a\"]}]", 'messages',
                "Invalid type for 'messages[1].content[0]': expected an object, but got a string instead."],
               ["$msg\[{\"type\":\"text\",\"text\":\"a\"},5]}]", 'messages',
                "Invalid type for 'messages[1].content[1]': expected an object, but got an integer instead."])
    {
        my ($rest, $param, $message) = @$c;
        refused("{$m,$rest}", 400, $param, $rest, message => qr/\A\Q$message\E\z/);
    }
    # well-formed: parts of other types, a text part's "text" anywhere in it,
    # a tool of another type, names and types deeper that are not these
    my $res = post(qq({$m,"messages":[{"role":"user","content":[{"text":"a","type":"text"},)
                   . qq({"type":"image_url","image_url":{"url":"https://x/a.png","type":5}}]},)
                   . qq({"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},)
                   . qq({"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"r"}]}],)
                   . qq("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"name":{"type":"string"}}}}},)
                   . qq({"type":"custom","custom":{"name":"g"}}]}));
    is $res->{status}, 200, 'well-formed parts and tools: served';
};


subtest 'duplicate keys the gateway reads: 400' => sub {
    my $base = '"model":"m","messages":[{"role":"user","content":"x"}]';
    for my $dup (['model', '"m"'], ['messages', '[{"role":"user","content":"y"}]'],
                 ['stream', 'false'], ['max_tokens', '5'], ['user', '"u"'],
                 ['temperature', '0'], ['tools', '[]'], ['stream_options', '{}'],
                 ['max_completion_tokens', '3'])
    {
        my ($key, $value) = @$dup;
        my $body = $key =~ /^(?:model|messages)$/ ? "{$base,\"$key\":$value}"
                 : "{$base,\"$key\":$value,\"$key\":$value}";
        refused($body, 400, $key, "$key twice", message => qr/Duplicate key '$key'/);
    }
    refused(qq({$base,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}),
            400, 'stream_options', 'include_usage twice');
};


subtest 'a body read whole (embeddings, Responses, Anthropic\'s door): any name given twice at its top is a 400' => sub {
    # the guard or a translation would read one, the provider the other
    for my $c (['/v1/embeddings', '{"model":"m","input":"hello","input":"my secret"}', 'input'],
               ['/v1/embeddings', '{"model":"m","input":"x","dimensions":5,"dimensions":0}', 'dimensions'],
               ['/v1/responses', '{"model":"m","input":"a","instructions":"x","instructions":"y"}', 'instructions'],
               ['/v1/responses', '{"model":"m","input":"a","store":false,"store":true}', 'store'],
               ['/v1/messages', '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],'
                                . '"stop_sequences":["a"],"stop_sequences":["b"]}', 'stop_sequences'])
    {
        my ($uri, $body, $key) = @$c;
        my $before = provider_requests();
        my $res = post($body, uri => $uri);
        is $res->{status}, 400, "$uri, $key twice: 400";
        like $res->{body}, qr/Duplicate key '$key' in the request body\./, "$uri, $key twice: says which";
        is provider_requests(), $before, "$uri, $key twice: nothing reached a provider";
    }
    # a top of many names, none twice, is read (sorted, not compared in pairs)
    my $many = join ',', map { qq("x$_":$_) } 1 .. 20000;
    my $res = post(qq({"model":"m","input":"x",$many}), uri => '/v1/embeddings');
    is $res->{status}, 200, '20,000 names, none twice: served';
};


subtest 'Anthropic\'s door: a message, block or tool a translation would drop is a 400, in Anthropic\'s shape' => sub {
    my $m = '"model":"m","max_tokens":5';
    for my $c (['"messages":[{}]', qr/messages\.0\.role: Input should be 'user' or 'assistant'/],
               ['"messages":[{"role":5,"content":"x"}]', qr/messages\.0\.role: /],
               ['"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]',
                qr/messages\.1\.role: /],
               ['"messages":[{"role":"user"}]', qr/messages\.0\.content: Field required/],
               ['"messages":[{"role":"user","content":5}]', qr/messages\.0\.content: Input should be a valid string or list/],
               ['"messages":[{"role":"user","content":[5]}]', qr/messages\.0\.content\.0\.type: Field required/],
               ['"messages":[{"role":"user","content":[{"type":"text"}]}]', qr/messages\.0\.content\.0\.text: Field required/],
               ['"messages":[{"role":"assistant","content":[{"type":"tool_use"}]}]', qr/messages\.0\.content\.0: a tool_use block needs its id and name/],
               ['"messages":[{"role":"user","content":[{"type":"tool_result"}]}]', qr/messages\.0\.content\.0\.tool_use_id: Field required/],
               ['"system":[5],"messages":[{"role":"user","content":"x"}]', qr/system\.0: Input should be a text block/],
               ['"system":5,"messages":[{"role":"user","content":"x"}]', qr/Invalid type for 'system': got a number/],
               ['"tool_choice":{"type":"tool","name":5},"messages":[{"role":"user","content":"x"}]', qr/tool_choice: /],
               ['"tools":[{}],"messages":[{"role":"user","content":"x"}]', qr/tools\.0\.name: Field required/])
    {
        my ($rest, $re) = @$c;
        my $before = provider_requests();
        my $res = post("{$m,$rest}", uri => '/v1/messages');
        is $res->{status}, 400, "$rest: 400";
        like $res->{body}, qr/\A\{"type":"error","error":\{"type":"invalid_request_error","message":"[^"]*"\}\}\n?\z/,
            "$rest: Anthropic's shape";
        like $res->{body}, $re, "$rest: says what";
        is provider_requests(), $before, "$rest: nothing reached a provider";
    }
    my $res = post(qq({$m,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}),
                   uri => '/v1/messages');
    is $res->{status}, 200, 'a well-formed request with blocks: served';
};


subtest 'a pattern route whose capture is empty: 400 invalid_model, nothing sent' => sub {
    refused('{"model":"glob/","messages":[{"role":"user","content":"x"}]}', 400, 'model',
            'model "glob/"', code => 'invalid_model', message => qr/names no model for provider `mock`/);
};


subtest 'control characters in the model name: 400, no header is split' => sub {
    for my $model ('glob/a\r\nSet-Cookie: x=1', 'glob/b\nX-Evil: 1', 'glob/c\u0000',
                   'glob/d\t', 'glob/e\u007f', 'm\r',
                   # names read eight bytes at a time: in the first word, a
                   # middle one, the last (which overlaps the one before)
                   'glob/\u001fbcdefghijk', 'glob/abcdefgh\u0001ijklmnop',
                   'glob/abcdefghijk\u007f')
    {
        my $res = refused(qq({"model":"$model","messages":[{"role":"user","content":"x"}]}),
                          400, 'model', "model \"$model\"",
                          message => qr/control characters/);
        unlike $res->{raw_headers}, qr/^(?:Set-Cookie|X-Evil)/mi, 'no header of the client\'s';
    }
    my $res = post('{"model":"glob/plain","messages":[{"role":"user","content":"x"}]}');
    is $res->header('x-llm-model'), 'plain', 'a glob route still serves clean names';
    # the bytes next to the control characters' are not theirs
    $res = post('{"model":"glob/ ~ caf\u00e9 \u0080 ~ plain","messages":[{"role":"user","content":"x"}]}');
    is $res->{status}, 200, 'a long name of spaces, tildes and UTF-8 is served';
};


subtest 'model names are bounded: 256 bytes pass, 257 get a 400' => sub {
    my $res = post('{"model":"glob/' . ('n' x 251) . '","messages":[{"role":"user","content":"x"}]}');
    is $res->{status}, 200, 'a name of 256 bytes is served';
    for my $len (257, 65536) {
        refused('{"model":"glob/' . ('n' x ($len - 5)) . '","messages":[{"role":"user","content":"x"}]}',
                400, 'model', "a name of $len bytes",
                message => qr/longer than 256 bytes/);
    }
    # the Anthropic door says the same in its shape
    my $r = Test::Nginx::LLM::http_request(port => $port, method => 'POST',
        uri => '/v1/messages', headers => { 'anthropic-version' => '2023-06-01' },
        body => '{"model":"glob/' . ('n' x 300) . '","max_tokens":5,"messages":[{"role":"user","content":"x"}]}');
    is $r->{status}, 400, '/v1/messages: 400';
    like $r->{body}, qr/"type":"error".*longer than 256 bytes/s, '/v1/messages: in Anthropic\'s shape';
};


subtest 'odd gateway keys: 401, nothing proxied' => sub {
    my $uri = '/keyed/v1/chat/completions';
    for my $auth ('Bearer ' . ('k' x 2000), "Bearer sk-alice-0123456789\x01",
                  "Bearer \x7f\x01\x02", 'Basic c2stYWxpY2U=', 'Bearer', '')
    {
        (my $shown = substr($auth, 0, 30)) =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
        refused($valid, 401, undef, "Authorization \"$shown\"", uri => $uri,
                code => qr/^(?:invalid_api_key|missing_api_key)$/,
                headers => { Authorization => $auth });
    }
    is post($valid, uri => $uri, headers => { Authorization => 'Bearer sk-alice-0123456789' })
        ->{status}, 200, 'the right key is served';
};


subtest 'Expect: 100-continue: a request refused before its body is not invited to send it' => sub {
    # what nginx sends first to a client that waits before sending its body
    my $first = sub {
        my ($uri, @headers) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
            or die "connect: $!";
        print $s "POST $uri HTTP/1.1\r\nHost: x\r\nContent-Length: "
            . length($valid) . "\r\nExpect: 100-continue\r\n"
            . join('', map { "$_\r\n" } @headers) . "\r\n";
        my $got = '';
        wait_until(sub {
            my $rin = '';
            vec($rin, fileno($s), 1) = 1;
            select(my $rout = $rin, undef, undef, 0) or return 0;
            my $n = sysread($s, my $buf, 4096);
            $got .= $buf if $n;
            return !$n || $got =~ /\r\n\r\n/;
        }, timeout => 10 * $SLOW, interval => 0.02);
        my $line = $got =~ /^([^\r\n]*)/ ? $1 : '';
        return ($line, $s);
    };

    my ($line, $s) = $first->('/keyed/v1/chat/completions');
    is $line, 'HTTP/1.1 401 Unauthorized', 'no key: 401 at once, no 100 Continue';
    close $s;
    ($line, $s) = $first->('/v1/chat/completions', 'Content-Encoding: gzip');
    is $line, 'HTTP/1.1 415 Unsupported Media Type', 'a compressed body: 415 at once';
    close $s;

    # a request the gateway reads: invited, then served
    ($line, $s) = $first->('/v1/chat/completions');
    is $line, 'HTTP/1.1 100 Continue', 'a request to serve: 100 Continue';
    print $s $valid;
    my $rest = '';
    wait_until(sub {
        my $n = sysread($s, my $buf, 65536);
        $rest .= $buf if $n;
        return !$n || $rest =~ /"object":"chat\.completion"/;
    }, timeout => 10 * $SLOW, interval => 0.02);
    like $rest, qr{HTTP/1\.1 200 OK.*"object":"chat\.completion"}s, 'then the answer';
    close $s;
};


subtest 'a client that stops in the middle of its body' => sub {
    my $before = provider_requests();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        . "Connection: close\r\n\r\n" . substr($valid, 0, 20);
    # client_body_timeout 1s: nginx closes the connection
    my $eof = wait_until(sub {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        select(my $rout = $rin, undef, undef, 0) or return 0;
        my $n = sysread($s, my $buf, 4096);
        return defined $n && $n == 0 ? 1 : 0;
    }, timeout => 10 * $SLOW, interval => 0.05);
    ok $eof, 'nginx closes the connection after client_body_timeout';
    close $s;

    $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        . substr($valid, 0, 20);
    close $s;

    my $access = $srv->servroot . '/logs/access.log';
    ok wait_until(sub { read_file($access) =~ m{"POST /v1/chat/completions HTTP/1\.1" 408 0 } },
                  timeout => 10 * $SLOW),
        'the access log has it as 408, with nothing sent';
    ok wait_until(sub { read_file($access) =~ m{"POST /v1/chat/completions HTTP/1\.1" 400 0 } },
                  timeout => 10 * $SLOW),
        'the client that went away: 400, nothing sent';
    is post($valid)->{status}, 200, 'the gateway serves the next request';
    is provider_requests(), $before + 1, 'only that one reached a provider';
};

$srv->stop;
$srv->check_clean('no worker crash, nothing above [error], no sanitizer report');
$faults->stop;

done_testing();
