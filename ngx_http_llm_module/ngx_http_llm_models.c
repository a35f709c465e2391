
/*
 * GET /v1/models and /v1/models/{id} in OpenAI's list format, from the
 * configured routes. The list is rendered once, at configuration time.
 * Each model also names the endpoints its route serves ("endpoints"), as
 * the endpoints themselves decide whether to refuse it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_models.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_json.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_embeddings.h"


/* whether a route serves an endpoint: NGX_OK, NGX_DECLINED or NGX_ERROR */
typedef ngx_int_t (*ngx_http_llm_serves_pt)(ngx_pool_t *pool,
    ngx_http_llm_route_t *route, ngx_str_t *model, ngx_str_t *capture);


typedef struct {
    ngx_str_t                 name;
    ngx_http_llm_serves_pt    serves;      /* NULL: every route */
} ngx_http_llm_model_endpoint_t;


static ngx_int_t ngx_http_llm_serves_embeddings(ngx_pool_t *pool,
    ngx_http_llm_route_t *route, ngx_str_t *model, ngx_str_t *capture);
static ngx_int_t ngx_http_llm_serves_completions(ngx_pool_t *pool,
    ngx_http_llm_route_t *route, ngx_str_t *model, ngx_str_t *capture);
static ngx_int_t ngx_http_llm_serves_count(ngx_pool_t *pool,
    ngx_http_llm_route_t *route, ngx_str_t *model, ngx_str_t *capture);
static ngx_int_t ngx_http_llm_serves_some(ngx_http_llm_route_t *route,
    ngx_uint_t count);
static ngx_int_t ngx_http_llm_model_endpoints(ngx_pool_t *pool,
    ngx_http_llm_route_t *route, ngx_str_t *model, ngx_str_t *capture,
    ngx_str_t *out);
static ngx_http_llm_provider_t *ngx_http_llm_route_owner(
    ngx_http_llm_route_t *route);
static ngx_uint_t ngx_http_llm_route_listed(ngx_http_llm_route_t *route);
static size_t ngx_http_llm_model_object_len(ngx_str_t *id,
    ngx_http_llm_provider_t *owner, ngx_str_t *endpoints);
static u_char *ngx_http_llm_model_object(u_char *p, ngx_str_t *id,
    ngx_http_llm_provider_t *owner, ngx_str_t *endpoints, time_t created);


/*
 * The endpoints a model may be listed with, in the order listed; an
 * endpoint a route would refuse outright is left out. Translated ones
 * (chat, messages, responses) serve every format.
 */

static ngx_http_llm_model_endpoint_t  ngx_http_llm_model_endpoints_table[] = {
    { ngx_string("chat.completions"), NULL },
    { ngx_string("messages"), NULL },
    { ngx_string("responses"), NULL },
    { ngx_string("embeddings"), ngx_http_llm_serves_embeddings },
    { ngx_string("completions"), ngx_http_llm_serves_completions },
    { ngx_string("messages.count_tokens"), ngx_http_llm_serves_count },
    { ngx_null_string, NULL }
};


/* patterns name families of models; '@' routes are for "when" rules */

static ngx_uint_t
ngx_http_llm_route_listed(ngx_http_llm_route_t *route)
{
    return !route->glob && route->name.data[0] != '@';
}


