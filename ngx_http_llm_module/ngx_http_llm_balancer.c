
/*
 * Choosing the target of an attempt by the route's strategy, over the
 * health shared in the zone (docs/architecture.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_health.h"
#include "ngx_http_llm_balancer.h"


#define NGX_HTTP_LLM_COLD_COST  1000.0

/* a completion's length when the request does not bound it */
#define NGX_HTTP_LLM_DEFAULT_COMPLETION  256


typedef struct {
    ngx_http_llm_target_t         *target;
    ngx_http_llm_node_t           *node;
    ngx_str_t                      name;
    uint32_t                       hash;
    ngx_uint_t                     availability;
    double                         cost;
    unsigned                       other:1;     /* past max_models */
} ngx_http_llm_candidate_t;


typedef struct {
    ngx_uint_t                     n;
    int64_t                        current[NGX_HTTP_LLM_MAX_TARGETS];
} ngx_http_llm_route_state_t;


static ngx_int_t ngx_http_llm_candidate_name(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_candidate_t *c);
static ngx_http_llm_node_t *ngx_http_llm_model_node(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_zone_t *zone, ngx_http_llm_candidate_t *c);
static ngx_uint_t ngx_http_llm_pick(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_zone_t *zone,
    ngx_http_llm_candidate_t *c, ngx_uint_t n);
static ngx_uint_t ngx_http_llm_pick_weighted(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_zone_t *zone, ngx_http_llm_candidate_t *c, ngx_uint_t n);
static ngx_uint_t ngx_http_llm_pick_latency(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_candidate_t *c, ngx_uint_t n);
static ngx_uint_t ngx_http_llm_pick_cost(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_candidate_t *c, ngx_uint_t n);
static double ngx_http_llm_latency_cost(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_stats_t *st, ngx_msec_t now);


ngx_http_llm_target_t *
ngx_http_llm_choose(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t                  i, n, k, best;
    ngx_msec_t                  now, at, soonest;
    ngx_http_llm_zone_t        *zone;
    ngx_http_llm_stats_t       *st;
    ngx_http_llm_target_t      *t;
    ngx_http_llm_main_conf_t   *lmcf;
    ngx_http_llm_candidate_t    c[NGX_HTTP_LLM_MAX_TARGETS], tmp;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);
    zone = lmcf->zone;
    t = ctx->route->targets.elts;
    now = ngx_current_msec;

    /* a retry on the same target, or the candidates */

    n = 0;

    for (i = 0; i < ctx->route->targets.nelts; i++) {

        if (ctx->retry_same ? &t[i] != ctx->target
                            : (ctx->tried & ((uint64_t) 1 << i))
                              || t[i].provider->disabled)
        {
            continue;
        }

        c[n].target = &t[i];
        c[n].other = 0;

        if (ngx_http_llm_candidate_name(r, ctx, &c[n]) != NGX_OK) {
            return NULL;
        }

        n++;
    }

    if (n == 0) {
        return NULL;
    }

    ngx_http_llm_zone_lock(zone);

    for (i = 0, k = 0; i < n; i++) {
        c[i].node = c[i].target->stats_name.len
                    ? ngx_http_llm_node_by_ref(zone, &c[i].target->stats_ref,
                                               NGX_HTTP_LLM_NODE_TARGET,
                                               &c[i].name, c[i].hash,
                                               sizeof(ngx_http_llm_stats_t),
                                               1)
                    : ngx_http_llm_model_node(ctx, zone, &c[i]);

        if (c[i].node == NULL) {
            ngx_http_llm_zone_unlock(zone);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "llm: the llm_zone is full");
            return NULL;
        }

        st = c[i].node->data;
        c[i].availability = ctx->retry_same
                            ? NGX_HTTP_LLM_AVAILABLE
                            : ngx_http_llm_availability(st,
                                            &c[i].target->provider->health,
                                            now);

        if (c[i].availability != NGX_HTTP_LLM_UNAVAILABLE) {
            /* the available ones first, in configuration order */
            if (k != i) {
                tmp = c[k];
                c[k] = c[i];
                c[i] = tmp;
            }

            k++;
        }
    }

    if (k) {
        best = ngx_http_llm_pick(r, ctx, zone, c, k);
        ctx->probe = (c[best].availability == NGX_HTTP_LLM_PROBE);

    } else {
        /* nothing is available: the one that will be soonest, as a probe */

        best = 0;
        soonest = ngx_http_llm_available_at(c[0].node->data);

        for (i = 1; i < n; i++) {
            at = ngx_http_llm_available_at(c[i].node->data);

            if ((ngx_msec_int_t) (at - soonest) < 0) {
                soonest = at;
                best = i;
            }
        }

        ctx->probe = 1;
    }

    st = c[best].node->data;

    if (ctx->probe) {
        st->probing = 1;
    }

    st->inflight++;
    st->requests++;
    c[best].node->refs++;

    ngx_http_llm_zone_unlock(zone);

    ctx->other_model = c[best].other;
    ctx->node = c[best].node;
    ctx->zone = zone;

    return c[best].target;
}


