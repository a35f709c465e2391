
/*
 * The AWS Bedrock dialect: the Converse API (POST .../model/<id>/converse)
 * and ConverseStream (.../converse-stream, answered in AWS event stream
 * frames), each request signed with SigV4 (or, with a "key", a Bedrock
 * API key as a bearer token). Credentials come from the provider block
 * or from the environment nginx starts in.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_sigv4.h"
#include "ngx_http_llm_embeddings.h"


typedef struct {
    ngx_str_t                      region;
    ngx_str_t                      access_key;
    ngx_str_t                      secret_key;      /* secret */
    ngx_str_t                      session_token;   /* secret */
    ngx_str_t                      stem;            /* origin/base/model/ */
} ngx_http_llm_bedrock_conf_t;


static char *ngx_http_llm_bedrock_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_bedrock_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_bedrock_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_jbuf_t *b);
static ngx_int_t ngx_http_llm_bedrock_sign(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *path, u_char *body, size_t len);
static void ngx_http_llm_bedrock_cache_point(ngx_http_llm_walk_t *w);
static ngx_int_t ngx_http_llm_bedrock_decode_body(ngx_http_llm_canon_t *c,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_bedrock_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev);
static ngx_int_t ngx_http_llm_bedrock_decode_error(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_llm_perror_t *err);


static char  *ngx_http_llm_bedrock_headers[] = {
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    NULL
};


static char  *ngx_http_llm_bedrock_options[] = {
    "region",
    "access_key",
    "secret_key",
    "session_token",
    NULL
};


ngx_http_llm_dialect_t  ngx_http_llm_bedrock_dialect = {
    ngx_string("bedrock"),
    ngx_http_llm_bedrock_init_provider,
    ngx_http_llm_bedrock_create_request,
    ngx_http_llm_bedrock_headers,
    NULL,
    NULL,
    NGX_HTTP_LLM_API_BEDROCK,
    NGX_HTTP_LLM_FRAMING_EVENTSTREAM,
    ngx_http_llm_bedrock_options,
    ngx_http_llm_bedrock_decode_body,
    ngx_http_llm_bedrock_decode_event,
    ngx_http_llm_bedrock_decode_error
};


/* a credential: the option (env:, file: or literal, read already), or env */

