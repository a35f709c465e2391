package LLM::Metrics;

=head1 NAME

LLM::Metrics - the Prometheus exposition of llm_status, read for tests

=head1 SYNOPSIS

    use LLM::Metrics qw(scrape val delta);

    my $m0 = scrape($port);             # GET /metrics: { 'name{l=v,...}' => value }
    ...
    my $m1 = scrape($port);
    is(delta($m0, $m1, 'llm_requests_total{route=r,model=m,provider=p,status=2xx}'), 1);
    is(val($m1, 'llm_cost_usd_total{route=r,model=m,provider=p}'), '0.000001000');

Labels may be given in any order; values are taken as written.

=cut

use strict;
use warnings;

use Exporter 'import';
use Test::Nginx::LLM qw(http_request);

our @EXPORT_OK = qw(scrape val delta);

# the exposition as { 'name{labels}' => value }, labels sorted
sub scrape {
    my ($port, $uri) = @_;
    my $res = http_request(port => $port, uri => $uri // '/metrics');
    die "metrics: $res->{status}\n" unless $res->{status} == 200;
    my %m;
    for my $line (split /\n/, $res->{body}) {
        next if $line =~ /^#/;
        $line =~ /^([a-z_]+)(?:\{(.*)\})? (\S+)$/ or die "bad line: $line\n";
        my ($name, $labels, $value) = ($1, $2 // '', $3);
        my @l;
        while ($labels =~ /\G([a-z_]+)="((?:[^"\\]|\\.)*)",?/gc) {
            push @l, "$1=$2";
        }
        $m{ $name . '{' . join(',', sort @l) . '}' } = $value;
    }
    return \%m;
}

# a sample's value by 'name{label=value,...}', the labels in any order
sub val {
    my ($m, $key) = @_;
    $key =~ /^([a-z_]+)\{(.*)\}$/ or die "bad key: $key\n";
    return $m->{ $1 . '{' . join(',', sort split /,/, $2) . '}' };
}

sub delta {
    my ($before, $after, $key) = @_;
    return (val($after, $key) // 0) - (val($before, $key) // 0);
}

1;