ngx_int_t
ngx_http_llm_init_models(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    size_t                    len;
    u_char                   *p;
    ngx_str_t                *endpoints, capture;
    ngx_uint_t                i, n;
    ngx_http_llm_route_t    **rr;
    ngx_http_llm_provider_t  *owner;

    len = sizeof("{\"object\":\"list\",\"data\":[]}") - 1;
    rr = lmcf->routes.elts;

    endpoints = ngx_pcalloc(cf->temp_pool,
                            (lmcf->routes.nelts + 1) * sizeof(ngx_str_t));
    if (endpoints == NULL) {
        return NGX_ERROR;
    }

    ngx_str_null(&capture);

    for (i = 0; i < lmcf->routes.nelts; i++) {
        owner = ngx_http_llm_route_owner(rr[i]);

        if (!ngx_http_llm_route_listed(rr[i]) || owner == NULL) {
            continue;
        }

        if (ngx_http_llm_model_endpoints(cf->pool, rr[i], &rr[i]->name,
                                         &capture, &endpoints[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += ngx_http_llm_model_object_len(&rr[i]->name, owner,
                                             &endpoints[i]) + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    lmcf->models_json.data = p;

    p = ngx_cpymem(p, "{\"object\":\"list\",\"data\":[",
                   sizeof("{\"object\":\"list\",\"data\":[") - 1);

    for (i = 0, n = 0; i < lmcf->routes.nelts; i++) {
        owner = ngx_http_llm_route_owner(rr[i]);

        if (!ngx_http_llm_route_listed(rr[i]) || owner == NULL) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_http_llm_model_object(p, &rr[i]->name, owner, &endpoints[i],
                                      lmcf->created);
    }

    *p++ = ']';
    *p++ = '}';

    lmcf->models_json.len = p - lmcf->models_json.data;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_send_models(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    u_char                    *p, *last;
    ngx_int_t                  rc;
    ngx_str_t                  id, capture, json, endpoints;
    ngx_http_llm_route_t      *route;
    ngx_http_llm_provider_t   *owner;
    ngx_http_llm_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (ctx->endpoint == NGX_HTTP_LLM_EP_MODELS) {
        rc = ngx_http_llm_send_json(r, NGX_HTTP_OK, &lmcf->models_json);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    /* the id is what follows the first "/models/" */

    last = r->uri.data + r->uri.len;

    for (p = r->uri.data; p < last; p++) {
        if (ngx_strncmp(p, "/models/", sizeof("/models/") - 1) == 0) {
            break;
        }
    }

    id.data = p + sizeof("/models/") - 1;
    id.len = last - id.data;

    if (id.len && id.data[id.len - 1] == '/') {
        id.len--;
    }

    route = ngx_http_llm_find_route(lmcf, &id, &capture);
    owner = route ? ngx_http_llm_route_owner(route) : NULL;

    if (owner == NULL) {
        return ngx_http_llm_fail(r, NGX_HTTP_NOT_FOUND, "model_not_found",
                                 "model", "The model `%V` does not exist or "
                                 "you do not have access to it.", &id);
    }

    /* a pattern's model may be any: its targets' models are the id's */

    if (ngx_http_llm_model_endpoints(r->pool, route, &id, &capture,
                                     &endpoints)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json.data = ngx_pnalloc(r->pool,
                            ngx_http_llm_model_object_len(&id, owner,
                                                          &endpoints));
    if (json.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json.len = ngx_http_llm_model_object(json.data, &id, owner, &endpoints,
                                         lmcf->created)
               - json.data;

    rc = ngx_http_llm_send_json(r, NGX_HTTP_OK, &json);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* the provider a model is listed as owned by: its first enabled target's */

static ngx_http_llm_provider_t *
ngx_http_llm_route_owner(ngx_http_llm_route_t *route)
{
    ngx_uint_t              i;
    ngx_http_llm_target_t  *t;

    t = route->targets.elts;

    for (i = 0; i < route->targets.nelts; i++) {
        if (!t[i].provider->disabled) {
            return t[i].provider;
        }
    }

    return NULL;
}


/* ["chat.completions",...]: the names need no escaping */

static ngx_int_t
ngx_http_llm_model_endpoints(ngx_pool_t *pool, ngx_http_llm_route_t *route,
    ngx_str_t *model, ngx_str_t *capture, ngx_str_t *out)
{
    size_t                          len;
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_http_llm_model_endpoint_t  *e;

    len = sizeof("[]") - 1;

    for (e = ngx_http_llm_model_endpoints_table; e->name.len; e++) {
        len += e->name.len + sizeof("\"\",") - 1;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    *p++ = '[';

    for (e = ngx_http_llm_model_endpoints_table; e->name.len; e++) {
        rc = e->serves ? e->serves(pool, route, model, capture) : NGX_OK;

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            continue;
        }

        if (p - out->data > 1) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, e->name.data, e->name.len);
        *p++ = '"';
    }

    *p++ = ']';
    out->len = p - out->data;

    return NGX_OK;
}


/*
 * As ngx_http_llm_embeddings_check_route() decides for any input of text:
 * every target OpenAI-format, Gemini, or a Bedrock embedding model.
 */

static ngx_int_t
ngx_http_llm_serves_embeddings(ngx_pool_t *pool, ngx_http_llm_route_t *route,
    ngx_str_t *model, ngx_str_t *capture)
{
    ngx_str_t                target;
    ngx_uint_t               i;
    ngx_http_llm_target_t   *t;
    ngx_http_llm_dialect_t  *d;

    t = route->targets.elts;

    for (i = 0; i < route->targets.nelts; i++) {
        d = t[i].provider->dialect;

        if (d->api == NGX_HTTP_LLM_API_OPENAI
            || d == &ngx_http_llm_gemini_dialect)
        {
            continue;
        }

        if (d != &ngx_http_llm_bedrock_dialect) {
            return NGX_DECLINED;
        }

        if (ngx_http_llm_target_model(pool, &t[i], model, capture, &target)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (!ngx_http_llm_embeddings_bedrock_known(&target)) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* as the handler decides: some OpenAI-format target */

static ngx_int_t
ngx_http_llm_serves_completions(ngx_pool_t *pool, ngx_http_llm_route_t *route,
    ngx_str_t *model, ngx_str_t *capture)
{
    return ngx_http_llm_serves_some(route, 0);
}


/* as the handler decides: an enabled Anthropic-format target */

static ngx_int_t
ngx_http_llm_serves_count(ngx_pool_t *pool, ngx_http_llm_route_t *route,
    ngx_str_t *model, ngx_str_t *capture)
{
    return ngx_http_llm_serves_some(route, 1);
}


/* a target with a legacy completions URL, or (count) one to count with */

static ngx_int_t
ngx_http_llm_serves_some(ngx_http_llm_route_t *route, ngx_uint_t count)
{
    ngx_uint_t                i;
    ngx_http_llm_provider_t  *p;
    ngx_http_llm_target_t    *t;

    t = route->targets.elts;

    for (i = 0; i < route->targets.nelts; i++) {
        p = t[i].provider;

        if (count ? (p->dialect == &ngx_http_llm_anthropic_dialect
                     && !p->disabled)
                  : (p->completions_url.len != 0))
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static size_t
ngx_http_llm_model_object_len(ngx_str_t *id, ngx_http_llm_provider_t *owner,
    ngx_str_t *endpoints)
{
    return sizeof("{\"id\":\"\",\"object\":\"model\",\"created\":,"
                  "\"owned_by\":\"\",\"endpoints\":}") - 1
           + ngx_http_llm_json_escaped_len(id->data, id->len)
           + NGX_TIME_T_LEN
           + ngx_http_llm_json_escaped_len(owner->name.data, owner->name.len)
           + endpoints->len;
}


static u_char *
ngx_http_llm_model_object(u_char *p, ngx_str_t *id,
    ngx_http_llm_provider_t *owner, ngx_str_t *endpoints, time_t created)
{
    p = ngx_cpymem(p, "{\"id\":\"", sizeof("{\"id\":\"") - 1);
    p = ngx_http_llm_json_escape(p, id->data, id->len);
    p = ngx_sprintf(p, "\",\"object\":\"model\",\"created\":%T,"
                    "\"owned_by\":\"", created);
    p = ngx_http_llm_json_escape(p, owner->name.data, owner->name.len);
    p = ngx_cpymem(p, "\",\"endpoints\":", sizeof("\",\"endpoints\":") - 1);
    p = ngx_cpymem(p, endpoints->data, endpoints->len);
    *p++ = '}';

    return p;
}
