
/*
 * The request walker, and the helpers the request translators share.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_translate.h"


/* a tool call's function name by its id, for the results that follow */
typedef struct {
    ngx_str_node_t                 sn;          /* the call id */
    ngx_str_t                     *name;
} ngx_http_llm_walk_call_t;


static ngx_int_t ngx_http_llm_walk_add_calls(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *m);
static ngx_str_t *ngx_http_llm_walk_call_name(ngx_http_llm_walk_t *w,
    ngx_str_t *id);
static ngx_int_t ngx_http_llm_walk_user(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *content);
static ngx_int_t ngx_http_llm_walk_assistant(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *m, ngx_http_llm_json_t *content);
static ngx_int_t ngx_http_llm_walk_system_parts(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *content, ngx_http_llm_json_t *last);
static ngx_http_llm_json_t *ngx_http_llm_walk_cache(ngx_http_llm_json_t *v);
static ngx_uint_t ngx_http_llm_walk_system_role(ngx_http_llm_json_t *m);
static ngx_uint_t ngx_http_llm_walk_is(ngx_str_t *role, const char *name);


/* Anthropic's breakpoint of the default lifetime, as a tree */

static ngx_http_llm_json_t  ngx_http_llm_ephemeral_type = {
    NGX_HTTP_LLM_JSON_STRING, ngx_string("type"), ngx_string("ephemeral"),
    NULL, NULL, NULL, NULL, 0
};

static ngx_http_llm_json_t  ngx_http_llm_ephemeral = {
    NGX_HTTP_LLM_JSON_OBJECT, ngx_null_string, ngx_null_string,
    &ngx_http_llm_ephemeral_type, &ngx_http_llm_ephemeral_type, NULL, NULL, 1
};


ngx_http_llm_json_t *
ngx_http_llm_auto_breakpoint(ngx_http_llm_ctx_t *ctx)
{
    if (ctx->route == NULL || !ctx->route->cache_breakpoint
        || ctx->chat.cache_control)
    {
        return NULL;
    }

    return &ngx_http_llm_ephemeral;
}


void
ngx_http_llm_walk_init(ngx_http_llm_walk_t *w, ngx_http_request_t *r,
    ngx_http_llm_jbuf_t *b, ngx_http_llm_walker_t *emit)
{
    ngx_memzero(w, sizeof(ngx_http_llm_walk_t));

    w->r = r;
    w->b = b;
    w->emit = emit;

    ngx_http_llm_jbuf_init(&w->tmp, r->pool, 256);
    ngx_rbtree_init(&w->calls, &w->sentinel, ngx_str_rbtree_insert_value);
}