static ngx_int_t
ngx_http_llm_bedrock_credential(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    char *option, char *env, ngx_str_t *value)
{
    char       *e;
    ngx_str_t  *v;

    v = ngx_http_llm_provider_option(p, option);

    if (v) {
        *value = *v;
        return NGX_OK;
    }

    e = getenv(env);

    if (e == NULL || *e == '\0') {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    value->len = ngx_strlen(e);
    value->data = ngx_pnalloc(cf->pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, e, value->len);

    return NGX_OK;
}


static char *
ngx_http_llm_bedrock_init_provider(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    u_char                       *s, *dot;
    ngx_str_t                    *v, host;
    ngx_uint_t                    i;
    ngx_http_llm_header_t        *h;
    ngx_http_llm_bedrock_conf_t  *bcf;

    bcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_bedrock_conf_t));
    if (bcf == NULL) {
        return NGX_CONF_ERROR;
    }

    p->dialect_conf = bcf;

    bcf->stem.len = p->origin.len + p->base_path.len + sizeof("/model/") - 1;
    bcf->stem.data = ngx_pnalloc(cf->pool, bcf->stem.len);
    if (bcf->stem.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s = ngx_cpymem(bcf->stem.data, p->origin.data, p->origin.len);
    s = ngx_cpymem(s, p->base_path.data, p->base_path.len);
    ngx_memcpy(s, "/model/", sizeof("/model/") - 1);

    /* the region: given, or in bedrock-runtime.<region>.amazonaws.com */

    v = ngx_http_llm_provider_option(p, "region");

    if (v) {
        bcf->region = *v;

    } else {
        host = p->authority;

        if (host.len > sizeof("bedrock-runtime.") - 1
            && ngx_strncmp(host.data, "bedrock-runtime.",
                           sizeof("bedrock-runtime.") - 1) == 0)
        {
            s = host.data + sizeof("bedrock-runtime.") - 1;
            dot = ngx_strlchr(s, host.data + host.len, '.');

            if (dot) {
                bcf->region.data = s;
                bcf->region.len = dot - s;
            }
        }
    }

    if (bcf->region.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_provider \"%V\" of format bedrock needs a "
                           "\"region\"", &p->name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < bcf->region.len; i++) {
        if (!((bcf->region.data[i] >= 'a' && bcf->region.data[i] <= 'z')
              || (bcf->region.data[i] >= '0' && bcf->region.data[i] <= '9')
              || bcf->region.data[i] == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid region \"%V\" in llm_provider \"%V\"",
                               &bcf->region, &p->name);
            return NGX_CONF_ERROR;
        }
    }

    h = p->headers->elts;

    for (i = 0; i < p->headers->nelts; i++) {
        if (h[i].name.len == sizeof("authorization") - 1
            && ngx_strncmp(h[i].name.data, "authorization",
                           sizeof("authorization") - 1) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" signs its requests: it "
                               "cannot have an Authorization \"header\"",
                               &p->name);
            return NGX_CONF_ERROR;
        }
    }

    if (p->key.len) {

        /* a Bedrock API key: a bearer token instead of signatures */

        if (ngx_http_llm_provider_option(p, "access_key")
            || ngx_http_llm_provider_option(p, "secret_key"))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" has both a \"key\" and "
                               "AWS credentials", &p->name);
            return NGX_CONF_ERROR;
        }

        return ngx_http_llm_provider_key_header(cf, p, "authorization",
                                                "Authorization", "Bearer ");
    }

    if (ngx_http_llm_bedrock_credential(cf, p, "access_key",
                                        "AWS_ACCESS_KEY_ID", &bcf->access_key)
        == NGX_ERROR
        || ngx_http_llm_bedrock_credential(cf, p, "secret_key",
                                           "AWS_SECRET_ACCESS_KEY",
                                           &bcf->secret_key)
           == NGX_ERROR
        || ngx_http_llm_bedrock_credential(cf, p, "session_token",
                                           "AWS_SESSION_TOKEN",
                                           &bcf->session_token)
           == NGX_ERROR)
    {
        return NGX_CONF_ERROR;
    }

    if (bcf->access_key.len == 0 || bcf->secret_key.len == 0) {
        if (p->disabled) {
            /* an optional credential that is not there */
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_provider \"%V\" of format bedrock has no AWS "
                           "credentials: set \"access_key\" and "
                           "\"secret_key\", AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or a \"key\"", &p->name);
        return NGX_CONF_ERROR;
    }

    if (bcf->secret_key.len > 256) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the secret_key of llm_provider \"%V\" is too "
                           "long", &p->name);
        return NGX_CONF_ERROR;
    }

    /* the signature's secret never travels; the session token does */

    if (ngx_http_llm_provider_secret(cf, p, &bcf->secret_key) != NGX_OK
        || ngx_http_llm_provider_secret(cf, p, &bcf->session_token) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_bedrock_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    u_char                       *p;
    size_t                        len;
    ngx_str_t                     path;
    ngx_http_llm_jbuf_t           b;
    ngx_http_llm_provider_t      *provider;
    ngx_http_llm_bedrock_conf_t  *bcf;

    provider = ctx->target->provider;
    bcf = provider->dialect_conf;

    /* .../model/<model id, encoded>/converse[-stream], or /invoke */

    len = bcf->stem.len + 3 * ctx->target_model.len
          + sizeof("/converse-stream") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->upstream_url.data = p;

    p = ngx_cpymem(p, bcf->stem.data, bcf->stem.len);
    p = ngx_http_llm_sigv4_encode(p, ctx->target_model.data,
                                  ctx->target_model.len, 0);

    if (ctx->embed) {
        p = ngx_cpymem(p, "/invoke", sizeof("/invoke") - 1);

    } else if (ctx->chat.stream) {
        p = ngx_cpymem(p, "/converse-stream", sizeof("/converse-stream") - 1);

    } else {
        p = ngx_cpymem(p, "/converse", sizeof("/converse") - 1);
    }

    ctx->upstream_url.len = p - ctx->upstream_url.data;

    path.data = ctx->upstream_url.data + provider->origin.len;
    path.len = ctx->upstream_url.len - provider->origin.len;

    ngx_http_llm_jbuf_init(&b, r->pool, ctx->body_length + 512);

    if ((ctx->embed ? ngx_http_llm_embeddings_bedrock(r, ctx, &b)
                    : ngx_http_llm_bedrock_body(r, ctx, &b))
        != NGX_OK
        || b.error)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start) != NGX_OK) {
        return NGX_ERROR;
    }

    if (bcf->access_key.len == 0) {
        /* a bearer key, among the provider's headers */
        return NGX_OK;
    }

    return ngx_http_llm_bedrock_sign(r, ctx, &path, b.start, b.last - b.start);
}


