# Every configuration in conf.examples/ runs as "make run EXAMPLE=<name>"
# runs it (scripts/run.sh), and does what its header says.
#
# A script: every example is started as "make run" would, each an nginx of
# its own.

use strict;
use warnings;

use Test::More;
use File::Path qw(make_path remove_tree);
use File::Spec;
use JSON::PP ();
use POSIX ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(http_request wait_until free_port
                        read_file);

my $top = File::Spec->rel2abs('.');
my ($module) = grep { m{/ngx_http_llm_module\.so$} }
               split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
$module //= "$top/build/ngx_http_llm_module.so";

my %examples = map { m{/([^/]+)\.conf$}; ($1 => 1) } glob 'conf.examples/*.conf';

sub chat {
    my ($port, $model, %o) = @_;
    return http_request(
        port => $port, method => 'POST', uri => '/v1/chat/completions',
        headers => { %{ $o{headers} // {} } },
        body => JSON::PP->new->canonical->encode(
            { model => $model, %{ $o{body} // {} },
              messages => [{ role => 'user', content => 'Hi' }] }));
}

# what each example's header promises
my %checks = (
    quickstart => sub {
        my ($port, $prefix) = @_;
        my $res = chat($port, 'gpt-4o-mini');
        is($res->{status}, 200, 'quickstart: gpt-4o-mini, by the mock');
        like($res->{body}, qr/"content":"Hello from the mock/,
             'quickstart: the mock\'s answer');
        like(http_request(port => $port, uri => '/v1/models')->{body},
             qr/"id":"gpt-4o-mini"/, 'quickstart: /v1/models');
        ok(wait_until(sub {
               http_request(port => $port, uri => '/metrics')->{body}
               =~ /^llm_requests_total\{route="gpt-4o-mini",.*status="2xx"\} 1$/m
           }, desc => 'the request in the metrics'),
           'quickstart: /metrics counts it');
        like(http_request(port => $port,
                          uri => '/llm/status?format=html')->{body},
             qr/<title>LLM gateway status/, 'quickstart: the status page');
        ok(wait_until(sub {
               my $log = eval { read_file("$prefix/logs/llm.json") } // '';
               $log =~ /^\{.*"route":"gpt-4o-mini".*\}$/m
           }, desc => 'the JSON access log'), 'quickstart: a JSON log line');
    },
    keys => sub {
        my ($port) = @_;
        is(chat($port, 'gpt-4o-mini')->{status}, 401, 'keys: no key, 401');
        my $res = chat($port, 'gpt-4o-mini', body => { max_tokens => 100 },
                       headers => { Authorization => 'Bearer sk-alice-demo-0001' });
        is($res->{status}, 200, 'keys: alice');
        like($res->header('x-ratelimit-limit-requests') // '', qr/^30$/,
             'keys: her rate limit');
        ok(!grep(/^x-llm-/, keys %{ $res->{headers} }),
           'keys: llm_response_headers off, no x-llm-* header');
        is(chat($port, 'gpt-4o',
                headers => { Authorization => 'Bearer sk-alice-demo-0001' })
           ->{status}, 403, 'keys: alice may not use gpt-4o');
        is(chat($port, 'gpt-4o',
                headers => { Authorization => 'Bearer sk-bob-demo-0002' })
           ->{status}, 200, 'keys: bob may');
    },
    routing => sub {
        my ($port) = @_;
        my %served;
        for (1 .. 6) {
            my $res = chat($port, 'fast');
            is($res->{status}, 200, 'routing: fast answered') if $_ == 1;
            $served{ $res->header('x-llm-provider') // '' }++;
        }
        ok(!$served{''}, 'routing: every answer names its provider');
        is(chat($port, 'careful')->{status}, 200,
           'routing: careful, flaky retried or failed over');
        like(http_request(port => $port, uri => '/llm/status')->{body},
             qr/"name":"careful"/, 'routing: the status');
        my $res = chat($port, 'local/llama-3');
        is($res->header('x-llm-model'), 'llama-3',
           'routing: a regex route\'s capture');
        is(chat($port, 'auto', headers => { 'X-Tier' => 'gold' })
           ->header('x-llm-provider'), 'quick', 'routing: a rule for gold');
        is(chat($port, 'auto')->header('x-llm-provider'), 'sluggish',
           'routing: no rule holds');
    },
    dialects => sub {
        my ($port) = @_;
        for my $model (qw(claude gemini bedrock resilient)) {
            my $res = chat($port, $model);
            is($res->{status}, 200, "dialects: $model answers");
            like($res->{body}, qr/"object":"chat\.completion".*"role":"assistant"/s,
                 "dialects: $model, in OpenAI's format");
        }
        my $res = chat($port, 'gemini', body => { stream => JSON::PP::true });
        like($res->{body}, qr/^data: \{.*"chat\.completion\.chunk".*^data: \[DONE\]$/ms,
             'dialects: a Gemini stream as OpenAI chunks');
        $res = http_request(
            port => $port, method => 'POST', uri => '/v1/messages',
            body => '{"model":"gpt","max_tokens":100,'
                    . '"messages":[{"role":"user","content":"hi"}]}');
        is($res->{status}, 200, 'dialects: /v1/messages');
        like($res->{body}, qr/"type":"message".*"role":"assistant"/s,
             'dialects: in Anthropic\'s format');
        for my $model (qw(gpt claude local)) {
            $res = http_request(
                port => $port, method => 'POST', uri => '/v1/responses',
                body => '{"model":"' . $model . '","input":"hi"}');
            is($res->{status}, 200, "dialects: /v1/responses to $model");
            like($res->{body},
                 qr/"object":"response".*"type":"output_text"/s,
                 "dialects: $model, a Responses answer");
        }
        $res = http_request(
            port => $port, method => 'POST', uri => '/v1/responses',
            body => '{"model":"claude","stream":true,"input":"hi"}');
        like($res->{body},
             qr/\Aevent: response\.created\n.*^event: response\.completed$/ms,
             'dialects: a Responses stream translated from Anthropic');
    },
    fleet => sub {
        my ($port, $prefix, %o) = @_;
        my %alice = (headers => { Authorization => 'Bearer sk-alice-fleet-0001' });
        # a spends alice's 1000 tokens of the day
        my $res = chat($port, 'gpt-4o-mini', %alice,
                       body => { max_tokens => 10,
                                 mock => { prompt_tokens => 20,
                                           completion_tokens => 990 } });
        is($res->{status}, 200, 'fleet: a serves alice');
        # b learns it from Redis: its next request for alice is refused
        my $last;
        ok(wait_until(sub {
               $last = chat($o{b_port}, 'gpt-4o-mini', %alice,
                            body => { max_tokens => 1,
                                      mock => { prompt_tokens => 1,
                                                completion_tokens => 0 } });
               ($last->{status} // 0) == 429
           }, timeout => 20, desc => 'b to refuse alice'),
           'fleet: b refuses what a spent');
        like($last->{body}, qr/"code":"insufficient_quota"/,
             'fleet: as insufficient_quota');
        my $keys = `redis-cli -p $o{redis_port} --scan --pattern 'llm:key:alice:*'`;
        like($keys, qr/^llm:key:alice:tokens:day:\d+$/m,
             'fleet: alice\'s use is in Redis');
    },
    guard => sub {
        my ($port) = @_;
        my $secret = 'my key is sk-abcdefghijklmnopqrstuvwx';
        my $res = http_request(
            port => $port, method => 'POST', uri => '/v1/chat/completions',
            body => '{"model":"gpt-4o-mini","messages":[{"role":"user",'
                    . qq("content":"$secret"}]}));
        is($res->{status}, 400, 'guard: a key in a message, 400');
        like($res->{body}, qr/"code":"content_policy_violation"/,
             'guard: content_policy_violation');
        unlike($res->{body}, qr/abcdefgh/, 'guard: the key is not echoed');
        is(chat($port, 'gpt-4o-mini')->{status}, 200, 'guard: a clean one');
        $res = http_request(
            port => $port, method => 'POST', uri => '/open/v1/chat/completions',
            body => '{"model":"gpt-4o-mini","messages":[{"role":"user",'
                    . qq("content":"$secret"}]}));
        is($res->{status}, 200, 'guard: /open/v1/ has no policy');
        for my $stream (0, 1) {
            $res = chat($port, 'gpt-4o-mini', body => {
                stream => $stream ? JSON::PP::true() : JSON::PP::false(),
                mock => { reply => 'write to alice@example.com today' } });
            like($res->{body}, qr/"content":"(?:write to )?\[EMAIL\]/,
                 "guard: an address in the answer redacted (stream $stream)");
            unlike($res->{body}, qr/alice/,
                   "guard: the address never goes out (stream $stream)");
        }
    },
    cache => sub {
        my ($port) = @_;
        my %red = (headers => { Authorization => 'Bearer sk-red-demo-0001' },
                   body => { temperature => 0 });
        is(chat($port, 'gpt-4o-mini', %red)->header('x-llm-cache'), 'MISS',
           'cache: a miss');
        is(chat($port, 'gpt-4o-mini', %red)->header('x-llm-cache'), 'HIT',
           'cache: then a hit');
        is(chat($port, 'gpt-4o-mini', body => { temperature => 0 },
                headers => { Authorization => 'Bearer sk-blue-demo-0002' })
           ->header('x-llm-cache'), 'MISS', 'cache: another team misses');
    },
);