ngx_int_t
ngx_http_llm_walk_system(ngx_http_llm_walk_t *w, ngx_http_llm_json_t *msgs)
{
    ngx_str_t             text;
    ngx_http_llm_json_t  *m, *c, *last;

    /* the last system text gets the route's breakpoint, if any */

    last = NULL;

    for (m = msgs ? msgs->child : NULL; m && w->auto_cache; m = m->next) {
        if (ngx_http_llm_walk_system_role(m)) {
            last = m;
        }
    }

    for (m = msgs ? msgs->child : NULL; m; m = m->next) {

        if (!ngx_http_llm_walk_system_role(m)) {
            continue;
        }

        c = ngx_http_llm_json_get(m, "content");

        if (ngx_http_llm_json_is(c, NGX_HTTP_LLM_JSON_ARRAY)) {
            if (ngx_http_llm_walk_system_parts(w, c,
                                               (m == last) ? w->auto_cache
                                                           : NULL)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        ngx_http_llm_jbuf_reset(&w->tmp);

        if (ngx_http_llm_content_text(c, &w->tmp, "\n") != NGX_OK) {
            return NGX_ERROR;
        }

        text.data = w->tmp.start;
        text.len = ngx_http_llm_jbuf_len(&w->tmp);

        w->cache = (m == last) ? w->auto_cache : NULL;
        w->emit->system(w, &text);
        w->cache = NULL;
    }

    return w->b->error ? NGX_ERROR : NGX_OK;
}


static ngx_uint_t
ngx_http_llm_walk_system_role(ngx_http_llm_json_t *m)
{
    ngx_str_t  *role;

    role = ngx_http_llm_json_str(m, "role");

    return ngx_http_llm_walk_is(role, "system")
           || ngx_http_llm_walk_is(role, "developer");
}


/*
 * A system message's parts, joined by "\n" as one text; a part with
 * cache_control ends a text of its own, written with the breakpoint, so
 * that the cached prefix ends where the client marked it.
 */

static ngx_int_t
ngx_http_llm_walk_system_parts(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *content, ngx_http_llm_json_t *last)
{
    ngx_str_t            *s, text;
    ngx_uint_t            n, written;
    ngx_http_llm_json_t  *part;

    ngx_http_llm_jbuf_reset(&w->tmp);
    n = 0;
    written = 0;

    for (part = content->child; /* void */ ; part = part->next) {

        if (part) {
            s = (part->type == NGX_HTTP_LLM_JSON_STRING)
                ? &part->str : ngx_http_llm_json_str(part, "text");

            if (s == NULL) {
                continue;
            }

            if (n++) {
                ngx_http_llm_jbuf_lit(&w->tmp, "\n");
            }

            ngx_http_llm_jbuf_raw(&w->tmp, s->data, s->len);

            w->cache = ngx_http_llm_walk_cache(part);

            if (w->cache == NULL) {
                continue;
            }

        } else if (n == 0 && written) {
            break;

        } else {
            /* the rest: the message's last text */
            w->cache = last;
        }

        if (w->tmp.error) {
            return NGX_ERROR;
        }

        /* the text up to a breakpoint, or the rest (even empty, as a
           string's would be written) */

        text.data = w->tmp.start;
        text.len = ngx_http_llm_jbuf_len(&w->tmp);

        w->emit->system(w, &text);

        w->cache = NULL;
        ngx_http_llm_jbuf_reset(&w->tmp);
        n = 0;
        written = 1;

        if (part == NULL) {
            break;
        }
    }

    return NGX_OK;
}


/* a member's cache_control, when an object (anything else is ignored) */

static ngx_http_llm_json_t *
ngx_http_llm_walk_cache(ngx_http_llm_json_t *v)
{
    v = ngx_http_llm_json_get(v, "cache_control");

    return ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT) ? v : NULL;
}


ngx_int_t
ngx_http_llm_walk_turns(ngx_http_llm_walk_t *w, ngx_http_llm_json_t *msgs)
{
    ngx_str_t            *role, content, *id;
    ngx_http_llm_json_t  *m, *c, *p;

    for (m = msgs ? msgs->child : NULL; m; m = m->next) {
        role = ngx_http_llm_json_str(m, "role");
        c = ngx_http_llm_json_get(m, "content");

        if (w->emit->names && ngx_http_llm_walk_add_calls(w, m) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_llm_walk_is(role, "user")) {
            if (ngx_http_llm_walk_user(w, c) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_http_llm_walk_is(role, "assistant")) {
            if (ngx_http_llm_walk_assistant(w, m, c) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (!ngx_http_llm_walk_is(role, "tool")) {
            /* system and developer messages: walk_system() */
            continue;
        }

        ngx_http_llm_jbuf_reset(&w->tmp);

        if (ngx_http_llm_content_text(c, &w->tmp, "\n") != NGX_OK) {
            return NGX_ERROR;
        }

        content.data = w->tmp.start;
        content.len = ngx_http_llm_jbuf_len(&w->tmp);

        id = ngx_http_llm_json_str(m, "tool_call_id");

        /* on the message (Anthropic's door), or on a part of its content */

        w->cache = ngx_http_llm_walk_cache(m);

        for (p = ngx_http_llm_json_is(c, NGX_HTTP_LLM_JSON_ARRAY)
                 ? c->child : NULL;
             p && w->cache == NULL;
             p = p->next)
        {
            w->cache = ngx_http_llm_walk_cache(p);
        }

        w->emit->tool_result(w, id, ngx_http_llm_walk_call_name(w, id),
                             &content);

        w->cache = NULL;
    }

    return w->b->error ? NGX_ERROR : NGX_OK;
}


void
ngx_http_llm_walk_functions(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *tools)
{
    ngx_str_t            *name;
    ngx_uint_t            n;
    ngx_http_llm_json_t  *tool, *f, *last;

    if (!ngx_http_llm_json_is(tools, NGX_HTTP_LLM_JSON_ARRAY)) {
        return;
    }

    /* the last function written gets the route's breakpoint, if any */

    last = NULL;

    for (tool = tools->child; tool && w->auto_cache; tool = tool->next) {
        if (ngx_http_llm_json_str(ngx_http_llm_json_get(tool, "function"),
                                  "name"))
        {
            last = tool;
        }
    }

    n = 0;

    for (tool = tools->child; tool; tool = tool->next) {
        f = ngx_http_llm_json_get(tool, "function");
        name = ngx_http_llm_json_str(f, "name");

        if (name == NULL) {
            continue;
        }

        w->cache = (tool == last) ? w->auto_cache
                                  : ngx_http_llm_walk_cache(tool);

        w->emit->function(w, n++, name,
                          ngx_http_llm_json_str(f, "description"),
                          ngx_http_llm_json_get(f, "parameters"));

        w->cache = NULL;
    }
}


void
ngx_http_llm_walk_schema(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *parameters)
{
    if (ngx_http_llm_json_is(parameters, NGX_HTTP_LLM_JSON_OBJECT)) {
        ngx_http_llm_jbuf_value(w->b, parameters);

    } else {
        ngx_http_llm_jbuf_lit(w->b, "{\"type\":\"object\",\"properties\":{}}");
    }
}


void
ngx_http_llm_walk_function_head(ngx_http_llm_walk_t *w, ngx_uint_t n,
    const char *open, ngx_str_t *name, ngx_str_t *description)
{
    if (n) {
        ngx_http_llm_jbuf_lit(w->b, ",");
    }

    ngx_http_llm_jbuf_raw(w->b, (u_char *) open, ngx_strlen(open));
    ngx_http_llm_jbuf_lit(w->b, "\"name\":");
    ngx_http_llm_jbuf_qstr(w->b, name);

    if (description) {
        ngx_http_llm_jbuf_lit(w->b, ",\"description\":");
        ngx_http_llm_jbuf_qstr(w->b, description);
    }
}


/* a user's content: a string, or text and image parts */

static ngx_int_t
ngx_http_llm_walk_user(ngx_http_llm_walk_t *w, ngx_http_llm_json_t *content)
{
    ngx_str_t            *s, *url;
    ngx_http_llm_json_t  *part;

    if (ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_STRING)) {
        w->emit->text(w, NGX_HTTP_LLM_TURN_USER, &content->str);
        return NGX_OK;
    }

    if (!ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_OK;
    }

    for (part = content->child; part; part = part->next) {
        s = ngx_http_llm_json_str(part, "type");

        w->cache = ngx_http_llm_walk_cache(part);

        if (ngx_http_llm_walk_is(s, "text")) {
            s = ngx_http_llm_json_str(part, "text");

            if (s) {
                w->emit->text(w, NGX_HTTP_LLM_TURN_USER, s);
            }

        } else if (ngx_http_llm_walk_is(s, "image_url")) {
            url = ngx_http_llm_json_str(ngx_http_llm_json_get(part,
                                                              "image_url"),
                                        "url");
            if (url) {
                w->emit->image(w, url);
            }
        }

        w->cache = NULL;
    }

    return NGX_OK;
}


/* the assistant's text, then its tool calls */

static ngx_int_t
ngx_http_llm_walk_assistant(ngx_http_llm_walk_t *w, ngx_http_llm_json_t *m,
    ngx_http_llm_json_t *content)
{
    ngx_str_t             text;
    ngx_http_llm_json_t  *calls, *call, *f;

    ngx_http_llm_jbuf_reset(&w->tmp);

    if (ngx_http_llm_content_text(content, &w->tmp, "") != NGX_OK) {
        return NGX_ERROR;
    }

    text.data = w->tmp.start;
    text.len = ngx_http_llm_jbuf_len(&w->tmp);

    w->emit->text(w, NGX_HTTP_LLM_TURN_ASSISTANT, &text);

    calls = ngx_http_llm_json_get(m, "tool_calls");

    if (!ngx_http_llm_json_is(calls, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_OK;
    }

    for (call = calls->child; call; call = call->next) {
        f = ngx_http_llm_json_get(call, "function");

        w->emit->tool_call(w, ngx_http_llm_json_str(call, "id"),
                           ngx_http_llm_json_str(f, "name"),
                           ngx_http_llm_json_str(f, "arguments"));
    }

    return NGX_OK;
}


/*
 * The names of the functions of the tool calls of earlier turns, by call
 * id: a tool message names the function its result is for. Built as the
 * messages are walked, so that a translation stays linear in their
 * number.
 */

static ngx_int_t
ngx_http_llm_walk_add_calls(ngx_http_llm_walk_t *w, ngx_http_llm_json_t *m)
{
    uint32_t                   hash;
    ngx_str_t                 *id;
    ngx_http_llm_json_t       *list, *call;
    ngx_http_llm_walk_call_t  *c;

    list = ngx_http_llm_json_get(m, "tool_calls");

    if (!ngx_http_llm_json_is(list, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_OK;
    }

    for (call = list->child; call; call = call->next) {
        id = ngx_http_llm_json_str(call, "id");

        if (id == NULL) {
            continue;
        }

        hash = ngx_crc32_long(id->data, id->len);

        c = (ngx_http_llm_walk_call_t *)
                ngx_str_rbtree_lookup(&w->calls, id, hash);

        if (c == NULL) {
            c = ngx_palloc(w->r->pool, sizeof(ngx_http_llm_walk_call_t));
            if (c == NULL) {
                return NGX_ERROR;
            }

            c->sn.node.key = hash;
            c->sn.str = *id;
            ngx_rbtree_insert(&w->calls, &c->sn.node);
        }

        /* a later call of the same id names it */
        c->name = ngx_http_llm_json_str(
                      ngx_http_llm_json_get(call, "function"), "name");
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_llm_walk_call_name(ngx_http_llm_walk_t *w, ngx_str_t *id)
{
    ngx_http_llm_walk_call_t  *c;

    if (id == NULL || !w->emit->names) {
        return NULL;
    }

    c = (ngx_http_llm_walk_call_t *)
            ngx_str_rbtree_lookup(&w->calls, id,
                                  ngx_crc32_long(id->data, id->len));

    return c ? c->name : NULL;
}


static ngx_uint_t
ngx_http_llm_walk_is(ngx_str_t *role, const char *name)
{
    size_t  len;

    if (role == NULL) {
        return 0;
    }

    len = ngx_strlen(name);

    return role->len == len && ngx_strncmp(role->data, name, len) == 0;
}


void
ngx_http_llm_translate_params(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *tree, ngx_http_llm_param_names_t *names)
{
    int64_t               max;
    ngx_http_llm_json_t  *v;

#define ngx_http_llm_member(name)                                            \
    ngx_http_llm_jbuf_lit(b, ",\"");                                          \
    ngx_http_llm_jbuf_raw(b, (u_char *) name, ngx_strlen(name));            \
    ngx_http_llm_jbuf_lit(b, "\":")

    max = ngx_http_llm_max_tokens(tree);

    if (names->max_tokens && max > 0) {
        ngx_http_llm_member(names->max_tokens);
        ngx_http_llm_jbuf_int(b, max);
    }

    v = ngx_http_llm_json_get(tree, "temperature");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_NUMBER)) {
        ngx_http_llm_member(names->temperature);
        ngx_http_llm_jbuf_value(b, v);
    }

    v = ngx_http_llm_json_get(tree, "top_p");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_NUMBER)) {
        ngx_http_llm_member(names->top_p);
        ngx_http_llm_jbuf_value(b, v);
    }

    v = ngx_http_llm_json_get(tree, "stop");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING)) {
        ngx_http_llm_member(names->stop);
        ngx_http_llm_jbuf_lit(b, "[");
        ngx_http_llm_jbuf_value(b, v);
        ngx_http_llm_jbuf_lit(b, "]");

    } else if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY)) {
        ngx_http_llm_member(names->stop);
        ngx_http_llm_jbuf_value(b, v);
    }

