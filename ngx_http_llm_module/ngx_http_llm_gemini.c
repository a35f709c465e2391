
/*
 * The Google Gemini dialect: generateContent, and streamGenerateContent
 * with alt=sse for streams, the key in x-goog-api-key. Messages become
 * contents of parts, system messages the system instruction, tools
 * function declarations; candidates, safety blocks and usage metadata
 * come back as canonical deltas.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_embeddings.h"


static char *ngx_http_llm_gemini_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_gemini_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_gemini_decode_body(ngx_http_llm_canon_t *c,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_gemini_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev);
static ngx_int_t ngx_http_llm_gemini_decode_error(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_llm_perror_t *err);


ngx_http_llm_dialect_t  ngx_http_llm_gemini_dialect = {
    ngx_string("gemini"),
    ngx_http_llm_gemini_init_provider,
    ngx_http_llm_gemini_create_request,
    NULL,
    NULL,
    NULL,
    NGX_HTTP_LLM_API_GEMINI,
    NGX_HTTP_LLM_FRAMING_SSE,
    NULL,
    ngx_http_llm_gemini_decode_body,
    ngx_http_llm_gemini_decode_event,
    ngx_http_llm_gemini_decode_error
};


static char *
ngx_http_llm_gemini_init_provider(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    /* the URL's stem: the model and the method follow per attempt */

    if (ngx_http_llm_provider_chat_url(cf, p, "") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_llm_provider_key_header(cf, p, "x-goog-api-key",
                                            "x-goog-api-key", "");
}


/* contents of one role are merged */

static void
ngx_http_llm_gemini_part(ngx_http_llm_walk_t *w, ngx_uint_t turn)
{
    if (w->turn != turn) {
        if (w->turn) {
            ngx_http_llm_jbuf_lit(w->b, "]},");
        }

        if (turn == NGX_HTTP_LLM_TURN_USER) {
            ngx_http_llm_jbuf_lit(w->b, "{\"role\":\"user\",\"parts\":[");

        } else {
            ngx_http_llm_jbuf_lit(w->b, "{\"role\":\"model\",\"parts\":[");
        }

        w->turn = turn;

    } else {
        ngx_http_llm_jbuf_lit(w->b, ",");
    }
}


/* every system (and developer) message, joined */

static void
ngx_http_llm_gemini_system(ngx_http_llm_walk_t *w, ngx_str_t *text)
{
    ngx_http_llm_jbuf_t  *sys = w->data;

    if (w->n++) {
        ngx_http_llm_jbuf_lit(sys, "\n\n");
    }

    ngx_http_llm_jbuf_raw(sys, text->data, text->len);
}


static void
ngx_http_llm_gemini_text(ngx_http_llm_walk_t *w, ngx_uint_t turn,
    ngx_str_t *text)
{
    if (text->len == 0) {
        return;
    }

    ngx_http_llm_gemini_part(w, turn);

    ngx_http_llm_jbuf_lit(w->b, "{\"text\":");
    ngx_http_llm_jbuf_qstr(w->b, text);
    ngx_http_llm_jbuf_lit(w->b, "}");
}


/* an image: inline data from a data: URL, or the URL as file data */

