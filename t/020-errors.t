# Every error a client sees is OpenAI-shaped JSON with the right status,
# including the ones nginx itself produces; an unreachable provider is
# answered fast, never with an HTML page.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-provider-secret;
    }
    llm_route gpt-4o {
        target mock;
    }
CONF
    response_headers => "Content-Type: application/json",
);

run_tests();

__DATA__

=== TEST 1: invalid JSON
--- request
POST /v1/chat/completions
{"model": "gpt-4o", "messages": [}
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: parse error: unallowed token at this point in JSON text (at byte 34).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 2: truncated JSON
--- request
POST /v1/chat/completions
{"model": "gpt-4o", "messages": [{"role":"user"
--- error_code: 400
--- response_body_like: ^\{"error":\{"message":"We could not parse the JSON body of your request: .*premature EOF.*","type":"invalid_request_error","param":null,"code":null\}\}$



=== TEST 3: an empty body
--- raw_request eval
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body_like: "message":"The request body is empty



=== TEST 4: a body that is not an object
--- request
POST /v1/chat/completions
[{"model":"gpt-4o"}]
--- error_code: 400
--- response_body chomp
{"error":{"message":"The request body must be a JSON object, not an array.","type":"invalid_request_error","param":null,"code":null}}



=== TEST 5: model missing
--- request
POST /v1/chat/completions
{"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body chomp
{"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":"model","code":"missing_required_parameter"}}



=== TEST 6: model of the wrong type
--- request
POST /v1/chat/completions
{"model":["gpt-4o"],"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Invalid type for 'model': got an array.","type":"invalid_request_error","param":"model","code":null}}



=== TEST 7: model empty
--- request
POST /v1/chat/completions
{"model":"","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "param":"model"



=== TEST 8: messages missing
--- request
POST /v1/chat/completions
{"model":"gpt-4o"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Missing required parameter: 'messages'.","type":"invalid_request_error","param":"messages","code":"missing_required_parameter"}}



=== TEST 9: messages not an array
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":"hello"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Invalid type for 'messages': got a string.","type":"invalid_request_error","param":"messages","code":null}}



=== TEST 10: a message that is not an object
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"},"hello"]}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Invalid type for 'messages[1]': expected an object, but got a string.","type":"invalid_request_error","param":"messages","code":null}}



=== TEST 11: no messages
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[]}
--- error_code: 400
--- response_body_like: "message":"'messages' must contain at least one message"



=== TEST 12: stream of the wrong type
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":"yes","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "param":"stream"



=== TEST 13: max_tokens out of range
--- request
POST /v1/chat/completions
{"model":"gpt-4o","max_tokens":-5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "message":"Invalid 'max_tokens': expected an integer from 1 to 1000000000, got -5\.","type":"invalid_request_error","param":"max_tokens"



=== TEST 14: a huge max_tokens is refused, not wrapped
--- request
POST /v1/chat/completions
{"model":"gpt-4o","max_completion_tokens":99999999999999999999999,"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "param":"max_completion_tokens"



=== TEST 14b: a max_tokens too long to quote is quoted cut, with a mark
--- request
POST /v1/chat/completions
{"model":"gpt-4o","max_tokens":1234567890123456789012345678901234567890,"messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body_like: "message":"Invalid 'max_tokens': expected an integer from 1 to 1000000000, got 12345678901234567890123456789012\.\.\.\.","type":"invalid_request_error","param":"max_tokens"



=== TEST 15: null optional parameters are accepted
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":null,"max_tokens":null,"user":null,"tools":null,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 16: a duplicate model key is refused
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"model":"other"}
--- error_code: 400
--- response_body chomp
{"error":{"message":"Duplicate key 'model' in the request body.","type":"invalid_request_error","param":"model","code":null}}



=== TEST 17: duplicate keys the gateway does not read are passed on
--- request
POST /v1/chat/completions
{"model":"gpt-4o","top_p":1,"top_p":0.5,"messages":[{"role":"user","content":"x","name":"a","name":"b"}]}
--- response_body_like: "object":"chat.completion"



=== TEST 18: nesting beyond 128 levels
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"metadata":'
. ('[' x 10000) . (']' x 10000) . '}'
--- error_code: 400
--- response_body chomp
{"error":{"message":"The request body is nested more than 128 levels deep.","type":"invalid_request_error","param":null,"code":null}}



=== TEST 19: invalid UTF-8 in a string
--- raw_request eval
my $body = qq({"model":"gpt-4o","messages":[{"role":"user","content":"\xff\xfe"}]});
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Length: " . length($body) . "\r\n\r\n" . $body
--- error_code: 400
--- response_body_like: invalid bytes in UTF8 string



=== TEST 20: trailing garbage after the object
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]} {"second":1}
--- error_code: 400
--- response_body_like: trailing garbage



