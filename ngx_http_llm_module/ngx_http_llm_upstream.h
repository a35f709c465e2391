
/*
 * The module's upstream block, "llm_upstream": "proxy_pass
 * https://llm_upstream;" hands each attempt to its provider's peers
 * (ngx_http_llm_upstream.c).
 */


#ifndef _NGX_HTTP_LLM_UPSTREAM_H_INCLUDED_
#define _NGX_HTTP_LLM_UPSTREAM_H_INCLUDED_


#include "ngx_http_llm_module.h"


/* at the http block's start, before any proxy_pass names it */
ngx_int_t ngx_http_llm_upstream_add(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
/* once every upstream block is known: each provider's peers */
ngx_int_t ngx_http_llm_upstream_providers(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
/* whether the upstream proxy_pass uses is llm_upstream */
ngx_uint_t ngx_http_llm_upstream_fixed(ngx_http_upstream_t *u);
/*
 * while proxy builds the request: a provider named by DNS is resolved
 * as a URL in a variable is, before nginx looks for peers
 */
void ngx_http_llm_upstream_resolve(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


#endif /* _NGX_HTTP_LLM_UPSTREAM_H_INCLUDED_ */
