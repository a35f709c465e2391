
/*
 * Canonical deltas and the two client encoders: OpenAI chat completions
 * and Anthropic Messages, streamed or whole.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_canonical.h"


static u_char *ngx_http_llm_canon_dup(ngx_pool_t *pool, ngx_str_t *s);
static ngx_int_t ngx_http_llm_canon_flush(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_chunk_open(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_chunk_close(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish);
static void ngx_http_llm_oa_usage(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static void ngx_http_llm_an_usage(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static ngx_int_t ngx_http_llm_canon_send_start(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_close_block(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_event(ngx_http_llm_canon_t *c, const char *name);
static ngx_int_t ngx_http_llm_canon_ids(ngx_http_llm_canon_t *c);
static void ngx_http_llm_canon_error_json(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_api_e client, ngx_http_llm_perror_t *err);
static ngx_http_llm_canon_tool_t *ngx_http_llm_canon_find_tool(
    ngx_http_llm_canon_t *c, ngx_uint_t index);


static const char  *ngx_http_llm_oa_finish[] = {
    "stop", "stop", "length", "tool_calls", "content_filter"
};

static const char  *ngx_http_llm_an_stop[] = {
    "end_turn", "end_turn", "max_tokens", "tool_use", "refusal"
};


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
    c->mode = mode;
    c->created = ngx_time();
    c->block_tool = -1;
    c->usage.prompt = -1;
    c->usage.completion = -1;
    c->usage.cached = -1;

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

    } else if (ngx_http_llm_canon_random_id(c->r->pool,
                                            (c->client
                                             == NGX_HTTP_LLM_API_ANTHROPIC)
                                            ? "msg_" : "chatcmpl-",
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
    ngx_http_llm_jbuf_t  *b;

    if (c->sent_start) {
        return NGX_OK;
    }

    c->sent_start = 1;
    c->started = 1;

    if (ngx_http_llm_canon_ids(c) != NGX_OK) {
        return NGX_ERROR;
    }

    b = &c->out;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_oa_chunk_open(c);
        ngx_http_llm_jbuf_lit(b, "{\"role\":\"assistant\",\"content\":\"\"}");
        ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);

    } else {
        ngx_http_llm_an_event(c, "message_start");
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_start\",\"message\":"
                                 "{\"id\":");
        ngx_http_llm_jbuf_qstr(b, &c->id);
        ngx_http_llm_jbuf_lit(b, ",\"type\":\"message\",\"role\":"
                                 "\"assistant\",\"model\":");
        ngx_http_llm_jbuf_qstr(b, &c->model);
        ngx_http_llm_jbuf_lit(b, ",\"content\":[],\"stop_reason\":null,"
                                 "\"stop_sequence\":null,\"usage\":"
                                 "{\"input_tokens\":");
        ngx_http_llm_jbuf_int(b, (c->usage.prompt > 0)
                                 ? c->usage.prompt
                                   - ngx_max(c->usage.cached, 0)
                                 : 0);
        ngx_http_llm_jbuf_lit(b, ",\"output_tokens\":0}}}\n\n");
    }

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    ngx_http_llm_jbuf_t  *b;

    if (text->len == 0 || c->done) {
        return NGX_OK;
    }

    c->ctx->content_bytes += text->len;

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

    if (c->mode == NGX_HTTP_LLM_CANON_ACCUMULATE) {
        ngx_http_llm_jbuf_raw(&c->text, text->data, text->len);
        return c->text.error ? NGX_ERROR : NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    b = &c->out;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_oa_chunk_open(c);
        ngx_http_llm_jbuf_lit(b, "{\"content\":");
        ngx_http_llm_jbuf_qstr(b, text);
        ngx_http_llm_jbuf_lit(b, "}");
        ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);

        return ngx_http_llm_canon_flush(c);
    }

    if (c->block_open && c->block_tool != -1) {
        ngx_http_llm_an_close_block(c);
    }

    if (!c->block_open) {
        ngx_http_llm_an_event(c, "content_block_start");
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_start\","
                                 "\"index\":");
        ngx_http_llm_jbuf_int(b, c->blocks);
        ngx_http_llm_jbuf_lit(b, ",\"content_block\":{\"type\":\"text\","
                                 "\"text\":\"\"}}\n\n");
        c->block_open = 1;
        c->block_tool = -1;
    }

    ngx_http_llm_an_event(c, "content_block_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_delta\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"delta\":{\"type\":\"text_delta\",\"text\":");
    ngx_http_llm_jbuf_qstr(b, text);
    ngx_http_llm_jbuf_lit(b, "}}\n\n");

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
    ngx_str_t                   gen;
    ngx_http_llm_jbuf_t        *b;
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

    if (id == NULL || id->len == 0) {
        if (ngx_http_llm_canon_random_id(c->r->pool,
                                         (c->client
                                          == NGX_HTTP_LLM_API_ANTHROPIC)
                                         ? "toolu_" : "call_", &gen)
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

    b = &c->out;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_oa_chunk_open(c);
        ngx_http_llm_jbuf_lit(b, "{\"tool_calls\":[{\"index\":");
        ngx_http_llm_jbuf_int(b, index);
        ngx_http_llm_jbuf_lit(b, ",\"id\":");
        ngx_http_llm_jbuf_qstr(b, id);
        ngx_http_llm_jbuf_lit(b, ",\"type\":\"function\",\"function\":"
                                 "{\"name\":");

        if (name) {
            ngx_http_llm_jbuf_qstr(b, name);

        } else {
            ngx_http_llm_jbuf_lit(b, "\"\"");
        }

        ngx_http_llm_jbuf_lit(b, ",\"arguments\":\"\"}}]}");
        ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);

        return ngx_http_llm_canon_flush(c);
    }

    if (c->block_open) {
        ngx_http_llm_an_close_block(c);
    }

    ngx_http_llm_an_event(c, "content_block_start");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_start\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"content_block\":{\"type\":\"tool_use\","
                             "\"id\":");
    ngx_http_llm_jbuf_qstr(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"name\":");

    if (name) {
        ngx_http_llm_jbuf_qstr(b, name);

    } else {
        ngx_http_llm_jbuf_lit(b, "\"\"");
    }

    ngx_http_llm_jbuf_lit(b, ",\"input\":{}}}\n\n");

    c->block_open = 1;
    c->block_tool = index;

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
    ngx_str_t                   s;
    ngx_http_llm_jbuf_t        *b;
    ngx_http_llm_canon_tool_t  *t;

    if (len == 0 || c->done) {
        return NGX_OK;
    }

    c->ctx->content_bytes += len;

    if (c->mode == NGX_HTTP_LLM_CANON_OBSERVE) {
        return NGX_OK;
    }

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
    b = &c->out;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_oa_chunk_open(c);
        ngx_http_llm_jbuf_lit(b, "{\"tool_calls\":[{\"index\":");
        ngx_http_llm_jbuf_int(b, index);
        ngx_http_llm_jbuf_lit(b, ",\"function\":{\"arguments\":");
        ngx_http_llm_jbuf_qstr(b, &s);
        ngx_http_llm_jbuf_lit(b, "}}]}");
        ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);

        return ngx_http_llm_canon_flush(c);
    }

    if (!c->block_open || c->block_tool != (ngx_int_t) index) {
        /* arguments of a tool whose block is over: nowhere to go */
        return NGX_OK;
    }

    ngx_http_llm_an_event(c, "content_block_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_delta\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"delta\":{\"type\":\"input_json_delta\","
                             "\"partial_json\":");
    ngx_http_llm_jbuf_qstr(b, &s);
    ngx_http_llm_jbuf_lit(b, "}}\n\n");

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_finish(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish)
{
    if (c->finished || c->done) {
        return NGX_OK;
    }

    c->finished = 1;
    c->finish = finish;

    if (c->mode != NGX_HTTP_LLM_CANON_STREAM
        || c->client != NGX_HTTP_LLM_API_OPENAI)
    {
        /* Anthropic's message_delta waits for the usage, at the end */
        return NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(&c->out, "{}");
    ngx_http_llm_oa_chunk_close(c, finish);

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_usage(ngx_http_llm_canon_t *c, int64_t prompt,
    int64_t completion, int64_t cached)
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

    if (prompt < 0 && completion < 0 && cached < 0) {
        return NGX_OK;
    }

    c->has_usage = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_canon_error(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err)
{
    u_char  *t, *m;
    u_char   type[NGX_HTTP_LLM_LOG_SAFE_SIZE(64)];
    u_char   message[NGX_HTTP_LLM_LOG_SAFE_SIZE(256)];

    if (c->done) {
        return NGX_OK;
    }

    c->failed = 1;
    c->done = 1;

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

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_jbuf_lit(&c->out, "data: ");
        ngx_http_llm_canon_error_json(&c->out, c->client, err);
        ngx_http_llm_jbuf_lit(&c->out, "\n\n");

    } else {
        ngx_http_llm_an_event(c, "error");
        ngx_http_llm_canon_error_json(&c->out, c->client, err);
        ngx_http_llm_jbuf_lit(&c->out, "\n\n");
    }

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_end(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

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
        c->ctx->usage.reported = 1;
    }

    if (c->mode != NGX_HTTP_LLM_CANON_STREAM) {
        return NGX_OK;
    }

    if (ngx_http_llm_canon_send_start(c) != NGX_OK) {
        return NGX_ERROR;
    }

    b = &c->out;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {

        if (!c->finished) {
            ngx_http_llm_oa_chunk_open(c);
            ngx_http_llm_jbuf_lit(b, "{}");
            ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_STOP);
        }

        if (c->ctx->chat.include_usage && c->has_usage) {
            ngx_http_llm_jbuf_lit(b, "data: {\"id\":");
            ngx_http_llm_jbuf_qstr(b, &c->id);
            ngx_http_llm_jbuf_lit(b, ",\"object\":\"chat.completion.chunk\","
                                     "\"created\":");
            ngx_http_llm_jbuf_int(b, c->created);
            ngx_http_llm_jbuf_lit(b, ",\"model\":");
            ngx_http_llm_jbuf_qstr(b, &c->model);
            ngx_http_llm_jbuf_lit(b, ",\"choices\":[],\"usage\":");
            ngx_http_llm_oa_usage(c, b);
            ngx_http_llm_jbuf_lit(b, "}\n\n");
        }

        ngx_http_llm_jbuf_lit(b, "data: [DONE]\n\n");

        return ngx_http_llm_canon_flush(c);
    }

    if (c->block_open) {
        ngx_http_llm_an_close_block(c);
    }

    ngx_http_llm_an_event(c, "message_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_delta\",\"delta\":"
                             "{\"stop_reason\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) ngx_http_llm_an_stop[c->finish],
                          ngx_strlen(ngx_http_llm_an_stop[c->finish]));
    ngx_http_llm_jbuf_lit(b, "\",\"stop_sequence\":null},\"usage\":");
    ngx_http_llm_an_usage(c, b);
    ngx_http_llm_jbuf_lit(b, "}\n\n");

    ngx_http_llm_an_event(c, "message_stop");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_stop\"}\n\n");

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

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_jbuf_lit(&c->out, ": ping\n\n");

    } else {
        ngx_http_llm_an_event(c, "ping");
        ngx_http_llm_jbuf_lit(&c->out, "{\"type\":\"ping\"}\n\n");
    }

    return ngx_http_llm_canon_flush(c);
}


