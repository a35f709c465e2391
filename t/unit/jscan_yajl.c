
/*
 * ngx_http_llm_jscan.c against yajl: for a document, the same verdict
 * (JSON or not) and the same tokens (kind, depth, decoded text up to
 * NGX_HTTP_LLM_JSCAN_KEEP bytes and its whole length), whether it is fed
 * whole, cut in two at every offset, or a byte at a time. And against
 * itself: fed a byte at a time, the scanner never takes its fast path
 * (whole tokens of a piece), so every other way must give the same
 * offsets of each token, and for what is not JSON the same error at the
 * same offset. Included by
 * fuzz/fuzz_jscan.c; alone (t/441-jscan.t) it reads the documents named
 * on its command line and prints "ok NAME" or what differs.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_llm_jscan.h"
#include "jscan_surrogate.h"


/* tokens as lines of text, to compare */
typedef struct {
    u_char       *buf;
    size_t        len;
    size_t        size;
    ngx_uint_t    depth;      /* yajl's side: open containers */
    u_char       *offsets;    /* the scanner's side: where tokens are */
    size_t        olen;
    size_t        osize;
} jscan_log_t;


static void
log_add(jscan_log_t *l, const char *kind, ngx_uint_t depth,
    const u_char *text, size_t len, size_t size)
{
    size_t  need;

    need = 64 + len;

    if (l->len + need > l->size) {
        l->size = (l->len + need) * 2;
        l->buf = realloc(l->buf, l->size);
        if (l->buf == NULL) {
            abort();
        }
    }

    l->len += snprintf((char *) l->buf + l->len, 64, "%s %lu %lu ", kind,
                       (unsigned long) depth, (unsigned long) size);

    if (text) {
        memcpy(l->buf + l->len, text, len);
        l->len += len;
    }

    l->buf[l->len++] = '\n';
}


static void
log_text(jscan_log_t *l, const char *kind, const u_char *s, size_t len)
{
    log_add(l, kind, l->depth, s,
            len < NGX_HTTP_LLM_JSCAN_KEEP ? len : NGX_HTTP_LLM_JSCAN_KEEP,
            len);
}


static int
y_null(void *ctx)
{
    log_add(ctx, "null", ((jscan_log_t *) ctx)->depth, NULL, 0, 0);
    return 1;
}


static int
y_boolean(void *ctx, int v)
{
    log_add(ctx, v ? "true" : "false", ((jscan_log_t *) ctx)->depth, NULL, 0,
            0);
    return 1;
}


static int
y_number(void *ctx, const char *s, size_t len)
{
    log_text(ctx, "number", (const u_char *) s, len);
    return 1;
}


static int
y_string(void *ctx, const unsigned char *s, size_t len)
{
    log_text(ctx, "string", s, len);
    return 1;
}


static int
y_key(void *ctx, const unsigned char *s, size_t len)
{
    log_text(ctx, "key", s, len);
    return 1;
}


static int
y_start_map(void *ctx)
{
    jscan_log_t  *l = ctx;

    log_add(l, "object", l->depth++, NULL, 0, 0);
    return 1;
}


static int
y_start_array(void *ctx)
{
    jscan_log_t  *l = ctx;

    log_add(l, "array", l->depth++, NULL, 0, 0);
    return 1;
}


static int
y_end(void *ctx)
{
    jscan_log_t  *l = ctx;

    log_add(l, "end", --l->depth, NULL, 0, 0);
    return 1;
}


static yajl_callbacks  y_callbacks = {
    y_null, y_boolean, NULL, NULL, y_number, y_string, y_start_map, y_key,
    y_end, y_start_array, y_end
};


/* a token's offsets: where it starts (an END has none) and ends */

static void
log_offsets(jscan_log_t *l, ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    if (l->olen + 64 > l->osize) {
        l->osize = (l->olen + 64) * 2;
        l->offsets = realloc(l->offsets, l->osize);
        if (l->offsets == NULL) {
            abort();
        }
    }

    l->olen += snprintf((char *) l->offsets + l->olen, 64, "%ld %ld\n",
                        token == NGX_HTTP_LLM_JSCAN_END
                        ? -1L : (long) js->start, (long) js->end);
}


