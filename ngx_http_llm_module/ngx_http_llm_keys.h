
/*
 * Gateway keys, teams and organisations (ngx_http_llm_keys.c).
 */


#ifndef _NGX_HTTP_LLM_KEYS_H_INCLUDED_
#define _NGX_HTTP_LLM_KEYS_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_limits.h"


char *ngx_http_llm_entity_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_keys_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_llm_init_keys(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
ngx_int_t ngx_http_llm_keys_init_process(ngx_cycle_t *cycle,
    ngx_http_llm_main_conf_t *lmcf);
ngx_int_t ngx_http_llm_authenticate(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_model_allowed(ngx_http_llm_entity_t *key,
    ngx_str_t *model);

/* values are comma-separated lists (keys files, Redis) */
#define NGX_HTTP_LLM_ATTR_LISTS    0x01
/* unknown attributes are ignored (Redis: later versions' fields) */
#define NGX_HTTP_LLM_ATTR_LENIENT  0x02

/*
 * an attribute of a key, team or org, from any source: NGX_OK;
 * NGX_DECLINED, an unknown one ignored; NGX_ERROR, why is in err
 */
ngx_int_t ngx_http_llm_entity_attr_parse(ngx_pool_t *pool,
    ngx_http_llm_entity_t *e, ngx_str_t *name, ngx_str_t *values,
    ngx_uint_t n, ngx_uint_t flags, u_char *err, size_t len);


#endif /* _NGX_HTTP_LLM_KEYS_H_INCLUDED_ */
