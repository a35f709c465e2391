
/*
 * llm_provider blocks: where a provider is and how to reach it
 * (ngx_http_llm_provider.c).
 */


#ifndef _NGX_HTTP_LLM_PROVIDER_H_INCLUDED_
#define _NGX_HTTP_LLM_PROVIDER_H_INCLUDED_


#include "ngx_http_llm_module.h"


char *ngx_http_llm_provider_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_llm_provider_t *ngx_http_llm_find_provider(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name);
ngx_int_t ngx_http_llm_check_providers(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
ngx_uint_t ngx_http_llm_secret_header(ngx_str_t *name);
ngx_str_t *ngx_http_llm_provider_option(ngx_http_llm_provider_t *p,
    char *name);
/* for the dialects' init_provider: the chat URL, and the key's header */
ngx_int_t ngx_http_llm_provider_chat_url(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, char *suffix);
char *ngx_http_llm_provider_key_header(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, char *name, char *shown, char *prefix);

/* what a provider's errors must not show: its key, and other credentials */
ngx_int_t ngx_http_llm_provider_secret(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *secret);
ngx_uint_t ngx_http_llm_provider_mask(ngx_http_llm_provider_t *p, u_char *s,
    size_t len);
ngx_int_t ngx_http_llm_provider_masked(ngx_pool_t *pool,
    ngx_http_llm_provider_t *p, ngx_str_t *s);


#endif /* _NGX_HTTP_LLM_PROVIDER_H_INCLUDED_ */
