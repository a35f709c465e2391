# The backoff before a retry of the same target: a timer (no worker is
# blocked, a client that goes away ends the wait), of a random length
# between half and all of backoff x 2^(n-1), capped at max_backoff
# (default 2s).
#
# The lengths are read from the debug log, not measured: right after its
# "..., retrying it" line the module adds the backoff timer, which nginx
# logs as "event timer add: <ident>: <milliseconds>:<expiry>" for the same
# connection.
#
# A script: a client that goes away during a wait, and timers read from the
# debug log as they are added.

use strict;
use warnings;

use File::Spec;
use Test::More;
use LLM::Fixtures;
use LLM::Routing qw(chat mock_file start_request);
use Test::Nginx::LLM qw(start_nginx wait_until);

my $PORT = 3990;
$ENV{TEST_NGINX_MOCK_PORT} = 3991;

my $srv = start_nginx(
    name        => 'routing-131',
    servroot    => File::Spec->rel2abs('t/servroot-routing-131'),
    port        => $PORT,
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    log_format gateway '$status attempts=$llm_attempts provider=$llm_provider '
                       'route=$llm_route';

    llm_provider flaky {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/fail_times=4,counter=flaky/v1;
    }
    llm_route growing {
        target flaky;
        retries 4 backoff=20ms max_backoff=50ms;
    }

    llm_provider broken { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1; }

    # documented default: max_backoff=2s
    llm_route default_cap {
        target broken broken-default;
        retries 1 backoff=10s;
        deadline 300ms;
    }

    llm_route low_cap {
        target broken broken-low;
        retries 1 backoff=60s max_backoff=20ms;
        deadline 300ms;
    }

    llm_route waiting {
        target broken broken-waiting;
        retries 1 backoff=60s max_backoff=60s;
    }

    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route healthy { target healthy; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        access_log logs/access.log gateway;
    }
CONF
);

mock_file($srv, flaky => undef);

# the backoff timers set since error.log offset $from, in milliseconds
sub backoffs {
    my ($from) = @_;
    my @lines = split /\n/, $srv->error_log(from => $from);
    my @delays;
    for my $i (0 .. $#lines) {
        next unless $lines[$i] =~ /\*(\d+) llm: provider "[^"]+" failed .*, retrying it/;
        my $conn = $1;
        for my $j ($i + 1 .. $#lines) {
            if ($lines[$j] =~ /\*$conn event timer add: -?\d+: (\d+):/) {
                push @delays, $1;
                last;
            }
        }
    }
    return @delays;
}

sub within {
    my ($got, $lo, $hi, $name) = @_;
    ok(defined $got && $got >= $lo && $got <= $hi, $name)
        or diag 'got ' . ($got // 'none') . ", expected $lo to $hi";
}


subtest 'backoff doubles with each retry, with jitter, up to max_backoff' => sub {
    my $from = $srv->error_log_size;
    my $res = chat($PORT, 'growing');
    is $res->{status}, 200, 'served after four retries';
    is $res->header('x-llm-attempts'), 5, '5 attempts';

    my @d = backoffs($from);
    is scalar @d, 4, 'four backoff timers' or diag "@d";
    within $d[0], 10, 20, 'retry 1: 10 to 20 ms (20ms x 1)';
    within $d[1], 20, 40, 'retry 2: 20 to 40 ms (20ms x 2)';
    within $d[2], 25, 50, 'retry 3: 25 to 50 ms (20ms x 4, capped at 50ms)';
    within $d[3], 25, 50, 'retry 4: 25 to 50 ms (20ms x 8, capped at 50ms)';
};


subtest 'without max_backoff the wait is capped at 2s' => sub {
    my $from = $srv->error_log_size;
    my $res = chat($PORT, 'default_cap', timeout => 4);
    is $res->{status}, 504, 'the deadline ended the wait';

    my @d = backoffs($from);
    is scalar @d, 1, 'one backoff timer';
    within $d[0], 1000, 2000, 'backoff=10s: 1 to 2 s (capped at the default 2s)';
};


subtest 'max_backoff below backoff caps the first wait too' => sub {
    my $from = $srv->error_log_size;
    chat($PORT, 'low_cap', timeout => 4);

    my @d = backoffs($from);
    cmp_ok scalar @d, '>=', 1, 'a backoff timer';
    within $d[0], 10, 20, 'backoff=60s max_backoff=20ms: 10 to 20 ms';
};


subtest 'the wait blocks no worker; a client that goes away ends it' => sub {
    my $from = $srv->error_log_size;
    my $sock = start_request($PORT, 'waiting');

    ok $srv->wait_for_log(qr/"broken" failed with 500 .*, retrying it/,
                          from => $from),
        'the first request waits for its retry (60 s)';

    my $res = chat($PORT, 'healthy');
    is $res->{status}, 200, 'meanwhile the same worker serves another request';

    my $rin = '';
    vec($rin, fileno($sock), 1) = 1;
    is select(my $rout = $rin, undef, undef, 0), 0,
        'the first request has no answer yet';

    close $sock;
    my $log = "$srv->{servroot}/logs/access.log";
    ok wait_until(sub { Test::Nginx::LLM::read_file($log) =~ /^499 attempts=1 .*route=waiting$/m },
                  timeout => 10, desc => 'the waiting request to end'),
        'its client went away: the request ends (499) without a retry';
};

$srv->stop;
$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
