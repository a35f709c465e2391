# The response cache: hits, misses and bypasses, for completions and
# streams; keys that ignore key order and whitespace; tenants that never
# share; failed or cut answers never stored; hits accounted as hits.
# The provider's own log counts the requests that reached it.
#
# A script: a miss then hits of the same entry in one running nginx, the
# provider's own log counting what reached it.

use strict;
use warnings;

use Test::More;
use File::Path qw(remove_tree);
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

# every run starts with an empty cache
my $servroot = 't/servroot-cache';
remove_tree("$servroot/cache");

my $srv = start_nginx(
    name        => 'cache',
    servroot    => $servroot,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    proxy_cache_path cache keys_zone=llm:1m;   # in this nginx's prefix

    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_provider cutter {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
    }

    llm_route m { target mock input=1.00 output=1.00; }
    llm_route always { target mock; cache on; }
    llm_route never { target mock; cache off; }
    llm_route cut { target cutter; }

    llm_team red { }
    llm_team blue { }
    llm_key r1 { key sk-red-one-0123456789; team red; }
    llm_key r2 { key sk-red-two-0123456789; team red; }
    llm_key b1 { key sk-blue-one-0123456789; team blue; }

    llm_cache_charge 50%;

    log_format hits '$llm_key $llm_cache_status $status '
                    '$llm_prompt_tokens $llm_completion_tokens $llm_cost';

    # a stream that stops before [DONE]
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        access_log logs/cutter.log;
        location / {
            default_type text/event-stream;
            return 200 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"partial"}}]}

';
        }
    }
CONF
    config => <<'CONF',
    location /v1/ {
        access_log logs/hits.log hits;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
    }
    location /scoped/v1/ {
        llm_cache_scope key;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
    }
CONF
);

my $provider_log = $srv->servroot . '/logs/mock_access.log';

# requests that reached the provider so far
sub provider_requests {
    my $log = eval { Test::Nginx::LLM::read_file($provider_log) } // '';
    return scalar(() = $log =~ /\n/g);
}

