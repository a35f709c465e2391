
/*
 * Canonical deltas: what every decoder reports and every client encoder
 * (ngx_http_llm_encode_<api>.c) writes, streamed, gathered or observed.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_canonical.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_provider.h"


static u_char *ngx_http_llm_canon_dup(ngx_pool_t *pool, ngx_str_t *s);
static ngx_int_t ngx_http_llm_canon_flush(ngx_http_llm_canon_t *c);
static ngx_int_t ngx_http_llm_canon_send_start(ngx_http_llm_canon_t *c);
static ngx_int_t ngx_http_llm_canon_ids(ngx_http_llm_canon_t *c);
static ngx_http_llm_canon_tool_t *ngx_http_llm_canon_find_tool(
    ngx_http_llm_canon_t *c, ngx_uint_t index);
static ngx_int_t ngx_http_llm_canon_put_text(ngx_http_llm_canon_t *c,
    ngx_str_t *text);
static ngx_int_t ngx_http_llm_canon_put_args(ngx_http_llm_canon_t *c,
    ngx_uint_t index, u_char *p, size_t len);
static ngx_int_t ngx_http_llm_canon_text_out(void *data, u_char *p,
    size_t len);
static ngx_int_t ngx_http_llm_canon_args_out(void *data, u_char *p,
    size_t len);
static ngx_int_t ngx_http_llm_canon_hit(void *data, ngx_uint_t rule);
static ngx_int_t ngx_http_llm_canon_name(void *data, ngx_uint_t rule,
    u_char *p, size_t len, ngx_str_t *placeholder);
static ngx_int_t ngx_http_llm_canon_guarded(ngx_http_llm_canon_t *c,
    ngx_http_llm_redact_t *rd, ngx_int_t rc);
static ngx_int_t ngx_http_llm_canon_release(ngx_http_llm_canon_t *c);
static ngx_int_t ngx_http_llm_canon_refuse(ngx_http_llm_canon_t *c,
    ngx_http_llm_redact_t *rd, ngx_int_t rc);


static u_char  ngx_http_llm_id_chars[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


/* ngx_pstrdup() of a string that may be empty, and then NULL */

static u_char *
ngx_http_llm_canon_dup(ngx_pool_t *pool, ngx_str_t *s)
{
    if (s->len == 0) {
        return NULL;
    }

    return ngx_pstrdup(pool, s);
}