static void
ngx_http_llm_gemini_image(ngx_http_llm_walk_t *w, ngx_str_t *url)
{
    u_char               *dot;
    ngx_str_t             type, data;
    ngx_http_llm_jbuf_t  *b;

    b = w->b;

    ngx_http_llm_gemini_part(w, NGX_HTTP_LLM_TURN_USER);

    if (ngx_http_llm_data_url(url, &type, &data) == NGX_OK) {
        ngx_http_llm_jbuf_lit(b, "{\"inlineData\":{\"mimeType\":");
        ngx_http_llm_jbuf_qstr(b, &type);
        ngx_http_llm_jbuf_lit(b, ",\"data\":");
        ngx_http_llm_jbuf_qstr(b, &data);
        ngx_http_llm_jbuf_lit(b, "}}");
        return;
    }

    /* Gemini wants a type for a file's URL: guessed from its name */

    ngx_str_set(&type, "image/jpeg");

    for (dot = url->data + url->len; dot > url->data; dot--) {
        if (dot[-1] == '.' || dot[-1] == '/') {
            break;
        }
    }

    if (dot > url->data && dot[-1] == '.') {
        if (url->data + url->len - dot == 3
            && ngx_strncasecmp(dot, (u_char *) "png", 3) == 0)
        {
            ngx_str_set(&type, "image/png");

        } else if (url->data + url->len - dot == 3
                   && ngx_strncasecmp(dot, (u_char *) "gif", 3) == 0)
        {
            ngx_str_set(&type, "image/gif");

        } else if (url->data + url->len - dot == 4
                   && ngx_strncasecmp(dot, (u_char *) "webp", 4) == 0)
        {
            ngx_str_set(&type, "image/webp");
        }
    }

    ngx_http_llm_jbuf_lit(b, "{\"fileData\":{\"mimeType\":");
    ngx_http_llm_jbuf_qstr(b, &type);
    ngx_http_llm_jbuf_lit(b, ",\"fileUri\":");
    ngx_http_llm_jbuf_qstr(b, url);
    ngx_http_llm_jbuf_lit(b, "}}");
}


static void
ngx_http_llm_gemini_tool_call(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *arguments)
{
    ngx_http_llm_gemini_part(w, NGX_HTTP_LLM_TURN_ASSISTANT);

    ngx_http_llm_jbuf_lit(w->b, "{\"functionCall\":{\"name\":");
    ngx_http_llm_jbuf_qstr_or_empty(w->b, name);
    ngx_http_llm_jbuf_lit(w->b, ",\"args\":");

    ngx_http_llm_jbuf_object(w->b, arguments);

    ngx_http_llm_jbuf_lit(w->b, "}}");
}


/* a result names its function (the walker knows it from the call) */

static void
ngx_http_llm_gemini_tool_result(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *content)
{
    ngx_http_llm_gemini_part(w, NGX_HTTP_LLM_TURN_USER);

    ngx_http_llm_jbuf_lit(w->b, "{\"functionResponse\":{\"name\":");
    ngx_http_llm_jbuf_qstr_or_empty(w->b, name);

    /* the response is an object: JSON results stay structured */

    ngx_http_llm_jbuf_lit(w->b, ",\"response\":");

    if (ngx_http_llm_json_is_object(content->data, content->len)) {
        ngx_http_llm_jbuf_raw(w->b, content->data, content->len);

    } else {
        ngx_http_llm_jbuf_lit(w->b, "{\"content\":");
        ngx_http_llm_jbuf_qstr(w->b, content);
        ngx_http_llm_jbuf_lit(w->b, "}");
    }

    ngx_http_llm_jbuf_lit(w->b, "}}");
}


static ngx_http_llm_param_names_t  ngx_http_llm_gemini_params = {
    "maxOutputTokens", "temperature", "topP", "stopSequences"
};


static void
ngx_http_llm_gemini_function(ngx_http_llm_walk_t *w, ngx_uint_t n,
    ngx_str_t *name, ngx_str_t *description, ngx_http_llm_json_t *parameters)
{
    ngx_http_llm_walk_function_head(w, n, "{", name, description);

    if (ngx_http_llm_json_is(parameters, NGX_HTTP_LLM_JSON_OBJECT)) {
        ngx_http_llm_jbuf_lit(w->b, ",\"parameters\":");
        ngx_http_llm_jbuf_value(w->b, parameters);
    }

    ngx_http_llm_jbuf_lit(w->b, "}");
}


static ngx_http_llm_walker_t  ngx_http_llm_gemini_walker = {
    ngx_http_llm_gemini_system,
    ngx_http_llm_gemini_text,
    ngx_http_llm_gemini_image,
    ngx_http_llm_gemini_tool_call,
    ngx_http_llm_gemini_tool_result,
    ngx_http_llm_gemini_function,
    1
};


