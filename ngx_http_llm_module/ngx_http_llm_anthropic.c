
/*
 * The Anthropic dialect: Messages API (POST .../messages, x-api-key,
 * anthropic-version). OpenAI chat requests are translated; requests from
 * Anthropic's own door pass with the target's model spliced in.
 * Responses, whole or streamed (message_start, content_block_start,
 * content_block_delta, content_block_stop, message_delta, message_stop,
 * ping, error), are decoded into canonical deltas; pings are passed on.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"


#define NGX_HTTP_LLM_ANTHROPIC_VERSION     "2023-06-01"
#define NGX_HTTP_LLM_ANTHROPIC_MAX_TOKENS  4096


typedef struct {
    ngx_int_t                      max_tokens;
    unsigned                       beta:1;      /* "header anthropic-beta" */
    ngx_str_t                      count_url;   /* .../messages/count_tokens */
} ngx_http_llm_anthropic_conf_t;


/* the system prompt being written: blocks with breakpoints, text after */
typedef struct {
    ngx_http_llm_jbuf_t            text;
    ngx_http_llm_jbuf_t            blocks;      /* ",{...},{...}" */
} ngx_http_llm_anthropic_sys_t;


static char *ngx_http_llm_anthropic_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_anthropic_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_anthropic_splice(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_anthropic_translate(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_anthropic_sys_block(ngx_http_llm_anthropic_sys_t *sys,
    ngx_http_llm_json_t *cache);
static void ngx_http_llm_anthropic_cache(ngx_http_llm_walk_t *w);
static ngx_int_t ngx_http_llm_anthropic_auto(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *v);
static ngx_int_t ngx_http_llm_anthropic_decode_body(ngx_http_llm_canon_t *c,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_anthropic_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev);
static ngx_int_t ngx_http_llm_anthropic_decode_error(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_llm_perror_t *err);


static char  *ngx_http_llm_anthropic_headers[] = {
    "anthropic-beta",
    NULL
};


static char  *ngx_http_llm_anthropic_options[] = {
    "version",
    "max_tokens",
    NULL
};


ngx_http_llm_dialect_t  ngx_http_llm_anthropic_dialect = {
    ngx_string("anthropic"),
    ngx_http_llm_anthropic_init_provider,
    ngx_http_llm_anthropic_create_request,
    ngx_http_llm_anthropic_headers,
    NULL,
    NULL,
    NGX_HTTP_LLM_API_ANTHROPIC,
    NGX_HTTP_LLM_FRAMING_SSE,
    ngx_http_llm_anthropic_options,
    ngx_http_llm_anthropic_decode_body,
    ngx_http_llm_anthropic_decode_event,
    ngx_http_llm_anthropic_decode_error
};


static char *
ngx_http_llm_anthropic_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p)
{
    ngx_str_t                      *v;
    ngx_uint_t                      i;
    ngx_http_llm_header_t          *h;
    ngx_http_llm_anthropic_conf_t  *acf;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_anthropic_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    p->dialect_conf = acf;

    if (ngx_http_llm_provider_chat_url(cf, p, "/messages") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    acf->count_url.len = p->chat_url.len + sizeof("/count_tokens") - 1;
    acf->count_url.data = ngx_pnalloc(cf->pool, acf->count_url.len);
    if (acf->count_url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(acf->count_url.data, p->chat_url.data,
                          p->chat_url.len),
               "/count_tokens", sizeof("/count_tokens") - 1);

    acf->max_tokens = NGX_HTTP_LLM_ANTHROPIC_MAX_TOKENS;

    v = ngx_http_llm_provider_option(p, "max_tokens");

    if (v) {
        acf->max_tokens = ngx_atoi(v->data, v->len);

        if (acf->max_tokens <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max_tokens \"%V\" in llm_provider "
                               "\"%V\"", v, &p->name);
            return NGX_CONF_ERROR;
        }
    }

    h = p->headers->elts;

    for (i = 0; i < p->headers->nelts; i++) {
        if (h[i].name.len == sizeof("anthropic-version") - 1
            && ngx_strncmp(h[i].name.data, "anthropic-version",
                           sizeof("anthropic-version") - 1) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" sets anthropic-version "
                               "with \"header\": use \"version\"", &p->name);
            return NGX_CONF_ERROR;
        }

        if (h[i].name.len == sizeof("anthropic-beta") - 1
            && ngx_strncmp(h[i].name.data, "anthropic-beta",
                           sizeof("anthropic-beta") - 1) == 0)
        {
            acf->beta = 1;
        }

    }

    h = ngx_array_push(p->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&h->name, "anthropic-version");
    h->secret = 0;

    v = ngx_http_llm_provider_option(p, "version");

    if (v) {
        h->value = *v;

    } else {
        ngx_str_set(&h->value, NGX_HTTP_LLM_ANTHROPIC_VERSION);
    }

    return ngx_http_llm_provider_key_header(cf, p, "x-api-key", "x-api-key",
                                            "");
}


