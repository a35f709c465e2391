
/*
 * POST /v1/embeddings. The body is parsed as chat bodies are (model,
 * "cache", the cache key's digest) into a tree, whose input is checked
 * here. OpenAI-format targets get the body as it came with their model
 * spliced in (ngx_http_llm_openai.c); Gemini's batchEmbedContents and
 * Bedrock's embedding models get a body built here, and their answers
 * are written in OpenAI's format, with base64 vectors made here when the
 * client asked for them.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_embeddings.h"


static ngx_int_t ngx_http_llm_embeddings_item(ngx_http_llm_embed_t *e,
    ngx_http_llm_json_t *v, ngx_uint_t i, ngx_http_llm_problem_t *problem);
static ngx_uint_t ngx_http_llm_embeddings_token(ngx_http_llm_json_t *v);
static ngx_int_t ngx_http_llm_embeddings_vector(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *values, ngx_uint_t base64);
static void ngx_http_llm_embeddings_text(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_embed_t *e, ngx_uint_t i);
static ngx_uint_t ngx_http_llm_embeddings_cohere(ngx_str_t *model);


ngx_int_t
ngx_http_llm_embeddings_parse(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_problem_t *problem)
{
    int64_t                n;
    ngx_uint_t             i;
    ngx_http_llm_json_t   *v;
    ngx_http_llm_embed_t  *e;

    if (ctx->tree == NULL || ctx->tree->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NGX_ERROR;
    }

    e = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_embed_t));
    if (e == NULL) {
        return NGX_ERROR;
    }

    ctx->embed = e;
    e->dimensions = -1;

    v = ngx_http_llm_json_get(ctx->tree, "input");

    if (v == NULL) {
        return ngx_http_llm_problem(problem, "input",
                                    "missing_required_parameter",
                                    "Missing required parameter: 'input'.");
    }

    e->input = v;

    if (v->type == NGX_HTTP_LLM_JSON_STRING) {
        if (ngx_http_llm_embeddings_item(e, v, 0, problem) != NGX_OK) {
            return NGX_DECLINED;
        }

    } else if (v->type == NGX_HTTP_LLM_JSON_ARRAY) {
        e->array = 1;

        if (v->n == 0) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "'input' must not be an empty "
                                        "array.");
        }

        if (v->child->type == NGX_HTTP_LLM_JSON_NUMBER) {
            /* one input as token ids */
            e->kind = NGX_HTTP_LLM_EMBED_TOKENS;

            if (ngx_http_llm_embeddings_item(e, v, 0, problem) != NGX_OK) {
                return NGX_DECLINED;
            }

        } else {
            if (v->n > NGX_HTTP_LLM_EMBED_MAX_INPUTS) {
                return ngx_http_llm_problem(problem, "input", NULL,
                                            "'input' may hold at most %d "
                                            "items, not %ui.",
                                            NGX_HTTP_LLM_EMBED_MAX_INPUTS,
                                            v->n);
            }

            if (v->child->type == NGX_HTTP_LLM_JSON_ARRAY) {
                e->kind = NGX_HTTP_LLM_EMBED_TOKENS;
            }

            for (i = 0, v = v->child; v; v = v->next, i++) {
                if (ngx_http_llm_embeddings_item(e, v, i, problem)
                    != NGX_OK)
                {
                    return NGX_DECLINED;
                }
            }
        }

    } else {
        return ngx_http_llm_problem(problem, "input", NULL,
                                    "Invalid type for 'input': expected a "
                                    "string, an array of strings, or token "
                                    "ids.");
    }

    if (e->bytes > NGX_HTTP_LLM_EMBED_MAX_BYTES) {
        (void) ngx_http_llm_problem(problem, "input", "request_too_large",
                                    "'input' holds %uz bytes; this "
                                    "gateway takes at most %d.", e->bytes,
                                    NGX_HTTP_LLM_EMBED_MAX_BYTES);
        problem->status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        return NGX_DECLINED;
    }

    v = ngx_http_llm_json_get(ctx->tree, "encoding_format");

    if (v && v->type != NGX_HTTP_LLM_JSON_NULL) {
        if (ngx_http_llm_json_eq(v, "base64")) {
            e->base64 = 1;

        } else if (!ngx_http_llm_json_eq(v, "float")) {
            return ngx_http_llm_problem(problem, "encoding_format", NULL,
                                        "Invalid value for "
                                        "'encoding_format': expected "
                                        "'float' or 'base64'.");
        }
    }

    v = ngx_http_llm_json_get(ctx->tree, "dimensions");

    if (v && v->type != NGX_HTTP_LLM_JSON_NULL) {
        n = ngx_http_llm_json_int(ctx->tree, "dimensions");

        if (n < 1 || n > NGX_HTTP_LLM_EMBED_MAX_DIMENSIONS) {
            return ngx_http_llm_problem(problem, "dimensions", NULL,
                                        "Invalid value for 'dimensions': "
                                        "expected an integer from 1 to %d.",
                                        NGX_HTTP_LLM_EMBED_MAX_DIMENSIONS);
        }

        e->dimensions = n;
    }

    /* the estimate limits reserve: the input, and nothing to generate */

    ctx->chat.message_bytes = e->bytes;
    ctx->chat.messages = 0;
    ctx->chat.max_tokens = 0;

    return NGX_OK;
}


