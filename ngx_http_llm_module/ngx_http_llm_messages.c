
/*
 * Anthropic's door: a POST /v1/messages request in Anthropic's Messages
 * format is routed like any other. For a target in another API its tree
 * is converted once into OpenAI's chat format, which every dialect
 * translates from; an Anthropic target gets the body as it came, with its
 * model (ngx_http_llm_anthropic.c), so nothing Anthropic-only is lost.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_responses.h"
#include "ngx_http_llm_body.h"


static ngx_int_t ngx_http_llm_messages_block(ngx_http_llm_json_t *block,
    ngx_uint_t i, ngx_uint_t k, ngx_http_llm_problem_t *problem);
static ngx_http_llm_json_t *ngx_http_llm_convert(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *in);
static ngx_int_t ngx_http_llm_convert_message(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *messages, ngx_http_llm_json_t *m);
static void ngx_http_llm_conv_system(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *msgs, ngx_http_llm_json_t *sys);
static void ngx_http_llm_conv_cache(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *out, ngx_http_llm_json_t *block);
static ngx_http_llm_json_t *ngx_http_llm_convert_image(
    ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *parts,
    ngx_http_llm_json_t *block);


/*
 * The request in OpenAI's chat format: the client's own tree, or, at
 * Anthropic's door and for the Responses API, the tree converted (once
 * per request).
 */

/*
 * What Anthropic itself requires of a request's shape, told as it tells
 * it ("messages.0.role: ..."): a message that would otherwise be dropped,
 * or a block written out empty, by a translation to another API.
 */

ngx_int_t
ngx_http_llm_messages_check(ngx_http_llm_json_t *tree,
    ngx_http_llm_problem_t *problem)
{
    ngx_uint_t            i, k;
    ngx_http_llm_json_t  *m, *content, *block, *v;

    v = ngx_http_llm_json_get(tree, "messages");

    i = 0;

    for (m = v ? v->child : NULL; m; m = m->next) {

        if (!ngx_http_llm_json_eq(ngx_http_llm_json_get(m, "role"), "user")
            && !ngx_http_llm_json_eq(ngx_http_llm_json_get(m, "role"),
                                     "assistant"))
        {
            return ngx_http_llm_problem(problem, "messages", NULL,
                                        "messages.%ui.role: Input should be "
                                        "'user' or 'assistant'", i);
        }

        content = ngx_http_llm_json_get(m, "content");

        if (content == NULL) {
            return ngx_http_llm_problem(problem, "messages", NULL,
                                        "messages.%ui.content: Field "
                                        "required", i);
        }

        if (content->type == NGX_HTTP_LLM_JSON_ARRAY) {
            k = 0;

            for (block = content->child; block; block = block->next) {
                if (ngx_http_llm_messages_block(block, i, k, problem)
                    != NGX_OK)
                {
                    return NGX_DECLINED;
                }

                k++;
            }

        } else if (content->type != NGX_HTTP_LLM_JSON_STRING) {
            return ngx_http_llm_problem(problem, "messages", NULL,
                                        "messages.%ui.content: Input should "
                                        "be a valid string or list", i);
        }

        i++;
    }

    v = ngx_http_llm_json_get(tree, "system");

    if (v && v->type == NGX_HTTP_LLM_JSON_ARRAY) {
        k = 0;

        for (block = v->child; block; block = block->next) {
            if (!ngx_http_llm_json_eq(ngx_http_llm_json_get(block, "type"),
                                      "text")
                || ngx_http_llm_json_str(block, "text") == NULL)
            {
                return ngx_http_llm_problem(problem, "system", NULL,
                                            "system.%ui: Input should be a "
                                            "text block", k);
            }

            k++;
        }
    }

    /* (a system of another type is refused by the body's parser) */

    v = ngx_http_llm_json_get(tree, "tool_choice");

    if (v && v->type != NGX_HTTP_LLM_JSON_NULL
        && (ngx_http_llm_json_str(v, "type") == NULL
            || (ngx_http_llm_json_eq(ngx_http_llm_json_get(v, "type"), "tool")
                && ngx_http_llm_json_str(v, "name") == NULL)))
    {
        return ngx_http_llm_problem(problem, "tool_choice", NULL,
                                    "tool_choice: Input should be an object "
                                    "with a type (and the name of a tool)");
    }

    v = ngx_http_llm_json_get(tree, "tools");

    if (v && v->type == NGX_HTTP_LLM_JSON_ARRAY) {
        k = 0;

        for (block = v->child; block; block = block->next) {
            if (ngx_http_llm_json_str(block, "name") == NULL) {
                return ngx_http_llm_problem(problem, "tools", NULL,
                                            "tools.%ui.name: Field required",
                                            k);
            }

            k++;
        }
    }

    return NGX_OK;
}