static ngx_int_t
ngx_http_llm_anthropic_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_anthropic_conf_t  *acf;

    ctx->upstream_url = ctx->target->provider->chat_url;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS) {
        /* counted as it came, with the target's model */
        acf = ctx->target->provider->dialect_conf;
        ctx->upstream_url = acf->count_url;
        return ngx_http_llm_anthropic_splice(r, ctx);
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_MESSAGES) {
        return ngx_http_llm_anthropic_splice(r, ctx);
    }

    return ngx_http_llm_anthropic_translate(r, ctx);
}


/*
 * Anthropic's door to an Anthropic provider: the body as it came, with
 * the target's model; the client's anthropic-beta goes along, unless the
 * provider sets its own.
 */

static ngx_int_t
ngx_http_llm_anthropic_splice(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t                      n;
    ngx_table_elt_t                *h;
    ngx_http_llm_edit_t             edit;
    ngx_http_llm_target_t          *t;
    ngx_http_llm_anthropic_conf_t  *acf;

    t = ctx->target;
    acf = t->provider->dialect_conf;

    if (!acf->beta) {
        h = ngx_http_llm_find_header(&r->headers_in.headers,
                                     "anthropic-beta");

        if (h && ngx_http_llm_add_header(ctx, "anthropic-beta", &h->value, 0)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llm_auto_breakpoint(ctx)) {
        return ngx_http_llm_rebuild_body_with(r, ctx,
                                              ngx_http_llm_anthropic_auto);
    }

    if (ctx->request_redacted) {
        return ngx_http_llm_rebuild_body(r, ctx);
    }

    n = 0;

    if (ctx->target_model.len != ctx->chat.model.len
        || ngx_strncmp(ctx->target_model.data, ctx->chat.model.data,
                       ctx->chat.model.len) != 0)
    {
        edit.start = ctx->chat.model_key_end;
        edit.end = ctx->chat.model_end;

        if (t->model_edit.len) {
            edit.text = t->model_edit;

        } else if (ngx_http_llm_model_edit(r->pool, &ctx->target_model,
                                           &edit.text)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = 1;
    }

    return ngx_http_llm_splice_body(r, ctx, &edit, n);
}


/*
 * The route's breakpoint on a body as it came (it has none of its own):
 * on the last block of "system" (a string made a text block) and on the
 * last tool.
 */

static ngx_int_t
ngx_http_llm_anthropic_auto(ngx_http_llm_jbuf_t *b, ngx_http_llm_json_t *v)
{
    ngx_http_llm_json_t  *c;

    if (v->key.len == 6 && ngx_strncmp(v->key.data, "system", 6) == 0
        && v->type == NGX_HTTP_LLM_JSON_STRING && v->str.len)
    {
        ngx_http_llm_jbuf_lit(b, "[{\"type\":\"text\",\"text\":");
        ngx_http_llm_jbuf_value(b, v);
        ngx_http_llm_jbuf_lit(b, ",\"cache_control\":{\"type\":"
                                 "\"ephemeral\"}}]");
        return NGX_OK;
    }

    if (!((v->key.len == 6 && ngx_strncmp(v->key.data, "system", 6) == 0)
          || (v->key.len == 5 && ngx_strncmp(v->key.data, "tools", 5) == 0))
        || v->type != NGX_HTTP_LLM_JSON_ARRAY
        || !ngx_http_llm_json_is(v->last, NGX_HTTP_LLM_JSON_OBJECT))
    {
        return NGX_DECLINED;
    }

    ngx_http_llm_jbuf_lit(b, "[");

    for (c = v->child; c != v->last; c = c->next) {
        ngx_http_llm_jbuf_value(b, c);
        ngx_http_llm_jbuf_lit(b, ",");
    }

    /* the last one, with the breakpoint as its last member */

    ngx_http_llm_jbuf_lit(b, "{");

    for (c = v->last->child; c; c = c->next) {
        ngx_http_llm_jbuf_str(b, c->key.data, c->key.len);
        ngx_http_llm_jbuf_lit(b, ":");
        ngx_http_llm_jbuf_value(b, c);
        ngx_http_llm_jbuf_lit(b, ",");
    }

    ngx_http_llm_jbuf_lit(b, "\"cache_control\":{\"type\":\"ephemeral\"}}]");

    return NGX_OK;
}


/* a content block of the message being written, merged by role */

static void
ngx_http_llm_anthropic_block(ngx_http_llm_walk_t *w, ngx_uint_t turn)
{
    if (w->turn != turn) {
        if (w->turn) {
            ngx_http_llm_jbuf_lit(w->b, "]}");
        }

        if (w->turn || w->parts) {
            ngx_http_llm_jbuf_lit(w->b, ",");
        }

        if (turn == NGX_HTTP_LLM_TURN_USER) {
            ngx_http_llm_jbuf_lit(w->b, "{\"role\":\"user\",\"content\":[");

        } else {
            ngx_http_llm_jbuf_lit(w->b,
                                  "{\"role\":\"assistant\",\"content\":[");
        }

        w->turn = turn;

    } else {
        ngx_http_llm_jbuf_lit(w->b, ",");
    }

    w->parts++;
}


/*
 * Every system (and developer) message, joined as one string; a text
 * with a cache breakpoint ends a text block of the system's array, with
 * its cache_control, and what follows is the array's last block.
 */

static void
ngx_http_llm_anthropic_system(ngx_http_llm_walk_t *w, ngx_str_t *text)
{
    ngx_http_llm_anthropic_sys_t  *sys = w->data;

    if (w->n++) {
        ngx_http_llm_jbuf_lit(&sys->text, "\n\n");
    }

    ngx_http_llm_jbuf_raw(&sys->text, text->data, text->len);

    /* Anthropic refuses empty text blocks */

    if (w->cache == NULL || ngx_http_llm_jbuf_len(&sys->text) == 0) {
        return;
    }

    ngx_http_llm_anthropic_sys_block(sys, w->cache);
    w->n = 0;
}


/* the text so far as a block of the system's array */

static void
ngx_http_llm_anthropic_sys_block(ngx_http_llm_anthropic_sys_t *sys,
    ngx_http_llm_json_t *cache)
{
    ngx_http_llm_jbuf_t  *b;

    b = &sys->blocks;

    ngx_http_llm_jbuf_lit(b, ",{\"type\":\"text\",\"text\":");
    ngx_http_llm_jbuf_str(b, sys->text.start,
                          ngx_http_llm_jbuf_len(&sys->text));

    if (cache) {
        ngx_http_llm_jbuf_lit(b, ",\"cache_control\":");
        ngx_http_llm_jbuf_value(b, cache);
    }

    ngx_http_llm_jbuf_lit(b, "}");
    ngx_http_llm_jbuf_reset(&sys->text);
}


/* a block's cache_control, as the client gave it */

static void
ngx_http_llm_anthropic_cache(ngx_http_llm_walk_t *w)
{
    if (w->cache) {
        ngx_http_llm_jbuf_lit(w->b, ",\"cache_control\":");
        ngx_http_llm_jbuf_value(w->b, w->cache);
    }
}


static void
ngx_http_llm_anthropic_text(ngx_http_llm_walk_t *w, ngx_uint_t turn,
    ngx_str_t *text)
{
    if (text->len == 0) {
        /* Anthropic refuses empty text blocks */
        return;
    }

    ngx_http_llm_anthropic_block(w, turn);

    ngx_http_llm_jbuf_lit(w->b, "{\"type\":\"text\",\"text\":");
    ngx_http_llm_jbuf_qstr(w->b, text);
    ngx_http_llm_anthropic_cache(w);
    ngx_http_llm_jbuf_lit(w->b, "}");
}


static void
ngx_http_llm_anthropic_image(ngx_http_llm_walk_t *w, ngx_str_t *url)
{
    ngx_str_t             type, data;
    ngx_http_llm_jbuf_t  *b;

    b = w->b;

    ngx_http_llm_anthropic_block(w, NGX_HTTP_LLM_TURN_USER);

    if (ngx_http_llm_data_url(url, &type, &data) == NGX_OK) {
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"image\",\"source\":{\"type\":"
                                 "\"base64\",\"media_type\":");
        ngx_http_llm_jbuf_qstr(b, &type);
        ngx_http_llm_jbuf_lit(b, ",\"data\":");
        ngx_http_llm_jbuf_qstr(b, &data);

    } else {
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"image\",\"source\":{\"type\":"
                                 "\"url\",\"url\":");
        ngx_http_llm_jbuf_qstr(b, url);
    }

    ngx_http_llm_jbuf_lit(b, "}");
    ngx_http_llm_anthropic_cache(w);
    ngx_http_llm_jbuf_lit(b, "}");
}


