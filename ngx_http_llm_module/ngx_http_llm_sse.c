
/*
 * Server-sent events framing. An event wholly inside one buffer is handed
 * over in place; one split over buffers is gathered in a buffer of its
 * own first (bounded by max).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_sse.h"


static ngx_int_t ngx_http_llm_sse_event(ngx_http_llm_sse_t *sse,
    u_char *start, u_char *end, ngx_http_llm_sse_handler_pt handler,
    void *data);
static ngx_int_t ngx_http_llm_sse_keep(ngx_http_llm_sse_t *sse, u_char *p,
    u_char *last);


/*
 * The end of the line at p: its LF or CR, or last. memchr() runs at
 * memory speed (lines of data are a few hundred bytes); a CR is looked
 * for only before the LF, where a line ending in CR would end sooner.
 */

static ngx_inline u_char *
ngx_http_llm_sse_eol(u_char *p, u_char *last)
{
    u_char  *lf, *cr;

    lf = memchr(p, '\n', last - p);

    if (lf == NULL) {
        lf = last;
    }

    cr = memchr(p, '\r', lf - p);

    return cr ? cr : lf;
}


ngx_int_t
ngx_http_llm_sse_feed(ngx_http_llm_sse_t *sse, u_char *p, u_char *last,
    ngx_http_llm_sse_handler_pt handler, void *data)
{
    u_char     *start, *eol, ch;
    ngx_int_t   rc;
    ngx_uint_t  blank;

    start = p;

    for ( /* void */ ; p < last; p++) {
        ch = *p;

        if (ch != '\n' && ch != '\r') {
            /* within a line: on to its end at once */

            eol = ngx_http_llm_sse_eol(p, last);

            sse->column += eol - p;
            sse->cr = 0;

            p = eol - 1;
            continue;
        }

        if (ch == '\n' && sse->cr) {
            /* the LF of a CRLF: the line ended at the CR */
            sse->cr = 0;
            continue;
        }

        sse->cr = (ch == '\r');

        blank = (sse->column == 0);
        sse->column = 0;

        if (!blank) {
            continue;
        }

        /* an empty line: the event ends with this byte */

        if (ngx_http_llm_sse_pending(sse)) {
            if (ngx_http_llm_sse_keep(sse, start, p + 1) != NGX_OK) {
                return NGX_DECLINED;
            }

            rc = ngx_http_llm_sse_event(sse, sse->partial->pos,
                                        sse->partial->last, handler, data);
            sse->partial->pos = sse->partial->start;
            sse->partial->last = sse->partial->start;

        } else {
            if ((size_t) (p + 1 - start) > sse->max) {
                /* as large as one gathered from pieces would be refused */
                return NGX_DECLINED;
            }

            rc = ngx_http_llm_sse_event(sse, start, p + 1, handler, data);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        start = p + 1;
    }

    if (start < last) {
        return ngx_http_llm_sse_keep(sse, start, last);
    }

    return NGX_OK;
}


/* keeps the beginning of an event that continues in the next buffer */

static ngx_int_t
ngx_http_llm_sse_keep(ngx_http_llm_sse_t *sse, u_char *p, u_char *last)
{
    size_t      size, have;
    ngx_buf_t  *b;

    b = sse->partial;
    have = b ? (size_t) (b->last - b->pos) : 0;
    size = have + (last - p);

    if (size > sse->max) {
        return NGX_DECLINED;
    }

    if (b == NULL || (size_t) (b->end - b->start) < size) {
        b = ngx_create_temp_buf(sse->pool, ngx_max(size * 2, 1024));
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (have) {
            b->last = ngx_cpymem(b->last, sse->partial->pos, have);
        }

        if (sse->partial) {
            ngx_pfree(sse->pool, sse->partial->start);
        }

        sse->partial = b;
    }

    b->last = ngx_cpymem(b->last, p, last - p);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_sse_event(ngx_http_llm_sse_t *sse, u_char *start, u_char *end,
    ngx_http_llm_sse_handler_pt handler, void *data)
{
    size_t                     n, len;
    u_char                    *p, *line, *eol, *colon, *value;
    ngx_uint_t                 lines;
    ngx_http_llm_sse_event_t   ev;

    ngx_memzero(&ev, sizeof(ngx_http_llm_sse_event_t));

    ev.raw.data = start;
    ev.raw.len = end - start;

    lines = 0;

    for (line = start; line < end; line = eol) {

        eol = ngx_http_llm_sse_eol(line, end);
        len = eol - line;

        /* skip the line's end: LF, CR or CRLF */

        if (eol < end && *eol == '\r') {
            eol++;
        }

        if (eol < end && *eol == '\n') {
            eol++;
        }

        if (len == 0 || *line == ':') {
            /* an empty line, or a comment */
            continue;
        }

        colon = ngx_strlchr(line, line + len, ':');
        value = colon ? colon + 1 : line + len;

        if (value < line + len && *value == ' ') {
            value++;
        }

        n = (colon ? colon : line + len) - line;

        if (n == 5 && ngx_strncmp(line, "event", 5) == 0) {
            ev.event.data = value;
            ev.event.len = line + len - value;
            continue;
        }

        if (n != 4 || ngx_strncmp(line, "data", 4) != 0) {
            continue;
        }

        if (lines++ == 0) {
            ev.data.data = value;
            ev.data.len = line + len - value;
            continue;
        }

        /* more data lines: joined by LF in a scratch buffer */

        if (lines == 2) {
            if (sse->scratch == NULL
                || (size_t) (sse->scratch->end - sse->scratch->start)
                   < (size_t) (end - start))
            {
                sse->scratch = ngx_create_temp_buf(sse->pool,
                                                   ngx_max(end - start, 1024));
                if (sse->scratch == NULL) {
                    return NGX_ERROR;
                }
            }

            p = ngx_cpymem(sse->scratch->start, ev.data.data, ev.data.len);
            ev.data.data = sse->scratch->start;

        } else {
            p = ev.data.data + ev.data.len;
        }

        *p++ = '\n';
        p = ngx_cpymem(p, value, line + len - value);
        ev.data.len = p - ev.data.data;
    }

    if (ev.raw.len == 0 || (lines == 0 && ev.event.len == 0)) {
        /* nothing but blank lines and comments: passed on as they are */
        ev.data.data = NULL;
    }

    return handler(data, &ev);
}