ngx_int_t
ngx_http_llm_canon_init(ngx_http_llm_canon_t *c, ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_canon_mode_e mode)
{
    ngx_memzero(c, sizeof(ngx_http_llm_canon_t));

    c->r = r;
    c->ctx = ctx;
    c->client = ngx_http_llm_client_api(ctx);
    c->enc = (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS)
             ? &ngx_http_llm_completions_encoder
             : ngx_http_llm_encoder(c->client);
    c->mode = mode;
    c->created = ngx_time();
    c->block_tool = -1;
    c->usage.prompt = -1;
    c->usage.completion = -1;
    c->usage.cached = -1;
    c->usage.cache_write = -1;

    ngx_http_llm_arena_init(&c->arena, r->pool);

    if (ngx_array_init(&c->block_tools, r->pool, 4, sizeof(ngx_uint_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&c->out, r->pool, 1024);

    if (mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        ngx_http_llm_jbuf_init(&c->text, r->pool, 1024);

        if (ngx_array_init(&c->tools, r->pool, 2,
                           sizeof(ngx_http_llm_canon_tool_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return c->out.error ? NGX_ERROR : NGX_OK;
}


ngx_int_t
ngx_http_llm_canon_random_id(ngx_pool_t *pool, const char *prefix,
    ngx_str_t *id)
{
    size_t      n;
    u_char     *p;
    ngx_uint_t  i;

    n = ngx_strlen(prefix);

    p = ngx_pnalloc(pool, n + 24);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->data = p;
    id->len = n + 24;

    p = ngx_cpymem(p, prefix, n);

    for (i = 0; i < 24; i++) {
        *p++ = ngx_http_llm_id_chars[ngx_random() % 62];
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_canon_start(ngx_http_llm_canon_t *c, ngx_str_t *id,
    ngx_str_t *model)
{
    if (c->started) {
        return NGX_OK;
    }

    c->started = 1;

    if (id && id->len) {
        c->id = *id;
    }

    if (model && model->len) {
        c->model = *model;
    }

    if (c->mode != NGX_HTTP_LLM_CANON_STREAM) {
        return NGX_OK;
    }

    return ngx_http_llm_canon_send_start(c);
}


/* the provider's id and model, or ours; copied: event trees are reused */

static ngx_int_t
ngx_http_llm_canon_ids(ngx_http_llm_canon_t *c)
{
    u_char  *p;

    if (c->id.len) {
        p = ngx_pnalloc(c->r->pool, c->id.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, c->id.data, c->id.len);
        c->id.data = p;

    } else if (ngx_http_llm_canon_random_id(c->r->pool, c->enc->id_prefix,
                                            &c->id)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (c->model.len) {
        p = ngx_pnalloc(c->r->pool, c->model.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, c->model.data, c->model.len);
        c->model.data = p;

    } else {
        c->model = c->ctx->target_model;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_canon_send_start(ngx_http_llm_canon_t *c)
{
    if (c->sent_start) {
        return NGX_OK;
    }

    c->sent_start = 1;
    c->started = 1;

    if (ngx_http_llm_canon_ids(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->enc->start(c);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    if (text->len == 0 || c->done) {
        return NGX_OK;
    }

    c->ctx->content_bytes += text->len;

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

    if (c->text_rd) {
        return ngx_http_llm_canon_guarded(c, c->text_rd,
                                          ngx_http_llm_redact_feed(c->text_rd,
                                                              text->data,
                                                              text->len));
    }

    return ngx_http_llm_canon_put_text(c, text);
}


static ngx_int_t
ngx_http_llm_canon_put_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        ngx_http_llm_jbuf_raw(&c->text, text->data, text->len);
        return c->text.error ? NGX_ERROR : NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->enc->text(c, text);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
    ngx_str_t                   gen;
    ngx_http_llm_canon_tool_t  *t;

    if (c->done) {
        return NGX_OK;
    }

    c->tools_seen++;

    if (name) {
        c->ctx->content_bytes += name->len;
    }

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_release(c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->done) {
        return NGX_OK;
    }

    if (id == NULL || id->len == 0) {
        if (ngx_http_llm_canon_random_id(c->r->pool, c->enc->tool_prefix,
                                         &gen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        id = &gen;
    }

    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        t = ngx_array_push(&c->tools);
        if (t == NULL) {
            return NGX_ERROR;
        }

        /* copied: the event trees they come from are reused */

        t->id.len = id->len;
        t->id.data = ngx_http_llm_canon_dup(c->r->pool, id);
        t->name.len = name ? name->len : 0;
        t->name.data = name ? ngx_http_llm_canon_dup(c->r->pool, name) : NULL;

        if ((id->len && t->id.data == NULL)
            || (t->name.len && t->name.data == NULL))
        {
            return NGX_ERROR;
        }

        ngx_http_llm_jbuf_init(&t->args, c->r->pool, 128);

        return t->args.error ? NGX_ERROR : NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->enc->tool(c, index, id, name);

    return ngx_http_llm_canon_flush(c);
}


static ngx_http_llm_canon_tool_t *
ngx_http_llm_canon_find_tool(ngx_http_llm_canon_t *c, ngx_uint_t index)
{
    ngx_http_llm_canon_tool_t  *t;

    /* tools are numbered in order of appearance, from 0 */

    if (index >= c->tools.nelts) {
        return NULL;
    }

    t = c->tools.elts;

    return &t[index];
}


ngx_int_t
ngx_http_llm_canon_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    u_char *p, size_t len)
{
    if (len == 0 || c->done) {
        return NGX_OK;
    }

    c->ctx->content_bytes += len;

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

    if (c->args_rd == NULL) {
        return ngx_http_llm_canon_put_args(c, index, p, len);
    }

    if (c->args_held && c->args_index != index) {
        /* another tool's arguments: the last one's are whole */

        c->args_held = 0;

        if (ngx_http_llm_canon_guarded(c, c->args_rd,
                                    ngx_http_llm_redact_finish(c->args_rd))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (c->done) {
            return NGX_OK;
        }
    }

    c->args_index = index;
    c->args_held = 1;

    return ngx_http_llm_canon_guarded(c, c->args_rd,
                                      ngx_http_llm_redact_feed(c->args_rd, p,
                                                               len));
}


static ngx_int_t
ngx_http_llm_canon_put_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    u_char *p, size_t len)
{
    ngx_str_t                   s;
    ngx_http_llm_canon_tool_t  *t;

    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        t = ngx_http_llm_canon_find_tool(c, index);
        if (t == NULL) {
            return NGX_OK;
        }

        ngx_http_llm_jbuf_raw(&t->args, p, len);
        return t->args.error ? NGX_ERROR : NGX_OK;
    }

    s.data = p;
    s.len = len;

    c->enc->args(c, index, &s);

    return ngx_http_llm_canon_flush(c);
}


/*
 * A whole tool call from a tree (an answer that is not streamed, Gemini's
 * chunks): its start, then all its arguments; "{}" when there are none.
 */

ngx_int_t
ngx_http_llm_canon_call(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name, ngx_http_llm_json_t *args)
{
    ngx_http_llm_jbuf_t  b;

    if (ngx_http_llm_canon_tool(c, index, id, name) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&b, c->r->pool, 128);

    if (args) {
        ngx_http_llm_jbuf_value(&b, args);

    } else {
        ngx_http_llm_jbuf_lit(&b, "{}");
    }

    if (b.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_canon_args(c, index, b.start, b.last - b.start);
}


ngx_int_t
ngx_http_llm_canon_finish(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish)
{
    if (c->finished || c->done) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_release(c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->done) {
        return NGX_OK;
    }

    c->finished = 1;
    c->finish = finish;

    if (c->mode != NGX_HTTP_LLM_CANON_STREAM || c->enc->finish == NULL) {
        /* an encoder may write the finish with the end */
        return NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->enc->finish(c);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_usage(ngx_http_llm_canon_t *c, int64_t prompt,
    int64_t completion, int64_t cached, int64_t cache_write)
{
    if (prompt >= 0) {
        c->usage.prompt = prompt;
    }

    if (completion >= 0) {
        c->usage.completion = completion;
    }

    if (cached >= 0) {
        c->usage.cached = cached;
    }

    if (cache_write >= 0) {
        c->usage.cache_write = cache_write;
    }

    /* cache reads or writes alone (as Bedrock's, with the rest invalid)
       are not a usage: the request is estimated */

    if (prompt < 0 && completion < 0) {
        return NGX_OK;
    }

    c->has_usage = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_canon_error(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err)
{
    u_char                 *t, *m;
    ngx_http_llm_perror_t   masked;
    u_char                  type[NGX_HTTP_LLM_LOG_SAFE_SIZE(64)];
    u_char                  message[NGX_HTTP_LLM_LOG_SAFE_SIZE(256)];

    if (c->done) {
        return NGX_OK;
    }

    /* what was held of the answer is whole: it goes out first */

    if (ngx_http_llm_canon_release(c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->done) {
        return NGX_OK;
    }

    c->failed = 1;
    c->done = 1;

    /* a key the provider quotes goes neither to the log nor the client */

    masked = *err;

    if (c->ctx->target
        && ngx_http_llm_provider_masked(c->r->pool, c->ctx->target->provider,
                                        &masked.message)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    err = &masked;

    t = ngx_http_llm_log_safe(type, sizeof(type), err->type.data,
                              err->type.len);
    m = ngx_http_llm_log_safe(message, sizeof(message), err->message.data,
                              err->message.len);

    ngx_log_error(NGX_LOG_WARN, c->r->connection->log, 0,
                  "llm: provider \"%V\" sent an error in its response: "
                  "%*s: %*s", &c->ctx->target->provider->name,
                  (size_t) (t - type), type, (size_t) (m - message), message);

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        /* copied: the trees they come from are reused */
        c->error.status = err->status;
        c->error.type.len = err->type.len;
        c->error.type.data = ngx_http_llm_canon_dup(c->r->pool, &err->type);
        c->error.message.len = err->message.len;
        c->error.message.data = ngx_http_llm_canon_dup(c->r->pool,
                                                       &err->message);

        if ((err->type.len && c->error.type.data == NULL)
            || (err->message.len && c->error.message.data == NULL))
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    c->enc->error(c, err);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_end(ngx_http_llm_canon_t *c)
{
    if (c->done) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_release(c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->done) {
        return NGX_OK;
    }

    c->done = 1;

    /*
     * What the request used, for its limits and cost: the provider's
     * count once the answer is complete (a stream that breaks off is
     * estimated from what arrived, as OpenAI's are).
     */

    if (c->has_usage) {
        c->ctx->usage.prompt = ngx_max(c->usage.prompt, 0);
        c->ctx->usage.completion = ngx_max(c->usage.completion, 0);
        c->ctx->usage.cached = ngx_max(c->usage.cached, 0);
        c->ctx->usage.cache_write = ngx_max(c->usage.cache_write, 0);
        c->ctx->usage.reported = 1;
    }

    if (c->mode != NGX_HTTP_LLM_CANON_STREAM) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->enc->end(c);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_guard(ngx_http_llm_canon_t *c, ngx_http_llm_guard_t *guard)
{
    c->guard = guard;

    c->text_rd = ngx_http_llm_guard_redactor(c->r, guard,
                                             ngx_http_llm_canon_text_out, c);
    c->args_rd = ngx_http_llm_guard_redactor(c->r, guard,
                                             ngx_http_llm_canon_args_out, c);

    if (c->text_rd == NULL || c->args_rd == NULL) {
        return NGX_ERROR;
    }

    c->text_rd->hit = ngx_http_llm_canon_hit;
    c->args_rd->hit = ngx_http_llm_canon_hit;
    c->text_rd->name = ngx_http_llm_canon_name;
    c->args_rd->name = ngx_http_llm_canon_name;

    /* an answer not streamed is all there: its texts are matched whole */
    c->text_rd->whole = (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE);
    c->args_rd->whole = c->text_rd->whole;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_canon_text_out(void *data, u_char *p, size_t len)
{
    ngx_http_llm_canon_t *c = data;

    ngx_str_t  text;

    text.data = p;
    text.len = len;

    return ngx_http_llm_canon_put_text(c, &text);
}


static ngx_int_t
ngx_http_llm_canon_args_out(void *data, u_char *p, size_t len)
{
    ngx_http_llm_canon_t *c = data;

    return ngx_http_llm_canon_put_args(c, c->args_index, p, len);
}


static ngx_int_t
ngx_http_llm_canon_hit(void *data, ngx_uint_t rule)
{
    ngx_http_llm_canon_t *c = data;

    ngx_http_llm_guard_hit(c->r, c->ctx, c->guard, NGX_HTTP_LLM_GUARD_RESPONSE,
                           rule);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_canon_name(void *data, ngx_uint_t rule, u_char *p, size_t len,
    ngx_str_t *placeholder)
{
    ngx_http_llm_canon_t *c = data;

    return ngx_http_llm_guard_number(c->r, c->ctx, c->guard,
                                     ngx_http_llm_guard_answer_number(c->guard,
                                                                      rule),
                                     p, len, placeholder);
}


/* what held text there is goes out: a text or a tool's arguments ended */

static ngx_int_t
ngx_http_llm_canon_release(ngx_http_llm_canon_t *c)
{
    if (c->text_rd == NULL) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_guarded(c, c->text_rd,
                                   ngx_http_llm_redact_finish(c->text_rd))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (c->done || !c->args_held) {
        return NGX_OK;
    }

    c->args_held = 0;

    return ngx_http_llm_canon_guarded(c, c->args_rd,
                                      ngx_http_llm_redact_finish(c->args_rd));
}


static ngx_int_t
ngx_http_llm_canon_guarded(ngx_http_llm_canon_t *c, ngx_http_llm_redact_t *rd,
    ngx_int_t rc)
{
    if (rc == NGX_OK || c->done) {
        return rc == NGX_OK ? NGX_OK : NGX_ERROR;
    }

    return ngx_http_llm_canon_refuse(c, rd, rc);
}


/*
 * A deny rule matched the answer, held text reached max_hold, or the
 * text could not be matched: the answer ends with an error, in the
 * client's API, and nothing of what was held goes out
 */

static ngx_int_t
ngx_http_llm_canon_refuse(ngx_http_llm_canon_t *c, ngx_http_llm_redact_t *rd,
    ngx_int_t rc)
{
    u_char                     *p;
    ngx_http_llm_perror_t       err;
    ngx_http_llm_guard_rule_t  *rule;

    c->refused = 1;
    c->failed = 1;
    c->done = 1;

    p = ngx_pnalloc(c->r->pool, 256 + NGX_HTTP_LLM_GUARD_MAX_RULE_NAME
                                + c->guard->name.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
    err.status = NGX_HTTP_BAD_REQUEST;
    ngx_str_set(&err.type, "content_policy_violation");
    err.message.data = p;

    if (rc == NGX_DECLINED) {
        rule = ngx_http_llm_guard_answer_rule(c->guard, rd->stopped_by);

        p = ngx_sprintf(p, "The answer was stopped by the guard policy `%V` "
                        "(rule `%V`).", &c->guard->name, &rule->name);

        ngx_log_error(NGX_LOG_INFO, c->r->connection->log, 0,
                      "llm: answer stopped by guard policy \"%V\", rule "
                      "\"%V\"", &c->guard->name, &rule->name);

    } else if (rc == NGX_ABORT) {
        p = ngx_sprintf(p, "The answer was stopped by the guard policy `%V`: "
                        "more than its max_hold had to be held back.",
                        &c->guard->name);

        ngx_log_error(NGX_LOG_WARN, c->r->connection->log, 0,
                      "llm: answer stopped by guard policy \"%V\": held "
                      "text reached max_hold %uz", &c->guard->name,
                      c->guard->max_hold);

    } else {
        p = ngx_sprintf(p, "The answer could not be checked by the guard "
                        "policy `%V`.", &c->guard->name);

        ngx_log_error(NGX_LOG_WARN, c->r->connection->log, 0,
                      "llm: guard policy \"%V\" could not match the answer "
                      "(a match limit, or text that is not UTF-8)",
                      &c->guard->name);
    }

    err.message.len = p - err.message.data;

    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        c->error = err;
        return NGX_OK;
    }

    c->enc->error(c, &err);

    return ngx_http_llm_canon_flush(c);
}


/* a provider's block indexes are small: a larger one is refused */
#define NGX_HTTP_LLM_MAX_BLOCKS  4096


ngx_int_t
ngx_http_llm_canon_set_block_tool(ngx_http_llm_canon_t *c, ngx_uint_t block,
    ngx_uint_t tool)
{
    ngx_uint_t  *slot;

    if (block >= NGX_HTTP_LLM_MAX_BLOCKS) {
        return NGX_DECLINED;
    }

    while (c->block_tools.nelts <= block) {
        slot = ngx_array_push(&c->block_tools);
        if (slot == NULL) {
            return NGX_ERROR;
        }

        *slot = 0;
    }

    slot = c->block_tools.elts;
    slot[block] = tool + 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_canon_block_tool(ngx_http_llm_canon_t *c, ngx_uint_t block,
    ngx_uint_t *tool)
{
    ngx_uint_t  *slot;

    slot = c->block_tools.elts;

    if (block >= c->block_tools.nelts || slot[block] == 0) {
        return NGX_DECLINED;
    }

    *tool = slot[block] - 1;

    return NGX_OK;
}


/*
 * Long silences (a model thinking, whose thoughts are not translated)
 * would otherwise look dead to the client and to proxies in between: an
 * SSE comment for OpenAI clients, Anthropic's ping event for Anthropic's.
 */

ngx_int_t
ngx_http_llm_canon_ping(ngx_http_llm_canon_t *c)
{
    if (c->mode != NGX_HTTP_LLM_CANON_STREAM || c->done || !c->sent_start) {
        return NGX_OK;
    }

    c->enc->ping(c);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_body(ngx_http_llm_canon_t *c, ngx_str_t *out)
{
    ngx_http_llm_jbuf_t  b;

    if (c->failed) {
        return ngx_http_llm_canon_error_body(c->r->pool, c->client,
                                             &c->error, out);
    }

    if (ngx_http_llm_canon_ids(c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->finish == NGX_HTTP_LLM_FINISH_NONE) {
        c->finish = NGX_HTTP_LLM_FINISH_STOP;
    }

    ngx_http_llm_jbuf_init(&b, c->r->pool,
                           ngx_http_llm_jbuf_len(&c->text) * 2 + 512);

    c->enc->body(c, &b);

    if (b.error) {
        return NGX_ERROR;
    }

    out->data = b.start;
    out->len = b.last - b.start;

    return NGX_OK;
}


/* writes the event built in c->out */

static ngx_int_t
ngx_http_llm_canon_flush(ngx_http_llm_canon_t *c)
{
    ngx_int_t  rc;

    if (c->out.error) {
        return NGX_ERROR;
    }

    if (c->out.last == c->out.start) {
        /* nothing in the client's API (legacy: the start, tool calls) */
        return NGX_OK;
    }

    rc = c->write(c->data, c->out.start, c->out.last - c->out.start);

    ngx_http_llm_jbuf_reset(&c->out);

    return rc;
}


ngx_http_llm_encoder_t *
ngx_http_llm_encoder(ngx_http_llm_api_e client)
{
    switch (client) {

    case NGX_HTTP_LLM_API_ANTHROPIC:
        return &ngx_http_llm_anthropic_encoder;

    case NGX_HTTP_LLM_API_RESPONSES:
        return &ngx_http_llm_responses_encoder;

    default:
        return &ngx_http_llm_openai_encoder;
    }
}


ngx_int_t
ngx_http_llm_canon_error_body(ngx_pool_t *pool, ngx_http_llm_api_e client,
    ngx_http_llm_perror_t *err, ngx_str_t *out)
{
    ngx_http_llm_jbuf_t  b;

    ngx_http_llm_jbuf_init(&b, pool, 256 + err->message.len * 2);
    ngx_http_llm_encoder(client)->error_json(&b, err);

    if (b.error) {
        return NGX_ERROR;
    }

    out->data = b.start;
    out->len = b.last - b.start;

    return NGX_OK;
}
