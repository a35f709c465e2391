# Streamed redaction (ngx_http_llm_redact.c), the engine of guardrails'
# "redact" on streams: compiled with a harness (t/unit/redact_stream.c)
# that feeds texts whole, cut in two at every offset and in pieces of 1
# to 7 bytes, and checks that what goes out is at every moment a prefix of
# the whole text's redaction and in the end all of it; that text which
# cannot become a match is not held; that held text past the cap never
# goes out; that bad rules are refused with their number and offset.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);

my $top = abs_path(dirname(__FILE__) . '/..');
my $src = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
my $objs = "$top/build/nginx/objs";
my $dir = "$top/t/servroot-redact";
my $bin = "$dir/redact_stream";

plan skip_all => "no nginx build in $objs" unless -f "$objs/ngx_auto_config.h";

make_path($dir);

my $log = `cc -O1 -g -Wall -Werror -o $bin -I $src/src/core -I $src/src/event -I $src/src/os/unix -I $objs -I $top/ngx_http_llm_module $top/t/unit/redact_stream.c $top/ngx_http_llm_module/ngx_http_llm_redact.c -lpcre2-8 2>&1`;
is($?, 0, 'the harness builds') or diag $log;

my @lines = split /\n/, `$bin`;
my $rc = $? >> 8;

ok(@lines >= 40, 'every check ran (' . scalar(@lines) . ')');

for my $line (@lines) {
    if ($line =~ /^ok (.*)$/) {
        pass($1);
    } else {
        fail($line);
    }
}

is($rc, 0, 'the harness exits 0');

done_testing();
