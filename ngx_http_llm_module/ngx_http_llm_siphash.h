
/*
 * SipHash-2-4 with a 128-bit output (Aumasson and Bernstein), a keyed
 * PRF: the tags of the worker's memo of authenticated gateway keys
 * (ngx_http_llm_keys.c). A pure function: a test harness links it alone.
 */


#ifndef _NGX_HTTP_LLM_SIPHASH_H_INCLUDED_
#define _NGX_HTTP_LLM_SIPHASH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * key: the 16 bytes of the key as two little-endian words; out[0] and
 * out[1]: the two halves of the tag, as the reference implementation
 * writes them little-endian one after the other
 */
void ngx_http_llm_siphash128(const uint64_t key[2], const u_char *data,
    size_t len, uint64_t out[2]);


#endif /* _NGX_HTTP_LLM_SIPHASH_H_INCLUDED_ */
