
/*
 * The JSON scanner (RFC 8259, as strict as yajl: UTF-8 checked in
 * strings, no trailing bytes but whitespace). One pass, a state per byte,
 * runs of plain string bytes copied at memory speed; pieces may be cut
 * anywhere.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_jscan.h"

#if (__SSE2__)
#include <emmintrin.h>
#endif


/* the string run in each of its three places: a call costs a short run */
#if (__GNUC__)
#define ngx_http_llm_jscan_inline  __inline__ __attribute__((always_inline))
#else
#define ngx_http_llm_jscan_inline  ngx_inline
#endif


typedef enum {
    ngx_jscan_value = 0,          /* a value */
    ngx_jscan_value_or_end,       /* after "[" */
    ngx_jscan_key,                /* after "," in an object */
    ngx_jscan_key_or_end,         /* after "{" */
    ngx_jscan_colon,
    ngx_jscan_after,              /* after a value in a container */
    ngx_jscan_string,
    ngx_jscan_escape,             /* after "\" */
    ngx_jscan_hex,                /* sub: digits of \uXXXX left */
    ngx_jscan_utf8,               /* sub: continuation bytes left */
    ngx_jscan_number,             /* sub: where in the grammar */
    ngx_jscan_literal,            /* sub: bytes of it matched */
    ngx_jscan_done                /* the root ended */
} ngx_http_llm_jscan_state_e;


typedef enum {
    ngx_jscan_minus = 0,
    ngx_jscan_zero,
    ngx_jscan_int,
    ngx_jscan_dot,
    ngx_jscan_frac,
    ngx_jscan_e,
    ngx_jscan_esign,
    ngx_jscan_exp
} ngx_http_llm_jscan_number_e;


/* 1: a byte that stands for itself inside a string */
static const u_char  ngx_http_llm_jscan_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,     /* '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    /* 0x80 and above: 0, checked as UTF-8 */
};


static const char  *ngx_http_llm_jscan_literals[] = {
    "true", "false", "null"
};


static ngx_int_t ngx_http_llm_jscan_begin(ngx_http_llm_jscan_t *js,
    u_char ch);
static ngx_int_t ngx_http_llm_jscan_close(ngx_http_llm_jscan_t *js,
    u_char ch, off_t end);
static ngx_int_t ngx_http_llm_jscan_emit(ngx_http_llm_jscan_t *js,
    ngx_uint_t token, off_t end);
static ngx_int_t ngx_http_llm_jscan_number_end(ngx_http_llm_jscan_t *js,
    off_t end);
static u_char *ngx_http_llm_jscan_fast(ngx_http_llm_jscan_t *js, u_char *p,
    u_char *start, u_char *last, ngx_int_t *rc);
static void ngx_http_llm_jscan_code(ngx_http_llm_jscan_t *js, uint32_t c);
static void ngx_http_llm_jscan_more(ngx_http_llm_jscan_t *js, u_char *p,
    size_t n);
static void ngx_http_llm_jscan_spill(ngx_http_llm_jscan_t *js, u_char *p,
    size_t n);
static ngx_http_llm_jscan_inline u_char *ngx_http_llm_jscan_run(u_char *p,
    u_char *last);
static ngx_http_llm_jscan_inline u_char *ngx_http_llm_jscan_quote(u_char *p,
    u_char *last);
static ngx_inline void ngx_http_llm_jscan_put(ngx_http_llm_jscan_t *js,
    u_char ch);


/* past keep, bytes go to the sink, if any (size: the bytes before) */
#define ngx_http_llm_jscan_keep(js, ch)                                     \
    if ((js)->len < NGX_HTTP_LLM_JSCAN_KEEP) {                              \
        (js)->keep[(js)->len++] = (u_char) (ch);                            \
                                                                            \
    } else if ((js)->sink) {                                                \
        ngx_http_llm_jscan_put(js, (u_char) (ch));                          \
    }                                                                       \
    (js)->size++

#define ngx_http_llm_jscan_fail(js, reason)                                 \
    (js)->error = reason;                                                   \
    return NGX_ERROR

/* the same in ngx_http_llm_jscan_feed(), which notes where */
#define ngx_http_llm_jscan_stop(js, reason)                                 \
    (js)->error = reason;                                                   \
    rc = NGX_ERROR;                                                         \
    goto failed


void
ngx_http_llm_jscan_init(ngx_http_llm_jscan_t *js,
    ngx_http_llm_jscan_handler_pt handler, void *data)
{
    ngx_memzero(js, offsetof(ngx_http_llm_jscan_t, keep));

    js->handler = handler;
    js->data = data;
    js->text = js->keep;
}


