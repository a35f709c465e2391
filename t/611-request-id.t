# $llm_request_id: 32 hex digits, the same however often a request reads
# it, another for every request; one worker's ids share their first 16
# digits (drawn once) and count up in the last 16.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

no_shuffle();

run_tests();

__DATA__

=== TEST 1: read twice by a request, then by a subrequest
--- config
    location = /ids {
        echo $llm_request_id;
        echo $llm_request_id;
        echo_location /id;
    }
    location = /id {
        echo $llm_request_id;
    }
--- request
GET /ids
--- response_body_like eval
qr/\A([0-9a-f]{16})([0-9a-f]{16})\n\1\2\n\1(?!\2)[0-9a-f]{16}\n\z/



=== TEST 2: in the access log
--- http_config
    log_format ids 'id=$llm_request_id';
--- config
    location = /t {
        access_log logs/access.log ids;
        return 204;
    }
--- request
GET /t
--- error_code: 204
--- access_log eval
qr/^id=[0-9a-f]{32}$/m
