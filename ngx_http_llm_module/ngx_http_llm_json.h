
/*
 * JSON output helpers: string escaping for bodies the module writes.
 */


#ifndef _NGX_HTTP_LLM_JSON_H_INCLUDED_
#define _NGX_HTTP_LLM_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* length of s once escaped for a JSON string, without the quotes */
size_t ngx_http_llm_json_escaped_len(u_char *s, size_t len);

/* writes s escaped (no quotes) at dst, returns the end */
u_char *ngx_http_llm_json_escape(u_char *dst, u_char *s, size_t len);

/* a quoted JSON string of src, allocated from pool */
ngx_int_t ngx_http_llm_json_quote(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *dst);


#endif /* _NGX_HTTP_LLM_JSON_H_INCLUDED_ */
