# Failovers count for the target that failed, by cause: after a chain
# dead -> 500 -> 429 -> ok, each failing target shows one failover with its
# cause and the one that answered shows none.
#
# A script: the request, then the zone's counters read from the same
# running nginx once the request has been counted (waited for); a block
# runs one request per nginx, and a location making both requests as echo
# subrequests cannot reach the gateway (llm_gateway does not serve a
# subrequest: "invalid URL prefix in """, a 500).

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until);

my $srv = start_nginx(
    name        => 'failover-metrics',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider err500 {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
    }
    llm_provider limited {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=429/v1;
    }
    llm_provider healthy { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }

    llm_route chain {
        target dead    model-dead;
        target err500  model-500;
        target limited model-429;
        target healthy model-ok;
        strategy ordered;
    }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /llm/status { llm_status; }
    location = /metrics { llm_status prometheus; }
CONF
);

my $port = $srv->port;

my $res = http_request(port => $port, method => 'POST',
                       uri => '/v1/chat/completions',
                       body => '{"model":"chain","messages":'
                             . '[{"role":"user","content":"x"}]}');
is($res->{status}, 200, 'served after three failovers');
is($res->header('x-llm-attempts'), 4, 'in four attempts');

sub series {
    my $st = JSON::PP::decode_json(
        http_request(port => $port, uri => '/llm/status')->{body});
    return { map { ("$_->{provider}/$_->{model}" => $_) }
             grep { $_->{route} eq 'chain' } @{ $st->{series} } };
}

ok(wait_until(sub { my $s = series()->{'healthy/model-ok'};
                    $s && $s->{requests}{'2xx'} == 1 },
              timeout => 10, interval => 0.02, desc => 'the request counted'),
   'the request is counted');

my $s = series();
is($s->{'healthy/model-ok'}{failovers}, 0,
   'the target that answered: no failover');
is_deeply($s->{'healthy/model-ok'}{failover_causes}, {}, 'and no cause');
is($s->{'dead/model-dead'}{failovers}, 1, 'dead: one failover');
is_deeply($s->{'dead/model-dead'}{failover_causes}, { error => 1 },
          'dead: a connection error');
is_deeply($s->{'err500/model-500'}{failover_causes}, { http_500 => 1 },
          '500: one, http_500');
is_deeply($s->{'limited/model-429'}{failover_causes}, { http_429 => 1 },
          '429: one, http_429');

my $m = http_request(port => $port, uri => '/metrics')->{body};
like($m, qr/^llm_failovers_total\{route="chain",provider="dead",model="model-dead",cause="error"\} 1$/m,
     'prometheus: the dead target, cause error');
like($m, qr/^llm_failovers_total\{route="chain",provider="err500",model="model-500",cause="http_500"\} 1$/m,
     'prometheus: the 500, cause http_500');
like($m, qr/^llm_failovers_total\{route="chain",provider="limited",model="model-429",cause="http_429"\} 1$/m,
     'prometheus: the 429, cause http_429');
unlike($m, qr/^llm_failovers_total\{route="chain",provider="healthy"/m,
       'prometheus: none for the target that answered');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