#undef ngx_http_llm_member
}


/*
 * The text of an OpenAI or Anthropic content: a string as it is, the
 * text parts of an array joined by sep.
 */

ngx_int_t
ngx_http_llm_content_text(ngx_http_llm_json_t *content,
    ngx_http_llm_jbuf_t *b, const char *sep)
{
    ngx_str_t            *s;
    ngx_uint_t            n;
    ngx_http_llm_json_t  *part;

    if (content == NULL) {
        return NGX_OK;
    }

    if (content->type == NGX_HTTP_LLM_JSON_STRING) {
        ngx_http_llm_jbuf_raw(b, content->str.data, content->str.len);
        return b->error ? NGX_ERROR : NGX_OK;
    }

    if (content->type != NGX_HTTP_LLM_JSON_ARRAY) {
        return NGX_OK;
    }

    n = 0;

    for (part = content->child; part; part = part->next) {

        if (part->type == NGX_HTTP_LLM_JSON_STRING) {
            s = &part->str;

        } else {
            s = ngx_http_llm_json_str(part, "text");
        }

        if (s == NULL) {
            continue;
        }

        if (n++) {
            ngx_http_llm_jbuf_raw(b, (u_char *) sep, ngx_strlen(sep));
        }

        ngx_http_llm_jbuf_raw(b, s->data, s->len);
    }

    return b->error ? NGX_ERROR : NGX_OK;
}


/* "data:image/png;base64,AAAA": the media type and the base64 data */

ngx_int_t
ngx_http_llm_data_url(ngx_str_t *url, ngx_str_t *type, ngx_str_t *data)
{
    u_char  *p, *last, *semi;

    if (url->len < 5 || ngx_strncasecmp(url->data, (u_char *) "data:", 5)
                        != 0)
    {
        return NGX_DECLINED;
    }

    p = url->data + 5;
    last = url->data + url->len;

    semi = ngx_strlchr(p, last, ';');

    if (semi == NULL || last - semi < 8
        || ngx_strncmp(semi, ";base64,", 8) != 0)
    {
        return NGX_DECLINED;
    }

    type->data = p;
    type->len = semi - p;
    data->data = semi + 8;
    data->len = last - data->data;

    return NGX_OK;
}


/* max_completion_tokens, or the older max_tokens; -1: neither */

int64_t
ngx_http_llm_max_tokens(ngx_http_llm_json_t *tree)
{
    int64_t  n;

    n = ngx_http_llm_json_int(tree, "max_completion_tokens");

    if (n < 0) {
        n = ngx_http_llm_json_int(tree, "max_tokens");
    }

    return n;
}
