
/*
 * JSON output helpers.
 */


#include "ngx_http_llm_json.h"


static u_char  ngx_http_llm_hex[] = "0123456789abcdef";


size_t
ngx_http_llm_json_escaped_len(u_char *s, size_t len)
{
    size_t   n;
    u_char  *last;

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