ngx_int_t
ngx_http_llm_jscan_feed(ngx_http_llm_jscan_t *js, u_char *p, size_t len)
{
    u_char     *start, *last, *run, *fast_stop, ch;
    size_t      n;
    ngx_int_t   rc;

    start = p;
    last = p + len;
    fast_stop = NULL;

    while (p < last) {
        ch = *p;

        if (js->state <= ngx_jscan_after) {

            /*
             * between tokens: whole tokens of the piece through the fast
             * path; where it stops, this machine takes the byte it
             * stopped at (and then the fast path may go on)
             */

            if (p != fast_stop) {
                rc = NGX_OK;
                p = ngx_http_llm_jscan_fast(js, p, start, last, &rc);

                if (rc != NGX_OK) {
                    goto failed;
                }

                fast_stop = p;
                continue;
            }

            goto between;
        }

        switch (js->state) {

        case ngx_jscan_string:

            if (js->high && ch != '\\') {
                /* a high surrogate alone stands for a "?", as in yajl */
                js->high = 0;
                ngx_http_llm_jscan_keep(js, '?');
            }

            /* the hot path: a run of bytes that stand for themselves */

            run = p;
            p = ngx_http_llm_jscan_run(p, last);

            if (p > run) {
                n = p - run;

#if (__SSE2__)
                /*
                 * most keys and values are short: one 16-byte move, its
                 * tail past the run unused, where a memcpy() call costs
                 * twice that
                 */

                if (n <= 16 && last - run >= 16
                    && NGX_HTTP_LLM_JSCAN_KEEP - js->len >= 16)
                {
                    _mm_storeu_si128((__m128i *) (js->keep + js->len),
                                     _mm_loadu_si128((const __m128i *) run));
                    js->len += n;
                    js->size += n;

                } else {
                    ngx_http_llm_jscan_more(js, run, n);
                }
#else
                ngx_http_llm_jscan_more(js, run, n);
#endif

                if (p == last) {
                    continue;
                }

                ch = *p;
            }

            p++;

            if (ch == '"') {
                js->state = js->key ? ngx_jscan_colon
                            : js->level ? ngx_jscan_after : ngx_jscan_done;

                rc = ngx_http_llm_jscan_emit(js, js->key
                                                 ? NGX_HTTP_LLM_JSCAN_KEY
                                                 : NGX_HTTP_LLM_JSCAN_STRING,
                                             js->base + (p - start));
                if (rc != NGX_OK) {
                    goto failed;
                }

                /*
                 * APIs send compact JSON: a name's ":", and a string's
                 * opening quote after it, or ',"' after a string, are
                 * taken here rather than a byte a pass of the loop
                 */

                if (last - p < 2) {
                    continue;
                }

                if (js->state == ngx_jscan_colon) {
                    if (p[0] != ':' || p[1] != '"') {
                        continue;
                    }

                    js->key = 0;

                } else if (js->state == ngx_jscan_after
                           && p[0] == ',' && p[1] == '"')
                {
                    js->key = (js->objects[(js->level - 1) / 8]
                               >> ((js->level - 1) % 8)) & 1;

                } else {
                    continue;
                }

                p++;
                js->start = js->base + (p - start);
                js->end = js->start + 1;
                p++;
                js->state = ngx_jscan_string;
                js->len = 0;
                js->size = 0;

                continue;
            }

            if (ch == '\\') {
                js->state = ngx_jscan_escape;
                continue;
            }

            if (ch < 0x20) {
                ngx_http_llm_jscan_stop(js, "a control character in a string");
            }

            /*
             * UTF-8 as RFC 3629 has it: a lead byte, then 1 to 3 more in
             * the range it allows; no overlong form, no surrogate, nothing
             * above U+10FFFF
             */

            js->lo = 0x80;
            js->hi = 0xbf;

            if (ch >= 0xc2 && ch <= 0xdf) {
                js->sub = 1;

            } else if (ch >= 0xe0 && ch <= 0xef) {
                js->sub = 2;
                js->lo = (ch == 0xe0) ? 0xa0 : 0x80;
                js->hi = (ch == 0xed) ? 0x9f : 0xbf;

            } else if (ch >= 0xf0 && ch <= 0xf4) {
                js->sub = 3;
                js->lo = (ch == 0xf0) ? 0x90 : 0x80;
                js->hi = (ch == 0xf4) ? 0x8f : 0xbf;

            } else {
                ngx_http_llm_jscan_stop(js, "invalid UTF-8 in a string");
            }

            ngx_http_llm_jscan_keep(js, ch);

            /* the rest of the character at once, when the piece has it */

            if ((size_t) (last - p) >= js->sub) {
                do {
                    if (*p < js->lo || *p > js->hi) {
                        p++;
                        ngx_http_llm_jscan_stop(js, "invalid UTF-8 in a "
                                                    "string");
                    }

                    js->lo = 0x80;
                    js->hi = 0xbf;

                    ngx_http_llm_jscan_keep(js, *p);
                    p++;

                } while (--js->sub);

                continue;
            }

            js->state = ngx_jscan_utf8;
            continue;

        case ngx_jscan_utf8:

            if (ch < js->lo || ch > js->hi) {
                p++;
                ngx_http_llm_jscan_stop(js, "invalid UTF-8 in a string");
            }

            js->lo = 0x80;
            js->hi = 0xbf;

            ngx_http_llm_jscan_keep(js, ch);
            p++;

            if (--js->sub == 0) {
                js->state = ngx_jscan_string;
            }

            continue;

        case ngx_jscan_escape:
            p++;
            js->state = ngx_jscan_string;

            switch (ch) {
            case '"': case '\\': case '/':
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u':
                js->state = ngx_jscan_hex;
                js->sub = 4;
                js->code = 0;
                continue;
            default:
                ngx_http_llm_jscan_stop(js, "an invalid escape in a string");
            }

            if (js->high) {
                js->high = 0;
                ngx_http_llm_jscan_keep(js, '?');
            }

            ngx_http_llm_jscan_keep(js, ch);
            continue;

        case ngx_jscan_hex:

            if (ch >= '0' && ch <= '9') {
                js->code = js->code * 16 + (ch - '0');

            } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
                js->code = js->code * 16 + ((ch | 0x20) - 'a' + 10);

            } else {
                ngx_http_llm_jscan_stop(js, "an invalid \\u escape");
            }

            p++;

            if (--js->sub == 0) {
                ngx_http_llm_jscan_code(js, js->code);
                js->state = ngx_jscan_string;
            }

            continue;

        case ngx_jscan_number:

            /* digits after the first, most of a number: a run at once */

            if (js->sub == ngx_jscan_int || js->sub == ngx_jscan_frac
                || js->sub == ngx_jscan_exp)
            {
                while (ch >= '0' && ch <= '9') {
                    ngx_http_llm_jscan_keep(js, ch);

                    if (++p == last) {
                        break;
                    }

                    ch = *p;
                }

                if (p == last) {
                    continue;
                }
            }

            switch (js->sub) {

            case ngx_jscan_minus:
                if (ch == '0') {
                    js->sub = ngx_jscan_zero;

                } else if (ch >= '1' && ch <= '9') {
                    js->sub = ngx_jscan_int;

                } else {
                    ngx_http_llm_jscan_stop(js, "a malformed number");
                }

                break;

            case ngx_jscan_zero:
            case ngx_jscan_int:
                if (ch >= '0' && ch <= '9') {
                    if (js->sub == ngx_jscan_zero) {
                        ngx_http_llm_jscan_stop(js, "a number with a "
                                                    "leading zero");
                    }

                } else if (ch == '.') {
                    js->sub = ngx_jscan_dot;

                } else if (ch == 'e' || ch == 'E') {
                    js->sub = ngx_jscan_e;

                } else {
                    goto number_end;
                }

                break;

            case ngx_jscan_dot:
                if (ch < '0' || ch > '9') {
                    ngx_http_llm_jscan_stop(js, "a malformed number");
                }

                js->sub = ngx_jscan_frac;
                break;

            case ngx_jscan_frac:
                if (ch >= '0' && ch <= '9') {
                    break;
                }

                if (ch == 'e' || ch == 'E') {
                    js->sub = ngx_jscan_e;
                    break;
                }

                goto number_end;

            case ngx_jscan_e:
                if (ch == '+' || ch == '-') {
                    js->sub = ngx_jscan_esign;
                    break;
                }

                /* fall through */

            case ngx_jscan_esign:
                if (ch < '0' || ch > '9') {
                    ngx_http_llm_jscan_stop(js, "a malformed number");
                }

                js->sub = ngx_jscan_exp;
                break;

            default: /* ngx_jscan_exp */
                if (ch < '0' || ch > '9') {
                    goto number_end;
                }
            }

            ngx_http_llm_jscan_keep(js, ch);
            p++;
            continue;

        number_end:

            /* the byte after the number is looked at again */

            rc = ngx_http_llm_jscan_number_end(js, js->base + (p - start));
            if (rc != NGX_OK) {
                goto failed;
            }

            continue;

        case ngx_jscan_literal:

            if (ch != (u_char) ngx_http_llm_jscan_literals[js->code][js->sub])
            {
                ngx_http_llm_jscan_stop(js, "an invalid literal");
            }

            p++;

            if (ngx_http_llm_jscan_literals[js->code][++js->sub] != '\0') {
                continue;
            }

            js->state = js->level ? ngx_jscan_after : ngx_jscan_done;

            rc = ngx_http_llm_jscan_emit(js, NGX_HTTP_LLM_JSCAN_TRUE
                                             + js->code,
                                         js->base + (p - start));
            if (rc != NGX_OK) {
                goto failed;
            }

            continue;

        default:
            break;
        }

    between:

        p++;

        if (ngx_http_llm_jscan_space(ch)) {
            continue;
        }

        switch (js->state) {

        case ngx_jscan_value_or_end:
            if (ch == ']') {
                rc = ngx_http_llm_jscan_close(js, ch, js->base + (p - start));
                break;
            }

            /* fall through */

        case ngx_jscan_value:
            js->start = js->base + (p - 1 - start);
            js->end = js->base + (p - start);
            rc = ngx_http_llm_jscan_begin(js, ch);
            break;

        case ngx_jscan_key_or_end:
            if (ch == '}') {
                rc = ngx_http_llm_jscan_close(js, ch, js->base + (p - start));
                break;
            }

            /* fall through */

        case ngx_jscan_key:
            if (ch != '"') {
                ngx_http_llm_jscan_stop(js, "an object member without a "
                                            "quoted name");
            }

            js->start = js->base + (p - 1 - start);
            js->state = ngx_jscan_string;
            js->key = 1;
            js->len = 0;
            js->size = 0;
            rc = NGX_OK;
            break;

        case ngx_jscan_colon:
            if (ch != ':') {
                ngx_http_llm_jscan_stop(js, "a member name without \":\"");
            }

            js->state = ngx_jscan_value;
            rc = NGX_OK;
            break;

        case ngx_jscan_after:
            if (ch == ',') {
                js->state = (js->objects[(js->level - 1) / 8]
                             & (1 << ((js->level - 1) % 8)))
                            ? ngx_jscan_key : ngx_jscan_value;
                rc = NGX_OK;
                break;
            }

            rc = ngx_http_llm_jscan_close(js, ch, js->base + (p - start));
            break;

        default: /* ngx_jscan_done */
            ngx_http_llm_jscan_stop(js, "bytes after the document");
        }

        if (rc != NGX_OK) {
            goto failed;
        }
    }

    js->base += len;

    return NGX_OK;

