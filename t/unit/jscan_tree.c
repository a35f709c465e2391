
/*
 * JSON trees built from the scanner's tokens (ngx_http_llm_tree_jscan(),
 * values whole from the scanner's sink) against trees built from yajl's
 * callbacks, as body.c and json_tree.c built them before: the same nodes,
 * keys, strings and numbers, in the same order, and the same memory
 * charged to a cap, wherever the document is cut into pieces (every
 * offset, a byte at a time), each piece in a buffer of its own that is
 * overwritten once fed. Also: a value's first decoded bytes and length
 * the same with a sink as without; and ngx_http_llm_json_parse(), which
 * reads providers' answers, against yajl with its bounds (128 levels, a
 * million values). Included by fuzz/fuzz_jtree.c; alone
 * (t/445-jscan-tree.t) it checks the documents made below and prints
 * "ok NAME" or what differs.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_llm_jscan.h"
#include "ngx_http_llm_json_tree.h"
#include "jscan_surrogate.h"


typedef struct {
    u_char       *buf;
    size_t        len;
    size_t        size;
} jtree_text_t;


static ngx_pool_t  *jtree_pool;


static void
text_add(jtree_text_t *t, const void *p, size_t len)
{
    if (len == 0) {
        return;
    }

    if (t->len + len > t->size) {
        t->size = (t->len + len) * 2 + 64;
        t->buf = realloc(t->buf, t->size);
        if (t->buf == NULL) {
            abort();
        }
    }

    memcpy(t->buf + t->len, p, len);
    t->len += len;
}


static void
text_str(jtree_text_t *t, ngx_str_t *s)
{
    char  n[32];

    text_add(t, n, snprintf(n, sizeof(n), "%lu:", (unsigned long) s->len));
    text_add(t, s->data, s->len);
}


/* a tree as text: type, key, value, and its children, depth first */

static void
tree_dump(jtree_text_t *t, ngx_http_llm_json_t *v, ngx_uint_t depth)
{
    char                  n[64];
    ngx_http_llm_json_t  *c;

    for ( /* void */ ; v; v = v->next) {
        text_add(t, n, snprintf(n, sizeof(n), "%lu %d %lu ",
                                (unsigned long) depth, (int) v->type,
                                (unsigned long) v->n));
        text_str(t, &v->key);
        text_add(t, " ", 1);
        text_str(t, &v->str);
        text_add(t, "\n", 1);

        c = v->child;

        if (c) {
            if (c->parent != v) {
                text_add(t, "bad parent\n", 11);
            }

            tree_dump(t, c, depth + 1);
        }
    }
}


/* yajl's side: the callbacks body.c had */

static int
y_null(void *ctx)
{
    return ngx_http_llm_tree_scalar(ctx, NGX_HTTP_LLM_JSON_NULL, NULL, 0)
           == NGX_OK;
}


static int
y_boolean(void *ctx, int v)
{
    return ngx_http_llm_tree_scalar(ctx, v ? NGX_HTTP_LLM_JSON_TRUE
                                           : NGX_HTTP_LLM_JSON_FALSE,
                                    NULL, 0)
           == NGX_OK;
}


static int
y_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_llm_tree_scalar(ctx, NGX_HTTP_LLM_JSON_NUMBER,
                                    (u_char *) s, len)
           == NGX_OK;
}


static int
y_string(void *ctx, const unsigned char *s, size_t len)
{
    return ngx_http_llm_tree_scalar(ctx, NGX_HTTP_LLM_JSON_STRING, s, len)
           == NGX_OK;
}


static int
y_key(void *ctx, const unsigned char *s, size_t len)
{
    return ngx_http_llm_tree_key(ctx, s, len) == NGX_OK;
}


static int
y_start_map(void *ctx)
{
    return ngx_http_llm_tree_open(ctx, NGX_HTTP_LLM_JSON_OBJECT) == NGX_OK;
}


static int
y_start_array(void *ctx)
{
    return ngx_http_llm_tree_open(ctx, NGX_HTTP_LLM_JSON_ARRAY) == NGX_OK;
}


static int
y_end(void *ctx)
{
    return ngx_http_llm_tree_close(ctx) == NGX_OK;
}