ngx_int_t
ngx_http_llm_canon_body(ngx_http_llm_canon_t *c, ngx_str_t *out)
{
    ngx_uint_t                  i;
    ngx_http_llm_jbuf_t         b;
    ngx_http_llm_canon_tool_t  *t;

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

    t = c->tools.elts;

    if (c->client == NGX_HTTP_LLM_API_OPENAI) {
        ngx_http_llm_jbuf_lit(&b, "{\"id\":");
        ngx_http_llm_jbuf_qstr(&b, &c->id);
        ngx_http_llm_jbuf_lit(&b, ",\"object\":\"chat.completion\","
                                  "\"created\":");
        ngx_http_llm_jbuf_int(&b, c->created);
        ngx_http_llm_jbuf_lit(&b, ",\"model\":");
        ngx_http_llm_jbuf_qstr(&b, &c->model);
        ngx_http_llm_jbuf_lit(&b, ",\"choices\":[{\"index\":0,\"message\":"
                                  "{\"role\":\"assistant\",\"content\":");

        if (ngx_http_llm_jbuf_len(&c->text) || c->tools.nelts == 0) {
            ngx_http_llm_jbuf_str(&b, c->text.start,
                                  ngx_http_llm_jbuf_len(&c->text));

        } else {
            ngx_http_llm_jbuf_lit(&b, "null");
        }

        ngx_http_llm_jbuf_lit(&b, ",\"refusal\":null");

        if (c->tools.nelts) {
            ngx_http_llm_jbuf_lit(&b, ",\"tool_calls\":[");

            for (i = 0; i < c->tools.nelts; i++) {
                ngx_http_llm_jbuf_lit(&b, "{\"id\":");
                ngx_http_llm_jbuf_qstr(&b, &t[i].id);
                ngx_http_llm_jbuf_lit(&b, ",\"type\":\"function\","
                                          "\"function\":{\"name\":");
                ngx_http_llm_jbuf_qstr(&b, &t[i].name);
                ngx_http_llm_jbuf_lit(&b, ",\"arguments\":");
                ngx_http_llm_jbuf_str(&b, t[i].args.start,
                                      ngx_http_llm_jbuf_len(&t[i].args));
                ngx_http_llm_jbuf_lit(&b, "}}");

                if (i + 1 < c->tools.nelts) {
                    ngx_http_llm_jbuf_lit(&b, ",");
                }
            }

            ngx_http_llm_jbuf_lit(&b, "]");
        }

        ngx_http_llm_jbuf_lit(&b, "},\"logprobs\":null,\"finish_reason\":\"");
        ngx_http_llm_jbuf_raw(&b, (u_char *) ngx_http_llm_oa_finish[c->finish],
                              ngx_strlen(ngx_http_llm_oa_finish[c->finish]));
        ngx_http_llm_jbuf_lit(&b, "\"}]");

        if (c->has_usage) {
            ngx_http_llm_jbuf_lit(&b, ",\"usage\":");
            ngx_http_llm_oa_usage(c, &b);
        }

        ngx_http_llm_jbuf_lit(&b, "}");

    } else {
        ngx_http_llm_jbuf_lit(&b, "{\"id\":");
        ngx_http_llm_jbuf_qstr(&b, &c->id);
        ngx_http_llm_jbuf_lit(&b, ",\"type\":\"message\",\"role\":"
                                  "\"assistant\",\"model\":");
        ngx_http_llm_jbuf_qstr(&b, &c->model);
        ngx_http_llm_jbuf_lit(&b, ",\"content\":[");

        if (ngx_http_llm_jbuf_len(&c->text)) {
            ngx_http_llm_jbuf_lit(&b, "{\"type\":\"text\",\"text\":");
            ngx_http_llm_jbuf_str(&b, c->text.start,
                                  ngx_http_llm_jbuf_len(&c->text));
            ngx_http_llm_jbuf_lit(&b, "}");

            if (c->tools.nelts) {
                ngx_http_llm_jbuf_lit(&b, ",");
            }
        }

        for (i = 0; i < c->tools.nelts; i++) {
            ngx_http_llm_jbuf_lit(&b, "{\"type\":\"tool_use\",\"id\":");
            ngx_http_llm_jbuf_qstr(&b, &t[i].id);
            ngx_http_llm_jbuf_lit(&b, ",\"name\":");
            ngx_http_llm_jbuf_qstr(&b, &t[i].name);
            ngx_http_llm_jbuf_lit(&b, ",\"input\":");

            /* arguments are JSON text; Anthropic wants the object */

            if (ngx_http_llm_json_is_object(t[i].args.start,
                                            ngx_http_llm_jbuf_len(&t[i].args)))
            {
                ngx_http_llm_jbuf_raw(&b, t[i].args.start,
                                      ngx_http_llm_jbuf_len(&t[i].args));

            } else {
                ngx_http_llm_jbuf_lit(&b, "{}");
            }

            ngx_http_llm_jbuf_lit(&b, "}");

            if (i + 1 < c->tools.nelts) {
                ngx_http_llm_jbuf_lit(&b, ",");
            }
        }

        ngx_http_llm_jbuf_lit(&b, "],\"stop_reason\":\"");
        ngx_http_llm_jbuf_raw(&b, (u_char *) ngx_http_llm_an_stop[c->finish],
                              ngx_strlen(ngx_http_llm_an_stop[c->finish]));
        ngx_http_llm_jbuf_lit(&b, "\",\"stop_sequence\":null,\"usage\":");
        ngx_http_llm_an_usage(c, &b);
        ngx_http_llm_jbuf_lit(&b, "}");
    }

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

    rc = c->write(c->data, c->out.start, c->out.last - c->out.start);

    ngx_http_llm_jbuf_reset(&c->out);

    return rc;
}


