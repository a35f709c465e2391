
/*
 * llm_status: the gateway's state, in three formats from one snapshot of
 * the zone. JSON (the default): routes as configured, every target the
 * zone knows (a glob route's targets appear per model actually
 * requested) with its latency, load, counters and breaker, the metrics of
 * every route and target, and what every key, team and organisation spent
 * and has left. Prometheus' text format (?format=prometheus). And a page
 * for people (?format=html) that draws itself from the JSON.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_metrics.h"
#include "ngx_http_llm_page.h"


typedef enum {
    NGX_HTTP_LLM_STATUS_JSON = 0,
    NGX_HTTP_LLM_STATUS_PROMETHEUS,
    NGX_HTTP_LLM_STATUS_HTML
} ngx_http_llm_status_format_e;


static ngx_int_t ngx_http_llm_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_status_format(ngx_str_t *value);
static void ngx_http_llm_status_json(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_json_targets(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_json_series(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_json_guards(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_json_spend(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_json_ewma(ngx_http_llm_jbuf_t *t, const char *name,
    ngx_http_llm_ewma_t *e, ngx_msec_t now);
static ngx_int_t ngx_http_llm_no_store(ngx_http_request_t *r);


static const char  *ngx_http_llm_strategy_names[] = {
    "ordered", "weighted", "latency", "cost"
};

static ngx_str_t  ngx_http_llm_status_types[] = {
    ngx_string("application/json"),
    ngx_string("text/plain; version=0.0.4; charset=utf-8"),
    ngx_string("text/html; charset=utf-8")
};


/* llm_status [json|prometheus|html]: the format without ?format= */

