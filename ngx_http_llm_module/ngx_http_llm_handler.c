
/*
 * The request path: the precontent phase handler reads and parses the
 * body, picks a target and prepares the attempt that proxy_pass carries
 * out. A failed attempt comes back here through error_page; the next one
 * is built for its own target, after a backoff when it retries the same.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_metrics.h"


static ngx_http_llm_endpoint_e ngx_http_llm_endpoint(ngx_http_request_t *r);
static void ngx_http_llm_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_prepare(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_after_failure(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_attempt(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_all_failed(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_backoff_handler(ngx_event_t *ev);
static void ngx_http_llm_resume(ngx_http_request_t *r);
static void ngx_http_llm_deadline_handler(ngx_event_t *ev);



ngx_int_t
ngx_http_llm_handler(ngx_http_request_t *r)
{
    uint64_t                  t0;
    ngx_int_t                 rc;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    if (!llcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_llm_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->method = r->method;
        ctx->method_name = r->method_name;
        ctx->endpoint = ngx_http_llm_endpoint(r);
    }

    if (ctx->waiting) {
        /* the backoff timer or a key lookup resumes the phases */
        return NGX_AGAIN;
    }

    if (!ctx->body_requested) {

        /* a client without a valid key is refused before its body is read */

        if (llcf->auth && ctx->endpoint != NGX_HTTP_LLM_EP_UNKNOWN
            && ctx->key == NULL)
        {
            ctx->timer.handler = ngx_http_llm_backoff_handler;
            ctx->timer.data = r;
            ctx->timer.log = r->connection->log;

            rc = ngx_http_llm_authenticate(r, ctx);

            if (rc == NGX_AGAIN) {
                /* looked up in Redis: the answer resumes the phases */
                ctx->waiting = 1;
                r->read_event_handler = ngx_http_test_reading;
                r->write_event_handler = ngx_http_request_empty_handler;
                return NGX_AGAIN;
            }

            if (rc != NGX_OK) {
                return NGX_DONE;
            }
        }

        switch (ctx->endpoint) {

        case NGX_HTTP_LLM_EP_MODELS:
        case NGX_HTTP_LLM_EP_MODEL:
            if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
                return ngx_http_llm_fail(r, NGX_HTTP_NOT_ALLOWED,
                                         "method_not_allowed", NULL,
                                         "Method %V is not allowed for %V; "
                                         "use GET.", &r->method_name,
                                         &r->uri);
            }

            return ngx_http_llm_send_models(r, ctx);

        case NGX_HTTP_LLM_EP_CHAT:
        case NGX_HTTP_LLM_EP_MESSAGES:
            if (r->method != NGX_HTTP_POST) {
                return ngx_http_llm_fail(r, NGX_HTTP_NOT_ALLOWED,
                                         "method_not_allowed", NULL,
                                         "Method %V is not allowed for %V; "
                                         "use POST.", &r->method_name,
                                         &r->uri);
            }

            break;

        default:
            return ngx_http_llm_fail(r, NGX_HTTP_NOT_FOUND, "unknown_url",
                                     NULL, "Unknown request URL: %V %V.",
                                     &r->method_name, &r->uri);
        }
    }

    if (!ctx->body_ready) {

        if (ctx->body_requested) {
            /* still reading: the body handler resumes the phases */
            return NGX_DONE;
        }

        ctx->body_requested = 1;

        rc = ngx_http_read_client_request_body(r, ngx_http_llm_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        /* balances the reference read_client_request_body() took */

        ngx_http_finalize_request(r, NGX_DONE);

        if (!ctx->body_ready) {
            ctx->body_waiting = 1;
            return NGX_DONE;
        }
    }

    t0 = ngx_http_llm_usec();

    if (ctx->proxying) {
        /* error_page brought a failed attempt back */
        ctx->proxying = 0;
        rc = ngx_http_llm_after_failure(r, ctx);

    } else if (!ctx->prepared) {
        ctx->prepared = 1;

        rc = ngx_http_llm_prepare(r, ctx);

        if (rc == NGX_OK) {
            rc = ngx_http_llm_attempt(r, ctx);
        }

    } else {
        rc = ngx_http_llm_attempt(r, ctx);
    }

    if (rc == NGX_DONE) {
        /* answered already (ngx_http_llm_fail): r may have been freed */
        return rc;
    }

    ctx->overhead += ngx_http_llm_usec() - t0;

    return rc;
}