static void
ngx_http_llm_oa_chunk_open(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_jbuf_lit(b, "data: {\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"object\":\"chat.completion.chunk\","
                             "\"created\":");
    ngx_http_llm_jbuf_int(b, c->created);
    ngx_http_llm_jbuf_lit(b, ",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
    ngx_http_llm_jbuf_lit(b, ",\"choices\":[{\"index\":0,\"delta\":");
}


static void
ngx_http_llm_oa_chunk_close(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_jbuf_lit(b, ",\"logprobs\":null,\"finish_reason\":");

    if (finish == NGX_HTTP_LLM_FINISH_NONE) {
        ngx_http_llm_jbuf_lit(b, "null");

    } else {
        ngx_http_llm_jbuf_lit(b, "\"");
        ngx_http_llm_jbuf_raw(b, (u_char *) ngx_http_llm_oa_finish[finish],
                              ngx_strlen(ngx_http_llm_oa_finish[finish]));
        ngx_http_llm_jbuf_lit(b, "\"");
    }

    ngx_http_llm_jbuf_lit(b, "}]}\n\n");
}


static void
ngx_http_llm_oa_usage(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    int64_t  prompt, completion;

    prompt = ngx_max(c->usage.prompt, 0);
    completion = ngx_max(c->usage.completion, 0);

    ngx_http_llm_jbuf_lit(b, "{\"prompt_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt);
    ngx_http_llm_jbuf_lit(b, ",\"completion_tokens\":");
    ngx_http_llm_jbuf_int(b, completion);
    ngx_http_llm_jbuf_lit(b, ",\"total_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt + completion);
    ngx_http_llm_jbuf_lit(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    ngx_http_llm_jbuf_int(b, ngx_max(c->usage.cached, 0));
    ngx_http_llm_jbuf_lit(b, "}}");
}


/* Anthropic counts cache reads apart from the other input tokens */

static void
ngx_http_llm_an_usage(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    int64_t  prompt, cached;

    prompt = ngx_max(c->usage.prompt, 0);
    cached = ngx_max(c->usage.cached, 0);

    ngx_http_llm_jbuf_lit(b, "{\"input_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt - ngx_min(cached, prompt));
    ngx_http_llm_jbuf_lit(b, ",\"cache_creation_input_tokens\":0,"
                             "\"cache_read_input_tokens\":");
    ngx_http_llm_jbuf_int(b, cached);
    ngx_http_llm_jbuf_lit(b, ",\"output_tokens\":");
    ngx_http_llm_jbuf_int(b, ngx_max(c->usage.completion, 0));
    ngx_http_llm_jbuf_lit(b, "}");
}


static void
ngx_http_llm_an_close_block(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_an_event(c, "content_block_stop");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_stop\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, "}\n\n");

    c->blocks++;
    c->block_open = 0;
    c->block_tool = -1;
}


static void
ngx_http_llm_an_event(ngx_http_llm_canon_t *c, const char *name)
{
    ngx_http_llm_jbuf_lit(&c->out, "event: ");
    ngx_http_llm_jbuf_raw(&c->out, (u_char *) name, ngx_strlen(name));
    ngx_http_llm_jbuf_lit(&c->out, "\ndata: ");
}


const char *
ngx_http_llm_anthropic_error_type(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        return "invalid_request_error";
    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";
    case NGX_HTTP_FORBIDDEN:
        return "permission_error";
    case NGX_HTTP_NOT_FOUND:
        return "not_found_error";
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "request_too_large";
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    default:
        return (status >= 500) ? "api_error" : "invalid_request_error";
    }
}


static const char *
ngx_http_llm_openai_error_type(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";
    case NGX_HTTP_FORBIDDEN:
        return "permission_error";
    case NGX_HTTP_NOT_FOUND:
        return "not_found_error";
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";
    default:
        return (status >= 500) ? "server_error" : "invalid_request_error";
    }
}


static void
ngx_http_llm_canon_error_json(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_api_e client, ngx_http_llm_perror_t *err)
{
    const char  *type;

    if (client == NGX_HTTP_LLM_API_ANTHROPIC) {
        type = ngx_http_llm_anthropic_error_type(err->status);

        ngx_http_llm_jbuf_lit(b, "{\"type\":\"error\",\"error\":{\"type\":\"");
        ngx_http_llm_jbuf_raw(b, (u_char *) type, ngx_strlen(type));
        ngx_http_llm_jbuf_lit(b, "\",\"message\":");
        ngx_http_llm_jbuf_qstr(b, &err->message);
        ngx_http_llm_jbuf_lit(b, "}}");
        return;
    }

    /* OpenAI's vocabulary for the type; the provider's word is the code */

    type = ngx_http_llm_openai_error_type(err->status);

    ngx_http_llm_jbuf_lit(b, "{\"error\":{\"message\":");
    ngx_http_llm_jbuf_qstr(b, &err->message);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) type, ngx_strlen(type));
    ngx_http_llm_jbuf_lit(b, "\",\"param\":null,\"code\":");

    if (err->type.len) {
        ngx_http_llm_jbuf_qstr(b, &err->type);

    } else {
        ngx_http_llm_jbuf_lit(b, "null");
    }

    ngx_http_llm_jbuf_lit(b, "}}");
}


ngx_int_t
ngx_http_llm_canon_error_body(ngx_pool_t *pool, ngx_http_llm_api_e client,
    ngx_http_llm_perror_t *err, ngx_str_t *out)
{
    ngx_http_llm_jbuf_t  b;

    ngx_http_llm_jbuf_init(&b, pool, 256 + err->message.len * 2);
    ngx_http_llm_canon_error_json(&b, client, err);

    if (b.error) {
        return NGX_ERROR;
    }

    out->data = b.start;
    out->len = b.last - b.start;

    return NGX_OK;
}