char *
ngx_http_llm_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ngx_int_t                  format;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        format = ngx_http_llm_status_format(&value[1]);

        if (format == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown llm_status format \"%V\": json, "
                               "prometheus or html", &value[1]);
            return NGX_CONF_ERROR;
        }

        llcf->status_format = format;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llm_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_status_format(ngx_str_t *value)
{
    if (value->len == 4 && ngx_strncmp(value->data, "json", 4) == 0) {
        return NGX_HTTP_LLM_STATUS_JSON;
    }

    if (value->len == 10 && ngx_strncmp(value->data, "prometheus", 10) == 0)
    {
        return NGX_HTTP_LLM_STATUS_PROMETHEUS;
    }

    if (value->len == 4 && ngx_strncmp(value->data, "html", 4) == 0) {
        return NGX_HTTP_LLM_STATUS_HTML;
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_llm_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                 format;
    ngx_str_t                 arg, body;
    ngx_http_llm_jbuf_t       t;
    ngx_http_llm_snapshot_t   snap;
    ngx_http_llm_loc_conf_t  *llcf;

    static ngx_str_t  unknown = ngx_string("Unknown format: json, "
                                           "prometheus or html.");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    format = llcf->status_format;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {
        format = ngx_http_llm_status_format(&arg);

        if (format == NGX_ERROR) {
            if (ngx_http_llm_error_json(r->pool, NGX_HTTP_BAD_REQUEST, NULL,
                                        "format", &unknown, &body)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_llm_send_json(r, NGX_HTTP_BAD_REQUEST, &body);
        }
    }

    if (format == NGX_HTTP_LLM_STATUS_HTML) {
        body = ngx_http_llm_status_page;

    } else {
        if (ngx_http_llm_metrics_snapshot(r, &snap) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_llm_jbuf_init(&t, r->pool, 16384);

        if (format == NGX_HTTP_LLM_STATUS_PROMETHEUS) {
            ngx_http_llm_metrics_prometheus(r, &snap, &t);

        } else {
            ngx_http_llm_status_json(r, &snap, &t);
        }

        if (t.error) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = t.start;
        body.len = ngx_http_llm_jbuf_len(&t);
    }

    if (ngx_http_llm_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llm_send_body(r, NGX_HTTP_OK,
                                  &ngx_http_llm_status_types[format], &body);
}


static void
ngx_http_llm_status_json(ngx_http_request_t *r, ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t)
{
    ngx_uint_t                  i, j;
    ngx_http_llm_route_t      **rr;
    ngx_http_llm_target_t      *target;
    ngx_http_llm_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    ngx_http_llm_text(t, "{\"version\":\"" NGX_HTTP_LLM_VERSION "\","
                      "\"time\":%T,\"routes\":[", snap->time);

    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        ngx_http_llm_text(t, "%s{\"name\":", i ? "," : "");
        ngx_http_llm_jbuf_qstr(t, &rr[i]->name);
        ngx_http_llm_text(t, ",\"strategy\":\"%s\",\"attempts\":%ui,"
                          "\"retries\":%ui,\"deadline_ms\":%M,\"targets\":[",
                          ngx_http_llm_strategy_names[rr[i]->strategy],
                          rr[i]->attempts, rr[i]->retries, rr[i]->deadline);

        target = rr[i]->targets.elts;

        for (j = 0; j < rr[i]->targets.nelts; j++) {
            ngx_http_llm_text(t, "%s{\"provider\":", j ? "," : "");
            ngx_http_llm_jbuf_qstr(t, &target[j].provider->name);
            ngx_http_llm_text(t, ",\"model\":");
            ngx_http_llm_jbuf_qstr(t, &target[j].model);
            ngx_http_llm_text(t, ",\"weight\":%ui,\"enabled\":%s}",
                              target[j].weight,
                              target[j].provider->disabled ? "false"
                                                           : "true");
        }

        ngx_http_llm_text(t, "]}");
    }

    ngx_http_llm_text(t, "],\"targets\":");
    ngx_http_llm_json_targets(snap, t);
    ngx_http_llm_text(t, ",\"series\":");
    ngx_http_llm_json_series(snap, t);
    ngx_http_llm_text(t, ",\"spend\":");
    ngx_http_llm_json_spend(snap, t);
    ngx_http_llm_text(t, ",\"guards\":");
    ngx_http_llm_json_guards(snap, t);

    if (snap->redis_up == NGX_DECLINED) {
        ngx_http_llm_text(t, ",\"redis\":null}\n");

    } else {
        ngx_http_llm_text(t, ",\"redis\":{\"up\":%s,\"last_sync_age_ms\":%M}}"
                          "\n", snap->redis_up ? "true" : "false",
                          snap->redis_age);
    }
}


static void
ngx_http_llm_json_targets(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t)
{
    ngx_msec_t                   available;
    ngx_uint_t                   i;
    ngx_http_llm_stats_t        *st;
    ngx_http_llm_target_snap_t  *ts;

    ts = snap->targets.elts;

    ngx_http_llm_text(t, "[");

    for (i = 0; i < snap->targets.nelts; i++) {
        st = &ts[i].stats;

        available = ngx_http_llm_available_at(st);
        available = ((ngx_msec_int_t) (available - snap->now) > 0)
                    ? available - snap->now : 0;

        ngx_http_llm_text(t, "%s{\"provider\":", i ? "," : "");
        ngx_http_llm_jbuf_qstr(t, &ts[i].provider);
        ngx_http_llm_text(t, ",\"model\":");
        ngx_http_llm_jbuf_qstr(t, &ts[i].model);
        ngx_http_llm_text(t, ",\"state\":\"%s\",\"available_in_ms\":%M,"
                          "\"inflight\":%uD,\"requests\":%uL,"
                          "\"successes\":%uL,\"failures\":%uL,"
                          "\"rate_limited\":%uL,\"timeouts\":%uL,"
                          "\"last_status\":%uD,",
                          ngx_http_llm_breaker_name(st, snap->now), available,
                          st->inflight, st->requests, st->successes,
                          st->failures, st->rate_limited, st->timeouts,
                          (uint32_t) st->last_status);

        ngx_http_llm_json_ewma(t, "ttfb", &st->ttfb, snap->now);
        ngx_http_llm_text(t, ",");
        ngx_http_llm_json_ewma(t, "latency", &st->latency, snap->now);
        ngx_http_llm_text(t, ",");
        ngx_http_llm_json_ewma(t, "per_token", &st->per_token, snap->now);
        ngx_http_llm_text(t, "}");
    }

    ngx_http_llm_text(t, "]");
}


static void
ngx_http_llm_json_series(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t)
{
    char                        *sep;
    uint64_t                     failovers, count;
    ngx_uint_t                   i, c;
    ngx_http_llm_series_t       *s;
    ngx_http_llm_series_snap_t  *ss;

    ss = snap->series.elts;

    ngx_http_llm_text(t, "[");

    for (i = 0; i < snap->series.nelts; i++) {
        s = &ss[i].series;

        ngx_http_llm_text(t, "%s{\"route\":", i ? "," : "");
        ngx_http_llm_jbuf_qstr(t, &ss[i].route);
        ngx_http_llm_text(t, ",\"provider\":");
        ngx_http_llm_jbuf_qstr(t, &ss[i].provider);
        ngx_http_llm_text(t, ",\"model\":");
        ngx_http_llm_jbuf_qstr(t, &ss[i].model);
        ngx_http_llm_text(t, ",\"requests\":{\"2xx\":%uL,\"4xx\":%uL,"
                          "\"5xx\":%uL,\"other\":%uL},"
                          "\"prompt_tokens\":%uL,\"completion_tokens\":%uL,"
                          "\"cached_tokens\":%uL,\"cache_write_tokens\":%uL,"
                          "\"cost_usd\":",
                          s->requests[2], s->requests[4], s->requests[5],
                          s->requests[0] + s->requests[1] + s->requests[3],
                          s->used.tokens[0], s->used.tokens[1],
                          s->used.tokens[2], s->used.tokens[3]);
        ngx_http_llm_text_usd(t, s->used.cost);
        for (c = 0, failovers = 0; c < NGX_HTTP_LLM_NCAUSES; c++) {
            failovers += s->causes[c];
        }

        ngx_http_llm_text(t, ",\"cache\":{\"hit\":%uL,\"miss\":%uL,"
                          "\"bypass\":%uL},\"failovers\":%uL,"
                          "\"failover_causes\":{",
                          s->cache[0], s->cache[1], s->cache[2], failovers);

        for (c = 0, sep = ""; c < NGX_HTTP_LLM_NCAUSES; c++) {
            if (s->causes[c]) {
                ngx_http_llm_text(t, "%s\"%s\":%uL", sep,
                                  ngx_http_llm_failover_causes[c],
                                  s->causes[c]);
                sep = ",";
            }
        }

        ngx_http_llm_text(t, "},\"ttfb_ms_avg\":");

        count = ngx_http_llm_hist_count(s, NGX_HTTP_LLM_HIST_TTFB);

        if (count) {
            ngx_http_llm_text(t, "%.3f",
                              (double) s->sum[NGX_HTTP_LLM_HIST_TTFB]
                              / count / 1000);

        } else {
            ngx_http_llm_text(t, "null");
        }

        ngx_http_llm_text(t, ",\"overhead_us_avg\":");

        count = ngx_http_llm_hist_count(s, NGX_HTTP_LLM_HIST_OVERHEAD);

        if (count) {
            ngx_http_llm_text(t, "%.1f",
                              (double) s->sum[NGX_HTTP_LLM_HIST_OVERHEAD]
                              / count);

        } else {
            ngx_http_llm_text(t, "null");
        }

        ngx_http_llm_text(t, "}");
    }

    ngx_http_llm_text(t, "]");
}


/* each policy's rules and how many requests each matched, and where */

static void
ngx_http_llm_json_guards(ngx_http_llm_snapshot_t *snap, ngx_http_llm_jbuf_t *t)
{
    ngx_uint_t                  i, k;
    ngx_http_llm_guard_rule_t  *rules;
    ngx_http_llm_guard_snap_t  *gs;

    gs = snap->guards.elts;

    ngx_http_llm_text(t, "[");

    for (i = 0; i < snap->guards.nelts; i++) {
        ngx_http_llm_text(t, "%s{\"policy\":", i ? "," : "");
        ngx_http_llm_jbuf_qstr(t, &gs[i].guard->name);
        ngx_http_llm_text(t, ",\"rules\":[");

        rules = gs[i].guard->rules.elts;

        for (k = 0; k < gs[i].guard->rules.nelts; k++) {
            ngx_http_llm_text(t, "%s{\"rule\":", k ? "," : "");
            ngx_http_llm_jbuf_qstr(t, &rules[k].name);
            ngx_http_llm_text(t, ",\"action\":\"%V\",\"request_hits\":%uL,"
                              "\"response_hits\":%uL}",
                              &ngx_http_llm_guard_actions[rules[k].action],
                              gs[i].hits[0][k],
                              gs[i].hits[1][k]);
        }

        ngx_http_llm_text(t, "]}");
    }

    ngx_http_llm_text(t, "]");
}


static void
ngx_http_llm_json_spend(ngx_http_llm_snapshot_t *snap, ngx_http_llm_jbuf_t *t)
{
    ngx_uint_t                  i, k;
    ngx_http_llm_budget_t      *b;
    ngx_http_llm_spend_snap_t  *sp;

    sp = snap->spend.elts;

    ngx_http_llm_text(t, "[");

    for (i = 0; i < snap->spend.nelts; i++) {
        ngx_http_llm_text(t, "%s{\"scope\":", i ? "," : "");
        ngx_http_llm_jbuf_qstr(t, &sp[i].scope);
        ngx_http_llm_text(t, ",\"name\":");
        ngx_http_llm_jbuf_qstr(t, &sp[i].name);
        ngx_http_llm_text(t, ",\"requests\":%uL,\"prompt_tokens\":%uL,"
                          "\"completion_tokens\":%uL,\"cached_tokens\":%uL,"
                          "\"cost_usd\":",
                          sp[i].spend.requests, sp[i].spend.used.tokens[0],
                          sp[i].spend.used.tokens[1],
                          sp[i].spend.used.tokens[2]);
        ngx_http_llm_text_usd(t, sp[i].spend.used.cost);
        ngx_http_llm_text(t, ",\"budgets\":[");

        for (k = 0; sp[i].entity && k < sp[i].entity->nbudgets; k++) {
            b = &sp[i].entity->budgets[k];

            ngx_http_llm_text(t, "%s{\"unit\":\"%s\",\"period\":\"%s\","
                              "\"limit\":", k ? "," : "",
                              b->unit == NGX_HTTP_LLM_USD ? "usd" : "tokens",
                              ngx_http_llm_period_names[b->period]);

            if (b->unit == NGX_HTTP_LLM_USD) {
                ngx_http_llm_text_usd(t, b->amount);
                ngx_http_llm_text(t, ",\"remaining\":");
                ngx_http_llm_text_usd(t, ngx_http_llm_budget_remaining(
                                             &sp[i], k, snap->time));

            } else {
                ngx_http_llm_text(t, "%L,\"remaining\":%L", b->amount,
                                  ngx_http_llm_budget_remaining(&sp[i], k,
                                                                snap->time));
            }

            ngx_http_llm_text(t, "}");
        }

        ngx_http_llm_text(t, "]}");
    }

    ngx_http_llm_text(t, "]");
}


/* reports are of now: never cached by browsers or proxies */

static ngx_int_t
ngx_http_llm_no_store(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return NGX_OK;
}


/* "ttfb_ms":123.456,"ttfb_samples":7 (null when never sampled) */

static void
ngx_http_llm_json_ewma(ngx_http_llm_jbuf_t *t, const char *name,
    ngx_http_llm_ewma_t *e, ngx_msec_t now)
{
    if (e->samples == 0) {
        ngx_http_llm_text(t, "\"%s_ms\":null,\"%s_samples\":0", name, name);
        return;
    }

    ngx_http_llm_text(t, "\"%s_ms\":%.3f,\"%s_samples\":%uD", name,
                      ngx_http_llm_ewma_get(e, now), name, e->samples);
}

