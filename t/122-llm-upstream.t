# "proxy_pass https://llm_upstream": the module's upstream block hands each
# attempt to its provider's peers (an address, a keepalive pool, an
# upstream block its url names, or a name resolved per request), and the
# request line carries the attempt's path, never the client's. The
# providers below answer with the request line they received.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;
use File::Temp qw(tempdir);

no_shuffle();

# a certificate of its own for the TLS provider, trusted by its location
$ENV{TEST_NGINX_CERT_DIR} //= do {
    my $dir = tempdir(CLEANUP => 1);
    system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
           'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
           '-subj', '/CN=llm-test.local',
           '-addext', 'subjectAltName=DNS:llm-test.local',
           '-keyout', "$dir/key.pem", '-out', "$dir/cert.pem") == 0
        or die "openssl req failed";
    $dir;
};

our $LINE_SERVER = <<'CONF';
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        access_log off;
        location / {
            default_type application/json;
            return 200 '{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"$request host=$http_host"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
CONF

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
);

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die || defined $block->no_line_server;
    my $http = LLM::Fixtures::section($block, 'http_config') // '';
    $block->set_value(http_config => $http . $LINE_SERVER);
});

run_tests();

__DATA__

=== TEST 1: the request line has the attempt's path: the client's path and query do not reach the provider
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/tenant-a/v1; }
    llm_route m { target p; }
--- request
POST /v1/chat/completions?debug=1&x=%2F
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "content":"POST /tenant-a/v1/chat/completions HTTP/1\.1 host=127\.0\.0\.1:\d+"
--- no_error_log
[error]



=== TEST 2: a failover re-dispatches: the second attempt goes to its own provider, with its own path and Host
--- http_config
    upstream backends { server 127.0.0.1:$TEST_NGINX_MOCK2_PORT; }
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider live { url http://backends/second/v1; }
    llm_route m { strategy ordered; target dead; target live; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "content":"POST /second/v1/chat/completions HTTP/1\.1 host=backends"
--- error_log
connect() failed (111: Connection refused)



=== TEST 3: a provider with keepalive goes to its pool, with its path
--- http_config
    llm_provider p {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/pooled/v1;
        keepalive 2;
    }
    llm_route m { target p; }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "content":"POST /pooled/v1/chat/completions HTTP/1\.1 host=127\.0\.0\.1:\d+"
--- no_error_log
[error]



=== TEST 4: a provider named by DNS is resolved per request with the location's resolver
--- http_config
    llm_provider p { url http://provider.invalid/v1; }
    llm_route m { target p; }
--- config
    location /v1/ {
        # nothing answers there: the name is looked up, and not found
        resolver 127.0.0.1:$TEST_NGINX_DEAD_PORT ipv6=off;
        resolver_timeout 1s;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 502
--- response_body_like: "error":\{
--- error_log
provider.invalid could not be resolved



=== TEST 4b: the same on a second attempt, after a failover
--- http_config
    llm_provider dead { url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1; }
    llm_provider p { url http://provider.invalid/v1; }
    llm_route m { strategy ordered; target dead; target p; }
--- config
    location /v1/ {
        resolver 127.0.0.1:$TEST_NGINX_DEAD_PORT ipv6=off;
        resolver_timeout 1s;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 502
--- response_body_like: "error":\{
--- error_log
connect() failed (111: Connection refused)
provider.invalid could not be resolved



=== TEST 5: outside a gateway location, llm_upstream takes nothing
--- config
    location /direct/ {
        proxy_pass https://llm_upstream;
    }
--- request
GET /direct/x
--- error_code: 500
--- error_log
upstream "llm_upstream" takes only the attempts of an llm_gateway location



=== TEST 6: a provider named by DNS needs the Host line that sets the name to resolve
--- http_config
    llm_provider p { url http://provider.invalid/v1; }
    llm_route m { target p; }
--- config
    location /v1/ {
        resolver 127.0.0.1:$TEST_NGINX_DEAD_PORT;
        llm_gateway;
        proxy_pass https://llm_upstream;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- must_die
--- error_log eval
qr/llm_provider "p" in \S+nginx\.conf:\d+ names host "provider\.invalid", which is resolved per request: a location with "proxy_pass https:\/\/llm_upstream;" needs "proxy_set_header Host \$llm_upstream_host;"/



=== TEST 7: llm_upstream is the module's: an upstream block of that name is a duplicate
--- http_config
    upstream llm_upstream { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
--- config
    location /x/ { return 204; }
--- must_die
--- error_log
duplicate upstream "llm_upstream"



=== TEST 7b: http://llm_upstream would leave https providers without TLS: nginx -t says so
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route m { target p; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass http://llm_upstream;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- must_die
--- error_log
llm_gateway location "/v1/" needs "proxy_pass https://llm_upstream;": each provider's url has its own scheme



=== TEST 8: TLS per provider: an https provider is verified with its name, a plain one beside it is not spoken TLS to
--- no_line_server
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;
        access_log off;
        location / {
            default_type application/json;
            return 200 '{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"$request sni=$ssl_server_name host=$http_host"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
    llm_provider tls {
        url https://127.0.0.1:$TEST_NGINX_MOCK2_PORT/tls/v1;
        host llm-test.local;
    }
    llm_provider plain { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
    llm_route secure { target tls; }
    llm_route clear { target plain; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass https://llm_upstream;
        proxy_http_version 1.1;
        proxy_pass_request_headers off;
        proxy_set_header Host $llm_upstream_host;
        proxy_set_header Connection "";
        proxy_ssl_server_name on;
        proxy_ssl_name $llm_upstream_host;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"secure","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"clear","messages":[{"role":"user","content":"hi"}]}']
--- error_code eval
[200, 200]
--- response_body_like eval
['"content":"POST /tls/v1/chat/completions HTTP/1\.1 sni=llm-test\.local host=llm-test\.local"',
 '"path":"/v1/chat/completions"']
--- no_error_log
[error]



=== TEST 9: "proxy_pass $llm_upstream" still serves: the URL is the attempt's, parsed per request
--- http_config
    llm_provider p { url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/by-variable/v1; }
    llm_route m { target p; }
--- config
    location /v1/ {
        llm_gateway;
        proxy_pass $llm_upstream;
        proxy_pass_request_headers off;
        proxy_set_header Host $llm_upstream_host;
        recursive_error_pages on;
        error_page 502 504 = $uri$is_args$args;
    }
--- request
POST /v1/chat/completions?debug=1
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "content":"POST /by-variable/v1/chat/completions HTTP/1\.0 host=127\.0\.0\.1:\d+"
--- no_error_log
[error]
