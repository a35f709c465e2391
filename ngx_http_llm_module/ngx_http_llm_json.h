
/*
 * Output helpers: string escaping for the JSON bodies the module writes,
 * and a growing text buffer for the reports (status, metrics) whose size
 * is not known in advance.
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


typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *data;
    size_t                         len;
    size_t                         size;
    ngx_uint_t                     failed;      /* memory ran out */
} ngx_http_llm_text_t;


ngx_int_t ngx_http_llm_text_init(ngx_http_llm_text_t *t, ngx_pool_t *pool,
    size_t size);

/* appends ngx_sprintf() formatted text */
void ngx_http_llm_text(ngx_http_llm_text_t *t, const char *fmt, ...);

/* appends s as a quoted JSON string (also a valid Prometheus label value) */
void ngx_http_llm_text_str(ngx_http_llm_text_t *t, ngx_str_t *s);


#endif /* _NGX_HTTP_LLM_JSON_H_INCLUDED_ */
