package LLM::Dialects;

=head1 NAME

LLM::Dialects - helpers of the dialect tests: requests, golden outputs,
split offsets

=head1 SYNOPSIS

    use LLM::Dialects qw(post normalize slurp offsets sse_events);

    my $res = post($port, '/v1/chat/completions', {model => 'm', ...});
    is(normalize($res->{body}), slurp('t/fixtures/x/y.expected'));

=head1 DESCRIPTION

=over

=item post($port, $path, $body, @headers)

POSTs $body (a hashref or arrayref is sent as JSON, a string as it is)
and returns the L<Test::Nginx::LLM> response.

=item normalize($text)

What varies from run to run is replaced: "created" times by 0, the ids
the gateway makes up for OpenAI clients (chatcmpl- and call_ and 24
characters)
by the prefix and "ID", the split offset in model names by "split-N".

=item slurp($file), decode_json($text), encode_json($data)

=item offsets($length)

The split offsets tried for a fixture of $length bytes: all of them.

=item fixture_length($dir, $dialect, $file)

Bytes of a fixture as the fixture mock serves it (AWS event streams are
encoded from their JSON there).

=item sse_events($body)

The events of a text/event-stream body, as [event, data] pairs.

=item echoed_re($json)

A regex (text) for $json as it stands inside a JSON string (a mock's
echo in an answer's text): newlines and the indentation after them are
left out (write it over several lines); "..." stands for any string
value, "<date>" for 8 digits.

=back

=cut

use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();
use Encode ();

our @EXPORT_OK = qw(post normalize slurp offsets sse_events decode_json
                    encode_json fixture_length echoed_re);

my $json = JSON::PP->new->utf8->canonical;

sub decode_json { return $json->decode(shift) }
sub encode_json { return $json->encode(shift) }

sub echoed_re {
    my ($text) = @_;

    $text =~ s/\n\s*//g;
    $text = Encode::encode_utf8($text);
    $text =~ s/(["\\])/\\$1/g;

    my $re = quotemeta $text;
    $re =~ s/\\\.\\\.\\\./[^"\\\\]*/g;
    $re =~ s/\\<date\\>/\\d{8}/g;

    return $re;
}

sub post {
    my ($port, $path, $body, @headers) = @_;

    $body = encode_json($body) if ref $body;

    # loaded here: block files that use only the JSON helpers also run
    # under the real Test::Nginx, which has no Test::Nginx::LLM
    require Test::Nginx::LLM;
    return Test::Nginx::LLM::http_request(
        port => $port, method => 'POST', uri => $path, body => $body,
        headers => ['Content-Type' => 'application/json', @headers]);
}

sub normalize {
    my ($text) = @_;

    $text =~ s/"created":\d+/"created":0/g;
    $text =~ s/\b(chatcmpl-|call_)[A-Za-z0-9]{24}\b/${1}ID/g;
    $text =~ s/split-(?:\d+|bytewise)/split-N/g;
    # the client's model, in the gateway's own messages
    $text =~ s/`(c\d+)-(?:\d+|bytewise)`/`$1-N`/g;

    return $text;
}

sub slurp {
    my ($file) = @_;

    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

sub offsets {
    my ($length) = @_;
    return (1 .. $length - 1);
}

# bytes of fixture DIR/DIALECT/FILE as the fixture mock serves it: AWS
# event streams (.es.json) are encoded from JSON there

sub fixture_length {
    my ($dir, $dialect, $file) = @_;
    my $data = slurp("$dir/$dialect/$file");

    return length $data unless $file =~ /\.es\.json$/;

    my $n = 0;

    for my $m (@{ JSON::PP->new->decode($data) }) {
        my $h = 0;
        for my $k (keys %{ $m->{headers} }) {
            my $v = $m->{headers}{$k};
            utf8::encode($v);
            $h += 1 + length($k) + 1 + 2 + length($v);
        }
        $n += 12 + $h + length(JSON::PP->new->utf8->encode($m->{payload}))
              + 4;
    }

    return $n;
}

sub sse_events {
    my ($body) = @_;
    my @events;

    for my $block (split /\r?\n\r?\n/, $body) {
        my ($event, @data);

        for my $line (split /\r?\n/, $block) {
            $event = $1 if $line =~ /^event: ?(.*)$/;
            push @data, $1 if $line =~ /^data: ?(.*)$/;
        }

        push @events, [$event, join("\n", @data)] if @data || defined $event;
    }

    return @events;
}

1;
