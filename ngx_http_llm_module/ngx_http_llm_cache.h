
/*
 * Response caching on nginx's proxy cache: the key is a digest of a
 * canonical form of the request (computed while the body is parsed), with
 * the tenant, the route and the target's dialect; the module decides
 * which requests may be cached and keeps incomplete answers out.
 */


#ifndef _NGX_HTTP_LLM_CACHE_H_INCLUDED_
#define _NGX_HTTP_LLM_CACHE_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json_tree.h"


typedef enum {
    NGX_HTTP_LLM_CACHE_OFF = 0,
    NGX_HTTP_LLM_CACHE_DETERMINISTIC,
    NGX_HTTP_LLM_CACHE_ON
} ngx_http_llm_cache_mode_e;


typedef enum {
    NGX_HTTP_LLM_SCOPE_TEAM = 0,
    NGX_HTTP_LLM_SCOPE_KEY,
    NGX_HTTP_LLM_SCOPE_GLOBAL
} ngx_http_llm_cache_scope_e;


/* SHA-256 through the process's one context: no lookup, no allocation */
ngx_int_t ngx_http_llm_sha256(const u_char *data, size_t len,
    u_char *digest);

/* the canonical form of a JSON document, built event by event */
typedef struct ngx_http_llm_digest_s  ngx_http_llm_digest_t;


/* what it keeps is charged to cap: its widest object's member digests */
ngx_http_llm_digest_t *ngx_http_llm_digest_create(ngx_pool_t *pool,
    ngx_http_llm_memcap_t *cap);
ngx_int_t ngx_http_llm_digest_open(ngx_http_llm_digest_t *d, ngx_uint_t map);
ngx_int_t ngx_http_llm_digest_close(ngx_http_llm_digest_t *d);
ngx_int_t ngx_http_llm_digest_key(ngx_http_llm_digest_t *d, u_char *key,
    size_t len);
ngx_int_t ngx_http_llm_digest_scalar(ngx_http_llm_digest_t *d, u_char type,
    u_char *value, size_t len);
void ngx_http_llm_digest_result(ngx_http_llm_digest_t *d, ngx_str_t *form);
/* the scanner's handler (with a sink), its data the digest */
ngx_int_t ngx_http_llm_digest_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
/* the same token to d, from a scanner whose data is another's */
ngx_int_t ngx_http_llm_digest_feed(ngx_http_llm_digest_t *d,
    ngx_http_llm_jscan_t *js, ngx_uint_t token);

/* the request's cache decision, once it is parsed and routed */
void ngx_http_llm_cache_decide(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* the response: a hit, and whether it may be stored */
void ngx_http_llm_cache_response(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
void ngx_http_llm_cache_complete(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t complete);

ngx_int_t ngx_http_llm_cache_variables(ngx_conf_t *cf);

char *ngx_http_llm_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_cache_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_LLM_CACHE_H_INCLUDED_ */
