# 64 concurrent requests against a budget, with two workers: reservations
# keep the spend within the budget (each request reserves what it will
# use, so the documented bound, the estimates' error, is zero here), and
# the sum of recorded spend equals what the provider reported.
#
# A script: 64 concurrent clients against two workers.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use IO::Select;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx build_request wait_until);

my $N = 64;

my $srv = start_nginx(
    name        => 'budget-concurrency',
    master      => 1,
    workers     => 2,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route m {
        target mock input=1.00 output=1.00;
    }
    llm_key alice {
        key sk-alice-0123456789;
        budget 2000tokens/day;
        budget 0.0020usd/day;
    }
    log_format spend '$status $llm_prompt_tokens $llm_completion_tokens '
                     '$llm_cost';
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/spend.log spend;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

# every request reserves 6 + 94 = 100 tokens (see t/310-limits.t) and the
# provider reports 20 + 80 = 100; the provider answers after 300 ms, so
# that all 64 are in flight together
my $request = build_request(
    method => 'POST', uri => '/v1/chat/completions',
    headers => { Authorization => 'Bearer sk-alice-0123456789' },
    body => '{"model":"m","max_tokens":94,"messages":[{"role":"user",'
          . '"content":"x"}],"mock":{"prompt_tokens":20,'
          . '"completion_tokens":80,"delay":300}}');

my $sel = IO::Select->new;
my %answer;

for my $i (1 .. $N) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->port, Timeout => 10)
        or die "connect: $!";
    $s->blocking(0);
    $answer{fileno $s} = '';
    $sel->add($s);
}

# all requests out before any answer is read
$_->syswrite($request) for $sel->handles;

my $deadline = time + 30;

while ($sel->count && time < $deadline) {
    for my $s ($sel->can_read(1)) {
        my $n = $s->sysread(my $buf, 65536);

        if ($n) {
            $answer{fileno $s} .= $buf;
            next;
        }

        $sel->remove($s);
        close $s;
    }
}

is($sel->count, 0, 'every request was answered');

my %status;
$status{($_ =~ m{^HTTP/1\.1 (\d+)})[0] // 'none'}++ for values %answer;

is($status{200}, 20, '20 requests fit the budget of 2000 tokens');
is($status{429}, $N - 20, 'the other 44 were refused with 429');

my @refused = grep { m{^HTTP/1\.1 429} } values %answer;
ok(!grep({ !/"code":"insufficient_quota"/ } @refused),
   'every refusal says insufficient_quota');

$srv->stop;

my @spend = split /\n/,
            Test::Nginx::LLM::read_file($srv->servroot . '/logs/spend.log');

my ($tokens, $cost, $served) = (0, 0, 0);

for (@spend) {
    my ($status, $p, $c, $usd) = split / /;
    next unless $status == 200;
    $served++;
    $tokens += $p + $c;
    $cost += $usd;
}

is($served, 20, 'the log has the 20 served requests');
is($tokens, 2000, 'recorded spend equals what the provider reported');
ok($tokens <= 2000, 'and is within the budget: no overshoot');
is(sprintf('%.6f', $cost), '0.002000', 'the cost adds up to the USD budget');

$srv->check_clean('no alerts');

done_testing();
