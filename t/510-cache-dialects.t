# The response cache in front of providers of other dialects: the entry
# is the provider's own answer, and a hit is translated again, so it comes
# back in the client's API exactly as the miss did (completions, Anthropic
# and Gemini SSE, Bedrock's binary event stream, and Anthropic's
# /v1/messages door in front of an OpenAI target). Each provider is asked
# once; an Anthropic stream the provider cuts is not stored.
#
# A script: a miss then a hit of the same entry in one running nginx, for
# every dialect.

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use LLM::Fixtures;
use LLM::Dialects qw(normalize);
use Test::Nginx::LLM qw(start_nginx http_request);

my $servroot = 't/servroot-cache-dialects';
remove_tree("$servroot/cache");

my $srv = start_nginx(
    name        => 'cache-dialects',
    servroot    => $servroot,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    proxy_cache_path cache keys_zone=llm:1m;

    llm_provider oa { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider an_cut {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }

    llm_route gpt { target oa gpt-x; }
    llm_route claude { target an claude-x; }
    llm_route claude-cut { target an_cut claude-x; }
    llm_route gemini { target gm gemini-x; }
    llm_route bedrock { target bd m1; }

    # a 2xx that is the provider's error, and one that is no answer
    llm_provider an_error {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:overloaded.json,length=1/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider gm_junk {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=gemini:not-json.json,length=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_route claude-error { target an_error claude-x; }
    llm_route gemini-junk { target gm_junk gemini-x; }

    # an Anthropic stream that stops after its first text delta
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        access_log logs/cutter.log;
        location / {
            default_type text/event-stream;
            return 200 'event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}

';
        }
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
    }
CONF
);

my $provider_log = $srv->servroot . '/logs/mock_access.log';

sub provider_requests {
    my $log = eval { Test::Nginx::LLM::read_file($provider_log) } // '';
    return scalar(() = $log =~ /\n/g);
}

sub ask {
    my ($uri, $body) = @_;
    return http_request(port => $srv->port, method => 'POST', uri => $uri,
                        body => $body);
}

my @cases = (
    [ 'anthropic completion', '/v1/chat/completions',
      '{"model":"claude","temperature":0,"messages":[{"role":"user",'
      . '"content":"cache claude"}]}', qr/"object":"chat\.completion"/ ],
    [ 'anthropic stream', '/v1/chat/completions',
      '{"model":"claude","temperature":0,"stream":true,"messages":[{"role":'
      . '"user","content":"stream claude"}]}',
      qr/"chat\.completion\.chunk".*data: \[DONE\]\n\n\z/s ],
    [ 'gemini stream', '/v1/chat/completions',
      '{"model":"gemini","temperature":0,"stream":true,"messages":[{"role":'
      . '"user","content":"stream gemini"}]}',
      qr/"chat\.completion\.chunk".*data: \[DONE\]\n\n\z/s ],
    [ 'bedrock stream', '/v1/chat/completions',
      '{"model":"bedrock","temperature":0,"stream":true,"messages":[{"role":'
      . '"user","content":"stream bedrock"}]}',
      qr/"chat\.completion\.chunk".*data: \[DONE\]\n\n\z/s ],
    [ 'bedrock completion', '/v1/chat/completions',
      '{"model":"bedrock","temperature":0,"messages":[{"role":"user",'
      . '"content":"cache bedrock"}]}', qr/"object":"chat\.completion"/ ],
    [ '/v1/messages to OpenAI', '/v1/messages',
      '{"model":"gpt","temperature":0,"max_tokens":50,"messages":[{"role":'
      . '"user","content":"cache messages"}]}', qr/"type":"message"/ ],
    [ '/v1/messages stream to OpenAI', '/v1/messages',
      '{"model":"gpt","temperature":0,"max_tokens":50,"stream":true,'
      . '"messages":[{"role":"user","content":"stream messages"}]}',
      qr/event: message_start.*event: message_stop/s ],
);

for my $c (@cases) {
    my ($name, $uri, $body, $shape) = @$c;

    my $before = provider_requests();
    my $miss = ask($uri, $body);
    is($miss->{status}, 200, "$name: answered");
    is($miss->header('x-llm-cache'), 'MISS', "$name: MISS");
    like($miss->{body}, $shape, "$name: in the client's API");

    my $hit = ask($uri, $body);
    is($hit->header('x-llm-cache'), 'HIT', "$name: then HIT");
    is($hit->header('content-type'), $miss->header('content-type'),
       "$name: the same content type");
    is(normalize($hit->{body}), normalize($miss->{body}),
       "$name: the same answer, translated again");
    is(provider_requests() - $before, 1, "$name: the provider asked once");
}

my $cut = '{"model":"claude-cut","temperature":0,"stream":true,'
        . '"messages":[{"role":"user","content":"x"}]}';
like(ask('/v1/chat/completions', $cut)->{body}, qr/"error"/,
     'a cut Anthropic stream ends with an error event');
is(ask('/v1/chat/completions', $cut)->header('x-llm-cache'), 'MISS',
   'and is not stored');

# nginx stores a body before its last buffer reaches the gateway: one that
# is not an answer must not be let through to the cache
for my $model ('claude-error', 'gemini-junk') {
    my $body = qq({"model":"$model","temperature":0,"messages":[{"role":"user",)
             . qq("content":"not an answer"}]});
    my $before = provider_requests();
    is(ask('/v1/chat/completions', $body)->{status}, 502, "$model: 502");
    is(ask('/v1/chat/completions', $body)->{status}, 502, "$model: 502 again");
    is(provider_requests() - $before, 2,
       "$model: the provider asked again: nothing was stored");
}

$srv->check_clean('no alerts');

done_testing();
