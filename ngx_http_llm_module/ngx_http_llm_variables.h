
/*
 * Variables for proxy_pass and for logs (ngx_http_llm_variables.c).
 */


#ifndef _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_


#include "ngx_http_llm_module.h"


ngx_int_t ngx_http_llm_add_variables(ngx_conf_t *cf);
/* whether the configuration reads $name somewhere (it has an index) */
ngx_uint_t ngx_http_llm_variable_read(ngx_conf_t *cf, ngx_str_t *name);


/* a value read anew each time it is asked for; none without data */

static ngx_inline ngx_int_t
ngx_http_llm_variable_set(ngx_http_variable_value_t *v, ngx_str_t *value)
{
    if (value->data == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value->data;
    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


#endif /* _NGX_HTTP_LLM_VARIABLES_H_INCLUDED_ */
