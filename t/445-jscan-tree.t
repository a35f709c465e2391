# JSON trees from the scanner's tokens (ngx_http_llm_tree_jscan(), long
# values whole from the scanner's sink) against trees from yajl's
# callbacks, as the body's tree and providers' answers were built: the
# same tree and the same memory charged to llm_request_memory's cap, for
# documents cut at every offset and a byte at a time, values longer than
# the scanner's 256 first bytes with escapes, UTF-8 and surrogate pairs
# across every cut, long keys and numbers, duplicate keys, 1,024 levels.
# fuzz/fuzz_jtree.c checks the same on generated documents.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use LLM::Unit qw(run_harness);

run_harness(name => 'jscan_tree', min => 180, libs => '-lyajl',
            sources => ['t/unit/jscan_tree.c', 't/unit/pool_malloc.c',
                        'ngx_http_llm_module/ngx_http_llm_jscan.c',
                        'ngx_http_llm_module/ngx_http_llm_json_tree.c',
                        'ngx_http_llm_module/ngx_http_llm_json.c']);