sub ask {
    my ($body, %o) = @_;
    my $res = http_request(
        port => $srv->port, method => 'POST',
        uri => ($o{uri} // '/v1/chat/completions'),
        headers => { Authorization => 'Bearer '
                                      . ($o{key} // 'sk-red-one-0123456789'),
                     %{ $o{headers} // {} } },
        body => $body);
    return $res;
}

my $q = '{"model":"m","temperature":0,"messages":[{"role":"user",'
      . '"content":"What is nginx?"}]}';

# a completion: miss, then hit, also with keys reordered and spaces

my $before = provider_requests();
my $miss = ask($q);
is($miss->{status}, 200, 'first: answered');
is($miss->header('x-llm-cache'), 'MISS', 'first: MISS');

my $hit = ask('{ "messages" : [ { "content" : "What is nginx?", '
              . '"role":"user" } ], "temperature":0.0, "model":"m" }');
is($hit->header('x-llm-cache'), 'HIT', 'reordered and respaced: HIT');
is($hit->{body}, $miss->{body}, 'the same answer');
is(provider_requests() - $before, 1, 'the provider was asked once');

# the canonical form: escapes decoded; arrays in order; each string
# whole (a character moved from one value to the next is a new question)

my $esc = '{"model":"m","temperature":0,"stop":["x","yz"],'
        . '"messages":[{"role":"user","content":"escApe"}]}';
is(ask($esc)->header('x-llm-cache'), 'MISS', 'canonical form: MISS');
is(ask('{"model":"m","temperature":0,"stop":["x","yz"],'
       . '"messages":[{"role":"user","content":"esc\\u0041pe"}]}')
       ->header('x-llm-cache'),
   'HIT', 'an escaped character: HIT');
is(ask('{"model":"m","temperature":0,"stop":["yz","x"],'
       . '"messages":[{"role":"user","content":"escApe"}]}')
       ->header('x-llm-cache'),
   'MISS', 'array elements in another order: MISS');
is(ask('{"model":"m","temperature":0,"stop":["xy","z"],'
       . '"messages":[{"role":"user","content":"escApe"}]}')
       ->header('x-llm-cache'),
   'MISS', 'a character moved between strings: MISS');

# deeper than the digest's first levels (a schema 14 objects deep):
# members sorted there too, values told apart there too

sub deep {
    my ($n, $leaf) = @_;
    return $n ? '{"z":' . $n . ',"k":' . deep($n - 1, $leaf) . '}' : $leaf;
}

sub deep_question {
    my ($leaf) = @_;
    return '{"model":"m","temperature":0,"response_format":{"type":'
         . '"json_schema","json_schema":{"name":"s","schema":'
         . deep(12, $leaf) . '}},"messages":[{"role":"user",'
         . '"content":"deep"}]}';
}

is(ask(deep_question('{"a":1,"b":[2,{"c":3}]}'))->header('x-llm-cache'),
   'MISS', 'deep: MISS');
is(ask(deep_question('{"b":[2,{"c":3}],"a":1}'))->header('x-llm-cache'),
   'HIT', 'deep, members in another order: HIT');
is(ask(deep_question('{"a":1,"b":[2,{"c":4}]}'))->header('x-llm-cache'),
   'MISS', 'deep, a value changed: MISS');

# not deterministic: never cached, unless asked

my $hot = '{"model":"m","temperature":0.7,"messages":[{"role":"user",'
        . '"content":"Be creative"}]}';

$before = provider_requests();
is(ask($hot)->header('x-llm-cache'), 'BYPASS', 'temperature 0.7: BYPASS');
is(ask($hot)->header('x-llm-cache'), 'BYPASS', 'again BYPASS');
is(provider_requests() - $before, 2, 'both reached the provider');

is(ask($hot, headers => { 'X-LLM-Cache' => 'on' })->header('x-llm-cache'),
   'MISS', 'X-LLM-Cache: on opts in: MISS');
is(ask($hot, headers => { 'X-LLM-Cache' => 'on' })->header('x-llm-cache'),
   'HIT', 'then HIT');
is(ask($q, headers => { 'X-LLM-Cache' => 'off' })->header('x-llm-cache'),
   'BYPASS', 'X-LLM-Cache: off opts out');

# routes

my $a = '{"model":"always","messages":[{"role":"user","content":"x"}]}';
is(ask($a)->header('x-llm-cache'), 'MISS', 'route cache on: MISS');
is(ask($a)->header('x-llm-cache'), 'HIT', 'route cache on: HIT');

my $n = '{"model":"never","temperature":0,"messages":[{"role":"user",'
      . '"content":"x"}]}';
ask($n);
is(ask($n)->header('x-llm-cache'), 'BYPASS', 'route cache off: BYPASS');

# the client's Cache-Control

my $fresh = '{"model":"m","temperature":0,"messages":[{"role":"user",'
          . '"content":"fresh"}]}';
ask($fresh);
is(ask($fresh, headers => { 'Cache-Control' => 'no-cache' })
       ->header('x-llm-cache'),
   'BYPASS', 'no-cache skips the lookup');

my $secret = '{"model":"m","temperature":0,"messages":[{"role":"user",'
           . '"content":"secret"}]}';
is(ask($secret, headers => { 'Cache-Control' => 'no-store' })
       ->header('x-llm-cache'),
   'BYPASS', 'no-store: not looked up');
is(ask($secret)->header('x-llm-cache'), 'MISS', 'and not stored');

# tenants: a team shares, other teams do not; scope key separates keys

my $t = '{"model":"m","temperature":0,"messages":[{"role":"user",'
      . '"content":"tenant"}]}';
is(ask($t, key => 'sk-red-one-0123456789')->header('x-llm-cache'), 'MISS',
   'team red: MISS');
is(ask($t, key => 'sk-red-two-0123456789')->header('x-llm-cache'), 'HIT',
   'another key of team red: HIT');
is(ask($t, key => 'sk-blue-one-0123456789')->header('x-llm-cache'), 'MISS',
   'team blue does not read red\'s answers');

my $s = '/scoped/v1/chat/completions';
is(ask($t, uri => $s, key => 'sk-red-one-0123456789')->header('x-llm-cache'),
   'MISS', 'scope key: MISS');
is(ask($t, uri => $s, key => 'sk-red-two-0123456789')->header('x-llm-cache'),
   'MISS', 'scope key: another key of the team misses');

# a stream: stored once complete, replayed as a stream

my $st = '{"model":"m","temperature":0,"stream":true,"messages":[{"role":'
       . '"user","content":"stream me"}]}';
my $first = ask($st);
is($first->header('x-llm-cache'), 'MISS', 'stream: MISS');
like($first->{body}, qr/data: \[DONE\]\n\n\z/, 'stream: complete');

my $again = ask($st);
is($again->header('x-llm-cache'), 'HIT', 'stream: HIT');
is($again->header('content-type'), 'text/event-stream',
   'replayed as a stream');
is(join('', $again->{body} =~ /"content":"([^"]*)"/g),
   join('', $first->{body} =~ /"content":"([^"]*)"/g),
   'with the same content');
unlike($again->{body}, qr/"usage"/,
       'and without the usage chunk the client did not ask for');

# a stream cut short is not stored

my $c = '{"model":"cut","temperature":0,"stream":true,"messages":[{"role":'
      . '"user","content":"x"}]}';
like(ask($c)->{body}, qr/stream_interrupted/, 'cut stream: error event');
is(ask($c)->header('x-llm-cache'), 'MISS', 'cut stream: not stored');

# an answer that is an error is not stored

my $e = '{"model":"m","temperature":0,"messages":[{"role":"user",'
      . '"content":"x"}],"mock":{"error_body":1}}';
ask($e);
is(ask($e)->header('x-llm-cache'), 'MISS', '200 with an error: not stored');

my $busy = '{"model":"m","temperature":0,"messages":[{"role":"user",'
         . '"content":"x"}],"mock":{"status":503}}';
ask($busy);
is(ask($busy)->header('x-llm-cache'), 'MISS', '503: not stored');

# the body's "cache" member: an opt-in or out, LiteLLM's shape; never
# part of the key, never sent to the provider (which echoes what it got)

sub echoed {
    my ($res) = @_;
    my $text = join '', map { JSON::PP->new->decode(qq("$_")) }
                        $res->{body} =~ /"content":"((?:[^"\\]|\\.)*)"/g;
    return JSON::PP->new->decode($text);
}