/* the attempt is over: its outcome goes into the target's health */

ngx_uint_t
ngx_http_llm_release(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_outcome_t *o)
{
    ngx_uint_t                 out;
    ngx_http_llm_main_conf_t  *lmcf;

    if (ctx->node == NULL) {
        return 0;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    ngx_http_llm_zone_lock(lmcf->zone);
    out = ngx_http_llm_release_locked(ctx, o);
    ngx_http_llm_zone_unlock(lmcf->zone);

    return out;
}


ngx_uint_t
ngx_http_llm_release_locked(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_outcome_t *o)
{
    ngx_uint_t             out;
    ngx_http_llm_node_t   *node;
    ngx_http_llm_stats_t  *st;

    node = ctx->node;

    if (node == NULL) {
        return 0;
    }

    ctx->node = NULL;

    st = node->data;

    if (st->inflight) {
        st->inflight--;
    }

    node->refs--;

    out = ngx_http_llm_record(st, &ctx->target->provider->health, o,
                              ctx->probe, ngx_current_msec);

    ctx->probe = 0;

    return out;
}


/* the request ends with an attempt held: it counts as a failure */

void
ngx_http_llm_release_abandoned(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_zone_t *zone)
{
    if (ctx->node == NULL) {
        return;
    }

    ngx_http_llm_zone_lock(zone);
    ngx_http_llm_release_abandoned_locked(ctx);
    ngx_http_llm_zone_unlock(zone);
}


void
ngx_http_llm_release_abandoned_locked(ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_node_t   *node;
    ngx_http_llm_stats_t  *st;

    node = ctx->node;

    if (node == NULL) {
        return;
    }

    ctx->node = NULL;

    st = node->data;

    if (st->inflight) {
        st->inflight--;
    }

    if (ctx->probe) {
        st->probing = 0;
    }

    node->refs--;
}


static ngx_int_t
ngx_http_llm_candidate_name(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_candidate_t *c)
{
    u_char                 *p;
    ngx_str_t               model;
    ngx_http_llm_target_t  *t;

    t = c->target;

    if (t->stats_name.len) {
        c->name = t->stats_name;
        c->hash = t->stats_hash;
        return NGX_OK;
    }

    /* the model depends on the request: the client's, or a glob's */

    if (ngx_http_llm_target_model(r->pool, t, &ctx->chat.model,
                                  &ctx->glob_capture, &model)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    c->name.len = t->provider->name.len + 1 + model.len;
    c->name.data = ngx_pnalloc(r->pool, c->name.len);
    if (c->name.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(c->name.data, t->provider->name.data,
                   t->provider->name.len);
    *p++ = '\0';
    ngx_memcpy(p, model.data, model.len);

    c->hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_TARGET, &c->name);

    return NGX_OK;
}


/*
 * With the mutex held: the node of a target whose model the client chose.
 * A route tracks at most max_models of them apart (counted in its own node,
 * which is kept while it counts any); the rest share one node, so that
 * client-chosen names cannot fill the zone.
 */

static ngx_http_llm_node_t *
ngx_http_llm_model_node(ngx_http_llm_ctx_t *ctx, ngx_http_llm_zone_t *zone,
    ngx_http_llm_candidate_t *c)
{
    ngx_http_llm_node_t    *node, *owner;
    ngx_http_llm_target_t  *t;

    node = ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_TARGET, &c->name,
                             c->hash, sizeof(ngx_http_llm_stats_t), 0);
    if (node) {
        return node;
    }

    t = c->target;

    owner = ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_ROUTE,
                              &ctx->route->name, ctx->route->hash,
                              sizeof(ngx_http_llm_route_state_t), 1);
    if (owner == NULL) {
        return NULL;
    }

    if (owner->owned < ctx->route->max_models) {

        /* making room must not take the route's node away */
        owner->refs++;

        node = ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_TARGET, &c->name,
                                 c->hash, sizeof(ngx_http_llm_stats_t), 1);
        owner->refs--;

        if (node) {
            node->owner = owner;
            owner->owned++;
        }

        return node;
    }

    c->other = 1;
    c->name = t->other_name;
    c->hash = t->other_hash;

    return ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_TARGET, &c->name,
                             c->hash, sizeof(ngx_http_llm_stats_t), 1);
}


static ngx_uint_t
ngx_http_llm_pick(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_zone_t *zone, ngx_http_llm_candidate_t *c, ngx_uint_t n)
{
    if (n == 1) {
        return 0;
    }

    switch (ctx->route->strategy) {

    case NGX_HTTP_LLM_WEIGHTED:
        return ngx_http_llm_pick_weighted(ctx, zone, c, n);

    case NGX_HTTP_LLM_LATENCY:
        return ngx_http_llm_pick_latency(ctx, c, n);

    case NGX_HTTP_LLM_COST:
        return ngx_http_llm_pick_cost(ctx, c, n);

    default:
        /* candidates are in configuration order */
        return 0;
    }
}


