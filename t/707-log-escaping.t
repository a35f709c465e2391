# What providers send reaches the error log escaped: an event the gateway
# does not understand, whose data lines (joined by newlines) carry a fake
# log line and binary bytes, is logged on one line, its control and
# non-ASCII bytes as \xHH; and so is a provider's error message. A script:
# the fixture is made here, and the error log read.

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use LLM::Fixtures;
use LLM::Dialects qw(post slurp);
use Test::Nginx::LLM qw(start_nginx);

my $dir = tempdir(CLEANUP => 1);
make_path("$dir/anthropic");

# Anthropic's stream, with an event of two data lines after its first
my $fixtures = $ENV{TEST_NGINX_FIXTURE_DIR};
my $stream = slurp("$fixtures/anthropic/tools.sse");
$stream =~ s/\n\n/\n\nevent: content_block_delta\ndata: {not json\ndata: 2026\/12\/05 00:00:00 [warn] 1#1: forged \x01\xff line\n\n/;
open my $fh, '>', "$dir/anthropic/inject.sse" or die $!;
print $fh $stream;
close $fh;
open $fh, '>', "$dir/anthropic/error.json" or die $!;
print $fh '{"type":"error","error":{"type":"overloaded\nerror",'
        . '"message":"line one\n2026/12/05 00:00:00 [warn] 1#1: forged \u0007"}}';
close $fh;

$ENV{TEST_NGINX_FIXTURE_DIR} = $dir;

my $srv = start_nginx(
    name        => 'log-escaping',
    log_level   => 'info',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider inject {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:inject.sse/v1;
        format anthropic;
        key k;
    }
    llm_provider err {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:error.json,status=529/v1;
        format anthropic;
        key k;
    }
    llm_route inject { target inject m; }
    llm_route err { target err m; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $res = post($srv->port, '/v1/chat/completions',
               { model => 'inject', stream => JSON::PP::true(),
                 messages => [{ role => 'user', content => 'x' }] });
like($res->{body}, qr/data: \[DONE\]/, 'the stream goes on past the event');

$res = post($srv->port, '/v1/chat/completions',
            { model => 'err', messages => [{ role => 'user', content => 'x' }] });
is($res->{status}, 529, 'the provider\'s error passes on');

my $log = $srv->error_log;
like($log, qr/does not understand: "\{not json\\x0a2026\/12\/05 00:00:00 \[warn\] 1#1: forged \\x01\\xff line"/,
     'the event on one line, escaped');
unlike($log, qr/^2026\/12\/05 00:00:00 \[warn\]/m,
       'no forged line in the log');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
