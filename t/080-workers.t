# A master process with two workers: completions, streams and failovers
# work whichever worker takes the connection.

use Test::Nginx::Socket 'no_plan';
use LLM::Fixtures;

master_on();
workers(2);
repeat_each(5);
no_shuffle();

LLM::Fixtures::defaults(
    config => $LLM::Fixtures::GATEWAY_CONFIG,
    http_config => <<'CONF',
    llm_provider down {
        url http://127.0.0.1:$TEST_NGINX_DEAD_PORT/v1;
    }
    llm_provider mock {
        url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        key sk-workers;
    }
    llm_route m {
        target down;
        target mock m-served;
    }
CONF
);

run_tests();

__DATA__

=== TEST 1: a completion with a failover
--- request
POST /v1/chat/completions
{"model":"m","messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"m-served"



=== TEST 2: a stream
--- request
POST /v1/chat/completions
{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}
--- response_body_like: "model":"m-served".*data: \[DONE\]\n\n$



=== TEST 3: the model list
--- request
GET /v1/models
--- response_body_like: "id":"m"
