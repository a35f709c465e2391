# An answer in the client's own API (not a stream; an OpenAI-format target
# at /v1/chat/completions, an Anthropic one at /v1/messages) is held as a
# translated one is (t/705): its header waits until all of its body has
# come, so that one whose body breaks after the header (the connection
# reset, closed short of its Content-Length, a chunk that is not one) is a
# failed attempt like a 5xx: the route's next target answers, in a second
# attempt; with none left the client gets a whole 502 in its own API's
# shape, never an empty reply nor a truncated 200; llm_status counts a
# failure of the target, not a success. A whole answer, in one read or in
# several, reaches the client as it came. A script: fault servers are
# forked processes.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::FaultGateway;
use LLM::Routing qw(chat);

my $SLOW = Test::Nginx::LLM::slow_factor();

my $gw = LLM::FaultGateway->new;

my @faults = qw(rst_body cut_len bad_chunk);
my @cases = map { my $d = $_; map { [$d, $_] } @faults } qw(openai anthropic);

$gw->dialect_fault(@$_) for @cases;

# whole answers, at once and a byte a millisecond after the first 100
for my $d (qw(openai anthropic)) {
    $gw->target("${d}_ok", fault => 'ok', dialect => $d, model => 'm',
                alone => "${d}_ok");
    $gw->target("${d}_drip", fault => 'drip,ms=1,from=100', dialect => $d,
                model => 'm', alone => "${d}_drip");
}

my $srv = $gw->start(name => 'native-cut', read_timeout => 30 * $SLOW . 's');
my $port = $srv->port;

sub ask {
    my ($d, $model) = @_;
    return chat($port, $model, timeout => 10 * $SLOW) if $d eq 'openai';
    return $gw->messages($model, timeout => 10 * $SLOW);
}

for my $c (@cases) {
    my ($d, $fault) = @$c;
    my $name = "${d}_$fault";

    my $res = ask($d, $name);
    $gw->failover_ok($res, $name);
    my $body = eval { JSON::PP::decode_json($res->{body}) } // {};
    is($body->{$d eq 'openai' ? 'object' : 'type'},
       $d eq 'openai' ? 'chat.completion' : 'message',
       "$name: a whole answer in the client's API");

    $res = ask($d, "${name}_alone");
    $gw->error_502_ok($res, $d, "$name alone");

    # the failed attempts, twice (with and without a next target)
    $gw->counts_ok($name, 'm', 2, 0,
                   "$name: llm_status counts two failures, no success");
}

for my $d (qw(openai anthropic)) {
    for my $how (qw(ok drip)) {
        my $name = "${d}_$how";
        my $res = ask($d, $name);
        is($res->{status}, 200, "$name: 200");
        is(($res->header('x-llm-provider') // '') . ' '
           . ($res->header('x-llm-attempts') // ''),
           "$name 1", "$name: by the target, at once");
        my $body = eval { JSON::PP::decode_json($res->{body}) } // {};
        like(($d eq 'openai' ? $body->{choices}[0]{message}{content}
                             : $body->{content}[0]{text}) // '',
             qr/^Hello from a fault$/, "$name: the whole answer, as it came");
        $gw->counts_ok($name, 'm', 0, 1, "$name: llm_status counts a success");
    }
}

done_testing();