/* a content block: a type, and what its type needs */

static ngx_int_t
ngx_http_llm_messages_block(ngx_http_llm_json_t *block, ngx_uint_t i,
    ngx_uint_t k, ngx_http_llm_problem_t *problem)
{
    ngx_http_llm_json_t  *type;

    type = ngx_http_llm_json_get(block, "type");

    if (type == NULL || type->type != NGX_HTTP_LLM_JSON_STRING) {
        return ngx_http_llm_problem(problem, "messages", NULL,
                                    "messages.%ui.content.%ui.type: Field "
                                    "required", i, k);
    }

    if (ngx_http_llm_json_eq(type, "text")
        && ngx_http_llm_json_str(block, "text") == NULL)
    {
        return ngx_http_llm_problem(problem, "messages", NULL,
                                    "messages.%ui.content.%ui.text: Field "
                                    "required", i, k);
    }

    if (ngx_http_llm_json_eq(type, "tool_use")
        && (ngx_http_llm_json_str(block, "id") == NULL
            || ngx_http_llm_json_str(block, "name") == NULL))
    {
        return ngx_http_llm_problem(problem, "messages", NULL,
                                    "messages.%ui.content.%ui: a tool_use "
                                    "block needs its id and name", i, k);
    }

    if (ngx_http_llm_json_eq(type, "tool_result")
        && ngx_http_llm_json_str(block, "tool_use_id") == NULL)
    {
        return ngx_http_llm_problem(problem, "messages", NULL,
                                    "messages.%ui.content.%ui.tool_use_id: "
                                    "Field required", i, k);
    }

    return NGX_OK;
}


ngx_http_llm_json_t *
ngx_http_llm_chat_tree(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_conv_t    cv;
    ngx_http_llm_arena_t  *arena;

    if (ctx->chat_tree) {
        return ctx->chat_tree;
    }

    if (ctx->tree == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "llm: no request tree for a translation");
        return NULL;
    }

    if (ctx->endpoint != NGX_HTTP_LLM_EP_MESSAGES
        && ctx->endpoint != NGX_HTTP_LLM_EP_RESPONSES)
    {
        ctx->chat_tree = ctx->tree;
        return ctx->chat_tree;
    }

    arena = ngx_palloc(r->pool, sizeof(ngx_http_llm_arena_t));
    if (arena == NULL) {
        return NULL;
    }

    ngx_http_llm_arena_init(arena, r->pool);

    cv.pool = r->pool;
    cv.arena = arena;
    cv.error = 0;

    ctx->chat_tree = (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES)
                     ? ngx_http_llm_responses_convert(&cv, ctx->tree)
                     : ngx_http_llm_convert(&cv, ctx->tree);

    if (cv.error) {
        ctx->chat_tree = NULL;
    }

    return ctx->chat_tree;
}