static void
ngx_http_llm_anthropic_tool_call(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *arguments)
{
    ngx_http_llm_jbuf_t  *b;

    b = w->b;

    ngx_http_llm_anthropic_block(w, NGX_HTTP_LLM_TURN_ASSISTANT);

    ngx_http_llm_jbuf_lit(b, "{\"type\":\"tool_use\",\"id\":");
    ngx_http_llm_jbuf_qstr_or_empty(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"name\":");
    ngx_http_llm_jbuf_qstr_or_empty(b, name);
    ngx_http_llm_jbuf_lit(b, ",\"input\":");

    /* the arguments are JSON text; Anthropic wants the object */
    ngx_http_llm_jbuf_object(b, arguments);

    ngx_http_llm_jbuf_lit(b, "}");
}


static void
ngx_http_llm_anthropic_tool_result(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *content)
{
    ngx_http_llm_jbuf_t  *b;

    b = w->b;

    ngx_http_llm_anthropic_block(w, NGX_HTTP_LLM_TURN_USER);

    ngx_http_llm_jbuf_lit(b, "{\"type\":\"tool_result\",\"tool_use_id\":");
    ngx_http_llm_jbuf_qstr_or_empty(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"content\":");
    ngx_http_llm_jbuf_qstr(b, content);
    ngx_http_llm_anthropic_cache(w);
    ngx_http_llm_jbuf_lit(b, "}");
}


