
/*
 * llm_status: the gateway's state as JSON. Routes as configured, and every
 * target the shared zone knows (a glob route's targets appear per model
 * actually requested) with its latency, load, counters and breaker.
 *
 * The zone is copied under its lock, then formatted without it.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_health.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_json.h"


typedef struct {
    ngx_str_t                      provider;
    ngx_str_t                      model;
    ngx_http_llm_stats_t           stats;
} ngx_http_llm_target_snapshot_t;


static ngx_int_t ngx_http_llm_status_handler(ngx_http_request_t *r);
static ngx_array_t *ngx_http_llm_snapshot(ngx_http_request_t *r,
    ngx_http_llm_zone_t *zone);
static u_char *ngx_http_llm_json_str(u_char *p, ngx_str_t *s);
static size_t ngx_http_llm_json_str_len(ngx_str_t *s);
static u_char *ngx_http_llm_json_ewma(u_char *p, const char *name,
    ngx_http_llm_ewma_t *e, ngx_msec_t now);


static const char  *ngx_http_llm_strategy_names[] = {
    "ordered", "weighted", "latency", "cost"
};


char *
ngx_http_llm_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llm_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_status_handler(ngx_http_request_t *r)
{
    size_t                           len;
    u_char                          *p;
    ngx_str_t                        json;
    ngx_uint_t                       i, j;
    ngx_msec_t                       now;
    ngx_array_t                     *snap;
    ngx_http_llm_stats_t            *st;
    ngx_http_llm_route_t           **rr;
    ngx_http_llm_target_t           *t;
    ngx_http_llm_main_conf_t        *lmcf;
    ngx_http_llm_target_snapshot_t  *ts;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    snap = NULL;

    if (lmcf->zone) {
        snap = ngx_http_llm_snapshot(r, lmcf->zone);
        if (snap == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    now = ngx_current_msec;

    /* sizes first: names escaped, numbers at their widest */

    len = sizeof("{\"time\":,\"routes\":[],\"targets\":[]}") + NGX_TIME_T_LEN;
    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        len += 160 + ngx_http_llm_json_str_len(&rr[i]->name);

        t = rr[i]->targets.elts;

        for (j = 0; j < rr[i]->targets.nelts; j++) {
            len += 80 + ngx_http_llm_json_str_len(&t[j].provider->name)
                   + ngx_http_llm_json_str_len(&t[j].model);
        }
    }

    ts = snap ? snap->elts : NULL;

    for (i = 0; snap && i < snap->nelts; i++) {
        len += 700 + ngx_http_llm_json_str_len(&ts[i].provider)
               + ngx_http_llm_json_str_len(&ts[i].model);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json.data = p;

    p = ngx_sprintf(p, "{\"time\":%T,\"routes\":[", ngx_time());

    for (i = 0; i < lmcf->routes.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"name\":", sizeof("{\"name\":") - 1);
        p = ngx_http_llm_json_str(p, &rr[i]->name);
        p = ngx_sprintf(p, ",\"strategy\":\"%s\",\"attempts\":%ui,"
                        "\"retries\":%ui,\"deadline_ms\":%M,\"targets\":[",
                        ngx_http_llm_strategy_names[rr[i]->strategy],
                        rr[i]->attempts, rr[i]->retries, rr[i]->deadline);

        t = rr[i]->targets.elts;

        for (j = 0; j < rr[i]->targets.nelts; j++) {
            if (j) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, "{\"provider\":", sizeof("{\"provider\":") - 1);
            p = ngx_http_llm_json_str(p, &t[j].provider->name);
            p = ngx_cpymem(p, ",\"model\":", sizeof(",\"model\":") - 1);
            p = ngx_http_llm_json_str(p, &t[j].model);
            p = ngx_sprintf(p, ",\"weight\":%ui,\"enabled\":%s}",
                            t[j].weight,
                            t[j].provider->disabled ? "false" : "true");
        }

        p = ngx_cpymem(p, "]}", 2);
    }

    p = ngx_cpymem(p, "],\"targets\":[", sizeof("],\"targets\":[") - 1);

    for (i = 0; snap && i < snap->nelts; i++) {
        st = &ts[i].stats;

        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"provider\":", sizeof("{\"provider\":") - 1);
        p = ngx_http_llm_json_str(p, &ts[i].provider);
        p = ngx_cpymem(p, ",\"model\":", sizeof(",\"model\":") - 1);
        p = ngx_http_llm_json_str(p, &ts[i].model);

        p = ngx_sprintf(p, ",\"state\":\"%s\",\"available_in_ms\":%M,"
                        "\"inflight\":%uD,\"requests\":%uL,\"successes\":%uL,"
                        "\"failures\":%uL,\"rate_limited\":%uL,"
                        "\"timeouts\":%uL,\"last_status\":%uD,",
                        ngx_http_llm_breaker_name(st, now),
                        (ngx_msec_int_t) (ngx_http_llm_available_at(st) - now)
                        > 0 ? ngx_http_llm_available_at(st) - now : 0,
                        st->inflight, st->requests, st->successes,
                        st->failures, st->rate_limited, st->timeouts,
                        (uint32_t) st->last_status);

        p = ngx_http_llm_json_ewma(p, "ttfb", &st->ttfb, now);
        *p++ = ',';
        p = ngx_http_llm_json_ewma(p, "latency", &st->latency, now);
        *p++ = ',';
        p = ngx_http_llm_json_ewma(p, "per_token", &st->per_token, now);
        *p++ = '}';
    }

    p = ngx_cpymem(p, "]}", 2);
    *p++ = '\n';

    json.len = p - json.data;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = json.len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return ngx_http_llm_send_json(r, NGX_HTTP_OK, &json);
}