static ngx_int_t
j_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    jscan_log_t   *l = js->data;
    static const char  *kinds[] = {
        "", "object", "array", "end", "key", "string", "number", "true",
        "false", "null"
    };

    log_offsets(l, js, token);

    if (token >= NGX_HTTP_LLM_JSCAN_KEY && token <= NGX_HTTP_LLM_JSCAN_NUMBER) {
        log_add(l, kinds[token], js->depth, js->text, js->len, js->size);

    } else {
        log_add(l, kinds[token], js->depth, NULL, 0, 0);
    }

    return NGX_OK;
}


static int
yajl_run(const u_char *doc, size_t len, jscan_log_t *l)
{
    yajl_handle  y;
    int          ok;

    y = yajl_alloc(&y_callbacks, NULL, l);

    ok = yajl_parse(y, doc, len) == yajl_status_ok
         && yajl_complete_parse(y) == yajl_status_ok;

    yajl_free(y);

    return ok;
}


/* cuts: 0 whole; n > 0 the first piece is n bytes; -1 a byte at a time */

static int
jscan_run(const u_char *doc, size_t len, ssize_t cut, jscan_log_t *l,
    const char **error, off_t *at)
{
    size_t                 i;
    ngx_int_t              rc;
    ngx_http_llm_jscan_t   js;

    ngx_http_llm_jscan_init(&js, j_token, l);

    if (cut < 0) {
        rc = NGX_OK;

        for (i = 0; i < len && rc == NGX_OK; i++) {
            rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc + i, 1);
        }

    } else if (cut > 0) {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc, cut);

        if (rc == NGX_OK) {
            rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc + cut, len - cut);
        }

    } else {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc, len);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    *error = js.error;
    *at = js.at;

    return rc == NGX_OK;
}


/*
 * 0 when both agree; else prints why. yajl's tokens before an error are
 * not compared (it reports some before it sees the error, differently).
 */

/*
 * A leniency of yajl: after a whole document, a string left open
 * at the end is taken for "more input to come", even by
 * yajl_complete_parse(), so `{} "abc` passes. The scanner refuses it
 * ("bytes after the document"). True when the bytes
 * that made the scanner stop are such an open string.
 */

static int
yajl_open_string_after(const u_char *doc, size_t len)
{
    size_t                 i;
    ngx_int_t              rc;
    jscan_log_t            l;
    ngx_http_llm_jscan_t   js;

    ngx_memzero(&l, sizeof(jscan_log_t));
    ngx_http_llm_jscan_init(&js, j_token, &l);

    rc = NGX_OK;

    for (i = 0; i < len && rc == NGX_OK; i++) {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc + i, 1);
    }

    free(l.buf);
    free(l.offsets);

    if (rc == NGX_OK || js.error == NULL
        || ngx_strcmp(js.error, "bytes after the document") != 0
        || doc[i - 1] != '"')
    {
        return 0;
    }

    /* the rest alone: a string that does not end, with nothing wrong in it */

    ngx_memzero(&l, sizeof(jscan_log_t));
    ngx_http_llm_jscan_init(&js, j_token, &l);

    rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc + i - 1, len - i + 1);

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    free(l.buf);
    free(l.offsets);

    return rc != NGX_OK && js.error != NULL
           && ngx_strcmp(js.error, "the document ends too soon") == 0;
}


/*
 * yajl's third leniency: UTF-8 checked by its shape only, so overlong
 * forms, encoded surrogates, code points above U+10FFFF and the leads
 * C0, C1, F5-F7 pass. The scanner refuses them (RFC 3629). True when a
 * document has one (bytes from 0x80 are only in strings in one yajl
 * takes).
 */

static int
not_rfc3629(const u_char *doc, size_t len)
{
    size_t  i, n, k;
    u_char  c, lo, hi;

    for (i = 0; i < len; i += n) {
        c = doc[i];
        n = 1;
        lo = 0x80;
        hi = 0xbf;

        if (c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            lo = (c == 0xe0) ? 0xa0 : 0x80;
            hi = (c == 0xed) ? 0x9f : 0xbf;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            lo = (c == 0xf0) ? 0x90 : 0x80;
            hi = (c == 0xf4) ? 0x8f : 0xbf;

        } else {
            return 1;
        }

        if (len - i < n) {
            return 1;
        }

        for (k = 1; k < n; k++) {
            if (doc[i + k] < lo || doc[i + k] > hi) {
                return 1;
            }

            lo = 0x80;
            hi = 0xbf;
        }
    }

    return 0;
}


