# Limits of keys, teams and organisations: requests and tokens per minute,
# requests in parallel, budgets in tokens and in USD; 429 with OpenAI's
# error shape, Retry-After, and x-ratelimit-* headers on every answer.
#
# A script: each limit is reached by several requests in sequence to one
# running nginx (the counters live in its zone), and the parallel limit
# needs a second client while the first request is still with the provider.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request build_request wait_until);

my $srv = start_nginx(
    name        => 'limits',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route m {
        target mock input=1.00 output=2.00;
    }

    llm_key rpm { key sk-rpm-0123456789; rpm 2; }
    llm_key tpm { key sk-tpm-0123456789; tpm 300; }
    llm_key tokens { key sk-tokens-0123456789; budget 250tokens/day; }
    llm_key dollars { key sk-dollars-0123456789; budget 0.0004usd/month; }
    llm_key slow { key sk-slow-0123456789; parallel 1; }

    llm_org acme { budget 220tokens/hour; }
    llm_team eng { org acme; }
    llm_key member { key sk-member-0123456789; team eng; }

    log_format acct '$llm_key $status $llm_prompt_tokens '
                    '$llm_completion_tokens $llm_cost';
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/acct.log acct;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

# a completion for key $key: 20 prompt and 80 completion tokens reported,
# reserved as 6 + max_tokens (the text of "user" and "x" is 5 bytes, 2 tokens,
# and 4 a message)
sub ask {
    my ($key, %o) = @_;
    my $body = '{"model":"m","max_tokens":' . ($o{max_tokens} // 94)
             . ',"messages":[{"role":"user","content":"x"}],'
             . '"mock":{"prompt_tokens":20,"completion_tokens":80'
             . ($o{delay} ? ',"delay":' . $o{delay} : '') . '}}';

    return http_request(port => $srv->port, method => 'POST',
                        uri => '/v1/chat/completions',
                        headers => { Authorization => "Bearer $key" },
                        body => $body);
}

sub error_of {
    my ($res) = @_;
    return eval { decode_json($res->{body})->{error} } // {};
}

# requests per minute

my @r = map { ask('sk-rpm-0123456789') } 1 .. 3;

is($r[0]{status}, 200, 'rpm: first request');
is($r[0]->header('x-ratelimit-limit-requests'), 2, 'rpm: limit header');
is($r[0]->header('x-ratelimit-remaining-requests'), 1,
   'rpm: remaining after the first');
like($r[0]->header('x-ratelimit-reset-requests'), qr/^\d+s$/,
     'rpm: reset in seconds');
is($r[1]{status}, 200, 'rpm: second request');
is($r[1]->header('x-ratelimit-remaining-requests'), 0,
   'rpm: none remaining after the second');
is($r[2]{status}, 429, 'rpm: the third is refused');
like($r[2]->header('retry-after'), qr/^\d+$/, 'rpm: Retry-After');
is($r[2]->header('x-ratelimit-limit-requests'), 2,
   'rpm: the 429 names the limit that binds');
is($r[2]->header('x-ratelimit-remaining-requests'), 0,
   'rpm: with nothing remaining');
like($r[2]->header('x-ratelimit-reset-requests'), qr/^\d+s$/,
     'rpm: and when it resets');

# the provider's own headers (the mock sends OpenAI's) never sit beside
# the gateway's: one value per header
for my $h (qw(limit-requests remaining-requests reset-requests)) {
    is(scalar @{ $r[0]{headers}{"x-ratelimit-$h"} }, 1,
       "rpm: one x-ratelimit-$h");
}
is($r[0]->header('x-provider-ratelimit-limit-requests'), 10000,
   'rpm: the provider\'s limit under its own prefix');
is($r[0]->header('x-ratelimit-limit-tokens'), 30000000,
   'rpm: a kind the key does not limit: the provider\'s header as it is');
is_deeply(error_of($r[2]),
          { message => 'Rate limit reached for key `rpm`: 2 requests per '
                       . 'minute. Retry after ' . $r[2]->header('retry-after')
                       . ' s.',
            type => 'rate_limit_error', param => undef,
            code => 'rate_limit_exceeded' },
          'rpm: the error body');

# tokens per minute: 100 reserved, then 100 used, per request

@r = map { ask('sk-tpm-0123456789') } 1 .. 4;

is_deeply([map { $_->{status} } @r], [200, 200, 200, 429],
          'tpm: three fit in 300 tokens, the fourth does not');
is($r[0]->header('x-ratelimit-limit-tokens'), 300, 'tpm: limit header');
is($r[0]->header('x-ratelimit-remaining-tokens'), 200,
   'tpm: remaining counts the request\'s reservation');
like(error_of($r[3])->{message}, qr/300 tokens per minute/,
     'tpm: the error names the limit');

# a token budget: 250 tokens a day, 100 per request

@r = map { ask('sk-tokens-0123456789') } 1 .. 3;

is_deeply([map { $_->{status} } @r], [200, 200, 429],
          'budget: two requests fit 250 tokens');
is(error_of($r[2])->{code}, 'insufficient_quota', 'budget: the code');
like(error_of($r[2])->{message},
     qr/^Budget exhausted for key `tokens`: 250 tokens per day\. It resets in \d+ s\.$/,
     'budget: the message');
ok($r[2]->header('retry-after') > 0
   && $r[2]->header('retry-after') <= 86400,
   'budget: Retry-After is within the day');

# a USD budget: 20 x $1/1M + 80 x $2/1M = $0.00018 a request

@r = map { ask('sk-dollars-0123456789', max_tokens => 20) } 1 .. 3;

is_deeply([map { $_->{status} } @r], [200, 200, 429],
          'usd budget: $0.0004 covers two requests of $0.00018');
like(error_of($r[2])->{message},
     qr/^Budget exhausted for key `dollars`: 0\.000400 USD per month\./,
     'usd budget: the message in dollars');

# an organisation's budget applies to its teams' keys

@r = map { ask('sk-member-0123456789') } 1 .. 3;

is_deeply([map { $_->{status} } @r], [200, 200, 429],
          'org budget: limits a key of one of its teams');
like(error_of($r[2])->{message}, qr/for org `acme`: 220 tokens per hour/,
     'org budget: the error names the organisation');

# requests in parallel: the second waits for the first

my $first = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->port, Timeout => 10)
    or die "connect: $!";

$first->syswrite(build_request(
    method => 'POST', uri => '/v1/chat/completions',
    headers => { Authorization => 'Bearer sk-slow-0123456789' },
    body => '{"model":"m","max_tokens":10,"messages":[{"role":"user",'
          . '"content":"first"}],"mock":{"delay":3000}}'));

ok(wait_until(sub {
       my $log = eval {
           Test::Nginx::LLM::read_file($srv->servroot . '/logs/mock.log')
       } // '';
       return $log =~ /mock received .* model=m /;
   }, timeout => 10, desc => 'the provider has the first request'),
   'parallel: the first request is with the provider');

my $second = ask('sk-slow-0123456789');
is($second->{status}, 429, 'parallel: the second is refused meanwhile');
like(error_of($second)->{message}, qr/1 requests in parallel/,
     'parallel: the error names the limit');

my $answer = '';
while ($first->sysread(my $buf, 65536)) {
    $answer .= $buf;
}
like($answer, qr{^HTTP/1\.1 200 }, 'parallel: the first completes');

is(ask('sk-slow-0123456789')->{status}, 200,
   'parallel: a request after it is served');

# accounting as logged

$srv->stop;

my $acct = Test::Nginx::LLM::read_file($srv->servroot . '/logs/acct.log');

like($acct, qr/^dollars 200 20 80 0\.000180000$/m,
     'the access log has the tokens and the cost');
like($acct, qr/^dollars 429 0 0 0\.000000000$/m,
     'a refused request used nothing');

$srv->check_clean('no alerts');

done_testing();
