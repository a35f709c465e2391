#!/usr/bin/perl
# make bench: the translation of requests with 2,000 and 20,000 tool
# results (each after the assistant turn that called the tool) to each
# dialect. The gateway's worker CPU per request (the least of three), per
# tool message: flat between the two sizes when translation is linear in
# its input. Prints a Markdown table.
#
#   TEST_NGINX_BINARY=... TEST_NGINX_LOAD_MODULES="echo.so js.so llm.so" \
#       perl -It/lib bench/tool_messages.pl

use strict;
use warnings;

use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request read_file);

my %base = (anthropic => '/anthropic/v1', gemini => '/gemini/v1beta',
            bedrock => '/bedrock');
my %auth = (anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');
my $conf = '';
for my $d (sort keys %base) {
    $conf .= <<"CONF";
    llm_provider $d {
        url http://127.0.0.1:\$TEST_NGINX_MOCK_PORT$base{$d};
        format $d;
        $auth{$d}
    }
    llm_route $d { target $d m; }
CONF
}

my $srv = start_nginx(
    name        => 'bench-tool-messages',
    log_level   => 'warn',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . $conf,
    config      => <<'CONF',
    location /v1/ {
        client_max_body_size 256m;
        client_body_buffer_size 64m;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF
);
my ($worker) = $srv->worker_pids;

# the worker's time on a CPU, in seconds: /proc's schedstat counts
# nanoseconds (stat's ticks are 10 ms)
sub cpu_seconds {
    my ($ns) = split ' ', read_file("/proc/$_[0]/schedstat");
    return $ns / 1e9;
}

sub body {
    my ($model, $n) = @_;
    my @m = ({ role => 'user', content => 'Weather everywhere?' });
    for my $i (1 .. $n) {
        push @m, { role => 'assistant', content => undef,
                   tool_calls => [{ id => "call_$i", type => 'function',
                                    function => { name => "get_weather_$i",
                                                  arguments => '{"city":"x"}' } }] },
                 { role => 'tool', tool_call_id => "call_$i",
                   content => '{"temp":18}' };
    }
    return JSON::PP->new->encode({ model => $model, messages => \@m,
                                   max_tokens => 10 });
}

print "| dialect | tool messages | body MiB | worker CPU ms | µs per tool message |\n";
print "|---------|--------------:|---------:|--------------:|--------------------:|\n";

for my $d (sort keys %base) {
    for my $n (2000, 20000) {
        my $body = body($d, $n);
        my $best;
        for (1 .. 3) {
            my $before = cpu_seconds($worker);
            my $res = http_request(port => $srv->port, method => 'POST',
                                   uri => '/v1/chat/completions',
                                   body => $body, timeout => 120);
            my $cpu = cpu_seconds($worker) - $before;
            die "$d $n: $res->{status}\n" unless $res->{status} =~ /^[245]/;
            $best = $cpu if !defined $best || $cpu < $best;
        }
        printf "| %s | %d | %.1f | %.1f | %.2f |\n", $d, $n,
               length($body) / 1048576, $best * 1000, $best * 1e6 / $n;
    }
}
