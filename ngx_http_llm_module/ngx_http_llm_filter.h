
/*
 * Response filters of gateway locations (ngx_http_llm_filter.c).
 */


#ifndef _NGX_HTTP_LLM_FILTER_H_INCLUDED_
#define _NGX_HTTP_LLM_FILTER_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llm_response_headers(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


#endif /* _NGX_HTTP_LLM_FILTER_H_INCLUDED_ */
