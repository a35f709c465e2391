# SigV4 signing (ngx_http_llm_sigv4.c, compiled alone with a small
# harness) against AWS's published test vectors, and AWS's
# percent-encoding of paths. The Bedrock mock checks the signatures of
# real requests the same way (t/410-dialect-requests.t).
#
# A script: it compiles and runs a C harness, no nginx.

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $top = abs_path(dirname(__FILE__) . '/..');
my $src = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
my $objs = "$top/build/nginx/objs";
my $bin = "$top/t/servroot-sigv4/sigv4_vector";

plan skip_all => "no nginx build in $objs" unless -f "$objs/ngx_auto_config.h";

mkdir "$top/t/servroot-sigv4";

my $cc = "cc -o $bin -I $src/src/core -I $src/src/event -I $src/src/os/unix "
       . "-I $objs -I $top/ngx_http_llm_module "
       . "$top/t/unit/sigv4_vector.c "
       . "$top/ngx_http_llm_module/ngx_http_llm_sigv4.c -lcrypto 2>&1";

my $log = `$cc`;
is($?, 0, 'the harness builds') or diag $log;

my %out = map { /^(\S+) (.*)$/ ? ($1 => $2) : () } split /\n/, `$bin`;

is($out{'get-vanilla'},
   'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/'
   . 'aws4_request, SignedHeaders=host;x-amz-date, Signature='
   . '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
   'get-vanilla');

is($out{'post-vanilla'},
   'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/'
   . 'aws4_request, SignedHeaders=host;x-amz-date, Signature='
   . '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
   'post-vanilla');

is($out{encode}, 'a%3Ab%2Fc%20d~', 'a path segment: all but unreserved');
is($out{'encode-path'}, '/m/a%253Ab', 'a path encoded again, slashes kept');

done_testing();
