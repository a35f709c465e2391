
/*
 * Errors the client sees: OpenAI-shaped JSON,
 * {"error":{"message":...,"type":...,"param":...,"code":...}}, or for
 * clients of Anthropic's door Anthropic's, {"type":"error","error":...}.
 */


#ifndef _NGX_HTTP_LLM_ERROR_H_INCLUDED_
#define _NGX_HTTP_LLM_ERROR_H_INCLUDED_


#include "ngx_http_llm_module.h"


/* the error body for a status; code and param may be NULL (JSON null) */
ngx_int_t ngx_http_llm_error_json(ngx_pool_t *pool, ngx_uint_t status,
    const char *code, const char *param, ngx_str_t *message, ngx_str_t *out);

/*
 * the error body in the client's API: OpenAI's, or Anthropic's for
 * clients of the /v1/messages door
 */
ngx_int_t ngx_http_llm_client_error_json(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *param,
    ngx_str_t *message, ngx_str_t *out);

/* sends a JSON body the module produced */
ngx_int_t ngx_http_llm_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *json);

/* sends a body of that type the module produced */
ngx_int_t ngx_http_llm_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body);

/*
 * sends an error and finalizes the request; for phase handlers, which
 * return what this returns (NGX_DONE)
 */
ngx_int_t ngx_http_llm_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *param, const char *fmt, ...);


/*
 * bytes a provider or Redis sent, made safe for the error log: control
 * characters, '\\' and non-ASCII bytes as \\xHH, at most size - 1 bytes
 * of buf (then "..."); returns the end of what was written
 */
u_char *ngx_http_llm_log_safe(u_char *buf, size_t size, u_char *src,
    size_t len);

/* room for n bytes of input, escaped */
#define NGX_HTTP_LLM_LOG_SAFE_SIZE(n)  (4 * (n) + 4)


#endif /* _NGX_HTTP_LLM_ERROR_H_INCLUDED_ */
