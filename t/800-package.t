# The Debian package (make deb): it installs, nginx -t accepts the system's
# configuration with the module enabled through modules-enabled, a gateway
# runs from the installed files alone (the module, llm_proxy_params) on a
# test port, and a purge leaves nothing behind. A script: it installs and
# removes a package. Needs root (as CI runs); skipped otherwise.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures ();
use LLM::Faults qw(fault_server);
use Test::Nginx::LLM qw(start_nginx http_request);

plan skip_all => 'installs a package: needs root' if $> != 0;
plan skip_all => 'the package holds a build of its own: tested in make test'
    if $ENV{TEST_NGINX_USE_ASAN} || $ENV{TEST_NGINX_USE_VALGRIND};

my $pkg = 'libnginx-mod-http-llm';
my @files = ('/usr/lib/nginx/modules/ngx_http_llm_module.so',
             '/usr/share/nginx/modules-available/mod-http-llm.conf',
             '/etc/nginx/modules-enabled/50-mod-http-llm.conf',
             '/etc/nginx/llm_proxy_params', '/etc/nginx/llm_log_format',
             "/usr/share/doc/$pkg/copyright",
             "/usr/share/doc/$pkg/examples/quickstart.conf");

sub installed { `dpkg-query -W -f='\${Status}' $pkg 2>/dev/null` =~ /install ok installed/ }

# installing must never start (or reload) the system's nginx: invoke-rc.d
# asks policy-rc.d
my $guard = !-e '/usr/sbin/policy-rc.d';
if ($guard) {
    open my $fh, '>', '/usr/sbin/policy-rc.d' or die $!;
    print $fh "#!/bin/sh\nexit 101\n";
    close $fh;
    chmod 0755, '/usr/sbin/policy-rc.d';
}
END { unlink '/usr/sbin/policy-rc.d' if $guard }

system("dpkg --purge $pkg >/dev/null 2>&1") if installed();

# (make test runs this: the package is built by a make of its own)
my $out = `env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory deb 2>&1`;
is($?, 0, 'make deb builds the package, lintian finds no error') or diag $out;
my ($deb) = glob("build/deb/${pkg}_*.deb");
ok($deb && -f $deb, 'the .deb is there') or BAIL_OUT("no package: $out");

$out = `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ./$deb 2>&1`;
is($?, 0, 'apt installs it') or diag $out;
ok(-e $_, "installed: $_") for @files;
is(readlink('/etc/nginx/modules-enabled/50-mod-http-llm.conf'),
   '/usr/share/nginx/modules-available/mod-http-llm.conf',
   'enabled through modules-enabled');

$out = `/usr/sbin/nginx -t 2>&1`;
is($?, 0, 'nginx -t accepts the system configuration with the module')
    or diag $out;

# a gateway from the installed files only
my $faults = fault_server();
my $F = $faults->port;
local $ENV{TEST_NGINX_LOAD_MODULES} = '/usr/lib/nginx/modules/ngx_http_llm_module.so';
my $srv = start_nginx(
    name        => 'package',
    http_config => <<CONF,
    llm_provider ok { url http://127.0.0.1:$F/ok/v1; }
    llm_route m { target ok m; }
CONF
    config      => <<'CONF',
    location /v1/ {
        llm_gateway;
        include /etc/nginx/llm_proxy_params;
    }
CONF
);
my $res = http_request(port => $srv->port, method => 'POST',
                       uri => '/v1/chat/completions',
                       body => '{"model":"m","messages":[{"role":"user","content":"x"}]}');
is($res->{status}, 200, 'the installed gateway answers');
like($res->{body}, qr/"content":"Hello from a fault"/, 'with the provider\'s answer');
$srv->check_clean('no alerts, crashes or sanitizer reports');

$out = `dpkg --purge $pkg 2>&1`;
is($?, 0, 'purged') or diag $out;
ok(!installed(), 'no longer installed');
ok(!-e $_ && !-l $_, "left nothing: $_") for @files;
ok(!-d "/usr/share/doc/$pkg", 'no documentation left');

done_testing();
