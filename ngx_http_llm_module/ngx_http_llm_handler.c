
/*
 * The request path: the precontent phase handler reads and parses the
 * body, picks a target and prepares the attempt that proxy_pass carries
 * out. A failed attempt comes back here through error_page; the next one
 * is built for its own target.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_error.h"


static ngx_http_llm_endpoint_e ngx_http_llm_endpoint(ngx_http_request_t *r);
static void ngx_http_llm_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_prepare(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_attempt(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_all_failed(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


ngx_int_t
ngx_http_llm_handler(ngx_http_request_t *r)
{
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

    if (ctx->proxying) {

        /* error_page brought a failed attempt back */

        ctx->proxying = 0;

        if (!ctx->failover) {
            /* nginx could not get a response: connect error or timeout */
            ctx->failed_status = (r->upstream && r->upstream->state
                                  && r->upstream->state->status)
                                 ? r->upstream->state->status
                                 : NGX_HTTP_BAD_GATEWAY;
            ctx->failed_provider = ctx->target->provider;
        }

        ctx->failover = 0;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm: provider \"%V\" failed with %ui for model "
                      "\"%V\" (attempt %ui)", &ctx->target->provider->name,
                      ctx->failed_status, &ctx->chat.model, ctx->attempts);

        return ngx_http_llm_attempt(r, ctx);
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

    if (!ctx->prepared) {
        ctx->prepared = 1;

        rc = ngx_http_llm_prepare(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_llm_attempt(r, ctx);
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


/* once per request: parse, validate and find the route */

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

    rc = ngx_http_llm_parse_chat(r, ctx, &problem);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_llm_fail(r, problem.status, problem.code,
                                 problem.param, "%*s", problem.len,
                                 problem.message);
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    ctx->route = ngx_http_llm_find_route(lmcf, &ctx->chat.model,
                                         &ctx->glob_capture);

    if (ctx->route == NULL) {
        return ngx_http_llm_fail(r, NGX_HTTP_NOT_FOUND, "model_not_found",
                                 "model", "The model `%V` does not exist or "
                                 "you do not have access to it.",
                                 &ctx->chat.model);
    }

    return NGX_OK;
}


/*
 * One attempt: the next target, and the upstream request built for it.
 * NGX_DECLINED lets the content handler, proxy_pass, carry it out.
 */

static ngx_int_t
ngx_http_llm_attempt(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_http_llm_target_t  *t;

    if (ctx->attempts >= ctx->route->attempts) {
        return ngx_http_llm_all_failed(r, ctx);
    }

    t = ngx_http_llm_next_target(r, ctx);
    if (t == NULL) {
        return ngx_http_llm_all_failed(r, ctx);
    }

    ctx->target = t;
    ctx->tried |= (uint64_t) 1 << t->index;
    ctx->attempts++;

    rc = ngx_http_llm_prepare_attempt(r, ctx);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->proxying = 1;

    return NGX_DECLINED;
}


/* whether a failed attempt may be followed by another */

ngx_int_t
ngx_http_llm_can_retry(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              i;
    ngx_http_llm_target_t  *t;

    if (ctx->attempts >= ctx->route->attempts) {
        return 0;
    }

    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (!(ctx->tried & ((uint64_t) 1 << i)) && !t[i].provider->disabled) {
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