static yajl_callbacks  y_callbacks = {
    y_null, y_boolean, NULL, NULL, y_number, y_string, y_start_map, y_key,
    y_end, y_start_array, y_end
};


/* a tree and what it charged; returns whether it was built */

static int
yajl_tree(const u_char *doc, size_t len, size_t max, ngx_uint_t provider,
    jtree_text_t *out, ngx_http_llm_memcap_t *cap)
{
    int                   ok;
    yajl_handle           y;
    ngx_http_llm_tree_t   t;
    ngx_http_llm_arena_t  a;

    ngx_memzero(cap, sizeof(ngx_http_llm_memcap_t));
    cap->max = max;

    ngx_http_llm_arena_init(&a, jtree_pool);
    a.cap = cap;
    ngx_http_llm_tree_init(&t, &a);

    if (provider) {
        /* as ngx_http_llm_json_parse() had it */
        t.max_depth = NGX_HTTP_LLM_PROVIDER_MAX_DEPTH;
        t.max_nodes = NGX_HTTP_LLM_PROVIDER_MAX_NODES;
    }

    y = yajl_alloc(&y_callbacks, NULL, &t);

    ok = yajl_parse(y, doc, len) == yajl_status_ok
         && yajl_complete_parse(y) == yajl_status_ok && t.current == NULL;

    yajl_free(y);

    if (ok) {
        tree_dump(out, t.root, 0);
    }

    return ok;
}


/*
 * cut: 0 whole; n > 0 the first piece is n bytes; -1 a byte at a time;
 * each piece copied, fed, then overwritten
 */

static int
jscan_tree(const u_char *doc, size_t len, ssize_t cut, size_t max,
    jtree_text_t *out, ngx_http_llm_memcap_t *cap)
{
    size_t                      i, n, at;
    u_char                     *piece;
    ngx_int_t                   rc;
    ngx_http_llm_tree_t         t;
    ngx_http_llm_arena_t        a;
    ngx_http_llm_jscan_t        js;
    ngx_http_llm_jscan_sink_t   sink;

    ngx_memzero(cap, sizeof(ngx_http_llm_memcap_t));
    cap->max = max;

    ngx_http_llm_arena_init(&a, jtree_pool);
    a.cap = cap;
    ngx_http_llm_tree_init(&t, &a);

    ngx_memzero(&sink, sizeof(ngx_http_llm_jscan_sink_t));
    sink.pool = jtree_pool;

    ngx_http_llm_jscan_init(&js, ngx_http_llm_tree_token, &t);
    js.sink = &sink;

    rc = NGX_OK;
    at = 0;

    for (i = 0; rc == NGX_OK && at < len; i++) {
        n = (cut < 0) ? 1 : (cut > 0 && i == 0) ? (size_t) cut : len - at;

        if (n > len - at) {
            n = len - at;
        }

        piece = malloc(n + 1);
        if (piece == NULL) {
            abort();
        }

        memcpy(piece, doc + at, n);
        rc = ngx_http_llm_jscan_feed(&js, piece, n);
        memset(piece, '"', n);
        free(piece);

        at += n;
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    ngx_http_llm_jscan_sink_free(&sink);

    if (rc != NGX_OK || t.current != NULL) {
        return 0;
    }

    tree_dump(out, t.root, 0);

    return 1;
}


/* the scanner's tokens as text: kind, size, first KEEP bytes */

static ngx_int_t
j_log(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    char           n[64];
    ngx_str_t      v;
    jtree_text_t  *t;

    t = js->data;

    text_add(t, n, snprintf(n, sizeof(n), "%lu %lu %lu ", (unsigned long) token,
                            (unsigned long) js->depth,
                            (unsigned long) js->size));

    if (token >= NGX_HTTP_LLM_JSCAN_KEY && token <= NGX_HTTP_LLM_JSCAN_NUMBER) {
        if (ngx_http_llm_jscan_value(js, &v) != NGX_OK) {
            if (js->sink) {
                return NGX_ERROR;
            }

            /* without a sink: the first bytes only */
            v.data = js->text;
            v.len = js->len;
        }

        if (js->sink && v.len != js->size) {
            text_add(t, "whole value of another length ", 30);
        }

        text_add(t, v.data, ngx_min(v.len, NGX_HTTP_LLM_JSCAN_KEEP));
    }

    text_add(t, "\n", 1);

    return NGX_OK;
}


static int
jscan_log(const u_char *doc, size_t len, ssize_t cut, ngx_uint_t sink,
    jtree_text_t *out)
{
    ngx_int_t                   rc;
    ngx_http_llm_jscan_t        js;
    ngx_http_llm_jscan_sink_t   s;

    ngx_memzero(&s, sizeof(ngx_http_llm_jscan_sink_t));
    s.pool = jtree_pool;

    ngx_http_llm_jscan_init(&js, j_log, out);

    if (sink) {
        js.sink = &s;
    }

    if (cut > 0) {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc, cut);

        if (rc == NGX_OK) {
            rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc + cut,
                                         len - cut);
        }

    } else {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) doc, len);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    ngx_http_llm_jscan_sink_free(&s);

    return rc == NGX_OK;
}