static ngx_http_llm_param_names_t  ngx_http_llm_anthropic_params = {
    NULL, "temperature", "top_p", "stop_sequences"
};


static void
ngx_http_llm_anthropic_function(ngx_http_llm_walk_t *w, ngx_uint_t n,
    ngx_str_t *name, ngx_str_t *description, ngx_http_llm_json_t *parameters)
{
    ngx_http_llm_walk_function_head(w, n, "{", name, description);

    ngx_http_llm_jbuf_lit(w->b, ",\"input_schema\":");

    ngx_http_llm_walk_schema(w, parameters);

    ngx_http_llm_anthropic_cache(w);
    ngx_http_llm_jbuf_lit(w->b, "}");
}


static ngx_http_llm_walker_t  ngx_http_llm_anthropic_walker = {
    ngx_http_llm_anthropic_system,
    ngx_http_llm_anthropic_text,
    ngx_http_llm_anthropic_image,
    ngx_http_llm_anthropic_tool_call,
    ngx_http_llm_anthropic_tool_result,
    ngx_http_llm_anthropic_function,
    0
};


static ngx_int_t
ngx_http_llm_anthropic_translate(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    int64_t                          max;
    ngx_str_t                       *s;
    ngx_uint_t                       parallel_off;
    ngx_http_llm_json_t             *tree, *msgs, *v;
    ngx_http_llm_jbuf_t              b;
    ngx_http_llm_walk_t              w;
    ngx_http_llm_anthropic_sys_t     sys;
    ngx_http_llm_anthropic_conf_t   *acf;

    acf = ctx->target->provider->dialect_conf;

    tree = ngx_http_llm_chat_tree(r, ctx);
    if (tree == NULL) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&b, r->pool, ctx->body_length + 512);
    ngx_http_llm_jbuf_init(&sys.text, r->pool, 256);
    ngx_http_llm_jbuf_init(&sys.blocks, r->pool, 256);

    max = ngx_http_llm_max_tokens(tree);

    ngx_http_llm_jbuf_lit(&b, "{\"model\":");
    ngx_http_llm_jbuf_qstr(&b, &ctx->target_model);
    ngx_http_llm_jbuf_lit(&b, ",\"max_tokens\":");
    ngx_http_llm_jbuf_int(&b, (max > 0) ? max : acf->max_tokens);

    msgs = ngx_http_llm_json_get(tree, "messages");

    ngx_http_llm_walk_init(&w, r, &b, &ngx_http_llm_anthropic_walker);
    w.data = &sys;
    w.auto_cache = ngx_http_llm_auto_breakpoint(ctx);

    if (ngx_http_llm_walk_system(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (sys.blocks.last > sys.blocks.start) {
        if (sys.text.last > sys.text.start) {
            ngx_http_llm_anthropic_sys_block(&sys, NULL);
        }

        /* the blocks start with a comma */
        ngx_http_llm_jbuf_lit(&b, ",\"system\":[");
        ngx_http_llm_jbuf_raw(&b, sys.blocks.start + 1,
                              ngx_http_llm_jbuf_len(&sys.blocks) - 1);
        ngx_http_llm_jbuf_lit(&b, "]");

    } else if (sys.text.last > sys.text.start) {
        ngx_http_llm_jbuf_lit(&b, ",\"system\":");
        ngx_http_llm_jbuf_str(&b, sys.text.start,
                              ngx_http_llm_jbuf_len(&sys.text));
    }

    ngx_http_llm_jbuf_lit(&b, ",\"messages\":[");

    if (ngx_http_llm_walk_turns(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (w.turn) {
        ngx_http_llm_jbuf_lit(&b, "]}");
    }

    ngx_http_llm_jbuf_lit(&b, "]");

    /* parameters with a counterpart (max_tokens is always given) */

    ngx_http_llm_translate_params(&b, tree, &ngx_http_llm_anthropic_params);

    if (ctx->chat.stream) {
        ngx_http_llm_jbuf_lit(&b, ",\"stream\":true");
    }

    s = ngx_http_llm_json_str(tree, "user");

    if (s) {
        ngx_http_llm_jbuf_lit(&b, ",\"metadata\":{\"user_id\":");
        ngx_http_llm_jbuf_qstr(&b, s);
        ngx_http_llm_jbuf_lit(&b, "}");
    }

    v = ngx_http_llm_json_get(tree, "tools");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY) && v->n) {
        ngx_http_llm_jbuf_lit(&b, ",\"tools\":[");
        ngx_http_llm_walk_functions(&w, v);

        ngx_http_llm_jbuf_lit(&b, "]");
    }

    v = ngx_http_llm_json_get(tree, "parallel_tool_calls");
    parallel_off = ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_FALSE);

    v = ngx_http_llm_json_get(tree, "tool_choice");

    if (v || parallel_off) {
        ngx_http_llm_jbuf_lit(&b, ",\"tool_choice\":{\"type\":");

        if (ngx_http_llm_json_eq(v, "none")) {
            ngx_http_llm_jbuf_lit(&b, "\"none\"");

        } else if (ngx_http_llm_json_eq(v, "required")) {
            ngx_http_llm_jbuf_lit(&b, "\"any\"");

        } else if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT)
                   && (s = ngx_http_llm_json_str(
                               ngx_http_llm_json_get(v, "function"), "name")))
        {
            ngx_http_llm_jbuf_lit(&b, "\"tool\",\"name\":");
            ngx_http_llm_jbuf_qstr(&b, s);

        } else {
            ngx_http_llm_jbuf_lit(&b, "\"auto\"");
        }

        if (parallel_off) {
            ngx_http_llm_jbuf_lit(&b, ",\"disable_parallel_tool_use\":true");
        }

        ngx_http_llm_jbuf_lit(&b, "}");
    }

    ngx_http_llm_jbuf_lit(&b, "}");

    if (b.error || sys.text.error || sys.blocks.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start);
}


