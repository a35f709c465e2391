
/*
 * Variables: what proxy_pass consumes for each attempt ($llm_upstream,
 * $llm_upstream_host) and what logs may show ($llm_model, $llm_provider,
 * ...). All change between attempts, so none is cached.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/rand.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_accounting.h"
#include "ngx_http_llm_variables.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_upstream.h"


#define NGX_HTTP_LLM_HEADER_PREFIX  "llm_header_"


typedef enum {
    NGX_HTTP_LLM_VAR_UPSTREAM = 0,
    NGX_HTTP_LLM_VAR_UPSTREAM_HOST,
    NGX_HTTP_LLM_VAR_MODEL,
    NGX_HTTP_LLM_VAR_ROUTE,
    NGX_HTTP_LLM_VAR_PROVIDER,
    NGX_HTTP_LLM_VAR_TARGET_MODEL,
    NGX_HTTP_LLM_VAR_ATTEMPTS,
    NGX_HTTP_LLM_VAR_STREAM,
    NGX_HTTP_LLM_VAR_TTFB,
    NGX_HTTP_LLM_VAR_UPSTREAM_LATENCY,
    NGX_HTTP_LLM_VAR_OVERHEAD,
    NGX_HTTP_LLM_VAR_KEY,
    NGX_HTTP_LLM_VAR_TEAM,
    NGX_HTTP_LLM_VAR_PROMPT_TOKENS,
    NGX_HTTP_LLM_VAR_COMPLETION_TOKENS,
    NGX_HTTP_LLM_VAR_CACHED_TOKENS,
    NGX_HTTP_LLM_VAR_CACHE_WRITE_TOKENS,
    NGX_HTTP_LLM_VAR_COST
} ngx_http_llm_var_e;


static ngx_int_t ngx_http_llm_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_llm_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_llm_header_t *ngx_http_llm_sent_header(ngx_str_t *name,
    ngx_http_llm_header_t *h, ngx_uint_t n);
static ngx_int_t ngx_http_llm_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_llm_seconds(ngx_pool_t *pool, ngx_msec_t ms,
    ngx_str_t *value);


static ngx_http_variable_t  ngx_http_llm_vars[] = {

    { ngx_string("llm_upstream"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_UPSTREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_upstream_host"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_UPSTREAM_HOST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_model"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_route"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_ROUTE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_provider"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_PROVIDER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_target_model"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_TARGET_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_attempts"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_ATTEMPTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_stream"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_STREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_ttfb"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_TTFB, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_upstream_latency"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_UPSTREAM_LATENCY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_overhead"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_OVERHEAD, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_key"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_KEY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_team"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_TEAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_prompt_tokens"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_completion_tokens"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_COMPLETION_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cached_tokens"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_CACHED_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cache_write_tokens"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_CACHE_WRITE_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cost"), NULL, ngx_http_llm_variable,
      NGX_HTTP_LLM_VAR_COST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_request_id"), NULL, ngx_http_llm_request_id_variable,
      0, 0, 0 },

    { ngx_string("llm_guard"), NULL, ngx_http_llm_guard_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string(NGX_HTTP_LLM_HEADER_PREFIX), NULL,
      ngx_http_llm_header_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


/*
 * $llm_request_id: 32 hex digits like $request_id, unique without a call
 * for random bytes per request: 64 random bits drawn once per worker
 * process, then the worker's count of ids given.
 */