my $warm = '{"model":"m","temperature":0.7,"mock":{"echo":1},'
         . '"messages":[{"role":"user","content":"body opt-in"}]';
my $first_member = qq({ "cache" : true ,\n"mod\\u0065l":"m","temperature":0.7,)
                 . '"mock":{"echo":1},"messages":[{"role":"user",'
                 . '"content":"body opt-in"}]}';
$before = provider_requests();
my $res = ask($first_member);
is($res->header('x-llm-cache'), 'MISS', '"cache": true opts in: MISS');
my $got = echoed($res);
ok(!exists $got->{cache}, 'the provider did not get "cache" (first member)');
is($got->{model}, 'm', 'and got the next member whole');
is_deeply([sort keys %$got], [qw(messages mock model temperature)],
          'and every other member');
is(ask("$warm,\"cache\":true}")->header('x-llm-cache'), 'HIT',
   '"cache" elsewhere in the body: the same entry, HIT');
is(provider_requests() - $before, 1, 'one request reached the provider');

my $last = '{"model":"m","temperature":0.7,"stream":true,"mock":{"echo":1},'
         . '"messages":[{"role":"user","content":"body opt-in, stream"}],'
         . '"cache":true}';
$res = ask($last);
is($res->header('x-llm-cache'), 'MISS', 'a stream with "cache": true: MISS');
$got = echoed($res);
ok(!exists $got->{cache}, 'the provider did not get "cache" (last member)');
is_deeply($got->{stream_options}, { include_usage => JSON::PP::true },
          'but stream_options, for the usage');
my $first_stream = '{"cache":true,"stream":true,"model":"m",'
                 . '"temperature":0.7,"mock":{"echo":1},"messages":[{"role":'
                 . '"user","content":"body opt-in, stream"}]}';
is(ask($first_stream)->header('x-llm-cache'), 'HIT', 'then HIT');

my $off = '{"model":"always","cache":false,"messages":[{"role":"user",'
        . '"content":"body opt-out"}]}';
ask($off);
is(ask($off)->header('x-llm-cache'), 'BYPASS', '"cache": false opts out');

my $nc = '{"model":"m","temperature":0,"messages":[{"role":"user",'
       . '"content":"body no-cache"}]';
ask("$nc}");
is(ask("$nc,\"cache\":{\"no-cache\":true}}")->header('x-llm-cache'),
   'BYPASS', '"cache": {"no-cache": true} skips the lookup');
is(ask("$nc}")->header('x-llm-cache'), 'HIT', 'the entry is still there');

my $ns = '{"model":"m","temperature":0,"messages":[{"role":"user",'
       . '"content":"body no-store"}]';
is(ask("$ns,\"cache\":{\"no-store\":true,\"ttl\":60}}")
       ->header('x-llm-cache'), 'BYPASS', '"cache": {"no-store": true}');
is(ask("$ns}")->header('x-llm-cache'), 'MISS', 'and it was not stored');

for my $bad ('"yes"', '1', 'null', '[]', '{"no-cache":"yes"}') {
    $res = ask('{"model":"m","cache":' . $bad . ',"messages":[{"role":'
               . '"user","content":"x"}]}');
    is($res->{status}, 400, "\"cache\": $bad is refused");
    like($res->{body}, qr/"param":"cache"/, "\"cache\": $bad: param cache");
}

# hits are accounted as hits: half price (llm_cache_charge 50%)

$srv->stop;

my $hits = Test::Nginx::LLM::read_file($srv->servroot . '/logs/hits.log');
my @lines = grep { /^r1 (MISS|HIT) 200/ } split /\n/, $hits;

like($lines[0], qr/^r1 MISS 200 (\d+) (\d+) (\S+)$/, 'a miss is logged');
my ($p, $cpl, $cost) = $lines[0] =~ /(\d+) (\d+) (\S+)$/;
is($lines[1], sprintf('r1 HIT 200 %d %d %.9f', int($p / 2), int($cpl / 2),
                      $cost / 2),
   'a hit is charged half the tokens and half the cost');

$srv->check_clean('no alerts');

done_testing();
