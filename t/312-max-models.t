# A route that passes the client's model name on (a glob, or a target
# without a model) keeps health and metrics apart for at most "max_models"
# distinct names; past them requests are still served, with the model the
# client asked for, but counted under one "(other)" model. So client-chosen
# names cannot fill the zone (docs/directives.md, llm_route).
#
# A script: more than a hundred requests in sequence to one running nginx,
# then its metrics and status pages read from the same zone.

use strict;
use warnings;

use JSON::PP ();
use Test::More;
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request);

my $srv = start_nginx(
    name        => 'max-models',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route "any/*" { target mock "*"; max_models 5; }
    llm_route "free/*" { target mock; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /metrics {
        llm_status prometheus;
    }
    location = /status {
        llm_status json;
    }
CONF
);
my $port = $srv->port;

sub ask {
    my ($model) = @_;
    return http_request(port => $port, method => 'POST',
                        uri => '/v1/chat/completions',
                        body => '{"model":"' . $model . '","max_tokens":5,'
                              . '"messages":[{"role":"user","content":"x"}]}');
}

# llm_requests_total of a route by model (the glob's capture)
sub requests_by_model {
    my ($route) = @_;
    my $text = http_request(port => $port, uri => '/metrics')->{body};
    my %by;
    for my $line (split /\n/, $text) {
        next unless $line =~ /^llm_requests_total\{(.*)\} (\d+)$/;
        my ($labels, $n) = ($1, $2);
        next unless $labels =~ /route="\Q$route\E"/;
        my ($model) = $labels =~ /model="([^"]*)"/;
        $by{$model} += $n;
    }
    return \%by;
}

my %echoed;
for my $i (1 .. 20) {
    my $res = ask("any/m$i");
    is($res->{status}, 200, "any/m$i is served") or last;
    $echoed{$i} = ($res->{headers}{'x-llm-model'} || [''])->[0];
}
is(scalar(grep { $echoed{$_} eq "m$_" } keys %echoed), 20,
   'every request reached the provider with the model it asked for');

# the first five are tracked apart; the fifteen others share one series
my $by = requests_by_model('any/*');
my @apart = grep { $_ ne '(other)' } sort keys %$by;
is(scalar @apart, 5, 'five models have series of their own')
    or diag explain $by;
is($by->{'(other)'}, 15, 'the other fifteen requests count under (other)');

# a tracked model stays tracked; a new one still goes to (other)
ask("any/$apart[0]");
ask('any/m-new');
$by = requests_by_model('any/*');
is($by->{$apart[0]}, 2, 'a tracked model keeps its own series');
is($by->{'(other)'}, 16, 'a new model past the cap counts under (other)');

# the status page shows the shared target node too
my $status = JSON::PP::decode_json(http_request(port => $port,
                                                uri => '/status')->{body});
my @other = grep { ($_->{model} // '') eq '(other)' }
            @{ $status->{targets} || [] };
is(scalar @other, 1, 'the status page lists one (other) target')
    or diag explain $status->{targets};

# the default is 100 distinct models
for my $i (1 .. 101) {
    ask("free/f$i");
}
$by = requests_by_model('free/*');
is(scalar(grep { $_ ne '(other)' } keys %$by), 100,
   'by default, 100 models have series of their own');
is($by->{'(other)'}, 1, 'the 101st counts under (other)');

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