static ngx_uint_t
ngx_http_llm_pick_weighted(ngx_http_llm_ctx_t *ctx, ngx_http_llm_zone_t *zone,
    ngx_http_llm_candidate_t *c, ngx_uint_t n)
{
    int64_t                      total;
    ngx_uint_t                   i, best, idx, best_idx;
    ngx_http_llm_node_t         *node;
    ngx_http_llm_route_state_t  *rs;

    node = ngx_http_llm_node(zone, NGX_HTTP_LLM_NODE_ROUTE,
                             &ctx->route->name, ctx->route->hash,
                             sizeof(ngx_http_llm_route_state_t), 1);
    if (node == NULL) {
        return 0;
    }

    rs = node->data;

    if (rs->n != ctx->route->targets.nelts) {
        /* new, or the route changed with a reload */
        ngx_memzero(rs, sizeof(ngx_http_llm_route_state_t));
        rs->n = ctx->route->targets.nelts;
    }

    total = 0;
    best = 0;

    best_idx = 0;

    for (i = 0; i < n; i++) {
        idx = ngx_http_llm_target_index(ctx->route, c[i].target);

        rs->current[idx] += c[i].target->weight;
        total += c[i].target->weight;

        if (i == 0 || rs->current[idx] > rs->current[best_idx]) {
            best = i;
            best_idx = idx;
        }
    }

    rs->current[best_idx] -= total;

    return best;
}


static ngx_uint_t
ngx_http_llm_pick_latency(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_candidate_t *c, ngx_uint_t n)
{
    double                 sum, load_a, load_b;
    ngx_uint_t             i, a, b, warm, cold;
    ngx_msec_t             now;
    ngx_http_llm_stats_t  *st;

    now = ngx_current_msec;
    sum = 0;
    warm = 0;

    for (i = 0; i < n; i++) {
        c[i].cost = ngx_http_llm_latency_cost(ctx, c[i].node->data, now);

        if (c[i].cost >= 0) {
            sum += c[i].cost;
            warm++;
        }
    }

    cold = n - warm;

    /*
     * Cold start: a target never measured for this kind of request takes
     * the next one as soon as it has none in flight, the first such in
     * configuration order. It is a candidate only while its health lets
     * it be tried, and it gets one request at a time until it has a
     * sample: a probe, never a burst.
     */

    for (i = 0; cold && i < n; i++) {
        st = c[i].node->data;

        if (c[i].cost < 0 && st->inflight == 0) {
            return i;
        }
    }

    if (cold && (ngx_uint_t) (ngx_random() % 100) < ctx->route->explore) {
        /* a share of requests measures targets nobody measured yet */

        a = ngx_random() % cold;

        for (i = 0; i < n; i++) {
            if (c[i].cost < 0 && a-- == 0) {
                return i;
            }
        }
    }

    for (i = 0; i < n; i++) {
        if (c[i].cost < 0) {
            c[i].cost = warm ? sum / warm : NGX_HTTP_LLM_COLD_COST;
        }
    }

    /* power of two choices */

    a = ngx_random() % n;
    b = ngx_random() % (n - 1);

    if (b >= a) {
        b++;
    }

    st = c[a].node->data;
    load_a = c[a].cost * (st->inflight + 1);

    st = c[b].node->data;
    load_b = c[b].cost * (st->inflight + 1);

    if (load_a == load_b) {
        return ngx_min(a, b);
    }

    return (load_a < load_b) ? a : b;
}


/* the cost signal for this request, or -1 when the target has none */

static double
ngx_http_llm_latency_cost(ngx_http_llm_ctx_t *ctx, ngx_http_llm_stats_t *st,
    ngx_msec_t now)
{
    if (ctx->chat.stream) {
        return st->ttfb.samples ? ngx_http_llm_ewma_get(&st->ttfb, now) : -1;
    }

    if (st->per_token.samples) {
        return ngx_http_llm_ewma_get(&st->per_token, now);
    }

    return st->latency.samples ? ngx_http_llm_ewma_get(&st->latency, now)
                               : -1;
}


static ngx_uint_t
ngx_http_llm_pick_cost(ngx_http_llm_ctx_t *ctx, ngx_http_llm_candidate_t *c,
    ngx_uint_t n)
{
    double                  prompt, completion, cost, best_cost;
    ngx_uint_t              i, best;
    ngx_http_llm_target_t  *t;

    /* about four bytes of text per token, and a few per message */

    prompt = (double) ctx->chat.message_bytes / 4 + 4.0 * ctx->chat.messages;
    completion = (ctx->chat.max_tokens > 0)
                 ? (double) ctx->chat.max_tokens
                 : NGX_HTTP_LLM_DEFAULT_COMPLETION;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        completion = 0;
    }

    best = 0;
    best_cost = HUGE_VAL;

    for (i = 0; i < n; i++) {
        t = c[i].target;

        if (t->input_price < 0 || t->output_price < 0) {
            continue;
        }

        cost = prompt * t->input_price + completion * t->output_price;

        if (cost < best_cost) {
            best_cost = cost;
            best = i;
        }
    }

    return best;
}
