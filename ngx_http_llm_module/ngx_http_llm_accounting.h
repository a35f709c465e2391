
/*
 * Accounting: a complete response settled, recorded, counted
 * (ngx_http_llm_accounting.c).
 */


#ifndef _NGX_HTTP_LLM_ACCOUNTING_H_INCLUDED_
#define _NGX_HTTP_LLM_ACCOUNTING_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_log_handler(ngx_http_request_t *r);
void ngx_http_llm_complete(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx);
void ngx_http_llm_account(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx);
uint64_t ngx_http_llm_usec(void);


#endif /* _NGX_HTTP_LLM_ACCOUNTING_H_INCLUDED_ */