/* every target node of the zone, copied under the lock */

static ngx_array_t *
ngx_http_llm_snapshot(ngx_http_request_t *r, ngx_http_llm_zone_t *zone)
{
    u_char                          *nul;
    ngx_queue_t                     *q;
    ngx_array_t                     *snap;
    ngx_http_llm_node_t             *ln;
    ngx_http_llm_target_snapshot_t  *ts;

    snap = ngx_array_create(r->pool, 16,
                            sizeof(ngx_http_llm_target_snapshot_t));
    if (snap == NULL) {
        return NULL;
    }

    ngx_http_llm_zone_lock(zone);

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_llm_node_t, queue);

        if (ln->kind != NGX_HTTP_LLM_NODE_TARGET) {
            continue;
        }

        ts = ngx_array_push(snap);
        if (ts == NULL) {
            break;
        }

        ts->stats = *(ngx_http_llm_stats_t *) ln->data;

        ts->provider.data = ngx_pnalloc(r->pool, ln->len);
        if (ts->provider.data == NULL) {
            snap->nelts--;
            break;
        }

        ngx_memcpy(ts->provider.data, ln->name, ln->len);

        /* the name is "provider\0model" */

        nul = ngx_strlchr(ts->provider.data, ts->provider.data + ln->len,
                          '\0');
        if (nul == NULL) {
            snap->nelts--;
            continue;
        }

        ts->provider.len = nul - ts->provider.data;
        ts->model.data = nul + 1;
        ts->model.len = ln->len - ts->provider.len - 1;
    }

    ngx_http_llm_zone_unlock(zone);

    return snap;
}


static size_t
ngx_http_llm_json_str_len(ngx_str_t *s)
{
    return ngx_http_llm_json_escaped_len(s->data, s->len) + 2;
}


static u_char *
ngx_http_llm_json_str(u_char *p, ngx_str_t *s)
{
    *p++ = '"';
    p = ngx_http_llm_json_escape(p, s->data, s->len);
    *p++ = '"';

    return p;
}


/* "ttfb_ms":123.456,"ttfb_samples":7 (null when never sampled) */

static u_char *
ngx_http_llm_json_ewma(u_char *p, const char *name, ngx_http_llm_ewma_t *e,
    ngx_msec_t now)
{
    if (e->samples == 0) {
        return ngx_sprintf(p, "\"%s_ms\":null,\"%s_samples\":0", name, name);
    }

    return ngx_sprintf(p, "\"%s_ms\":%.3f,\"%s_samples\":%uD", name,
                       ngx_http_llm_ewma_get(e, now), name, e->samples);
}
