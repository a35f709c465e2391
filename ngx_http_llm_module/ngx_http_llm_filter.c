
/*
 * Response filters of gateway locations: failures become failovers,
 * streams go unbuffered, nginx's error pages become JSON.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_accounting.h"
#include "ngx_http_llm_filter.h"
#include "ngx_http_llm_failover.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_balancer.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_handler.h"


static ngx_int_t ngx_http_llm_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_llm_replace_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_replace_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status, const char *code,
    ngx_str_t *message);
static ngx_int_t ngx_http_llm_is_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_held_filter_init(void *data);
static ngx_int_t ngx_http_llm_held_input_filter(ngx_event_pipe_t *p,
    ngx_buf_t *buf);
static ngx_int_t ngx_http_llm_held_answer(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **chain);
static ngx_int_t ngx_http_llm_stream_filter_init(void *data);
static ngx_int_t ngx_http_llm_stream_input_filter(void *data,
    ssize_t bytes);
static void ngx_http_llm_stream_finalize(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_llm_held_stream(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **chain);
static ngx_int_t ngx_http_llm_header_push(ngx_http_request_t *r,
    u_char *name, size_t len, ngx_str_t *value);
static ngx_int_t ngx_http_llm_provider_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status, ngx_uint_t invalid);
static void ngx_http_llm_mask_headers(ngx_http_request_t *r,
    ngx_http_llm_provider_t *p);


/* what a held stream keeps before its answer (comments): then it goes */
#define NGX_HTTP_LLM_STREAM_HELD_MAX  65536

