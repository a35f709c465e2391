
/*
 * Provider dialects: how a request is built for a provider's API and how
 * its responses are read. One ngx_http_llm_<dialect>.c file per dialect.
 */


#ifndef _NGX_HTTP_LLM_DIALECT_H_INCLUDED_
#define _NGX_HTTP_LLM_DIALECT_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_sse.h"


struct ngx_http_llm_dialect_s {
    ngx_str_t      name;

    /*
     * configuration time: validate the provider and precompute the
     * headers every attempt sends (provider->headers)
     */
    char        *(*init_provider)(ngx_conf_t *cf, ngx_http_llm_provider_t *p);

    /*
     * one attempt: set ctx->upstream_url, add per-attempt headers and
     * install the request body for the target in ctx->target
     */
    ngx_int_t    (*create_request)(ngx_http_request_t *r,
                                   ngx_http_llm_ctx_t *ctx);

    /* names of headers added per attempt, for the slot check */
    char         **dynamic_headers;

    /*
     * a successful response that is not a stream: its bytes as they come
     * (p, len), then last; read to account for usage
     */
    ngx_int_t    (*response_json)(ngx_http_request_t *r,
                                  ngx_http_llm_ctx_t *ctx, u_char *p,
                                  size_t len, ngx_uint_t last);

    /* one event of a stream: NGX_OK passes it on, NGX_DECLINED drops it */
    ngx_int_t    (*response_event)(ngx_http_request_t *r,
                                   ngx_http_llm_ctx_t *ctx,
                                   ngx_http_llm_sse_event_t *ev);
};


extern ngx_http_llm_dialect_t  ngx_http_llm_openai_dialect;


#endif /* _NGX_HTTP_LLM_DIALECT_H_INCLUDED_ */
