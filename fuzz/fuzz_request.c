
/*
 * The request parser and the body rewriter, as they run for a chat
 * completion to an OpenAI-format target: the body arrives in pieces (cut
 * where the fuzzer says), is parsed, and is rewritten for the target
 * (its model name spliced in, stream_options.include_usage asked for, the
 * gateway's "cache" member taken out).
 *
 * Properties: the outcome (accepted, or refused with a status and param)
 * is the same whatever the cuts; an accepted body rewritten is valid
 * JSON whose "model" is the target's, with no "cache" member, and which
 * asks for usage when it is a stream; the cache key does not depend on
 * the cuts.
 */


#include "fuzz.h"
#include "ngx_http_llm_module.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_body.h"

#include <yajl/yajl_tree.h>


typedef struct {
    ngx_int_t                      rc;
    ngx_http_llm_problem_t         problem;
    ngx_http_llm_chat_t            chat;
    u_char                         digest[32];
    u_char                        *body;         /* rewritten */
    size_t                         len;
} ngx_fuzz_result_t;


static ngx_http_llm_main_conf_t  ngx_fuzz_lmcf;
static void                     *ngx_fuzz_main_conf[1];
static ngx_http_llm_loc_conf_t   ngx_fuzz_llcf;
static void                     *ngx_fuzz_loc_conf[1];