static ngx_int_t
ngx_http_llm_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char            *id;
    static ngx_pid_t   pid;
    static uint64_t    prefix, count;

    if (pid != ngx_pid) {
        /* a new worker: its own prefix (and not its parent's) */

        if (RAND_bytes((u_char *) &prefix, sizeof(prefix)) != 1) {
            return NGX_ERROR;
        }

        pid = ngx_pid;
        count = 0;
    }

    id = ngx_pnalloc(r->pool, 32);
    if (id == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(id, "%016uxL%016uxL", prefix, ++count);

    v->len = 32;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = id;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_llm_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_llm_variable_read(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len == name->len
            && ngx_strncmp(v[i].name.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_llm_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char              *p;
    ngx_str_t            value;
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&value);

    switch (data) {

    case NGX_HTTP_LLM_VAR_UPSTREAM:
        value = ctx->upstream_url;
        ngx_http_llm_attach_writer(r, ctx);
        break;

    case NGX_HTTP_LLM_VAR_UPSTREAM_HOST:
        if (ctx->target) {
            value = ctx->target->provider->host;
            ngx_http_llm_upstream_resolve(r, ctx);
        }
        break;

    case NGX_HTTP_LLM_VAR_MODEL:
        value = ctx->chat.model;
        break;

    case NGX_HTTP_LLM_VAR_ROUTE:
        if (ctx->route) {
            value = ctx->route->name;
        }
        break;

    case NGX_HTTP_LLM_VAR_PROVIDER:
        if (ctx->target) {
            value = ctx->target->provider->name;
        }
        break;

    case NGX_HTTP_LLM_VAR_TARGET_MODEL:
        value = ctx->target_model;
        break;

    case NGX_HTTP_LLM_VAR_ATTEMPTS:
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", ctx->attempts) - p;
        break;

    case NGX_HTTP_LLM_VAR_STREAM:
        if (ngx_http_llm_completion(ctx) && ctx->prepared) {
            value.len = 1;
            value.data = (u_char *) (ctx->chat.stream ? "1" : "0");
        }
        break;

    case NGX_HTTP_LLM_VAR_TTFB:
        if (ctx->attempts && ctx->ttfb != (ngx_msec_t) -1
            && ngx_http_llm_seconds(r->pool, ctx->ttfb, &value) != NGX_OK)
        {
            return NGX_ERROR;
        }
        break;

    case NGX_HTTP_LLM_VAR_UPSTREAM_LATENCY:
        if (ctx->attempts && r->upstream && r->upstream->state
            && r->upstream->state->response_time != (ngx_msec_t) -1
            && ngx_http_llm_seconds(r->pool,
                                    r->upstream->state->response_time,
                                    &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
        break;

    case NGX_HTTP_LLM_VAR_OVERHEAD:
        if (ngx_http_llm_completion(ctx)) {
            p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 4);
            if (p == NULL) {
                return NGX_ERROR;
            }

            value.data = p;
            /* seconds, with microseconds */
            value.len = ngx_sprintf(p, "%uL.%06uL", ctx->overhead / 1000000,
                                    ctx->overhead % 1000000)
                        - p;
        }
        break;

    case NGX_HTTP_LLM_VAR_KEY:
        if (ctx->key) {
            value = ctx->key->name;
        }
        break;

    case NGX_HTTP_LLM_VAR_TEAM:
        if (ctx->key && ctx->key->parent) {
            value = ctx->key->parent->name;
        }
        break;

    case NGX_HTTP_LLM_VAR_PROMPT_TOKENS:
    case NGX_HTTP_LLM_VAR_COMPLETION_TOKENS:
    case NGX_HTTP_LLM_VAR_CACHED_TOKENS:
    case NGX_HTTP_LLM_VAR_CACHE_WRITE_TOKENS:
    case NGX_HTTP_LLM_VAR_COST:
        if (!ngx_http_llm_completion(ctx) || !ctx->prepared) {
            break;
        }

        /* once the answer is complete: its usage is known then */

        if (ctx->resp == NULL || ctx->resp->ended) {
            ngx_http_llm_account(r, ctx);
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;

        if (data == NGX_HTTP_LLM_VAR_COST) {
            /* USD, with the nano-dollars the module counts */
            value.len = ngx_sprintf(p, "%L.%09L",
                                    ctx->cost / NGX_HTTP_LLM_NANO,
                                    ctx->cost % NGX_HTTP_LLM_NANO)
                        - p;
            break;
        }

        value.len = ngx_sprintf(p, "%L",
                                (data == NGX_HTTP_LLM_VAR_PROMPT_TOKENS)
                                ? ctx->usage.prompt
                                : (data == NGX_HTTP_LLM_VAR_CACHED_TOKENS)
                                  ? ctx->usage.cached
                                  : (data
                                     == NGX_HTTP_LLM_VAR_CACHE_WRITE_TOKENS)
                                    ? ctx->usage.cache_write
                                    : ctx->usage.completion)
                    - p;
        break;
    }

    return ngx_http_llm_variable_set(v, &value);
}


/* milliseconds written as seconds, like $upstream_response_time */

static ngx_int_t
ngx_http_llm_seconds(ngx_pool_t *pool, ngx_msec_t ms, ngx_str_t *value)
{
    value->data = ngx_pnalloc(pool, NGX_INT_T_LEN + 4);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_sprintf(value->data, "%ui.%03ui", ms / 1000, ms % 1000)
                 - value->data;

    return NGX_OK;
}


/*
 * $llm_header_<name>: the value the current attempt sends in header
 * <name> ('_' matches '-'), for logs: its provider's own, then those its
 * dialect added. The module writes the headers into the request itself
 * (ngx_http_llm_attach_writer): while proxy builds the request, the
 * variable is empty, so that a copy of an older llm_proxy_params, which
 * read it in proxy_set_header lines, still sends each header once. A
 * secret header (a key) is never given out. Only log formats read it:
 * the names are compared per request, a few short ones.
 */

static ngx_int_t
ngx_http_llm_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    ngx_str_t                 suffix;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_header_t    *h;
    ngx_http_llm_provider_t  *p;

    v->not_found = 1;

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx == NULL || !ctx->attempt_ready) {
        return NGX_OK;
    }

    /* proxy builds the request after the cache lookup, before it connects
       (which gives the upstream a state); a cache hit builds none */

    if (r->upstream && r->upstream->state == NULL && !r->cached) {
        return NGX_OK;
    }

    suffix.len = name->len - (sizeof(NGX_HTTP_LLM_HEADER_PREFIX) - 1);
    suffix.data = name->data + name->len - suffix.len;

    p = ctx->target->provider;

    h = ngx_http_llm_sent_header(&suffix, p->headers->elts,
                                 p->headers->nelts);
    if (h == NULL) {
        h = ngx_http_llm_sent_header(&suffix, ctx->headers, ctx->nheaders);
        if (h == NULL) {
            return NGX_OK;
        }
    }

    v->data = h->value.data;
    v->len = h->value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the header of the n at h that is named name ('_' for '-'), not secret */

static ngx_http_llm_header_t *
ngx_http_llm_sent_header(ngx_str_t *name, ngx_http_llm_header_t *h,
    ngx_uint_t n)
{
    u_char      c;
    ngx_uint_t  i, k;

    for (i = 0; i < n; i++) {
        if (h[i].name.len != name->len || h[i].secret) {
            continue;
        }

        for (k = 0; k < name->len; k++) {
            c = h[i].name.data[k];
            if (c == '-') {
                c = '_';
            }

            if (name->data[k] != c) {
                break;
            }
        }

        if (k == name->len) {
            return &h[i];
        }
    }

    return NULL;
}