static ngx_http_llm_endpoint_e
ngx_http_llm_endpoint(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t  *uri;

    uri = &r->uri;
    last = uri->data + uri->len;

    /* a trailing slash is tolerated, as the providers do */

    if (uri->len > 1 && last[-1] == '/') {
        last--;
    }

#define ngx_http_llm_ends_with(s)                                            \
    ((size_t) (last - uri->data) >= sizeof(s) - 1                             \
     && ngx_strncmp(last - (sizeof(s) - 1), s, sizeof(s) - 1) == 0)

    if (ngx_http_llm_ends_with("/chat/completions")) {
        return NGX_HTTP_LLM_EP_CHAT;
    }

    /* Anthropic's Messages API: the door for Anthropic's SDKs */

    if (ngx_http_llm_ends_with("/v1/messages")) {
        return NGX_HTTP_LLM_EP_MESSAGES;
    }

    if (ngx_http_llm_ends_with("/models")) {
        return NGX_HTTP_LLM_EP_MODELS;
    }

#undef ngx_http_llm_ends_with

    /* /models/<id>, where the id may contain slashes ("openai/gpt-4o") */

    for (p = uri->data; p + sizeof("/models/") - 1 < last; p++) {
        if (ngx_strncmp(p, "/models/", sizeof("/models/") - 1) == 0) {
            return NGX_HTTP_LLM_EP_MODEL;
        }
    }

    return NGX_HTTP_LLM_EP_UNKNOWN;
}


static void
ngx_http_llm_body_handler(ngx_http_request_t *r)
{
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    ctx->body_ready = 1;

    if (ctx->body_waiting) {
        /* the body arrived after the handler returned: resume phases */
        ctx->body_waiting = 0;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }

    /* else read_client_request_body() called us synchronously */
}


/* once per request: parse, validate, find the route, start the clock */

