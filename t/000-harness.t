# Self-tests of our Test::Nginx::Socket, with plain nginx + the echo module.
# (Failure detection of the harness itself is tested in t/001-harness-llm.t.)

use Test::Nginx::Socket;

BEGIN {
    $ENV{TEST_NGINX_LOAD_MODULES} //= '/usr/lib/nginx/modules/ngx_http_echo_module.so';
}

repeat_each(1);
no_long_string() if $ENV{HARNESS_NO_LONG_STRING};

# Blocks with a "--- use_default_config" section get their config here.
add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->use_default_config && !defined $block->config) {
        $block->set_value(config => <<'_EOC_');
    location = /pp {
        echo "preprocessed";
    }
_EOC_
    }
});

# What each block emits (see "WHAT COUNTS AS ONE TEST" in Socket.pm):
# status + headers + body + log patterns + wait_for_log + 1 global.
my @per_block = (
    4,  # TEST 1:  status, body, no_error_log, global
    5,  # TEST 2:  status, body_like, error_log, no_error_log, global
    7,  # TEST 3:  status, 3 response_headers, 1 headers_like, body, global
    3,  # TEST 4
    3,  # TEST 5
    5,  # TEST 6:  status, header, raw headers, body, global
    4,  # TEST 7
    5,  # TEST 8
    3,  # TEST 9
    3,  # TEST 10
    3,  # TEST 11
    4,  # TEST 12: status, body, wait_for_log, global
    3,  # TEST 13: status, grep_error_log_out, global
    3,  # TEST 14: must_die, error_log, global
    3,  # TEST 15: skipped, emits the 3 it declares
    3,  # TEST 16
    3,  # TEST 17
    3,  # TEST 18
    4,  # TEST 19
    3,  # TEST 20
    3,  # TEST 21
    5,  # TEST 22: status, header, body, access_log, global
    2,  # TEST 23: error_log, global
    16, # TEST 24: 3 requests x (status, header, body) + 3 x 2 log patterns + global
    7,  # TEST 25: 2 requests x (status, body, access_log) + global
    7,  # TEST 26: 2 requests x (status, header, body) + global
    # TEST 27 has --- SKIP: Test::Base drops it, blocks() does not count it
);
my $sum = 0;
$sum += $_ for @per_block;
die "per-block table out of date: " . scalar(@per_block) . " vs " . blocks()
    unless @per_block == blocks();

plan tests => repeat_each() * $sum;

run_tests();

__DATA__

