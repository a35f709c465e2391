
/*
 * The cache key's canonical form: a JSON document and the same document
 * written again (yajl_tree, then yajl_gen with every object's members in
 * reverse order, other whitespace, numbers as they were) give the same
 * digest, and so does the document read in pieces; and the scanner's
 * tokens (ngx_http_llm_digest_token(), values whole from its sink, as
 * body.c reads bodies) give the form yajl's callbacks give.
 */


#include "fuzz.h"
#include "ngx_http_llm_module.h"
#include "ngx_http_llm_cache.h"

#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "../t/unit/jscan_surrogate.h"


#define ngx_fuzz_ok(rc)  ((rc) == NGX_OK ? 1 : 0)


static int
ngx_fuzz_null(void *d)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_scalar(d, 'z', NULL, 0));
}


static int
ngx_fuzz_boolean(void *d, int v)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_scalar(d, v ? 't' : 'f', NULL, 0));
}


static int
ngx_fuzz_number(void *d, const char *s, size_t len)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_scalar(d, 'n', (u_char *) s,
                                                  len));
}


static int
ngx_fuzz_string(void *d, const unsigned char *s, size_t len)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_scalar(d, 's', (u_char *) s,
                                                  len));
}


static int
ngx_fuzz_start_map(void *d)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_open(d, 1));
}


static int
ngx_fuzz_map_key(void *d, const unsigned char *s, size_t len)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_key(d, (u_char *) s, len));
}


static int
ngx_fuzz_close(void *d)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_close(d));
}


static int
ngx_fuzz_start_array(void *d)
{
    return ngx_fuzz_ok(ngx_http_llm_digest_open(d, 0));
}


static yajl_callbacks  ngx_fuzz_callbacks = {
    ngx_fuzz_null,
    ngx_fuzz_boolean,
    NULL,
    NULL,
    ngx_fuzz_number,
    ngx_fuzz_string,
    ngx_fuzz_start_map,
    ngx_fuzz_map_key,
    ngx_fuzz_close,
    ngx_fuzz_start_array,
    ngx_fuzz_close
};


/* the digest of a document given in pieces; NGX_DECLINED: not JSON */

