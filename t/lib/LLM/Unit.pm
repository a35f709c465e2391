package LLM::Unit;

=head1 NAME

LLM::Unit - builds a C harness of t/unit/ with nginx's headers and runs it

=head1 SYNOPSIS

    use LLM::Unit qw(run_harness);

    run_harness(name => 'redact_stream', min => 40, libs => '-lpcre2-8',
        sources => ['t/unit/redact_stream.c', 't/unit/pool_malloc.c',
                    'ngx_http_llm_module/ngx_http_llm_redact.c',
                    'ngx_http_llm_module/ngx_http_llm_redact_literal.c']);

The harness prints one line a check, "ok NAME" or what differs; each
line is a test, and so are the build, the number of lines (at least
min) and the exit status. It is built and run twice: as it is, and
without the SSE2 paths (-U__SSE2__), which other machines take; or once
for each of builds => [[' -DFLAG', ' (what)'], ...]. Skips the file
when nginx is not built.

=cut

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);

our @EXPORT_OK = qw(run_harness);

sub run_harness {
    my %a = @_;

    my $top = abs_path(dirname(__FILE__) . '/../../..');
    my $src = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
    my $objs = "$top/build/nginx/objs";
    my $dir = "$top/t/servroot-unit";
    my $bin = "$dir/$a{name}";

    plan skip_all => "no nginx build in $objs"
        unless -f "$objs/ngx_auto_config.h";

    make_path($dir);
    unlink $bin;

    my $files = join ' ', map { "$top/$_" } @{ $a{sources} };
    my $inc = join ' ', map { "-I $_" } "$src/src/core", "$src/src/event",
        "$src/src/os/unix", $objs, "$top/ngx_http_llm_module";

    # the code's SSE2 paths, and again without them (-U__SSE2__): what
    # other machines (arm64) run is checked here too
    my $builds = $a{builds} || [['', ''], [' -U__SSE2__', ' (no SSE2)']];

    for my $build (@$builds) {
        my ($flags, $what) = @$build;

        unlink $bin;

        my $cc = "cc -O1 -g -Wall -Werror$flags -o $bin $inc $files"
                 . " $a{libs}";
        my $log = `$cc 2>&1`;
        is($?, 0, "the harness builds$what") or diag $log;

        my @lines = split /\n/, `$bin`;
        my $rc = $? >> 8;

        ok(@lines >= $a{min},
           'every check ran (' . scalar(@lines) . ")$what");

        for my $line (@lines) {
            if ($line =~ /^ok (.*)$/) {
                pass("$1$what");
            } else {
                fail("$line$what");
            }
        }

        is($rc, 0, "the harness exits 0$what");
    }

    done_testing();
}

1;
