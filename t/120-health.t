# Target health: the circuit breaker (opens after failures, skips the
# target, half-open probe closes it or re-opens it for twice as long, one
# probe at a time), 429 cool-downs (Retry-After in seconds or as a date,
# else rate_limit_cooldown), what does and does not count as a failure
# (broken streams do, 429s and client errors do not), and a route whose
# targets are all out of service trying the one that comes back soonest.
#
# Every wait is a poll of the status JSON (available_in_ms, inflight).
#
# A script: state built over many requests to one running nginx, with waits
# on its status JSON between them.

use strict;
use warnings;

use File::Spec;
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat status_target idle_target mock_file start_request);
use POSIX ();
use Test::Nginx::LLM qw(start_nginx wait_until);

my $PORT = 3990;
$ENV{TEST_NGINX_MOCK_PORT} = 3991;
$ENV{TEST_NGINX_EARLY_PORT} = 3992;
$ENV{TEST_NGINX_CUTTER_PORT} = 3993;

my $srv = start_nginx(
    name        => 'routing-120',
    servroot    => File::Spec->rel2abs('t/servroot-routing-120'),
    port        => $PORT,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider backup { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }

    # fails twice (503), then answers
    llm_provider flaky {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fail_times=2,counter=flaky/v1;
        health failure_ratio=50% min_requests=2 cooldown=500ms;
    }
    llm_route recovering { target flaky; target backup; }

    # never answer; capped's cool-down may not double past 1.5 s
    llm_provider broken {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
        health failure_ratio=100% min_requests=1 cooldown=1s max_cooldown=1m;
    }
    llm_provider capped {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=502/v1;
        health failure_ratio=100% min_requests=1 cooldown=1s max_cooldown=1500ms;
    }
    llm_route reopening { target broken; target capped; target backup; }

    # fails once; its delay is read from a file on every request
    llm_provider slowprobe {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fail_times=1,counter=slowprobe,delay_file=slowprobe_delay/v1;
        health failure_ratio=100% min_requests=1 cooldown=300ms;
    }
    llm_route probing { target slowprobe; target backup; }

    llm_provider limited {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429,retry_after=2/v1;
        health min_requests=1 rate_limit_cooldown=30s;
    }
    llm_route throttled { target limited; target backup; }

    # status and Retry-After come in the request's "mock" member
    llm_provider dated { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route dated { target dated; }

    llm_provider cooled {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429/v1;
        health rate_limit_cooldown=3s;
    }
    llm_route cooled { target cooled; }

    llm_provider plain429 { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429/v1; }
    llm_route plain429 { target plain429; }

    llm_provider picky {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=400/v1;
        health failure_ratio=1% min_requests=1;
    }
    llm_route picky { target picky; target backup; }

    # out of service both: far for a minute (429), near for 20 s (breaker)
    llm_provider far {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429,retry_after=60/v1;
    }
    llm_provider near {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fail_times=1,counter=near/v1;
        health failure_ratio=100% min_requests=1 cooldown=20s;
    }
    llm_route cornered { target far; target near; }

    # a provider that ends its stream before [DONE]
    server {
        listen 127.0.0.1:$TEST_NGINX_EARLY_PORT;
        location / {
            default_type text/event-stream;
            echo_read_request_body;
            echo -n "data: {\"id\":\"early\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"},\"finish_reason\":null}]}\n\n";
        }
    }

    # a proxy that cuts the mock's slow stream: its connection breaks
    server {
        listen 127.0.0.1:$TEST_NGINX_CUTTER_PORT;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gap=1000/;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 300ms;
        }
    }

    llm_provider early { url http://127.0.0.1:$TEST_NGINX_EARLY_PORT/v1; }
    llm_route early { target early; }
    llm_provider cut { url http://127.0.0.1:$TEST_NGINX_CUTTER_PORT/v1; }
    llm_route cut { target cut; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status {
        llm_status;
    }
CONF
);

# the mock's counters start from zero
mock_file($srv, flaky => undef, slowprobe => undef, near => undef,
          slowprobe_delay => '0');

# a target's status once its attempts are recorded (log phase)
sub target { idle_target($PORT, @_) }

# the same at once
sub peek { status_target($PORT, @_) }

sub served_by {
    my ($res, $provider, $attempts, $what) = @_;
    is $res->{status}, 200, "$what: 200";
    is $res->header('x-llm-provider'), $provider, "$what: $provider served";
    is $res->header('x-llm-attempts'), $attempts, "$what: $attempts attempts";
}

# polls the status until the target is available again
sub wait_available {
    my ($provider, $model) = @_;
    my $t;
    my $ok = wait_until(sub {
        $t = target($provider, $model);
        $t && $t->{available_in_ms} == 0;
    }, timeout => 10, interval => 0.05, desc => "$provider to be available");
    return $ok ? $t : undef;
}


subtest 'the breaker opens, the target is skipped, a good probe closes it' => sub {
    served_by(chat($PORT, 'recovering'), 'backup', 2, 'request 1');

    my $t = target('flaky', 'recovering');
    is $t->{state}, 'closed', 'one failure, under min_requests: still closed';
    is $t->{failures}, 1, 'failures 1';

    served_by(chat($PORT, 'recovering'), 'backup', 2, 'request 2');

    $t = target('flaky', 'recovering');
    is $t->{state}, 'open', 'two failures of two requests: open';
    cmp_ok $t->{available_in_ms}, '>', 0, 'available_in_ms > 0';
    cmp_ok $t->{available_in_ms}, '<=', 500, 'available_in_ms <= the cool-down';
    is $t->{requests}, 2, 'requests 2';
    is $t->{failures}, 2, 'failures 2';
    is $t->{last_status}, 503, 'last_status 503';

    served_by(chat($PORT, 'recovering'), 'backup', 1, 'while open');
    is target('flaky', 'recovering')->{requests}, 2, 'flaky got no request';

    $t = wait_available('flaky', 'recovering');
    ok $t, 'the cool-down ends';
    is $t && $t->{state}, 'half_open', 'then the breaker is half-open';

    served_by(chat($PORT, 'recovering'), 'flaky', 1, 'the probe');

    $t = target('flaky', 'recovering');
    is $t->{state}, 'closed', 'the probe succeeded: closed';
    is $t->{successes}, 1, 'successes 1';
    is $t->{requests}, 3, 'requests 3';

    served_by(chat($PORT, 'recovering'), 'flaky', 1, 'after it');
};


subtest 'a failed probe re-opens the breaker for twice the cool-down, up to max_cooldown' => sub {
    served_by(chat($PORT, 'reopening'), 'backup', 3, 'request 1');

    for my $p ('broken', 'capped') {
        my $t = target($p, 'reopening');
        is $t->{state}, 'open', "$p: open";
        cmp_ok $t->{available_in_ms}, '<=', 1000, "$p: for the cool-down, 1 s";
    }

    ok wait_available('broken', 'reopening'), 'broken half-open';
    ok wait_available('capped', 'reopening'), 'capped half-open';

    served_by(chat($PORT, 'reopening'), 'backup', 3, 'both probes failed');

    my $t = target('broken', 'reopening');
    is $t->{state}, 'open', 'broken: open again';
    is $t->{requests}, 2, 'broken: probed once';
    cmp_ok $t->{available_in_ms}, '>', 1500, 'broken: for more than 1.5 s';
    cmp_ok $t->{available_in_ms}, '<=', 2000, 'broken: for 2 s at most';

    $t = target('capped', 'reopening');
    is $t->{state}, 'open', 'capped: open again';
    cmp_ok $t->{available_in_ms}, '>', 1000, 'capped: for more than 1 s';
    cmp_ok $t->{available_in_ms}, '<=', 1500, 'capped: for max_cooldown at most';

    served_by(chat($PORT, 'reopening'), 'backup', 1, 'while both are open');
};


subtest 'half-open: one probe at a time' => sub {
    served_by(chat($PORT, 'probing'), 'backup', 2, 'request 1');
    is target('slowprobe', 'probing')->{state}, 'open', 'slowprobe: open';
    ok wait_available('slowprobe', 'probing'), 'slowprobe: half-open';

    # the probe will take 3 s to answer
    mock_file($srv, slowprobe_delay => '3000');
    my $sock = start_request($PORT, 'probing');

    my $t;
    ok wait_until(sub {
        $t = peek('slowprobe', 'probing');
        $t->{inflight} == 1;
    }, timeout => 10, interval => 0.02), 'the probe is in flight';
    is $t->{state}, 'half_open', 'still half-open';

    served_by(chat($PORT, 'probing'), 'backup', 1,
              'meanwhile another request');

    # the client of the probe goes away: it is no probe any more
    close $sock;
    ok wait_until(sub { peek('slowprobe', 'probing')->{inflight} == 0 },
                  timeout => 10, interval => 0.02), 'the probe ended';
    $t = target('slowprobe', 'probing');
    is $t->{state}, 'half_open', 'an abandoned probe leaves it half-open';
    is $t->{failures}, 1, 'and does not count as a failure';

    mock_file($srv, slowprobe_delay => '0');
    served_by(chat($PORT, 'probing'), 'slowprobe', 1, 'the next request probes');
    is target('slowprobe', 'probing')->{state}, 'closed', 'closed';
};


subtest '429 with Retry-After: throttled for that long, the other target serves' => sub {
    served_by(chat($PORT, 'throttled'), 'backup', 2, 'request 1');

    my $t = target('limited', 'throttled');
    is $t->{state}, 'throttled', 'state throttled';
    cmp_ok $t->{available_in_ms}, '>', 1000, 'available in more than 1 s';
    cmp_ok $t->{available_in_ms}, '<=', 2000,
        'available in 2 s at most (Retry-After: 2, not rate_limit_cooldown)';
    is $t->{rate_limited}, 1, 'rate_limited 1';
    is $t->{failures}, 0, 'a 429 is no failure';
    is $t->{last_status}, 429, 'last_status 429';

    served_by(chat($PORT, 'throttled'), 'backup', 1, 'while throttled');
    is target('limited', 'throttled')->{requests}, 1, 'limited got no request';

    $t = wait_available('limited', 'throttled');
    ok $t, 'the Retry-After passes';
    is $t && $t->{state}, 'closed', 'then it is closed, not open';

    served_by(chat($PORT, 'throttled'), 'backup', 2, 'after it');
    is target('limited', 'throttled')->{rate_limited}, 2,
        'limited was tried again';
};


subtest '429 with Retry-After as an HTTP date' => sub {
    my $date = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 5));
    my $res = chat($PORT, 'dated',
                   mock => { status => '429', retry_after => $date });
    is $res->{status}, 429, 'the only target answered 429';

    my $t = target('dated', 'dated');
    is $t->{state}, 'throttled', 'throttled';
    cmp_ok $t->{available_in_ms}, '>', 3000, 'for more than 3 s';
    cmp_ok $t->{available_in_ms}, '<=', 6000, 'for 6 s at most';
};


