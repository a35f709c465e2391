
/*
 * A JSON scanner: validates a document fed in pieces, in one pass, and
 * tells a handler of each token; keys and scalars come with their first
 * NGX_HTTP_LLM_JSCAN_KEEP decoded bytes, or whole with a sink. Nothing is
 * allocated without a sink.
 */


#ifndef _NGX_HTTP_LLM_JSCAN_H_INCLUDED_
#define _NGX_HTTP_LLM_JSCAN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* decoded bytes of a key or scalar kept for the handler */
#define NGX_HTTP_LLM_JSCAN_KEEP       256

/* deeper documents are refused (docs/directives.md, "Limits") */
#define NGX_HTTP_LLM_JSCAN_MAX_DEPTH  1024

/* JSON's white space */
#define ngx_http_llm_jscan_space(ch)                                        \
    ((ch) == ' ' || (ch) == '\n' || (ch) == '\r' || (ch) == '\t')


typedef enum {
    NGX_HTTP_LLM_JSCAN_OBJECT = 1,           /* "{" */
    NGX_HTTP_LLM_JSCAN_ARRAY,                /* "[" */
    NGX_HTTP_LLM_JSCAN_END,                  /* "}" or "]" */
    NGX_HTTP_LLM_JSCAN_KEY,
    NGX_HTTP_LLM_JSCAN_STRING,
    NGX_HTTP_LLM_JSCAN_NUMBER,
    NGX_HTTP_LLM_JSCAN_TRUE,
    NGX_HTTP_LLM_JSCAN_FALSE,
    NGX_HTTP_LLM_JSCAN_NULL
} ngx_http_llm_jscan_token_e;


/*
 * Where keys and scalars longer than NGX_HTTP_LLM_JSCAN_KEEP are decoded
 * whole, for a handler that needs every value (a JSON tree), whatever
 * pieces they came in. Grown from pool in allocations of at least
 * NGX_HTTP_LLM_JSCAN_SINK_MIN bytes, which are the pool's large ones,
 * given back by ngx_http_llm_jscan_sink_free(): it holds one value at a
 * time, so no more than the longest (which the document bounds).
 */
typedef struct {
    u_char                        *start;
    u_char                        *last;
    u_char                        *end;
    ngx_pool_t                    *pool;
    unsigned                       failed:1;  /* no memory: a value cut */
} ngx_http_llm_jscan_sink_t;

#define NGX_HTTP_LLM_JSCAN_SINK_MIN   8192


typedef struct ngx_http_llm_jscan_s  ngx_http_llm_jscan_t;

/* NGX_OK goes on; anything else stops the scan and is returned by feed */
typedef ngx_int_t (*ngx_http_llm_jscan_handler_pt)(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);


struct ngx_http_llm_jscan_s {
    ngx_http_llm_jscan_handler_pt  handler;
    void                          *data;

    /*
     * For the handler: the depth of the token's value (0: the root; an
     * END has the depth of the value it closes), the offsets of its
     * first byte (not set for END) and just after its last, and for a
     * key or scalar its first decoded bytes (text, len) and its whole
     * decoded length (size). With a sink, a value longer than its
     * first bytes is whole in the sink: ngx_http_llm_jscan_value().
     */
    ngx_uint_t                     depth;
    off_t                          start;
    off_t                          end;
    u_char                        *text;
    size_t                         len;
    size_t                         size;

    const char                    *error;    /* why the document is not
                                                JSON, set on NGX_ERROR */
    off_t                          at;       /* and where the scan stopped
                                                (or a handler stopped it) */

    ngx_http_llm_jscan_sink_t     *sink;     /* NULL: none; set after
                                                init */

    /* the scanner's own state */
    off_t                          base;     /* offset of the piece */
    ngx_uint_t                     level;    /* containers open */
    ngx_uint_t                     state;
    ngx_uint_t                     sub;      /* within a number, literal,
                                                escape or character */
    ngx_uint_t                     key;      /* the string is a key */
    uint32_t                       code;     /* \uXXXX being read */
    uint32_t                       high;     /* a high surrogate before */
    u_char                         lo;       /* the range of a character's */
    u_char                         hi;       /* next byte (RFC 3629) */
    u_char                         keep[NGX_HTTP_LLM_JSCAN_KEEP];
    uint8_t                        objects[NGX_HTTP_LLM_JSCAN_MAX_DEPTH / 8];
};


void ngx_http_llm_jscan_init(ngx_http_llm_jscan_t *js,
    ngx_http_llm_jscan_handler_pt handler, void *data);
ngx_int_t ngx_http_llm_jscan_feed(ngx_http_llm_jscan_t *js, u_char *p,
    size_t len);
ngx_int_t ngx_http_llm_jscan_finish(ngx_http_llm_jscan_t *js);
void ngx_http_llm_jscan_sink_free(ngx_http_llm_jscan_sink_t *sink);
u_char *ngx_http_llm_jscan_plain_run(u_char *p, u_char *last);


/* a key's or scalar's decoded bytes, whole with a sink; NGX_ERROR: cut */

static ngx_inline ngx_int_t
ngx_http_llm_jscan_value(ngx_http_llm_jscan_t *js, ngx_str_t *value)
{
    if (js->len == js->size) {
        value->data = js->text;
        value->len = js->len;
        return NGX_OK;
    }

    if (js->sink == NULL || js->sink->failed) {
        return NGX_ERROR;
    }

    value->data = js->sink->start;
    value->len = js->sink->last - js->sink->start;

    return NGX_OK;
}


/*
 * Whether the n bytes at s are name's, n being its length (a key's or
 * value's size was compared first): a literal name's words become
 * constants, compared with overlapping loads of s that stay within its n
 * bytes -- two or three instructions where memcmp() is a call at -O.
 */

static ngx_inline ngx_uint_t
ngx_http_llm_jscan_eq(u_char *s, const char *name, size_t n)
{
    size_t    i;
    uint32_t  h, w;
    uint64_t  a, b, d;

    if (n < 4) {
        return ngx_memcmp(s, name, n) == 0;
    }

    if (n < 8) {
        ngx_memcpy(&h, s, 4);
        ngx_memcpy(&w, name, 4);
        d = h ^ w;

        ngx_memcpy(&h, s + n - 4, 4);
        ngx_memcpy(&w, name + n - 4, 4);

        return (d | (h ^ w)) == 0;
    }

    d = 0;

    for (i = 0; i + 8 < n; i += 8) {
        ngx_memcpy(&a, s + i, 8);
        ngx_memcpy(&b, name + i, 8);
        d |= a ^ b;
    }

    ngx_memcpy(&a, s + n - 8, 8);
    ngx_memcpy(&b, name + n - 8, 8);

    return (d | (a ^ b)) == 0;
}


/* a literal name: ngx_http_llm_jscan_is(s, "model"), its length checked */
#define ngx_http_llm_jscan_is(s, name)                                       \
    ngx_http_llm_jscan_eq(s, name, sizeof(name) - 1)


#endif /* _NGX_HTTP_LLM_JSCAN_H_INCLUDED_ */
