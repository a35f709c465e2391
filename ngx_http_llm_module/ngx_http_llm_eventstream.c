
/*
 * AWS event stream framing. A frame wholly inside one buffer is handed
 * over in place; one split over buffers is gathered in a buffer of its
 * own first (bounded by max). Both CRCs are checked before a frame is
 * believed: a length from a damaged prelude must not make us wait for
 * bytes that never come.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_eventstream.h"


/* prelude (12) and message CRC (4) */
#define NGX_HTTP_LLM_ES_PRELUDE  12
#define NGX_HTTP_LLM_ES_MIN      16


static ngx_int_t ngx_http_llm_es_prelude(ngx_http_llm_es_t *es, u_char *p);
static ngx_int_t ngx_http_llm_es_frame(ngx_http_llm_es_t *es, u_char *p,
    size_t total, ngx_http_llm_sse_handler_pt handler, void *data);
static ngx_int_t ngx_http_llm_es_keep(ngx_http_llm_es_t *es, u_char *p,
    size_t len, size_t size);


#define ngx_http_llm_es_be32(p)                                              \
    ((uint32_t) (p)[0] << 24 | (uint32_t) (p)[1] << 16                       \
     | (uint32_t) (p)[2] << 8 | (uint32_t) (p)[3])


ngx_int_t
ngx_http_llm_es_feed(ngx_http_llm_es_t *es, u_char *p, u_char *last,
    ngx_http_llm_sse_handler_pt handler, void *data)
{
    size_t      have, need, n;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    while (p < last) {

        if (ngx_http_llm_es_pending(es)) {

            /* a frame begun in an earlier buffer */

            b = es->partial;
            have = b->last - b->pos;
            need = (es->total ? es->total : NGX_HTTP_LLM_ES_PRELUDE) - have;
            n = ngx_min(need, (size_t) (last - p));

            if (ngx_http_llm_es_keep(es, p, n, es->total) != NGX_OK) {
                return NGX_ERROR;
            }

            p += n;
            b = es->partial;

            if (es->total == 0) {
                if ((size_t) (b->last - b->pos) < NGX_HTTP_LLM_ES_PRELUDE) {
                    continue;
                }

                if (ngx_http_llm_es_prelude(es, b->pos) != NGX_OK) {
                    return NGX_DECLINED;
                }

                continue;
            }

            if ((size_t) (b->last - b->pos) < es->total) {
                continue;
            }

            rc = ngx_http_llm_es_frame(es, b->pos, es->total, handler, data);

            b->pos = b->start;
            b->last = b->start;
            es->total = 0;

            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (last - p < NGX_HTTP_LLM_ES_PRELUDE) {
            es->total = 0;
            return ngx_http_llm_es_keep(es, p, last - p, 0);
        }

        if (ngx_http_llm_es_prelude(es, p) != NGX_OK) {
            return NGX_DECLINED;
        }

        if ((size_t) (last - p) < es->total) {
            return ngx_http_llm_es_keep(es, p, last - p, es->total);
        }

        rc = ngx_http_llm_es_frame(es, p, es->total, handler, data);

        p += es->total;
        es->total = 0;

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* the prelude: lengths that make sense, under their own CRC */

static ngx_int_t
ngx_http_llm_es_prelude(ngx_http_llm_es_t *es, u_char *p)
{
    uint32_t  total, headers;

    if (ngx_crc32_long(p, 8) != ngx_http_llm_es_be32(p + 8)) {
        es->error = "prelude CRC mismatch";
        return NGX_DECLINED;
    }

    total = ngx_http_llm_es_be32(p);
    headers = ngx_http_llm_es_be32(p + 4);

    if (total < NGX_HTTP_LLM_ES_MIN || total > es->max
        || headers > total - NGX_HTTP_LLM_ES_MIN)
    {
        es->error = "invalid frame length";
        return NGX_DECLINED;
    }

    es->total = total;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_es_keep(ngx_http_llm_es_t *es, u_char *p, size_t len,
    size_t size)
{
    size_t      have;
    ngx_buf_t  *b;

    b = es->partial;
    have = b ? (size_t) (b->last - b->pos) : 0;

    size = ngx_max(size, have + len);

    if (b == NULL || (size_t) (b->end - b->pos) < size) {
        b = ngx_create_temp_buf(es->pool, ngx_max(size, 1024));
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (have) {
            b->last = ngx_cpymem(b->last, es->partial->pos, have);
        }

        if (es->partial) {
            ngx_pfree(es->pool, es->partial->start);
        }

        es->partial = b;
    }

    b->last = ngx_cpymem(b->last, p, len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_es_frame(ngx_http_llm_es_t *es, u_char *p, size_t total,
    ngx_http_llm_sse_handler_pt handler, void *data)
{
    size_t                     len, vlen;
    u_char                    *h, *end, *name, *value, type;
    ngx_str_t                  message_type, event_type, exception_type,
                               error_code, error_message;
    ngx_http_llm_sse_event_t   ev;

    if (ngx_crc32_long(p, total - 4) != ngx_http_llm_es_be32(p + total - 4))
    {
        es->error = "message CRC mismatch";
        return NGX_DECLINED;
    }

    ngx_str_null(&message_type);
    ngx_str_null(&event_type);
    ngx_str_null(&exception_type);
    ngx_str_null(&error_code);
    ngx_str_null(&error_message);

    h = p + NGX_HTTP_LLM_ES_PRELUDE;
    end = h + ngx_http_llm_es_be32(p + 4);

    /* headers: name length, name, value type, value */

    while (h < end) {
        len = *h++;

        if ((size_t) (end - h) < len + 1) {
            goto invalid;
        }

        name = h;
        h += len;
        type = *h++;

        switch (type) {

        case 0:                       /* true */
        case 1:                       /* false */
            vlen = 0;
            break;

        case 2:                       /* byte */
            vlen = 1;
            break;

        case 3:                       /* int16 */
            vlen = 2;
            break;

        case 4:                       /* int32 */
            vlen = 4;
            break;

        case 5:                       /* int64 */
        case 8:                       /* timestamp */
            vlen = 8;
            break;

        case 9:                       /* uuid */
            vlen = 16;
            break;

        case 6:                       /* bytes */
        case 7:                       /* string */
            if (end - h < 2) {
                goto invalid;
            }

            vlen = (size_t) h[0] << 8 | h[1];
            h += 2;
            break;

        default:
            goto invalid;
        }

        if ((size_t) (end - h) < vlen) {
            goto invalid;
        }

        value = h;
        h += vlen;

        if (type != 7) {
            continue;
        }

#define ngx_http_llm_es_header(n, dst)                                       \
        if (len == sizeof(n) - 1 && ngx_strncmp(name, n, len) == 0) {        \
            (dst).data = value;                                              \
            (dst).len = vlen;                                                \
            continue;                                                        \
        }

        ngx_http_llm_es_header(":message-type", message_type);
        ngx_http_llm_es_header(":event-type", event_type);
        ngx_http_llm_es_header(":exception-type", exception_type);
        ngx_http_llm_es_header(":error-code", error_code);
        ngx_http_llm_es_header(":error-message", error_message);

#undef ngx_http_llm_es_header
    }

    ngx_memzero(&ev, sizeof(ngx_http_llm_sse_event_t));

    ev.raw.data = p;
    ev.raw.len = total;
    ev.data.data = end;
    ev.data.len = p + total - 4 - end;

    if (message_type.len == 9
        && ngx_strncmp(message_type.data, "exception", 9) == 0)
    {
        ev.exception = 1;
        ev.event = exception_type;

    } else if (message_type.len == 5
               && ngx_strncmp(message_type.data, "error", 5) == 0)
    {
        ev.exception = 1;
        ev.event = error_code;
        ev.data = error_message;

    } else {
        ev.event = event_type;
    }

    return handler(data, &ev);

invalid:

    es->error = "invalid headers";
    return NGX_DECLINED;
}
