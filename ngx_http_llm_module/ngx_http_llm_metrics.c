
/*
 * Metrics: every finished request counted in its route and target's
 * series and its spenders' totals; reports from one zone snapshot.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_metrics.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_redis.h"


#define ngx_http_llm_series_labels(t, s)                                    \
    ngx_http_llm_labels(t, "route", &(s)->route, "provider", &(s)->provider, \
                        "model", &(s)->model)

#define ngx_http_llm_target_labels(t, s)                                    \
    ngx_http_llm_labels(t, "provider", &(s)->provider, "model", &(s)->model, \
                        NULL, NULL)

#define ngx_http_llm_spend_labels(t, s)                                     \
    ngx_http_llm_labels(t, "scope", &(s)->scope, "name", &(s)->name,         \
                        NULL, NULL)


/* walks of the zone a snapshot makes at most after the one that counts */
#define NGX_HTTP_LLM_SNAPSHOT_TRIES  3

/* series, targets, spenders */
#define NGX_HTTP_LLM_SNAP_KINDS      3

#define ngx_http_llm_snapshot_array(snap, k)                                \
    ((k) == 0 ? &(snap)->series                                             \
     : (k) == 1 ? &(snap)->targets : &(snap)->spend)


/* what a snapshot holds: entries of each kind, and their names' bytes */
typedef struct {
    ngx_uint_t                     n[NGX_HTTP_LLM_SNAP_KINDS];
    size_t                         bytes;
} ngx_http_llm_snap_size_t;


/* the buffer the names are copied to */
typedef struct {
    u_char                        *start;
    u_char                        *pos;
    u_char                        *end;
} ngx_http_llm_snap_names_t;


/*
 * bucket bounds in microseconds, with their labels; +Inf follows. A
 * series' buckets of a histogram begin at "first", after the previous
 * histogram's +Inf.
 */
typedef struct {
    const char                    *name;
    const char                    *help;
    ngx_uint_t                     n;
    ngx_uint_t                     first;
    uint64_t                       bound[NGX_HTTP_LLM_MAX_BUCKETS - 1];
    const char                    *label[NGX_HTTP_LLM_MAX_BUCKETS - 1];
} ngx_http_llm_buckets_t;


static ngx_int_t ngx_http_llm_series(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *name, uint32_t *hash,
    ngx_http_llm_node_ref_t **ref);