failed:

    /* where the scan stopped: just after the byte at fault, mostly */
    js->at = js->base + (p - start);

    return rc;
}


ngx_int_t
ngx_http_llm_jscan_finish(ngx_http_llm_jscan_t *js)
{
    ngx_int_t  rc;

    if (js->state == ngx_jscan_number && js->level == 0) {
        /* a number alone ends with the document */

        rc = ngx_http_llm_jscan_number_end(js, js->base);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (js->state != ngx_jscan_done) {
        js->at = js->base;
        ngx_http_llm_jscan_fail(js, "the document ends too soon");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_jscan_begin(ngx_http_llm_jscan_t *js, u_char ch)
{
    ngx_uint_t  level, token;

    switch (ch) {

    case '{':
    case '[':
        level = js->level;

        if (level == NGX_HTTP_LLM_JSCAN_MAX_DEPTH) {
            ngx_http_llm_jscan_fail(js, "the document is nested too deeply");
        }

        if (ch == '{') {
            js->objects[level / 8] |= (uint8_t) (1 << (level % 8));
            js->state = ngx_jscan_key_or_end;
            token = NGX_HTTP_LLM_JSCAN_OBJECT;

        } else {
            js->objects[level / 8] &= (uint8_t) ~(1 << (level % 8));
            js->state = ngx_jscan_value_or_end;
            token = NGX_HTTP_LLM_JSCAN_ARRAY;
        }

        js->level++;
        js->depth = level;

        return js->handler(js, token);

    case '"':
        js->state = ngx_jscan_string;
        js->key = 0;
        js->len = 0;
        js->size = 0;
        return NGX_OK;

    case 't':
    case 'f':
    case 'n':
        js->state = ngx_jscan_literal;
        js->code = (ch == 't') ? 0 : (ch == 'f') ? 1 : 2;
        js->sub = 1;
        return NGX_OK;

    default:
        if (ch != '-' && (ch < '0' || ch > '9')) {
            ngx_http_llm_jscan_fail(js, "an unexpected character");
        }

        js->state = ngx_jscan_number;
        js->sub = (ch == '-') ? ngx_jscan_minus
                  : (ch == '0') ? ngx_jscan_zero : ngx_jscan_int;
        js->len = 1;
        js->size = 1;
        js->keep[0] = ch;
        return NGX_OK;
    }
}


static ngx_int_t
ngx_http_llm_jscan_close(ngx_http_llm_jscan_t *js, u_char ch, off_t end)
{
    ngx_uint_t  level, object;

    level = js->level;

    if (level == 0 || (ch != '}' && ch != ']')) {
        ngx_http_llm_jscan_fail(js, "an unexpected character");
    }

    object = js->objects[(level - 1) / 8] & (1 << ((level - 1) % 8));

    if ((ch == '}') != (object != 0)) {
        ngx_http_llm_jscan_fail(js, "a container closed by the wrong "
                                    "bracket");
    }

    js->level = --level;
    js->state = level ? ngx_jscan_after : ngx_jscan_done;

    return ngx_http_llm_jscan_emit(js, NGX_HTTP_LLM_JSCAN_END, end);
}


static ngx_int_t
ngx_http_llm_jscan_emit(ngx_http_llm_jscan_t *js, ngx_uint_t token,
    off_t end)
{
    js->depth = js->level;
    js->end = end;

    return js->handler(js, token);
}


/*
 * The fast path: whole tokens of compact or pretty JSON in one piece,
 * the machine's state where the code is (a label a state) and in
 * locals, the text of a string or number given to the handler where it
 * is in the piece (not copied to keep). It stops, with the state as the
 * byte-at-a-time machine has it there, at anything else: an escape or a
 * byte from 0x80 in a string, a string or number longer than
 * NGX_HTTP_LLM_JSCAN_KEEP, a token the piece cuts, an error (for the
 * machine to name), the end of the root. The state is set only where
 * it stops: where "key_or_end" or "value_or_end" stops at a byte other
 * than the closing bracket, "key" or "value" takes that byte alike.
 */

/* the offset of q in the document: one addition (delta: base - start) */
#define ngx_http_llm_jscan_off(q)  ((off_t) (uintptr_t) (q) + delta)

/* white space skipped (none, mostly); at the piece's end, stop in s */
#define ngx_http_llm_jscan_skip(s)                                          \
    if (p == last || *p <= ' ') {                                           \
        while (p < last && ngx_http_llm_jscan_space(*p)) {                  \
            p++;                                                            \
        }                                                                   \
                                                                            \
        if (p == last) {                                                    \
            state = s;                                                      \
            goto stop;                                                      \
        }                                                                   \
    }

/* the handler; if it stops the scan, the state is s */
#define ngx_http_llm_jscan_call(token, s)                                   \
    *rc = js->handler(js, token);                                           \
                                                                            \
    if (*rc != NGX_OK) {                                                    \
        state = s;                                                          \
        goto stop;                                                          \
    }

/* the container at a level from 1 is an object */
#define ngx_http_llm_jscan_object(js, level)                                \
    (((js)->objects[((level) - 1) / 8] >> (((level) - 1) % 8)) & 1)


static u_char *
ngx_http_llm_jscan_fast(ngx_http_llm_jscan_t *js, u_char *p, u_char *start,
    u_char *last, ngx_int_t *rc)
{
    u_char      *q;
    off_t        delta;
    ngx_uint_t   state, level, token, object;

    level = js->level;
    delta = js->base - (off_t) (uintptr_t) start;

    /* the open container's kind, looked up again only when it closes */
    object = level ? ngx_http_llm_jscan_object(js, level) : 0;

    switch (js->state) {
    case ngx_jscan_value_or_end:
        goto value_or_end;
    case ngx_jscan_key:
        goto key;
    case ngx_jscan_key_or_end:
        goto key_or_end;
    case ngx_jscan_colon:
        goto colon;
    case ngx_jscan_after:
        goto after;
    default: /* ngx_jscan_value */
        goto value;
    }

key_or_end:

    ngx_http_llm_jscan_skip(ngx_jscan_key_or_end);

    if (*p == '}') {
        goto close;
    }

    goto key_quote;

key:

    ngx_http_llm_jscan_skip(ngx_jscan_key);

key_quote:

    if (*p != '"') {
        state = ngx_jscan_key;
        goto stop;
    }

    q = ngx_http_llm_jscan_quote(p, last);

    if (q == NULL) {
        state = ngx_jscan_key;
        goto stop;
    }

    js->depth = level;
    js->start = ngx_http_llm_jscan_off(p);
    js->text = p + 1;
    js->len = q - p - 1;
    js->size = js->len;
    p = q + 1;
    js->end = ngx_http_llm_jscan_off(p);

    ngx_http_llm_jscan_call(NGX_HTTP_LLM_JSCAN_KEY, ngx_jscan_colon);

colon:

    ngx_http_llm_jscan_skip(ngx_jscan_colon);

    if (*p != ':') {
        state = ngx_jscan_colon;
        goto stop;
    }

    p++;

value:

    ngx_http_llm_jscan_skip(ngx_jscan_value);

value_first:

    switch (*p) {

    case '"':

        /* a string value, plain and whole in the piece */

        q = ngx_http_llm_jscan_quote(p, last);

        if (q == NULL) {
            state = ngx_jscan_value;
            goto stop;
        }

        js->start = ngx_http_llm_jscan_off(p);
        js->text = p + 1;
        js->len = q - p - 1;
        js->size = js->len;
        p = q + 1;
        token = NGX_HTTP_LLM_JSCAN_STRING;
        goto scalar;

    case '{':
    case '[':
        if (level == NGX_HTTP_LLM_JSCAN_MAX_DEPTH) {
            state = ngx_jscan_value;
            goto stop;
        }

        js->depth = level;
        js->start = ngx_http_llm_jscan_off(p);
        p++;
        js->end = ngx_http_llm_jscan_off(p);

        if (p[-1] == '{') {
            js->objects[level / 8] |= (uint8_t) (1 << (level % 8));
            level++;
            object = 1;

            ngx_http_llm_jscan_call(NGX_HTTP_LLM_JSCAN_OBJECT,
                                    ngx_jscan_key_or_end);
            goto key_or_end;
        }

        js->objects[level / 8] &= (uint8_t) ~(1 << (level % 8));
        level++;
        object = 0;

        ngx_http_llm_jscan_call(NGX_HTTP_LLM_JSCAN_ARRAY,
                                ngx_jscan_value_or_end);
        goto value_or_end;

    /* literals: a compare of constant length, no call */

    case 't':
        if (last - p < 4 || ngx_memcmp(p, "true", 4) != 0) {
            state = ngx_jscan_value;
            goto stop;
        }

        js->start = ngx_http_llm_jscan_off(p);
        p += 4;
        token = NGX_HTTP_LLM_JSCAN_TRUE;
        goto scalar;

    case 'f':
        if (last - p < 5 || ngx_memcmp(p, "false", 5) != 0) {
            state = ngx_jscan_value;
            goto stop;
        }

        js->start = ngx_http_llm_jscan_off(p);
        p += 5;
        token = NGX_HTTP_LLM_JSCAN_FALSE;
        goto scalar;

    case 'n':
        if (last - p < 4 || ngx_memcmp(p, "null", 4) != 0) {
            state = ngx_jscan_value;
            goto stop;
        }

        js->start = ngx_http_llm_jscan_off(p);
        p += 4;
        token = NGX_HTTP_LLM_JSCAN_NULL;
        goto scalar;

    default:
        break;
    }

    /*
     * a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, which the
     * byte after it tells has ended (a digit after a 0 errs)
     */

    q = p;

    if (*q == '-' && ++q == last) {
        state = ngx_jscan_value;
        goto stop;
    }

    if (*q == '0') {
        if (++q == last || (*q >= '0' && *q <= '9')) {
            state = ngx_jscan_value;
            goto stop;
        }

    } else if (*q >= '1' && *q <= '9') {
        do {
            if (++q == last) {
                state = ngx_jscan_value;
                goto stop;
            }

        } while (*q >= '0' && *q <= '9');

    } else {
        state = ngx_jscan_value;
        goto stop;
    }

    /* mostly an integer: a fraction or exponent apart */

    if (*q == '.' || *q == 'e' || *q == 'E') {

        if (*q == '.') {
            if (++q == last || *q < '0' || *q > '9') {
                state = ngx_jscan_value;
                goto stop;
            }

            do { q++; } while (q < last && *q >= '0' && *q <= '9');
        }

        if (q < last && (*q == 'e' || *q == 'E')) {
            if (++q < last && (*q == '+' || *q == '-')) {
                q++;
            }

            if (q == last || *q < '0' || *q > '9') {
                state = ngx_jscan_value;
                goto stop;
            }

            do { q++; } while (q < last && *q >= '0' && *q <= '9');
        }

        if (q == last) {
            state = ngx_jscan_value;
            goto stop;
        }
    }

    if (q - p > NGX_HTTP_LLM_JSCAN_KEEP) {
        state = ngx_jscan_value;
        goto stop;
    }

    js->start = ngx_http_llm_jscan_off(p);
    js->text = p;
    js->len = q - p;
    js->size = js->len;
    p = q;
    token = NGX_HTTP_LLM_JSCAN_NUMBER;

scalar:

    js->depth = level;
    js->end = ngx_http_llm_jscan_off(p);

    if (level == 0) {
        *rc = js->handler(js, token);
        state = ngx_jscan_done;
        goto stop;
    }

    ngx_http_llm_jscan_call(token, ngx_jscan_after);

after:

    ngx_http_llm_jscan_skip(ngx_jscan_after);

    if (*p == ',') {
        p++;

        if (object) {
            goto key;
        }

        goto value;
    }

close:

    /*
     * from "key_or_end" with "}" or "value_or_end" with "]", which the
     * open container takes; from "after" with any byte
     */

    if (*p != (object ? '}' : ']')) {
        state = ngx_jscan_after;
        goto stop;
    }

    level--;
    p++;
    js->depth = level;
    js->end = ngx_http_llm_jscan_off(p);

    if (level == 0) {
        *rc = js->handler(js, NGX_HTTP_LLM_JSCAN_END);
        state = ngx_jscan_done;
        goto stop;
    }

    object = ngx_http_llm_jscan_object(js, level);

    ngx_http_llm_jscan_call(NGX_HTTP_LLM_JSCAN_END, ngx_jscan_after);
    goto after;

value_or_end:

    ngx_http_llm_jscan_skip(ngx_jscan_value_or_end);

    if (*p == ']') {
        goto close;
    }

    goto value_first;

stop:

    js->state = state;
    js->level = level;
    js->text = js->keep;

    return p;
}

#undef ngx_http_llm_jscan_off
#undef ngx_http_llm_jscan_skip
#undef ngx_http_llm_jscan_call
#undef ngx_http_llm_jscan_object


static ngx_int_t
ngx_http_llm_jscan_number_end(ngx_http_llm_jscan_t *js, off_t end)
{
    if (js->sub != ngx_jscan_zero && js->sub != ngx_jscan_int
        && js->sub != ngx_jscan_frac && js->sub != ngx_jscan_exp)
    {
        ngx_http_llm_jscan_fail(js, "a malformed number");
    }

    js->state = js->level ? ngx_jscan_after : ngx_jscan_done;

    return ngx_http_llm_jscan_emit(js, NGX_HTTP_LLM_JSCAN_NUMBER, end);
}


/*
 * The end of a run of bytes that stand for themselves in a string: most
 * of a request body. With SSE2 (x86-64 always), 16 bytes at a time: a
 * byte XOR 2 is above 0x20, as a signed byte, unless it is '"', a
 * control character or a byte from 0x80, and the backslash is compared
 * apart; the mask of the bytes that stand for themselves is all ones
 * until the run ends. Short runs end in the first 16 bytes; past them,
 * 64 bytes a step. Callgrind: ~0.5 instructions a byte of a long run,
 * against 6 a byte at a time.
 */

#if (__SSE2__)

#define ngx_http_llm_jscan_plain16(p)                                       \
    (v = _mm_loadu_si128((const __m128i *) (p)),                            \
     _mm_andnot_si128(_mm_cmpeq_epi8(v, backslash),                         \
                      _mm_cmpgt_epi8(_mm_xor_si128(v, two), bound)))

#endif


static ngx_http_llm_jscan_inline u_char *
ngx_http_llm_jscan_run(u_char *p, u_char *last)
{
#if (__SSE2__)
    uint64_t  mask;
    __m128i   v, two, bound, backslash, s0, s1, s2, s3;

    two = _mm_set1_epi8(0x02);
    bound = _mm_set1_epi8(0x20);
    backslash = _mm_set1_epi8('\\');

    if (last - p >= 16) {
        mask = (unsigned) _mm_movemask_epi8(ngx_http_llm_jscan_plain16(p))
               ^ 0xffff;

        if (mask) {
            return p + __builtin_ctzll(mask);
        }

        p += 16;

        while (last - p >= 64) {
            s0 = ngx_http_llm_jscan_plain16(p);
            s1 = ngx_http_llm_jscan_plain16(p + 16);
            s2 = ngx_http_llm_jscan_plain16(p + 32);
            s3 = ngx_http_llm_jscan_plain16(p + 48);

            if (_mm_movemask_epi8(_mm_and_si128(_mm_and_si128(s0, s1),
                                                _mm_and_si128(s2, s3)))
                != 0xffff)
            {
                mask = ~((uint64_t) (unsigned) _mm_movemask_epi8(s0)
                         | (uint64_t) (unsigned) _mm_movemask_epi8(s1) << 16
                         | (uint64_t) (unsigned) _mm_movemask_epi8(s2) << 32
                         | (uint64_t) (unsigned) _mm_movemask_epi8(s3) << 48);

                return p + __builtin_ctzll(mask);
            }

            p += 64;
        }

        while (last - p >= 16) {
            mask = (unsigned) _mm_movemask_epi8(ngx_http_llm_jscan_plain16(p))
                   ^ 0xffff;

            if (mask) {
                return p + __builtin_ctzll(mask);
            }

            p += 16;
        }
    }
#endif

    while (p < last && ngx_http_llm_jscan_plain[*p]) {
        p++;
    }

    return p;
}


/*
 * The closing quote of a string opened at p, plain (no escape, no byte
 * from 0x80) and whole in the piece, not longer than keep; NULL if not.
 * Most strings end in the 16 bytes after the quote, where one step both
 * finds the end and bounds the length; a longer one is looked at only
 * as far as keep, the machine taking it from its start.
 */

static ngx_http_llm_jscan_inline u_char *
ngx_http_llm_jscan_quote(u_char *p, u_char *last)
{
    u_char    *q, *end;
#if (__SSE2__)
    unsigned   mask;
    __m128i    v, two, bound, backslash;

    if (last - p > 16) {
        two = _mm_set1_epi8(0x02);
        bound = _mm_set1_epi8(0x20);
        backslash = _mm_set1_epi8('\\');

        mask = _mm_movemask_epi8(ngx_http_llm_jscan_plain16(p + 1)) ^ 0xffff;

        if (mask) {
            q = p + 1 + __builtin_ctz(mask);
            return (*q == '"') ? q : NULL;
        }

        q = p + 17;

    } else {
        q = p + 1;
    }
#else
    q = p + 1;
#endif

    /* the quote may be just after keep's bytes */

    end = (last - p > NGX_HTTP_LLM_JSCAN_KEEP + 2)
          ? p + NGX_HTTP_LLM_JSCAN_KEEP + 2 : last;

    q = ngx_http_llm_jscan_run(q, end);

    if (q == end || *q != '"') {
        return NULL;
    }

    return q;
}


/*
 * The same run for a reader of its own (an OpenAI answer's tail): the
 * first quote, backslash, control character or byte from 0x80 from p,
 * or last
 */

u_char *
ngx_http_llm_jscan_plain_run(u_char *p, u_char *last)
{
    return ngx_http_llm_jscan_run(p, last);
}


/* a byte past keep, to the sink */

static ngx_inline void
ngx_http_llm_jscan_put(ngx_http_llm_jscan_t *js, u_char ch)
{
    ngx_http_llm_jscan_sink_t  *s;

    s = js->sink;

    if (js->size > NGX_HTTP_LLM_JSCAN_KEEP && s->last < s->end) {
        *s->last++ = ch;
        return;
    }

    ngx_http_llm_jscan_spill(js, &ch, 1);
}


/*
 * A run the 16-byte move does not take: to keep as far as it has room,
 * the rest to the sink, if any. Out of the hot path, so that the scan
 * without a sink costs what it did before there was one.
 */

static void
ngx_http_llm_jscan_more(ngx_http_llm_jscan_t *js, u_char *p, size_t n)
{
    size_t  kept;

    kept = ngx_min(n, NGX_HTTP_LLM_JSCAN_KEEP - js->len);

    ngx_memcpy(js->keep + js->len, p, kept);
    js->len += kept;
    js->size += kept;

    if (kept < n && js->sink) {
        ngx_http_llm_jscan_spill(js, p + kept, n - kept);
    }

    js->size += n - kept;
}


/*
 * Bytes of a value past keep, to the sink; js->size counts those before
 * them. The first such bytes of a value start the sink again, with keep.
 * Without memory, the sink fails and stays failed: the handler stops.
 */

static void
ngx_http_llm_jscan_spill(ngx_http_llm_jscan_t *js, u_char *p, size_t n)
{
    size_t                      size, used, need;
    u_char                     *buf;
    ngx_http_llm_jscan_sink_t  *s;

    s = js->sink;

    if (s->failed) {
        return;
    }

    need = n;

    if (js->size == NGX_HTTP_LLM_JSCAN_KEEP) {
        s->last = s->start;
        need += NGX_HTTP_LLM_JSCAN_KEEP;
    }

    if ((size_t) (s->end - s->last) < need) {
        used = s->last - s->start;
        size = ngx_max(2 * (size_t) (s->end - s->start), used + need);
        size = ngx_max(size, NGX_HTTP_LLM_JSCAN_SINK_MIN);

        buf = ngx_pnalloc(s->pool, size);
        if (buf == NULL) {
            s->failed = 1;
            return;
        }

        if (s->start) {
            ngx_memcpy(buf, s->start, used);
            ngx_pfree(s->pool, s->start);
        }

        s->start = buf;
        s->last = buf + used;
        s->end = buf + size;
    }

    if (js->size == NGX_HTTP_LLM_JSCAN_KEEP) {
        s->last = ngx_cpymem(s->last, js->keep, NGX_HTTP_LLM_JSCAN_KEEP);
    }

    s->last = ngx_cpymem(s->last, p, n);
}


void
ngx_http_llm_jscan_sink_free(ngx_http_llm_jscan_sink_t *sink)
{
    if (sink->start) {
        ngx_pfree(sink->pool, sink->start);
    }

    sink->start = NULL;
    sink->last = NULL;
    sink->end = NULL;
}


/* a \uXXXX escape, as UTF-8; surrogate pairs joined, a lone half is "?" */

static void
ngx_http_llm_jscan_code(ngx_http_llm_jscan_t *js, uint32_t c)
{
    if (js->high) {
        if (c >= 0xdc00 && c <= 0xdfff) {
            c = 0x10000 + ((js->high - 0xd800) << 10) + (c - 0xdc00);
            js->high = 0;

        } else {
            js->high = 0;
            ngx_http_llm_jscan_keep(js, '?');
        }
    }

    if (c >= 0xd800 && c <= 0xdbff) {
        js->high = c;
        return;
    }

    if (c >= 0xdc00 && c <= 0xdfff) {
        ngx_http_llm_jscan_keep(js, '?');
        return;
    }

    if (c < 0x80) {
        ngx_http_llm_jscan_keep(js, c);

    } else if (c < 0x800) {
        ngx_http_llm_jscan_keep(js, 0xc0 | (c >> 6));
        ngx_http_llm_jscan_keep(js, 0x80 | (c & 0x3f));

    } else if (c < 0x10000) {
        ngx_http_llm_jscan_keep(js, 0xe0 | (c >> 12));
        ngx_http_llm_jscan_keep(js, 0x80 | ((c >> 6) & 0x3f));
        ngx_http_llm_jscan_keep(js, 0x80 | (c & 0x3f));

    } else {
        ngx_http_llm_jscan_keep(js, 0xf0 | (c >> 18));
        ngx_http_llm_jscan_keep(js, 0x80 | ((c >> 12) & 0x3f));
        ngx_http_llm_jscan_keep(js, 0x80 | ((c >> 6) & 0x3f));
        ngx_http_llm_jscan_keep(js, 0x80 | (c & 0x3f));
    }
}
