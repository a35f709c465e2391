# Prompt caching priced right: the provider's cache reads and cache
# writes are read from its usage (Anthropic's cache_read_input_tokens and
# cache_creation_input_tokens, Bedrock's cacheReadInputTokens and
# cacheWriteInputTokens, Gemini's cachedContentTokenCount, OpenAI's
# prompt_tokens_details.cached_tokens), charged at the target's cached=
# and cache_write= prices, counted in the metrics (kind="cached",
# "cache_write") and the variables, and returned to clients in their own
# format.
#
# A script: the cost is read from the access log and the metrics, once
# the requests are counted (waited for).

use strict;
use warnings;

use Test::More;
use LLM::Fixtures;
use LLM::Dialects qw(post decode_json slurp);
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $srv = start_nginx(
    name        => 'prompt-cache',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    log_format usage '$llm_model p=$llm_prompt_tokens c=$llm_completion_tokens '
                     'cached=$llm_cached_tokens write=$llm_cache_write_tokens '
                     'cost=$llm_cost';

    llm_provider claude {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=anthropic:tools.json/v1;
        format anthropic;
        key k;
    }
    llm_provider titan {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=bedrock:tools.json;
        format bedrock;
        region us-east-1;
        access_key AKIDEXAMPLE;
        secret_key s3cr3t;
    }
    llm_provider flash {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fixture/fixture=gemini:text.json/v1beta;
        format gemini;
        key k;
    }

    # USD per million tokens
    llm_route claude {
        target claude claude-sonnet-4-5 input=3 output=15 cached=0.30
               cache_write=3.75;
    }
    llm_route nowrite { target claude claude-sonnet-4-5 input=3 output=15; }
    llm_route titan { target titan m input=1 output=2 cached=0.5; }
    llm_route flash { target flash m input=1 output=2 cached=0.25; }

    llm_guard reencode { redact nothing "\x00{8}" where=response; }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/usage.log usage;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location /guarded/v1/ {
        access_log logs/usage.log usage;
        llm_guard_policy reencode;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /metrics {
        llm_status prometheus;
    }
CONF
);

my $port = $srv->port;
my $chat = { messages => [{ role => 'user', content => 'x' }] };

sub ask {
    my ($model, $prefix) = @_;
    return post($port, ($prefix // '') . '/v1/chat/completions',
                { %$chat, model => $model });
}

# an OpenAI client: the cache read is prompt_tokens_details.cached_tokens
my $res = ask('claude');
is($res->{status}, 200, 'anthropic to an OpenAI client');
my $usage = decode_json($res->{body})->{usage};
is_deeply([@$usage{qw(prompt_tokens completion_tokens)},
           $usage->{prompt_tokens_details}{cached_tokens}],
          [2572, 89, 2000], 'prompt (reads and writes in it), cached');

is(ask('nowrite')->{status}, 200, 'a target without cache prices');
is(ask('titan')->{status}, 200, 'bedrock');
is(ask('flash')->{status}, 200, 'gemini');

# Anthropic's door: its own fields, the cache write included, also when
# the answer is decoded and encoded again (a guard reads it)
for my $prefix ('', '/guarded') {
    $res = post($port, "$prefix/v1/messages",
                { %$chat, model => 'claude', max_tokens => 10 },
                'anthropic-version' => '2023-06-01');
    is_deeply(decode_json($res->{body})->{usage},
              { input_tokens => 472, cache_creation_input_tokens => 100,
                cache_read_input_tokens => 2000, output_tokens => 89 },
              "Anthropic's door$prefix: its usage, cache write and read");
}

my %log;
ok(wait_until(sub {
       %log = ();
       my $text = -e $srv->servroot . '/logs/usage.log'
                  ? slurp($srv->servroot . '/logs/usage.log') : '';
       push @{ $log{$1} }, $2 while $text =~ /^(\w+) (.*)$/mg;
       ($log{claude} // [])->@* == 3
   }, desc => 'the requests logged'), 'the requests logged');

# 472 x 3 + 2000 x 0.30 + 100 x 3.75 + 89 x 15 = 3726 micro-USD
is($log{claude}[0], 'p=2572 c=89 cached=2000 write=100 cost=0.003726000',
   'anthropic: reads at cached=, writes at cache_write=');
is($log{claude}[$_], $log{claude}[0],
   "anthropic at Anthropic's door: the same (" . ($_ == 1 ? 'as it is'
                                                 : 're-encoded') . ')')
    for 1, 2;
# prices not given: reads and writes at the input price
# 2572 x 3 + 89 x 15 = 9051
is($log{nowrite}[0], 'p=2572 c=89 cached=2000 write=100 cost=0.009051000',
   'without cached= and cache_write=: the input price');
# 375 + 1000 read + 0 written: 375 x 1 + 1000 x 0.5 + 70 x 2 = 1015
is($log{titan}[0], 'p=1375 c=70 cached=1000 write=0 cost=0.001015000',
   'bedrock: cacheReadInputTokens');
# 4 x 1 + 4 x 0.25 + 12 x 2 = 29
is($log{flash}[0], 'p=8 c=12 cached=4 write=0 cost=0.000029000',
   'gemini: cachedContentTokenCount');

my $metrics = http_request(port => $port, uri => '/metrics')->{body};
like($metrics, qr/^llm_tokens_total\{route="claude",provider="claude",model="claude-sonnet-4-5",kind="cache_write"\} 300$/m,
     'the metrics count cache writes');
like($metrics, qr/^llm_tokens_total\{route="claude",provider="claude",model="claude-sonnet-4-5",kind="cached"\} 6000$/m,
     'and cache reads');

$srv->stop;
$srv->check_clean('no alerts');

done_testing();
