# Provider keys on a cache hit: the $llm_header_* variables of secret
# headers are readable only while the proxy module builds an upstream
# request, and a hit builds none. add_header and log_format that name them
# show nothing, on the miss and on the hit.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

run_tests();

__DATA__

=== TEST 1: a miss, then a hit of the same entry: no key in headers or logs
--- http_config
    proxy_cache_path llm_cache keys_zone=llm:1m;
    log_format secrets 'cache=$llm_cache_status auth=[$llm_header_authorization]';
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-PROVIDER-CACHED-secret;
    }
    llm_route m { target mock; }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_cache llm;
        proxy_cache_valid 200 10m;
        llm_cache deterministic;
        access_log logs/access.log secrets;
        add_header X-Leak-Test "[$llm_header_authorization]";
    }
--- request eval
my $body = '{"model":"m","temperature":0,'
         . '"messages":[{"role":"user","content":"cache me"}]}';
["POST /v1/chat/completions\n$body", "POST /v1/chat/completions\n$body"]
--- response_headers eval
["X-LLM-Cache: MISS\nX-Leak-Test: []", "X-LLM-Cache: HIT\nX-Leak-Test: []"]
--- raw_response_headers_unlike eval
["sk-PROVIDER", "sk-PROVIDER"]
--- response_body_like eval
['"object":"chat.completion"', '"object":"chat.completion"']
--- no_access_log
sk-PROVIDER
--- no_error_log
sk-PROVIDER
