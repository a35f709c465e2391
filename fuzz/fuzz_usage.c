
/*
 * The usage of a non-streamed OpenAI-format answer, read two ways: whole
 * in one piece of its Content-Length (the root's "usage" read from the
 * end, docs/architecture.md) and in pieces without a length (every token
 * read, cut where the fuzzer says).
 *
 * Properties: for an answer the scanner reads as JSON, both ways give the
 * same usage, and, unless the root has an "error" member, agree on
 * whether it is a whole answer; nothing crashes, leaks or reads out of
 * bounds (ASan, UBSan) whatever the bytes.
 */


#include "fuzz.h"
#include "ngx_http_llm_module.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_jscan.h"


typedef struct {
    ngx_http_llm_usage_t           usage;
    ngx_uint_t                     done;
} ngx_fuzz_result_t;


/* whether the root has an "error" member */
typedef struct {
    ngx_uint_t                     error;
} ngx_fuzz_root_t;


static ngx_int_t
ngx_fuzz_root_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    ngx_fuzz_root_t  *root = js->data;

    if (token == NGX_HTTP_LLM_JSCAN_KEY && js->depth == 1
        && js->size == 5 && js->len == 5
        && ngx_strncmp(js->text, "error", 5) == 0)
    {
        root->error = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_fuzz_read(ngx_pool_t *pool, u_char *in, size_t size, size_t *cut,
    ngx_uint_t n, off_t length, ngx_fuzz_result_t *res)
{
    size_t                        from;
    ngx_uint_t                    i;
    ngx_connection_t              c;
    ngx_http_request_t            r;
    ngx_http_llm_ctx_t            ctx;
    ngx_http_llm_response_t       resp;

    ngx_memzero(&c, sizeof(ngx_connection_t));
    c.log = &ngx_fuzz_log;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = pool;
    r.connection = &c;
    r.headers_out.content_length_n = length;

    ngx_memzero(&resp, sizeof(ngx_http_llm_response_t));
    ngx_memzero(&ctx, sizeof(ngx_http_llm_ctx_t));
    ctx.endpoint = NGX_HTTP_LLM_EP_CHAT;
    ctx.resp = &resp;

    from = 0;

    for (i = 0; i < n; i++) {
        if (cut[i] == from) {
            continue;
        }

        if (ngx_http_llm_openai_response_json(&r, &ctx, in + from,
                                              cut[i] - from, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        from = cut[i];
    }

    if (ngx_http_llm_openai_response_json(&r, &ctx, NULL, 0, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    res->usage = ctx.usage;
    res->done = resp.done;

    return NGX_OK;
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
    ngx_fuzz_input_t       fi;
    ngx_fuzz_root_t        root;
    ngx_fuzz_result_t      one, pieces;
    ngx_http_llm_jscan_t  *js;

    if (ngx_fuzz_input(&fi, data, size) != NGX_OK) {
        return 0;
    }

    js = ngx_palloc(fi.pool, sizeof(ngx_http_llm_jscan_t));
    if (js == NULL) {
        ngx_destroy_pool(fi.pool);
        return 0;
    }

    ngx_memzero(&one, sizeof(ngx_fuzz_result_t));
    ngx_memzero(&pieces, sizeof(ngx_fuzz_result_t));

    if (ngx_fuzz_read(fi.pool, fi.in, fi.size, fi.whole, 1, (off_t) fi.size,
                      &one)
        != NGX_OK
        || ngx_fuzz_read(fi.pool, fi.in, fi.size, fi.cut, fi.n, -1, &pieces)
           != NGX_OK)
    {
        abort();                         /* no memory, in a fuzzer: a bug */
    }

    /* what the scanner makes of the answer, and whether it has an error */

    root.error = 0;
    ngx_http_llm_jscan_init(js, ngx_fuzz_root_token, &root);

    if (ngx_http_llm_jscan_feed(js, fi.in, fi.size) == NGX_OK
        && ngx_http_llm_jscan_finish(js) == NGX_OK)
    {
        if (one.usage.reported != pieces.usage.reported
            || one.usage.prompt != pieces.usage.prompt
            || one.usage.completion != pieces.usage.completion
            || one.usage.cached != pieces.usage.cached
            || one.usage.cache_write != pieces.usage.cache_write)
        {
            fprintf(stderr, "usage from the end: %d %lld %lld %lld; "
                    "read whole: %d %lld %lld %lld\n",
                    (int) one.usage.reported, (long long) one.usage.prompt,
                    (long long) one.usage.completion,
                    (long long) one.usage.cached,
                    (int) pieces.usage.reported,
                    (long long) pieces.usage.prompt,
                    (long long) pieces.usage.completion,
                    (long long) pieces.usage.cached);
            abort();
        }

        if (!root.error && one.done != pieces.done) {
            fprintf(stderr, "whole answer: %u from the end, %u read whole\n",
                    (unsigned) one.done, (unsigned) pieces.done);
            abort();
        }
    }

    ngx_destroy_pool(fi.pool);

    return 0;
}
