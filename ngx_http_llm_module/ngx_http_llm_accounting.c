
/*
 * Accounting: when a response is complete, what it used is settled
 * against the limits and budgets it reserved, its attempt goes into the
 * target's health, and it is counted in the metrics.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_accounting.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_metrics.h"
#include "ngx_http_llm_redis.h"


static ngx_uint_t ngx_http_llm_outcome(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_outcome_t *o);


uint64_t
ngx_http_llm_usec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * The response is complete (its last buffer went out), or the request
 * ends without one: it is counted in the metrics, what it used is
 * settled against its limits, and the attempt that answered goes into
 * the target's health, in this order and under one taking of the zone's
 * lock (what needs no lock is found first). A stream that broke, a 429
 * or a 5xx passed on count against the target; the time to first event
 * (streams) or the upstream's response time (others) are its latency
 * samples. Done once, as soon as possible: the log phase may come much
 * later, after a lingering close.
 */

void
ngx_http_llm_complete(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t                  counted, settled, abandoned;
    ngx_http_llm_outcome_t      o;
    ngx_http_llm_main_conf_t   *lmcf;
    ngx_http_llm_metrics_rec_t  rec;

    if (ctx->completed) {
        return;
    }

    ctx->completed = 1;

    ngx_http_llm_account(r, ctx);

    counted = ngx_http_llm_metrics_prepare(r, ctx, &rec);
    settled = (ctx->hold != NULL);
    abandoned = (ctx->node != NULL) ? ngx_http_llm_outcome(r, ctx, &o) : 0;

    if (!counted && !settled && ctx->node == NULL) {
        return;
    }

    /* one zone holds the metrics, the holds and the targets' health */

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    ngx_http_llm_zone_lock(lmcf->zone);

    if (counted) {
        ngx_http_llm_metrics_record_locked(r, ctx, &rec);
    }

    ngx_http_llm_settle_locked(ctx);

    /* the target's health, when one was chosen (o is set only then) */

    if (ctx->node) {
        if (abandoned) {
            ngx_http_llm_release_abandoned_locked(ctx);

        } else {
            (void) ngx_http_llm_release_locked(ctx, &o);
        }
    }

    ngx_http_llm_zone_unlock(lmcf->zone);

    if (settled) {
        ngx_http_llm_redis_settled();
    }
}


/*
 * The outcome of the attempt that answered, for the target's health;
 * 1 if there is none: no provider was asked, or the client went away.
 */

static ngx_uint_t
ngx_http_llm_outcome(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_outcome_t *o)
{
    ngx_uint_t  status;

    status = r->headers_out.status;

    if (ctx->cache_hit
        || status == 0 || status == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || (r->connection->error && !(ctx->resp && ctx->resp->broken)))
    {
        return 1;
    }

    o->status = status;
    o->retry_after = ctx->retry_after;
    o->ttfb = (ngx_msec_t) -1;
    o->latency = (ngx_msec_t) -1;
    o->output_tokens = ctx->usage.reported ? ctx->usage.completion : 0;

    if (ctx->resp && ctx->resp->broken) {
        o->result = NGX_HTTP_LLM_FAILED;

    } else if (ctx->resp && ctx->resp->mode == NGX_HTTP_LLM_RESP_SCAN
               && !ctx->resp->done)
    {
        /*
         * a 2xx that was no whole answer (an error object, not JSON, cut
         * short) went to the client as it came, but the target failed
         */
        o->result = NGX_HTTP_LLM_FAILED;

    } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        o->result = NGX_HTTP_LLM_RATE_LIMITED;

    } else if (status == NGX_HTTP_GATEWAY_TIME_OUT) {
        o->result = NGX_HTTP_LLM_TIMED_OUT;

    } else if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        o->result = NGX_HTTP_LLM_FAILED;

    } else {
        o->result = NGX_HTTP_LLM_OK;

        if (ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS) {
            /* a count's time would skew the target's answer latency */

        } else if (ctx->chat.stream) {
            o->ttfb = ctx->ttfb;

        } else if (r->upstream && r->upstream->state
                   && r->upstream->state->response_time != (ngx_msec_t) -1)
        {
            o->latency = r->upstream->state->response_time;
        }
    }

    return 0;
}


/* log phase: for requests whose end the body filter did not see */

ngx_int_t
ngx_http_llm_log_handler(ngx_http_request_t *r)
{
    ngx_http_llm_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx) {
        ngx_http_llm_complete(r, ctx);
    }

    return NGX_OK;
}


/*
 * What the request used: the provider's report, or for an answer that
 * came without one (a stream cut short, say) an estimate from the prompt
 * and the text received, at four bytes a token; then its cost at the
 * serving target's prices.
 */

void
ngx_http_llm_account(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_main_conf_t  *lmcf;

    /* the access log may ask first: it runs before this module's log
       handler */

    if (ctx->accounted) {
        return;
    }

    ctx->accounted = 1;

    if (ctx->resp == NULL || ctx->target == NULL
        || r->headers_out.status / 100 != 2
        || ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS)
    {
        /* no answer, or a count of tokens: nothing was used */
        return;
    }

    if (ctx->usage.reported
        && (ctx->usage.prompt < 0
            || ctx->usage.prompt > NGX_HTTP_LLM_TOKENS_MAX
            || ctx->usage.completion < 0
            || ctx->usage.completion > NGX_HTTP_LLM_TOKENS_MAX
            || ctx->usage.cached < 0
            || ctx->usage.cached > NGX_HTTP_LLM_TOKENS_MAX
            || ctx->usage.cache_write < 0
            || ctx->usage.cache_write > NGX_HTTP_LLM_TOKENS_MAX))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm: provider \"%V\" reported a usage beyond belief "
                      "(%L prompt, %L completion, %L cached, %L cache write "
                      "tokens): estimated instead",
                      &ctx->target->provider->name, ctx->usage.prompt,
                      ctx->usage.completion, ctx->usage.cached,
                      ctx->usage.cache_write);

        ctx->usage.reported = 0;
    }

    if (!ctx->usage.reported) {
        ctx->usage.prompt = (ctx->chat.message_bytes + 3) / 4
                            + 4 * ctx->chat.messages;
        ctx->usage.completion = (ctx->content_bytes + 3) / 4;
        ctx->usage.cached = 0;
        ctx->usage.cache_write = 0;
    }

    ctx->cost = ngx_http_llm_cost(ctx->target, &ctx->usage);

    if (ctx->cache_hit) {
        /* no provider was paid: a hit costs the configured share */

        lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

        ctx->usage.prompt = ctx->usage.prompt * lmcf->cache_charge / 100;
        ctx->usage.completion = ctx->usage.completion * lmcf->cache_charge
                                / 100;
        ctx->usage.cached = ctx->usage.cached * lmcf->cache_charge / 100;
        ctx->usage.cache_write = ctx->usage.cache_write * lmcf->cache_charge
                                 / 100;
        ctx->cost = ctx->cost * lmcf->cache_charge / 100;
    }
}