static ngx_http_llm_json_t *
ngx_http_llm_convert(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *in)
{
    ngx_str_t            *s;
    ngx_http_llm_json_t  *out, *v, *msgs, *m, *tools, *t, *f, *tc, *sys;

    out = ngx_http_llm_json_new(cv->arena, NGX_HTTP_LLM_JSON_OBJECT);
    if (out == NULL) {
        cv->error = 1;
        return NULL;
    }

    v = ngx_http_llm_json_get(in, "model");
    if (v) {
        ngx_http_llm_conv_ref(cv, out, "model", v);
    }

    msgs = ngx_http_llm_conv_add(cv, out, "messages",
                                 NGX_HTTP_LLM_JSON_ARRAY);

    sys = ngx_http_llm_json_get(in, "system");

    if (sys && (sys->type == NGX_HTTP_LLM_JSON_STRING
                || sys->type == NGX_HTTP_LLM_JSON_ARRAY))
    {
        ngx_http_llm_conv_system(cv, msgs, sys);
    }

    v = ngx_http_llm_json_get(in, "messages");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY)) {
        for (m = v->child; m; m = m->next) {
            if (ngx_http_llm_convert_message(cv, msgs, m) != NGX_OK) {
                cv->error = 1;
            }
        }
    }

    for (v = in->child; v; v = v->next) {

#define ngx_http_llm_is_key(k)  ngx_http_llm_str_is(&v->key, k)

        if (ngx_http_llm_is_key("max_tokens")
            || ngx_http_llm_is_key("temperature")
            || ngx_http_llm_is_key("top_p")
            || ngx_http_llm_is_key("stream"))
        {
            ngx_http_llm_conv_ref(cv, out, NULL, v);

        } else if (ngx_http_llm_is_key("stop_sequences")) {
            ngx_http_llm_conv_ref(cv, out, "stop", v);

        } else if (ngx_http_llm_is_key("metadata")) {
            s = ngx_http_llm_json_str(v, "user_id");
            if (s) {
                ngx_http_llm_conv_str(cv, out, "user", s->data, s->len);
            }

        } else if (ngx_http_llm_is_key("tools")
                   && v->type == NGX_HTTP_LLM_JSON_ARRAY)
        {
            tools = NULL;

            for (t = v->child; t; t = t->next) {

                /* client tools; server tools (web search, ...) have a type */

                s = ngx_http_llm_json_str(t, "type");
                if ((s && !(s->len == 6
                            && ngx_strncmp(s->data, "custom", 6) == 0))
                    || ngx_http_llm_json_str(t, "name") == NULL)
                {
                    continue;
                }

                if (tools == NULL) {
                    tools = ngx_http_llm_conv_add(cv, out, "tools",
                                                  NGX_HTTP_LLM_JSON_ARRAY);
                }

                tc = ngx_http_llm_conv_add(cv, tools, NULL,
                                           NGX_HTTP_LLM_JSON_OBJECT);
                ngx_http_llm_conv_lit(cv, tc, "type", "function");
                f = ngx_http_llm_conv_add(cv, tc, "function",
                                          NGX_HTTP_LLM_JSON_OBJECT);
                ngx_http_llm_conv_ref(cv, f, "name",
                                      ngx_http_llm_json_get(t, "name"));

                if (ngx_http_llm_json_get(t, "description")) {
                    ngx_http_llm_conv_ref(cv, f, "description",
                                    ngx_http_llm_json_get(t, "description"));
                }

                if (ngx_http_llm_json_get(t, "input_schema")) {
                    ngx_http_llm_conv_ref(cv, f, "parameters",
                                   ngx_http_llm_json_get(t, "input_schema"));
                }

                ngx_http_llm_conv_cache(cv, tc, t);
            }

        } else if (ngx_http_llm_is_key("tool_choice")) {
            s = ngx_http_llm_json_str(v, "type");

            if (s == NULL) {
                continue;
            }

            if (s->len == 3 && ngx_strncmp(s->data, "any", 3) == 0) {
                ngx_http_llm_conv_lit(cv, out, "tool_choice", "required");

            } else if (s->len == 4 && ngx_strncmp(s->data, "none", 4) == 0) {
                ngx_http_llm_conv_lit(cv, out, "tool_choice", "none");

            } else if (s->len == 4 && ngx_strncmp(s->data, "tool", 4) == 0) {
                tc = ngx_http_llm_conv_add(cv, out, "tool_choice",
                                           NGX_HTTP_LLM_JSON_OBJECT);
                ngx_http_llm_conv_lit(cv, tc, "type", "function");
                f = ngx_http_llm_conv_add(cv, tc, "function",
                                          NGX_HTTP_LLM_JSON_OBJECT);

                if (ngx_http_llm_json_get(v, "name")) {
                    ngx_http_llm_conv_ref(cv, f, "name",
                                          ngx_http_llm_json_get(v, "name"));
                }

            } else {
                ngx_http_llm_conv_lit(cv, out, "tool_choice", "auto");
            }

            t = ngx_http_llm_json_get(v, "disable_parallel_tool_use");

            if (ngx_http_llm_json_is(t, NGX_HTTP_LLM_JSON_TRUE)) {
                ngx_http_llm_conv_add(cv, out, "parallel_tool_calls",
                                      NGX_HTTP_LLM_JSON_FALSE);
            }
        }

#undef ngx_http_llm_is_key
    }

    return out;
}


