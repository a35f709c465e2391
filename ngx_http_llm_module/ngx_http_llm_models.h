
/*
 * GET /v1/models (ngx_http_llm_models.c).
 */


#ifndef _NGX_HTTP_LLM_MODELS_H_INCLUDED_
#define _NGX_HTTP_LLM_MODELS_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_init_models(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
ngx_int_t ngx_http_llm_send_models(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


#endif /* _NGX_HTTP_LLM_MODELS_H_INCLUDED_ */
