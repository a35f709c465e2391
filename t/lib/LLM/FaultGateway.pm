package LLM::FaultGateway;

=head1 NAME

LLM::FaultGateway - the gateway in front of a fault server: what the
fault-injection scripts (t/700, t/701, t/705, t/709) share

=head1 SYNOPSIS

    use LLM::FaultGateway;

    my $gw = LLM::FaultGateway->new;     # fault server, mock, "healthy"
    my $faults = $gw->faults;            # the LLM::Faults handle

    # a faulty target alone, and with the healthy one after it
    $gw->target('f_rst', fault => 'rst',
                alone => 'solo-rst', pair => 'pair-rst');
    # a translated one: format, key and URL path of its dialect
    $gw->target('gemini_cut', fault => 'cut_len', dialect => 'gemini',
                model => 'm', pair => 'gemini_cut',
                alone => 'gemini_cut_alone');
    $gw->http("    log_format ...;\n");  # anything else

    my $srv = $gw->start(name => 'faults-7xx', read_timeout => '5s',
                         short_read_timeout => '500ms');

    my $res = chat($srv->port, 'gemini_cut');
    $gw->failover_ok($res, 'gemini_cut');
    $gw->counts_ok('gemini_cut', 'm', 2, 0, 'two failures, no success');

=head1 DESCRIPTION

C<new> sets C<TEST_NGINX_MOCK_PORT> to a free port (the njs mock of
LLM::Fixtures listens there), starts a fault server (LLM::Faults) and
begins the C<http_config> with the mock's server and a provider
C<healthy> (the mock) to fail over to. C<target> adds a provider and its
routes, C<start> the gateway: C<location /v1/>, optionally
C<location /short/v1/> (a shorter read timeout) and
C<location = /llm/status>. After C<start>, the assertions below ask that
nginx.

=cut

use strict;
use warnings;

use Carp qw(croak);
use Exporter 'import';
use JSON::PP ();
use Test::More ();
use LLM::Faults qw(fault_server openai_error_ok);
use LLM::Fixtures;
use LLM::Routing qw(idle_target);
use Test::Nginx::LLM qw(start_nginx free_port http_request);

our @EXPORT_OK = qw(gateway_location);

# each dialect's URL path, and what its provider needs besides its URL
my %BASE = (openai => '/v1', anthropic => '/v1', gemini => '/v1beta',
            bedrock => '');
my %AUTH = (openai => '', anthropic => 'key k;', gemini => 'key k;',
            bedrock => 'region us-east-1; access_key AKIDEXAMPLE; '
                       . 'secret_key s3cr3t;');

sub new {
    my ($class) = @_;
    $ENV{TEST_NGINX_MOCK_PORT} = free_port();
    return bless {
        faults => fault_server(),
        http   => $LLM::Fixtures::MOCK_HTTP_CONFIG
                  . '    llm_provider healthy { url http://127.0.0.1:'
                  . "\$TEST_NGINX_MOCK_PORT/v1; }\n",
    }, $class;
}

sub faults { $_[0]{faults} }