static ngx_int_t
ngx_fuzz_digest(ngx_pool_t *pool, const u_char *in, size_t *cut,
    ngx_uint_t n, u_char *out)
{
    size_t                  from;
    ngx_str_t               form;
    ngx_int_t               rc;
    ngx_uint_t              i;
    yajl_handle             yajl;
    ngx_http_llm_digest_t  *d;

    d = ngx_http_llm_digest_create(pool, NULL);
    if (d == NULL) {
        return NGX_ERROR;
    }

    yajl = yajl_alloc(&ngx_fuzz_callbacks, NULL, d);
    if (yajl == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;
    from = 0;

    for (i = 0; i < n && rc == NGX_OK; i++) {
        if (cut[i] > from
            && yajl_parse(yajl, in + from, cut[i] - from) != yajl_status_ok)
        {
            rc = NGX_DECLINED;
        }

        from = cut[i];
    }

    if (rc == NGX_OK && yajl_complete_parse(yajl) != yajl_status_ok) {
        rc = NGX_DECLINED;
    }

    yajl_free(yajl);

    if (rc == NGX_OK) {
        /* the canonical form, hashed as the cache key hashes it */
        ngx_http_llm_digest_result(d, &form);

        if (ngx_http_llm_sha256(form.data, form.len, out) != NGX_OK) {
            rc = NGX_ERROR;
        }
    }

    return rc;
}


/* the same by the scanner, with a sink; NGX_DECLINED: not JSON to it */

static ngx_int_t
ngx_fuzz_digest_jscan(ngx_pool_t *pool, const u_char *in, size_t *cut,
    ngx_uint_t n, u_char *out)
{
    size_t                      from;
    ngx_str_t                   form;
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_llm_jscan_t        js;
    ngx_http_llm_digest_t      *d;
    ngx_http_llm_jscan_sink_t   sink;

    d = ngx_http_llm_digest_create(pool, NULL);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&sink, sizeof(ngx_http_llm_jscan_sink_t));
    sink.pool = pool;

    ngx_http_llm_jscan_init(&js, ngx_http_llm_digest_token, d);
    js.sink = &sink;

    rc = NGX_OK;
    from = 0;

    for (i = 0; i < n && rc == NGX_OK; i++) {
        rc = ngx_http_llm_jscan_feed(&js, (u_char *) in + from,
                                     cut[i] - from);
        from = cut[i];
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    ngx_http_llm_jscan_sink_free(&sink);

    if (rc != NGX_OK) {
        /* not JSON, or the digest refused it (too deep), as yajl's does */
        return NGX_DECLINED;
    }

    ngx_http_llm_digest_result(d, &form);

    return ngx_http_llm_sha256(form.data, form.len, out);
}


/* a tree written again: members in reverse, numbers as they were */

static void
ngx_fuzz_gen(yajl_gen g, yajl_val v)
{
    size_t  i;

    switch (v->type) {

    case yajl_t_string:
        yajl_gen_string(g, (u_char *) v->u.string, strlen(v->u.string));
        break;

    case yajl_t_number:
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
        break;

    case yajl_t_object:
        yajl_gen_map_open(g);
        for (i = v->u.object.len; i > 0; i--) {
            yajl_gen_string(g, (u_char *) v->u.object.keys[i - 1],
                            strlen(v->u.object.keys[i - 1]));
            ngx_fuzz_gen(g, v->u.object.values[i - 1]);
        }
        yajl_gen_map_close(g);
        break;

    case yajl_t_array:
        yajl_gen_array_open(g);
        for (i = 0; i < v->u.array.len; i++) {
            ngx_fuzz_gen(g, v->u.array.values[i]);
        }
        yajl_gen_array_close(g);
        break;

    case yajl_t_true:
        yajl_gen_bool(g, 1);
        break;

    case yajl_t_false:
        yajl_gen_bool(g, 0);
        break;

    default:
        yajl_gen_null(g);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_fuzz_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 *text, err[64];
    size_t                cut[4], whole[1], len;
    u_char                one[32], pieces[32], again[32], scanned[32];
    yajl_gen              g;
    yajl_val              tree;
    ngx_int_t             rc1, rc2, rc3, rc4;
    ngx_uint_t            n;
    ngx_pool_t           *pool;
    const unsigned char  *buf;

    n = ngx_fuzz_cuts(&data, &size, cut);

    pool = ngx_create_pool(4096, &ngx_fuzz_log);
    if (pool == NULL) {
        return 0;
    }

    whole[0] = size;

    rc1 = ngx_fuzz_digest(pool, data, whole, 1, one);
    rc2 = ngx_fuzz_digest(pool, data, cut, n, pieces);

    if (rc1 != rc2 || (rc1 == NGX_OK && ngx_memcmp(one, pieces, 32) != 0)) {
        abort();                         /* the cuts changed the digest */
    }

    /*
     * the scanner: what it takes, yajl takes, with the same form (yajl
     * decodes a lone surrogate its own way)
     */

    rc4 = ngx_fuzz_digest_jscan(pool, data, cut, n, scanned);

    if (rc4 == NGX_ERROR
        || (rc4 == NGX_OK && rc1 != NGX_OK)
        || (rc4 == NGX_OK && !has_surrogate(data, size)
            && ngx_memcmp(one, scanned, 32) != 0))
    {
        abort();                         /* the scanner's form differs */
    }

    /* (a tree keeps strings as C strings: one with \u0000 is cut) */

    if (rc1 != NGX_OK || memchr(data, '\0', size)
        || ngx_strlcasestrn((u_char *) data, (u_char *) data + size,
                            (u_char *) "\\u0000", 6 - 1) != NULL)
    {
        ngx_destroy_pool(pool);
        return 0;
    }

    text = malloc(size + 1);
    if (text == NULL) {
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_memcpy(text, data, size);
    text[size] = '\0';

    tree = yajl_tree_parse(text, err, sizeof(err));
    free(text);

    if (tree == NULL) {
        ngx_destroy_pool(pool);
        return 0;
    }

    g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    ngx_fuzz_gen(g, tree);
    yajl_gen_get_buf(g, &buf, &len);

    whole[0] = len;
    rc3 = ngx_fuzz_digest(pool, buf, whole, 1, again);

    if (rc3 != NGX_OK || ngx_memcmp(one, again, 32) != 0) {
        fprintf(stderr, "written again: %.*s\n", (int) len, buf);
        abort();                         /* the same document, another key */
    }

    yajl_gen_free(g);
    yajl_tree_free(tree);
    ngx_destroy_pool(pool);

    return 0;
}
