# The status page (llm_status html) in headless Chromium: it loads, draws
# the values of a running gateway from its JSON status, writes names from
# clients as text, and a screenshot of it is taken.
#
# A script: the page is loaded in headless Chromium.

use strict;
use warnings;

use Test::More;
use JSON::PP ();
use LLM::Fixtures;
use Test::Nginx::LLM qw(start_nginx http_request wait_until read_file);

my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
BAIL_OUT('chromium is not installed: scripts/deps.sh test installs it')
    unless $chromium;

my $srv = start_nginx(
    name        => 'status-page',
    http_config => $LLM::Fixtures::MOCK_HTTP_CONFIG . <<'CONF',
    llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=500/v1;
    }

    llm_route chat { target mock m1 input=10.00 output=30.00; }
    llm_route down { target down; }
    llm_route "any/*" { target mock "*"; }

    llm_guard pii { redact email @email; log bye "(?i)goodbye"; }

    llm_team eng { budget 5usd/day; }
    llm_key alice { key sk-alice-0123456789; team eng; }
CONF
    config => <<'CONF',
    location /v1/ {
        llm_guard_policy pii;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location = /status {
        llm_status html;
    }
CONF
);

my $port = $srv->port;
my $dir = $srv->servroot;

sub ask {
    my ($model, %mock) = @_;
    return http_request(
        port => $port, method => 'POST', uri => '/v1/chat/completions',
        headers => { Authorization => 'Bearer sk-alice-0123456789' },
        body => JSON::PP->new->canonical->encode({
            model => $model, messages => [{ role => 'user', content => 'hi' }],
            mock => \%mock }));
}

sub status {
    return JSON::PP::decode_json(
        http_request(port => $port, uri => '/status?format=json')->{body});
}

# 2 x (1000 x $10 + 200 x $30) per million = $0.032
is(ask('chat', prompt_tokens => 1000, completion_tokens => 200,
       reply => 'mail a@b.example')->{status},
   200, 'a completion, whose answer a guard redacts');
is(ask('chat', prompt_tokens => 1000, completion_tokens => 200)->{status},
   200, 'another');
is(ask('down')->{status}, 500, 'a failure passed on');
my $evil = 'any/<img src=x onerror=alert(1)>';
is(ask($evil)->{status}, 200, 'a model name with markup');

wait_until(sub {
    my ($a) = grep { $_->{name} eq 'alice' } @{ status()->{spend} };
    $a && $a->{requests} == 4;
}, timeout => 10, interval => 0.02, desc => 'the four requests counted');

my $st = status();
my $requests = 0;
$requests += $_->{requests}{'2xx'} + $_->{requests}{'4xx'}
             + $_->{requests}{'5xx'} + $_->{requests}{other}
    for @{ $st->{series} };
is($requests, 4, 'the JSON counts four requests');

sub chromium {
    my @args = @_;
    my $out = `timeout 60 $chromium --headless=new --no-sandbox --disable-gpu \\
               --hide-scrollbars --user-data-dir=$dir/chromium \\
               --window-size=1400,1000 --virtual-time-budget=4000 \\
               @args 'http://127.0.0.1:$port/status' 2>$dir/logs/chromium.log`;
    is($? >> 8, 0, "chromium @args ran") or diag read_file("$dir/logs/chromium.log");
    return $out;
}

# what the page shows once its script ran
my $dom = chromium('--dump-dom');

like($dom, qr/<body[^>]* data-loaded="yes"/, 'the page loaded its data');
unlike($dom, qr/id="problem"[^>]*style="display: block/,
       'and shows no problem');
like($dom, qr/id="updated">\d{1,2}:\d\d:\d\d/, 'the time of the data');
like($dom, qr/id="total-requests">4</, 'four requests');
like($dom, qr/id="total-errors">1 error</, 'one of them an error');
like($dom, qr/id="total-cost">\$0\.0320</, 'what they cost');
like($dom, qr/<tr data-target="mock\/m1">(?:(?!<\/tr>).)*>closed<.*?<\/tr>/s,
     'the target, closed');
like($dom, qr/<tr data-target="down\/down">(?:(?!<\/tr>).)*>(?:open|closed)</s,
     'the failing target');
my $alice = '<tr data-spend="key:alice"><td>key</td><td>alice</td>'
            . '<td class="num">4</td><td class="num">2,001</td>';
like($dom, qr/\Q$alice\E/, 'alice: requests and prompt tokens');
my $left = '$4.968 of $5.00 / day';
like($dom, qr/<tr data-spend="team:eng">(?:(?!<\/tr>).)*\Q$left\E/s,
     'eng: what remains of the day\'s budget');
like($dom, qr{<tr data-guard="pii/email"><td>pii</td><td>email</td><td>redact</td><td class="num">0</td><td class="num">1</td></tr>},
     'the guard policy: its rule that redacted an answer');
like($dom, qr{<tr data-guard="pii/bye"><td>pii</td><td>bye</td><td>log</td><td class="num">0</td><td class="num">0</td></tr>},
     'and a rule that never matched');
like($dom, qr/<td>[^<]*&lt;img src=x onerror=alert\(1\)&gt;<\/td>/,
     'markup in a model name is shown as text');
unlike($dom, qr/<td><img/, 'and never becomes an element');

# the picture
my $png = "$dir/status-page.png";
unlink $png;
chromium("--screenshot=$png");
my $head = -e $png ? read_file($png) : '';
is(substr($head, 0, 8), "\x89PNG\r\n\x1a\n", 'a PNG screenshot');
is(unpack('N', substr($head, 16, 4)), 1400, 'of the whole width');
note("screenshot: $png");

$srv->check_clean('no alerts, crashes or sanitizer reports');

done_testing();