/*
 * Which cuts to try: every one, or (long documents) every one in the
 * first 700 bytes, where the first long values cross keep's end, and
 * near the end, then one in 97.
 */

static int
jtree_skip(ssize_t cut, size_t len, ngx_uint_t all_cuts)
{
    return !all_cuts && cut > 700 && cut < (ssize_t) len - 64
           && cut % 97 != 0;
}


/*
 * 0 when they agree. pairs: the document's surrogates are all pairs
 * (its maker knows), so yajl decodes them as the scanner does.
 */

static int
jtree_compare(const u_char *doc, size_t len, const char *name, int pairs,
    ngx_uint_t all_cuts)
{
    int                    y_ok, j_ok, bad, with_yajl;
    size_t                 max, used;
    ssize_t                cut;
    jtree_text_t           yt, jt, a, b;
    ngx_http_llm_json_t   *root;
    ngx_http_llm_arena_t   arena;
    ngx_http_llm_memcap_t  ycap, jcap;

    bad = 0;
    ngx_memzero(&yt, sizeof(jtree_text_t));

    with_yajl = pairs || !has_surrogate(doc, len);

    /* the scanner alone: with a sink, the same first bytes and sizes */

    for (cut = 0; cut <= (ssize_t) len && !bad; cut++) {
        if (jtree_skip(cut, len, all_cuts)) {
            continue;
        }

        ngx_memzero(&a, sizeof(jtree_text_t));
        ngx_memzero(&b, sizeof(jtree_text_t));

        j_ok = jscan_log(doc, len, cut, 0, &a);

        if (jscan_log(doc, len, cut, 1, &b) != j_ok
            || a.len != b.len
            || (a.len && memcmp(a.buf, b.buf, a.len) != 0))
        {
            printf("%s: tokens with a sink differ (cut %ld)\n--- without\n"
                   "%.*s--- with\n%.*s", name, (long) cut, (int) a.len,
                   a.buf, (int) b.len, b.buf);
            bad = 1;
        }

        free(a.buf);
        free(b.buf);

        if (!j_ok) {
            /* not JSON to the scanner: no tree to compare */
            return bad;
        }
    }

    if (!with_yajl || bad) {
        return bad;
    }

    y_ok = yajl_tree(doc, len, (size_t) -1, 0, &yt, &ycap);

    if (!y_ok) {
        /* yajl's leniencies aside, the scanner refuses what yajl does */
        printf("%s: yajl refuses what the scanner takes\n", name);
        free(yt.buf);
        return 1;
    }

    used = ycap.used;

    for (cut = -1; cut <= (ssize_t) len && !bad; cut++) {
        if (jtree_skip(cut, len, all_cuts)) {
            continue;
        }

        ngx_memzero(&jt, sizeof(jtree_text_t));
        j_ok = jscan_tree(doc, len, cut, (size_t) -1, &jt, &jcap);

        if (!j_ok || jt.len != yt.len
            || (yt.len && memcmp(jt.buf, yt.buf, yt.len) != 0)
            || jcap.used != used)
        {
            printf("%s: trees differ (cut %ld, %s, charged %lu and %lu)\n"
                   "--- yajl\n%.*s--- jscan\n%.*s", name, (long) cut,
                   j_ok ? "built" : "not built", (unsigned long) used,
                   (unsigned long) jcap.used, (int) yt.len, yt.buf,
                   (int) jt.len, jt.buf);
            bad = 1;
        }

        free(jt.buf);
    }

    free(yt.buf);

    /* a provider's answer: ngx_http_llm_json_parse(), with its bounds */

    if (!bad) {
        ngx_memzero(&yt, sizeof(jtree_text_t));
        ngx_memzero(&jt, sizeof(jtree_text_t));

        y_ok = yajl_tree(doc, len, (size_t) -1, 1, &yt, &ycap);

        ngx_http_llm_arena_init(&arena, jtree_pool);
        root = ngx_http_llm_json_parse(&arena, (u_char *) doc, len);

        if (root) {
            tree_dump(&jt, root, 0);
        }

        if (y_ok != (root != NULL) || jt.len != yt.len
            || (yt.len && memcmp(jt.buf, yt.buf, yt.len) != 0))
        {
            printf("%s: answers' trees differ (%s)\n--- yajl\n%.*s"
                   "--- jscan\n%.*s", name,
                   root ? "parsed" : "not parsed", (int) yt.len, yt.buf,
                   (int) jt.len, jt.buf);
            bad = 1;
        }

        free(yt.buf);
        free(jt.buf);
    }

    /* a cap: refused at the same point, having charged the same */

    for (max = 0; max < used + 8192 && !bad; max += used / 7 + 1000) {
        ngx_memzero(&yt, sizeof(jtree_text_t));
        ngx_memzero(&jt, sizeof(jtree_text_t));

        y_ok = yajl_tree(doc, len, max, 0, &yt, &ycap);
        j_ok = jscan_tree(doc, len, len / 2, max, &jt, &jcap);

        if (y_ok != j_ok || ycap.exceeded != jcap.exceeded
            || ycap.used != jcap.used)
        {
            printf("%s: a cap of %lu: yajl %s (%lu, exceeded %d), "
                   "jscan %s (%lu, exceeded %d)\n", name,
                   (unsigned long) max, y_ok ? "built" : "stopped",
                   (unsigned long) ycap.used, (int) ycap.exceeded,
                   j_ok ? "built" : "stopped", (unsigned long) jcap.used,
                   (int) jcap.exceeded);
            bad = 1;
        }

        free(yt.buf);
        free(jt.buf);
    }

    return bad;
}