/* a header of a literal name, its length known when compiled */
#define ngx_http_llm_header_out(r, name, value)                              \
    ngx_http_llm_header_push(r, (u_char *) name, sizeof(name) - 1, value)


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_llm_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_llm_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_llm_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                 value;
    ngx_uint_t                status, reason, invalid, native;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_outcome_t    o;
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    if (r != r->main
        || !(llcf->enable
             || (llcf->gateway_server
                 && r->err_status >= NGX_HTTP_BAD_REQUEST)))
    {
        /*
         * not a gateway's; but in a server with a gateway, what nginx
         * refuses before it chooses a location (a request line or header
         * it cannot read, a URL no location takes) is answered as a
         * gateway would
         */
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx && ctx->own_response) {
        return ngx_http_next_header_filter(r);
    }

    if (r->err_status >= NGX_HTTP_BAD_REQUEST) {
        /* a page nginx generated itself */
        return ngx_http_llm_replace_error_page(r, ctx);
    }

    if (ctx == NULL || !ctx->proxying || r->upstream == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* a provider's response; nothing has been sent to the client yet */

    invalid = 0;

    if (r->http_version == NGX_HTTP_VERSION_9) {

        /*
         * The provider sent no valid status line: the proxy module takes
         * that for an HTTP/0.9 answer, and switches the client's request
         * to HTTP/0.9, which would give the client the provider's bytes
         * without any status line or header. It is an invalid response,
         * i.e. an error; the client's HTTP version is restored for the
         * answer it gets instead.
         */

        r->http_version = r->http_major * 1000 + r->http_minor;

        invalid = 1;

    } else if (!r->cached
               && (r->headers_out.status < NGX_HTTP_OK
                   || (r->headers_out.status >= NGX_HTTP_SPECIAL_RESPONSE
                       && r->headers_out.status < NGX_HTTP_BAD_REQUEST
                       && r->headers_out.status != NGX_HTTP_NOT_MODIFIED)))
    {
        /*
         * An interim answer (103 Early Hints, 100 Continue), which the
         * proxy module takes for the final one and would pass on with
         * what follows it as a body, or a redirect to where the gateway
         * does not send the client: not an answer, an invalid response.
         */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm: provider \"%V\" answered with status %ui, "
                      "which is not an answer", &ctx->target->provider->name,
                      r->headers_out.status);

        invalid = 1;

    } else if (!r->cached && r->headers_out.status / 100 == 2
               && r->headers_out.content_length_n == 0)
    {
        /* no API of the gateway's answers with nothing */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm: provider \"%V\" answered %ui with an empty "
                      "body, which is not an answer",
                      &ctx->target->provider->name, r->headers_out.status);

        invalid = 1;
    }

    if (invalid) {
        /* the client gets the gateway's 502, none of the provider's */
        ngx_http_llm_clear_headers_out(r);
        r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
    }

    status = r->headers_out.status;
    reason = invalid ? NGX_HTTP_LLM_FO_ERROR
                     : ngx_http_llm_failover_reason(status);

    if (reason) {
        o.result = (status == NGX_HTTP_TOO_MANY_REQUESTS)
                   ? NGX_HTTP_LLM_RATE_LIMITED
                   : (status == NGX_HTTP_GATEWAY_TIME_OUT)
                     ? NGX_HTTP_LLM_TIMED_OUT : NGX_HTTP_LLM_FAILED;
        o.status = status;
        o.retry_after = ngx_http_llm_retry_after(r);
        o.ttfb = (ngx_msec_t) -1;
        o.latency = (ngx_msec_t) -1;
        o.output_tokens = 0;

        if (ngx_http_llm_plan_next(r, ctx, &o, reason)) {
            ctx->failover = 1;

            /* the next attempt's response must not inherit these headers */
            ngx_http_llm_clear_headers_out(r);

            return NGX_HTTP_BAD_GATEWAY;
        }

        /* no other attempt: the client gets this one, recorded already */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm: provider \"%V\" failed with %ui for model \"%V\" "
                      "(attempt %ui), passed on", &ctx->target->provider->name,
                      status, &ctx->chat.model, ctx->attempts);
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->target->provider->secrets && !invalid) {
        ngx_http_llm_mask_headers(r, ctx->target->provider);
    }

    ngx_http_llm_cache_response(r, ctx);

    if (ngx_http_llm_response_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_response_start(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (invalid
        || (status >= NGX_HTTP_BAD_REQUEST && !ngx_http_llm_is_json(r)))
    {
        return ngx_http_llm_provider_error_page(r, ctx, status, invalid);
    }

    if (ctx->chat.stream && status == NGX_HTTP_OK) {

        /*
         * Server-sent events go out as they arrive. The upstream reads
         * u->buffering after this filter returns, as it would after an
         * "X-Accel-Buffering: no" from the provider. A stream on its way
         * into the cache stays buffered, which caching needs: buffered,
         * nginx still passes on each piece of a chunked response as it
         * comes, and the response filter flushes every event.
         */

        if (!(r->cache && ctx->cache_eligible && !ctx->cache_no_store)) {
            r->upstream->buffering = 0;

            /*
             * Its header waits for the first event of the answer: a
             * provider that fails before it (its error event first, a
             * connection closed or silent after the header) fails over
             * as if it had never answered. Only a body whose end nginx
             * can tell (chunked, or of a length): an end by closing the
             * connection is not told from a failure.
             */

            if (r->upstream->headers_in.chunked
                || r->upstream->headers_in.content_length_n > 0)
            {
                ctx->resp->stream_held = 1;
                ctx->input_filter_init = r->upstream->input_filter_init;
                r->upstream->input_filter_init =
                                            ngx_http_llm_stream_filter_init;
            }
        }

        /* and so do nginx instances in front of this one */

        ngx_str_set(&value, "no");

        if (ngx_http_llm_header_out(r, "X-Accel-Buffering", &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->resp->stream_held) {
        /* sent with the answer's first event, ngx_http_llm_held_stream() */
        return NGX_OK;
    }

    /*
     * An answer in the client's own API (observed, not translated) is
     * held as a translated one is: its header waits for the whole body,
     * so that one cut short fails over (ngx_http_llm_held_answer()). A
     * hit is whole already; an end by closing is not told from a cut.
     */

    native = status / 100 == 2 && !r->cached && !ctx->resp->header_held
             && (ctx->resp->mode == NGX_HTTP_LLM_RESP_SCAN
                 || (ctx->resp->mode == NGX_HTTP_LLM_RESP_BUFFER
                     && !ctx->resp->error_body));

    if (ctx->resp->header_held || native) {
        /* sent with the whole body, see ngx_http_llm_held_answer() */

        if (r->upstream->buffering && r->upstream->input_filter_init
            && (r->upstream->headers_in.content_length_n > 0
                || r->upstream->headers_in.chunked))
        {
            ctx->input_filter_init = r->upstream->input_filter_init;
            r->upstream->input_filter_init = ngx_http_llm_held_filter_init;

            if (native) {
                ctx->resp->header_held = 1;
                ctx->resp->native_held = 1;
            }
        }

        if (ctx->resp->header_held) {
            return NGX_OK;
        }
    }

    return ngx_http_next_header_filter(r);
}


/*
 * The provider's own headers, passed on: one that echoes a secret (a
 * debugging header, a Location with the key in its query) has it masked.
 */

static void
ngx_http_llm_mask_headers(ngx_http_request_t *r, ngx_http_llm_provider_t *p)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash && h[i].value.len >= 8) {
            (void) ngx_http_llm_provider_mask(p, h[i].value.data,
                                              h[i].value.len);
        }
    }
}


