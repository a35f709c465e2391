package LLM::Routing;

=head1 NAME

LLM::Routing - helpers for the routing engine's Perl tests (several
requests against one nginx, the llm_status JSON, the mock's state files)

=head1 SYNOPSIS

    use LLM::Fixtures;
    use LLM::Routing qw(chat status_json status_target mock_file
                        start_request);

    my $res = chat($port, 'my-route');                  # Test::Nginx::LLM result
    my $res = chat($port, 'm', stream => 1, mock => { gap => 100 });
    my $t   = status_target($port, 'provider', 'model');  # hashref or undef
    mock_file($srv, counter => '0');                    # <servroot>/counter
    my $sock = start_request($port, 'm');               # sent, not read

=cut

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use JSON::PP ();
use Test::Nginx::LLM qw(http_request build_request wait_until);

our @EXPORT_OK = qw(chat chat_body status_json status_target idle_target
                    mock_file start_request read_response);

=head2 chat_body($model, stream => 1, mock => {...}, max_tokens => N)

The JSON body of a chat completion request for C<$model>.

=cut

sub chat_body {
    my ($model, %o) = @_;
    my %body = (model => $model,
                messages => [{ role => 'user', content => $o{content} // 'x' }]);
    $body{stream} = JSON::PP::true if $o{stream};
    $body{mock} = $o{mock} if $o{mock};
    $body{max_tokens} = $o{max_tokens} if $o{max_tokens};
    return JSON::PP->new->canonical->encode(\%body);
}

=head2 chat($port, $model, %opt)

POSTs a chat completion (see C<chat_body>; C<timeout> and C<on_data> go to
http_request) and returns Test::Nginx::LLM's result.

=cut

sub chat {
    my ($port, $model, %o) = @_;
    return http_request(
        port    => $port,
        method  => 'POST',
        uri     => $o{uri} // '/v1/chat/completions',
        headers => { 'Content-Type' => 'application/json' },
        body    => chat_body($model, %o),
        (defined $o{timeout} ? (timeout => $o{timeout}) : ()),
        ($o{on_data} ? (on_data => $o{on_data}) : ()),
    );
}

=head2 status_json($port, uri => '/llm/status')

The decoded llm_status JSON (dies if it is not JSON).

=cut

sub status_json {
    my ($port, %o) = @_;
    my $res = http_request(port => $port, uri => $o{uri} // '/llm/status');
    die "llm_status answered " . ($res->{status} // 'nothing') . "\n"
        unless ($res->{status} // 0) == 200;
    return JSON::PP::decode_json($res->{body});
}

=head2 status_target($port, $provider, $model)

The status JSON's entry of that target, or undef.

=cut

sub status_target {
    my ($port, $provider, $model) = @_;
    my ($t) = grep { $_->{provider} eq $provider && $_->{model} eq $model }
              @{ status_json($port)->{targets} };
    return $t;
}

=head2 idle_target($port, $provider, $model, timeout => 10)

The target's status entry once it has no request in flight: an attempt
is recorded in the log phase, which may run after the client got the
whole response (lingering close, another worker). Undef on timeout.

=cut

sub idle_target {
    my ($port, $provider, $model, %o) = @_;
    my $t;
    wait_until(sub {
        $t = status_target($port, $provider, $model);
        $t && $t->{inflight} == 0;
    }, timeout => $o{timeout} // 10, interval => 0.02,
       desc => "$provider/$model to have no request in flight");
    return $t && $t->{inflight} == 0 ? $t : undef;
}

=head2 mock_file($srv, $name => $content, ...)

Writes files in the servroot, the mock's state directory (counters of
fail_times, delays of delay_file), atomically. C<undef> content removes the
file.

=cut

sub mock_file {
    my ($srv, %files) = @_;
    for my $name (sort keys %files) {
        my $path = $srv->servroot . "/$name";
        if (!defined $files{$name}) {
            unlink $path;
            next;
        }
        open my $fh, '>', "$path.tmp" or die "$path.tmp: $!";
        print $fh $files{$name};
        close $fh or die "$path.tmp: $!";
        rename "$path.tmp", $path or die "rename $path: $!";
    }
}

=head2 start_request($port, $model, %opt)

Sends a chat completion request (as C<chat>) and returns the socket
without reading the answer: the request stays in flight until the
response is read with C<read_response> or the socket is closed.

=cut

sub start_request {
    my ($port, $model, %o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                     Proto => 'tcp', Timeout => 5)
        or die "connect to $port: $!";
    print $sock build_request(
        method  => 'POST',
        uri     => '/v1/chat/completions',
        headers => { 'Content-Type' => 'application/json' },
        body    => chat_body($model, %o),
    );
    $sock->flush;
    return $sock;
}

=head2 read_response($sock, timeout => 10)

Reads until the server closes the connection (requests carry
C<Connection: close>) and returns the raw bytes.

=cut

sub read_response {
    my ($sock, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my $raw = '';
    my $deadline = time + $timeout;
    $sock->blocking(1);
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno($sock), 1) = 1;
        last unless select(my $rout = $rin, undef, undef, $deadline - time);
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $raw .= $buf;
    }
    close $sock;
    return $raw;
}

1;