#ifndef JTREE_FUZZ

static ngx_pool_t  jtree_dummy_pool;


/* json.c's formatting, which trees are not written with here */

u_char *
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    abort();
}


u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    abort();
}


/* a string value of n bytes made of unit, repeated, in ["...",1] */

static size_t
make_long(u_char *p, const char *key, const char *unit, size_t n)
{
    u_char  *start;
    size_t   i, u;

    start = p;
    u = strlen(unit);

    p += sprintf((char *) p, "{\"%s\":[\"", key);

    for (i = 0; i < n; i++) {
        memcpy(p, unit, u);
        p += u;
    }

    p += sprintf((char *) p, "\",1],\"%s\":\"", key);

    for (i = 0; i < n / 2; i++) {
        memcpy(p, unit, u);
        p += u;
    }

    p += sprintf((char *) p, "\"}");

    return p - start;
}


static int
check(const char *name, const char *doc, int pairs)
{
    size_t  len;

    len = strlen(doc);

    if (jtree_compare((const u_char *) doc, len, name, pairs, len < 1024)
        == 0)
    {
        printf("ok %s\n", name);
        return 0;
    }

    return 1;
}


int
main(void)
{
    int          bad;
    char         name[128];
    u_char      *doc, *p;
    size_t       len, i, k;
    ngx_uint_t   d;
    static const char  *docs[] = {
        "{}", "[]", "\"\"", "0", "-0", "1", "-12.5e+3", "0.5E-2", "1e9",
        "1E+09", "-0.0e-0", "123456789012345678901234567890",
        "1.7976931348623157e309", "true", "false", "null",
        " {\"a\" : [1, 2.0, -3e2, true, false, null, \"x\"]} ",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}]}",
        "{\"a\":{\"b\":{\"c\":[[[]],{}]}}}", "\t\r\n[ ]\n",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
        "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"",
        "{\"k\\u0065y\":\"v\",\"\":\"\",\"\\u0000\":\"\\u0000\"}",
        "{\"a\":1,\"a\":2,\"a\":{\"a\":[]},\"b\":null,\"a\":\"x\"}",
        "[{\"a\":1},{\"a\":1},{},[],[[]],\"\",0]",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        NULL
    };
    static const char  *units[] = {
        "x", "\\n", "\\u00e9", "\\ud83d\\ude00", "\xf0\x9f\x98\x80",
        "\xc3\xa9", "\\\"\\\\", "ab\\u20acc", "\xe2\x82\xac" "d\\t",
        NULL
    };
    static const size_t  counts[] = { 1, 40, 63, 64, 65, 85, 86, 127, 128,
                                      129, 255, 256, 257, 300, 1100, 2100,
                                      4100 };

    jtree_pool = &jtree_dummy_pool;
    bad = 0;

    for (i = 0; docs[i]; i++) {
        snprintf(name, sizeof(name), "document %lu", (unsigned long) i);
        bad |= check(name, docs[i], 1);
    }

    doc = malloc(1024 * 1024);
    if (doc == NULL) {
        return 2;
    }

    /*
     * long values: across keep's end and the sink's growth, escapes and
     * characters cut anywhere; keys too
     */

    for (i = 0; units[i]; i++) {
        for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            len = make_long(doc, (k & 1) ? "k" : "content", units[i],
                            counts[k]);
            doc[len] = '\0';

            snprintf(name, sizeof(name), "unit %lu x %lu (%lu bytes)",
                     (unsigned long) i, (unsigned long) counts[k],
                     (unsigned long) len);

            if (jtree_compare(doc, len, name, 1, len < 1024) == 0) {
                printf("ok %s\n", name);

            } else {
                bad = 1;
            }
        }
    }

    /* a key longer than keep, with a value as long, every cut */

    p = doc;
    p += sprintf((char *) p, "{\"");

    for (i = 0; i < 300; i++) {
        *p++ = "abc\xc3\xa9"[i % 5];
    }

    p += sprintf((char *) p, "\":\"\\ud83d\\ude00");

    for (i = 0; i < 260; i++) {
        *p++ = 'v';
    }

    p += sprintf((char *) p, "\\u00e9\",\"n\":-");

    for (i = 0; i < 300; i++) {
        *p++ = '1' + i % 9;
    }

    p += sprintf((char *) p, ".5e-7}");
    *p = '\0';

    bad |= check("a long key, a long value, a long number", (char *) doc, 1);

    /*
     * odd surrogates, decoded as the scanner's first bytes always were
     * ("?"), past keep too; not compared with yajl
     */

    p = doc;
    p += sprintf((char *) p, "[\"");

    for (i = 0; i < 300; i++) {
        p += sprintf((char *) p, (i % 3) ? "\\ud800" : "\\udc00x");
    }

    p += sprintf((char *) p, "\\ud83d\"]");
    *p = '\0';

    bad |= check("lone surrogates past keep", (char *) doc, 0);

    /*
     * deep: answers' bound, 128 levels, and the scanner's, 1024, in arrays
     * and objects
     */

    for (d = 127; d <= 1024; d = (d == 129) ? 1023 : d + 1) {
        p = doc;

        for (i = 0; i < d; i++) {
            p += sprintf((char *) p, (i % 2) ? "{\"k\":" : "[");
        }

        p += sprintf((char *) p, "\"deep\"");

        for (i = d; i-- > 0; /* void */) {
            *p++ = (i % 2) ? '}' : ']';
        }

        *p = '\0';

        snprintf(name, sizeof(name), "nested %lu levels", (unsigned long) d);
        bad |= check(name, (char *) doc, 1);
    }

    /* many values: the cap's blocks */

    p = doc;
    p += sprintf((char *) p, "{\"x\":[");

    for (i = 0; i < 1000; i++) {
        p += sprintf((char *) p, "%s%lu", i ? "," : "", (unsigned long) i);
    }

    p += sprintf((char *) p, "],\"s\":\"");

    for (i = 0; i < 5000; i++) {
        *p++ = 'a' + i % 26;
    }

    p += sprintf((char *) p, "\"}");
    *p = '\0';

    if (jtree_compare(doc, p - doc, "many values", 1, 0) == 0) {
        printf("ok many values\n");

    } else {
        bad = 1;
    }

    free(doc);

    return bad;
}

#endif
