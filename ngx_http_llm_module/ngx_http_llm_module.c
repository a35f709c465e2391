
/*
 * ngx_http_llm_module: module definition, directives, configuration
 * lifecycle and the request context.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_handler.h"
#include "ngx_http_llm_accounting.h"
#include "ngx_http_llm_filter.h"
#include "ngx_http_llm_models.h"
#include "ngx_http_llm_variables.h"
#include "ngx_http_llm_failover.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_redis.h"
#include "ngx_http_llm_keys.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_upstream.h"

#include <openssl/crypto.h>
#include <yajl/yajl_version.h>
#include <hiredis/hiredis.h>


/* a request's ctx, allocated with its pool cleanup */
typedef struct {
    ngx_pool_cleanup_t             cleanup;
    ngx_http_llm_ctx_t             ctx;
} ngx_http_llm_ctx_cleanup_t;


static ngx_int_t ngx_http_llm_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_llm_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_llm_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_llm_init_process(ngx_cycle_t *cycle);
static void *ngx_http_llm_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_llm_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_llm_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_llm_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_llm_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_llm_request_memory(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_llm_cache_charge(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_llm_check_gateways(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
static void ngx_http_llm_ctx_cleanup(void *data);


static ngx_command_t  ngx_http_llm_commands[] = {

    { ngx_string("llm_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_provider_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_route"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_route_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_entity_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_team"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_entity_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_org"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_entity_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_keys_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_keys_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_default_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_default_max_tokens,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_loc_conf_t, auth),
      NULL },

    { ngx_string("llm_response_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_loc_conf_t, response_headers),
      NULL },

    { ngx_string("llm_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_request_memory"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_llm_request_memory,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_cache_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_llm_cache_scope_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_cache_charge"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_cache_charge,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_guard"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_llm_guard_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_guard_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_guard_policy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_llm_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_llm_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_gateway"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_llm_gateway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_llm_module_ctx = {
    ngx_http_llm_preconfiguration,         /* preconfiguration */
    ngx_http_llm_postconfiguration,        /* postconfiguration */

    ngx_http_llm_create_main_conf,         /* create main configuration */
    ngx_http_llm_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_llm_create_loc_conf,          /* create location configuration */
    ngx_http_llm_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_llm_module = {
    NGX_MODULE_V1,
    &ngx_http_llm_module_ctx,              /* module context */
    ngx_http_llm_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_llm_init_module,              /* init module */
    ngx_http_llm_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_llm_redis_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* once a configuration is in: what runs, and with what it was built */

static ngx_int_t
ngx_http_llm_init_module(ngx_cycle_t *cycle)
{
    int  yajl;

    yajl = yajl_version();

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "ngx_http_llm_module/" NGX_HTTP_LLM_VERSION
                  " (yajl %d.%d.%d, hiredis %d.%d.%d, %s)",
                  yajl / 10000, yajl / 100 % 100, yajl % 100,
                  HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
                  OpenSSL_version(OPENSSL_VERSION));

    return NGX_OK;
}


/*
 * a worker's own state: its memo of the zone, of authenticated keys, its
 * Redis connection
 */

static ngx_int_t
ngx_http_llm_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llm_main_conf_t  *lmcf;

    /* workers only: not the cache manager and loader */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_llm_module);

    if (lmcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_llm_keys_init_process(cycle, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (lmcf->zone
        && ngx_http_llm_zone_init_process(cycle, lmcf->zone) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf->redis) {
        return ngx_http_llm_redis_init_process(cycle, lmcf);
    }

    return NGX_OK;
}


static void *
ngx_http_llm_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_llm_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->providers, cf->pool, 4,
                       sizeof(ngx_http_llm_provider_t *))
        != NGX_OK
        || ngx_array_init(&lmcf->routes, cf->pool, 8,
                          sizeof(ngx_http_llm_route_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->globs, cf->pool, 4,
                          sizeof(ngx_http_llm_route_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->gateways, cf->pool, 4,
                          sizeof(ngx_http_core_loc_conf_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->keys, cf->pool, 4,
                          sizeof(ngx_http_llm_entity_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->teams, cf->pool, 4,
                          sizeof(ngx_http_llm_entity_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->guards, cf->pool, 2,
                          sizeof(ngx_http_llm_guard_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->orgs, cf->pool, 4,
                          sizeof(ngx_http_llm_entity_t *))
           != NGX_OK)
    {
        return NULL;
    }

    lmcf->default_max_tokens = NGX_CONF_UNSET;
    lmcf->cache_charge = NGX_CONF_UNSET;

    return lmcf;
}


static char *
ngx_http_llm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    lmcf->created = ngx_time();

    if (lmcf->default_max_tokens == NGX_CONF_UNSET) {
        lmcf->default_max_tokens = 1024;
    }

    if (lmcf->cache_charge == NGX_CONF_UNSET) {
        lmcf->cache_charge = 0;
    }

    if (ngx_http_llm_init_routes(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_init_keys(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_init_models(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_llm_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    llcf->enable = NGX_CONF_UNSET;
    llcf->auth = NGX_CONF_UNSET;
    llcf->response_headers = NGX_CONF_UNSET;
    llcf->cache = NGX_CONF_UNSET_UINT;
    llcf->cache_scope = NGX_CONF_UNSET_UINT;
    llcf->memory_ratio = NGX_CONF_UNSET_UINT;
    llcf->memory_max = NGX_CONF_UNSET_SIZE;

    return llcf;
}


static char *
ngx_http_llm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_llm_loc_conf_t *prev = parent;
    ngx_http_llm_loc_conf_t *conf = child;

    ngx_http_llm_loc_conf_t    *server;
    ngx_http_core_loc_conf_t   *clcf, **gw;
    ngx_http_core_srv_conf_t   *cscf;
    ngx_http_llm_main_conf_t   *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llm_module);

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    /* gateways with keys declared require them, unless told otherwise */
    ngx_conf_merge_value(conf->auth, prev->auth,
                         lmcf->keys.nelts > 0 || ngx_http_llm_redis_keys(lmcf));

    ngx_conf_merge_value(conf->response_headers, prev->response_headers, 1);

    ngx_conf_merge_uint_value(conf->cache, prev->cache,
                              NGX_HTTP_LLM_CACHE_OFF);
    ngx_conf_merge_uint_value(conf->cache_scope, prev->cache_scope,
                              NGX_HTTP_LLM_SCOPE_TEAM);
    ngx_conf_merge_str_value(conf->cache_namespace, prev->cache_namespace,
                             "");
    ngx_conf_merge_uint_value(conf->memory_ratio, prev->memory_ratio, 16);
    ngx_conf_merge_size_value(conf->memory_max, prev->memory_max,
                              64 * 1024 * 1024);

    if (ngx_http_llm_guard_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        gw = ngx_array_push(&lmcf->gateways);
        if (gw == NULL) {
            return NGX_CONF_ERROR;
        }

        *gw = clcf;

        /* the server's locations are merged after the server itself */

        cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
        server = cscf->ctx->loc_conf[ngx_http_llm_module.ctx_index];
        server->gateway_server = 1;
    }

    return NGX_CONF_OK;
}


/* llm_cache_charge 0%: what a cache hit costs, of what it would have */

static char *
ngx_http_llm_cache_charge(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    ngx_str_t  *value, s;

    if (lmcf->cache_charge != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    s = value[1];

    if (s.len && s.data[s.len - 1] == '%') {
        s.len--;
    }

    lmcf->cache_charge = ngx_atoi(s.data, s.len);

    if (lmcf->cache_charge == NGX_ERROR || lmcf->cache_charge > 100) {
        return "must be a percentage from 0% to 100%";
    }

    return NGX_CONF_OK;
}


/*
 * llm_request_memory 16x 64m: what reading a body may take beyond the body
 * itself, as a multiple of its size (plus a small floor), and at most
 */

static char *
ngx_http_llm_request_memory(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ssize_t     max;
    ngx_int_t   ratio;
    ngx_str_t  *value, s;

    if (llcf->memory_ratio != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    s = value[1];

    if (s.len && s.data[s.len - 1] == 'x') {
        s.len--;
    }

    ratio = ngx_atoi(s.data, s.len);

    if (ratio == NGX_ERROR || ratio < 1 || ratio > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid multiple \"%V\" "
                           "in \"%V\": a number from 1 to 1000, such as "
                           "16x, is expected", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    llcf->memory_ratio = ratio;

    if (cf->args->nelts == 3) {
        max = ngx_parse_size(&value[2]);

        if (max == NGX_ERROR || max < NGX_HTTP_LLM_MEMORY_FLOOR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid size \"%V\" "
                               "in \"%V\": at least 64k is expected",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        llcf->memory_max = max;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    if (cf->args->nelts == 1) {
        llcf->enable = 1;
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        llcf->enable = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        llcf->enable = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"on\" or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "proxy_pass https://llm_upstream" in the http block finds it made */

static ngx_int_t
ngx_http_llm_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_llm_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llm_module);

    return ngx_http_llm_upstream_add(cf, lmcf);
}


static ngx_int_t
ngx_http_llm_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_llm_main_conf_t   *lmcf;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llm_module);

    if (ngx_http_llm_add_variables(cf) != NGX_OK
        || ngx_http_llm_cache_variables(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llm_check_gateways(cf, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_check_providers(cf, lmcf) != NGX_OK
        || ngx_http_llm_upstream_providers(cf, lmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf->routes.nelts && ngx_http_llm_zone_default(cf, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (lmcf->gateways.nelts == 0) {
        /* no gateway location: nothing runs on any request */
        return ngx_http_llm_filter_init(cf);
    }

    /*
     * The gateway runs in the precontent phase, after allow/deny and
     * auth modules had their say, like the mirror module: it reads the
     * body there and hands the request to proxy_pass.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llm_handler;

    /*
     * A failover re-enters the location through error_page, which turns
     * the method into GET; the server rewrite phase is the first to run
     * after that, so the original request is restored there. Why a hook
     * and not a named location: docs/architecture.md, "Failover".
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_SERVER_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llm_retry_handler;

    /* the attempt that answered is recorded once the response is done */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llm_log_handler;

    return ngx_http_llm_filter_init(cf);
}


/*
 * A gateway location hands attempts to a content handler (proxy_pass
 * $llm_upstream: reading it attaches the writer of the provider's
 * headers) and needs error_page for 502 and 504 to fail over; without
 * them requests would fail in ways nginx -t can tell now.
 */

static ngx_int_t
ngx_http_llm_check_gateways(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_str_t                       name;
    ngx_uint_t                      i, j, found, variables;
    ngx_module_t                   *proxy;
    ngx_http_err_page_t            *ep;
    ngx_http_core_loc_conf_t      **gw, *clcf;
    ngx_http_upstream_conf_t       *ucf;

    gw = lmcf->gateways.elts;
    proxy = NULL;
    variables = 0;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name, "ngx_http_proxy_module")
            == 0)
        {
            proxy = cf->cycle->modules[i];
            break;
        }
    }

    for (i = 0; i < lmcf->gateways.nelts; i++) {
        clcf = gw[i];

        /*
         * The proxy module's location conf starts with its upstream
         * conf, in every nginx from 1.0 to mainline, and this module is
         * built with the same nginx's headers
         */

        ucf = proxy ? clcf->loc_conf[proxy->ctx_index] : NULL;

#if (NGX_HTTP_CACHE)

        /*
         * proxy_no_cache is evaluated for every answer, cached or not;
         * without proxy_cache its answer is never used, and a gateway
         * location has $llm_no_cache in it (llm_proxy_params): an
         * evaluation saved per request
         */

        if (ucf && ucf->cache <= 0) {
            ucf->no_cache = NULL;
        }

#endif

        if (clcf->noname) {
            /* "if" and "limit_except" blocks inherit from their location */
            continue;
        }

        if (clcf->handler == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "llm_gateway location \"%V\" has no proxy_pass: "
                          "include llm_proxy_params in it", &clcf->name);
            return NGX_ERROR;
        }

        /*
         * proxy_pass with a fixed URL other than llm_upstream sends no
         * provider's headers: the upstream conf starts with the upstream
         * block a fixed URL names (NULL with variables)
         */

        if (ucf && ucf->upstream) {
            if (ucf->upstream != lmcf->upstream) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "llm_gateway location \"%V\" needs "
                              "\"proxy_pass https://llm_upstream;\" (or "
                              "$llm_upstream), not another URL: include "
                              "llm_proxy_params in it", &clcf->name);
                return NGX_ERROR;
            }

#if (NGX_HTTP_SSL)
            /* "http://llm_upstream": no TLS context for https providers */

            if (ucf->ssl == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "llm_gateway location \"%V\" needs "
                              "\"proxy_pass https://llm_upstream;\": each "
                              "provider's url has its own scheme",
                              &clcf->name);
                return NGX_ERROR;
            }
#endif

            lmcf->upstream_used = 1;

        } else if (ucf) {
            variables = 1;
        }

        found = 0;

        if (clcf->error_pages) {
            ep = clcf->error_pages->elts;

            for (j = 0; j < clcf->error_pages->nelts; j++) {
                if (ep[j].status == NGX_HTTP_BAD_GATEWAY) {
                    found |= 1;

                } else if (ep[j].status == NGX_HTTP_GATEWAY_TIME_OUT) {
                    found |= 2;
                }
            }
        }

        if (found != 3 || !clcf->recursive_error_pages) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "llm_gateway location \"%V\" needs \"error_page "
                          "502 504 = $uri$is_args$args;\" and "
                          "\"recursive_error_pages on;\" to fail over: "
                          "include llm_proxy_params in it", &clcf->name);
            return NGX_ERROR;
        }
    }

    if (variables) {
        ngx_str_set(&name, "llm_upstream");

        if (!ngx_http_llm_variable_read(cf, &name)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "llm_gateway location \"%V\" needs "
                          "\"proxy_pass https://llm_upstream;\" (or "
                          "$llm_upstream): include llm_proxy_params in it",
                          &gw[0]->name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_http_llm_ctx_t *
ngx_http_llm_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /*
         * internal redirects wipe module contexts; ours lives on in the
         * pool cleanup that was registered with it
         */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_llm_ctx_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_llm_module);
                break;
            }
        }
    }

    return ctx;
}


ngx_http_llm_ctx_t *
ngx_http_llm_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_llm_ctx_t          *ctx;
    ngx_http_llm_ctx_cleanup_t  *c;

    /*
     * the ctx and its pool cleanup in one allocation, the cleanup linked
     * as ngx_pool_cleanup_add() would: that makes two; zeroed by libc's
     * memset(), cheaper for a kilobyte than the inlined one of a constant
     * size
     */

    c = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_ctx_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    ctx = &c->ctx;
    ctx->chat.max_tokens = -1;

    cln = &c->cleanup;
    cln->handler = ngx_http_llm_ctx_cleanup;
    cln->data = ctx;
    cln->next = r->pool->cleanup;
    r->pool->cleanup = cln;

    ngx_http_set_ctx(r, ctx, ngx_http_llm_module);

    return ctx;
}


static void
ngx_http_llm_ctx_cleanup(void *data)
{
    ngx_http_llm_ctx_t  *ctx = data;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->node) {
        /* the request ended without the log phase recording its attempt */
        ngx_http_llm_release_abandoned(ctx, ctx->zone);
    }

    ngx_http_llm_unhold(ctx);
}


ngx_table_elt_t *
ngx_http_llm_header_lookup(ngx_list_t *headers, u_char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        /* a response header taken out has hash 0 */

        if (h[i].hash && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Configuration every request reads (a route, its targets, a key) on a
 * cache line of its own start: with thousands of keys and routes what a
 * request reads of them is rarely in the cache, and each line it spans
 * is a miss. Its fields are ordered so (module.h, limits.h).
 */

void *
ngx_http_llm_pcalloc_line(ngx_pool_t *pool, size_t size)
{
    u_char  *p;

    p = ngx_palloc(pool, size + NGX_CPU_CACHE_LINE - 1);
    if (p == NULL) {
        return NULL;
    }

    p = ngx_align_ptr(p, NGX_CPU_CACHE_LINE);

    ngx_memzero(p, size);

    return p;
}


/*
 * Two digits a division: limits of ten or more digits are common. The
 * length is found first, by comparisons, so that the digits are written
 * in place from the last one, with no copy.
 */

u_char *
ngx_http_llm_uint_text(u_char *p, uint64_t n)
{
    u_char      *last;
    ngx_uint_t   i, len;

    static const uint64_t  tens[] = {
        10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL
    };

    static const u_char  pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930"
        "31323334353637383940414243444546474849505152535455565758596061"
        "62636465666768697071727374757677787980818283848586878889909192"
        "93949596979899";

    /* up to ten digits by a tree of comparisons; more are rare */

    if (n < 100000) {
        len = (n < 100) ? 1 + (n >= 10) : (n < 1000) ? 3 : 4 + (n >= 10000);

    } else if (n < 10000000000ULL) {
        len = (n < 10000000) ? 6 + (n >= 1000000)
              : (n < 1000000000) ? 8 + (n >= 100000000) : 10;

    } else {
        for (len = 11; len < 20 && n >= tens[len - 1]; len++) { /* void */ }
    }

    last = p + len;
    p = last;

    while (n >= 100) {
        i = (ngx_uint_t) (n % 100) * 2;
        n /= 100;
        *--p = pairs[i + 1];
        *--p = pairs[i];
    }

    if (n >= 10) {
        i = (ngx_uint_t) n * 2;
        *--p = pairs[i + 1];
        *--p = pairs[i];

    } else {
        *--p = (u_char) ('0' + n);
    }

    return last;
}


/*
 * Digits d and a power of ten 10^k, both exact doubles (d < 2^53,
 * k <= 22): d / 10^k is one correctly rounded division, the value
 * strtod() finds for the same text.
 */

ngx_int_t
ngx_http_llm_short_decimal(u_char *p, size_t len, double *x)
{
    u_char      *last;
    uint64_t     d;
    ngx_uint_t   digits, frac, minus, dot;

    static const double  tens[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15
    };

    last = p + len;
    minus = (p < last && *p == '-');
    p += minus;

    d = 0;
    digits = 0;
    frac = 0;
    dot = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 15) {
                return NGX_DECLINED;
            }

            d = d * 10 + (*p - '0');
            frac += dot;
            continue;
        }

        if (*p == '.' && !dot && digits) {
            dot = 1;
            continue;
        }

        return NGX_DECLINED;
    }

    if (digits == 0 || (dot && frac == 0)) {
        return NGX_DECLINED;
    }

    *x = (double) d / tens[frac];

    if (minus) {
        *x = -*x;
    }

    return NGX_OK;
}
