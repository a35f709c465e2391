#!/usr/bin/perl
# Writes the seed corpora of the fuzzers (fuzz/corpus/<harness>/) from the
# golden fixtures (t/fixtures) and request bodies like the tests': run it
# again when fixtures change. Each seed starts with the bytes a harness
# reads first (fuzz/fuzz.h: the cuts; fuzz_translate.c: the dialect too).

use strict;
use warnings;
use File::Basename qw(basename);
use File::Path qw(make_path);
use JSON::PP ();
use Compress::Zlib ();

my $top = ($0 =~ m{^(.*)/fuzz/seeds\.pl$})[0] // '.';
my $corpus = "$top/fuzz/corpus";

sub slurp { local (@ARGV, $/) = @_; return scalar <> }

sub seed {
    my ($harness, $name, $bytes) = @_;
    make_path("$corpus/$harness");
    open my $f, '>:raw', "$corpus/$harness/$name" or die "$name: $!";
    print {$f} $bytes;
    close $f;
}

# AWS event stream frames from the fixtures' JSON form
sub eventstream {
    my ($frames) = @_;
    my $out = '';
    for my $fr (@$frames) {
        my $h = '';
        for my $k (sort keys %{ $fr->{headers} }) {
            my $v = $fr->{headers}{$k};
            $h .= pack('C', length $k) . $k . pack('C n', 7, length $v) . $v;
        }
        my $payload = ref $fr->{payload}
            ? JSON::PP->new->canonical->encode($fr->{payload})
            : $fr->{payload} // '';
        my $total = 12 + length($h) + length($payload) + 4;
        my $prelude = pack('N N', $total, length $h);
        $prelude .= pack('N', Compress::Zlib::crc32($prelude));
        my $msg = $prelude . $h . $payload;
        $out .= $msg . pack('N', Compress::Zlib::crc32($msg));
    }
    return $out;
}

my @cuts = ("\x00", "\x05", "\x2a", "\xff");

# fuzz_translate: choice byte = dialect (0 anthropic, 1 gemini, 2 bedrock,
# 3 openai) | 4 for a stream | 8 for the Anthropic door's client
my %dialect = (anthropic => 0, gemini => 1, bedrock => 2, openai => 3,
               azure => 3);

for my $file (glob "$top/t/fixtures/*/*") {
    next if $file =~ /\.expected$/;
    my ($d) = $file =~ m{/fixtures/(\w+)/};
    my $stream = $file =~ /\.(sse|es\.json)$/ ? 4 : 0;
    my $bytes = $file =~ /\.es\.json$/
        ? eventstream(JSON::PP->new->decode(slurp($file)))
        : slurp($file);
    for my $client (0, 8) {
        my $i = 0;
        for my $cut (@cuts[0, 2]) {
            seed('fuzz_translate', basename($file) . ".$d.$client." . $i++,
                 chr($dialect{$d} | $stream | $client) . $cut . $bytes);
        }
    }
    if ($file =~ /\.es\.json$/) {
        seed('fuzz_eventstream', basename($file) . ".$_", $cuts[$_] . $bytes)
            for 0 .. $#cuts;
    }
    if ($file =~ /\.sse$/) {
        seed('fuzz_sse', basename($file) . ".$_", $cuts[$_] . $bytes)
            for 0 .. $#cuts;
    }
}

# requests: the parser, the rewriter and the cache key
my @requests = (
    '{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}',
    '{"model":"m","temperature":0,"max_tokens":50,"stream":true,'
        . '"messages":[{"role":"system","content":"Be brief."},'
        . '{"role":"user","content":"What is nginx?"}]}',
    '{ "cache" : true ,"mod\u0065l":"m","stream":true,"stream_options":'
        . '{"include_usage":false},"messages":[{"role":"user","content":'
        . '"x"}]}',
    '{"stream":true,"stream_options":null,"model":"m","messages":[],'
        . '"cache":{"no-cache":true,"no-store":false}}',
    '{"model":"m","messages":[{"role":"user","content":[{"type":"text",'
        . '"text":"look"},{"type":"image_url","image_url":{"url":'
        . '"data:image/png;base64,iVBORw0KGgo="}}]}],"tools":[{"type":'
        . '"function","function":{"name":"f","parameters":{"type":"object",'
        . '"properties":{"a":{"type":"number"}}}}}],"user":"u1",'
        . '"max_completion_tokens":1e3}',
    '{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 \"q\"'
        . ' \\\\ \n"}],"temperature":0.0,"n":1,"stop":["\n"]}',
);

my $i = 0;
for my $body (@requests) {
    for my $cut (@cuts) {
        seed('fuzz_request', "request.$i", $cut . $body);
        seed('fuzz_cachekey', "request.$i", $cut . $body);
        $i++;
    }
}

# the JSON scanner: documents as they are (fixtures, requests), and some
# that are not JSON
my $j = 0;
for my $doc ((map { slurp($_) } sort glob("$top/t/fixtures/*/*.json")),
             @requests, '{"a":[1,2.5e3,true,false,null,"\u00e9"]}',
             '[01]', '{"a":1,}', "\"\xc3(\"", '"\ud83d\ude00"') {
    seed('fuzz_jtree', 'doc.' . $j, $doc);
    seed('fuzz_jscan', 'doc.' . $j++, $doc);
}

# usage read from an answer's end: the OpenAI-format answers of the
# fixtures, whole and cut
my $u = 0;
for my $doc (map { slurp($_) } sort glob("$top/t/fixtures/openai/*.json")) {
    seed('fuzz_usage', 'answer.' . $u++, $_ . $doc) for @cuts[0, 2];
}

# trees: a value, a key and a number longer than the scanner's first bytes
seed('fuzz_jtree', 'long.0', '{"messages":[{"role":"user","content":"'
     . ('ab\u00e9\ud83d\ude00\n' . "\xc3\xa9") x 60 . '"}],"'
     . ('k' x 300) . '":-' . ('7' x 270) . 'e5}');
