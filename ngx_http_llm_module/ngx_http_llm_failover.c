
/*
 * Failover: what happens after an attempt failed. Its outcome goes into
 * the target's health and the next attempt is planned (another target, or
 * the same after a backoff), within the route's attempts and deadline.
 * How a failed attempt comes back to the handler: docs/architecture.md.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_handler.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_metrics.h"
#include "ngx_http_llm_failover.h"


static void ngx_http_llm_resume(ngx_http_request_t *r);


/*
 * An attempt failed after the header filter or nginx gave up on it. The
 * filter has recorded a provider's failure already; nginx's own (connect
 * error, timeout) is recorded here.
 */

ngx_int_t
ngx_http_llm_after_failure(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              status, next, same;
    ngx_msec_t              delay, max;
    ngx_http_llm_outcome_t  o;

    if (ctx->failover) {
        ctx->failover = 0;
        next = 1;

    } else {
        status = (r->upstream && r->upstream->state
                  && r->upstream->state->status)
                 ? r->upstream->state->status : NGX_HTTP_BAD_GATEWAY;

        if (ctx->resp && (ctx->resp->header_held || ctx->resp->stream_held))
        {
            /* a held answer cut short or unreadable: its 200 never went */
            ctx->resp = NULL;
            ngx_http_llm_clear_headers_out(r);
        }

        if (status < NGX_HTTP_SPECIAL_RESPONSE
            && ctx->upstream_rc == NGX_HTTP_GATEWAY_TIME_OUT)
        {
            /* a held stream that went silent after its header */
            status = NGX_HTTP_GATEWAY_TIME_OUT;

        } else if (status < NGX_HTTP_SPECIAL_RESPONSE) {
            /* a 2xx whose body was the provider's error: the error's */
            status = (ctx->error_status >= NGX_HTTP_BAD_REQUEST
                      && ctx->error_status < 600)
                     ? ctx->error_status : NGX_HTTP_BAD_GATEWAY;
        }

        o.result = (status == NGX_HTTP_GATEWAY_TIME_OUT)
                   ? NGX_HTTP_LLM_TIMED_OUT : NGX_HTTP_LLM_FAILED;
        o.status = status;
        o.retry_after = 0;
        o.ttfb = (ngx_msec_t) -1;
        o.latency = (ngx_msec_t) -1;
        o.output_tokens = 0;

        next = ngx_http_llm_plan_next(r, ctx, &o,
                                      (status == NGX_HTTP_GATEWAY_TIME_OUT)
                                      ? NGX_HTTP_LLM_FO_TIMEOUT
                                      : NGX_HTTP_LLM_FO_ERROR);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm: provider \"%V\" failed with %ui for model \"%V\" "
                  "(attempt %ui)%s", &ctx->failed_provider->name,
                  ctx->failed_status, &ctx->chat.model, ctx->attempts,
                  next ? (ctx->retry_same ? ", retrying it"
                                          : ", failing over") : "");

    if (!next) {
        return ngx_http_llm_all_failed(r, ctx);
    }

    if (!ctx->retry_same) {
        return ngx_http_llm_attempt(r, ctx);
    }

    /* the same target again, after an exponential backoff with jitter */

    max = ctx->route->max_backoff;
    delay = ctx->route->backoff;

    same = ctx->same[ngx_http_llm_target_index(ctx->route, ctx->target)];

    for (next = 1; next < same && delay < max; next++) {
        delay *= 2;
    }

    delay = ngx_min(delay, max);
    delay = delay / 2 + ngx_random() % (delay / 2 + 1);

    if (delay == 0) {
        return ngx_http_llm_attempt(r, ctx);
    }

    ctx->waiting = 1;

    ctx->timer.handler = ngx_http_llm_backoff_handler;
    ctx->timer.data = r;
    ctx->timer.log = r->connection->log;

    ngx_add_timer(&ctx->timer, delay);

    /* a client that goes away ends the wait */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


void
ngx_http_llm_backoff_handler(ngx_event_t *ev)
{
    ngx_http_llm_resume(ev->data);
}


/* the wait is over: the phases go on, and with them the next attempt */

static void
ngx_http_llm_resume(ngx_http_request_t *r)
{
    ngx_connection_t    *c;
    ngx_http_llm_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_llm_get_ctx(r);

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    ctx->waiting = 0;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * The request's deadline passed before a response started. An attempt in
 * progress is ended the way nginx ends one that timed out, so the upstream
 * cleans up as usual and error_page brings the request back here.
 */

void
ngx_http_llm_deadline_handler(ngx_event_t *ev)
{
    ngx_connection_t     *c, *pc;
    ngx_http_request_t   *r;
    ngx_http_llm_ctx_t   *ctx;
    ngx_http_upstream_t  *u;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_llm_get_ctx(r);

    ctx->deadline_hit = 1;

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "llm: deadline of %M ms for model \"%V\" passed",
                  ctx->route->deadline, &ctx->chat.model);

    if (ctx->waiting) {
        ngx_http_llm_resume(r);
        return;
    }

    u = r->upstream;

    if (!ctx->proxying || u == NULL || u->peer.connection == NULL
        || r->header_sent)
    {
        /* resolving, or already answering: the attempt ends on its own */
        return;
    }

    pc = u->peer.connection;
    pc->read->timedout = 1;
    pc->read->handler(pc->read);
}


/*
 * An attempt failed: its outcome goes into the target's health, and the
 * next attempt is planned. Returns 1 if there is one: the same target
 * again (ctx->retry_same) while it has retries left and is still in
 * service, or else another target.
 */

ngx_uint_t
ngx_http_llm_plan_next(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_outcome_t *o, ngx_uint_t reason)
{
    ngx_uint_t              i, out, idx;
    ngx_http_llm_target_t  *t;

    out = ngx_http_llm_release(r, ctx, o);

    ctx->failed_status = o->status;
    ctx->retry_after = o->retry_after;
    ctx->failed_provider = ctx->target->provider;
    ctx->retry_same = 0;

    idx = ngx_http_llm_target_index(ctx->route, ctx->target);

    if (!(ctx->route->failover & reason)
        || ctx->deadline_hit
        || ctx->attempts >= ctx->route->attempts)
    {
        return 0;
    }

    if (o->result != NGX_HTTP_LLM_RATE_LIMITED && !out
        && ctx->same[idx] <= ctx->route->retries)
    {
        ctx->retry_same = 1;
        ngx_http_llm_metrics_failover(r, ctx, reason);
        return 1;
    }

    ctx->tried |= (uint64_t) 1 << idx;

    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (!(ctx->tried & ((uint64_t) 1 << i)) && !t[i].provider->disabled) {
            ngx_http_llm_metrics_failover(r, ctx, reason);
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_llm_all_failed(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t  status;

    ngx_http_llm_restore_request(r, ctx);

    if (ctx->attempts == 0) {
        return ngx_http_llm_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "no_provider_available", "model",
                                 "No provider is available for model `%V`.",
                                 &ctx->chat.model);
    }

    if (ctx->deadline_hit) {
        return ngx_http_llm_fail(r, NGX_HTTP_GATEWAY_TIME_OUT,
                                 "deadline_exceeded", NULL,
                                 "Model `%V` did not answer within the "
                                 "deadline of %M ms (%ui attempt%s).",
                                 &ctx->chat.model, ctx->route->deadline,
                                 ctx->attempts,
                                 ctx->attempts == 1 ? "" : "s");
    }

    switch (ctx->failed_status) {
    case NGX_HTTP_TOO_MANY_REQUESTS:
    case NGX_HTTP_GATEWAY_TIME_OUT:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        status = ctx->failed_status;
        break;
    default:
        status = NGX_HTTP_BAD_GATEWAY;
    }

    if (ctx->error_message.len) {
        return ngx_http_llm_fail(r, status, "upstream_error", NULL,
                                 "Model `%V` failed after %ui attempt%s; "
                                 "provider `%V` answered with an error: %V",
                                 &ctx->chat.model, ctx->attempts,
                                 ctx->attempts == 1 ? "" : "s",
                                 &ctx->failed_provider->name,
                                 &ctx->error_message);
    }

    return ngx_http_llm_fail(r, status,
                             (status == NGX_HTTP_GATEWAY_TIME_OUT)
                             ? "upstream_timeout" : "upstream_error",
                             NULL,
                             "Model `%V` failed after %ui attempt%s; the "
                             "last attempt, to provider `%V`, ended with "
                             "status %ui.",
                             &ctx->chat.model, ctx->attempts,
                             ctx->attempts == 1 ? "" : "s",
                             &ctx->failed_provider->name,
                             ctx->failed_status);
}


/*
 * Server rewrite phase: the first to run after error_page redirects a
 * failed attempt. error_page made the request a GET; the client's
 * request is restored before location matching and limit_except see it.
 */

ngx_int_t
ngx_http_llm_retry_handler(ngx_http_request_t *r)
{
    ngx_http_llm_ctx_t  *ctx;

    if (!r->internal || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx && ctx->proxying) {
        ngx_http_llm_restore_request(r, ctx);
    }

    return NGX_DECLINED;
}


/* Retry-After: seconds, or an HTTP date; in milliseconds, 0 if none */

ngx_msec_t
ngx_http_llm_retry_after(ngx_http_request_t *r)
{
    time_t            t;
    ngx_int_t         n;
    ngx_table_elt_t  *h;

    h = ngx_http_llm_find_header(&r->headers_out.headers, "Retry-After");

    if (h == NULL) {
        return 0;
    }

    n = ngx_atoi(h->value.data, h->value.len);

    if (n == NGX_ERROR) {
        t = ngx_parse_http_time(h->value.data, h->value.len);
        if (t == NGX_ERROR) {
            return 0;
        }

        n = (t > ngx_time()) ? t - ngx_time() : 0;
    }

    /* an hour at most: a provider's word is not forever */
    return (ngx_msec_t) ngx_min(n, 3600) * 1000;
}


ngx_uint_t
ngx_http_llm_failover_reason(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return NGX_HTTP_LLM_FO_429;
    case NGX_HTTP_INTERNAL_SERVER_ERROR:
        return NGX_HTTP_LLM_FO_500;
    case NGX_HTTP_BAD_GATEWAY:
        return NGX_HTTP_LLM_FO_502;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        return NGX_HTTP_LLM_FO_503;
    case NGX_HTTP_GATEWAY_TIME_OUT:
        return NGX_HTTP_LLM_FO_504;
    case 529:  /* Anthropic: overloaded */
        return NGX_HTTP_LLM_FO_529;
    default:
        return 0;
    }
}
