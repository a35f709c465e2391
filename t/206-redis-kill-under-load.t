# Redis killed (SIGKILL) and started again, empty, while clients keep a
# gateway busy with completions and streams: in fail-open mode (the
# default) not one client request fails, and once Redis is back it holds
# exactly the tokens the provider reported to the gateway.
#
# The load comes from forked clients, each writing one line per request;
# the test waits for a number of requests in each phase, never for a time.
#
# A script: redis-server is killed and started again under load from forked
# clients.

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use LLM::Fixtures;
use LLM::Redis;
use Test::Nginx::LLM qw(start_nginx http_request wait_until free_port
                        read_file);

my $REDIS_PORT = $ENV{TEST_NGINX_REDIS_KILL_PORT} // 16392;
my $CLIENTS = 6;
my $SLOW = LLM::Redis::slow();

my $redis = LLM::Redis->start(port => $REDIS_PORT);
my $mock = free_port();

my $srv = start_nginx(
    name        => 'redis-kill',
    master      => 1,
    workers     => 2,
    http_config => LLM::Redis::mock_config($mock) . <<CONF,
    llm_redis 127.0.0.1:$REDIS_PORT sync=200ms timeout=300ms node=k
              prefix=kill:;
    llm_provider mock { url http://127.0.0.1:$mock/v1; }
    llm_route m { target mock; }
    llm_team eng { budget 100000000tokens/day; }
    llm_key dave {
        key sk-dave-kill-00001; team eng; rpm 100000;
        budget 100000000tokens/day;
    }
    log_format spend '\$llm_key \$status \$llm_prompt_tokens '
                     '\$llm_completion_tokens';
CONF
    config => <<'CONF',
    location /metrics {
        llm_status prometheus;
    }

    location /v1/ {
        access_log logs/spend.log spend;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);

my $dir = tempdir(CLEANUP => 1);

# a client: requests until told to stop; "ok" or what went wrong, a line each
sub client {
    my ($i) = @_;
    open my $out, '>', "$dir/client-$i" or POSIX::_exit(2);
    $out->autoflush(1);
    my $n = 0;
    until (-e "$dir/stop") {
        my $stream = $n++ % 2;
        my $res = http_request(
            port => $srv->port, method => 'POST',
            uri => '/v1/chat/completions',
            headers => { Authorization => 'Bearer sk-dave-kill-00001' },
            body => '{"model":"m","max_tokens":20,'
                    . ($stream ? '"stream":true,' : '')
                    . '"messages":[{"role":"user","content":"x"}],'
                    . '"mock":{"prompt_tokens":7,"completion_tokens":'
                    . (1 + $n % 5) . '}}');
        my $whole = ($res->{status} // 0) == 200
                    && ($stream ? $res->{body} =~ /data: \[DONE\]\n\n\z/
                                : $res->{body} =~ /"object":"chat\.completion"/);
        print {$out} $whole ? "ok\n"
                            : "fail $stream " . ($res->{status} // 'none')
                              . ' ' . ($res->{error} // '')
                              . ' ' . substr($res->{body} // '', 0, 200)
                              . "\n";
    }
    close $out;
    POSIX::_exit(0);
}

my @pids;
for my $i (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    client($i) if $pid == 0;
    push @pids, $pid;
}

sub lines {
    return map { split /\n/, (eval { read_file($_) } // '') }
           glob "$dir/client-*";
}

# waits for $more requests beyond what is done now
sub requests {
    my ($more, $what) = @_;
    my $target = lines() + $more;
    return wait_until(sub { lines() >= $target },
                      timeout => 60 * $SLOW, desc => $what);
}

sub redis_up {
    my ($want) = @_;
    return wait_until(sub {
        http_request(port => $srv->port, uri => '/metrics')->{body}
            =~ /^llm_redis_up $want$/m;
    }, timeout => 30 * $SLOW, desc => "llm_redis_up $want");
}

ok(requests(150, 'load with Redis'), 'the load runs');
ok(redis_up(1), 'Redis is up');

my $pos = $srv->error_log_size;
ok($redis->kill, 'Redis killed');
ok($srv->wait_for_log(qr/llm: redis \S+ (?:disconnected|unavailable)/,
                      from => $pos), 'the gateway notices');
ok(redis_up(0), 'the metrics say Redis is down');
ok(requests(300, 'load without Redis'), 'the load goes on without Redis');

ok($redis->start_again, 'Redis started again, empty');
ok(redis_up(1), 'the gateway is back on Redis');
ok(requests(150, 'load with Redis again'), 'the load goes on');

open my $stop, '>', "$dir/stop" or die;
close $stop;
waitpid $_, 0 for @pids;

my @lines = lines();
my @failed = grep { !/^ok$/ } @lines;
is(scalar @failed, 0, scalar(@lines) . ' requests, none failed')
    or diag(join "\n", @failed[0 .. ($#failed < 9 ? $#failed : 9)]);

# Redis holds what the provider reported, written again after its loss
my $day = LLM::Redis::day();
my $reported;
ok(wait_until(sub {
       $reported = 0;
       for (split /\n/, read_file($srv->servroot . '/logs/spend.log')) {
           my (undef, $status, $p, $c) = split / /;
           $reported += $p + $c if $status == 200;
       }
       my $key = $redis->hsum("kill:key:dave:tokens:day:$day") // -1;
       my $team = $redis->hsum("kill:team:eng:tokens:day:$day") // -1;
       $key == $reported && $team == $reported;
   }, timeout => 15 * $SLOW, desc => 'Redis to converge'),
   'Redis converges to the tokens the provider reported')
    or diag("reported $reported, Redis "
            . ($redis->hsum("kill:key:dave:tokens:day:$day") // 'none'));

$srv->check_clean('no alerts, no crash');

done_testing();
