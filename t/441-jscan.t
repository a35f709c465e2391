# The JSON scanner (ngx_http_llm_jscan.c, compiled alone with a small
# harness, t/unit/jscan_yajl.c) against yajl: the same verdict and the
# same tokens for every document below and every fixture, fed whole, cut
# in two at every offset, and a byte at a time. fuzz/fuzz_jscan.c checks
# the same property on generated documents.
#
# A script: it compiles and runs a C harness, no nginx.

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);

my $top = abs_path(dirname(__FILE__) . '/..');
my $src = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
my $objs = "$top/build/nginx/objs";
my $dir = "$top/t/servroot-jscan";
my $bin = "$dir/jscan_yajl";

plan skip_all => "no nginx build in $objs" unless -f "$objs/ngx_auto_config.h";

make_path("$dir/cases");

my $log = `cc -O1 -g -o $bin -I $src/src/core -I $src/src/event -I $src/src/os/unix -I $objs -I $top/ngx_http_llm_module $top/t/unit/jscan_yajl.c $top/t/unit/pool_malloc.c $top/ngx_http_llm_module/ngx_http_llm_jscan.c -lyajl 2>&1`;
is($?, 0, 'the harness builds') or diag $log;

my @cases = (
    # valid
    '{}', '[]', '""', '0', '-0', '1', '-12.5e+3', '0.5E-2', '1e9', 'true',
    'false', 'null', ' {"a" : [1, 2.0, -3e2, true, false, null, "x"]} ',
    '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}',
    '{"a":{"b":{"c":[[[]],{}]}}}', "\t\r\n[ ]\n",
    '"\\" \\\\ \\/ \\b \\f \\n \\r \\t"', '"\\u0041\\u00e9\\u20ac"',
    '"\\u00E9\\u00e9"', "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    '{"k\\u0065y":"v"}', '["' . ('x' x 300) . '"]',
    '{"' . ('k' x 257) . '":1}', '[' . ('1' x 600) . ']',
    '{"":""}', '[[],[[]],{"":[]}]', '"\\u0000"',
    # not JSON
    '', ' ', '{', '}', '[', ']', '{"a"}', '{"a":}', '{"a":1,}', '[1,]',
    '[,1]', '{,}', '{"a" 1}', '{a:1}', "{'a':1}", '[01]', '[-]', '[1.]',
    '[.5]', '[1e]', '[1e+]', '[+1]', '[0x1]', '[tru]', '[truex]', '[nul]',
    '[True]', '"abc', '"\\x"', '"\\u12"', '"\\u12g4"', "\"a\x01b\"",
    "\"a\nb\"", "\"\x80\"", "\"\xc3\"", "\"\xc3(\"", "\"\xf8\x88\x80\x80\x80\"",
    '{} {}', '[] x', '1 2', '{"a":1}}', '[1]]', '[1}', '{"a":1]',
    '/*c*/ {}', '{"a":1 /* c */}', 'nan', '[Infinity]', '[-Infinity]',
    '{"a":1,"a"', '["a",', ("[" x 1024) . ("]" x 1024),
    # yajl takes these for JSON (a string left open after the document
    # waits for more input); the harness knows it, the scanner refuses
    '"""', '{} "abc', '[1]"\\\\', '0 "\\u12',
    # yajl takes vertical tab and form feed for white space
    "[1,\x0b2]", "\x0c{}",
);

my $i = 0;
my @files;
for my $case (@cases) {
    my $f = sprintf "$dir/cases/%03d.json", $i++;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $case;
    close $fh;
    push @files, $f;
}

my @fixtures = (glob("$top/t/fixtures/*/*.json"), glob("$top/fuzz/corpus/*/*"));
ok(@fixtures > 20, 'fixtures and fuzz seeds to compare with');

for my $f (@files, @fixtures) {
    my $out = `$bin $f`;
    is($out, "ok $f\n", "$f: the same as yajl") or diag $out;
}

# nesting: 1024 levels agree with yajl; the 1025th is refused (yajl
# has no bound)
my $deep = "$dir/deep.json";
open my $fh, '>:raw', $deep or die;
print $fh ("[" x 1025) . ("]" x 1025);
close $fh;
like(`$bin $deep`, qr/yajl says JSON, jscan \(cut -1\) says not JSON/,
     '1025 levels of nesting are refused');

done_testing();
