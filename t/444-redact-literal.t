# The literal prefilter of rules (ngx_http_llm_redact_literal.c): a text
# without what every match of a rule must contain is no match, without a
# PCRE2 run. A C harness (t/unit/redact_literal.c) checks the literals
# found in patterns (quantified characters and groups, classes with ")"
# and "]", escapes, k and s caseless in UTF mode, what must be given up),
# and compares every rule's leftmost match from every start offset with
# the prefilter and without it, alone and as a policy, plain, caseless
# and in UTF mode, on texts of the patterns' words with case flips,
# KELVIN SIGN, LONG S and invisible characters; and the fast searches for
# invisible characters, their removal and the UTF-8 check
# (ngx_http_llm_redact.c) against plain loops at every length and
# alignment.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use LLM::Unit qw(run_harness);

run_harness(name => 'redact_literal', min => 100, libs => '-lpcre2-8',
            sources => ['t/unit/redact_literal.c', 't/unit/pool_malloc.c',
                        't/unit/check.c',
                        'ngx_http_llm_module/ngx_http_llm_redact.c',
                        'ngx_http_llm_module/ngx_http_llm_redact_literal.c']);