static ngx_int_t ngx_http_llm_series_name(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *name);
static void ngx_http_llm_metrics_guard(ngx_http_llm_zone_t *zone,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_snapshot_guards(ngx_http_request_t *r,
    ngx_http_llm_main_conf_t *lmcf, ngx_http_llm_snapshot_t *snap);
static void ngx_http_llm_prometheus_guards(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t);
static void ngx_http_llm_observe(ngx_http_llm_series_t *s,
    ngx_uint_t which, uint64_t usec);
static void ngx_http_llm_spend(ngx_http_llm_zone_t *zone,
    ngx_http_llm_entity_t *e, ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_add_used(ngx_http_llm_used_t *used,
    ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_prometheus_used(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t, ngx_uint_t spenders);
static ngx_int_t ngx_http_llm_snapshot_room(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_snap_size_t *size,
    ngx_http_llm_snap_names_t *names);
static ngx_int_t ngx_http_llm_snapshot_copy(ngx_http_request_t *r,
    ngx_http_llm_zone_t *zone, ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_snap_size_t *size);
static ngx_uint_t ngx_http_llm_snapshot_walk(ngx_http_llm_zone_t *zone,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_snap_names_t *names,
    ngx_http_llm_snap_size_t *size);
static ngx_int_t ngx_http_llm_split_name(u_char **buf, u_char *end,
    ngx_http_llm_node_t *ln, u_char sep, ngx_str_t *part, ngx_uint_t n);
static ngx_http_llm_entity_t *ngx_http_llm_configured(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *scope, ngx_str_t *name);
static void ngx_http_llm_label(ngx_http_llm_jbuf_t *t, ngx_str_t *value);
static void ngx_http_llm_labels(ngx_http_llm_jbuf_t *t, const char *a,
    ngx_str_t *va, const char *b, ngx_str_t *vb, const char *c,
    ngx_str_t *vc);
static void ngx_http_llm_help(ngx_http_llm_jbuf_t *t, const char *name,
    const char *type, const char *help);


/* n bounds and +Inf each: the last "first" + n + 1 is NGX_HTTP_LLM_NBUCKETS */

static ngx_http_llm_buckets_t  ngx_http_llm_buckets[NGX_HTTP_LLM_NHIST] = {

    { "llm_time_to_first_byte_seconds",
      "Time from the start of the attempt that answered to the first byte "
      "of its response (the first event of a stream).",
      8, 0,
      { 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 },
      { "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10" } },

    { "llm_request_duration_seconds",
      "Time from the parsed request to the end of its response.",
      10, 9,
      { 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
        30000000, 60000000, 120000000 },
      { "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120" } },

    { "llm_gateway_overhead_seconds",
      "Time the gateway itself spent on a request: parsing, routing, "
      "accounting and rewriting, without waiting for anyone.",
      9, 20,
      { 10, 25, 50, 100, 250, 500, 1000, 2500, 10000 },
      { "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005",
        "0.001", "0.0025", "0.01" } }
};


static const char  *ngx_http_llm_status_classes[] = {
    "none", "1xx", "2xx", "3xx", "4xx", "5xx"
};

static const char  *ngx_http_llm_cache_results[] = { "hit", "miss", "bypass" };

/* as the route's "failover" directive names them */
const char  *ngx_http_llm_failover_causes[] = {
    "error", "timeout", "http_429", "http_500", "http_502", "http_503",
    "http_504", "http_529"
};

static const char  *ngx_http_llm_breaker_states[] = {
    "closed", "open", "half_open", "throttled"
};


/*
 * the series of the current attempt's target, "route\0provider\0model",
 * and its hash: the target's own when its model is fixed or the request's
 * is one past max_models (with the target's ref to its node), else made
 * for the request (no ref)
 */

static ngx_int_t
ngx_http_llm_series(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_str_t *name, uint32_t *hash, ngx_http_llm_node_ref_t **ref)
{
    ngx_http_llm_target_t  *t;

    t = ctx->target;

    if (t && ctx->route && ngx_http_llm_target_in(ctx->route, t)
        && (t->stats_name.len || ctx->other_model))
    {
        *name = t->series_name;
        *hash = t->series_hash;
        *ref = &t->series_ref;
        return NGX_OK;
    }

    *ref = NULL;

    if (ngx_http_llm_series_name(r, ctx, name) != NGX_OK) {
        return NGX_ERROR;
    }

    *hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_METRICS, name);

    return NGX_OK;
}


/* the same, made: "route\0provider\0model" */

static ngx_int_t
ngx_http_llm_series_name(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_str_t *name)
{
    u_char     *p;
    ngx_str_t   route, provider, model;

    /* never NULL: they are copied */
    ngx_str_set(&route, "");
    ngx_str_set(&provider, "");
    ngx_str_set(&model, "");

    if (ctx->route) {
        route = ctx->route->name;
    }

    if (ctx->target) {
        provider = ctx->target->provider->name;

        if (ctx->other_model) {
            ngx_str_set(&model, NGX_HTTP_LLM_OTHER_MODEL);

        } else if (ctx->target_model.len) {
            model = ctx->target_model;
        }
    }

    name->len = route.len + provider.len + model.len + 2;
    name->data = ngx_pnalloc(r->pool, name->len);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(name->data, route.data, route.len);
    *p++ = '\0';
    p = ngx_cpymem(p, provider.data, provider.len);
    *p++ = '\0';
    ngx_memcpy(p, model.data, model.len);

    return NGX_OK;
}


/*
 * An attempt failed and another follows: the failover counts for the
 * target that failed, by its cause (reason: one NGX_HTTP_LLM_FO_* bit).
 */

void
ngx_http_llm_metrics_failover(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_uint_t reason)
{
    uint32_t                   hash;
    ngx_str_t                  name;
    ngx_uint_t                 cause;
    ngx_http_llm_node_t       *node;
    ngx_http_llm_node_ref_t   *ref;
    ngx_http_llm_series_t     *s;
    ngx_http_llm_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (lmcf->zone == NULL
        || ngx_http_llm_series(r, ctx, &name, &hash, &ref) != NGX_OK)
    {
        return;
    }

    for (cause = 0; cause < NGX_HTTP_LLM_NCAUSES - 1; cause++) {
        if (reason & ((ngx_uint_t) 1 << cause)) {
            break;
        }
    }

    ngx_http_llm_zone_lock(lmcf->zone);

    node = ngx_http_llm_node_by_ref(lmcf->zone, ref,
                                    NGX_HTTP_LLM_NODE_METRICS, &name, hash,
                                    sizeof(ngx_http_llm_series_t), 1);

    if (node) {
        s = ngx_http_llm_node_payload(node,
                                      sizeof(ngx_http_llm_series_t));
        s->causes[cause]++;
    }

    ngx_http_llm_zone_unlock(lmcf->zone);
}


/*
 * Before the zone's lock: what a finished request counts (guard rules it
 * hit; a completion in its series, whose name may be made here, and its
 * spenders' totals). 0: nothing.
 */

ngx_uint_t
ngx_http_llm_metrics_prepare(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_metrics_rec_t *rec)
{
    ngx_http_llm_main_conf_t  *lmcf;

    rec->guard = 0;
    rec->series = 0;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (lmcf->zone == NULL) {
        return 0;
    }

    /* refused requests too: they are not completions */
    rec->guard = (ctx->guard_hits[0] | ctx->guard_hits[1]) && ctx->guard;

    if (ngx_http_llm_completion(ctx)
        && ngx_http_llm_series(r, ctx, &rec->name, &rec->hash, &rec->ref)
           == NGX_OK)
    {
        rec->series = 1;
    }

    return rec->guard || rec->series;
}


/* with the lock of lmcf->zone held: what ngx_http_llm_metrics_prepare()
   found is counted */

void
ngx_http_llm_metrics_record_locked(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_metrics_rec_t *rec)
{
    ngx_uint_t                 status;
    ngx_http_llm_node_t       *node;
    ngx_http_llm_series_t     *s;
    ngx_http_llm_entity_t     *e;
    ngx_http_llm_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (rec->guard) {
        ngx_http_llm_metrics_guard(lmcf->zone, ctx);
    }

    if (!rec->series) {
        return;
    }

    status = r->headers_out.status;
    status = (status >= 100 && status < 600) ? status / 100 : 0;

    node = ngx_http_llm_node_by_ref(lmcf->zone, rec->ref,
                                    NGX_HTTP_LLM_NODE_METRICS, &rec->name,
                                    rec->hash, sizeof(ngx_http_llm_series_t),
                                    1);

    if (node) {
        s = ngx_http_llm_node_payload(node, sizeof(ngx_http_llm_series_t));

        s->requests[status]++;
        ngx_http_llm_add_used(&s->used, ctx);

        if (ctx->cache_decided) {
            s->cache[ctx->cache_hit ? 0
                     : (ctx->cache_eligible && !ctx->cache_no_lookup) ? 1
                     : 2]++;
        }

        if (ctx->attempts && ctx->ttfb != (ngx_msec_t) -1) {
            ngx_http_llm_observe(s, NGX_HTTP_LLM_HIST_TTFB,
                                 (uint64_t) ctx->ttfb * 1000);
        }

        if (ctx->route) {
            ngx_http_llm_observe(s, NGX_HTTP_LLM_HIST_DURATION,
                                 (uint64_t) (ngx_current_msec - ctx->start)
                                 * 1000);
        }

        ngx_http_llm_observe(s, NGX_HTTP_LLM_HIST_OVERHEAD,
                             ctx->overhead);
    }

    for (e = ctx->key; e; e = e->parent) {
        ngx_http_llm_spend(lmcf->zone, e, ctx);
    }
}


/* with the lock held */

static void
ngx_http_llm_metrics_guard(ngx_http_llm_zone_t *zone, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t                  w, i;
    ngx_http_llm_node_t        *node;
    ngx_http_llm_guard_t       *guard;
    ngx_http_llm_guard_hits_t  *hits;

    guard = ctx->guard;

    node = ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_GUARD, &guard->name,
                             ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_GUARD,
                                                    &guard->name),
                             sizeof(ngx_http_llm_guard_hits_t), 1);
    if (node) {
        hits = node->data;

        for (w = 0; w < 2; w++) {
            for (i = 0; i < guard->rules.nelts; i++) {
                if (ctx->guard_hits[w] & ((uint64_t) 1 << i)) {
                    (*hits)[w][i]++;
                }
            }
        }
    }
}


