
/*
 * Client request bodies, parsed once (ngx_http_llm_body.c).
 */


#ifndef _NGX_HTTP_LLM_BODY_H_INCLUDED_
#define _NGX_HTTP_LLM_BODY_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_read_segments(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_body_digest(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_parse_chat(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_problem_t *problem);

/* a 400 with this message, param and code: returns NGX_DECLINED */
ngx_int_t ngx_http_llm_problem(ngx_http_llm_problem_t *problem,
    const char *param, const char *code, const char *fmt, ...);


#endif /* _NGX_HTTP_LLM_BODY_H_INCLUDED_ */