/* decoders */

static ngx_http_llm_finish_e
ngx_http_llm_anthropic_finish(ngx_str_t *reason)
{
    if (reason == NULL) {
        return NGX_HTTP_LLM_FINISH_STOP;
    }

    if (reason->len == 10 && ngx_strncmp(reason->data, "max_tokens", 10) == 0)
    {
        return NGX_HTTP_LLM_FINISH_LENGTH;
    }

    if (reason->len == 8 && ngx_strncmp(reason->data, "tool_use", 8) == 0) {
        return NGX_HTTP_LLM_FINISH_TOOL_CALLS;
    }

    if (reason->len == 7 && ngx_strncmp(reason->data, "refusal", 7) == 0) {
        return NGX_HTTP_LLM_FINISH_CONTENT_FILTER;
    }

    /* end_turn, stop_sequence, pause_turn */
    return NGX_HTTP_LLM_FINISH_STOP;
}


/* input tokens with the cache's, read and written: the prompt */

static ngx_int_t
ngx_http_llm_anthropic_usage(ngx_http_llm_canon_t *c, ngx_http_llm_json_t *u)
{
    int64_t  input, read, creation, prompt;

    if (!ngx_http_llm_json_is(u, NGX_HTTP_LLM_JSON_OBJECT)) {
        return NGX_OK;
    }

    input = ngx_http_llm_json_int(u, "input_tokens");
    read = ngx_http_llm_json_int(u, "cache_read_input_tokens");
    creation = ngx_http_llm_json_int(u, "cache_creation_input_tokens");

    prompt = -1;

    if (input >= 0) {
        prompt = input + ngx_max(read, 0) + ngx_max(creation, 0);
    }

    return ngx_http_llm_canon_usage(c, prompt,
                                    ngx_http_llm_json_int(u, "output_tokens"),
                                    (input >= 0) ? ngx_max(read, 0) : read,
                                    (input >= 0) ? ngx_max(creation, 0)
                                                 : creation);
}