/*
 * One Anthropic message: tool results become "tool" messages (first:
 * they answer the assistant's calls just before), the rest a user or
 * assistant message.
 */

static ngx_int_t
ngx_http_llm_convert_message(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *msgs, ngx_http_llm_json_t *m)
{
    ngx_str_t            *role, *type, *s;
    ngx_uint_t            user;
    ngx_http_llm_json_t  *content, *block, *out, *parts, *calls, *f;
    ngx_http_llm_jbuf_t   text, args;

    role = ngx_http_llm_json_str(m, "role");
    content = ngx_http_llm_json_get(m, "content");

    if (role == NULL || content == NULL) {
        return NGX_OK;
    }

    user = !(role->len == 9 && ngx_strncmp(role->data, "assistant", 9) == 0);

    if (content->type == NGX_HTTP_LLM_JSON_STRING) {
        out = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_ref(cv, out, "role", ngx_http_llm_json_get(m,
                                                                     "role"));
        ngx_http_llm_conv_ref(cv, out, "content", content);
        return NGX_OK;
    }

    if (content->type != NGX_HTTP_LLM_JSON_ARRAY) {
        return NGX_OK;
    }

    if (user) {

        for (block = content->child; block; block = block->next) {
            type = ngx_http_llm_json_str(block, "type");

            if (type == NULL || type->len != 11
                || ngx_strncmp(type->data, "tool_result", 11) != 0)
            {
                continue;
            }

            ngx_http_llm_jbuf_init(&text, cv->pool, 256);

            ngx_http_llm_conv_text(cv, ngx_http_llm_json_get(block,
                                                             "content"),
                                   &text);

            if (text.error) {
                return NGX_ERROR;
            }

            out = ngx_http_llm_conv_add(cv, msgs, NULL,
                                        NGX_HTTP_LLM_JSON_OBJECT);
            ngx_http_llm_conv_lit(cv, out, "role", "tool");

            s = ngx_http_llm_json_str(block, "tool_use_id");
            if (s) {
                ngx_http_llm_conv_str(cv, out, "tool_call_id", s->data,
                                      s->len);
            }

            ngx_http_llm_conv_str(cv, out, "content", text.start,
                                  text.last - text.start);
            ngx_http_llm_conv_cache(cv, out, block);
        }

        out = NULL;
        parts = NULL;

        for (block = content->child; block; block = block->next) {
            type = ngx_http_llm_json_str(block, "type");

            if (type == NULL) {
                continue;
            }

            if (!(type->len == 4 && ngx_strncmp(type->data, "text", 4) == 0)
                && !(type->len == 5
                     && ngx_strncmp(type->data, "image", 5) == 0))
            {
                continue;
            }

            if (out == NULL) {
                out = ngx_http_llm_conv_add(cv, msgs, NULL,
                                            NGX_HTTP_LLM_JSON_OBJECT);
                ngx_http_llm_conv_lit(cv, out, "role", "user");
                parts = ngx_http_llm_conv_add(cv, out, "content",
                                              NGX_HTTP_LLM_JSON_ARRAY);
            }

            if (type->len == 5) {
                ngx_http_llm_conv_cache(cv, ngx_http_llm_convert_image(cv,
                                                                       parts,
                                                                       block),
                                        block);
                continue;
            }

            f = ngx_http_llm_conv_add(cv, parts, NULL,
                                      NGX_HTTP_LLM_JSON_OBJECT);
            ngx_http_llm_conv_lit(cv, f, "type", "text");

            if (ngx_http_llm_json_get(block, "text")) {
                ngx_http_llm_conv_ref(cv, f, "text",
                                      ngx_http_llm_json_get(block, "text"));
            }

            ngx_http_llm_conv_cache(cv, f, block);
        }

        return cv->error ? NGX_ERROR : NGX_OK;
    }

    /* assistant: text joined, tool uses as tool calls */

    ngx_http_llm_jbuf_init(&text, cv->pool, 256);
    calls = NULL;

    out = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);
    ngx_http_llm_conv_lit(cv, out, "role", "assistant");

    for (block = content->child; block; block = block->next) {
        type = ngx_http_llm_json_str(block, "type");

        if (type == NULL) {
            continue;
        }

        if (type->len == 4 && ngx_strncmp(type->data, "text", 4) == 0) {
            s = ngx_http_llm_json_str(block, "text");
            if (s) {
                ngx_http_llm_jbuf_raw(&text, s->data, s->len);
            }

            continue;
        }

        if (!(type->len == 8 && ngx_strncmp(type->data, "tool_use", 8) == 0))
        {
            continue;
        }

        if (calls == NULL) {
            calls = ngx_http_llm_json_new(cv->arena, NGX_HTTP_LLM_JSON_ARRAY);
            if (calls == NULL) {
                return NGX_ERROR;
            }

            ngx_str_set(&calls->key, "tool_calls");
        }

        f = ngx_http_llm_conv_call(cv, calls,
                                   ngx_http_llm_json_get(block, "id"),
                                   ngx_http_llm_json_get(block, "name"));

        /* OpenAI carries the arguments as JSON text */

        ngx_http_llm_jbuf_init(&args, cv->pool, 128);
        ngx_http_llm_jbuf_value(&args, ngx_http_llm_json_get(block, "input"));

        if (args.error) {
            return NGX_ERROR;
        }

        ngx_http_llm_conv_str(cv, f, "arguments", args.start,
                              args.last - args.start);
    }

    if (text.error) {
        return NGX_ERROR;
    }

    if (text.last > text.start || calls == NULL) {
        ngx_http_llm_conv_str(cv, out, "content", text.start,
                              text.last - text.start);

    } else {
        ngx_http_llm_conv_add(cv, out, "content", NGX_HTTP_LLM_JSON_NULL);
    }

    if (calls) {
        ngx_http_llm_json_append(out, calls);
    }

    return cv->error ? NGX_ERROR : NGX_OK;
}


