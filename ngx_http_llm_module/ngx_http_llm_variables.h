
/*
 * Variables for proxy_pass and for logs (ngx_http_llm_variables.c).
 */


#ifndef _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_add_variables(ngx_conf_t *cf);
void ngx_http_llm_unmute_debug(ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_collect_header_slots(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);


#endif /* _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_ */
