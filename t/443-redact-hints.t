# The built-in detectors' hints (ngx_http_llm_guard_detect.c): a whole
# text is searched for the byte every match of a detector has near its
# start before the pattern runs. A C harness (t/unit/redact_hints.c)
# compares every detector's leftmost match from every start offset, with
# the hint and without it, plain, caseless and in UTF mode, on texts made
# of real matches, near misses and multi-byte characters; and checks
# that a text in UTF mode, validated once for all rules, is refused when
# invalid as PCRE2 refuses it.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use LLM::Unit qw(run_harness);

run_harness(name => 'redact_hints', min => 150, libs => '-lpcre2-8',
            sources => ['t/unit/redact_hints.c', 't/unit/pool_malloc.c',
                        't/unit/check.c',
                        'ngx_http_llm_module/ngx_http_llm_redact.c',
                        'ngx_http_llm_module/ngx_http_llm_redact_literal.c',
                        'ngx_http_llm_module/ngx_http_llm_guard_detect.c']);
