
/*
 * llm_route blocks: the model names clients send, mapped to provider
 * targets. Exact names are found through a hash built at configuration
 * time; names with one '*' (globs) and "~re", "~*re" (regexes) are tried
 * in configuration order after them. Names starting with '@' are never
 * matched: "when" rules choose them (ngx_http_llm_rules.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_json.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_rules.h"


typedef struct {
    ngx_str_t     name;
    ngx_uint_t    value;
} ngx_http_llm_name_value_t;


static ngx_http_llm_name_value_t  ngx_http_llm_strategies[] = {
    { ngx_string("ordered"), NGX_HTTP_LLM_ORDERED },
    { ngx_string("weighted"), NGX_HTTP_LLM_WEIGHTED },
    { ngx_string("latency"), NGX_HTTP_LLM_LATENCY },
    { ngx_string("cost"), NGX_HTTP_LLM_COST },
    { ngx_null_string, 0 }
};


static ngx_http_llm_name_value_t  ngx_http_llm_failovers[] = {
    { ngx_string("error"), NGX_HTTP_LLM_FO_ERROR },
    { ngx_string("timeout"), NGX_HTTP_LLM_FO_TIMEOUT },
    { ngx_string("http_429"), NGX_HTTP_LLM_FO_429 },
    { ngx_string("http_500"), NGX_HTTP_LLM_FO_500 },
    { ngx_string("http_502"), NGX_HTTP_LLM_FO_502 },
    { ngx_string("http_503"), NGX_HTTP_LLM_FO_503 },
    { ngx_string("http_504"), NGX_HTTP_LLM_FO_504 },
    { ngx_string("http_529"), NGX_HTTP_LLM_FO_529 },
    { ngx_null_string, 0 }
};


#define NGX_HTTP_LLM_FO_ALL  0x00ff


static char *ngx_http_llm_route_directive(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_llm_route_target(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_str_t *value, ngx_uint_t n);
static char *ngx_http_llm_route_retries(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_str_t *value, ngx_uint_t n);
static char *ngx_http_llm_route_failover(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_str_t *value, ngx_uint_t n);
static ngx_int_t ngx_http_llm_price(ngx_str_t *value, size_t skip,
    double *price);
static ngx_int_t ngx_http_llm_node_name(ngx_pool_t *pool, ngx_uint_t kind,
    ngx_str_t *first, ngx_str_t *second, ngx_str_t *name, uint32_t *hash);
static char *ngx_http_llm_target_captures(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_http_llm_target_t *t);
static ngx_int_t ngx_http_llm_model_captures(ngx_pool_t *pool,
    ngx_http_llm_target_t *t, ngx_str_t *client_model, ngx_str_t *out);


char *
ngx_http_llm_route_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    char                   *rv;
    u_char                 *star, err[256];
    ngx_str_t              *value;
    ngx_uint_t              i;
    ngx_conf_t              save;
    ngx_http_llm_route_t   *route, **rr;
    ngx_http_llm_target_t  *targets, gathered[NGX_HTTP_LLM_MAX_TARGETS];

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

    route = ngx_http_llm_pcalloc_line(cf->pool, sizeof(ngx_http_llm_route_t));
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    route->name = value[1];
    route->strategy = NGX_CONF_UNSET_UINT;
    route->attempts = NGX_CONF_UNSET_UINT;
    route->retries = NGX_CONF_UNSET_UINT;
    route->deadline = NGX_CONF_UNSET_MSEC;
    route->failover = NGX_CONF_UNSET_UINT;
    route->explore = NGX_CONF_UNSET_UINT;
    route->max_models = NGX_CONF_UNSET_UINT;
    route->backoff = NGX_CONF_UNSET_MSEC;
    route->max_backoff = NGX_CONF_UNSET_MSEC;
    route->cache = NGX_CONF_UNSET_UINT;
    route->file_name = cf->conf_file->file.name.data;
    route->line = cf->conf_file->line;

    star = NULL;

    if (value[1].data[0] == '~') {
        route->glob = 1;
        route->regex = ngx_http_llm_regex_name(cf->pool, &value[1], err,
                                               sizeof(err));
        if (route->regex == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid regex in llm_route \"%V\": %s",
                               &value[1], err);
            return NGX_CONF_ERROR;
        }

    } else if (value[1].data[0] != '@') {
        star = ngx_strlchr(value[1].data, value[1].data + value[1].len, '*');
    }

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

    /*
     * the block's targets are gathered here, then kept in an array of
     * their number: thousands of routes have one or two (the limit is
     * checked before each is added)
     */

    route->targets.elts = gathered;
    route->targets.nelts = 0;
    route->targets.size = sizeof(ngx_http_llm_target_t);
    route->targets.nalloc = NGX_HTTP_LLM_MAX_TARGETS;
    route->targets.pool = cf->pool;

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

    targets = ngx_http_llm_pcalloc_line(cf->pool, route->targets.nelts
                                              * sizeof(ngx_http_llm_target_t));
    if (targets == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(targets, gathered,
               route->targets.nelts * sizeof(ngx_http_llm_target_t));

    route->targets.elts = targets;
    route->targets.nalloc = route->targets.nelts;
    route->targets.pool = cf->pool;

    ngx_conf_init_uint_value(route->strategy, NGX_HTTP_LLM_ORDERED);
    ngx_conf_init_uint_value(route->retries, 0);
    ngx_conf_init_msec_value(route->deadline, 0);
    ngx_conf_init_uint_value(route->failover, NGX_HTTP_LLM_FO_ALL);
    ngx_conf_init_uint_value(route->explore, 5);
    ngx_conf_init_uint_value(route->max_models,
                             NGX_HTTP_LLM_DEFAULT_MAX_MODELS);

    /* max_backoff caps every wait, the first included */
    ngx_conf_init_msec_value(route->backoff, 100);
    ngx_conf_init_msec_value(route->max_backoff, 2000);

    if (route->attempts == NGX_CONF_UNSET_UINT) {
        route->attempts = ngx_min(route->targets.nelts * (route->retries + 1),
                                  NGX_HTTP_LLM_MAX_ATTEMPTS);
    }

    route->hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_ROUTE,
                                         &route->name);

    if (route->cache != NGX_CONF_UNSET_UINT) {
        /* its requests' cache keys are needed whatever the location says */
        lmcf->route_cache = 1;
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

    ngx_int_t                   n;
    ngx_str_t                  *value;
    ngx_http_llm_name_value_t  *nv;

    value = cf->args->elts;

    if (value[0].len == 6 && ngx_strncmp(value[0].data, "target", 6) == 0) {
        return ngx_http_llm_route_target(cf, route, value, cf->args->nelts);
    }

    if (value[0].len == 4 && ngx_strncmp(value[0].data, "when", 4) == 0) {
        return ngx_http_llm_rule_parse(cf, route);
    }

    if (value[0].len == 7 && ngx_strncmp(value[0].data, "retries", 7) == 0) {
        if (route->retries != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        return ngx_http_llm_route_retries(cf, route, value, cf->args->nelts);
    }

    if (value[0].len == 8 && ngx_strncmp(value[0].data, "failover", 8) == 0) {
        if (route->failover != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        return ngx_http_llm_route_failover(cf, route, value, cf->args->nelts);
    }

    if (cf->args->nelts != 2) {
        goto invalid_args;
    }

    if (value[0].len == 5 && ngx_strncmp(value[0].data, "guard", 5) == 0) {
        if (route->guard_name.len) {
            goto duplicate;
        }

        /* resolved once the http block is read (guard.c) */
        route->guard_name = value[1];
        return NGX_CONF_OK;
    }

    if (value[0].len == 8 && ngx_strncmp(value[0].data, "strategy", 8) == 0) {
        if (route->strategy != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        for (nv = ngx_http_llm_strategies; nv->name.len; nv++) {
            if (nv->name.len == value[1].len
                && ngx_strncmp(nv->name.data, value[1].data, value[1].len)
                   == 0)
            {
                route->strategy = nv->value;
                return NGX_CONF_OK;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid strategy \"%V\": it must be \"ordered\", "
                           "\"weighted\", \"latency\" or \"cost\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[0].len == 8 && ngx_strncmp(value[0].data, "attempts", 8) == 0) {
        if (route->attempts != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        n = ngx_atoi(value[1].data, value[1].len);

        if (n == NGX_ERROR || n == 0 || n > NGX_HTTP_LLM_MAX_ATTEMPTS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"attempts\" value \"%V\": "
                               "it must be 1 to %d", &value[1],
                               NGX_HTTP_LLM_MAX_ATTEMPTS);
            return NGX_CONF_ERROR;
        }

        route->attempts = n;
        return NGX_CONF_OK;
    }

    if (value[0].len == 8 && ngx_strncmp(value[0].data, "deadline", 8) == 0) {
        if (route->deadline != NGX_CONF_UNSET_MSEC) {
            goto duplicate;
        }

        n = ngx_parse_time(&value[1], 0);

        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"deadline\" value \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        route->deadline = (ngx_msec_t) n;
        return NGX_CONF_OK;
    }

    if (value[0].len == 5 && ngx_strncmp(value[0].data, "cache", 5) == 0) {
        if (route->cache != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        if (ngx_strcmp(value[1].data, "off") == 0) {
            route->cache = NGX_HTTP_LLM_CACHE_OFF;

        } else if (ngx_strcmp(value[1].data, "deterministic") == 0) {
            route->cache = NGX_HTTP_LLM_CACHE_DETERMINISTIC;

        } else if (ngx_strcmp(value[1].data, "on") == 0) {
            route->cache = NGX_HTTP_LLM_CACHE_ON;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"cache\" value \"%V\": it must be "
                               "\"off\", \"deterministic\" or \"on\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (value[0].len == 16
        && ngx_strncmp(value[0].data, "cache_breakpoint", 16) == 0)
    {
        if (route->cache_breakpoint_set) {
            goto duplicate;
        }

        if (ngx_strcmp(value[1].data, "auto") == 0) {
            route->cache_breakpoint = 1;

        } else if (ngx_strcmp(value[1].data, "off") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"cache_breakpoint\" value \"%V\": "
                               "it must be \"auto\" or \"off\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        route->cache_breakpoint_set = 1;
        return NGX_CONF_OK;
    }

    if (value[0].len == 7 && ngx_strncmp(value[0].data, "explore", 7) == 0) {
        if (route->explore != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        if (value[1].len && value[1].data[value[1].len - 1] == '%') {
            value[1].len--;
        }

        n = ngx_atoi(value[1].data, value[1].len);

        if (n == NGX_ERROR || n > 100) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"explore\" value: it must be a "
                               "percentage from 0%% to 100%%");
            return NGX_CONF_ERROR;
        }

        route->explore = n;
        return NGX_CONF_OK;
    }

    if (value[0].len == 10
        && ngx_strncmp(value[0].data, "max_models", 10) == 0)
    {
        if (route->max_models != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        n = ngx_atoi(value[1].data, value[1].len);

        if (n == NGX_ERROR || n < 1 || n > 100000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"max_models\" value \"%V\": it "
                               "must be a number from 1 to 100000",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        route->max_models = n;
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

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" is duplicate in llm_route \"%V\"",
                       &value[0], &route->name);
    return NGX_CONF_ERROR;
}


/* retries number [backoff=time] [max_backoff=time] */

static char *
ngx_http_llm_route_retries(ngx_conf_t *cf, ngx_http_llm_route_t *route,
    ngx_str_t *value, ngx_uint_t n)
{
    ngx_int_t   num;
    ngx_str_t   s;
    ngx_uint_t  i;

    if (n < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"retries\" needs a number");
        return NGX_CONF_ERROR;
    }

    num = ngx_atoi(value[1].data, value[1].len);

    if (num == NGX_ERROR || num >= NGX_HTTP_LLM_MAX_ATTEMPTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"retries\" value \"%V\": "
                           "it must be 0 to %d", &value[1],
                           NGX_HTTP_LLM_MAX_ATTEMPTS - 1);
        return NGX_CONF_ERROR;
    }

    route->retries = num;

    for (i = 2; i < n; i++) {

        if (ngx_strncmp(value[i].data, "backoff=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            num = ngx_parse_time(&s, 0);
            if (num == NGX_ERROR) {
                goto invalid;
            }

            route->backoff = num;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_backoff=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            num = ngx_parse_time(&s, 0);
            if (num == NGX_ERROR) {
                goto invalid;
            }

            route->max_backoff = num;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"retries\" parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* failover off | error | timeout | http_429 | http_500 ... */

static char *
ngx_http_llm_route_failover(ngx_conf_t *cf, ngx_http_llm_route_t *route,
    ngx_str_t *value, ngx_uint_t n)
{
    ngx_uint_t                  i;
    ngx_http_llm_name_value_t  *nv;

    route->failover = 0;

    if (n == 2 && value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3)
                                       == 0)
    {
        return NGX_CONF_OK;
    }

    for (i = 1; i < n; i++) {
        for (nv = ngx_http_llm_failovers; nv->name.len; nv++) {
            if (nv->name.len == value[i].len
                && ngx_strncmp(nv->name.data, value[i].data, value[i].len)
                   == 0)
            {
                route->failover |= nv->value;
                break;
            }
        }

        if (nv->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"failover\" value \"%V\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (route->failover == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"failover\" needs a value");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
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
    t->line = cf->conf_file->line;
    t->route = route;
    t->weight = 1;
    t->input_price = -1;
    t->cached_price = -1;
    t->cache_write_price = -1;
    t->output_price = -1;

    for (i = 2; i < n; i++) {

        if (ngx_strncmp(value[i].data, "input=", 6) == 0) {
            if (ngx_http_llm_price(&value[i], 6, &t->input_price) != NGX_OK) {
                goto invalid_price;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "output=", 7) == 0) {
            if (ngx_http_llm_price(&value[i], 7, &t->output_price) != NGX_OK) {
                goto invalid_price;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cache_write=", 12) == 0) {
            if (ngx_http_llm_price(&value[i], 12, &t->cache_write_price)
                != NGX_OK)
            {
                goto invalid_price;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cached=", 7) == 0) {
            if (ngx_http_llm_price(&value[i], 7, &t->cached_price) != NGX_OK) {
                goto invalid_price;
            }

            continue;
        }

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
            if (!route->glob || route->regex
                || ngx_strlchr(star + 1, t->model.data + t->model.len, '*'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "target model \"%V\" may have one \"*\", "
                                   "and only in a route whose name has one",
                                   &t->model);
                return NGX_CONF_ERROR;
            }

            t->model_star = star - t->model.data + 1;

        } else if (route->regex
                   && ngx_http_llm_target_captures(cf, route, t)
                      != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;

        } else if (!t->model_captures
                   && ngx_http_llm_model_edit(cf->pool, &t->model,
                                              &t->model_edit)
                      != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (t->cached_price < 0) {
        t->cached_price = t->input_price;
    }

    if (t->cache_write_price < 0) {
        t->cache_write_price = t->input_price;
    }

    return NGX_CONF_OK;

invalid_price:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid price \"%V\": USD per million tokens, "
                       "like input=2.50", &value[i]);
    return NGX_CONF_ERROR;
}


/* "$0" to "$9" in a regex route's target model: its captures */

static char *
ngx_http_llm_target_captures(ngx_conf_t *cf, ngx_http_llm_route_t *route,
    ngx_http_llm_target_t *t)
{
    u_char      *p, *last;
    ngx_uint_t   n;

    last = t->model.data + t->model.len;

    for (p = t->model.data; p + 1 < last; p++) {
        if (*p != '$' || p[1] < '0' || p[1] > '9') {
            continue;
        }

        n = p[1] - '0';

        if (n > route->regex->captures) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "target model \"%V\" uses $%ui, but the "
                               "regex of llm_route \"%V\" has %ui captures",
                               &t->model, n, &route->name,
                               route->regex->captures);
            return NGX_CONF_ERROR;
        }

        t->model_captures = 1;
    }

    return NGX_CONF_OK;
}


/* "input=2.50": a price in USD per million tokens */

static ngx_int_t
ngx_http_llm_price(ngx_str_t *value, size_t skip, double *price)
{
    char  *end;

    /* configuration words end with a NUL */

    if (value->len == skip) {
        return NGX_ERROR;
    }

    *price = strtod((char *) value->data + skip, &end);

    if (end != (char *) value->data + value->len || *price < 0
        || *price > 1e6 || *price != *price)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * After the http block is parsed (providers may follow the routes that
 * name them): targets get their providers, exact names their hash.
 */

ngx_int_t
ngx_http_llm_init_routes(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    uint32_t                *stats_hash;
    ngx_str_t               *model, *stats;
    ngx_uint_t               i, j;
    ngx_hash_init_t          hash;
    ngx_hash_keys_arrays_t   keys;
    ngx_http_llm_route_t   **rr;
    ngx_http_llm_target_t   *t;

    static ngx_str_t  other = ngx_string(NGX_HTTP_LLM_OTHER_MODEL);

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
                              "target in %s:%ui names unknown llm_provider "
                              "\"%V\" (llm_route \"%V\" in line %ui)",
                              rr[i]->file_name, t[j].line,
                              &t[j].provider_name, &rr[i]->name,
                              rr[i]->line);
                return NGX_ERROR;
            }

            /*
             * its health node, "provider\0model", for the fixed model or
             * the models past max_models; its metrics series the same
             * after its route's name, so that such a request builds and
             * hashes no name of its own
             */

            if (t[j].model.len && !t[j].model_star && !t[j].model_captures) {
                model = &t[j].model;
                stats = &t[j].stats_name;
                stats_hash = &t[j].stats_hash;

            } else {
                model = &other;
                stats = &t[j].other_name;
                stats_hash = &t[j].other_hash;
            }

            if (ngx_http_llm_node_name(cf->pool, NGX_HTTP_LLM_NODE_TARGET,
                                       &t[j].provider->name, model, stats,
                                       stats_hash)
                != NGX_OK
                || ngx_http_llm_node_name(cf->pool, NGX_HTTP_LLM_NODE_METRICS,
                                          &rr[i]->name, stats,
                                          &t[j].series_name,
                                          &t[j].series_hash)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        /* patterns are tried in order; '@' names are for rules only */
        if (rr[i]->glob || rr[i]->name.data[0] == '@') {
            continue;
        }

        if (ngx_hash_add_key(&keys, &rr[i]->name, rr[i],
                             NGX_HASH_READONLY_KEY)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* every target known: rules may look at the routes they choose */

    for (i = 0; i < lmcf->routes.nelts; i++) {
        if (ngx_http_llm_rules_init(cf, lmcf, rr[i]) != NGX_OK) {
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

        if (route->regex) {
            /* a match limit is no match; the captures are taken again */
            if (ngx_http_llm_regex_exec(route->regex, model->data,
                                        model->len)
                == NGX_OK)
            {
                *capture = *model;
                return route;
            }

            continue;
        }

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


/* a node's name, "first\0second", and its hash */

static ngx_int_t
ngx_http_llm_node_name(ngx_pool_t *pool, ngx_uint_t kind, ngx_str_t *first,
    ngx_str_t *second, ngx_str_t *name, uint32_t *hash)
{
    u_char  *p;

    name->len = first->len + 1 + second->len;
    name->data = ngx_pnalloc(pool, name->len);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(name->data, first->data, first->len);
    *p++ = '\0';
    ngx_memcpy(p, second->data, second->len);

    *hash = ngx_http_llm_node_hash(kind, name);

    return NGX_OK;
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

    if (t->model_captures) {
        return ngx_http_llm_model_captures(pool, t, client_model, out);
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


/*
 * "claude-$1" for "~^anthropic/(.+)$": the regex is matched again, the
 * client's model being at most NGX_HTTP_LLM_MAX_MODEL bytes
 */

static ngx_int_t
ngx_http_llm_model_captures(ngx_pool_t *pool, ngx_http_llm_target_t *t,
    ngx_str_t *client_model, ngx_str_t *out)
{
    size_t                 len;
    u_char                *p, *q, *last;
    ngx_uint_t             pass;
    ngx_str_t              cap;
    ngx_http_llm_regex_t  *rx;

    rx = t->route->regex;

    if (ngx_http_llm_regex_exec(rx, client_model->data, client_model->len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    last = t->model.data + t->model.len;
    len = 0;
    q = NULL;

    /* the length, then the text */

    for (pass = 0; pass < 2; pass++) {

        for (p = t->model.data; p < last; p++) {

            if (*p == '$' && p + 1 < last && p[1] >= '0' && p[1] <= '9') {
                ngx_http_llm_regex_capture(rx, client_model->data,
                                           p[1] - '0', &cap);
                p++;

            } else {
                cap.data = p;
                cap.len = 1;
            }

            if (pass == 0) {
                len += cap.len;

            } else {
                q = ngx_cpymem(q, cap.data, cap.len);
            }
        }

        if (pass == 0) {
            q = ngx_pnalloc(pool, len);
            if (q == NULL) {
                return NGX_ERROR;
            }

            out->data = q;
            out->len = len;
        }
    }

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