static ngx_uint_t
ngx_http_llm_anthropic_error_status(ngx_str_t *type)
{
    static struct {
        const char  *type;
        ngx_uint_t   status;
    } map[] = {
        { "invalid_request_error", 400 },
        { "authentication_error", 401 },
        { "permission_error", 403 },
        { "not_found_error", 404 },
        { "request_too_large", 413 },
        { "rate_limit_error", 429 },
        { "api_error", 500 },
        { "overloaded_error", 529 },
        { NULL, 0 }
    };

    ngx_uint_t  i;

    for (i = 0; type && map[i].type; i++) {
        if (type->len == ngx_strlen(map[i].type)
            && ngx_strncmp(type->data, map[i].type, type->len) == 0)
        {
            return map[i].status;
        }
    }

    return 500;
}


static void
ngx_http_llm_anthropic_error_fields(ngx_http_llm_json_t *tree,
    ngx_http_llm_perror_t *err)
{
    ngx_str_t            *s;
    ngx_http_llm_json_t  *e;

    e = ngx_http_llm_json_get(tree, "error");

    s = ngx_http_llm_json_str(e, "type");
    if (s) {
        err->type = *s;
    }

    s = ngx_http_llm_json_str(e, "message");
    if (s) {
        err->message = *s;
    }
}