/*
 * Which attempt served, after how many, and the time the gateway itself
 * spent on the request before the response (in milliseconds, with
 * microseconds), as LiteLLM's x-litellm-overhead-duration-ms.
 */

ngx_int_t
ngx_http_llm_response_headers(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    u_char                   *p;
    ngx_str_t                 value;
    ngx_http_llm_loc_conf_t  *llcf;

    if (ngx_http_llm_ratelimit_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    if (!llcf->response_headers) {
        /* "llm_response_headers off": clients are not told what served */
        return NGX_OK;
    }

    if (ctx->digest && ctx->attempts) {
        /* HIT, MISS, BYPASS, EXPIRED ..., as $llm_cache_status */

        value.data = (u_char *) (ctx->cache_hit ? "HIT"
                     : !ctx->cache_eligible || ctx->cache_no_lookup
                       ? "BYPASS"
                     : ctx->cache_status == NGX_HTTP_CACHE_EXPIRED ? "EXPIRED"
                     : ctx->cache_status == NGX_HTTP_CACHE_STALE ? "STALE"
                     : "MISS");
        value.len = ngx_strlen(value.data);

        if (ngx_http_llm_header_out(r, "x-llm-cache", &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->attempts == 0) {
        return NGX_OK;
    }

    if (ngx_http_llm_header_out(r, "x-llm-provider",
                                &ctx->target->provider->name)
           != NGX_OK
        || ngx_http_llm_header_out(r, "x-llm-model", &ctx->target_model)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* both numbers' text in one allocation */

    p = ngx_pnalloc(r->pool,
                    NGX_INT_T_LEN + NGX_INT64_LEN + sizeof(".000") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    p = ngx_http_llm_uint_text(p, ctx->attempts);
    value.len = p - value.data;

    if (ngx_http_llm_header_out(r, "x-llm-attempts", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    value.data = p;
    p = ngx_http_llm_uint_text(p, ctx->overhead / 1000);
    *p++ = '.';
    *p++ = (u_char) ('0' + ctx->overhead % 1000 / 100);
    *p++ = (u_char) ('0' + ctx->overhead % 100 / 10);
    *p++ = (u_char) ('0' + ctx->overhead % 10);
    value.len = p - value.data;

    return ngx_http_llm_header_out(r, "x-llm-overhead-ms", &value);
}


static ngx_int_t
ngx_http_llm_header_push(ngx_http_request_t *r, u_char *name, size_t len,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = name;
    h->key.len = len;
    h->value = *value;

    return NGX_OK;
}


/*
 * A provider's error that is not JSON (a CDN's HTML page, plain text) is
 * replaced by an OpenAI-shaped error with the provider's status; so is an
 * answer that was not HTTP at all (invalid), with 502.
 */

static ngx_int_t
ngx_http_llm_provider_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status, ngx_uint_t invalid)
{
    u_char     buf[256];
    ngx_str_t  message;

    message.data = buf;
    message.len = (invalid ? ngx_snprintf(buf, sizeof(buf), "Provider `%V` "
                                          "sent an invalid response.",
                                          &ctx->target->provider->name)
                           : ngx_snprintf(buf, sizeof(buf), "Provider `%V` "
                                          "answered HTTP %ui without a JSON "
                                          "error.",
                                          &ctx->target->provider->name,
                                          status))
                  - buf;

    return ngx_http_llm_replace_body(r, ctx, status, "upstream_error",
                                     &message);
}


static ngx_int_t
ngx_http_llm_is_json(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    type = &r->headers_out.content_type;

    return type->len >= sizeof("json") - 1
           && ngx_strlcasestrn(type->data, type->data + type->len,
                               (u_char *) "json", sizeof("json") - 2)
              != NULL;
}


void
ngx_http_llm_clear_headers_out(ngx_http_request_t *r)
{
    ngx_memzero(&r->headers_out, sizeof(ngx_http_headers_out_t));

    if (ngx_list_init(&r->headers_out.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, r->pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        /* an empty list still works: nginx pushes into a new part */
        return;
    }

    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;
}


static ngx_int_t
ngx_http_llm_replace_error_page(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_str_t                  message;
    ngx_uint_t                 status;
    const char                *code;
    u_char                     buf[128];
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx == NULL) {
        ctx = ngx_http_llm_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        /* refused before the handler ran (a body too large by its
           Content-Length): the door still chooses the error's shape */
        ctx->endpoint = ngx_http_llm_endpoint(r);
    }

    status = r->err_status;
    code = NULL;

    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        message.len = ngx_sprintf(buf, "The request body is larger than the "
                                  "gateway accepts (%O bytes).",
                                  clcf->client_max_body_size)
                      - buf;
        message.data = buf;
        code = "request_too_large";
        break;

    case NGX_HTTP_BAD_GATEWAY:
        ngx_str_set(&message, "The provider could not be reached or sent "
                              "an invalid response.");
        code = "upstream_error";
        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        ngx_str_set(&message, "The provider did not answer in time.");
        code = "upstream_timeout";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        ngx_str_set(&message, "Method not allowed.");
        code = "method_not_allowed";
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        ngx_str_set(&message, "The request was not received in time.");
        break;

    case NGX_HTTP_BAD_REQUEST:
        /* nginx's own: its parser refused the request line, a header or
           a chunked body */
        ngx_str_set(&message, "The request is not valid HTTP: its request "
                              "line, a header or its chunked body could not "
                              "be read.");
        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_str_set(&message, "Too many requests.");
        code = "rate_limit_exceeded";
        break;

    case NGX_HTTP_NOT_FOUND:
        /* a URL no location of a gateway's server takes, as OpenAI says */
        message.len = sizeof("Invalid URL ( ).") - 1 + r->method_name.len
                      + r->uri.len;
        message.data = ngx_pnalloc(r->pool, message.len);
        if (message.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(message.data, "Invalid URL (%V %V).", &r->method_name,
                    &r->uri);
        break;

    default:
        message.len = ngx_sprintf(buf, "The gateway answered HTTP %ui.",
                                  status)
                      - buf;
        message.data = buf;
    }

    return ngx_http_llm_replace_body(r, ctx, status, code, &message);
}


/* the response goes on with these headers and an error body of ours */

static ngx_int_t
ngx_http_llm_replace_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_uint_t status, const char *code, ngx_str_t *message)
{
    if (ngx_http_llm_client_error_json(r, status, code, NULL, message,
                                       &ctx->replacement)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->replace_body = 1;

    r->headers_out.content_length_n = ctx->replacement.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return ngx_http_next_header_filter(r);
}


ngx_uint_t
ngx_http_llm_chain_ends(ngx_chain_t *cl)
{
    for ( /* void */ ; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            return 1;
        }
    }

    return 0;
}


/*
 * The upstream module takes the header for sent once the header filters
 * returned, and calls this right after. For a body of known length
 * nothing went out yet: until all of it has come (the proxy module's
 * input filter says so, see below) the header counts as not sent, so that
 * if the provider breaks off, nginx answers 502 and error_page brings the
 * request back for its next attempt.
 */

static ngx_int_t
ngx_http_llm_held_filter_init(void *data)
{
    ngx_http_request_t *r = data;

    ngx_int_t             rc;
    ngx_event_pipe_t     *p;
    ngx_http_llm_ctx_t   *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    rc = ctx->input_filter_init(data);

    p = r->upstream->pipe;

    if (rc == NGX_OK && p && p->input_filter && !p->upstream_done) {
        ctx->pipe_input_filter = p->input_filter;
        p->input_filter = ngx_http_llm_held_input_filter;
        r->upstream->header_sent = 0;
    }

    return rc;
}


/* each piece of the body: "sent" again once the body has come whole */

static ngx_int_t
ngx_http_llm_held_input_filter(ngx_event_pipe_t *p, ngx_buf_t *buf)
{
    ngx_http_request_t *r = p->input_ctx;

    ngx_int_t             rc;
    ngx_http_llm_ctx_t   *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    rc = ctx->pipe_input_filter(p, buf);

    if (rc == NGX_ERROR && !r->upstream->header_sent) {
        /*
         * a body that cannot be read (a chunk that is not one): the
         * upstream then ends as for a body cut short (a 502, a failed
         * attempt), not as if the client's connection had failed
         */
        p->upstream_error = 1;
        return NGX_OK;
    }

    /*
     * nothing left to read: the proxy module's filters set p->length to 0
     * at the end of a body of known length and after the last chunk
     */

    if (p->upstream_done || p->length == 0) {
        r->upstream->header_sent = 1;
    }

    return rc;
}


/*
 * A translated answer whose header was held (nothing has reached the
 * client). While its body is incomplete, the upstream is told that no
 * header went out, so that nginx ends an answer cut short with a 502
 * before any header: error_page then brings the request back for the
 * next attempt, as for any failed attempt. A whole body that could not
 * be read fails the same way (returned to nginx's finalization as 502).
 * A whole, readable body goes out after its header.
 */

static ngx_int_t
ngx_http_llm_held_answer(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_chain_t *in, ngx_chain_t **chain)
{
    ngx_int_t                 rc;
    ngx_str_t                 text, json;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_upstream_t      *u;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    u = r->upstream;

    if (*chain == NULL) {

        if (u == NULL) {
            return NGX_OK;
        }

        if (u->cleanup != NULL) {
            /* still reading */
            return NGX_OK;
        }

        for (cl = in; cl; cl = cl->next) {
            if (ngx_buf_special(cl->buf) && cl->buf->flush) {
                break;
            }
        }

        if (cl == NULL) {
            return NGX_OK;
        }

        /*
         * The provider broke off before the gateway saw any of the body,
         * when nginx had already decided that the header was out: too
         * late for another attempt, the client gets a whole 502.
         */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llm: the answer of provider \"%V\" for model \"%V\" "
                      "broke off", &ctx->target->provider->name,
                      &ctx->chat.model);

        ngx_str_set(&text, "The provider's answer broke off before it was "
                           "complete.");

        if (ngx_http_llm_client_error_json(r, NGX_HTTP_BAD_GATEWAY,
                                           "upstream_error", NULL, &text,
                                           &json)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        b = ngx_create_temp_buf(r->pool, json.len);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_ERROR;
        }

        b->last = ngx_cpymem(b->last, json.data, json.len);
        b->last_buf = (r == r->main) ? 1 : 0;
        b->last_in_chain = 1;
        b->flush = 1;
        cl->buf = b;
        cl->next = NULL;

        resp->broken = 1;
        r->keepalive = 0;
        r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
        r->headers_out.status_line.len = 0;
        r->headers_out.content_length_n = json.len;

        *chain = cl;

    } else if (resp->native_held && resp->unreadable
               && !ngx_http_llm_chain_ends(*chain))
    {
        /*
         * a whole body that is not JSON fails as a translated one does,
         * at the response's end, where nginx's finalization takes the
         * 502 below for the attempt's status: until then nothing goes out
         */
        *chain = NULL;
        return NGX_OK;

    } else if ((resp->broken && !resp->native_held)
               || (resp->native_held && resp->unreadable))
    {
        /*
         * a whole body, unreadable or the provider's error: failed (in
         * the client's own API, the provider's error is passed on, and
         * only a body that is not JSON fails)
         */

        if (u && !r->cached) {
            if (resp->canon && resp->canon->failed) {
                /* for the client's error, if no other target answers */
                ctx->error_status = resp->canon->error.status;
                ctx->error_message = resp->canon->error.message;
            }

            u->header_sent = 0;
            return NGX_HTTP_BAD_GATEWAY;
        }

        /* from the cache: the error body it became, with its status */
        r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
        r->headers_out.status_line.len = 0;
    }

    if (resp->canon && resp->canon->refused) {
        /* a guard stopped the answer: its body is the error */
        r->headers_out.status = NGX_HTTP_BAD_REQUEST;
        r->headers_out.status_line.len = 0;
    }

    resp->header_held = 0;

    if (u) {
        u->header_sent = 1;
    }

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        *chain = NULL;
        return rc;
    }

    return NGX_OK;
}


/*
 * A stream's header is held until its first event of the answer (see the
 * header filter). Meanwhile the upstream is told that no header went
 * out: a provider that closes the connection or stays silent makes nginx
 * finalize with 502 or 504 before any header, and error_page brings the
 * request back for its next attempt. Its error event first does the same,
 * by the upstream's error flag (read when the write ends), or by a 502 at
 * the body's end. The non-buffered upstream is given the header as sent
 * at the body's end (below), so that the end reaches this filter.
 */

static ngx_int_t
ngx_http_llm_stream_filter_init(void *data)
{
    ngx_http_request_t *r = data;

    ngx_int_t             rc;
    ngx_http_llm_ctx_t   *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    rc = ctx->input_filter_init(data);

    if (rc == NGX_OK && ctx->resp && ctx->resp->stream_held) {
        r->upstream->header_sent = 0;
        ctx->upstream_input_filter = r->upstream->input_filter;
        r->upstream->input_filter = ngx_http_llm_stream_input_filter;
        ctx->upstream_finalize = r->upstream->finalize_request;
        r->upstream->finalize_request = ngx_http_llm_stream_finalize;
        ctx->upstream_rc = 0;
    }

    return rc;
}


/* how nginx ends it: a silence after the header is a timeout (504) */

static void
ngx_http_llm_stream_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    ctx->upstream_rc = rc;

    ctx->upstream_finalize(r, rc);
}


static ngx_int_t
ngx_http_llm_stream_input_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t *r = data;

    ngx_int_t             rc;
    ngx_http_llm_ctx_t   *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    rc = ctx->upstream_input_filter(data, bytes);

    if (r->upstream->length == 0) {
        /* the body's end: nginx sends it to the filters as for any */
        r->upstream->header_sent = 1;
    }

    return rc;
}


static ngx_int_t
ngx_http_llm_held_stream(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_chain_t *in, ngx_chain_t **chain)
{
    off_t                     held;
    ngx_int_t                 rc;
    ngx_chain_t             **ll;
    ngx_http_upstream_t      *u;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    u = r->upstream;

    if (!resp->answered && u && !r->cached
        && (resp->error_first || resp->broken
            || ngx_http_llm_chain_ends(in)))
    {
        /* nothing of the answer: a failed attempt */

        if (!resp->stream_failed) {
            resp->stream_failed = 1;

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "llm: the stream of provider \"%V\" for model "
                          "\"%V\" failed before its answer began",
                          &ctx->target->provider->name, &ctx->chat.model);
        }

        resp->held = NULL;
        *chain = NULL;

        if (ngx_http_llm_chain_ends(in)) {
            u->header_sent = 0;
            return NGX_HTTP_BAD_GATEWAY;
        }

        if (u->length == 0) {
            /* the body's end was read: it comes next, and fails then */
            return NGX_OK;
        }

        /* the upstream finalizes with 502 once this write returns */
        u->header_sent = 0;
        u->error = 1;

        return NGX_OK;
    }

    if (!resp->answered) {
        /* comments, or part of an event: kept until the answer starts */

        held = 0;

        for (ll = &resp->held; *ll; ll = &(*ll)->next) {
            held += ngx_buf_size((*ll)->buf);
        }

        *ll = *chain;
        *chain = NULL;

        if (held < NGX_HTTP_LLM_STREAM_HELD_MAX) {
            return NGX_OK;
        }

        /* a provider that keeps the client waiting with comments: they
           go out, and the stream with them */

        *chain = resp->held;
        resp->held = NULL;
    }

    resp->stream_held = 0;

    if (u) {
        u->header_sent = 1;
    }

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        *chain = NULL;
        return rc;
    }

    if (resp->held) {
        for (ll = &resp->held; *ll; ll = &(*ll)->next) { /* void */ }

        *ll = *chain;
        *chain = resp->held;
        resp->held = NULL;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_uint_t           last;
    ngx_chain_t         *cl, out, *chain;
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_module);

    if (ctx == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (!ctx->replace_body) {
        if (ctx->resp == NULL) {
            chain = in;
            rc = ngx_http_next_body_filter(r, in);

        } else {
            if (ngx_http_llm_response_body(r, ctx, in, &chain) != NGX_OK) {
                return NGX_ERROR;
            }

            if (ctx->resp->header_held) {
                rc = ngx_http_llm_held_answer(r, ctx, in, &chain);

                if (rc != NGX_OK) {
                    return rc;
                }

            } else if (ctx->resp->stream_held) {
                rc = ngx_http_llm_held_stream(r, ctx, in, &chain);

                if (rc != NGX_OK || ctx->resp->stream_held) {
                    return rc;
                }
            }

            rc = ngx_http_next_body_filter(r, chain);

            ngx_http_llm_response_sent(r, ctx, &chain);
        }

        if (r == r->main && ngx_http_llm_chain_ends(chain)) {
            ngx_http_llm_complete(r, ctx);
        }

        return rc;
    }

    if (in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's own page is swallowed; the JSON goes out in its place */

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last || ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = b->pos + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
