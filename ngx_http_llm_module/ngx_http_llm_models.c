
/*
 * GET /v1/models and /v1/models/{id} in OpenAI's list format, from the
 * configured routes. The list is rendered once, at configuration time.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_models.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_json.h"


static ngx_http_llm_provider_t *ngx_http_llm_route_owner(
    ngx_http_llm_route_t *route);
static ngx_uint_t ngx_http_llm_route_listed(ngx_http_llm_route_t *route);
static size_t ngx_http_llm_model_object_len(ngx_str_t *id,
    ngx_http_llm_provider_t *owner);
static u_char *ngx_http_llm_model_object(u_char *p, ngx_str_t *id,
    ngx_http_llm_provider_t *owner, time_t created);


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
    ngx_uint_t                i, n;
    ngx_http_llm_route_t    **rr;
    ngx_http_llm_provider_t  *owner;

    len = sizeof("{\"object\":\"list\",\"data\":[]}") - 1;
    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        owner = ngx_http_llm_route_owner(rr[i]);

        if (!ngx_http_llm_route_listed(rr[i]) || owner == NULL) {
            continue;
        }

        len += ngx_http_llm_model_object_len(&rr[i]->name, owner) + 1;
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

        p = ngx_http_llm_model_object(p, &rr[i]->name, owner, lmcf->created);
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
    ngx_str_t                  id, capture, json;
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

    json.data = ngx_pnalloc(r->pool, ngx_http_llm_model_object_len(&id,
                                                                   owner));
    if (json.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json.len = ngx_http_llm_model_object(json.data, &id, owner, lmcf->created)
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


static size_t
ngx_http_llm_model_object_len(ngx_str_t *id, ngx_http_llm_provider_t *owner)
{
    return sizeof("{\"id\":\"\",\"object\":\"model\",\"created\":,"
                  "\"owned_by\":\"\"}") - 1
           + ngx_http_llm_json_escaped_len(id->data, id->len)
           + NGX_TIME_T_LEN
           + ngx_http_llm_json_escaped_len(owner->name.data, owner->name.len);
}


static u_char *
ngx_http_llm_model_object(u_char *p, ngx_str_t *id,
    ngx_http_llm_provider_t *owner, time_t created)
{
    p = ngx_cpymem(p, "{\"id\":\"", sizeof("{\"id\":\"") - 1);
    p = ngx_http_llm_json_escape(p, id->data, id->len);
    p = ngx_sprintf(p, "\",\"object\":\"model\",\"created\":%T,"
                    "\"owned_by\":\"", created);
    p = ngx_http_llm_json_escape(p, owner->name.data, owner->name.len);
    *p++ = '"';
    *p++ = '}';

    return p;
}
