
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
    size_t   n, c;
    u_char  *last;

    if (len == 0) {
        return 0;                        /* s may be NULL */
    }

    n = len;

    for (last = s + len; s < last; s++) {
        if (*s >= 0x80) {
            c = ngx_http_llm_utf8_len(s, last);

            if (c == 0) {
                n += sizeof("\xef\xbf\xbd") - 2;     /* U+FFFD for 1 byte */

            } else {
                s += c - 1;
            }

        } else if (*s == '"' || *s == '\\') {
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
    size_t   c;
    u_char  *last;

    if (len == 0) {
        return dst;                      /* s may be NULL */
    }

    for (last = s + len; s < last; s++) {

        if (*s >= 0x80) {
            c = ngx_http_llm_utf8_len(s, last);

            if (c == 0) {
                dst = ngx_cpymem(dst, "\xef\xbf\xbd", 3);
                continue;
            }

            dst = ngx_cpymem(dst, s, c);
            s += c - 1;
            continue;
        }

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


void
ngx_http_llm_jbuf_init(ngx_http_llm_jbuf_t *b, ngx_pool_t *pool, size_t size)
{
    b->pool = pool;
    b->error = 0;

    b->start = ngx_pnalloc(pool, size);

    if (b->start == NULL) {
        b->error = 1;
        b->last = NULL;
        b->end = NULL;
        return;
    }

    b->last = b->start;
    b->end = b->start + size;
}


u_char *
ngx_http_llm_jbuf_reserve(ngx_http_llm_jbuf_t *b, size_t len)
{
    size_t   size, used;
    u_char  *p;

    if (b->error) {
        return NULL;
    }

    if ((size_t) (b->end - b->last) >= len) {
        return b->last;
    }

    used = b->last - b->start;
    size = (b->end - b->start) * 2;

    if (size < used + len) {
        size = used + len + 256;
    }

    p = ngx_pnalloc(b->pool, size);
    if (p == NULL) {
        b->error = 1;
        return NULL;
    }

    ngx_memcpy(p, b->start, used);
    ngx_pfree(b->pool, b->start);

    b->start = p;
    b->last = p + used;
    b->end = p + size;

    return b->last;
}


void
ngx_http_llm_jbuf_raw(ngx_http_llm_jbuf_t *b, const u_char *s, size_t len)
{
    u_char  *p;

    if (len == 0) {
        return;
    }

    p = ngx_http_llm_jbuf_reserve(b, len);
    if (p == NULL) {
        return;
    }

    b->last = ngx_cpymem(p, s, len);
}


void
ngx_http_llm_jbuf_str(ngx_http_llm_jbuf_t *b, const u_char *s, size_t len)
{
    u_char  *p;

    p = ngx_http_llm_jbuf_reserve(b, ngx_http_llm_json_escaped_len(
                                         (u_char *) s, len)
                                     + 2);
    if (p == NULL) {
        return;
    }

    *p++ = '"';
    p = ngx_http_llm_json_escape(p, (u_char *) s, len);
    *p++ = '"';

    b->last = p;
}


void
ngx_http_llm_jbuf_int(ngx_http_llm_jbuf_t *b, int64_t n)
{
    u_char  *p;

    p = ngx_http_llm_jbuf_reserve(b, NGX_INT64_LEN);
    if (p == NULL) {
        return;
    }

    b->last = ngx_sprintf(p, "%L", n);
}


void
ngx_http_llm_text(ngx_http_llm_jbuf_t *b, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    for ( ;; ) {
        if (ngx_http_llm_jbuf_reserve(b, 1) == NULL) {
            return;
        }

        va_start(args, fmt);
        p = ngx_vslprintf(b->last, b->end, fmt, args);
        va_end(args);

        /* output that stops short of the end was not truncated */

        if (p < b->end) {
            b->last = p;
            return;
        }

        if (ngx_http_llm_jbuf_reserve(b, (b->end - b->start) + 1) == NULL) {
            return;
        }
    }
}