static int
jscan_compare(const u_char *doc, size_t len, const char *name)
{
    int           y_ok, j_ok, one_ok, bad;
    off_t         at, one_at;
    ssize_t       cut;
    const char   *error, *one_error;
    jscan_log_t   yl, jl, one;

    ngx_memzero(&yl, sizeof(jscan_log_t));
    y_ok = yajl_run(doc, len, &yl);

    /*
     * yajl's other leniency: vertical tab and form feed taken for white
     * space (RFC 8259 has only space, tab, CR and LF). Inside strings
     * both refuse them as control characters, so in a document yajl
     * accepts they are white space, and the scanner must refuse it.
     */
    if (y_ok && (memchr(doc, '\v', len) || memchr(doc, '\f', len))) {
        free(yl.buf);
        y_ok = 0;
        ngx_memzero(&yl, sizeof(jscan_log_t));
    }

    if (y_ok && not_rfc3629(doc, len)) {
        free(yl.buf);
        y_ok = 0;
        ngx_memzero(&yl, sizeof(jscan_log_t));
    }

    if (y_ok && yajl_open_string_after(doc, len)) {
        free(yl.buf);
        y_ok = 0;
        ngx_memzero(&yl, sizeof(jscan_log_t));
    }

    /* yajl decodes odd surrogate pairs its own way: not compared */
    if (y_ok && has_surrogate(doc, len)) {
        free(yl.buf);
        return 0;
    }

    bad = 0;

    /* a byte at a time: the machine alone, what the fast path must match */

    ngx_memzero(&one, sizeof(jscan_log_t));
    one_ok = jscan_run(doc, len, -1, &one, &one_error, &one_at);

    for (cut = -1; cut <= (ssize_t) len && !bad; cut++) {

        if (len > 4096 && cut > 64 && cut < (ssize_t) len - 64
            && cut % (len / 64) != 0)
        {
            /* long documents: cuts near the ends, and 64 between */
            continue;
        }

        ngx_memzero(&jl, sizeof(jscan_log_t));
        j_ok = jscan_run(doc, len, cut, &jl, &error, &at);

        if (j_ok != one_ok
            || jl.olen != one.olen
            || (one.olen && memcmp(jl.offsets, one.offsets, one.olen) != 0)
            || (!j_ok && (at != one_at || strcmp(error, one_error) != 0)))
        {
            printf("%s: cut %ld differs from a byte at a time: %s at %ld "
                   "against %s at %ld\n--- a byte at a time\n%.*s"
                   "--- cut\n%.*s", name, (long) cut,
                   j_ok ? "JSON" : error, (long) at,
                   one_ok ? "JSON" : one_error, (long) one_at,
                   (int) one.olen, one.offsets, (int) jl.olen, jl.offsets);
            free(jl.buf);
            free(jl.offsets);
            bad = 1;
            break;
        }

#ifdef JSCAN_FUZZ
        if (y_ok && !j_ok
            && ngx_strcmp(error, "the document is nested too deeply") == 0)
        {
            /* the scanner's bound, which yajl does not have */
            free(jl.buf);
            free(jl.offsets);
            break;
        }
#endif

        if (j_ok != y_ok) {
            printf("%s: yajl says %s, jscan (cut %ld) says %s\n", name,
                   y_ok ? "JSON" : "not JSON", (long) cut,
                   j_ok ? "JSON" : "not JSON");
            bad = 1;

        } else if (y_ok && (jl.len != yl.len
                            || memcmp(jl.buf, yl.buf, yl.len) != 0))
        {
            printf("%s: tokens differ (cut %ld)\n--- yajl\n%.*s--- jscan\n"
                   "%.*s", name, (long) cut, (int) yl.len, yl.buf,
                   (int) jl.len, jl.buf);
            bad = 1;
        }

        free(jl.buf);
        free(jl.offsets);
    }

    free(yl.buf);
    free(one.buf);
    free(one.offsets);

    return bad;
}


#ifndef JSCAN_FUZZ

int
main(int argc, char **argv)
{
    int      i, bad;
    FILE    *f;
    size_t   len;
    u_char  *doc;

    bad = 0;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "rb");
        if (f == NULL) {
            printf("%s: cannot open\n", argv[i]);
            return 2;
        }

        doc = malloc(16 * 1024 * 1024);
        len = fread(doc, 1, 16 * 1024 * 1024, f);
        fclose(f);

        if (jscan_compare(doc, len, argv[i]) == 0) {
            printf("ok %s\n", argv[i]);

        } else {
            bad = 1;
        }

        free(doc);
    }

    return bad;
}

#endif
