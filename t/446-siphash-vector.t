# SipHash-2-4-128 (ngx_http_llm_siphash.c, the tags of the worker's memo
# of authenticated keys) against the reference test vectors: key 00..0f,
# messages 00 01 .. of lengths 0 to 17 and 63 (t/unit/siphash_vector.c).
# Built twice: with the word loads of little-endian machines, and with
# the bytes put together one at a time, as other machines do.
#
# A script: it compiles and runs a C harness (no nginx).

use strict;
use warnings;

use LLM::Unit qw(run_harness);

run_harness(name => 'siphash_vector', min => 21, libs => '',
            builds => [['', ''],
                       [' -DNGX_HAVE_LITTLE_ENDIAN=0', ' (bytes)']],
            sources => ['t/unit/siphash_vector.c', 't/unit/check.c',
                        'ngx_http_llm_module/ngx_http_llm_siphash.c']);
