
/*
 * llm_route blocks: the model names clients send, mapped to provider
 * targets. Exact names are found through a hash built at configuration
 * time; names with one '*' are globs tried in configuration order.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json.h"


static char *ngx_http_llm_route_directive(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_llm_route_target(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_str_t *value, ngx_uint_t n);


char *
ngx_http_llm_route_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    char                  *rv;
    u_char                *star;
    ngx_str_t             *value;
    ngx_uint_t             i;
    ngx_conf_t             save;
    ngx_http_llm_route_t  *route, **rr;

    value = cf->args->elts;

    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        if (rr[i]->name.len == value[1].len
            && ngx_strncmp(rr[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate llm_route \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty llm_route name");
        return NGX_CONF_ERROR;
    }

    route = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_route_t));
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    route->name = value[1];
    route->attempts = NGX_CONF_UNSET_UINT;
    route->file_name = cf->conf_file->file.name.data;
    route->line = cf->conf_file->line;

    star = ngx_strlchr(value[1].data, value[1].data + value[1].len, '*');

    if (star) {
        if (ngx_strlchr(star + 1, value[1].data + value[1].len, '*')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_route \"%V\" has more than one \"*\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        route->glob = 1;
        route->prefix.data = value[1].data;
        route->prefix.len = star - value[1].data;
        route->suffix.data = star + 1;
        route->suffix.len = value[1].data + value[1].len - star - 1;
    }

    if (ngx_array_init(&route->targets, cf->pool, 4,
                       sizeof(ngx_http_llm_target_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_llm_route_directive;
    cf->handler_conf = (char *) route;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (route->targets.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_route \"%V\" has no \"target\"", &route->name);
        return NGX_CONF_ERROR;
    }

    if (route->attempts == NGX_CONF_UNSET_UINT) {
        route->attempts = ngx_min(route->targets.nelts,
                                  NGX_HTTP_LLM_MAX_ATTEMPTS);
    }

    rr = ngx_array_push(route->glob ? &lmcf->globs : &lmcf->routes);
    if (rr == NULL) {
        return NGX_CONF_ERROR;
    }

    *rr = route;

    if (route->glob) {
        /* globs are listed in routes too, for duplicate checks */
        rr = ngx_array_push(&lmcf->routes);
        if (rr == NULL) {
            return NGX_CONF_ERROR;
        }

        *rr = route;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_route_directive(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    ngx_http_llm_route_t  *route = (ngx_http_llm_route_t *) conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[0].len == 6 && ngx_strncmp(value[0].data, "target", 6) == 0) {
        return ngx_http_llm_route_target(cf, route, value, cf->args->nelts);
    }

    if (value[0].len == 7 && ngx_strncmp(value[0].data, "retries", 7) == 0) {

        if (cf->args->nelts != 2) {
            goto invalid_args;
        }

        if (route->attempts != NGX_CONF_UNSET_UINT) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"retries\" is duplicate in llm_route \"%V\"",
                               &route->name);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[1].data, value[1].len);

        if (n == NGX_ERROR || n >= NGX_HTTP_LLM_MAX_ATTEMPTS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"retries\" value \"%V\": "
                               "it must be 0 to %d", &value[1],
                               NGX_HTTP_LLM_MAX_ATTEMPTS - 1);
            return NGX_CONF_ERROR;
        }

        route->attempts = n + 1;
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown directive \"%V\" in llm_route", &value[0]);
    return NGX_CONF_ERROR;

