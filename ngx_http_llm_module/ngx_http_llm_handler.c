
/*
 * The request path: the precontent phase handler reads and parses the
 * body, picks a target and prepares the attempt that proxy_pass carries
 * out. A failed attempt comes back here through error_page; the next one
 * is built for its own target, after a backoff when it retries the same.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_keys.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_handler.h"
#include "ngx_http_llm_accounting.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_models.h"
#include "ngx_http_llm_rules.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_metrics.h"
#include "ngx_http_llm_failover.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_embeddings.h"
#include "ngx_http_llm_responses.h"
#include "ngx_http_llm_dialect.h"


static void ngx_http_llm_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_prepare(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_legacy_targets(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_count_target(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


ngx_int_t
ngx_http_llm_handler(ngx_http_request_t *r)
{
    uint64_t                  t0;
    ngx_int_t                 rc;
    ngx_table_elt_t          *h;
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
        case NGX_HTTP_LLM_EP_EMBEDDINGS:
        case NGX_HTTP_LLM_EP_COMPLETIONS:
        case NGX_HTTP_LLM_EP_COUNT_TOKENS:
        case NGX_HTTP_LLM_EP_RESPONSES:
            if (r->method != NGX_HTTP_POST) {
                return ngx_http_llm_fail(r, NGX_HTTP_NOT_ALLOWED,
                                         "method_not_allowed", NULL,
                                         "Method %V is not allowed for %V; "
                                         "use POST.", &r->method_name,
                                         &r->uri);
            }

            /* a compressed body would read as JSON that is not */

            h = ngx_http_llm_find_header(&r->headers_in.headers,
                                         "content-encoding");

            if (h && !(h->value.len == sizeof("identity") - 1
                       && ngx_strncasecmp(h->value.data,
                                          (u_char *) "identity",
                                          sizeof("identity") - 1)
                          == 0))
            {
                return ngx_http_llm_fail(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                         "unsupported_content_encoding",
                                         NULL, "Content-Encoding `%V` is not "
                                         "supported: send the request body "
                                         "uncompressed.", &h->value);
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


ngx_http_llm_endpoint_e
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

    if (ngx_http_llm_ends_with("/v1/messages/count_tokens")) {
        return NGX_HTTP_LLM_EP_COUNT_TOKENS;
    }

    if (ngx_http_llm_ends_with("/v1/messages")) {
        return NGX_HTTP_LLM_EP_MESSAGES;
    }

    /* legacy text completions (vLLM, llama.cpp, TGI serve them) */

    if (ngx_http_llm_ends_with("/v1/completions")) {
        return NGX_HTTP_LLM_EP_COMPLETIONS;
    }

    /* OpenAI's Responses API */

    if (ngx_http_llm_ends_with("/v1/responses")) {
        return NGX_HTTP_LLM_EP_RESPONSES;
    }

    if (ngx_http_llm_ends_with("/models")) {
        return NGX_HTTP_LLM_EP_MODELS;
    }

    /* /models/<id>, where the id may contain slashes ("openai/gpt-4o") */

    for (p = uri->data; p + sizeof("/models/") - 1 < last; p++) {
        if (ngx_strncmp(p, "/models/", sizeof("/models/") - 1) == 0) {
            return NGX_HTTP_LLM_EP_MODEL;
        }
    }

    /* after /models/<id>: a model's id may end so */

    if (ngx_http_llm_ends_with("/embeddings")) {
        return NGX_HTTP_LLM_EP_EMBEDDINGS;
    }

#undef ngx_http_llm_ends_with

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

    if (rc == NGX_OK && ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        rc = ngx_http_llm_embeddings_parse(r, ctx, &problem);
    }

    if (rc == NGX_OK && ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        rc = ngx_http_llm_responses_parse(r, ctx, &problem);
    }

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

    /* a "when" rule may send it to another route's targets */
    ctx->asked_route = ctx->route;
    ctx->route = ngx_http_llm_rules_apply(r, ctx, ctx->route);

    if (ctx->embed) {
        rc = ngx_http_llm_embeddings_check_route(r, ctx, &problem);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_llm_fail(r, problem.status, problem.code,
                                     problem.param, "%*s", problem.len,
                                     problem.message);
        }
    }

    /* the policy may be the route's: checked once the route is known */
    rc = ngx_http_llm_guard_request(r, ctx);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->key && !ngx_http_llm_model_allowed(ctx->key, &ctx->chat.model)) {
        return ngx_http_llm_fail(r, NGX_HTTP_FORBIDDEN, "model_not_allowed",
                                 "model", "The key `%V` may not use model "
                                 "`%V`.", &ctx->key->name, &ctx->chat.model);
    }

    /* the endpoints that some targets' formats do not serve */

    if (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS) {
        rc = ngx_http_llm_legacy_targets(r, ctx);

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS) {
        rc = ngx_http_llm_count_target(r, ctx);

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        rc = ngx_http_llm_responses_check_route(r, ctx);

    } else {
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ctx->zone = lmcf->zone;

    /* a count is reserved as a request of no tokens (limits.c) */

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
 * Legacy completions go to OpenAI-format targets only, which take them as
 * they are: the others of the route are skipped, as if tried already; a
 * route without one is refused.
 */

static ngx_int_t
ngx_http_llm_legacy_targets(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              i, usable;
    ngx_http_llm_target_t  *t;

    t = ctx->route->targets.elts;
    usable = 0;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (t[i].provider->completions_url.len) {
            usable++;

        } else {
            ctx->tried |= (uint64_t) 1 << i;
        }
    }

    if (usable == 0) {
        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "unsupported_endpoint", "model",
                                 "The endpoint /v1/completions is served "
                                 "by OpenAI-format targets only; the "
                                 "targets of model `%V` are not (provider "
                                 "`%V` is in format \"%V\").",
                                 &ctx->chat.model, &t[0].provider->name,
                                 &t[0].provider->dialect->name);
    }

    return NGX_OK;
}