/* a tool call of the chat format, with its id and name: its "function" */

ngx_http_llm_json_t *
ngx_http_llm_conv_call(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *calls,
    ngx_http_llm_json_t *id, ngx_http_llm_json_t *name)
{
    ngx_http_llm_json_t  *call, *f;

    call = ngx_http_llm_conv_add(cv, calls, NULL, NGX_HTTP_LLM_JSON_OBJECT);

    if (id) {
        ngx_http_llm_conv_ref(cv, call, "id", id);
    }

    ngx_http_llm_conv_lit(cv, call, "type", "function");
    f = ngx_http_llm_conv_add(cv, call, "function", NGX_HTTP_LLM_JSON_OBJECT);

    if (name) {
        ngx_http_llm_conv_ref(cv, f, "name", name);
    }

    return f;
}


/* an image block: base64 data as a data: URL, or its URL */

static ngx_http_llm_json_t *
ngx_http_llm_convert_image(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *parts,
    ngx_http_llm_json_t *block)
{
    u_char               *p;
    size_t                len;
    ngx_str_t            *type, *media, *data, *url;
    ngx_http_llm_json_t  *src, *part, *iu;

    src = ngx_http_llm_json_get(block, "source");
    type = ngx_http_llm_json_str(src, "type");

    if (type == NULL) {
        return NULL;
    }

    part = ngx_http_llm_conv_add(cv, parts, NULL, NGX_HTTP_LLM_JSON_OBJECT);
    ngx_http_llm_conv_lit(cv, part, "type", "image_url");
    iu = ngx_http_llm_conv_add(cv, part, "image_url", NGX_HTTP_LLM_JSON_OBJECT);

    if (type->len == 3 && ngx_strncmp(type->data, "url", 3) == 0) {
        url = ngx_http_llm_json_str(src, "url");

        if (url) {
            ngx_http_llm_conv_str(cv, iu, "url", url->data, url->len);
        }

        return part;
    }

    media = ngx_http_llm_json_str(src, "media_type");
    data = ngx_http_llm_json_str(src, "data");

    if (media == NULL || data == NULL) {
        return part;
    }

    len = sizeof("data:;base64,") - 1 + media->len + data->len;

    p = ngx_http_llm_arena_alloc(cv->arena, len);
    if (p == NULL) {
        cv->error = 1;
        return NULL;
    }

    ngx_http_llm_conv_str(cv, iu, "url", p, len);

    p = ngx_cpymem(p, "data:", 5);
    p = ngx_cpymem(p, media->data, media->len);
    p = ngx_cpymem(p, ";base64,", 8);
    ngx_memcpy(p, data->data, data->len);

    return part;
}


