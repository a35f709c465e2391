# How the module is linked (config): with -Bsymbolic its calls from one
# file to another are direct, not through the PLT and a GOT entry each
# (243 of its 376 PLT entries were its own functions without it). Nothing
# a request can observe, so the shared object itself is read: no PLT
# relocation names a function of the module, while nginx's and libc's
# are there as before.
#
# A script: it reads the module under test with readelf (binutils).

use strict;
use warnings;

use Test::More;
use File::Spec;

my $top = File::Spec->rel2abs('.');
my ($module) = grep { m{/ngx_http_llm_module\.so$} }
               split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
$module //= "$top/build/ngx_http_llm_module.so";

plan skip_all => "no module at $module" unless -f $module;
plan skip_all => 'no readelf' if system('readelf --version >/dev/null 2>&1');

my @slots = map { (split ' ')[4] // '' }
            grep { /JUMP_SLOT/ } `readelf -rW '$module'`;

is($?, 0, 'readelf reads the module');
ok((grep { /^ngx_(?!http_llm_)/ } @slots) > 10,
   'nginx functions are called through the PLT (' . scalar(@slots)
   . ' entries)');
ok((grep { /^(malloc|free|memcpy|memcmp)\b/ } @slots),
   'and libc functions');
is_deeply([grep { /^ngx_http_llm_/ } @slots], [],
          'no PLT entry for a function of the module: its calls are direct');

done_testing();