invalid_args:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid number of arguments in \"%V\" of "
                       "llm_route \"%V\"", &value[0], &route->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_llm_route_target(ngx_conf_t *cf, ngx_http_llm_route_t *route,
    ngx_str_t *value, ngx_uint_t n)
{
    u_char                 *star;
    ngx_int_t               weight;
    ngx_uint_t              i;
    ngx_http_llm_target_t  *t;

    if (n < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"target\" needs a provider in llm_route \"%V\"",
                           &route->name);
        return NGX_CONF_ERROR;
    }

    if (route->targets.nelts == NGX_HTTP_LLM_MAX_TARGETS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_route \"%V\" has more than %d targets",
                           &route->name, NGX_HTTP_LLM_MAX_TARGETS);
        return NGX_CONF_ERROR;
    }

    t = ngx_array_push(&route->targets);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(t, sizeof(ngx_http_llm_target_t));

    t->provider_name = value[1];
    t->route = route;
    t->index = route->targets.nelts - 1;
    t->weight = 1;

    for (i = 2; i < n; i++) {

        if (ngx_strncmp(value[i].data, "weight=", 7) == 0) {
            weight = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (weight == NGX_ERROR || weight == 0 || weight > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid weight \"%V\": it must be "
                                   "1 to 1000", &value[i]);
                return NGX_CONF_ERROR;
            }

            t->weight = weight;
            continue;
        }

        if (i == 2 && ngx_strlchr(value[i].data, value[i].data + value[i].len,
                                  '=') == NULL)
        {
            t->model = value[i];
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid target parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (t->model.len) {
        star = ngx_strlchr(t->model.data, t->model.data + t->model.len, '*');

        if (star) {
            if (!route->glob
                || ngx_strlchr(star + 1, t->model.data + t->model.len, '*'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "target model \"%V\" may have one \"*\", "
                                   "and only in a route whose name has one",
                                   &t->model);
                return NGX_CONF_ERROR;
            }

            t->model_star = star - t->model.data + 1;

        } else if (ngx_http_llm_model_edit(cf->pool, &t->model, &t->model_edit)
                   != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * After the http block is parsed (providers may follow the routes that
 * name them): targets get their providers, exact names their hash.
 */

ngx_int_t
ngx_http_llm_init_routes(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_uint_t               i, j;
    ngx_hash_init_t          hash;
    ngx_hash_keys_arrays_t   keys;
    ngx_http_llm_route_t   **rr;
    ngx_http_llm_target_t   *t;

    keys.pool = cf->pool;
    keys.temp_pool = cf->temp_pool;

    if (ngx_hash_keys_array_init(&keys, NGX_HASH_SMALL) != NGX_OK) {
        return NGX_ERROR;
    }

    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        t = rr[i]->targets.elts;

        for (j = 0; j < rr[i]->targets.nelts; j++) {
            t[j].provider = ngx_http_llm_find_provider(lmcf,
                                                       &t[j].provider_name);
            if (t[j].provider == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "llm_route \"%V\" in %s:%ui names unknown "
                              "llm_provider \"%V\"", &rr[i]->name,
                              rr[i]->file_name, rr[i]->line,
                              &t[j].provider_name);
                return NGX_ERROR;
            }
        }

        if (rr[i]->glob) {
            continue;
        }

        if (ngx_hash_add_key(&keys, &rr[i]->name, rr[i],
                             NGX_HASH_READONLY_KEY)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    hash.hash = &lmcf->routes_hash;
    hash.key = ngx_hash_key;
    hash.max_size = 65536;
    hash.bucket_size = ngx_align(128, ngx_cacheline_size);
    hash.name = "llm_routes_hash";
    hash.pool = cf->pool;
    hash.temp_pool = NULL;

    return ngx_hash_init(&hash, keys.keys.elts, keys.keys.nelts);
}


ngx_http_llm_route_t *
ngx_http_llm_find_route(ngx_http_llm_main_conf_t *lmcf, ngx_str_t *model,
    ngx_str_t *capture)
{
    ngx_uint_t              i, key;
    ngx_http_llm_route_t   *route, **rr;

    key = ngx_hash_key(model->data, model->len);

    route = ngx_hash_find(&lmcf->routes_hash, key, model->data, model->len);
    if (route) {
        capture->len = 0;
        return route;
    }

    rr = lmcf->globs.elts;

    for (i = 0; i < lmcf->globs.nelts; i++) {
        route = rr[i];

        if (model->len < route->prefix.len + route->suffix.len) {
            continue;
        }

        if (ngx_strncmp(model->data, route->prefix.data, route->prefix.len)
            != 0)
        {
            continue;
        }

        if (ngx_strncmp(model->data + model->len - route->suffix.len,
                        route->suffix.data, route->suffix.len)
            != 0)
        {
            continue;
        }

        capture->data = model->data + route->prefix.len;
        capture->len = model->len - route->prefix.len - route->suffix.len;

        return route;
    }

    return NULL;
}


/*
 * The next target to try: the first in configuration order that this
 * request has not tried and whose provider is enabled.
 */

ngx_http_llm_target_t *
ngx_http_llm_next_target(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              i;
    ngx_http_llm_target_t  *t;

    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (ctx->tried & ((uint64_t) 1 << i)) {
            continue;
        }

        if (t[i].provider->disabled) {
            continue;
        }

        return &t[i];
    }

    return NULL;
}


/* the model name the provider gets for this request */

ngx_int_t
ngx_http_llm_target_model(ngx_pool_t *pool, ngx_http_llm_target_t *t,
    ngx_str_t *client_model, ngx_str_t *capture, ngx_str_t *out)
{
    size_t   len;
    u_char  *p;

    if (t->model.len == 0) {
        *out = *client_model;
        return NGX_OK;
    }

    if (t->model_star == 0) {
        *out = t->model;
        return NGX_OK;
    }

    len = t->model.len - 1 + capture->len;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    p = ngx_cpymem(p, t->model.data, t->model_star - 1);
    p = ngx_cpymem(p, capture->data, capture->len);
    p = ngx_cpymem(p, t->model.data + t->model_star,
                   t->model.len - t->model_star);
    out->len = len;

    return NGX_OK;
}


/* the text that replaces what follows the "model" key of a body */

ngx_int_t
ngx_http_llm_model_edit(ngx_pool_t *pool, ngx_str_t *model, ngx_str_t *edit)
{
    u_char  *p;

    edit->len = ngx_http_llm_json_escaped_len(model->data, model->len) + 3;

    p = ngx_pnalloc(pool, edit->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    edit->data = p;

    *p++ = ':';
    *p++ = '"';
    p = ngx_http_llm_json_escape(p, model->data, model->len);
    *p = '"';

    return NGX_OK;
}
