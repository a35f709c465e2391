
/*
 * The precontent phase handler: a request, then each attempt
 * (ngx_http_llm_handler.c).
 */


#ifndef _NGX_HTTP_LLM_HANDLER_H_INCLUDED_
#define _NGX_HTTP_LLM_HANDLER_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_handler(ngx_http_request_t *r);
/* the next attempt, to ctx->target's route: a phase handler's rc */
ngx_int_t ngx_http_llm_attempt(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
/* which API the request's URI asks for */
ngx_http_llm_endpoint_e ngx_http_llm_endpoint(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LLM_HANDLER_H_INCLUDED_ */
