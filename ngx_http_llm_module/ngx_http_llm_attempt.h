
/*
 * One attempt's upstream request, as proxy_pass consumes it
 * (ngx_http_llm_attempt.c).
 */


#ifndef _NGX_HTTP_LLM_ATTEMPT_H_INCLUDED_
#define _NGX_HTTP_LLM_ATTEMPT_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json_tree.h"


ngx_int_t ngx_http_llm_prepare_attempt(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
void ngx_http_llm_attach_writer(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
void ngx_http_llm_restore_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_splice_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_edit_t *edits, ngx_uint_t nedits);
/*
 * whether a model name may stand in a provider's URL as a path segment:
 * letters, digits, "-", "_", "."; never "." or ".."; nothing that a URL
 * reads otherwise ("/", "?", "#", ":", "%", spaces). NGX_DECLINED if not.
 */
ngx_int_t ngx_http_llm_model_segment(ngx_str_t *model);
ngx_int_t ngx_http_llm_add_header(ngx_http_llm_ctx_t *ctx, char *name,
    ngx_str_t *value, ngx_uint_t secret);
/* "name: value\r\n" for each of n headers with a value: its size, it */
size_t ngx_http_llm_headers_size(ngx_http_llm_header_t *h, ngx_uint_t n);
u_char *ngx_http_llm_write_headers(u_char *p, ngx_http_llm_header_t *h,
    ngx_uint_t n);
ngx_int_t ngx_http_llm_set_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    u_char *data, size_t len);
/* the client's tree written again with the target's model (a guard
   redacted its texts), in the client's own API */
ngx_int_t ngx_http_llm_rebuild_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* writes a member's value its own way, or NGX_DECLINED: as it is */
typedef ngx_int_t (*ngx_http_llm_member_pt)(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *v);

ngx_int_t ngx_http_llm_rebuild_body_with(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_member_pt member);


#endif /* _NGX_HTTP_LLM_ATTEMPT_H_INCLUDED_ */
