# What reading a request body costs the gateway is bounded by its size.
# A body of many tiny values ({"x":[0,0,0,...]}) would cost ~80 bytes of
# JSON tree per 2 bytes of body, plus the cache key's digests: such a body
# gets a clear 413 (llm_request_memory, docs/directives.md), and the
# worker's peak memory (VmHWM in /proc/PID/status) grows by no more than
# the documented bound. Real bodies of many short messages are far under
# the default, and llm_request_memory raises the bound where wanted.
#
# A script: the worker's peak memory (VmHWM) is read from /proc.

use strict;
use warnings;

use JSON::PP ();
use Test::More;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request read_file);

my $srv = start_nginx(
    name        => 'request-memory',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider an {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/anthropic/v1;
        key sk-ant-mock-key;
        format anthropic;
    }
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route claude { target an; cache on; }
    llm_route gpt { target mock; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location /roomy/v1/ {
        rewrite ^/roomy(/.*)$ $1 break;
        llm_gateway;
        llm_request_memory 100x 512m;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my $port = $srv->port;

sub chat {
    my ($uri, $model, $extra) = @_;
    return http_request(port => $port, method => 'POST', uri => $uri,
                        timeout => 60,
                        body => '{"model":"' . $model . '","max_tokens":5,'
                              . '"messages":[{"role":"user","content":"hi"}]'
                              . $extra . '}');
}

sub peak_kib {
    my ($pid) = $srv->worker_pids;
    my $status = read_file("/proc/$pid/status");
    return $status =~ /^VmHWM:\s+(\d+) kB/m ? $1 : undef;
}

# instrumented builds keep freed memory in quarantine: no figures there
my $measured = !$ENV{TEST_NGINX_USE_ASAN} && !$ENV{TEST_NGINX_USE_VALGRIND};

is(chat('/v1/chat/completions', 'claude', '')->{status}, 200,
   'a small request is translated and answered');

my $zeros = 2 * 1024 * 1024;
my $flood = ',"x":[' . join(',', ('0') x ($zeros / 2)) . ']';
my $body_len = length($flood) + 80;

my $before = peak_kib();
my $res = chat('/v1/chat/completions', 'claude', $flood);
my $after = peak_kib();

is($res->{status}, 413, 'a body of 2 MiB of tiny values to a translated '
                        . 'target is refused');
my $err = eval { JSON::PP::decode_json($res->{body})->{error} } || {};
is($err->{code}, 'request_too_large', 'with the code request_too_large');
is($err->{type}, 'invalid_request_error', 'an invalid_request_error');
like($err->{message}, qr/llm_request_memory/,
     'the message names the directive that sets the bound');

SKIP: {
    skip 'peak memory is not comparable under ASan or valgrind', 1
        unless $measured && defined $before;

    # documented: a body of N bytes costs at most N (the body itself) plus
    # 16 N + 64 KiB (the parse), plus yajl's buffer and nginx's own
    my $bound_kib = (18 * $body_len + 8 * 1024 * 1024) / 1024;
    cmp_ok($after - $before, '<=', $bound_kib,
           "the worker's peak grew by no more than the bound ("
           . ($after - $before) . " KiB)");
}

$res = chat('/roomy/v1/chat/completions', 'claude', $flood);
is($res->{status}, 200, 'where llm_request_memory allows more, the same '
                        . 'body is translated');

# what real clients send fits: 20,000 short messages in 1 MiB
my $many = join(',', map { '{"role":"user","content":"hello"}' } 1 .. 20_000);
$res = http_request(port => $port, method => 'POST',
                    uri => '/v1/chat/completions', timeout => 60,
                    body => '{"model":"claude","max_tokens":5,'
                          . '"messages":[' . $many . ']}');
is($res->{status}, 200, '20,000 short messages are translated under the '
                        . 'default bound');

# an OpenAI target needs no tree: its body is passed as it is
$res = chat('/v1/chat/completions', 'gpt', $flood);
is($res->{status}, 200, 'the same tiny values to an OpenAI target are '
                        . 'passed on');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