static ngx_int_t
ngx_http_llm_gemini_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    u_char                   *p;
    size_t                    len;
    ngx_str_t                *s, text, *model;
    ngx_uint_t                prefixed;
    ngx_http_llm_json_t      *tree, *msgs, *v;
    ngx_http_llm_jbuf_t       b, tmp;
    ngx_http_llm_walk_t       w;
    ngx_http_llm_provider_t  *provider;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        return ngx_http_llm_embeddings_gemini(r, ctx);
    }

    provider = ctx->target->provider;
    model = &ctx->target_model;

    /* .../models/<model>:generateContent, or the stream's method */

    prefixed = (model->len > 7 && ngx_strncmp(model->data, "models/", 7) == 0)
               ? 7
               : (model->len > 12
                  && ngx_strncmp(model->data, "tunedModels/", 12) == 0)
                 ? 12 : 0;

    /* the name is a path segment of a URL that carries the provider's key */

    text.data = model->data + prefixed;
    text.len = model->len - prefixed;

    if (ngx_http_llm_model_segment(&text) != NGX_OK) {
        return NGX_DECLINED;
    }

    len = provider->chat_url.len + 1 + (prefixed ? 0 : 7) + model->len
          + sizeof(":streamGenerateContent?alt=sse") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->upstream_url.data = p;

    p = ngx_cpymem(p, provider->chat_url.data, provider->chat_url.len);
    p = prefixed ? ngx_cpymem(p, "/", 1) : ngx_cpymem(p, "/models/", 8);
    p = ngx_cpymem(p, model->data, model->len);

    if (ctx->chat.stream) {
        p = ngx_cpymem(p, ":streamGenerateContent?alt=sse",
                       sizeof(":streamGenerateContent?alt=sse") - 1);

    } else {
        p = ngx_cpymem(p, ":generateContent",
                       sizeof(":generateContent") - 1);
    }

    ctx->upstream_url.len = p - ctx->upstream_url.data;

    tree = ngx_http_llm_chat_tree(r, ctx);
    if (tree == NULL) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&b, r->pool, ctx->body_length + 512);
    ngx_http_llm_jbuf_init(&tmp, r->pool, 256);

    msgs = ngx_http_llm_json_get(tree, "messages");

    if (!ngx_http_llm_json_is(msgs, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_lit(&b, "{\"contents\":[");

    ngx_http_llm_walk_init(&w, r, &b, &ngx_http_llm_gemini_walker);
    w.data = &tmp;

    if (ngx_http_llm_walk_turns(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (w.turn) {
        ngx_http_llm_jbuf_lit(&b, "]}");
    }

    ngx_http_llm_jbuf_lit(&b, "]");

    if (ngx_http_llm_walk_system(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (tmp.last > tmp.start) {
        ngx_http_llm_jbuf_lit(&b, ",\"systemInstruction\":{\"parts\":"
                                  "[{\"text\":");
        ngx_http_llm_jbuf_str(&b, tmp.start, tmp.last - tmp.start);
        ngx_http_llm_jbuf_lit(&b, "}]}");
    }

    /* generation parameters */

    ngx_http_llm_jbuf_reset(&tmp);

    ngx_http_llm_translate_params(&tmp, tree, &ngx_http_llm_gemini_params);

    v = ngx_http_llm_json_get(tree, "response_format");

    if (ngx_http_llm_json_eq(ngx_http_llm_json_get(v, "type"), "json_object")
        || ngx_http_llm_json_eq(ngx_http_llm_json_get(v, "type"),
                                "json_schema"))
    {
        ngx_http_llm_jbuf_lit(&tmp, ",\"responseMimeType\":"
                                    "\"application/json\"");
    }

    if (tmp.last > tmp.start) {
        ngx_http_llm_jbuf_lit(&b, ",\"generationConfig\":{");
        ngx_http_llm_jbuf_raw(&b, tmp.start + 1, tmp.last - tmp.start - 1);
        ngx_http_llm_jbuf_lit(&b, "}");
    }

    /* tools: function declarations, and how they may be called */

    v = ngx_http_llm_json_get(tree, "tools");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY) && v->n) {
        ngx_http_llm_jbuf_lit(&b, ",\"tools\":[{\"functionDeclarations\":[");
        ngx_http_llm_walk_functions(&w, v);

        ngx_http_llm_jbuf_lit(&b, "]}]");

        v = ngx_http_llm_json_get(tree, "tool_choice");

        if (v) {
            ngx_http_llm_jbuf_lit(&b, ",\"toolConfig\":"
                                      "{\"functionCallingConfig\":{\"mode\":");

            if (ngx_http_llm_json_eq(v, "none")) {
                ngx_http_llm_jbuf_lit(&b, "\"NONE\"");

            } else if (ngx_http_llm_json_eq(v, "required")) {
                ngx_http_llm_jbuf_lit(&b, "\"ANY\"");

            } else if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT)
                       && (s = ngx_http_llm_json_str(
                                   ngx_http_llm_json_get(v, "function"),
                                   "name")))
            {
                ngx_http_llm_jbuf_lit(&b, "\"ANY\",\"allowedFunctionNames\":[");
                ngx_http_llm_jbuf_qstr(&b, s);
                ngx_http_llm_jbuf_lit(&b, "]");

            } else {
                ngx_http_llm_jbuf_lit(&b, "\"AUTO\"");
            }

            ngx_http_llm_jbuf_lit(&b, "}}");
        }
    }

    ngx_http_llm_jbuf_lit(&b, "}");

    if (b.error || tmp.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start);
}


/* decoders */

static ngx_http_llm_finish_e
ngx_http_llm_gemini_finish(ngx_http_llm_canon_t *c, ngx_str_t *reason)
{
    static const char  *filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "LANGUAGE", NULL
    };

    ngx_uint_t  i;

    if (reason->len == 10 && ngx_strncmp(reason->data, "MAX_TOKENS", 10) == 0)
    {
        return NGX_HTTP_LLM_FINISH_LENGTH;
    }

    for (i = 0; filtered[i]; i++) {
        if (reason->len == ngx_strlen(filtered[i])
            && ngx_strncmp(reason->data, filtered[i], reason->len) == 0)
        {
            return NGX_HTTP_LLM_FINISH_CONTENT_FILTER;
        }
    }

    /* STOP, and the rest; a turn with function calls ends for them */

    return c->tools_seen ? NGX_HTTP_LLM_FINISH_TOOL_CALLS
                         : NGX_HTTP_LLM_FINISH_STOP;
}