/* SigV4 headers of this attempt: date, body hash, token, signature */

static ngx_int_t
ngx_http_llm_bedrock_sign(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_str_t *path, u_char *body, size_t len)
{
    u_char                       *p, *scratch;
    ngx_tm_t                      tm;
    ngx_str_t                     value;
    ngx_http_llm_sigv4_t          s;
    ngx_http_llm_provider_t      *provider;
    ngx_http_llm_bedrock_conf_t  *bcf;

    provider = ctx->target->provider;
    bcf = provider->dialect_conf;

    ngx_memzero(&s, sizeof(ngx_http_llm_sigv4_t));

    ngx_str_set(&s.method, "POST");
    ngx_str_set(&s.service, "bedrock");
    s.host = provider->host;
    s.region = bcf->region;
    s.access_key = bcf->access_key;
    s.secret_key = bcf->secret_key;
    s.security_token = bcf->session_token;
    s.content_sha256 = 1;

    /* the path as sent, encoded once more (all services but S3) */

    s.uri.data = ngx_pnalloc(r->pool, 3 * path->len);
    if (s.uri.data == NULL) {
        return NGX_ERROR;
    }

    s.uri.len = ngx_http_llm_sigv4_encode(s.uri.data, path->data, path->len, 1)
                - s.uri.data;

    s.amz_date.data = ngx_pnalloc(r->pool, sizeof("20150830T123600Z"));
    s.payload_hash.data = ngx_pnalloc(r->pool, 64);
    if (s.amz_date.data == NULL || s.payload_hash.data == NULL) {
        return NGX_ERROR;
    }

    ngx_gmtime(ngx_time(), &tm);

    s.amz_date.len = ngx_sprintf(s.amz_date.data, "%4d%02d%02dT%02d%02d%02dZ",
                                 tm.ngx_tm_year, tm.ngx_tm_mon,
                                 tm.ngx_tm_mday, tm.ngx_tm_hour,
                                 tm.ngx_tm_min, tm.ngx_tm_sec)
                     - s.amz_date.data;

    ngx_http_llm_sigv4_hash(body, len, s.payload_hash.data);
    s.payload_hash.len = 64;

    scratch = ngx_pnalloc(r->pool, ngx_http_llm_sigv4_scratch_size(&s));
    value.data = ngx_pnalloc(r->pool, ngx_http_llm_sigv4_auth_size(&s));
    if (scratch == NULL || value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_llm_sigv4_authorization(&s, scratch, value.data);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.len = p - value.data;

    if (ngx_http_llm_add_header(ctx, "x-amz-date", &s.amz_date, 0) != NGX_OK
        || ngx_http_llm_add_header(ctx, "x-amz-content-sha256",
                                   &s.payload_hash, 0)
           != NGX_OK
        || ngx_http_llm_add_header(ctx, "authorization", &value, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (s.security_token.len
        && ngx_http_llm_add_header(ctx, "x-amz-security-token",
                                   &s.security_token, 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Anthropic's cache_control on the block just written: Converse marks
 * the end of a cached prefix with a block of its own after it
 */

static void
ngx_http_llm_bedrock_cache_point(ngx_http_llm_walk_t *w)
{
    if (w->cache) {
        ngx_http_llm_jbuf_lit(w->b, ",{\"cachePoint\":{\"type\":\"default\"}}");
    }
}


/* messages of one role are merged */

static void
ngx_http_llm_bedrock_block(ngx_http_llm_walk_t *w, ngx_uint_t turn)
{
    if (w->turn != turn) {
        if (w->turn) {
            ngx_http_llm_jbuf_lit(w->b, "]},");
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
}


/* system and developer messages: one system block each */

static void
ngx_http_llm_bedrock_system(ngx_http_llm_walk_t *w, ngx_str_t *text)
{
    if (text->len == 0) {
        return;
    }

    if (w->n++) {
        ngx_http_llm_jbuf_lit(w->b, ",{\"text\":");

    } else {
        ngx_http_llm_jbuf_lit(w->b, ",\"system\":[{\"text\":");
    }

    ngx_http_llm_jbuf_qstr(w->b, text);
    ngx_http_llm_jbuf_lit(w->b, "}");

    ngx_http_llm_bedrock_cache_point(w);
}


static void
ngx_http_llm_bedrock_text(ngx_http_llm_walk_t *w, ngx_uint_t turn,
    ngx_str_t *text)
{
    if (text->len == 0) {
        /* Bedrock refuses blank text blocks */
        return;
    }

    ngx_http_llm_bedrock_block(w, turn);

    ngx_http_llm_jbuf_lit(w->b, "{\"text\":");
    ngx_http_llm_jbuf_qstr(w->b, text);
    ngx_http_llm_jbuf_lit(w->b, "}");

    ngx_http_llm_bedrock_cache_point(w);
}


/* images: base64 bytes only; Converse takes no URLs but S3 ones */

static void
ngx_http_llm_bedrock_image(ngx_http_llm_walk_t *w, ngx_str_t *url)
{
    ngx_str_t  type, data, format;

    if (ngx_http_llm_data_url(url, &type, &data) != NGX_OK
        || type.len < 7 || ngx_strncasecmp(type.data, (u_char *) "image/", 6)
                           != 0)
    {
        ngx_log_error(NGX_LOG_WARN, w->r->connection->log, 0,
                      "llm: an image given by URL cannot be sent to Bedrock; "
                      "left out");
        return;
    }

    format.data = type.data + 6;
    format.len = type.len - 6;

    ngx_http_llm_bedrock_block(w, NGX_HTTP_LLM_TURN_USER);

    ngx_http_llm_jbuf_lit(w->b, "{\"image\":{\"format\":");
    ngx_http_llm_jbuf_qstr(w->b, &format);
    ngx_http_llm_jbuf_lit(w->b, ",\"source\":{\"bytes\":");
    ngx_http_llm_jbuf_qstr(w->b, &data);
    ngx_http_llm_jbuf_lit(w->b, "}}}");

    ngx_http_llm_bedrock_cache_point(w);
}


static void
ngx_http_llm_bedrock_tool_call(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *arguments)
{
    ngx_http_llm_bedrock_block(w, NGX_HTTP_LLM_TURN_ASSISTANT);

    ngx_http_llm_jbuf_lit(w->b, "{\"toolUse\":{\"toolUseId\":");
    ngx_http_llm_jbuf_qstr_or_empty(w->b, id);
    ngx_http_llm_jbuf_lit(w->b, ",\"name\":");
    ngx_http_llm_jbuf_qstr_or_empty(w->b, name);
    ngx_http_llm_jbuf_lit(w->b, ",\"input\":");

    ngx_http_llm_jbuf_object(w->b, arguments);

    ngx_http_llm_jbuf_lit(w->b, "}}");
}


static void
ngx_http_llm_bedrock_tool_result(ngx_http_llm_walk_t *w, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *content)
{
    ngx_http_llm_bedrock_block(w, NGX_HTTP_LLM_TURN_USER);

    ngx_http_llm_jbuf_lit(w->b, "{\"toolResult\":{\"toolUseId\":");
    ngx_http_llm_jbuf_qstr_or_empty(w->b, id);
    ngx_http_llm_jbuf_lit(w->b, ",\"content\":[{\"text\":");
    ngx_http_llm_jbuf_qstr(w->b, content);
    ngx_http_llm_jbuf_lit(w->b, "}]}}");

    ngx_http_llm_bedrock_cache_point(w);
}


static ngx_http_llm_param_names_t  ngx_http_llm_bedrock_params = {
    "maxTokens", "temperature", "topP", "stopSequences"
};


static void
ngx_http_llm_bedrock_function(ngx_http_llm_walk_t *w, ngx_uint_t n,
    ngx_str_t *name, ngx_str_t *description, ngx_http_llm_json_t *parameters)
{
    ngx_http_llm_walk_function_head(w, n, "{\"toolSpec\":{", name, description);

    ngx_http_llm_jbuf_lit(w->b, ",\"inputSchema\":{\"json\":");

    ngx_http_llm_walk_schema(w, parameters);

    ngx_http_llm_jbuf_lit(w->b, "}}}");

    ngx_http_llm_bedrock_cache_point(w);
}


static ngx_http_llm_walker_t  ngx_http_llm_bedrock_walker = {
    ngx_http_llm_bedrock_system,
    ngx_http_llm_bedrock_text,
    ngx_http_llm_bedrock_image,
    ngx_http_llm_bedrock_tool_call,
    ngx_http_llm_bedrock_tool_result,
    ngx_http_llm_bedrock_function,
    0
};


static ngx_int_t
ngx_http_llm_bedrock_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_jbuf_t *b)
{
    ngx_str_t              *s;
    ngx_http_llm_json_t    *tree, *msgs, *v;
    ngx_http_llm_jbuf_t     tmp;
    ngx_http_llm_walk_t     w;

    tree = ngx_http_llm_chat_tree(r, ctx);
    if (tree == NULL) {
        return NGX_ERROR;
    }

    msgs = ngx_http_llm_json_get(tree, "messages");

    if (!ngx_http_llm_json_is(msgs, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&tmp, r->pool, 256);

    ngx_http_llm_jbuf_lit(b, "{\"messages\":[");

    ngx_http_llm_walk_init(&w, r, b, &ngx_http_llm_bedrock_walker);
    w.auto_cache = ngx_http_llm_auto_breakpoint(ctx);

    if (ngx_http_llm_walk_turns(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (w.turn) {
        ngx_http_llm_jbuf_lit(b, "]}");
    }

    ngx_http_llm_jbuf_lit(b, "]");

    if (ngx_http_llm_walk_system(&w, msgs) != NGX_OK) {
        return NGX_ERROR;
    }

    if (w.n) {
        ngx_http_llm_jbuf_lit(b, "]");
    }

    /* inference parameters */

    ngx_http_llm_jbuf_reset(&tmp);

    ngx_http_llm_translate_params(&tmp, tree, &ngx_http_llm_bedrock_params);

    if (tmp.last > tmp.start) {
        ngx_http_llm_jbuf_lit(b, ",\"inferenceConfig\":{");
        ngx_http_llm_jbuf_raw(b, tmp.start + 1, tmp.last - tmp.start - 1);
        ngx_http_llm_jbuf_lit(b, "}");
    }

    /* tools */

    v = ngx_http_llm_json_get(tree, "tools");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY) && v->n) {
        ngx_http_llm_jbuf_lit(b, ",\"toolConfig\":{\"tools\":[");
        ngx_http_llm_walk_functions(&w, v);

        ngx_http_llm_jbuf_lit(b, "]");

        /* "none" has no counterpart: the choice is left to the model */

        v = ngx_http_llm_json_get(tree, "tool_choice");

        if (ngx_http_llm_json_eq(v, "auto")) {
            ngx_http_llm_jbuf_lit(b, ",\"toolChoice\":{\"auto\":{}}");

        } else if (ngx_http_llm_json_eq(v, "required")) {
            ngx_http_llm_jbuf_lit(b, ",\"toolChoice\":{\"any\":{}}");

        } else if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT)
                   && (s = ngx_http_llm_json_str(
                               ngx_http_llm_json_get(v, "function"), "name")))
        {
            ngx_http_llm_jbuf_lit(b, ",\"toolChoice\":{\"tool\":{\"name\":");
            ngx_http_llm_jbuf_qstr(b, s);
            ngx_http_llm_jbuf_lit(b, "}}");
        }

        ngx_http_llm_jbuf_lit(b, "}");
    }

    ngx_http_llm_jbuf_lit(b, "}");

    return tmp.error ? NGX_ERROR : NGX_OK;
}


/* decoders */

static ngx_http_llm_finish_e
ngx_http_llm_bedrock_finish(ngx_str_t *reason)
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

    if ((reason->len == 20
         && ngx_strncmp(reason->data, "guardrail_intervened", 20) == 0)
        || (reason->len == 16
            && ngx_strncmp(reason->data, "content_filtered", 16) == 0))
    {
        return NGX_HTTP_LLM_FINISH_CONTENT_FILTER;
    }

    return NGX_HTTP_LLM_FINISH_STOP;
}


static ngx_int_t
ngx_http_llm_bedrock_usage(ngx_http_llm_canon_t *c, ngx_http_llm_json_t *u)
{
    int64_t  input, read, write;

    if (!ngx_http_llm_json_is(u, NGX_HTTP_LLM_JSON_OBJECT)) {
        return NGX_OK;
    }

    /* cache reads and writes are counted apart from the input tokens */

    input = ngx_http_llm_json_int(u, "inputTokens");
    read = ngx_max(ngx_http_llm_json_int(u, "cacheReadInputTokens"), 0);
    write = ngx_max(ngx_http_llm_json_int(u, "cacheWriteInputTokens"), 0);

    return ngx_http_llm_canon_usage(c, (input >= 0) ? input + read + write
                                                    : -1,
                                    ngx_http_llm_json_int(u, "outputTokens"),
                                    read, write);
}


static ngx_int_t
ngx_http_llm_bedrock_decode_body(ngx_http_llm_canon_t *c, ngx_str_t *body)
{
    ngx_str_t            *s;
    ngx_uint_t            tools;
    ngx_http_llm_json_t  *tree, *block, *use;

    tree = ngx_http_llm_json_parse(&c->arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    block = ngx_http_llm_json_get(ngx_http_llm_json_get(
                ngx_http_llm_json_get(tree, "output"), "message"), "content");

    if (!ngx_http_llm_json_is(block, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_canon_start(c, NULL, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    tools = 0;

    for (block = block->child; block; block = block->next) {
        s = ngx_http_llm_json_str(block, "text");

        if (s) {
            if (ngx_http_llm_canon_text(c, s) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        use = ngx_http_llm_json_get(block, "toolUse");

        if (!ngx_http_llm_json_is(use, NGX_HTTP_LLM_JSON_OBJECT)) {
            /* reasoning content: not translated */
            continue;
        }

        if (ngx_http_llm_canon_call(c, tools,
                                    ngx_http_llm_json_str(use, "toolUseId"),
                                    ngx_http_llm_json_str(use, "name"),
                                    ngx_http_llm_json_get(use, "input"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        tools++;
    }

    if (ngx_http_llm_canon_finish(c, ngx_http_llm_bedrock_finish(
                                    ngx_http_llm_json_str(tree, "stopReason")))
        != NGX_OK
        || ngx_http_llm_bedrock_usage(c, ngx_http_llm_json_get(tree, "usage"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llm_canon_end(c);
}


static ngx_uint_t
ngx_http_llm_bedrock_exception_status(ngx_str_t *type)
{
    static struct {
        const char  *type;
        ngx_uint_t   status;
    } map[] = {
        { "validationException", 400 },
        { "accessDeniedException", 403 },
        { "resourceNotFoundException", 404 },
        { "modelTimeoutException", 408 },
        { "throttlingException", 429 },
        { "serviceUnavailableException", 503 },
        { NULL, 0 }
    };

    ngx_uint_t  i;

    for (i = 0; map[i].type; i++) {
        if (type->len == ngx_strlen(map[i].type)
            && ngx_strncasecmp(type->data, (u_char *) map[i].type, type->len)
               == 0)
        {
            return map[i].status;
        }
    }

    /* internalServerException, modelStreamErrorException, ... */
    return 500;
}


static ngx_int_t
ngx_http_llm_bedrock_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev)
{
    int64_t                 index;
    ngx_int_t               rc;
    ngx_str_t              *s, *type;
    ngx_uint_t              tool;
    ngx_http_llm_json_t    *tree, *v, *use;
    ngx_http_llm_perror_t   err;

    tree = ngx_http_llm_json_parse(&c->arena, ev->data.data, ev->data.len);

    if (ev->exception) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));

        err.type = ev->event;
        err.status = ngx_http_llm_bedrock_exception_status(&ev->event);

        s = ngx_http_llm_json_str(tree, "message");
        if (s == NULL) {
            s = ngx_http_llm_json_str(tree, "Message");
        }

        if (s) {
            err.message = *s;

        } else if (tree == NULL) {
            err.message = ev->data;
        }

        return ngx_http_llm_canon_error(c, &err);
    }

    if (tree == NULL || tree->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NGX_DECLINED;
    }

    type = &ev->event;

#define ngx_http_llm_is_event(t)                                             \
    (type->len == sizeof(t) - 1 && ngx_strncmp(type->data, t, type->len) == 0)

    if (ngx_http_llm_is_event("contentBlockDelta")) {
        index = ngx_http_llm_json_int(tree, "contentBlockIndex");
        v = ngx_http_llm_json_get(tree, "delta");

        s = ngx_http_llm_json_str(v, "text");

        if (s) {
            return ngx_http_llm_canon_text(c, s);
        }

        s = ngx_http_llm_json_str(ngx_http_llm_json_get(v, "toolUse"),
                                  "input");

        if (s == NULL || index < 0
            || ngx_http_llm_canon_block_tool(c, index, &tool) != NGX_OK)
        {
            /* reasoning content: not translated */
            return NGX_OK;
        }

        return ngx_http_llm_canon_args(c, tool, s->data, s->len);
    }

    if (ngx_http_llm_is_event("contentBlockStart")) {
        index = ngx_http_llm_json_int(tree, "contentBlockIndex");
        use = ngx_http_llm_json_get(ngx_http_llm_json_get(tree, "start"),
                                    "toolUse");

        if (!ngx_http_llm_json_is(use, NGX_HTTP_LLM_JSON_OBJECT) || index < 0)
        {
            return NGX_OK;
        }

        tool = c->tools_seen;

        rc = ngx_http_llm_canon_set_block_tool(c, index, tool);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_llm_canon_tool(c, tool,
                                       ngx_http_llm_json_str(use, "toolUseId"),
                                       ngx_http_llm_json_str(use, "name"));
    }

    if (ngx_http_llm_is_event("messageStart")) {
        return ngx_http_llm_canon_start(c, NULL, NULL);
    }

    if (ngx_http_llm_is_event("messageStop")) {
        return ngx_http_llm_canon_finish(c, ngx_http_llm_bedrock_finish(
                                    ngx_http_llm_json_str(tree, "stopReason")));
    }

    if (ngx_http_llm_is_event("metadata")) {
        if (ngx_http_llm_bedrock_usage(c, ngx_http_llm_json_get(tree, "usage"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the last event of a stream */
        return ngx_http_llm_canon_end(c);
    }

#undef ngx_http_llm_is_event

    /* contentBlockStop */
    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_bedrock_decode_error(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_llm_perror_t *err)
{
    u_char                *colon;
    ngx_str_t             *s;
    ngx_table_elt_t       *h;
    ngx_http_llm_json_t   *tree;
    ngx_http_llm_arena_t   arena;

    /* the type is in a header: "ValidationException:http://..." */

    h = ngx_http_llm_find_header(&r->headers_out.headers, "x-amzn-errortype");

    if (h) {
        err->type = h->value;

        colon = ngx_strlchr(err->type.data, err->type.data + err->type.len,
                            ':');
        if (colon) {
            err->type.len = colon - err->type.data;
        }
    }

    ngx_http_llm_arena_init(&arena, r->pool);

    tree = ngx_http_llm_json_parse(&arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    s = ngx_http_llm_json_str(tree, "message");
    if (s == NULL) {
        s = ngx_http_llm_json_str(tree, "Message");
    }

    if (s) {
        err->message = *s;
    }

    return NGX_OK;
}
