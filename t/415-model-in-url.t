# A client's model name that reaches a provider's URL (a glob route whose
# target passes the client's name: Gemini's /models/{model}:..., Azure's
# /deployments/{model}/...) can never change that URL: a name with "?",
# "#", "/", ":", "%", spaces, or "." / ".." alone gets a 400 before
# anything is sent (the request would carry the provider's key); Bedrock's
# /model/{id}/... percent-encodes it. A script: what the mocks received.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post decode_json);
use Test::Nginx::LLM qw(start_nginx read_file);

my $srv = start_nginx(
    name        => 'model-in-url',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider gm {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gemini/echo=1/v1beta;
        key gemini-mock-key;
        format gemini;
    }
    llm_provider az {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/azure/openai;
        key az-key;
        format azure;
    }
    llm_provider bd {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/bedrock/echo=1;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
    }
    llm_route "gm/*" { target gm "*"; }
    llm_route "az/*" { target az "*"; }
    llm_route "bd/*" { target bd "*"; }

    log_format seen '$request_uri';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        access_log logs/mock2.log seen;
        location /azure/ {
            default_type application/json;
            return 200 '{"id":"az","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}';
        }
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my $port = $srv->port;

sub ask {
    my ($model) = @_;
    return post($port, '/v1/chat/completions',
                { model => $model,
                  messages => [{ role => 'user', content => 'x' }] });
}

my @bad = ('a?key=x', 'a#b', '../../v1/files', '..', '.', 'a b', 'a/b',
           'x:streamGenerateContent', 'a%2fb', "a\x{e9}");

for my $d (qw(gm az)) {
    for my $name (@bad) {
        my $res = ask("$d/$name");
        my $err = eval { decode_json($res->{body})->{error} } // {};
        ok($res->{status} == 400 && ($err->{code} // '') eq 'invalid_model'
           && ($err->{param} // '') eq 'model',
           "$d: \"$name\" gets a 400 invalid_model")
            or diag "$res->{status} $res->{body}";
    }
}

# nothing reached a provider for them
my $seen = read_file($srv->servroot . '/logs/mock2.log') // '';
is($seen, '', 'azure: no request was sent');
unlike($srv->error_log, qr/gemini.*(?:key=x|files|streamGenerateContent)/,
       'gemini: no request was sent');

# good names pass
my $res = ask('gm/gemini-1.5-pro_002');
is($res->{status}, 200, 'gemini: a plain name is served');
like(decode_json($res->{body})->{choices}[0]{message}{content},
     qr{"path":"/gemini/echo=1/v1beta/models/gemini-1\.5-pro_002:generateContent"},
     'gemini: in the path as it is');
is(ask('gm/models/gemini-x')->{status}, 200, 'gemini: "models/" as a prefix');
is(ask('az/my-gpt4o.v2')->{status}, 200, 'azure: a plain deployment name');
like(read_file($srv->servroot . '/logs/mock2.log'),
     qr{^/azure/openai/deployments/my-gpt4o\.v2/chat/completions\?api-version=}m,
     'azure: in the path as it is');

# Bedrock encodes the model id (its ids carry ":" and "/" of their own)
$res = ask('bd/a?b#c/../d');
is($res->{status}, 200, 'bedrock: any name is sent, encoded');
like(decode_json($res->{body})->{choices}[0]{message}{content},
     qr{"path":"/bedrock/echo=1/model/a%3Fb%23c%2F\.\.%2Fd/converse"},
     'bedrock: percent-encoded in the path')
    or diag $res->{body};

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