/* one GenerateContentResponse: a whole body, or one chunk of a stream */

static ngx_int_t
ngx_http_llm_gemini_response(ngx_http_llm_canon_t *c,
    ngx_http_llm_json_t *tree)
{
    int64_t                 completion, thoughts;
    ngx_str_t              *s;
    ngx_uint_t              index;
    ngx_http_llm_json_t    *cand, *part, *call, *u, *e;
    ngx_http_llm_perror_t   err;

    e = ngx_http_llm_json_get(tree, "error");

    if (ngx_http_llm_json_is(e, NGX_HTTP_LLM_JSON_OBJECT)) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));

        err.status = ngx_http_llm_json_int(e, "code") > 0
                     ? (ngx_uint_t) ngx_http_llm_json_int(e, "code") : 500;

        s = ngx_http_llm_json_str(e, "status");
        if (s) {
            err.type = *s;
        }

        s = ngx_http_llm_json_str(e, "message");
        if (s) {
            err.message = *s;
        }

        return ngx_http_llm_canon_error(c, &err);
    }

    if (ngx_http_llm_canon_start(c, ngx_http_llm_json_str(tree, "responseId"),
                                 ngx_http_llm_json_str(tree, "modelVersion"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cand = ngx_http_llm_json_get(tree, "candidates");
    cand = ngx_http_llm_json_is(cand, NGX_HTTP_LLM_JSON_ARRAY) ? cand->child
                                                                : NULL;

    part = ngx_http_llm_json_get(ngx_http_llm_json_get(cand, "content"),
                                 "parts");
    part = ngx_http_llm_json_is(part, NGX_HTTP_LLM_JSON_ARRAY) ? part->child
                                                                : NULL;

    for ( /* void */ ; part; part = part->next) {

        if (ngx_http_llm_json_is(ngx_http_llm_json_get(part, "thought"),
                                 NGX_HTTP_LLM_JSON_TRUE))
        {
            /* thought summaries: not translated */
            continue;
        }

        s = ngx_http_llm_json_str(part, "text");

        if (s) {
            if (ngx_http_llm_canon_text(c, s) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        call = ngx_http_llm_json_get(part, "functionCall");

        if (!ngx_http_llm_json_is(call, NGX_HTTP_LLM_JSON_OBJECT)) {
            continue;
        }

        /* calls come whole: the start and all the arguments at once */

        index = c->tools_seen;

        if (ngx_http_llm_canon_call(c, index,
                                    ngx_http_llm_json_str(call, "id"),
                                    ngx_http_llm_json_str(call, "name"),
                                    ngx_http_llm_json_get(call, "args"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    u = ngx_http_llm_json_get(tree, "usageMetadata");

    if (ngx_http_llm_json_is(u, NGX_HTTP_LLM_JSON_OBJECT)) {
        completion = ngx_http_llm_json_int(u, "candidatesTokenCount");
        thoughts = ngx_http_llm_json_int(u, "thoughtsTokenCount");

        /* thinking is billed as output */

        if (thoughts > 0) {
            completion = ngx_max(completion, 0) + thoughts;
        }

        if (ngx_http_llm_canon_usage(c,
                             ngx_http_llm_json_int(u, "promptTokenCount"),
                             completion,
                             ngx_http_llm_json_int(u,
                                                   "cachedContentTokenCount"),
                             -1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    s = ngx_http_llm_json_str(cand, "finishReason");

    if (s) {
        return ngx_http_llm_canon_finish(c, ngx_http_llm_gemini_finish(c, s));
    }

    /* a prompt blocked by safety filters: no candidates at all */

    if (cand == NULL
        && ngx_http_llm_json_str(ngx_http_llm_json_get(tree, "promptFeedback"),
                                 "blockReason"))
    {
        return ngx_http_llm_canon_finish(c,
                                         NGX_HTTP_LLM_FINISH_CONTENT_FILTER);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_gemini_decode_body(ngx_http_llm_canon_t *c, ngx_str_t *body)
{
    ngx_int_t             rc;
    ngx_http_llm_json_t  *tree;

    tree = ngx_http_llm_json_parse(&c->arena, body->data, body->len);
    if (tree == NULL || tree->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NGX_DECLINED;
    }

    rc = ngx_http_llm_gemini_response(c, tree);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_llm_canon_end(c);
}


static ngx_int_t
ngx_http_llm_gemini_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev)
{
    ngx_int_t             rc;
    ngx_http_llm_json_t  *tree, *u;

    if (ev->data.len == 0) {
        return NGX_OK;
    }

    tree = ngx_http_llm_json_parse(&c->arena, ev->data.data, ev->data.len);
    if (tree == NULL || tree->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NGX_DECLINED;
    }

    rc = ngx_http_llm_gemini_response(c, tree);

    if (rc != NGX_OK || !c->finished) {
        return rc;
    }

    /*
     * No event says a stream is over, and a provider may keep its
     * connection open after its last chunk: the stream ends with the
     * final usage (the answer's count in it) in the chunk with the finish
     * reason or in one after it. A finish without that count ends with
     * the response, unless it was blocked (a safety filter, or the prompt
     * refused): then there is no answer to count, and the usage that
     * comes with it is final.
     */

    u = ngx_http_llm_json_get(tree, "usageMetadata");

    if (ngx_http_llm_json_int(u, "candidatesTokenCount") >= 0
        || ngx_http_llm_json_int(u, "thoughtsTokenCount") >= 0
        || (c->finish == NGX_HTTP_LLM_FINISH_CONTENT_FILTER
            && ngx_http_llm_json_is(u, NGX_HTTP_LLM_JSON_OBJECT)))
    {
        return ngx_http_llm_canon_end(c);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_gemini_decode_error(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_llm_perror_t *err)
{
    ngx_str_t             *s;
    ngx_http_llm_json_t   *tree, *e;
    ngx_http_llm_arena_t   arena;

    ngx_http_llm_arena_init(&arena, r->pool);

    tree = ngx_http_llm_json_parse(&arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    /* a stream's error may come as an array of one */

    if (tree->type == NGX_HTTP_LLM_JSON_ARRAY && tree->child) {
        tree = tree->child;
    }

    e = ngx_http_llm_json_get(tree, "error");

    s = ngx_http_llm_json_str(e, "status");
    if (s) {
        err->type = *s;
    }

    s = ngx_http_llm_json_str(e, "message");
    if (s) {
        err->message = *s;
    }

    return NGX_OK;
}