for my $name (sort keys %examples) {
    ok($checks{$name}, "$name: the test knows what it does") or next;

    my $prefix = "$top/t/servroot-examples/$name";
    remove_tree($prefix);
    unlink glob "$prefix.asan.*";
    make_path("$top/t/servroot-examples");
    my $port = free_port();
    my $mock = free_port();
    my %fleet = (b_port => free_port(), redis_port => free_port());

    # under ASan (make test-asan) nginx gets the sanitizers' runtimes, and
    # reports into the example's logs
    my $nginx = $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx';
    if ($ENV{TEST_NGINX_USE_ASAN}) {
        my $common = "detect_leaks=1:log_path=$prefix.asan:abort_on_error=0"
                     . ':exitcode=0:fast_unwind_on_malloc=0';
        open my $w, '>', "$prefix.nginx" or die "$prefix.nginx: $!";
        print $w "#!/bin/sh\n",
                 "export LD_PRELOAD='$ENV{TEST_NGINX_USE_ASAN} $module'\n",
                 "export ASAN_OPTIONS='$common:detect_odr_violation=0'\n",
                 "export UBSAN_OPTIONS='$common:print_stacktrace=1'\n",
                 "exec $nginx \"\$@\"\n";
        close $w;
        chmod 0755, "$prefix.nginx";
        $nginx = "$prefix.nginx";
    }

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # a group of its own: what the example starts goes with it
        POSIX::setpgid(0, 0);
        open STDOUT, '>', "$prefix.out" or die;
        open STDERR, '>&', \*STDOUT or die;
        $ENV{RUN_PREFIX} = $prefix;
        $ENV{MOCK_PORT} = $mock;
        $ENV{B_PORT} = $fleet{b_port};
        $ENV{REDIS_PORT} = $fleet{redis_port};
        $ENV{LLM_MODULE} = $module;
        $ENV{NGINX_BIN} = $nginx;
        # offline: the examples' real providers stay disabled
        delete @ENV{grep { /_API_KEY$|^AWS_/ } keys %ENV};
        exec 'scripts/run.sh', $port, $name or POSIX::_exit(127);
    }

    # nginx listens on all its ports at once, then starts its workers
    if (!wait_until(sub {
            Test::Nginx::LLM::port_listening($port)
            && http_request(port => $port, uri => '/v1/models',
                            timeout => 5)->{status}
        }, timeout => 60, interval => 0.1, desc => "$name to answer")) {
        fail("$name: runs");
        diag(eval { read_file("$prefix.out") } // '');
        kill 'KILL', -$pid;
        waitpid $pid, 0;
        next;
    }

    eval { $checks{$name}->($port, $prefix, %fleet); 1 }
        or fail("$name: its checks died: $@");

    # TERM, not QUIT: a shell (the fleet's scripts/run.sh) cannot trap a
    # signal ignored when it started, and a job started with & in a
    # script (a CI step run in the background) starts with QUIT ignored
    kill 'TERM', $pid;
    my $gone = wait_until(sub { waitpid($pid, POSIX::WNOHANG()) == $pid },
                          timeout => 20, desc => "$name to stop");
    ok($gone && $? == 0, "$name: stops cleanly");
    kill 'KILL', -$pid unless $gone;

    my $log = join '', map { eval { read_file($_) } // '' }
                  "$prefix/logs/error.log", "$prefix/b/logs/error.log";
    unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal|runtime error:/,
           "$name: no alerts");
    my @asan = map { Test::Nginx::LLM::asan_errors(read_file($_)) }
               glob "$prefix.asan.*";
    ok(!@asan, "$name: no sanitizer reports") or diag @asan;
}

done_testing();
