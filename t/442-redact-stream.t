# Streamed redaction (ngx_http_llm_redact.c), the engine of guardrails'
# "redact" on streams: compiled with a harness (t/unit/redact_stream.c)
# that feeds texts whole, cut in two at every offset and in pieces of 1
# to 7 bytes, and checks that what goes out is at every moment a prefix of
# the whole text's redaction and in the end all of it; that text which
# cannot become a match is not held; that held text past the cap never
# goes out; that bad rules are refused with their number and offset.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use LLM::Unit qw(run_harness);

run_harness(name => 'redact_stream', min => 40, libs => '-lpcre2-8',
            sources => ['t/unit/redact_stream.c', 't/unit/pool_malloc.c',
                        'ngx_http_llm_module/ngx_http_llm_redact.c',
                        'ngx_http_llm_module/ngx_http_llm_redact_literal.c']);