/*
 * Token counts go to the route's first Anthropic-format target alone, so
 * that a model's count does not depend on which target a strategy would
 * choose; a route without one is refused.
 */

static ngx_int_t
ngx_http_llm_count_target(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              i, first;
    ngx_http_llm_target_t  *t;

    t = ctx->route->targets.elts;
    first = ctx->route->targets.nelts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (t[i].provider->dialect == &ngx_http_llm_anthropic_dialect
            && !t[i].provider->disabled && first == ctx->route->targets.nelts)
        {
            first = i;
            continue;
        }

        ctx->tried |= (uint64_t) 1 << i;
    }

    if (first == ctx->route->targets.nelts) {
        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "unsupported_endpoint", "model",
                                 "The model `%V` cannot count tokens: "
                                 "/v1/messages/count_tokens is served by "
                                 "Anthropic-format targets only, and its "
                                 "target's provider `%V` is in format "
                                 "\"%V\".", &ctx->chat.model,
                                 &t[0].provider->name,
                                 &t[0].provider->dialect->name);
    }

    return NGX_OK;
}


/*
 * One attempt: the target the balancer chooses (or the same again), and
 * the upstream request built for it. NGX_DECLINED lets the content
 * handler, proxy_pass, carry it out.
 */

ngx_int_t
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

    ctx->error_status = 0;
    ctx->upstream_rc = 0;
    ngx_str_null(&ctx->error_message);

    ctx->attempts++;
    ctx->same[ngx_http_llm_target_index(ctx->route, t)]++;
    ctx->attempt_start = ngx_current_msec;
    ctx->ttfb = (ngx_msec_t) -1;

    /* the key names the target's dialect: decided per attempt */
    ngx_http_llm_cache_decide(r, ctx);

    rc = ngx_http_llm_prepare_attempt(r, ctx);

    if (rc == NGX_DECLINED) {
        /* a name that would change the provider's URL, say: not sent */
        ngx_http_llm_release_abandoned(ctx, ctx->zone);
        ngx_http_llm_restore_request(r, ctx);

        if (ctx->target_model.len == 0) {
            return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_model",
                                     "model", "The model `%V` names no model "
                                     "for provider `%V`: the route's "
                                     "pattern leaves it empty.",
                                     &ctx->chat.model,
                                     &ctx->target->provider->name);
        }

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