sub srv { $_[0]{srv} // croak 'the gateway is not started' }

=head2 $gw->fault_url($spec, $dialect)

The URL of a provider served by the fault server: C<$spec> is the
misbehaviour and its options (C<drip,ms=2>); a dialect other than
OpenAI's adds C<dialect=D> and its URL path (C</v1beta> for Gemini).

=cut

sub fault_url {
    my ($self, $spec, $d) = @_;
    $d //= 'openai';
    croak "unknown dialect $d" unless exists $BASE{$d};
    $spec =~ s/^([^,]*)/$1,dialect=$d/ if $d ne 'openai';
    return 'http://127.0.0.1:' . $self->{faults}->port . "/$spec$BASE{$d}";
}

=head2 $gw->target($provider, %opt)

Adds C<llm_provider $provider> and its routes:

    fault => SPEC      its URL: fault_url(SPEC, dialect)
    url => URL         or this one (e.g. a fixture of the mock)
    dialect => D       format D and its key (region and keys for Bedrock)
    conf => '...'      more of the provider's directives
    model => M         the model the routes ask of it (default: the client's)
    pair => NAME       a route with this target, then healthy
    alone => NAME      a route with this target only
    next_model => M    the model the pair asks of healthy
    route => '...'     more of both routes' directives

=cut

sub target {
    my ($self, $p, %o) = @_;
    my $d = $o{dialect} // 'openai';
    my $url = $o{url}
              // $self->fault_url($o{fault} // croak('fault or url'), $d);
    my @conf = ("url $url;", $d eq 'openai' ? () : ("format $d;", $AUTH{$d}),
                $o{conf} // ());
    my $t = 'target ' . join ' ', $p, $o{model} // ();
    my $next = 'target ' . join ' ', 'healthy', $o{next_model} // ();
    my $route = defined $o{route} ? " $o{route}" : '';
    $self->{http} .= "    llm_provider $p { @conf }\n";
    $self->{http} .= "    llm_route $o{pair} { $t; $next;$route }\n"
        if defined $o{pair};
    $self->{http} .= "    llm_route $o{alone} { $t;$route }\n"
        if defined $o{alone};
    return $self;
}

=head2 $gw->dialect_fault($dialect, $fault)

The usual pair for a fault in a dialect: a target C<${dialect}_$fault>
(model C<m>) with the route C<${dialect}_$fault> (then healthy) and
C<${dialect}_${fault}_alone>. Returns C<${dialect}_$fault>.

=cut

sub dialect_fault {
    my ($self, $d, $fault) = @_;
    my $name = "${d}_$fault";
    $self->target($name, fault => $fault, dialect => $d, model => 'm',
                  pair => $name, alone => "${name}_alone");
    return $name;
}

=head2 $gw->http($text)

Appends C<$text> to the C<http_config>.

=cut

sub http {
    my ($self, $text) = @_;
    $self->{http} .= $text;
    return $self;
}

=head2 gateway_location($path, $read_timeout, @directives)

The text of a C<location> that is the gateway, with this
C<proxy_read_timeout> and more directives.

=cut

sub gateway_location {
    my ($path, $timeout, @more) = @_;
    return "    location $path {\n"
         . "        proxy_read_timeout $timeout;\n"
         . join('', map { "        $_\n" } @more)
         . "        llm_gateway;\n"
         . "        include \$TEST_NGINX_LLM_PARAMS;\n"
         . "    }\n";
}

=head2 $gw->start(name => N, read_timeout => T, %opt)

Starts nginx (start_nginx of Test::Nginx::LLM) with the C<http_config>
built so far and returns its handle. C<location /v1/> reads the provider
with C<read_timeout>; C<v1 =E<gt> [directives]> adds to it;
C<short_read_timeout> adds C<location /short/v1/>, the same with that
timeout.

=cut

sub start {
    my ($self, %o) = @_;
    my $config = gateway_location('/v1/', $o{read_timeout}, @{ $o{v1} // [] });
    $config .= gateway_location('/short/v1/', $o{short_read_timeout})
        if defined $o{short_read_timeout};
    $config .= "    location = /llm/status {\n"
             . "        llm_status;\n"
             . "    }\n";
    $self->{srv} = start_nginx(name => $o{name}, http_config => $self->{http},
                               config => $config);
    return $self->{srv};
}

=head2 $gw->messages($model, stream => 1, timeout => S)

POSTs a one-message request to C</v1/messages> (Anthropic's door).

=cut

sub messages {
    my ($self, $model, %o) = @_;
    return http_request(port => $self->srv->port, method => 'POST',
                        uri => '/v1/messages',
                        headers => { 'Content-Type' => 'application/json',
                                     'anthropic-version' => '2023-06-01' },
                        body => qq({"model":"$model","max_tokens":10,)
                              . ($o{stream} ? '"stream":true,' : '')
                              . '"messages":[{"role":"user","content":"x"}]}',
                        timeout => $o{timeout});
}

=head2 $gw->failover_ok($res, $name)

Two assertions: C<$res> is a 200, from C<healthy> in a second attempt.

=cut

sub failover_ok {
    my ($self, $res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($res->{status}, 200, "$name: answered");
    Test::More::is(($res->header('x-llm-provider') // '') . ' '
                   . ($res->header('x-llm-attempts') // ''),
                   'healthy 2', "$name: by the next target, in a second attempt");
}

=head2 $gw->counts_ok($provider, $model, $failures, $successes, $desc)

One assertion: once the target has nothing in flight, llm_status counts
these failures and successes of it.

=cut

sub counts_ok {
    my ($self, $p, $model, $failures, $successes, $desc) = @_;
    my $t = idle_target($self->srv->port, $p, $model);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok($t && $t->{failures} == $failures
                   && $t->{successes} == $successes, $desc)
        or Test::More::diag(Test::More::explain($t));
}

=head2 $gw->error_502_ok($res, $api, $name)

A whole 502 in the shape of the client's API: OpenAI's error (C<openai>:
one assertion, openai_error_ok) or Anthropic's (C<anthropic>: three, the
status, C<"type":"error">, a message).

=cut

sub error_502_ok {
    my ($self, $res, $api, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return openai_error_ok($res, 502, 'upstream_error', "$name: a whole 502")
        if $api eq 'openai';
    Test::More::is($res->{status}, 502, "$name: a 502");
    my $err = eval { JSON::PP::decode_json($res->{body}) } // {};
    Test::More::is($err->{type}, 'error', "$name: in Anthropic's shape");
    Test::More::ok($err->{error} && $err->{error}{message},
                   "$name: with a message");
}

1;