/*
 * The system prompt: a string or text blocks, as one system message; its
 * text joined, unless a block has cache_control: then its blocks as the
 * message's text parts, each with its own (the walker's breakpoints).
 */

static void
ngx_http_llm_conv_system(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *msgs,
    ngx_http_llm_json_t *sys)
{
    ngx_http_llm_json_t  *m, *block, *parts, *part, *text;
    ngx_http_llm_jbuf_t   b;

    m = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);
    ngx_http_llm_conv_lit(cv, m, "role", "system");

    for (block = (sys->type == NGX_HTTP_LLM_JSON_ARRAY) ? sys->child : NULL;
         block;
         block = block->next)
    {
        if (ngx_http_llm_json_get(block, "cache_control")) {
            break;
        }
    }

    if (block == NULL) {
        ngx_http_llm_jbuf_init(&b, cv->pool, 256);
        ngx_http_llm_conv_text(cv, sys, &b);

        ngx_http_llm_conv_str(cv, m, "content", b.start, b.last - b.start);

        if (b.error) {
            cv->error = 1;
        }

        return;
    }

    parts = ngx_http_llm_conv_add(cv, m, "content", NGX_HTTP_LLM_JSON_ARRAY);

    for (block = sys->child; block; block = block->next) {
        text = ngx_http_llm_json_get(block, "text");

        if (!ngx_http_llm_json_is(text, NGX_HTTP_LLM_JSON_STRING)) {
            continue;
        }

        part = ngx_http_llm_conv_add(cv, parts, NULL,
                                     NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, part, "type", "text");
        ngx_http_llm_conv_ref(cv, part, "text", text);
        ngx_http_llm_conv_cache(cv, part, block);
    }
}


/* a block's cache_control, carried to its converted part or message */

static void
ngx_http_llm_conv_cache(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *out,
    ngx_http_llm_json_t *block)
{
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_json_get(block, "cache_control");

    if (v && out) {
        ngx_http_llm_conv_ref(cv, out, "cache_control", v);
    }
}


/* the text of a string or of text blocks, joined */

void
ngx_http_llm_conv_text(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *content,
    ngx_http_llm_jbuf_t *b)
{
    if (ngx_http_llm_content_text(content, b, "\n\n") != NGX_OK) {
        cv->error = 1;
    }
}


ngx_http_llm_json_t *
ngx_http_llm_conv_add(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *parent,
    const char *key, ngx_http_llm_json_type_e type)
{
    ngx_http_llm_json_t  *v;

    if (parent == NULL) {
        cv->error = 1;
        return NULL;
    }

    v = ngx_http_llm_json_new(cv->arena, type);
    if (v == NULL) {
        cv->error = 1;
        return NULL;
    }

    if (key) {
        v->key.data = (u_char *) key;
        v->key.len = ngx_strlen(key);
    }

    ngx_http_llm_json_append(parent, v);

    return v;
}


ngx_http_llm_json_t *
ngx_http_llm_conv_str(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *parent,
    const char *key, u_char *s, size_t len)
{
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_conv_add(cv, parent, key, NGX_HTTP_LLM_JSON_STRING);
    if (v == NULL) {
        return NULL;
    }

    v->str.data = s;
    v->str.len = len;

    return v;
}


/*
 * A value of the client's tree, shared: the copy is shallow (its own
 * key and place), its members are the client's.
 */

ngx_http_llm_json_t *
ngx_http_llm_conv_ref(ngx_http_llm_conv_t *cv, ngx_http_llm_json_t *parent,
    const char *key, ngx_http_llm_json_t *v)
{
    ngx_http_llm_json_t  *copy;

    if (v == NULL || parent == NULL) {
        cv->error = 1;
        return NULL;
    }

    copy = ngx_http_llm_json_new(cv->arena, v->type);
    if (copy == NULL) {
        cv->error = 1;
        return NULL;
    }

    *copy = *v;
    copy->next = NULL;

    if (key) {
        copy->key.data = (u_char *) key;
        copy->key.len = ngx_strlen(key);
    }

    ngx_http_llm_json_append(parent, copy);

    return copy;
}
