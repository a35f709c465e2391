
/*
 * Metrics: every finished request counted in the llm_zone, per route and
 * target and per key, team and organisation; a snapshot of the zone for
 * the status handler, and its Prometheus exposition.
 */


#ifndef _NGX_HTTP_LLM_METRICS_H_INCLUDED_
#define _NGX_HTTP_LLM_METRICS_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json.h"
#include "ngx_http_llm_health.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_guard.h"


#define NGX_HTTP_LLM_MAX_BUCKETS   12

/* the three histograms' buckets, +Inf included: 9 + 11 + 10 */
#define NGX_HTTP_LLM_NBUCKETS      30


typedef enum {
    NGX_HTTP_LLM_HIST_TTFB = 0,
    NGX_HTTP_LLM_HIST_DURATION,
    NGX_HTTP_LLM_HIST_OVERHEAD,
    NGX_HTTP_LLM_NHIST
} ngx_http_llm_histogram_e;


/* causes of failovers: the bits of NGX_HTTP_LLM_FO_*, in order */
#define NGX_HTTP_LLM_NCAUSES  8

extern const char  *ngx_http_llm_failover_causes[];


/* what answers used */
typedef struct {
    /* prompt, completion, cached (of prompt), cache_write (of prompt) */
    uint64_t                       tokens[4];
    int64_t                        cost;        /* nano-USD */
} ngx_http_llm_used_t;


/*
 * What went through a route to a target. What every request writes comes
 * first, in the fewest cache lines (the zone aligns a payload to one):
 * with thousands of series, each line is a miss. A histogram's count is
 * the sum of its buckets (ngx_http_llm_hist_count()).
 */
typedef struct {
    uint64_t                       requests[6]; /* none, 1xx .. 5xx */
    ngx_http_llm_used_t            used;
    uint64_t                       sum[NGX_HTTP_LLM_NHIST]; /* microseconds */
    /* each histogram's buckets in turn, its last +Inf (metrics.c) */
    uint64_t                       buckets[NGX_HTTP_LLM_NBUCKETS];
    uint64_t                       cache[3];    /* hit, miss, bypass */
    /* failovers of attempts to this target, by cause */
    uint64_t                       causes[NGX_HTTP_LLM_NCAUSES];
} ngx_http_llm_series_t;


/* what a key, team or organisation used since the zone was created */
typedef struct {
    uint64_t                       requests;
    ngx_http_llm_used_t            used;
} ngx_http_llm_spend_t;


typedef struct {
    ngx_str_t                      route;
    ngx_str_t                      provider;
    ngx_str_t                      model;
    ngx_http_llm_series_t          series;
} ngx_http_llm_series_snap_t;


typedef struct {
    ngx_str_t                      provider;
    ngx_str_t                      model;
    ngx_http_llm_stats_t           stats;
} ngx_http_llm_target_snap_t;


typedef struct {
    ngx_str_t                      scope;       /* key, team, org */
    ngx_str_t                      name;
    ngx_http_llm_spend_t           spend;
    ngx_http_llm_entity_t         *entity;      /* when configured */
    ngx_http_llm_account_t         account;     /* its meters, if any */
    unsigned                       metered:1;
} ngx_http_llm_spend_snap_t;


/* a guard policy's hits: by where (request, answer) and rule */
typedef uint64_t  ngx_http_llm_guard_hits_t[2][NGX_HTTP_LLM_GUARD_MAX_RULES];


typedef struct {
    ngx_http_llm_guard_t          *guard;
    ngx_http_llm_guard_hits_t      hits;
} ngx_http_llm_guard_snap_t;


/* the zone, copied under its lock: reports are written without it */
typedef struct {
    ngx_array_t                    series;      /* series_snap */
    ngx_array_t                    targets;     /* target_snap */
    ngx_array_t                    spend;       /* spend_snap */
    ngx_array_t                    guards;      /* guard_snap */
    ngx_msec_t                     now;
    time_t                         time;
    ngx_int_t                      redis_up;    /* NGX_DECLINED: no Redis */
    ngx_msec_t                     redis_age;   /* since its last sync */
} ngx_http_llm_snapshot_t;


/* what a finished request counts, found before the zone's lock */
typedef struct {
    ngx_str_t                      name;        /* of its series */
    uint32_t                       hash;
    ngx_http_llm_node_ref_t       *ref;
    unsigned                       guard:1;     /* guard rules it hit */
    unsigned                       series:1;    /* a completion, named */
} ngx_http_llm_metrics_rec_t;


void ngx_http_llm_metrics_failover(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t reason);

/*
 * a finished request goes into its series and its spenders' totals:
 * prepared without the lock (0: nothing to count), recorded with it
 */
ngx_uint_t ngx_http_llm_metrics_prepare(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_metrics_rec_t *rec);
void ngx_http_llm_metrics_record_locked(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_metrics_rec_t *rec);

ngx_int_t ngx_http_llm_metrics_snapshot(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap);

/* what remains of an entity's budget k in its current window */
int64_t ngx_http_llm_budget_remaining(ngx_http_llm_spend_snap_t *s,
    ngx_uint_t k, time_t now);

/* the Prometheus text exposition (format 0.0.4) */
void ngx_http_llm_metrics_prometheus(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_jbuf_t *t);

/* the observations of a series' histogram (NGX_HTTP_LLM_HIST_*) */
uint64_t ngx_http_llm_hist_count(ngx_http_llm_series_t *s, ngx_uint_t which);

/* nano-dollars written as a decimal number of dollars, exactly */
void ngx_http_llm_text_usd(ngx_http_llm_jbuf_t *t, int64_t nano);


#endif /* _NGX_HTTP_LLM_METRICS_H_INCLUDED_ */