static ngx_int_t
ngx_http_llm_anthropic_decode_body(ngx_http_llm_canon_t *c, ngx_str_t *body)
{
    ngx_str_t              *type, *s;
    ngx_uint_t              tools;
    ngx_http_llm_json_t    *tree, *block;
    ngx_http_llm_perror_t   err;

    tree = ngx_http_llm_json_parse(&c->arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_json_eq(ngx_http_llm_json_get(tree, "type"), "error")) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
        ngx_http_llm_anthropic_error_fields(tree, &err);
        err.status = ngx_http_llm_anthropic_error_status(&err.type);

        return ngx_http_llm_canon_error(c, &err);
    }

    block = ngx_http_llm_json_get(tree, "content");

    if (!ngx_http_llm_json_is(block, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_canon_start(c, ngx_http_llm_json_str(tree, "id"),
                                 ngx_http_llm_json_str(tree, "model"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    tools = 0;

    for (block = block->child; block; block = block->next) {
        type = ngx_http_llm_json_str(block, "type");

        if (ngx_http_llm_json_eq(ngx_http_llm_json_get(block, "type"),
                                 "text"))
        {
            s = ngx_http_llm_json_str(block, "text");

            if (s && ngx_http_llm_canon_text(c, s) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (type == NULL || type->len != 8
            || ngx_strncmp(type->data, "tool_use", 8) != 0)
        {
            /* thinking, server tools: not translated */
            continue;
        }

        if (ngx_http_llm_canon_call(c, tools,
                                    ngx_http_llm_json_str(block, "id"),
                                    ngx_http_llm_json_str(block, "name"),
                                    ngx_http_llm_json_get(block, "input"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        tools++;
    }

    if (ngx_http_llm_canon_finish(c, ngx_http_llm_anthropic_finish(
                                    ngx_http_llm_json_str(tree,
                                                          "stop_reason")))
        != NGX_OK
        || ngx_http_llm_anthropic_usage(c, ngx_http_llm_json_get(tree,
                                                                 "usage"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llm_canon_end(c);
}


static ngx_int_t
ngx_http_llm_anthropic_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev)
{
    int64_t                 index;
    ngx_int_t               rc;
    ngx_str_t              *type, *s;
    ngx_uint_t              tool;
    ngx_http_llm_json_t    *tree, *v, *block, *delta;
    ngx_http_llm_perror_t   err;

    if (ev->data.len == 0) {
        return NGX_OK;
    }

    tree = ngx_http_llm_json_parse(&c->arena, ev->data.data, ev->data.len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    type = ngx_http_llm_json_str(tree, "type");

    if (type == NULL) {
        return NGX_DECLINED;
    }

#define ngx_http_llm_is_type(t)                                              \
    (type->len == sizeof(t) - 1 && ngx_strncmp(type->data, t, type->len) == 0)

    if (ngx_http_llm_is_type("content_block_delta")) {
        index = ngx_http_llm_json_int(tree, "index");
        delta = ngx_http_llm_json_get(tree, "delta");

        if (ngx_http_llm_json_eq(ngx_http_llm_json_get(delta, "type"),
                                 "text_delta"))
        {
            s = ngx_http_llm_json_str(delta, "text");
            return s ? ngx_http_llm_canon_text(c, s) : NGX_OK;
        }

        if (ngx_http_llm_json_eq(ngx_http_llm_json_get(delta, "type"),
                                 "input_json_delta"))
        {
            s = ngx_http_llm_json_str(delta, "partial_json");

            if (s == NULL || index < 0
                || ngx_http_llm_canon_block_tool(c, index, &tool) != NGX_OK)
            {
                return NGX_OK;
            }

            return ngx_http_llm_canon_args(c, tool, s->data, s->len);
        }

        /* thinking, signatures, citations: not translated */
        return NGX_OK;
    }

    if (ngx_http_llm_is_type("content_block_start")) {
        index = ngx_http_llm_json_int(tree, "index");
        block = ngx_http_llm_json_get(tree, "content_block");

        if (ngx_http_llm_json_eq(ngx_http_llm_json_get(block, "type"),
                                 "text"))
        {
            s = ngx_http_llm_json_str(block, "text");
            return s ? ngx_http_llm_canon_text(c, s) : NGX_OK;
        }

        if (!ngx_http_llm_json_eq(ngx_http_llm_json_get(block, "type"),
                                  "tool_use")
            || index < 0)
        {
            return NGX_OK;
        }

        /* tools are numbered in their order, blocks of all kinds count */

        tool = c->tools_seen;

        rc = ngx_http_llm_canon_set_block_tool(c, index, tool);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_llm_canon_tool(c, tool,
                                       ngx_http_llm_json_str(block, "id"),
                                       ngx_http_llm_json_str(block, "name"));
    }

    if (ngx_http_llm_is_type("message_start")) {
        v = ngx_http_llm_json_get(tree, "message");

        /* the usage first: the start event of a stream carries it */

        if (ngx_http_llm_anthropic_usage(c, ngx_http_llm_json_get(v, "usage"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_llm_canon_start(c, ngx_http_llm_json_str(v, "id"),
                                        ngx_http_llm_json_str(v, "model"));
    }

    if (ngx_http_llm_is_type("message_delta")) {
        v = ngx_http_llm_json_get(tree, "delta");

        if (ngx_http_llm_anthropic_usage(c, ngx_http_llm_json_get(tree,
                                                                  "usage"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_llm_json_str(v, "stop_reason") == NULL) {
            return NGX_OK;
        }

        return ngx_http_llm_canon_finish(c, ngx_http_llm_anthropic_finish(
                                   ngx_http_llm_json_str(v, "stop_reason")));
    }

    if (ngx_http_llm_is_type("message_stop")) {
        return ngx_http_llm_canon_end(c);
    }

    if (ngx_http_llm_is_type("error")) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
        ngx_http_llm_anthropic_error_fields(tree, &err);
        err.status = ngx_http_llm_anthropic_error_status(&err.type);

        return ngx_http_llm_canon_error(c, &err);
    }

    if (ngx_http_llm_is_type("ping")) {
        return ngx_http_llm_canon_ping(c);
    }

#undef ngx_http_llm_is_type

    /* content_block_stop */
    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_anthropic_decode_error(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_llm_perror_t *err)
{
    ngx_http_llm_json_t   *tree;
    ngx_http_llm_arena_t   arena;

    ngx_http_llm_arena_init(&arena, r->pool);

    tree = ngx_http_llm_json_parse(&arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_llm_anthropic_error_fields(tree, err);

    return NGX_OK;
}
