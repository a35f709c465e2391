
/*
 * llm_route blocks: model names to provider targets (ngx_http_llm_route.c).
 */


#ifndef _NGX_HTTP_LLM_ROUTE_H_INCLUDED_
#define _NGX_HTTP_LLM_ROUTE_H_INCLUDED_


#include "ngx_http_llm_module.h"


char *ngx_http_llm_route_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_llm_init_routes(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
ngx_http_llm_route_t *ngx_http_llm_find_route(ngx_http_llm_main_conf_t *lmcf,
    ngx_str_t *model, ngx_str_t *capture);
ngx_int_t ngx_http_llm_model_edit(ngx_pool_t *pool, ngx_str_t *model,
    ngx_str_t *edit);
ngx_int_t ngx_http_llm_target_model(ngx_pool_t *pool,
    ngx_http_llm_target_t *t, ngx_str_t *client_model, ngx_str_t *capture,
    ngx_str_t *out);


#endif /* _NGX_HTTP_LLM_ROUTE_H_INCLUDED_ */