=== TEST 1: plain echo, default status 200
--- config
    location = /t {
        echo hello;
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: 404, body regex, error_log with env substitution
--- request
GET /missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
open() "$TEST_NGINX_HTML_DIR/missing.txt" failed (2: No such file or directory)
--- no_error_log
[crit]



=== TEST 3: response headers: exact, absent, like
--- config
    location = /h {
        add_header X-Foo bar;
        echo ok;
    }
--- request
GET /h
--- response_headers
X-Foo: bar
Content-Type: text/plain
!X-Bar
--- response_headers_like
Server: nginx/\d+\.\d+\.\d+
--- response_body
ok
--- error_code: 200



=== TEST 4: more_headers reach the server, $TEST_NGINX_* substituted
--- config
    location = /mh {
        echo "foo=$http_x_foo port=$TEST_NGINX_SERVER_PORT";
    }
--- more_headers
# comment lines are ignored
X-Foo: hello-$TEST_NGINX_SERVER_PORT
--- request
GET /mh
--- response_body
foo=hello-$TEST_NGINX_SERVER_PORT port=$TEST_NGINX_SERVER_PORT



=== TEST 5: POST body is echoed (Content-Length, trimmed like the real one)
--- config
    location = /echo {
        echo_read_request_body;
        echo "[$request_body] $http_content_length";
    }
--- request
POST /echo
hello world
--- response_body
[hello world] 11



=== TEST 6: chunked streaming response with flushes and sleeps
--- config
    location = /stream {
        echo a;
        echo_flush;
        echo_sleep 0.05;
        echo b;
        echo_flush;
        echo_sleep 0.05;
        echo c;
    }
--- request
GET /stream
--- response_headers
Transfer-Encoding: chunked
--- raw_response_headers_like: Transfer-Encoding: chunked\r\n
--- response_body
a
b
c



=== TEST 7: request eval with a 1 MiB body, 1 MiB response
--- config
    location = /big {
        client_body_buffer_size 2m;
        echo_read_request_body;
        echo $request_body;
    }
--- request eval
"POST /big\n" . ("x" x 1048576)
--- response_body eval
("x" x 1048576) . "\n"
--- no_error_log
[error]



=== TEST 8: raw_request, HTTP/1.0: no chunked encoding, read to EOF
--- config
    location = /t {
        echo hello;
    }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_headers
!Transfer-Encoding
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n
--- response_body
hello



=== TEST 9: request body sent chunked (encoded by the harness)
--- config
    location = /echo {
        echo_read_request_body;
        echo "[$request_body] te=$http_transfer_encoding";
    }
--- more_headers
Transfer-Encoding: chunked
--- request
POST /echo
hello chunked
--- response_body
[hello chunked] te=chunked



=== TEST 10: request body already chunk-encoded is sent verbatim
--- config
    location = /echo {
        echo_read_request_body;
        echo "[$request_body]";
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /echo\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
--- response_body
[hello world]



=== TEST 11: user_files served by the default root location
--- user_files
>>> index.html
<p>index on $TEST_NGINX_SERVER_PORT</p>
>>> sub/a.txt
aaa
--- request
GET /
--- response_body
<p>index on $TEST_NGINX_SERVER_PORT</p>



=== TEST 12: wait_for_log waits for the log phase
--- config
    location = /t {
        echo hello;
    }
--- request
GET /t
--- wait_for_log: http log handler
--- response_body
hello



=== TEST 13: grep_error_log / grep_error_log_out
--- request
GET /nope.html
--- error_code: 404
--- grep_error_log eval
qr/open\(\) "[^"]+" failed/
--- grep_error_log_out
open() "$TEST_NGINX_HTML_DIR/nope.html" failed



=== TEST 14: must_die: bad configuration
--- config
    location = /t {
        no_such_directive on;
    }
--- request
GET /t
--- must_die
--- error_log
unknown directive "no_such_directive"



=== TEST 15: skip_nginx in effect
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
never checked
--- skip_nginx
3: > 1.0.0



=== TEST 16: skip_nginx not in effect
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
hello
--- skip_nginx
3: < 1.0.0



=== TEST 17: response_body eval giving a qr//
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body eval
qr/^hel+o\n\z/



=== TEST 18: config set by a block preprocessor
--- use_default_config
--- request
GET /pp
--- response_body
preprocessed



=== TEST 19: per-block log_level
--- log_level: warn
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
hello
--- no_error_log
[debug]



=== TEST 20: HEAD request has no body
--- config
    location = /t { echo hello; }
--- request
HEAD /t
--- response_body chomp



=== TEST 21: error_code_like and response_body_unlike
--- config
    location = /t { return 204; }
--- request
GET /t
--- error_code_like: ^20[04]$
--- response_body_unlike: .



=== TEST 22: timeout + abort: slow response cut by the client, not a failure
--- config
    location = /slow {
        echo start;
        echo_flush;
        echo_sleep 1.5;
        echo done;
    }
--- request
GET /slow
--- timeout: 0.2
--- abort
--- response_headers
Transfer-Encoding: chunked
--- response_body
start
--- access_log
GET /slow HTTP/1.1



=== TEST 23: a block without request checks only the logs
--- config
    location = /t { echo hello; }
--- error_log
using the "epoll" event method



=== TEST 24: several requests: each its headers, status, headers and body
--- config
    location = /a { echo "a $http_x_one"; }
    location = /b {
        echo_read_request_body;
        echo_status 201;
        add_header X-Which b;
        echo "[$request_body] $http_x_two";
    }
    location = /c { return 404; }
--- request eval
["GET /a", "POST /b\nhello", "GET /c"]
--- more_headers eval
["X-One: 1", "X-Two: 2", ""]
--- error_code eval
[200, 201, 404]
--- response_headers eval
["!X-Which", "X-Which: b", "Content-Type: text/html"]
--- response_body_like eval
["^a 1\n\$", "^\\[hello\\] 2\n\$", "404 Not Found"]
--- error_log
using the "epoll" event method
--- no_error_log
[error]



=== TEST 25: several requests, the same URI twice: an array of one element per request
--- config
    location = /n { echo "n=$arg_n"; }
--- request eval
["GET /n?n=1", "GET /n?n=2"]
--- response_body eval
["n=1\n", "n=2\n"]
--- access_log
GET /n?n=1 HTTP/1.1



=== TEST 26: --- http2: requests over HTTP/2 by curl, a chunked one without a length
--- http2
--- config
    location = /h2 {
        echo_read_request_body;
        echo "$server_protocol $request_method $http_x_one [$http_content_length]";
        echo $request_body;
        add_header X-Got $http_x_one;
    }
--- more_headers eval
["X-One: 1", "X-One: 2\nTransfer-Encoding: chunked"]
--- request eval
["POST /h2\nhello", "POST /h2\nhello"]
--- response_headers eval
["X-Got: 1", "X-Got: 2"]
--- response_body eval
["HTTP/2.0 POST 1 [5]\nhello\n", "HTTP/2.0 POST 2 []\nhello\n"]



=== TEST 27: --- SKIP removes the block
--- config
    location = /t { echo hello; }
--- request
GET /t
--- response_body
never
--- SKIP
