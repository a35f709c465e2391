# The smoke test run against every nginx the module is built for (make
# smoke NGINX_SRC=...; docs/install.md): chat, a stream, a pooled
# provider, failover, a key with limits and a translated dialect, with
# providers that are Perl processes (LLM::Faults), so that no dynamic
# module but ours is needed: Debian's echo and njs modules load only into
# Debian's nginx. In make test it runs against Debian's nginx like the
# rest. A script: the fault server is a forked process.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures ();     # the environment: TEST_NGINX_LLM_PARAMS
use LLM::Faults qw(fault_server);
use LLM::Dialects qw(sse_events);
use Test::Nginx::LLM qw(start_nginx http_request);

my $faults = fault_server();
my $F = $faults->port;

my $srv = start_nginx(
    name        => 'smoke',
    http_config => <<CONF,
    llm_zone smoke:1m;
    llm_provider ok { url http://127.0.0.1:$F/ok/v1; key sk-provider-smoke; }
    llm_provider dead { url http://127.0.0.1:$F/rst/v1; }
    llm_provider claude {
        url http://127.0.0.1:$F/ok,dialect=anthropic/v1;
        format anthropic;
        key sk-ant-smoke;
    }
    llm_provider pooled {
        url http://127.0.0.1:$F/ok/v1;
        keepalive 4 timeout=30s;
    }
    llm_route chat { target ok m; }
    llm_route pooled { target pooled m; }
    llm_route failover { target dead m; target ok m2; }
    llm_route claude { target claude claude-x; }
    llm_key free { key sk-free-0123456789; }
    llm_key limited { key sk-limited-0123456789; rpm 1; }
CONF
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my $port = $srv->port;

sub ask {
    my ($model, %o) = @_;
    return http_request(port => $port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { 'Content-Type' => 'application/json',
                                     %{ $o{headers} // { Authorization =>
                                            'Bearer sk-free-0123456789' } } },
                        body => JSON::PP->new->canonical->encode({
                            model => $model,
                            messages => [{ role => 'user', content => 'hi' }],
                            $o{stream} ? (stream => JSON::PP::true()) : () }));
}

my $res = ask('chat');
is($res->{status}, 200, 'chat: 200');
is(eval { JSON::PP::decode_json($res->{body})->{choices}[0]{message}{content} },
   'Hello from a fault', 'chat: the provider\'s answer');

$res = ask('chat', stream => 1);
my @ev = sse_events($res->{body} // '');
is($ev[-1][1], '[DONE]', 'stream: ends with [DONE]');
is(join('', map { eval { JSON::PP::decode_json($_->[1])->{choices}[0]{delta}{content} } // '' }
            @ev[0 .. $#ev - 1]),
   'Hello from a fault', 'stream: the text whole');

# a provider with keepalive: its upstream block made by this nginx's own
# upstream directive
$res = ask('pooled');
is($res->{status}, 200, 'keepalive: 200');
is($res->header('x-llm-provider'), 'pooled', 'keepalive: its provider');

$res = ask('failover');
is($res->{status}, 200, 'failover: 200');
is($res->header('x-llm-provider') . ' ' . $res->header('x-llm-attempts'),
   'ok 2', 'failover: the second target, in a second attempt');

my $key = { Authorization => 'Bearer sk-limited-0123456789' };
is(ask('chat', headers => $key)->{status}, 200, 'key: the first request');
$res = ask('chat', headers => $key);
is($res->{status}, 429, 'key: the second in the minute is refused');
is($res->header('x-ratelimit-limit-requests'), 1, 'key: its limit header');
is(ask('chat', headers => {})->{status}, 401, 'no key: 401');

$res = ask('claude');
is($res->{status}, 200, 'translated: 200');
my $c = eval { JSON::PP::decode_json($res->{body}) } // {};
is($c->{object}, 'chat.completion', 'translated: an OpenAI completion');
is($c->{choices}[0]{message}{content}, 'Hello from a fault',
   'translated: Anthropic\'s text');
like(join("\n", $faults->requests), qr/^ok model=claude-x stream=0 /m,
     'translated: the provider was asked for its own model');

# the provider's key, written into the request by the module, once
like(join("\n", $faults->requests),
     qr/^ok model=m stream=0 auth=Authorization=Bearer sk-provider-smoke /mi,
     'the provider got its key in the Authorization header, once');
like(join("\n", $faults->requests),
     qr/^ok model=claude-x stream=0 auth=x-api-key=sk-ant-smoke /mi,
     'Anthropic got its key in x-api-key, once');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