static ngx_int_t
ngx_http_llm_prepare(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_llm_problem_t     problem;
    ngx_http_llm_main_conf_t  *lmcf;

    if (ngx_http_llm_read_segments(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&problem, offsetof(ngx_http_llm_problem_t, message));

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    rc = ngx_http_llm_parse_chat(r, ctx, &problem);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_llm_fail(r, problem.status, problem.code,
                                 problem.param, "%*s", problem.len,
                                 problem.message);
    }

    ctx->route = ngx_http_llm_find_route(lmcf, &ctx->chat.model,
                                         &ctx->glob_capture);

    if (ctx->route == NULL) {
        return ngx_http_llm_fail(r, NGX_HTTP_NOT_FOUND, "model_not_found",
                                 "model", "The model `%V` does not exist or "
                                 "you do not have access to it.",
                                 &ctx->chat.model);
    }

    if (ctx->key && !ngx_http_llm_model_allowed(ctx->key, &ctx->chat.model)) {
        return ngx_http_llm_fail(r, NGX_HTTP_FORBIDDEN, "model_not_allowed",
                                 "model", "The key `%V` may not use model "
                                 "`%V`.", &ctx->key->name, &ctx->chat.model);
    }

    ctx->zone = lmcf->zone;

    rc = ngx_http_llm_reserve(r, ctx);

    if (rc != NGX_OK) {
        return (rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
    }

    ctx->start = ngx_current_msec;

    if (ctx->route->deadline) {
        ctx->deadline.handler = ngx_http_llm_deadline_handler;
        ctx->deadline.data = r;
        ctx->deadline.log = r->connection->log;

        ngx_add_timer(&ctx->deadline, ctx->route->deadline);
    }

    return NGX_OK;
}


/*
 * An attempt failed after the header filter or nginx gave up on it. The
 * filter has recorded a provider's failure already; nginx's own (connect
 * error, timeout) is recorded here.
 */

static ngx_int_t
ngx_http_llm_after_failure(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              status, next;
    ngx_msec_t              delay, max;
    ngx_http_llm_outcome_t  o;

    if (ctx->failover) {
        ctx->failover = 0;
        next = 1;

    } else {
        status = (r->upstream && r->upstream->state
                  && r->upstream->state->status)
                 ? r->upstream->state->status : NGX_HTTP_BAD_GATEWAY;

        if (ctx->resp && ctx->resp->header_held) {
            /* a held answer cut short or unreadable: its 200 never went */
            ctx->resp = NULL;
            ngx_http_llm_clear_headers_out(r);
        }

        if (status < NGX_HTTP_SPECIAL_RESPONSE) {
            status = NGX_HTTP_BAD_GATEWAY;
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

    for (next = 1; next < ctx->same[ctx->target->index] && delay < max; next++)
    {
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


static void
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

static void
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
 * One attempt: the target the balancer chooses (or the same again), and
 * the upstream request built for it. NGX_DECLINED lets the content
 * handler, proxy_pass, carry it out.
 */

static ngx_int_t
ngx_http_llm_attempt(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_http_llm_target_t  *t;

    if (ctx->deadline_hit || ctx->attempts >= ctx->route->attempts) {
        return ngx_http_llm_all_failed(r, ctx);
    }

    t = ngx_http_llm_choose(r, ctx);
    if (t == NULL) {
        return ngx_http_llm_all_failed(r, ctx);
    }

    if (ctx->retry_same) {
        ctx->retry_same = 0;

    } else {
        ctx->target = t;
    }

    ctx->attempts++;
    ctx->same[t->index]++;
    ctx->attempt_start = ngx_current_msec;
    ctx->ttfb = (ngx_msec_t) -1;

    /* the key names the target's dialect: decided per attempt */
    ngx_http_llm_cache_decide(r, ctx);

    rc = ngx_http_llm_prepare_attempt(r, ctx);

    if (rc == NGX_DECLINED) {
        /* a name that would change the provider's URL, say: not sent */
        ngx_http_llm_release_abandoned(ctx, ctx->zone);
        ngx_http_llm_restore_request(r, ctx);

        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_model",
                                 "model", "The model `%V` cannot be sent "
                                 "to provider `%V`: its name may hold "
                                 "letters, digits, \"-\", \"_\" and \".\" "
                                 "only.", &ctx->target_model,
                                 &ctx->target->provider->name);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->proxying = 1;

    return NGX_DECLINED;
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

    idx = ctx->target->index;

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


static ngx_int_t
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


uint64_t
ngx_http_llm_usec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * The response is complete (its last buffer went out), or the request
 * ends without one: what it used is settled against its limits, and the
 * attempt that answered goes into the target's health. A stream that
 * broke, a 429 or a 5xx passed on count against the target; the time to
 * first event (streams) or the upstream's response time (others) are its
 * latency samples. Done once, as soon as possible: the log phase may
 * come much later, after a lingering close.
 */

void
ngx_http_llm_complete(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              status;
    ngx_http_llm_outcome_t  o;

    if (ctx->completed) {
        return;
    }

    ctx->completed = 1;

    ngx_http_llm_account(r, ctx);

    ngx_http_llm_metrics_record(r, ctx);

    ngx_http_llm_settle(r, ctx);

    if (ctx->node == NULL) {
        return;
    }

    status = r->headers_out.status;

    if (ctx->cache_hit
        || status == 0 || status == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || (r->connection->error && !(ctx->resp && ctx->resp->broken)))
    {
        /* no provider was asked, or the client went away */
        ngx_http_llm_release_abandoned(ctx, ctx->zone);
        return;
    }

    o.status = status;
    o.retry_after = ctx->retry_after;
    o.ttfb = (ngx_msec_t) -1;
    o.latency = (ngx_msec_t) -1;
    o.output_tokens = ctx->usage.reported ? ctx->usage.completion : 0;

    if (ctx->resp && ctx->resp->broken) {
        o.result = NGX_HTTP_LLM_FAILED;

    } else if (ctx->resp && ctx->resp->mode == NGX_HTTP_LLM_RESP_SCAN
               && !ctx->resp->done)
    {
        /*
         * a 2xx that was no whole answer (an error object, not JSON, cut
         * short) went to the client as it came, but the target failed
         */
        o.result = NGX_HTTP_LLM_FAILED;

    } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        o.result = NGX_HTTP_LLM_RATE_LIMITED;

    } else if (status == NGX_HTTP_GATEWAY_TIME_OUT) {
        o.result = NGX_HTTP_LLM_TIMED_OUT;

    } else if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        o.result = NGX_HTTP_LLM_FAILED;

    } else {
        o.result = NGX_HTTP_LLM_OK;

        if (ctx->chat.stream) {
            o.ttfb = ctx->ttfb;

        } else if (r->upstream && r->upstream->state
                   && r->upstream->state->response_time != (ngx_msec_t) -1)
        {
            o.latency = r->upstream->state->response_time;
        }
    }

    (void) ngx_http_llm_release(r, ctx, &o);
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
        || r->headers_out.status / 100 != 2)
    {
        /* no answer: nothing was used */
        return;
    }

    if (!ctx->usage.reported) {
        ctx->usage.prompt = (ctx->chat.message_bytes + 3) / 4
                            + 4 * ctx->chat.messages;
        ctx->usage.completion = (ctx->content_bytes + 3) / 4;
        ctx->usage.cached = 0;
    }

    ctx->cost = ngx_http_llm_cost(ctx->target, &ctx->usage);

    if (ctx->cache_hit) {
        /* no provider was paid: a hit costs the configured share */

        lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

        ctx->usage.prompt = ctx->usage.prompt * lmcf->cache_charge / 100;
        ctx->usage.completion = ctx->usage.completion * lmcf->cache_charge
                                / 100;
        ctx->usage.cached = ctx->usage.cached * lmcf->cache_charge / 100;
        ctx->cost = ctx->cost * lmcf->cache_charge / 100;
    }
}
