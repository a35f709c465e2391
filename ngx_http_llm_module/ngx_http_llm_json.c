
/*
 * Output helpers.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_json.h"


static u_char  ngx_http_llm_hex[] = "0123456789abcdef";


size_t
ngx_http_llm_json_escaped_len(u_char *s, size_t len)
{
    size_t   n;
    u_char  *last;

    if (len == 0) {
        return 0;                        /* s may be NULL */
    }

    n = len;

    for (last = s + len; s < last; s++) {
        if (*s == '"' || *s == '\\') {
            n++;

        } else if (*s < 0x20) {
            if (*s == '\n' || *s == '\r' || *s == '\t' || *s == '\b'
                || *s == '\f')
            {
                n++;

            } else {
                n += sizeof("\\u0000") - 2;
            }
        }
    }

    return n;
}


u_char *
ngx_http_llm_json_escape(u_char *dst, u_char *s, size_t len)
{
    u_char  *last;

    if (len == 0) {
        return dst;                      /* s may be NULL */
    }

    for (last = s + len; s < last; s++) {

        if (*s >= 0x20 && *s != '"' && *s != '\\') {
            *dst++ = *s;
            continue;
        }

        *dst++ = '\\';

        switch (*s) {
        case '"':
        case '\\':
            *dst++ = *s;
            break;
        case '\n':
            *dst++ = 'n';
            break;
        case '\r':
            *dst++ = 'r';
            break;
        case '\t':
            *dst++ = 't';
            break;
        case '\b':
            *dst++ = 'b';
            break;
        case '\f':
            *dst++ = 'f';
            break;
        default:
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            *dst++ = ngx_http_llm_hex[*s >> 4];
            *dst++ = ngx_http_llm_hex[*s & 0xf];
        }
    }

    return dst;
}


ngx_int_t
ngx_http_llm_json_quote(ngx_pool_t *pool, ngx_str_t *src, ngx_str_t *dst)
{
    size_t   len;
    u_char  *p;

    len = ngx_http_llm_json_escaped_len(src->data, src->len) + 2;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst->data = p;

    *p++ = '"';
    p = ngx_http_llm_json_escape(p, src->data, src->len);
    *p++ = '"';

    dst->len = p - dst->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_text_init(ngx_http_llm_text_t *t, ngx_pool_t *pool, size_t size)
{
    t->pool = pool;
    t->len = 0;
    t->size = size;
    t->failed = 0;

    t->data = ngx_pnalloc(pool, size);

    return (t->data == NULL) ? NGX_ERROR : NGX_OK;
}


/* grows the buffer, doubling it, until n more bytes fit */

static ngx_int_t
ngx_http_llm_text_reserve(ngx_http_llm_text_t *t, size_t n)
{
    size_t   size;
    u_char  *data;

    if (t->failed) {
        return NGX_ERROR;
    }

    if (t->size - t->len > n) {
        return NGX_OK;
    }

    for (size = t->size * 2; size - t->len <= n; size *= 2) { /* void */ }

    data = ngx_pnalloc(t->pool, size);
    if (data == NULL) {
        t->failed = 1;
        return NGX_ERROR;
    }

    ngx_memcpy(data, t->data, t->len);
    t->data = data;
    t->size = size;

    return NGX_OK;
}


void
ngx_http_llm_text(ngx_http_llm_text_t *t, const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    for ( ;; ) {
        if (ngx_http_llm_text_reserve(t, 0) != NGX_OK) {
            return;
        }

        last = t->data + t->size;

        va_start(args, fmt);
        p = ngx_vslprintf(t->data + t->len, last, fmt, args);
        va_end(args);

        /* output that stops short of the end was not truncated */

        if (p < last) {
            t->len = p - t->data;
            return;
        }

        if (ngx_http_llm_text_reserve(t, t->size) != NGX_OK) {
            return;
        }
    }
}


void
ngx_http_llm_text_str(ngx_http_llm_text_t *t, ngx_str_t *s)
{
    u_char  *p;

    if (ngx_http_llm_text_reserve(t, ngx_http_llm_json_escaped_len(s->data,
                                                                   s->len)
                                     + 2)
        != NGX_OK)
    {
        return;
    }

    p = t->data + t->len;

    *p++ = '"';
    p = ngx_http_llm_json_escape(p, s->data, s->len);
    *p++ = '"';

    t->len = p - t->data;
}