subtest '429 without Retry-After: rate_limit_cooldown' => sub {
    is chat($PORT, 'cooled')->{status}, 429, 'cooled: 429';
    my $t = target('cooled', 'cooled');
    is $t->{state}, 'throttled', 'cooled: throttled';
    cmp_ok $t->{available_in_ms}, '>', 2000, 'cooled: for more than 2 s';
    cmp_ok $t->{available_in_ms}, '<=', 3000, 'cooled: for 3 s at most';

    is chat($PORT, 'plain429')->{status}, 429, 'plain429: 429';
    $t = target('plain429', 'plain429');
    is $t->{state}, 'throttled', 'plain429: throttled';
    cmp_ok $t->{available_in_ms}, '>', 9000, 'default: for more than 9 s';
    cmp_ok $t->{available_in_ms}, '<=', 10000, 'default: for 10 s at most';
};


subtest 'a client error (400) is no failure' => sub {
    my $res = chat($PORT, 'picky');
    is $res->{status}, 400, 'the 400 is passed on';
    is $res->header('x-llm-attempts'), 1, 'without failover';

    my $t = target('picky', 'picky');
    is $t->{state}, 'closed', 'the breaker stays closed';
    is $t->{failures}, 0, 'failures 0';
    is $t->{successes}, 1, 'successes 1';
};