static void
ngx_fuzz_run(ngx_pool_t *pool, u_char *in, size_t size, size_t *cut,
    ngx_uint_t n, ngx_fuzz_result_t *res)
{
    size_t                   from;
    u_char                  *p;
    ngx_str_t                form;
    ngx_uint_t               i;
    ngx_chain_t             *cl;
    ngx_connection_t         c;
    ngx_http_request_t       r;
    ngx_http_llm_ctx_t       ctx;
    ngx_http_request_body_t  rb;
    ngx_http_llm_target_t    target;
    ngx_http_llm_provider_t  provider;
    ngx_http_llm_segment_t  *s;

    ngx_memzero(res, sizeof(ngx_fuzz_result_t));

    ngx_memzero(&c, sizeof(ngx_connection_t));
    c.log = &ngx_fuzz_log;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = pool;
    r.connection = &c;
    r.main_conf = ngx_fuzz_main_conf;
    r.loc_conf = ngx_fuzz_loc_conf;
    r.request_body = &rb;

    ngx_memzero(&rb, sizeof(ngx_http_request_body_t));

    ngx_memzero(&ctx, sizeof(ngx_http_llm_ctx_t));
    ctx.endpoint = NGX_HTTP_LLM_EP_CHAT;
    ctx.body_length = size;
    ctx.chat.max_tokens = -1;

    /* llm_cache on: the cache key's digest is made by a second pass */
    ctx.segments = ngx_array_create(pool, 4, sizeof(ngx_http_llm_segment_t));

    if (ctx.segments == NULL) {
        res->rc = NGX_ERROR;
        return;
    }

    /* the pieces the body came in, each in a buffer of its own */

    from = 0;

    for (i = 0; i < n; i++) {
        if (cut[i] == from) {
            continue;
        }

        s = ngx_array_push(ctx.segments);
        p = ngx_pnalloc(pool, cut[i] - from);
        if (s == NULL || p == NULL) {
            res->rc = NGX_ERROR;
            return;
        }

        ngx_memcpy(p, in + from, cut[i] - from);

        ngx_memzero(s, sizeof(ngx_http_llm_segment_t));
        s->start = from;
        s->end = cut[i];
        s->pos = p;

        from = cut[i];
    }

    res->rc = ngx_http_llm_parse_chat(&r, &ctx, &res->problem);
    res->chat = ctx.chat;

    if (res->rc != NGX_OK) {
        return;
    }

    /* past llm_request_memory: no digest, the same whatever the cuts */

    if (ngx_http_llm_body_digest(&r, &ctx) == NGX_OK) {
        /* the canonical form, hashed as the cache key hashes it */
        ngx_http_llm_digest_result(ctx.digest, &form);

        if (ngx_http_llm_sha256(form.data, form.len, res->digest)
            != NGX_OK)
        {
            res->rc = NGX_ERROR;
            return;
        }

    } else {
        ngx_memset(res->digest, 0xff, 32);
    }

    if (ctx.chat.model.len == 0) {
        return;
    }

    /* the rewrite for a target of another model name */

    ngx_memzero(&provider, sizeof(ngx_http_llm_provider_t));
    ngx_str_set(&provider.name, "fuzz");
    provider.dialect = &ngx_http_llm_openai_dialect;

    ngx_memzero(&target, sizeof(ngx_http_llm_target_t));
    target.provider = &provider;

    ctx.target = &target;
    ngx_str_set(&ctx.target_model, "fuzz-\"target\"");

    if (ngx_http_llm_openai_dialect.create_request(&r, &ctx) != NGX_OK) {
        res->rc = NGX_ERROR;
        return;
    }

    res->len = 0;

    for (cl = rb.bufs; cl; cl = cl->next) {
        res->len += cl->buf->last - cl->buf->pos;
    }

    if ((off_t) res->len != r.headers_in.content_length_n) {
        abort();                         /* the length sent is not the body's */
    }

    res->body = ngx_pnalloc(pool, res->len + 1);
    if (res->body == NULL) {
        res->rc = NGX_ERROR;
        return;
    }

    p = res->body;

    for (cl = rb.bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';
}


static void
ngx_fuzz_check_rewritten(ngx_fuzz_result_t *res)
{
    char        err[128];
    yajl_val    v, model, cache, usage;

    static const char  *model_path[] = { "model", NULL };
    static const char  *cache_path[] = { "cache", NULL };
    static const char  *usage_path[] = { "stream_options", "include_usage",
                                         NULL };

    if (res->body == NULL || memchr(res->body, '\0', res->len)) {
        return;
    }

    v = yajl_tree_parse((char *) res->body, err, sizeof(err));

    if (v == NULL) {
        fprintf(stderr, "rewritten, not JSON (%s): %s\n", err, res->body);
        abort();
    }

    model = yajl_tree_get(v, model_path, yajl_t_string);
    cache = yajl_tree_get(v, cache_path, yajl_t_any);
    usage = yajl_tree_get(v, usage_path, yajl_t_true);

    if (model == NULL || strcmp(model->u.string, "fuzz-\"target\"") != 0
        || (cache && res->chat.cache_member)
        || (res->chat.stream && usage == NULL))
    {
        fprintf(stderr, "rewritten wrong: %s\n", res->body);
        abort();
    }

    yajl_tree_free(v);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_fuzz_init();

    ngx_memzero(&ngx_fuzz_lmcf, sizeof(ngx_http_llm_main_conf_t));
    ngx_fuzz_main_conf[0] = &ngx_fuzz_lmcf;

    /* the default llm_request_memory, and the cache key computed */
    ngx_memzero(&ngx_fuzz_llcf, sizeof(ngx_http_llm_loc_conf_t));
    ngx_fuzz_llcf.cache = NGX_HTTP_LLM_CACHE_ON;
    ngx_fuzz_llcf.memory_ratio = 16;
    ngx_fuzz_llcf.memory_max = 64 * 1024 * 1024;
    ngx_fuzz_loc_conf[0] = &ngx_fuzz_llcf;

    ngx_http_llm_module.ctx_index = 0;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_fuzz_input_t    fi;
    ngx_fuzz_result_t   one, pieces;

    if (ngx_fuzz_input(&fi, data, size) != NGX_OK) {
        return 0;
    }

    ngx_fuzz_run(fi.pool, fi.in, fi.size, fi.whole, 1, &one);
    ngx_fuzz_run(fi.pool, fi.in, fi.size, fi.cut, fi.n, &pieces);

    if (one.rc != pieces.rc
        || one.problem.status != pieces.problem.status
        || (one.problem.param == NULL) != (pieces.problem.param == NULL)
        || (one.problem.param
            && strcmp(one.problem.param, pieces.problem.param) != 0))
    {
        fprintf(stderr, "whole: %d %u %s; pieces: %d %u %s\n",
                (int) one.rc, (unsigned) one.problem.status,
                one.problem.param ? one.problem.param : "-",
                (int) pieces.rc, (unsigned) pieces.problem.status,
                pieces.problem.param ? pieces.problem.param : "-");
        abort();                         /* the cuts changed the outcome */
    }

    if (one.rc == NGX_OK) {
        if (ngx_memcmp(one.digest, pieces.digest, 32) != 0
            || one.len != pieces.len
            || (one.len && ngx_memcmp(one.body, pieces.body, one.len) != 0))
        {
            abort();                     /* the cuts changed key or rewrite */
        }

        ngx_fuzz_check_rewritten(&one);
    }

    ngx_destroy_pool(fi.pool);

    return 0;
}
