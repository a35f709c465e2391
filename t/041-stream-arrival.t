# Each event reaches the client as the provider sends it: the first event
# must arrive while the provider is still in the middle of the stream.
# The mock's access log gets the request only when the stream ends, so an
# empty mock log when the first event arrives proves it was not buffered.
#
# A script: the first event is read while the provider still streams, and
# the mock's log looked at then.

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_stream);

my $srv = start_nginx(
    name        => 'stream-arrival',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route streamer {
        target mock;
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $mock_log = $srv->servroot . '/logs/mock_access.log';

sub mock_finished {
    return -s $mock_log ? 1 : 0;
}

my $received = '';
my @events;
my @finished_when;

my $res = http_stream(
    port    => $srv->port,
    method  => 'POST',
    uri     => '/v1/chat/completions',
    body    => '{"model":"streamer","stream":true,"messages":[{"role":"user",'
             . '"content":"x"}],"mock":{"reply":"one two three four",'
             . '"chunks":4,"gap":400}}',
    timeout => 10,
    on_data => sub {
        my ($data) = @_;
        $received .= $data;

        while ($received =~ s/\A(data: [^\n]*)\n\n//) {
            push @events, $1;
            push @finished_when, mock_finished();
        }

        return 1;
    },
);

is($res->{status}, 200, 'the stream succeeds');
is(scalar @events, 7, 'role, four chunks, finish, [DONE] and nothing lost')
    or diag explain \@events;
is($events[-1], 'data: [DONE]', 'the last event is [DONE]');

like($events[1], qr/"content":"one "/, 'the first content chunk is first');
like($events[4], qr/"content":"four"/, 'the last content chunk is last');

is($finished_when[0], 0,
   'the first event arrived while the provider was still streaming');
is($finished_when[1], 0,
   'so did the first content chunk');

$srv->stop;
ok(mock_finished(), 'the provider finished the stream in the end');
$srv->check_clean('no alerts');

done_testing();