static void
ngx_http_llm_observe(ngx_http_llm_series_t *s, ngx_uint_t which,
    uint64_t usec)
{
    ngx_uint_t               i;
    ngx_http_llm_buckets_t  *b;

    b = &ngx_http_llm_buckets[which];

    for (i = 0; i < b->n && usec > b->bound[i]; i++) { /* void */ }

    s->buckets[b->first + i]++;
    s->sum[which] += usec;
}


uint64_t
ngx_http_llm_hist_count(ngx_http_llm_series_t *s, ngx_uint_t which)
{
    uint64_t                 count;
    ngx_uint_t               i;
    ngx_http_llm_buckets_t  *b;

    b = &ngx_http_llm_buckets[which];
    count = 0;

    for (i = 0; i <= b->n; i++) {
        count += s->buckets[b->first + i];
    }

    return count;
}


/* with the lock held */

static void
ngx_http_llm_spend(ngx_http_llm_zone_t *zone, ngx_http_llm_entity_t *e,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_node_t   *node;
    ngx_http_llm_spend_t  *s;

    node = ngx_http_llm_node_by_ref(zone, &e->spend_ref,
                                    NGX_HTTP_LLM_NODE_SPEND, &e->node_name,
                                    e->spend_hash,
                                    sizeof(ngx_http_llm_spend_t), 1);
    if (node == NULL) {
        return;
    }

    s = ngx_http_llm_node_payload(node, sizeof(ngx_http_llm_spend_t));

    s->requests++;
    ngx_http_llm_add_used(&s->used, ctx);
}


static void
ngx_http_llm_add_used(ngx_http_llm_used_t *used, ngx_http_llm_ctx_t *ctx)
{
    used->tokens[0] += ctx->usage.prompt;
    used->tokens[1] += ctx->usage.completion;
    used->tokens[2] += ctx->usage.cached;
    used->tokens[3] += ctx->usage.cache_write;
    used->cost += ctx->cost;
}


/*
 * Nothing is allocated under the zone's lock, and it is held for one walk
 * of the zone at a time: a walk counts the entries, the copy is made
 * where they fit, and a walk that met more entries than there was room
 * for (created in between, by other workers) is tried again with room for
 * them, a few times at most, so that no entry is left out of the
 * snapshot. The rest (configured entities) is looked up without the lock.
 */

