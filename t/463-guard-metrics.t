# Guard policies in the metrics: llm_guard_hits_total counts, per policy,
# rule, action and where, the requests in which a rule matched (refused
# requests included), zero for rules that never fired; the JSON status
# lists the policies and their rules with the same counts.
#
# A script: counters in shared memory are read once the requests are
# counted (waited for), as in t/600.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $srv = start_nginx(
    name        => 'guard-metrics',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target mock; }

    llm_guard pii {
        redact email  @email;
        deny   secret "sk-[A-Za-z0-9]{20,}";
        log    hello  "(?i)\bhello\b";
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_guard_policy pii;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /metrics {
        llm_status prometheus;
    }
    location = /status {
        llm_status json;
    }
CONF
);

my $port = $srv->port;

sub ask {
    my ($content, $reply) = @_;
    return http_request(
        port => $port, method => 'POST', uri => '/v1/chat/completions',
        headers => { 'Content-Type' => 'application/json' },
        body => JSON::PP->new->encode({
            model => 'm', messages => [{ role => 'user', content => $content }],
            $reply ? (mock => { reply => $reply }) : () }));
}

sub hits {
    my $text = http_request(port => $port, uri => '/metrics')->{body} // '';
    my %h;
    $h{"$1 $2 $3 $4"} = $5 while $text =~ /^llm_guard_hits_total\{policy="(\w+)",rule="(\w+)",action="(\w+)",where="(\w+)"\} (\d+)$/mg;
    return \%h;
}

my $before = hits();
is($before->{'pii email redact request'}, 0, 'a rule that never fired: 0');
is($before->{'pii secret deny request'}, 0, 'deny reads requests: listed');
ok(!exists $before->{'pii secret deny response'},
   'deny does not read answers unless where= says so: not listed');

is(ask('mail me at a@b.example.com', 'write to c@d.example.org')->{status},
   200, 'an address in the request and in the answer');
is(ask('hello, key sk-abcdefghijklmnopqrstuvwxyz')->{status}, 400,
   'a key: refused');
is(ask('hi', 'hello there')->{status}, 200, 'a log rule in the answer');

my $after;
ok(wait_until(sub {
       $after = hits();
       ($after->{'pii hello log response'} // 0) == 1
   }, desc => 'the requests counted'), 'the requests counted');

is($after->{'pii email redact request'}, 1, 'email in a request: 1');
is($after->{'pii email redact response'}, 1, 'email in an answer: 1');
is($after->{'pii secret deny request'}, 1, 'the refused request: 1');
is($after->{'pii hello log request'}, 0,
   'a refused request is not read further: its log rule not counted');
is($after->{'pii hello log response'}, 1, 'the log rule in an answer: 1');

my $status = JSON::PP->new->decode(
    http_request(port => $port, uri => '/status')->{body});
my ($pii) = grep { $_->{policy} eq 'pii' } @{ $status->{guards} };
ok($pii, 'the JSON status lists the policy');
is_deeply([map { [$_->{rule}, $_->{action}, $_->{request_hits},
                  $_->{response_hits}] } @{ $pii->{rules} }],
          [['email', 'redact', 1, 1], ['secret', 'deny', 1, 0],
           ['hello', 'log', 0, 1]],
          'its rules, actions and hits');

$srv->stop;
$srv->check_clean('no alerts');

done_testing();