=== TEST 21: a document followed by an unterminated string is refused
yajl let this through; the body is now read by a scanner as strict as
RFC 8259.
--- raw_request eval
my $body = qq({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]} "abc);
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Length: " . length($body) . "\r\n\r\n" . $body
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: bytes after the document (at byte 63).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 22: a vertical tab is not white space
--- raw_request eval
my $body = qq({"model":"gpt-4o",\x0b"messages":[{"role":"user","content":"x"}]});
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Length: " . length($body) . "\r\n\r\n" . $body
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: an object member without a quoted name (at byte 19).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 23: a form feed is not white space
--- raw_request eval
my $body = qq(\x0c{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]});
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Length: " . length($body) . "\r\n\r\n" . $body
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: an unexpected character (at byte 1).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 24: an unknown model
--- request
POST /v1/chat/completions
{"model":"gpt-5-nonexistent","messages":[{"role":"user","content":"x"}]}
--- error_code: 404
--- response_body chomp
{"error":{"message":"The model `gpt-5-nonexistent` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}



=== TEST 25: the wrong method
--- request
GET /v1/chat/completions
--- error_code: 405
--- response_body chomp
{"error":{"message":"Method GET is not allowed for /v1/chat/completions; use POST.","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}



=== TEST 26: an unknown endpoint
--- request
POST /v1/completions-of-some-kind
{}
--- error_code: 404
--- response_body chomp
{"error":{"message":"Unknown request URL: POST /v1/completions-of-some-kind.","type":"invalid_request_error","param":null,"code":"unknown_url"}}



=== TEST 27: a body over client_max_body_size (Content-Length)
--- config
    location /v1/ {
        client_max_body_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"gpt-4o","messages":[{"role":"user","content":"' . ('a' x 2000) . '"}]}'
--- error_code: 413
--- response_body chomp
{"error":{"message":"The request body is larger than the gateway accepts (1024 bytes).","type":"invalid_request_error","param":null,"code":"request_too_large"}}



=== TEST 28: a chunked body over client_max_body_size
--- config
    location /v1/ {
        client_max_body_size 1k;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /v1/chat/completions\n"
. LLM::Fixtures::chunked('{"model":"gpt-4o","messages":[{"role":"user",'
                         . '"content":"' . ('a' x 2000) . '"}]}')
--- error_code: 413
--- response_body_like: "code":"request_too_large"



=== TEST 29: an unreachable provider gives 502 JSON at once
--- http_config
    llm_provider dead {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
        key sk-dead-secret;
    }
    llm_route gpt-4o {
        target dead;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- timeout: 5
--- error_code: 502
--- response_body chomp
{"error":{"message":"Model `gpt-4o` failed after 1 attempt; the last attempt, to provider `dead`, ended with status 502.","type":"server_error","param":null,"code":"upstream_error"}}
--- error_log
connect() failed (111: Connection refused)
--- no_error_log
sk-dead-secret



=== TEST 30: a provider that does not answer in time gives 504 JSON
--- http_config
    llm_provider slow {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/delay=3000/v1;
    }
    llm_route gpt-4o {
        target slow;
    }
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
        proxy_read_timeout 200ms;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- timeout: 5
--- error_code: 504
--- response_body_like: ^\{"error":\{"message":"Model `gpt-4o` failed after 1 attempt; the last attempt, to provider `slow`, ended with status 504\.","type":"server_error","param":null,"code":"upstream_timeout"\}\}$
--- error_log
upstream timed out



=== TEST 31: a provider's own error passes through with its status
--- http_config
    llm_provider picky {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status=400/v1;
    }
    llm_route gpt-4o {
        target picky;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 400
--- response_body chomp
{"error":{"message":"mock provider error 400","type":"invalid_request_error","param":null,"code":null}}



=== TEST 32: a route whose providers are all disabled answers 503
--- http_config
    llm_provider absent {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key env:LLM_TEST_SURELY_UNSET_VARIABLE optional;
    }
    llm_route gpt-4o {
        target absent;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_body chomp
{"error":{"message":"No provider is available for model `gpt-4o`.","type":"server_error","param":"model","code":"no_provider_available"}}
--- error_log
llm_provider "absent" is disabled: environment variable "LLM_TEST_SURELY_UNSET_VARIABLE" is not set



=== TEST 33: nginx's own errors in a gateway location are JSON too
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;

        if ($http_x_block) {
            return 403;
        }
    }
--- more_headers
X-Block: 1
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 403
--- response_body chomp
{"error":{"message":"The gateway answered HTTP 403.","type":"permission_error","param":null,"code":null}}



=== TEST 34: HEAD of an error has the headers and no body
--- request
HEAD /v1/chat/completions
--- error_code: 405
--- response_body chomp



=== TEST 35: a provider's HTML error page becomes OpenAI-shaped JSON
--- http_config
    llm_provider cdn {
        url http://127.0.0.1:$TEST_NGINX_MOCK2_PORT/v1;
    }
    llm_route gpt-4o {
        target cdn;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK2_PORT;
        location / {
            add_header Retry-After 12 always;
            default_type text/html;
            return 503 "<html><body>Service Temporarily Unavailable</body></html>";
        }
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_headers
Content-Type: application/json
Retry-After: 12
--- response_body chomp
{"error":{"message":"Provider `cdn` answered HTTP 503 without a JSON error.","type":"server_error","param":null,"code":"upstream_error"}}



=== TEST 36: a compressed body is refused with 415, before it is read
--- more_headers
Content-Encoding: gzip
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 415
--- response_body chomp
{"error":{"message":"Content-Encoding `gzip` is not supported: send the request body uncompressed.","type":"invalid_request_error","param":null,"code":"unsupported_content_encoding"}}



=== TEST 37: at Anthropic's door, in Anthropic's shape
--- more_headers
Content-Encoding: br
--- request
POST /v1/messages
{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}]}
--- error_code: 415
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"Content-Encoding `br` is not supported: send the request body uncompressed."}}



=== TEST 38: Content-Encoding identity is no encoding
--- more_headers
Content-Encoding: Identity
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 200
--- response_body_like: "object":"chat\.completion"



=== TEST 39: browsers: a CORS preflight is the location's own, before the gateway
--- config
    location /v1/ {
        if ($request_method = OPTIONS) {
            add_header Access-Control-Allow-Origin  "https://app.example";
            add_header Access-Control-Allow-Headers "Authorization, Content-Type";
            return 204;
        }
        add_header Access-Control-Allow-Origin "https://app.example" always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request
OPTIONS /v1/chat/completions
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Headers: Authorization, Content-Type
!Content-Type



=== TEST 40: and the answers carry the origin, errors too
--- config
    location /v1/ {
        add_header Access-Control-Allow-Origin "https://app.example" always;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}',
 "POST /v1/chat/completions\n"
 . '{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}']
--- error_code eval
[200, 404]
--- response_headers eval
["Access-Control-Allow-Origin: https://app.example",
 "Access-Control-Allow-Origin: https://app.example"]



=== TEST 41: a body that begins with a byte order mark is told so
--- request eval
qq(POST /v1/chat/completions\n\xef\xbb\xbf{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})
--- error_code: 400
--- response_body chomp
{"error":{"message":"We could not parse the JSON body of your request: it begins with a UTF-8 byte order mark (EF BB BF), which JSON does not allow: send the body without it (at byte 0).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 42: what is not UTF-8 by RFC 3629 is refused: overlong forms, surrogates, above U+10FFFF, leads C0, C1, F5
--- request eval
[map { qq(POST /v1/chat/completions\n{"model":"gpt-4o","messages":[{"role":"user","content":"$_"}]}) }
 "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\x80",
 "\xf4\x90\x80\x80", "\xf5\x80\x80\x80"]
--- error_code eval
[(400) x 7]
--- response_headers eval
[("Content-Type: application/json") x 7]
--- response_body eval
[map { qq({"error":{"message":"We could not parse the JSON body of your request: invalid UTF-8 in a string (at byte $_).","type":"invalid_request_error","param":null,"code":null}}) }
 57, 57, 58, 58, 58, 58, 57]



=== TEST 43: the edges of every range are UTF-8, and pass
--- request eval
qq(POST /v1/chat/completions\n{"model":"gpt-4o","messages":[{"role":"user","content":"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"}]})
--- error_code: 200
--- response_body_like: "object":"chat\.completion"



=== TEST 44: what the gateway quotes in its own JSON is UTF-8: a byte that is not becomes U+FFFD
--- request
GET /v1/models/%ff%c3%a9%e2%82
--- error_code: 404
--- response_body eval
qq({"error":{"message":"The model `\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}})



=== TEST 45: a body too large by its Content-Length at Anthropic's door: refused in Anthropic's shape
--- raw_request eval
"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40000000\r\nConnection: close\r\n\r\n"
--- timeout: 10
--- error_code: 413
--- response_body_like: ^\{"type":"error","error":\{"type":"request_too_large","message":"The request body is larger than the gateway accepts \(\d+ bytes\)\."\}\}$



=== TEST 46: a chunked body nginx cannot read: the 400 says what it is
--- raw_request eval
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
--- error_code: 400
--- response_body chomp
{"error":{"message":"The request is not valid HTTP: its request line, a header or its chunked body could not be read.","type":"invalid_request_error","param":null,"code":null}}



=== TEST 47: in a server with a gateway, a request line nginx cannot read: the 400 in JSON too
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- raw_request eval
"GET /v1/models bad HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body chomp
{"error":{"message":"The request is not valid HTTP: its request line, a header or its chunked body could not be read.","type":"invalid_request_error","param":null,"code":null}}



=== TEST 48: in a server with a gateway, headers larger than nginx's buffers: the 400 in JSON too
--- config
    large_client_header_buffers 2 1k;
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
--- raw_request eval
"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " . ('a' x 2000) . "\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body_like: ^\{"error":\{"message":"[^"]+","type":"invalid_request_error","param":null,"code":null\}\}$



=== TEST 49: in a server with a gateway, a URL no location takes: a 404 in JSON, as OpenAI's
--- http_config
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    llm_route gpt-4o {
        target mock;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        server_name gateway.test;
        location /v1/ {
            llm_gateway;
            include $TEST_NGINX_LLM_PARAMS;
        }
    }
--- raw_request eval
"GET /nothing/here HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n"
--- error_code: 404
--- response_body chomp
{"error":{"message":"Invalid URL (GET /nothing/here).","type":"invalid_request_error","param":null,"code":null}}



=== TEST 50: a location of the same server that is not a gateway keeps nginx's own pages
--- config
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
    location /site/ {
        return 404;
    }
--- request
GET /site/page
--- error_code: 404
--- response_headers
Content-Type: text/html
--- response_body_like: <center><h1>404 Not Found</h1></center>
