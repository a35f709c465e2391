
/*
 * OpenAI-shaped error responses.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_filter.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_json.h"
#include "ngx_http_llm_canonical.h"


#define NGX_HTTP_LLM_MAX_MESSAGE  1024


static const char *
ngx_http_llm_error_type(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";
    case NGX_HTTP_FORBIDDEN:
        return "permission_error";
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";
    default:
        return (status >= 500) ? "server_error" : "invalid_request_error";
    }
}


ngx_int_t
ngx_http_llm_error_json(ngx_pool_t *pool, ngx_uint_t status, const char *code,
    const char *param, ngx_str_t *message, ngx_str_t *out)
{
    size_t       len;
    u_char      *p;
    const char  *type;

    type = ngx_http_llm_error_type(status);

    len = sizeof("{\"error\":{\"message\":\"\",\"type\":\"\",\"param\":,"
                 "\"code\":}}") - 1
          + ngx_http_llm_json_escaped_len(message->data, message->len)
          + ngx_strlen(type)
          + (param ? ngx_strlen(param) + 2 : 4)
          + (code ? ngx_strlen(code) + 2 : 4);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, "{\"error\":{\"message\":\"",
                   sizeof("{\"error\":{\"message\":\"") - 1);
    p = ngx_http_llm_json_escape(p, message->data, message->len);
    p = ngx_sprintf(p, "\",\"type\":\"%s\",\"param\":", type);

    /* param and code are fixed identifiers chosen by the module */

    p = param ? ngx_sprintf(p, "\"%s\"", param) : ngx_cpymem(p, "null", 4);
    p = ngx_cpymem(p, ",\"code\":", sizeof(",\"code\":") - 1);
    p = code ? ngx_sprintf(p, "\"%s\"", code) : ngx_cpymem(p, "null", 4);
    *p++ = '}';
    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_client_error_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *param, ngx_str_t *message, ngx_str_t *out)
{
    ngx_http_llm_ctx_t     *ctx;
    ngx_http_llm_perror_t   err;

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx == NULL || !ngx_http_llm_anthropic_door(ctx)) {
        return ngx_http_llm_error_json(r->pool, status, code, param, message,
                                       out);
    }

    err.status = status;
    ngx_str_null(&err.type);
    err.message = *message;

    return ngx_http_llm_canon_error_body(r->pool, NGX_HTTP_LLM_API_ANTHROPIC,
                                         &err, out);
}


ngx_int_t
ngx_http_llm_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *json)
{
    static ngx_str_t  type = ngx_string("application/json");

    return ngx_http_llm_send_body(r, status, &type, json);
}


ngx_int_t
ngx_http_llm_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_llm_get_ctx(r);
    if (ctx) {
        ctx->own_response = 1;

        if (ngx_http_llm_response_headers(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (r->request_body == NULL) {
        /*
         * refused before its body was read: a client waiting for
         * "100 Continue" is not invited to send what is thrown away
         */
        r->expect_tested = 1;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_llm_fail(ngx_http_request_t *r, ngx_uint_t status, const char *code,
    const char *param, const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    ngx_int_t   rc;
    ngx_str_t   message, json;
    u_char      buf[NGX_HTTP_LLM_MAX_MESSAGE];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    if (p == buf + sizeof(buf)) {

        /* truncated: do not leave half a UTF-8 sequence behind */

        while (p > buf && (p[-1] & 0xc0) == 0x80) {
            p--;
        }

        if (p > buf && p[-1] >= 0xc0) {
            p--;
        }
    }

    message.data = buf;
    message.len = p - buf;

    if (ngx_http_llm_client_error_json(r, status, code, param, &message,
                                       &json)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    rc = ngx_http_llm_send_json(r, status, &json);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


u_char *
ngx_http_llm_log_safe(u_char *buf, size_t size, u_char *src, size_t len)
{
    u_char       *p, *end, c;
    size_t        i;
    static u_char hex[] = "0123456789abcdef";

    p = buf;
    end = buf + size - 3;               /* room for "..." */

    for (i = 0; i < len; i++) {
        c = src[i];

        if (c >= 0x20 && c < 0x7f && c != '\\') {
            if (p + 1 > end) {
                break;
            }

            *p++ = c;
            continue;
        }

        if (p + 4 > end) {
            break;
        }

        *p++ = '\\';
        *p++ = 'x';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    if (i < len) {
        p = ngx_cpymem(p, "...", 3);
    }

    return p;
}