ngx_int_t
ngx_http_llm_metrics_snapshot(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, tries;
    ngx_http_llm_main_conf_t   *lmcf;
    ngx_http_llm_spend_snap_t  *sp;
    ngx_http_llm_snap_size_t    size;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    snap->now = ngx_current_msec;
    snap->time = ngx_time();
    snap->redis_up = ngx_http_llm_redis_health(&snap->redis_age);

    ngx_memzero(&size, sizeof(ngx_http_llm_snap_size_t));
    ngx_memzero(&snap->series, sizeof(ngx_array_t));
    ngx_memzero(&snap->targets, sizeof(ngx_array_t));
    ngx_memzero(&snap->spend, sizeof(ngx_array_t));

    if (ngx_array_init(&snap->guards, r->pool, 1,
                       sizeof(ngx_http_llm_guard_snap_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf->zone == NULL) {
        return ngx_http_llm_snapshot_room(r, snap, &size, NULL);
    }

    ngx_http_llm_zone_lock(lmcf->zone);
    ngx_http_llm_snapshot_walk(lmcf->zone, NULL, NULL, &size);
    ngx_http_llm_zone_unlock(lmcf->zone);

    for (tries = 1; /* void */; tries++) {
        rc = ngx_http_llm_snapshot_copy(r, lmcf->zone, snap, &size);

        if (rc != NGX_AGAIN) {
            break;
        }

        if (tries == NGX_HTTP_LLM_SNAPSHOT_TRIES) {
            /* the zone grows faster than it is copied: what fitted */
            break;
        }
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    sp = snap->spend.elts;

    for (i = 0; i < snap->spend.nelts; i++) {
        sp[i].entity = ngx_http_llm_configured(lmcf, &sp[i].scope,
                                               &sp[i].name);

        if (sp[i].entity == NULL || sp[i].entity->nbudgets == 0) {
            sp[i].metered = 0;
        }
    }

    return ngx_http_llm_snapshot_guards(r, lmcf, snap);
}


/* every configured policy's hits: zero until a rule fired */

static ngx_int_t
ngx_http_llm_snapshot_guards(ngx_http_request_t *r,
    ngx_http_llm_main_conf_t *lmcf, ngx_http_llm_snapshot_t *snap)
{
    ngx_uint_t                  i;
    ngx_http_llm_node_t        *node;
    ngx_http_llm_guard_t      **guards;
    ngx_http_llm_guard_snap_t  *gs;

    if (lmcf->guards.nelts == 0) {
        return NGX_OK;
    }

    guards = lmcf->guards.elts;

    gs = ngx_array_push_n(&snap->guards, lmcf->guards.nelts);
    if (gs == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(gs, lmcf->guards.nelts * sizeof(ngx_http_llm_guard_snap_t));

    ngx_http_llm_zone_lock(lmcf->zone);

    for (i = 0; i < lmcf->guards.nelts; i++) {
        gs[i].guard = guards[i];

        node = ngx_http_llm_node(lmcf->zone, NGX_HTTP_LLM_NODE_GUARD,
                                 &guards[i]->name,
                                 ngx_http_llm_node_hash(
                                     NGX_HTTP_LLM_NODE_GUARD,
                                     &guards[i]->name),
                                 sizeof(ngx_http_llm_guard_hits_t), 0);
        if (node) {
            ngx_memcpy(gs[i].hits, node->data,
                       sizeof(ngx_http_llm_guard_hits_t));
        }
    }

    ngx_http_llm_zone_unlock(lmcf->zone);

    return NGX_OK;
}


/* the arrays and the names' buffer, with room for size and some more */

static ngx_int_t
ngx_http_llm_snapshot_room(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_snap_size_t *size,
    ngx_http_llm_snap_names_t *names)
{
    size_t                    len;
    ngx_uint_t                k;
    ngx_array_t              *a;
    static size_t             elts[] = {
        sizeof(ngx_http_llm_series_snap_t),
        sizeof(ngx_http_llm_target_snap_t),
        sizeof(ngx_http_llm_spend_snap_t)
    };

    for (k = 0; k < NGX_HTTP_LLM_SNAP_KINDS; k++) {
        a = ngx_http_llm_snapshot_array(snap, k);

        /* a try before this one: its memory goes back */
        if (a->elts) {
            ngx_pfree(r->pool, a->elts);
        }

        if (ngx_array_init(a, r->pool,
                           size->n[k] + size->n[k] / 8 + 8, elts[k])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (names == NULL) {
        return NGX_OK;
    }

    if (names->start) {
        ngx_pfree(r->pool, names->start);
    }

    len = size->bytes + size->bytes / 8 + 1024;

    names->start = ngx_pnalloc(r->pool, len);
    if (names->start == NULL) {
        return NGX_ERROR;
    }

    names->pos = names->start;
    names->end = names->start + len;

    return NGX_OK;
}


/* NGX_AGAIN: the zone held more than there was room for */

static ngx_int_t
ngx_http_llm_snapshot_copy(ngx_http_request_t *r, ngx_http_llm_zone_t *zone,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_snap_size_t *size)
{
    ngx_uint_t                  missed;
    ngx_http_llm_snap_names_t   names;

    ngx_memzero(&names, sizeof(ngx_http_llm_snap_names_t));

    if (ngx_http_llm_snapshot_room(r, snap, size, &names) != NGX_OK) {
        return NGX_ERROR;
    }

    /* counted again: a next try makes room for what this one met */
    ngx_memzero(size, sizeof(ngx_http_llm_snap_size_t));

    ngx_http_llm_zone_lock(zone);
    missed = ngx_http_llm_snapshot_walk(zone, snap, &names, size);
    ngx_http_llm_zone_unlock(zone);

    return missed ? NGX_AGAIN : NGX_OK;
}


/*
 * With the lock held: the zone's series, targets and spenders counted in
 * size, and copied into snap where there is room; how many did not fit.
 */

static ngx_uint_t
ngx_http_llm_snapshot_walk(ngx_http_llm_zone_t *zone,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_snap_names_t *names,
    ngx_http_llm_snap_size_t *size)
{
    void                        *elt;
    ngx_uint_t                   k, missed;
    ngx_str_t                    part[3], name;
    ngx_array_t                 *a;
    ngx_queue_t                 *q;
    ngx_http_llm_node_t         *ln, *counter;
    ngx_http_llm_series_snap_t  *ss;
    ngx_http_llm_target_snap_t  *ts;
    ngx_http_llm_spend_snap_t   *sp;

    /* the name's parts: route, provider, model; provider, model; key:a */
    static u_char                sep[] = { '\0', '\0', ':' };
    static ngx_uint_t            nparts[] = { 3, 2, 2 };

    missed = 0;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_llm_node_t, queue);

        switch (ln->kind) {

        case NGX_HTTP_LLM_NODE_METRICS:
            k = 0;
            break;

        case NGX_HTTP_LLM_NODE_TARGET:
            k = 1;
            break;

        case NGX_HTTP_LLM_NODE_SPEND:
            k = 2;
            break;

        default:
            continue;
        }

        size->n[k]++;
        size->bytes += ln->len;

        if (snap == NULL) {
            continue;
        }

        a = ngx_http_llm_snapshot_array(snap, k);

        if (a->nelts == a->nalloc
            || ngx_http_llm_split_name(&names->pos, names->end, ln, sep[k],
                                       part, nparts[k])
               != NGX_OK)
        {
            missed++;
            continue;
        }

        elt = ngx_array_push(a);                 /* no allocation: room */

        switch (k) {

        case 0:
            ss = elt;
            ss->route = part[0];
            ss->provider = part[1];
            ss->model = part[2];
            ss->series = *(ngx_http_llm_series_t *) ln->data;
            break;

        case 1:
            ts = elt;
            ts->provider = part[0];
            ts->model = part[1];
            ts->stats = *(ngx_http_llm_stats_t *) ln->data;
            break;

        default:
            sp = elt;
            sp->scope = part[0];
            sp->name = part[1];
            sp->spend = *(ngx_http_llm_spend_t *) ln->data;
            sp->entity = NULL;

            /* its meters have its name ("key:alice"); a report is no use
               of them, which would keep them from expiring */

            name.data = ln->name;
            name.len = ln->len;

            counter = ngx_http_llm_node_find(zone, NGX_HTTP_LLM_NODE_COUNTER,
                          &name,
                          ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_COUNTER,
                                                 &name));

            /* metered if configured with budgets, seen without the lock */
            sp->metered = (counter != NULL);

            if (counter) {
                sp->account = *(ngx_http_llm_account_t *) counter->data;
            }

            break;
        }
    }

    return missed;
}


static ngx_http_llm_entity_t *
ngx_http_llm_configured(ngx_http_llm_main_conf_t *lmcf, ngx_str_t *scope,
    ngx_str_t *name)
{
    ngx_uint_t               i, k;
    ngx_array_t             *list;
    ngx_http_llm_entity_t  **e;

    for (k = 0; k < 3; k++) {
        if (ngx_strlen(ngx_http_llm_entity_kinds[k]) == scope->len
            && ngx_strncmp(ngx_http_llm_entity_kinds[k], scope->data,
                           scope->len) == 0)
        {
            break;
        }
    }

    list = (k == NGX_HTTP_LLM_KEY) ? &lmcf->keys
           : (k == NGX_HTTP_LLM_TEAM) ? &lmcf->teams
           : (k == NGX_HTTP_LLM_ORG) ? &lmcf->orgs : NULL;

    if (list == NULL) {
        return NULL;
    }

    e = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (e[i]->name.len == name->len
            && ngx_strncmp(e[i]->name.data, name->data, name->len) == 0)
        {
            return e[i];
        }
    }

    return NULL;
}


/*
 * What remains of budget k, in nano-USD or tokens: settled use and
 * requests in flight here, and what other nodes reported, are taken off.
 */

int64_t
ngx_http_llm_budget_remaining(ngx_http_llm_spend_snap_t *s, ngx_uint_t k,
    time_t now)
{
    ngx_http_llm_budget_t  *b;
    ngx_http_llm_meter_t    m;

    b = &s->entity->budgets[k];

    if (!s->metered || k >= s->account.nbudgets
        || s->account.unit[k] != b->unit
        || s->account.period[k] != b->period)
    {
        return b->amount;
    }

    m = s->account.budgets[k];
    ngx_http_llm_meter_advance(&m, ngx_http_llm_window(b->period, now));

    return b->amount - m.used - m.fleet - m.reserved;
}


/*
 * A node's name cut at the first n - 1 separators into n parts, copied
 * into the pool: the copies outlive the lock.
 */

/* a node's name copied to *buf (within end) and cut into n parts */

static ngx_int_t
ngx_http_llm_split_name(u_char **buf, u_char *end, ngx_http_llm_node_t *ln,
    u_char sep, ngx_str_t *part, ngx_uint_t n)
{
    u_char      *p, *last, *stop;
    ngx_uint_t   i;

    p = *buf;

    if ((size_t) (end - p) < ln->len) {
        return NGX_DECLINED;
    }

    ngx_memcpy(p, ln->name, ln->len);
    last = p + ln->len;
    *buf = last;

    for (i = 0; i < n; i++) {
        stop = (i + 1 < n) ? ngx_strlchr(p, last, sep) : NULL;

        if (stop == NULL) {
            stop = last;
        }

        part[i].data = p;
        part[i].len = stop - p;

        p = (stop < last) ? stop + 1 : last;
    }

    return NGX_OK;
}


static void
ngx_http_llm_prometheus_guards(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t)
{
    ngx_uint_t                  i, k, w;
    ngx_http_llm_guard_rule_t  *rules;
    ngx_http_llm_guard_snap_t  *gs;

    static const char  *wheres[] = { "request", "response" };

    if (snap->guards.nelts == 0) {
        return;
    }

    ngx_http_llm_help(t, "llm_guard_hits_total", "counter",
                      "Requests in which a guard rule matched, by policy, "
                      "rule, action and where (request or response).");

    gs = snap->guards.elts;

    for (i = 0; i < snap->guards.nelts; i++) {
        rules = gs[i].guard->rules.elts;

        for (k = 0; k < gs[i].guard->rules.nelts; k++) {
            for (w = 0; w < 2; w++) {
                if (!(rules[k].where & (1 << w))) {
                    continue;
                }

                ngx_http_llm_text(t, "llm_guard_hits_total{policy=");
                ngx_http_llm_label(t, &gs[i].guard->name);
                ngx_http_llm_text(t, ",rule=");
                ngx_http_llm_label(t, &rules[k].name);
                ngx_http_llm_text(t, ",action=\"%V\",where=\"%s\"} %uL\n",
                                  &ngx_http_llm_guard_actions[rules[k].action],
                                  wheres[w],
                                  gs[i].hits[w][k]);
            }
        }
    }
}


void
ngx_http_llm_metrics_prometheus(ngx_http_request_t *r,
    ngx_http_llm_snapshot_t *snap, ngx_http_llm_jbuf_t *t)
{
    int64_t                      remaining;
    uint64_t                     cumulative;
    ngx_uint_t                   i, k, c;
    ngx_http_llm_ewma_t         *ewma;
    ngx_http_llm_budget_t       *b;
    ngx_http_llm_buckets_t      *bk;
    ngx_http_llm_series_t       *series;
    ngx_http_llm_spend_snap_t   *sp;
    ngx_http_llm_target_snap_t  *ts;
    ngx_http_llm_series_snap_t  *ss;

    static const char  *signals[] = { "ttfb", "latency", "per_token" };

    ss = snap->series.elts;
    ts = snap->targets.elts;
    sp = snap->spend.elts;

    ngx_http_llm_prometheus_guards(snap, t);

    /* by route and target */

    ngx_http_llm_help(t, "llm_requests_total", "counter",
                      "Requests by route, target and status class of the "
                      "response (none: the client went away first).");

    for (i = 0; i < snap->series.nelts; i++) {
        for (c = 0; c < 6; c++) {
            if (ss[i].series.requests[c] == 0 && c != 2) {
                continue;
            }

            ngx_http_llm_text(t, "llm_requests_total");
            ngx_http_llm_series_labels(t, &ss[i]);
            ngx_http_llm_text(t, ",status=\"%s\"} %uL\n",
                              ngx_http_llm_status_classes[c],
                              ss[i].series.requests[c]);
        }
    }

    ngx_http_llm_prometheus_used(snap, t, 0);

    ngx_http_llm_help(t, "llm_cache_requests_total", "counter",
                      "Requests to locations with llm_cache, by result.");

    for (i = 0; i < snap->series.nelts; i++) {
        for (c = 0; c < 3; c++) {
            ngx_http_llm_text(t, "llm_cache_requests_total");
            ngx_http_llm_series_labels(t, &ss[i]);
            ngx_http_llm_text(t, ",result=\"%s\"} %uL\n",
                              ngx_http_llm_cache_results[c],
                              ss[i].series.cache[c]);
        }
    }

    ngx_http_llm_help(t, "llm_failovers_total", "counter",
                      "Attempts that failed and were followed by another, "
                      "by the route, the target that failed and the cause.");

    for (i = 0; i < snap->series.nelts; i++) {
        for (c = 0; c < NGX_HTTP_LLM_NCAUSES; c++) {
            if (ss[i].series.causes[c] == 0) {
                continue;
            }

            ngx_http_llm_text(t, "llm_failovers_total");
            ngx_http_llm_series_labels(t, &ss[i]);
            ngx_http_llm_text(t, ",cause=\"%s\"} %uL\n",
                              ngx_http_llm_failover_causes[c],
                              ss[i].series.causes[c]);
        }
    }

    for (k = 0; k < NGX_HTTP_LLM_NHIST; k++) {
        bk = &ngx_http_llm_buckets[k];

        ngx_http_llm_help(t, bk->name, "histogram", bk->help);

        for (i = 0; i < snap->series.nelts; i++) {
            series = &ss[i].series;
            cumulative = 0;

            for (c = 0; c <= bk->n; c++) {
                cumulative += series->buckets[bk->first + c];

                ngx_http_llm_text(t, "%s_bucket", bk->name);
                ngx_http_llm_series_labels(t, &ss[i]);
                ngx_http_llm_text(t, ",le=\"%s\"} %uL\n",
                                  c < bk->n ? bk->label[c] : "+Inf",
                                  cumulative);
            }

            ngx_http_llm_text(t, "%s_sum", bk->name);
            ngx_http_llm_series_labels(t, &ss[i]);
            ngx_http_llm_text(t, "} %uL.%06uL\n", series->sum[k] / 1000000,
                              series->sum[k] % 1000000);

            /* the +Inf bucket's, as Prometheus has it */
            ngx_http_llm_text(t, "%s_count", bk->name);
            ngx_http_llm_series_labels(t, &ss[i]);
            ngx_http_llm_text(t, "} %uL\n", cumulative);
        }
    }

    /* by target */

    ngx_http_llm_help(t, "llm_target_inflight", "gauge",
                      "Requests a target is answering now.");

    for (i = 0; i < snap->targets.nelts; i++) {
        ngx_http_llm_text(t, "llm_target_inflight");
        ngx_http_llm_target_labels(t, &ts[i]);
        ngx_http_llm_text(t, "} %uD\n", ts[i].stats.inflight);
    }

    ngx_http_llm_help(t, "llm_target_state", "gauge",
                      "A target's circuit breaker: 1 for the state it is "
                      "in, 0 for the others.");

    for (i = 0; i < snap->targets.nelts; i++) {
        for (c = 0; c < 4; c++) {
            ngx_http_llm_text(t, "llm_target_state");
            ngx_http_llm_target_labels(t, &ts[i]);
            ngx_http_llm_text(t, ",state=\"%s\"} %d\n",
                              ngx_http_llm_breaker_states[c],
                              ngx_strcmp(ngx_http_llm_breaker_states[c],
                                         ngx_http_llm_breaker_name(
                                             &ts[i].stats, snap->now))
                              == 0);
        }
    }

    ngx_http_llm_help(t, "llm_target_latency_seconds", "gauge",
                      "A target's peak EWMA latency, by signal (per_token: "
                      "seconds per output token).");

    for (i = 0; i < snap->targets.nelts; i++) {
        for (c = 0; c < 3; c++) {
            ewma = (c == 0) ? &ts[i].stats.ttfb
                   : (c == 1) ? &ts[i].stats.latency : &ts[i].stats.per_token;

            if (ewma->samples == 0) {
                continue;
            }

            ngx_http_llm_text(t, "llm_target_latency_seconds");
            ngx_http_llm_target_labels(t, &ts[i]);
            ngx_http_llm_text(t, ",signal=\"%s\"} %.6f\n", signals[c],
                              ngx_http_llm_ewma_get(ewma, snap->now) / 1000);
        }
    }

    /* by key, team and organisation */

    ngx_http_llm_help(t, "llm_spend_requests_total", "counter",
                      "Requests by key, team and organisation.");

    for (i = 0; i < snap->spend.nelts; i++) {
        ngx_http_llm_text(t, "llm_spend_requests_total");
        ngx_http_llm_spend_labels(t, &sp[i]);
        ngx_http_llm_text(t, "} %uL\n", sp[i].spend.requests);
    }

    ngx_http_llm_prometheus_used(snap, t, 1);

    ngx_http_llm_help(t, "llm_budget_remaining", "gauge",
                      "What remains of a budget in its current window, in "
                      "its unit (US dollars or tokens); negative when "
                      "overspent.");

    for (i = 0; i < snap->spend.nelts; i++) {
        for (k = 0; sp[i].entity && k < sp[i].entity->nbudgets; k++) {
            b = &sp[i].entity->budgets[k];
            remaining = ngx_http_llm_budget_remaining(&sp[i], k, snap->time);

            ngx_http_llm_text(t, "llm_budget_remaining");
            ngx_http_llm_spend_labels(t, &sp[i]);
            ngx_http_llm_text(t, ",unit=\"%s\",period=\"%s\"} ",
                              b->unit == NGX_HTTP_LLM_USD ? "usd" : "tokens",
                              ngx_http_llm_period_names[b->period]);

            if (b->unit == NGX_HTTP_LLM_USD) {
                ngx_http_llm_text_usd(t, remaining);

            } else {
                ngx_http_llm_text(t, "%L", remaining);
            }

            ngx_http_llm_text(t, "\n");
        }
    }

    if (snap->redis_up == NGX_DECLINED) {
        return;
    }

    ngx_http_llm_help(t, "llm_redis_up", "gauge",
                      "1 when the fleet's Redis is connected and synced "
                      "within two intervals, else 0.");
    ngx_http_llm_text(t, "llm_redis_up %i\n", snap->redis_up);

    ngx_http_llm_help(t, "llm_redis_last_sync_age_seconds", "gauge",
                      "Time since this instance last synced with Redis.");
    ngx_http_llm_text(t, "llm_redis_last_sync_age_seconds %.3f\n",
                      (double) snap->redis_age / 1000);
}


/* tokens and cost: of routes and targets, or of keys, teams and orgs */

static void
ngx_http_llm_prometheus_used(ngx_http_llm_snapshot_t *snap,
    ngx_http_llm_jbuf_t *t, ngx_uint_t spenders)
{
    ngx_uint_t                   i, k, c, n;
    ngx_http_llm_used_t         *used;
    ngx_http_llm_spend_snap_t   *sp;
    ngx_http_llm_series_snap_t  *ss;

    static const char  *kinds[] = { "prompt", "completion", "cached",
                                    "cache_write" };

    static const char  *names[][2] = {
        { "llm_tokens_total", "llm_cost_usd_total" },
        { "llm_spend_tokens_total", "llm_spend_usd_total" }
    };

    static const char  *helps[][2] = {
        { "Tokens by route, target and kind; cached tokens (read from the "
          "provider's prompt cache) and cache_write tokens (written to it) "
          "are parts of the prompt tokens.",
          "What requests cost at their targets' prices, in US dollars." },
        { "Tokens by key, team and organisation, and kind.",
          "What a key, team or organisation spent, in US dollars." }
    };

    ss = snap->series.elts;
    sp = snap->spend.elts;
    n = spenders ? snap->spend.nelts : snap->series.nelts;

    for (k = 0; k < 2; k++) {
        ngx_http_llm_help(t, names[spenders][k], "counter",
                          helps[spenders][k]);

        for (i = 0; i < n; i++) {
            used = spenders ? &sp[i].spend.used : &ss[i].series.used;

            /* tokens: a sample by kind; cost: one */

            for (c = 0; c < (k == 0 ? 4 : 1); c++) {
                ngx_http_llm_text(t, "%s", names[spenders][k]);

                if (spenders) {
                    ngx_http_llm_spend_labels(t, &sp[i]);

                } else {
                    ngx_http_llm_series_labels(t, &ss[i]);
                }

                if (k == 0) {
                    ngx_http_llm_text(t, ",kind=\"%s\"} %uL\n", kinds[c],
                                      used->tokens[c]);

                } else {
                    ngx_http_llm_text(t, "} ");
                    ngx_http_llm_text_usd(t, used->cost);
                    ngx_http_llm_text(t, "\n");
                }
            }
        }
    }
}


static void
ngx_http_llm_help(ngx_http_llm_jbuf_t *t, const char *name, const char *type,
    const char *help)
{
    ngx_http_llm_text(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                      type);
}


/* nano-dollars as dollars, exactly */

void
ngx_http_llm_text_usd(ngx_http_llm_jbuf_t *t, int64_t nano)
{
    uint64_t  abs;

    abs = (nano < 0) ? (uint64_t) -nano : (uint64_t) nano;

    ngx_http_llm_text(t, "%s%uL.%09uL", nano < 0 ? "-" : "",
                      abs / NGX_HTTP_LLM_NANO, abs % NGX_HTTP_LLM_NANO);
}


/* {a="...",b="..."[,c="..."] without the closing brace: c may be NULL */

static void
ngx_http_llm_labels(ngx_http_llm_jbuf_t *t, const char *a, ngx_str_t *va,
    const char *b, ngx_str_t *vb, const char *c, ngx_str_t *vc)
{
    ngx_http_llm_text(t, "{%s=", a);
    ngx_http_llm_label(t, va);
    ngx_http_llm_text(t, ",%s=", b);
    ngx_http_llm_label(t, vb);

    if (c) {
        ngx_http_llm_text(t, ",%s=", c);
        ngx_http_llm_label(t, vc);
    }
}


/* a label value: only \, " and line feeds are escaped in this format */

static void
ngx_http_llm_label(ngx_http_llm_jbuf_t *t, ngx_str_t *value)
{
    u_char  *p, *last, *run;

    if (value->len == 0) {
        ngx_http_llm_text(t, "\"\"");
        return;
    }

    ngx_http_llm_text(t, "\"");

    run = value->data;
    last = value->data + value->len;

    for (p = run; p < last; p++) {
        if (*p != '\\' && *p != '"' && *p != '\n') {
            continue;
        }

        ngx_http_llm_text(t, "%*s\\%c", (size_t) (p - run), run,
                          *p == '\n' ? 'n' : *p);
        run = p + 1;
    }

    ngx_http_llm_text(t, "%*s\"", (size_t) (last - run), run);
}