/* one input: a string, a token id, or an array of token ids */

static ngx_int_t
ngx_http_llm_embeddings_item(ngx_http_llm_embed_t *e, ngx_http_llm_json_t *v,
    ngx_uint_t i, ngx_http_llm_problem_t *problem)
{
    ngx_http_llm_json_t  *t;

    if (e->kind == NGX_HTTP_LLM_EMBED_TEXT) {
        if (v->type != NGX_HTTP_LLM_JSON_STRING) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "Invalid type for 'input[%ui]': "
                                        "expected a string, as the first "
                                        "item is.", i);
        }

        if (v->str.len == 0) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "'input' must not hold an empty "
                                        "string.");
        }

        e->count++;
        e->bytes += v->str.len;

        return NGX_OK;
    }

    if (v->type != NGX_HTTP_LLM_JSON_ARRAY || v->n == 0) {
        return ngx_http_llm_problem(problem, "input", NULL,
                                    "Invalid type for 'input[%ui]': "
                                    "expected a non-empty array of token "
                                    "ids, as the first item is.", i);
    }

    for (t = v->child; t; t = t->next) {
        if (!ngx_http_llm_embeddings_token(t)) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "Invalid token id in 'input': "
                                        "expected integers from 0.");
        }
    }

    e->count++;

    /* four bytes a token, as estimates count text */
    e->bytes += 4 * v->n;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_llm_embeddings_token(ngx_http_llm_json_t *v)
{
    size_t  i;

    if (v->type != NGX_HTTP_LLM_JSON_NUMBER || v->str.len == 0
        || v->str.len > 10)
    {
        return 0;
    }

    for (i = 0; i < v->str.len; i++) {
        if (v->str.data[i] < '0' || v->str.data[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/*
 * Every target the route may choose must be able to serve the request,
 * whichever is chosen: a target that cannot is a 400 for the whole route.
 */

ngx_int_t
ngx_http_llm_embeddings_check_route(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_problem_t *problem)
{
    ngx_str_t               model;
    ngx_uint_t              i;
    ngx_http_llm_embed_t   *e;
    ngx_http_llm_target_t  *t;
    ngx_http_llm_dialect_t *d;

    e = ctx->embed;
    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        d = t[i].provider->dialect;

        if (d->api == NGX_HTTP_LLM_API_OPENAI) {
            continue;
        }

        if (d != &ngx_http_llm_gemini_dialect
            && d != &ngx_http_llm_bedrock_dialect)
        {
            return ngx_http_llm_problem(problem, "model", "unsupported_model",
                                        "The model `%V` cannot make "
                                        "embeddings: provider `%V` (%V) "
                                        "serves none.", &ctx->chat.model,
                                        &t[i].provider->name, &d->name);
        }

        if (e->kind == NGX_HTTP_LLM_EMBED_TOKENS) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "Token ids in 'input' can be sent "
                                        "to OpenAI-format providers only; "
                                        "model `%V` may use provider `%V` "
                                        "(%V): send text.", &ctx->chat.model,
                                        &t[i].provider->name, &d->name);
        }

        if (d != &ngx_http_llm_bedrock_dialect) {
            continue;
        }

        if (ngx_http_llm_target_model(r->pool, &t[i], &ctx->chat.model,
                                      &ctx->glob_capture, &model)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_llm_embeddings_cohere(&model)) {
            if (e->dimensions > 0) {
                return ngx_http_llm_problem(problem, "dimensions", NULL,
                                            "Bedrock's Cohere model `%V` "
                                            "makes vectors of one size: "
                                            "'dimensions' cannot be "
                                            "sent to it.", &model);
            }

            if (e->count > 96) {
                return ngx_http_llm_problem(problem, "input", NULL,
                                            "'input' may hold at most 96 "
                                            "texts for Bedrock's Cohere "
                                            "models (`%V`).", &model);
            }

            continue;
        }

        if (!ngx_http_llm_embeddings_bedrock_known(&model)) {
            return ngx_http_llm_problem(problem, "model", "unsupported_model",
                                        "The Bedrock model `%V` is not an "
                                        "embedding model this gateway "
                                        "knows (amazon.titan-embed-*, "
                                        "cohere.embed-*).", &model);
        }

        if (e->array && e->count > 1) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "Bedrock's Titan embedding model "
                                        "`%V` takes one text a request: "
                                        "send 'input' as one string.",
                                        &model);
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_embeddings_url(ngx_pool_t *pool, ngx_http_llm_provider_t *p,
    ngx_str_t *url)
{
    u_char  *s;

    url->len = p->origin.len + p->base_path.len + sizeof("/embeddings") - 1;

    url->data = ngx_pnalloc(pool, url->len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    s = ngx_cpymem(url->data, p->origin.data, p->origin.len);
    s = ngx_cpymem(s, p->base_path.data, p->base_path.len);
    ngx_memcpy(s, "/embeddings", sizeof("/embeddings") - 1);

    return NGX_OK;
}


/*
 * Gemini: <url>/models/<model>:batchEmbedContents with
 * {"requests":[{"model":"models/<model>","content":{"parts":[{"text":..}]},
 * "outputDimensionality":N}, ...]}, one request per input.
 */

ngx_int_t
ngx_http_llm_embeddings_gemini(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    u_char                   *p;
    size_t                    len;
    ngx_str_t                 name;
    ngx_uint_t                i;
    ngx_http_llm_jbuf_t       b;
    ngx_http_llm_embed_t     *e;
    ngx_http_llm_provider_t  *provider;

    e = ctx->embed;
    provider = ctx->target->provider;

    /* "models/x" or "x": the name is a path segment of the URL */

    name = ctx->target_model;

    if (name.len > 7 && ngx_strncmp(name.data, "models/", 7) == 0) {
        name.data += 7;
        name.len -= 7;
    }

    if (ngx_http_llm_model_segment(&name) != NGX_OK) {
        return NGX_DECLINED;
    }

    len = provider->chat_url.len + sizeof("/models/") - 1 + name.len
          + sizeof(":batchEmbedContents") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->upstream_url.data = p;

    p = ngx_cpymem(p, provider->chat_url.data, provider->chat_url.len);
    p = ngx_cpymem(p, "/models/", sizeof("/models/") - 1);
    p = ngx_cpymem(p, name.data, name.len);
    p = ngx_cpymem(p, ":batchEmbedContents",
                   sizeof(":batchEmbedContents") - 1);

    ctx->upstream_url.len = p - ctx->upstream_url.data;

    ngx_http_llm_jbuf_init(&b, r->pool, e->bytes + 128 * e->count + 64);

    ngx_http_llm_jbuf_lit(&b, "{\"requests\":[");

    for (i = 0; i < e->count; i++) {
        if (i) {
            ngx_http_llm_jbuf_lit(&b, ",");
        }

        ngx_http_llm_jbuf_lit(&b, "{\"model\":\"models/");
        ngx_http_llm_jbuf_raw(&b, name.data, name.len);
        ngx_http_llm_jbuf_lit(&b, "\",\"content\":{\"parts\":[{\"text\":");
        ngx_http_llm_embeddings_text(&b, e, i);
        ngx_http_llm_jbuf_lit(&b, "}]}");

        if (e->dimensions > 0) {
            ngx_http_llm_jbuf_lit(&b, ",\"outputDimensionality\":");
            ngx_http_llm_jbuf_int(&b, e->dimensions);
        }

        ngx_http_llm_jbuf_lit(&b, "}");
    }

    ngx_http_llm_jbuf_lit(&b, "]}");

    if (b.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start);
}


/*
 * Bedrock's InvokeModel: Titan Text Embeddings takes one text,
 * {"inputText":..., "dimensions":N}; Cohere Embed takes texts,
 * {"texts":[...],"input_type":"search_document"}. What each can take was
 * checked with the route (ngx_http_llm_embeddings_check_route).
 */

ngx_int_t
ngx_http_llm_embeddings_bedrock(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_jbuf_t *b)
{
    ngx_uint_t             i;
    ngx_http_llm_embed_t  *e;

    e = ctx->embed;

    if (ngx_http_llm_embeddings_cohere(&ctx->target_model)) {
        ngx_http_llm_jbuf_lit(b, "{\"texts\":[");

        for (i = 0; i < e->count; i++) {
            if (i) {
                ngx_http_llm_jbuf_lit(b, ",");
            }

            ngx_http_llm_embeddings_text(b, e, i);
        }

        ngx_http_llm_jbuf_lit(b, "],\"input_type\":\"search_document\"}");

        return NGX_OK;
    }

    if (e->count != 1) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_lit(b, "{\"inputText\":");
    ngx_http_llm_embeddings_text(b, e, 0);

    if (e->dimensions > 0) {
        ngx_http_llm_jbuf_lit(b, ",\"dimensions\":");
        ngx_http_llm_jbuf_int(b, e->dimensions);
    }

    ngx_http_llm_jbuf_lit(b, "}");

    return NGX_OK;
}


/* a Bedrock model this gateway makes embeddings with (GET /v1/models too) */

ngx_uint_t
ngx_http_llm_embeddings_bedrock_known(ngx_str_t *model)
{
    return ngx_http_llm_embeddings_cohere(model)
           || ngx_strlcasestrn(model->data, model->data + model->len,
                               (u_char *) "titan-embed", 11 - 1)
              != NULL;
}


static ngx_uint_t
ngx_http_llm_embeddings_cohere(ngx_str_t *model)
{
    return ngx_strlcasestrn(model->data, model->data + model->len,
                            (u_char *) "cohere.embed", 12 - 1)
           != NULL;
}


/* the i-th text of the input, as a JSON string */

static void
ngx_http_llm_embeddings_text(ngx_http_llm_jbuf_t *b, ngx_http_llm_embed_t *e,
    ngx_uint_t i)
{
    ngx_http_llm_json_t  *v;

    v = e->input;

    if (e->array) {
        for (v = v->child; i && v; i--, v = v->next) { /* void */ }
    }

    if (v) {
        ngx_http_llm_jbuf_qstr(b, &v->str);
    }
}


/*
 * A translated answer, whole: Gemini's {"embeddings":[{"values":[...]}]}
 * or Bedrock's ({"embedding":[...],"inputTextTokenCount":N} of Titan,
 * {"embeddings":[[...],...]} of Cohere) as OpenAI's list.
 */

ngx_int_t
ngx_http_llm_embeddings_response(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *body, ngx_str_t *out)
{
    int64_t                n;
    ngx_uint_t             i, count;
    ngx_http_llm_jbuf_t    b;
    ngx_http_llm_json_t   *root, *list, *v, *values;
    ngx_http_llm_arena_t   arena;
    ngx_http_llm_embed_t  *e;

    e = ctx->embed;

    ngx_http_llm_arena_init(&arena, r->pool);

    root = ngx_http_llm_json_parse(&arena, body->data, body->len);

    if (!ngx_http_llm_json_is(root, NGX_HTTP_LLM_JSON_OBJECT)) {
        return NGX_DECLINED;
    }

    list = ngx_http_llm_json_get(root, "embeddings");
    values = ngx_http_llm_json_get(root, "embedding");

    if (ngx_http_llm_json_is(list, NGX_HTTP_LLM_JSON_ARRAY)) {
        count = list->n;
        list = list->child;

    } else if (ngx_http_llm_json_is(values, NGX_HTTP_LLM_JSON_ARRAY)) {
        count = 1;
        list = values;

    } else {
        return NGX_DECLINED;
    }

    if (count != e->count) {
        return NGX_DECLINED;
    }

    ngx_http_llm_jbuf_init(&b, r->pool, body->len + 256);

    ngx_http_llm_jbuf_lit(&b, "{\"object\":\"list\",\"data\":[");

    for (i = 0, v = list; i < count && v; i++, v = v->next) {

        /* Gemini's {"values":[...]}, or a vector itself */

        values = (v->type == NGX_HTTP_LLM_JSON_OBJECT)
                 ? ngx_http_llm_json_get(v, "values") : v;

        if (!ngx_http_llm_json_is(values, NGX_HTTP_LLM_JSON_ARRAY)) {
            return NGX_DECLINED;
        }

        if (i) {
            ngx_http_llm_jbuf_lit(&b, ",");
        }

        ngx_http_llm_jbuf_lit(&b, "{\"object\":\"embedding\",\"index\":");
        ngx_http_llm_jbuf_int(&b, i);
        ngx_http_llm_jbuf_lit(&b, ",\"embedding\":");

        if (ngx_http_llm_embeddings_vector(&b, values, e->base64) != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_http_llm_jbuf_lit(&b, "}");
    }

    /*
     * Usage: Titan's count of input tokens; Gemini and Cohere report none,
     * and the input is estimated at four bytes a token, as accounting
     * does for any answer without usage
     */

    n = ngx_http_llm_json_int(root, "inputTextTokenCount");

    if (n >= 0) {
        ctx->usage.prompt = n;
        ctx->usage.completion = 0;
        ctx->usage.cached = 0;
        ctx->usage.reported = 1;

    } else {
        n = (e->bytes + 3) / 4;
    }

    ngx_http_llm_jbuf_lit(&b, "],\"model\":");
    ngx_http_llm_jbuf_qstr(&b, &ctx->chat.model);
    ngx_http_llm_jbuf_lit(&b, ",\"usage\":{\"prompt_tokens\":");
    ngx_http_llm_jbuf_int(&b, n);
    ngx_http_llm_jbuf_lit(&b, ",\"total_tokens\":");
    ngx_http_llm_jbuf_int(&b, n);
    ngx_http_llm_jbuf_lit(&b, "}}");

    if (b.error) {
        return NGX_ERROR;
    }

    out->data = b.start;
    out->len = b.last - b.start;

    ctx->resp->done = 1;

    return NGX_OK;
}


/*
 * A vector: its numbers as the provider wrote them, or, for base64, as
 * OpenAI sends them: little-endian float32 values, base64-encoded.
 */

static ngx_int_t
ngx_http_llm_embeddings_vector(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *values, ngx_uint_t base64)
{
    float                 f;
    u_char               *raw, *q, num[64];
    double                d;
    ngx_str_t             src, dst;
    ngx_http_llm_json_t  *x;

    if (!base64) {
        ngx_http_llm_jbuf_lit(b, "[");

        for (x = values->child; x; x = x->next) {
            if (x->type != NGX_HTTP_LLM_JSON_NUMBER) {
                return NGX_DECLINED;
            }

            if (x != values->child) {
                ngx_http_llm_jbuf_lit(b, ",");
            }

            ngx_http_llm_jbuf_raw(b, x->str.data, x->str.len);
        }

        ngx_http_llm_jbuf_lit(b, "]");

        return NGX_OK;
    }

    raw = ngx_pnalloc(b->pool, 4 * values->n + 1);
    if (raw == NULL) {
        return NGX_ERROR;
    }

    q = raw;

    for (x = values->child; x; x = x->next) {
        if (x->type != NGX_HTTP_LLM_JSON_NUMBER
            || x->str.len >= sizeof(num))
        {
            return NGX_DECLINED;
        }

        /* strtod() wants a terminated string; nginx runs in the C locale */

        ngx_memcpy(num, x->str.data, x->str.len);
        num[x->str.len] = '\0';

        d = strtod((char *) num, NULL);
        f = (float) d;

        ngx_memcpy(q, &f, 4);

#if (NGX_HAVE_BIG_ENDIAN)
        {
        u_char  t;

        t = q[0]; q[0] = q[3]; q[3] = t;
        t = q[1]; q[1] = q[2]; q[2] = t;
        }
#endif

        q += 4;
    }

    src.data = raw;
    src.len = q - raw;

    dst.data = ngx_http_llm_jbuf_reserve(b, ngx_base64_encoded_length(src.len)
                                            + 2);
    if (dst.data == NULL) {
        return NGX_ERROR;
    }

    dst.data[0] = '"';
    dst.data++;

    ngx_encode_base64(&dst, &src);

    dst.data[dst.len] = '"';

    b->last += dst.len + 2;

    return NGX_OK;
}
