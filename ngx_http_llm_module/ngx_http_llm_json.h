
/*
 * Output helpers: string escaping for the JSON the module writes, and the
 * one growable buffer it writes bodies, reports and translations into.
 */


#ifndef _NGX_HTTP_LLM_JSON_H_INCLUDED_
#define _NGX_HTTP_LLM_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The length of the UTF-8 character at s (a byte from 0x80), RFC 3629's
 * ranges; 0 if it is not one: such a byte is written as U+FFFD, so that
 * what the gateway writes is JSON whatever it quotes (a URI, a header);
 * a reader of JSON refuses it (openai.c, an answer's tail).
 */

static ngx_inline size_t
ngx_http_llm_utf8_len(u_char *s, u_char *last)
{
    size_t  n, i;
    u_char  lo, hi;

    lo = 0x80;
    hi = 0xbf;

    if (*s >= 0xc2 && *s <= 0xdf) {
        n = 2;

    } else if (*s >= 0xe0 && *s <= 0xef) {
        n = 3;
        lo = (*s == 0xe0) ? 0xa0 : 0x80;
        hi = (*s == 0xed) ? 0x9f : 0xbf;

    } else if (*s >= 0xf0 && *s <= 0xf4) {
        n = 4;
        lo = (*s == 0xf0) ? 0x90 : 0x80;
        hi = (*s == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if ((size_t) (last - s) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (s[i] < lo || s[i] > hi) {
            return 0;
        }

        lo = 0x80;
        hi = 0xbf;
    }

    return n;
}


/* length of s once escaped for a JSON string, without the quotes */
size_t ngx_http_llm_json_escaped_len(u_char *s, size_t len);

/* writes s escaped (no quotes) at dst, returns the end */
u_char *ngx_http_llm_json_escape(u_char *dst, u_char *s, size_t len);

/* a quoted JSON string of src, allocated from pool */
ngx_int_t ngx_http_llm_json_quote(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *dst);


/* a growable output buffer; errors are sticky and checked at the end */
typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *start;
    u_char                        *last;
    u_char                        *end;
    ngx_uint_t                     error;
} ngx_http_llm_jbuf_t;


void ngx_http_llm_jbuf_init(ngx_http_llm_jbuf_t *b, ngx_pool_t *pool,
    size_t size);
u_char *ngx_http_llm_jbuf_reserve(ngx_http_llm_jbuf_t *b, size_t len);
void ngx_http_llm_jbuf_raw(ngx_http_llm_jbuf_t *b, const u_char *s,
    size_t len);
/* a quoted, escaped JSON string */
void ngx_http_llm_jbuf_str(ngx_http_llm_jbuf_t *b, const u_char *s,
    size_t len);
void ngx_http_llm_jbuf_int(ngx_http_llm_jbuf_t *b, int64_t n);
/* appends ngx_sprintf() formatted text */
void ngx_http_llm_text(ngx_http_llm_jbuf_t *b, const char *fmt, ...);

/* an ngx_str_t (a tree node's key, a string value) equal to a literal */
#define ngx_http_llm_str_is(ns, lit)                                         \
    ((ns)->len == sizeof(lit) - 1                                             \
     && ngx_strncmp((ns)->data, lit, sizeof(lit) - 1) == 0)

#define ngx_http_llm_jbuf_lit(b, s)                                          \
    ngx_http_llm_jbuf_raw(b, (const u_char *) s, sizeof(s) - 1)
/* a quoted JSON string (also a valid Prometheus label value) */
#define ngx_http_llm_jbuf_qstr(b, ns)                                         \
    ngx_http_llm_jbuf_str(b, (ns)->data, (ns)->len)
/* a quoted string, or "" for NULL */
#define ngx_http_llm_jbuf_qstr_or_empty(b, ns)                                \
    ((ns) ? ngx_http_llm_jbuf_qstr(b, ns) : ngx_http_llm_jbuf_lit(b, "\"\""))
#define ngx_http_llm_jbuf_len(b)  ((size_t) ((b)->last - (b)->start))
#define ngx_http_llm_jbuf_reset(b)  ((b)->last = (b)->start)


#endif /* _NGX_HTTP_LLM_JSON_H_INCLUDED_ */