subtest 'all targets out of service: the one back soonest is tried' => sub {
    my $res = chat($PORT, 'cornered');
    is $res->{status}, 503, 'request 1: both failed, near\'s 503 passed on';
    is $res->header('x-llm-attempts'), 2, 'request 1: 2 attempts';

    is target('far', 'cornered')->{state}, 'throttled', 'far: throttled for 60 s';
    is target('near', 'cornered')->{state}, 'open', 'near: open for 20 s';

    served_by(chat($PORT, 'cornered'), 'near', 1,
              'request 2 tries near, back sooner, and it answers');
    is target('far', 'cornered')->{requests}, 1, 'far was not tried';
    is target('near', 'cornered')->{state}, 'closed',
        'near answered as a probe: closed';
};


subtest 'a stream that breaks off counts as a failure' => sub {
    for my $case (['early', 'ends early'], ['cut', 'is cut']) {
        my ($route, $what) = @$case;
        my $res = chat($PORT, $route, stream => 1, timeout => 5);
        is $res->{status}, 200, "$route: the stream started";
        like $res->{body}, qr/"code":"stream_interrupted"/,
            "$route: it ended with the error event";

        my $t = target($route, $route);
        ok $t, "$route: the attempt is over";
        is $t->{failures}, 1, "$route: a stream that $what: failures 1";
        is $t->{successes}, 0, "$route: successes 0";
        is $t->{requests}, 1, "$route: requests 1";
    }
};

$srv->stop;
$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
