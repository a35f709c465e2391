
/*
 * Provider responses on their way to the client: framed, read for usage,
 * translated when the provider speaks another API (docs/architecture.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_embeddings.h"
#include "ngx_http_llm_responses.h"
#include "ngx_http_llm_provider.h"


/* an event longer than this is not an LLM stream event */
#define NGX_HTTP_LLM_MAX_EVENT  (4 * 1024 * 1024)

/* a body read whole for translation */
#define NGX_HTTP_LLM_MAX_BODY   (64 * 1024 * 1024)

/*
 * After a stream's last event, the time its provider has to end its
 * response itself (the connection then kept for another request) before
 * the gateway ends it: the end of a chunked body may come in a segment of
 * its own, delayed ACKs included
 */
#define NGX_HTTP_LLM_STREAM_END_GRACE  250


static ngx_int_t ngx_http_llm_response_event(void *data,
    ngx_http_llm_sse_event_t *ev);
static ngx_int_t ngx_http_llm_response_write_edited(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, ngx_http_llm_sse_event_t *ev);
static void ngx_http_llm_response_error_2xx(ngx_http_llm_response_t *resp,
    ngx_chain_t *in);
static ngx_int_t ngx_http_llm_response_event_out(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev);
static void ngx_http_llm_response_error_event(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev);
static void ngx_http_llm_response_keep_error(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_perror_t *err);
static ngx_int_t ngx_http_llm_response_write(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, u_char *data, size_t len);
static ngx_int_t ngx_http_llm_response_fail(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, const char *message);
static ngx_int_t ngx_http_llm_response_end(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp);
static void ngx_http_llm_response_await_end(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_response_end_handler(ngx_event_t *ev);
static void ngx_http_llm_response_end_upstream(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_response_drop(void *data, ssize_t bytes);
static ngx_int_t ngx_http_llm_response_buffer(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out);
static ngx_int_t ngx_http_llm_response_keep(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, ngx_chain_t *in, ngx_chain_t **out);
static ngx_int_t ngx_http_llm_response_decode(ngx_http_llm_ctx_t *ctx);
static ngx_uint_t ngx_http_llm_response_arrived(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp);
static ngx_int_t ngx_http_llm_response_translated(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *out);
static ngx_int_t ngx_http_llm_response_canon_write(void *data, u_char *p,
    size_t len);
static ngx_int_t ngx_http_llm_response_canon(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_canon_mode_e mode,
    ngx_http_llm_guard_t *guard);
static void ngx_http_llm_response_type(ngx_http_request_t *r,
    const char *type);
static ngx_uint_t ngx_http_llm_response_type_is(ngx_http_request_t *r,
    const char *type);


ngx_int_t
ngx_http_llm_response_start(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t                 native, translate, status;
    ngx_http_llm_api_e         client;
    ngx_http_llm_guard_t      *guard;
    ngx_http_llm_dialect_t    *dialect;
    ngx_http_llm_response_t   *resp;
    ngx_http_llm_main_conf_t  *lmcf;

    dialect = ctx->target->provider->dialect;
    client = ngx_http_llm_client_api(ctx);
    status = r->headers_out.status;

    /*
     * the client speaks the provider's API: nothing to translate (a
     * Responses call to an OpenAI-format target is OpenAI's as it is)
     */
    native = (dialect->api == client) || ngx_http_llm_responses_native(ctx);

    /*
     * unless a guard reads the answer: it is decoded and encoded again
     * (the same API), so that rules see its text as the client will
     */
    /* embeddings have no text for rules to read */
    guard = ctx->embed ? NULL : ngx_http_llm_guard_answers(r);
    translate = !native || guard != NULL;

    resp = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_response_t));
    if (resp == NULL) {
        return NGX_ERROR;
    }

    ctx->resp = resp;

    if (status >= NGX_HTTP_BAD_REQUEST && native
        && ctx->target->provider->secrets)
    {
        /*
         * the provider's error, in the client's API already: read whole,
         * so that a key it quotes is masked wherever the network cut it
         */

        resp->mode = NGX_HTTP_LLM_RESP_BUFFER;
        resp->error_body = 1;
        resp->native_error = 1;
        r->filter_need_in_memory = 1;

        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);

        return NGX_OK;
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS) {
        /* {"input_tokens":N}, or an error, in the client's API: passed */
        return NGX_OK;
    }

    if (status == NGX_HTTP_OK
        && (ngx_http_llm_response_type_is(r, "text/event-stream")
            || ngx_http_llm_response_type_is(r,
                                   "application/vnd.amazon.eventstream")))
    {
        if (ngx_http_llm_response_type_is(r, "text/event-stream")) {
            resp->mode = NGX_HTTP_LLM_RESP_SSE;
            resp->sse.pool = r->pool;
            resp->sse.max = NGX_HTTP_LLM_MAX_EVENT;

        } else {
            resp->mode = NGX_HTTP_LLM_RESP_EVENTSTREAM;
            resp->es.pool = r->pool;
            resp->es.max = NGX_HTTP_LLM_MAX_EVENT;
        }

        r->filter_need_in_memory = 1;

        /* events may be dropped or added: the length is not known */
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);

        if (!translate && client != NGX_HTTP_LLM_API_ANTHROPIC) {
            /* the fast path: events pass, read by the dialect */
            return NGX_OK;
        }

        if (translate) {
            ngx_http_llm_response_type(r, "text/event-stream");
        }

        return ngx_http_llm_response_canon(r, ctx,
                                           translate
                                           ? NGX_HTTP_LLM_CANON_STREAM
                                           : NGX_HTTP_LLM_CANON_OBSERVE,
                                           guard);
    }

    if (status / 100 == 2 && ctx->embed && !native) {

        /* embeddings in another API: read whole, written as OpenAI's */

        resp->mode = NGX_HTTP_LLM_RESP_BUFFER;
        resp->header_held = 1;
        r->filter_need_in_memory = 1;

        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_llm_response_type(r, "application/json");

        return NGX_OK;
    }

    if (status / 100 == 2) {

        if (!translate && r->headers_out.content_encoding
            && r->headers_out.content_encoding->hash)
        {
            /*
             * compressed, though no Accept-Encoding is sent: nothing of
             * it can be read, so it is passed on as it came, neither held
             * nor stored in the cache; the target answered
             */
            return NGX_OK;
        }

        if (!translate && client != NGX_HTTP_LLM_API_ANTHROPIC) {
            lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

            /*
             * a hit charged nothing needs no usage (llm_cache_charge 0,
             * the default): the stored answer goes unread, from the file
             * as nginx sends any hit
             */

            if (dialect->response_json
                && !(ctx->cache_hit && lmcf->cache_charge == 0))
            {
                resp->mode = NGX_HTTP_LLM_RESP_SCAN;
                r->filter_need_in_memory = 1;
            }

            return NGX_OK;
        }

        if (dialect->decode_body == NULL) {
            return NGX_OK;
        }

        resp->mode = NGX_HTTP_LLM_RESP_BUFFER;
        r->filter_need_in_memory = 1;

        if (translate) {
            ngx_http_clear_content_length(r);
            ngx_http_clear_accept_ranges(r);
            ngx_http_llm_response_type(r, "application/json");

            /*
             * Nothing of a translated answer can go out before all of it
             * came: its header waits too, so that an answer cut short or
             * unreadable fails over as if it had never started.
             */
            resp->header_held = 1;
        }

        return ngx_http_llm_response_canon(r, ctx,
                                           translate
                                           ? NGX_HTTP_LLM_CANON_ACCUMULATE
                                           : NGX_HTTP_LLM_CANON_OBSERVE,
                                           guard);
    }

    if (status >= NGX_HTTP_BAD_REQUEST && !native
        && ngx_http_llm_response_type_is(r, "json"))
    {
        /* the provider's error, in the shape the client's SDK reads */

        resp->mode = NGX_HTTP_LLM_RESP_BUFFER;
        resp->error_body = 1;
        r->filter_need_in_memory = 1;

        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_llm_response_type(r, "application/json");
    }

    return NGX_OK;
}


/*
 * A 2xx answer in the client's own API that begins as an error object
 * (OpenAI's {"error": ...}, Anthropic's {"type":"error", ...}: a failure
 * of the target) may quote the key: it is held whole and masked as a 4xx
 * is. Told by its first bytes: a first piece too short to tell that could
 * begin so is held too.
 */

static void
ngx_http_llm_response_error_2xx(ngx_http_llm_response_t *resp,
    ngx_chain_t *in)
{
    u_char       *p, *last;
    size_t        n, m;
    ngx_chain_t  *cl;

    static u_char  error[] = "{\"error\"";
    static u_char  typed[] = "{\"type\":\"error\"";

    for (cl = in; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf) || cl->buf->pos == cl->buf->last) {
            continue;
        }

        p = cl->buf->pos;
        last = cl->buf->last;

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n'))
        {
            p++;
        }

        if (p == last) {
            continue;
        }

        resp->begun = 1;

        n = ngx_min((size_t) (last - p), sizeof(error) - 1);
        m = ngx_min((size_t) (last - p), sizeof(typed) - 1);

        if (ngx_strncmp(p, error, n) == 0 || ngx_strncmp(p, typed, m) == 0) {
            resp->error_body = 1;
            resp->native_error = 1;
        }

        return;
    }
}


static ngx_int_t
ngx_http_llm_response_canon(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_canon_mode_e mode, ngx_http_llm_guard_t *guard)
{
    ngx_http_llm_canon_t  *c;

    c = ngx_palloc(r->pool, sizeof(ngx_http_llm_canon_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_canon_init(c, r, ctx, mode) != NGX_OK) {
        return NGX_ERROR;
    }

    c->write = ngx_http_llm_response_canon_write;
    c->data = r;

    if (guard && mode != NGX_HTTP_LLM_CANON_OBSERVE
        && ngx_http_llm_canon_guard(c, guard) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->resp->canon = c;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_response_canon_write(void *data, u_char *p, size_t len)
{
    ngx_http_request_t *r = data;

    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx->resp->canon && ctx->resp->canon->failed
        && !ctx->resp->canon->refused)
    {
        /* the provider's error, translated */
        if (!ctx->resp->answered && !ctx->resp->error_first) {
            ctx->resp->error_first = 1;
            ngx_http_llm_response_keep_error(r, ctx,
                                             &ctx->resp->canon->error);
        }

    } else {
        ctx->resp->answered = 1;
    }

    return ngx_http_llm_response_write(r, ctx->resp, p, len);
}


/*
 * The provider's error event before any answer, in the client's own API:
 * its message kept (masked), for the client's error if no other target
 * answers.
 */

static void
ngx_http_llm_response_error_event(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev)
{
    ngx_http_llm_perror_t    err;
    ngx_http_llm_dialect_t  *dialect;

    dialect = ctx->target->provider->dialect;

    ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));

    if (ev->data.len == 0 || dialect->decode_error == NULL
        || dialect->decode_error(r, &ev->data, &err) != NGX_OK
        || err.message.len == 0)
    {
        return;
    }

    ngx_http_llm_response_keep_error(r, ctx, &err);
}


/*
 * A provider's error, for the client's if no other target answers: its
 * status, and its message copied to the request's pool and masked
 */

static void
ngx_http_llm_response_keep_error(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_perror_t *err)
{
    ctx->error_status = err->status;

    if (err->message.len == 0) {
        return;
    }

    ctx->error_message.data = ngx_pnalloc(r->pool, err->message.len);
    if (ctx->error_message.data == NULL) {
        return;
    }

    ngx_memcpy(ctx->error_message.data, err->message.data, err->message.len);
    ctx->error_message.len = err->message.len;

    (void) ngx_http_llm_provider_mask(ctx->target->provider,
                                      ctx->error_message.data,
                                      ctx->error_message.len);
}


/* whether the response's Content-Type contains type */

static ngx_uint_t
ngx_http_llm_response_type_is(ngx_http_request_t *r, const char *type)
{
    size_t      len;
    ngx_str_t  *ct;

    ct = &r->headers_out.content_type;
    len = ngx_strlen(type);

    return ct->len >= len
           && ngx_strlcasestrn(ct->data, ct->data + ct->len, (u_char *) type,
                               len - 1)
              != NULL;
}


static void
ngx_http_llm_response_type(ngx_http_request_t *r, const char *type)
{
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;
}


ngx_int_t
ngx_http_llm_response_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_chain_t *in, ngx_chain_t **out)
{
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_uint_t                last, broken;
    ngx_chain_t              *cl;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;

    if (in == NULL) {
        *out = NULL;
        return NGX_OK;
    }

    if (!resp->cache_held) {
        /*
         * Now that nginx decided whether it stores the response: it is
         * not to be stored until it is complete.
         */

        resp->cache_held = 1;

        if (r->upstream && r->upstream->cacheable && !r->cached
            && r->headers_out.status / 100 == 2)
        {
            ctx->cache_storing = 1;
            ngx_http_llm_cache_complete(r, ctx, 0);
        }
    }

    if (ctx->ttfb == (ngx_msec_t) -1 && resp->mode != NGX_HTTP_LLM_RESP_SSE)
    {
        for (cl = in; cl; cl = cl->next) {
            if (ngx_buf_size(cl->buf)) {
                ctx->ttfb = ngx_current_msec - ctx->attempt_start;
                break;
            }
        }
    }

    if (resp->mode == NGX_HTTP_LLM_RESP_PASS) {
        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                resp->ended = 1;
            }
        }

        *out = in;
        return NGX_OK;
    }

    if (resp->mode == NGX_HTTP_LLM_RESP_BUFFER) {
        return ngx_http_llm_response_buffer(r, ctx, in, out);
    }

    if (resp->mode == NGX_HTTP_LLM_RESP_SCAN) {
        dialect = ctx->target->provider->dialect;

        if (!resp->begun && ctx->target->provider->secrets) {
            ngx_http_llm_response_error_2xx(resp, in);
        }

        for (cl = in; cl; cl = cl->next) {
            b = cl->buf;

            if (ngx_buf_in_memory(b) && b->pos < b->last
                && dialect->response_json(r, ctx, b->pos, b->last - b->pos, 0)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (resp->done) {
                ngx_http_llm_cache_complete(r, ctx, 1);
            }

            if (b->last_buf && !resp->ended) {
                resp->ended = 1;

                if (dialect->response_json(r, ctx, NULL, 0, 1) != NGX_OK) {
                    return NGX_ERROR;
                }
            }
        }

        if (resp->native_error) {
            /* read (above), and held whole to be masked: ended there */
            resp->ended = 0;
            return ngx_http_llm_response_buffer(r, ctx, in, out);
        }

        if (resp->native_held && !resp->kept_whole) {
            return ngx_http_llm_response_keep(r, resp, in, out);
        }

        *out = in;
        return NGX_OK;
    }

    resp->out = NULL;
    resp->last_out = &resp->out;
    resp->buf = NULL;

    last = 0;
    broken = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf) {
            last = 1;
        }

        /*
         * The upstream sends a lone flush when it finalizes with an error
         * after the response started: the provider's connection broke.
         */

        if (ngx_buf_special(b) && b->flush && !b->last_buf
            && r->upstream && r->upstream->cleanup == NULL)
        {
            broken = 1;
        }

        if (resp->ended || b->pos == b->last) {
            b->pos = b->last;
            continue;
        }

        if (resp->mode == NGX_HTTP_LLM_RESP_EVENTSTREAM) {
            rc = ngx_http_llm_es_feed(&resp->es, b->pos, b->last,
                                      ngx_http_llm_response_event, r);

        } else {
            rc = ngx_http_llm_sse_feed(&resp->sse, b->pos, b->last,
                                       ngx_http_llm_response_event, r);
        }

        b->pos = b->last;

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED && !resp->ended) {

            if (resp->mode == NGX_HTTP_LLM_RESP_EVENTSTREAM) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "llm: event stream frame of provider \"%V\" "
                              "refused: %s", &ctx->target->provider->name,
                              resp->es.error);
            }

            if (ngx_http_llm_response_fail(r, ctx,
                                 (resp->mode == NGX_HTTP_LLM_RESP_EVENTSTREAM)
                                 ? "The provider sent a malformed event "
                                   "stream frame."
                                 : "The provider sent an event larger than "
                                   "the gateway accepts.")
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (resp->canon && resp->canon->failed && !resp->ended) {

            /* the provider's error event ended the stream */

            resp->broken = 1;
            r->keepalive = 0;

            if (ngx_http_llm_response_end(r, resp) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (resp->done && !resp->ended && !resp->broken && !resp->error_first)
        {
            /*
             * its last event ([DONE], message_stop, Bedrock's metadata,
             * Gemini's final usage): the stream ends with the provider's
             * response, or shortly after if the provider keeps the
             * connection open (it would end only at proxy_read_timeout)
             */

            ngx_http_llm_response_await_end(r, ctx);
        }
    }

    if (!resp->ended && last && resp->canon && !resp->canon->done
        && resp->canon->finished)
    {
        /* a stream that said how it finished, without a final event */

        if (ngx_http_llm_canon_end(resp->canon) != NGX_OK) {
            return NGX_ERROR;
        }

        resp->done = 1;
        ngx_http_llm_cache_complete(r, ctx, !resp->broken);
    }

    if (!resp->ended) {

        if (broken && !resp->done) {
            if (ngx_http_llm_response_fail(r, ctx, "The connection to the "
                                           "provider broke off in the middle "
                                           "of the stream.")
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (last || broken) {

            /*
             * a connection that breaks (or times out) after the final
             * event has delivered a whole stream: it ends as one
             */

            if (!resp->done) {
                if (ngx_http_llm_response_fail(r, ctx, "The provider ended "
                                               "the stream before it was "
                                               "complete.")
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

            } else if (ngx_http_llm_response_end(r, resp) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    *out = resp->out;

    return NGX_OK;
}


void
ngx_http_llm_response_sent(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_chain_t **out)
{
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;

    /* our own buffers only: an observed body is the upstream's */

    if (resp->mode == NGX_HTTP_LLM_RESP_SSE
        || resp->mode == NGX_HTTP_LLM_RESP_EVENTSTREAM
        || (resp->mode == NGX_HTTP_LLM_RESP_BUFFER
            && !(resp->canon
                 && resp->canon->mode == NGX_HTTP_LLM_CANON_OBSERVE)))
    {
        ngx_chain_update_chains(r->pool, &resp->free, &resp->busy, out,
                                (ngx_buf_tag_t) &ngx_http_llm_module);
    }
}


static ngx_int_t
ngx_http_llm_response_event(void *data, ngx_http_llm_sse_event_t *ev)
{
    ngx_http_request_t *r = data;

    u_char                   *p;
    ngx_int_t                 rc;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_response_t  *resp;
    u_char                    safe[NGX_HTTP_LLM_LOG_SAFE_SIZE(128)];

    ctx = ngx_http_llm_get_ctx(r);
    resp = ctx->resp;
    dialect = ctx->target->provider->dialect;

    if (ctx->ttfb == (ngx_msec_t) -1 && ev->data.data) {
        ctx->ttfb = ngx_current_msec - ctx->attempt_start;
    }

    resp->events = 1;

    if (resp->canon) {
        if (resp->canon->done || resp->ended) {
            /* nothing may follow the end, or an error */
            return NGX_OK;
        }

        if (ev->data.data || ev->exception) {
            rc = dialect->decode_event(resp->canon, ev);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                p = ngx_http_llm_log_safe(safe, sizeof(safe), ev->data.data,
                                          ev->data.len);
                (void) ngx_http_llm_provider_mask(ctx->target->provider, safe,
                                                  p - safe);

                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "llm: provider \"%V\" sent an event the "
                              "gateway does not understand: \"%*s\"",
                              &ctx->target->provider->name,
                              (size_t) (p - safe), safe);
            }

            ngx_http_llm_arena_reset(&resp->canon->arena);
        }

        if (resp->canon->done && !resp->done) {
            resp->done = 1;
            ngx_http_llm_cache_complete(r, ctx, !resp->broken);

        } else if (resp->canon->finished && !resp->canon->failed) {
            /*
             * A stream that ends with the connection (Gemini's) is stored
             * before its end reaches this filter: one that said how it
             * finished may be, unless nginx sees the body cut short.
             */
            ngx_http_llm_cache_complete(r, ctx, 1);
        }

        if (resp->canon->mode != NGX_HTTP_LLM_CANON_OBSERVE) {
            return NGX_OK;
        }

        /* the client's own API: the event passes as it is */

        ev->error = resp->canon->failed;

        return ngx_http_llm_response_event_out(r, ctx, ev);
    }

    if (ev->data.len == sizeof("[DONE]") - 1
        && ngx_strncmp(ev->data.data, "[DONE]", sizeof("[DONE]") - 1) == 0)
    {
        resp->done = 1;
        ngx_http_llm_cache_complete(r, ctx, !resp->broken);
    }

    if (dialect->response_event && ev->data.data) {
        rc = dialect->response_event(r, ctx, ev);

        if (rc == NGX_DECLINED) {
            return NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_llm_response_event_out(r, ctx, ev);
}


/* an event in the client's own API, as it came but for a dialect's edits */

static ngx_int_t
ngx_http_llm_response_event_out(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev)
{
    if (ev->error) {
        /* a key the provider quotes in its error is masked */
        (void) ngx_http_llm_provider_mask(ctx->target->provider,
                                          ev->raw.data, ev->raw.len);

        if (!ctx->resp->answered) {
            ctx->resp->error_first = 1;
            ngx_http_llm_response_error_event(r, ctx, ev);
        }

    } else if (ev->data.data) {
        ctx->resp->answered = 1;
    }

    if (ev->nedits) {
        return ngx_http_llm_response_write_edited(r, ctx->resp, ev);
    }

    return ngx_http_llm_response_write(r, ctx->resp, ev->raw.data,
                                       ev->raw.len);
}


static ngx_int_t
ngx_http_llm_response_write(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, u_char *data, size_t len)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = resp->buf;

    if (b == NULL || (size_t) (b->end - b->last) < len) {

        cl = NULL;

        if (resp->free
            && (size_t) (resp->free->buf->end - resp->free->buf->start) >= len)
        {
            cl = resp->free;
            resp->free = cl->next;
            b = cl->buf;
            b->pos = b->start;
            b->last = b->start;

        } else {
            cl = ngx_alloc_chain_link(r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            b = ngx_create_temp_buf(r->pool, ngx_max(len, 4096));
            if (b == NULL) {
                return NGX_ERROR;
            }

            b->tag = (ngx_buf_tag_t) &ngx_http_llm_module;
            cl->buf = b;
        }

        b->flush = 1;
        cl->next = NULL;

        *resp->last_out = cl;
        resp->last_out = &cl->next;
        resp->buf = b;
    }

    b->last = ngx_cpymem(b->last, data, len);

    return NGX_OK;
}


/* an event with the spans a dialect replaced */

static ngx_int_t
ngx_http_llm_response_write_edited(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, ngx_http_llm_sse_event_t *ev)
{
    u_char                   *p, *last;
    ngx_uint_t                i;
    ngx_http_llm_sse_edit_t  *e;

    p = ev->raw.data;
    last = ev->raw.data + ev->raw.len;

    for (i = 0; i < ev->nedits; i++) {
        e = &ev->edits[i];

        if (ngx_http_llm_response_write(r, resp, p, e->start - p) != NGX_OK
            || (e->text.len
                && ngx_http_llm_response_write(r, resp, e->text.data,
                                               e->text.len)
                   != NGX_OK))
        {
            return NGX_ERROR;
        }

        p = e->end;
    }

    return ngx_http_llm_response_write(r, resp, p, last - p);
}


/* the stream ends with an error event the client can read */

static ngx_int_t
ngx_http_llm_response_fail(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    const char *message)
{
    u_char                   *p;
    ngx_str_t                 text, json;
    const char               *prefix;
    ngx_http_llm_perror_t     err;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    resp->broken = 1;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm: the stream of provider \"%V\" for model \"%V\" "
                  "failed: %s", &ctx->target->provider->name,
                  &ctx->chat.model, message);

    text.data = (u_char *) message;
    text.len = ngx_strlen(message);

    if (ngx_http_llm_client_api(ctx) == NGX_HTTP_LLM_API_ANTHROPIC) {

        /* Anthropic's SDKs raise an "error" event */

        err.status = NGX_HTTP_BAD_GATEWAY;
        ngx_str_null(&err.type);
        err.message = text;

        if (ngx_http_llm_canon_error_body(r->pool, NGX_HTTP_LLM_API_ANTHROPIC,
                                          &err, &json)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        prefix = "event: error\ndata: ";

    } else {
        if (ngx_http_llm_error_json(r->pool, NGX_HTTP_BAD_GATEWAY,
                                    "stream_interrupted", NULL, &text, &json)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        prefix = "data: ";
    }

    p = ngx_pnalloc(r->pool, json.len + ngx_strlen(prefix) + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text.data = p;
    p = ngx_cpymem(p, prefix, ngx_strlen(prefix));
    p = ngx_cpymem(p, json.data, json.len);
    *p++ = '\n';
    *p++ = '\n';
    text.len = p - text.data;

    if (ngx_http_llm_response_write(r, resp, text.data, text.len) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the connection closes after this; nothing more can be read */
    r->keepalive = 0;

    return ngx_http_llm_response_end(r, resp);
}


static ngx_int_t
ngx_http_llm_response_end(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->flush = 1;

    cl->buf = b;
    cl->next = NULL;

    *resp->last_out = cl;
    resp->last_out = &cl->next;

    resp->ended = 1;

    return NGX_OK;
}


/*
 * A stream's last event came: unless the provider's response ends with
 * it, the provider has NGX_HTTP_LLM_STREAM_END_GRACE to end it (its
 * connection kept), then the gateway ends it
 */

static void
ngx_http_llm_response_await_end(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL || r->cached || u->peer.connection == NULL
        || ctx->timer.timer_set)
    {
        return;
    }

    if (u->buffering
        ? (u->pipe == NULL || u->pipe->upstream_done || u->pipe->length == 0)
        : (u->length == 0))
    {
        /* the response ends with this read */
        return;
    }

    ctx->timer.handler = ngx_http_llm_response_end_handler;
    ctx->timer.data = r;
    ctx->timer.log = r->connection->log;

    ngx_add_timer(&ctx->timer, NGX_HTTP_LLM_STREAM_END_GRACE);
}


/*
 * The provider did not end its response after the stream's last event:
 * the gateway ends it, and nginx, told by a posted event, ends the
 * request (the client's response) as at the end of the provider's
 */

static void
ngx_http_llm_response_end_handler(ngx_event_t *ev)
{
    ngx_http_request_t *r = ev->data;

    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL || u->peer.connection == NULL) {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm: the provider's response did not end after the "
                   "stream's last event");

    ngx_http_llm_response_end_upstream(r);

    /* the client's write event: nginx passes what it holds (to the cache
       too), then sees the upstream done */

    ngx_post_event(r->connection->write, &ngx_posted_events);
}


/*
 * The grace timer's work, when the provider's response did not end after
 * its stream's last event: what the provider sends after it is not read,
 * and nginx ends the request as at the end of the provider's response
 * (the upstream's input filter would have set u->length or p->length to
 * 0 there); the connection is not kept for another request.
 */

static void
ngx_http_llm_response_end_upstream(ngx_http_request_t *r)
{
    ngx_event_pipe_t     *p;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL || r->cached || u->peer.connection == NULL) {
        return;
    }

    if (!u->buffering) {
        if (u->length != 0) {
            u->length = 0;
            u->keepalive = 0;
        }

        /*
         * while the client still takes the stream's end, nginx may read
         * on: the proxy module's filter would count those bytes off a
         * length of 0, and the end be missed
         */

        u->input_filter = ngx_http_llm_response_drop;

        return;
    }

    p = u->pipe;

    if (p == NULL || p->upstream_done) {
        return;
    }

    if (p->length != 0) {
        p->length = 0;
        u->keepalive = 0;
    }

    p->upstream_done = 1;
}


/* what the provider sends after its stream's last event: not read */

static ngx_int_t
ngx_http_llm_response_drop(void *data, ssize_t bytes)
{
    ngx_http_request_t *r = data;

    r->upstream->length = 0;

    return NGX_OK;
}


/*
 * A body read whole: at its end, the provider's answer (or error) is
 * written again in the client's API. A client in the provider's own API
 * gets the bytes as they came; the copy is read for usage.
 */

static ngx_int_t
ngx_http_llm_response_buffer(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_chain_t *in, ngx_chain_t **out)
{
    size_t                    len;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_str_t                 body;
    ngx_uint_t                last, observe;
    ngx_chain_t              *cl;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    observe = (resp->canon
               && resp->canon->mode == NGX_HTTP_LLM_CANON_OBSERVE);
    last = 0;

    if (observe && !resp->begun && ctx->target->provider->secrets) {
        ngx_http_llm_response_error_2xx(resp, in);
    }

    if (resp->native_error) {
        /* the provider's error in the client's API: held, to be masked */
        observe = 0;
    }

    if (resp->body.start == NULL && !resp->overflow) {
        ngx_http_llm_jbuf_init(&resp->body, r->pool, 4096);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf) {
            last = 1;
        }

        len = ngx_buf_in_memory(b) ? (size_t) (b->last - b->pos) : 0;

        if (len && !resp->overflow) {
            if (ngx_http_llm_jbuf_len(&resp->body) + len
                > NGX_HTTP_LLM_MAX_BODY)
            {
                resp->overflow = 1;

            } else {
                ngx_http_llm_jbuf_raw(&resp->body, b->pos, len);
            }
        }

        if (!observe) {
            /* swallowed: the translation replaces it */
            b->pos = b->last;
        }
    }

    if (resp->body.error) {
        return NGX_ERROR;
    }

    if (!resp->error_body && !resp->overflow
        && ngx_http_llm_response_arrived(r, resp))
    {
        /*
         * nginx stores the body before the last buffer reaches this
         * filter: a whole 2xx body is decoded as soon as it is here, and
         * let through to the cache only if it is an answer (not the
         * provider's error, nor unreadable)
         */

        rc = ctx->embed ? NGX_OK : ngx_http_llm_response_decode(ctx);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        ngx_http_llm_cache_complete(r, ctx, rc == NGX_OK && !resp->broken);
    }

    if (observe) {
        *out = in;

        if (last && !resp->ended) {
            resp->ended = 1;

            if (ngx_http_llm_response_decode(ctx) == NGX_ERROR) {
                return NGX_ERROR;
            }
        }

        if (resp->native_held && !resp->kept_whole) {
            return ngx_http_llm_response_keep(r, resp, in, out);
        }

        return NGX_OK;
    }

    *out = NULL;

    if (!last || resp->ended) {
        return NGX_OK;
    }

    if (resp->native_error && resp->canon
        && ngx_http_llm_response_decode(ctx) == NGX_ERROR)
    {
        /* observed: read as the target's failure all the same */
        return NGX_ERROR;
    }

    if (ngx_http_llm_response_translated(r, ctx, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    resp->out = NULL;
    resp->last_out = &resp->out;
    resp->buf = NULL;

    if (ngx_http_llm_response_write(r, resp, body.data, body.len) != NGX_OK
        || ngx_http_llm_response_end(r, resp) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *out = resp->out;

    return NGX_OK;
}


/*
 * An answer in the client's own API whose header is held (see the header
 * filter): what comes of it before all of it has is copied out of the
 * upstream's buffers (nginx reuses them) and kept; it goes out when the
 * rest has come. An answer that came whole at once, the common case,
 * goes out as it is, nothing copied. One larger than a body read whole
 * may be goes out as it comes, what was kept first.
 */

static ngx_int_t
ngx_http_llm_response_keep(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, ngx_chain_t *in, ngx_chain_t **out)
{
    size_t                len;
    ngx_buf_t            *b, *copy;
    ngx_uint_t            whole;
    ngx_chain_t          *cl, *ln;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    whole = u == NULL || u->pipe == NULL || u->pipe->upstream_done
            || ngx_http_llm_chain_ends(in);

    if (resp->last_kept == NULL) {
        if (whole) {
            resp->kept_whole = 1;
            *out = in;
            return NGX_OK;
        }

        resp->last_kept = &resp->kept;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_special(b)) {
            if (!whole) {
                continue;
            }

            /* the end (or a flush) follows what was kept */
            copy = b;
            len = 0;

        } else {
            len = ngx_buf_in_memory(b) ? (size_t) (b->last - b->pos) : 0;

            if (len == 0
                || resp->kept_size + len > NGX_HTTP_LLM_MAX_BODY)
            {
                if (len == 0 && !b->in_file) {
                    continue;
                }

                /* not to be kept: all goes on as it comes */
                *resp->last_kept = cl;
                *out = resp->kept;
                resp->kept_whole = 1;

                return NGX_OK;
            }

            copy = ngx_create_temp_buf(r->pool, len);
            if (copy == NULL) {
                return NGX_ERROR;
            }

            copy->last = ngx_cpymem(copy->last, b->pos, len);
            b->pos = b->last;
        }

        ln = ngx_alloc_chain_link(r->pool);
        if (ln == NULL) {
            return NGX_ERROR;
        }

        ln->buf = copy;
        ln->next = NULL;
        *resp->last_kept = ln;
        resp->last_kept = &ln->next;
        resp->kept_size += len;
    }

    if (!whole) {
        *out = NULL;
        return NGX_OK;
    }

    *out = resp->kept;
    resp->kept_whole = 1;

    return NGX_OK;
}


/*
 * A buffered 2xx body decoded by the dialect, once: when all of it has
 * come (for the cache) or at its last buffer. A body that is the
 * provider's error is an answer to pass on in the client's own API, but
 * a failure of the target; a translated one fails the attempt, as if its
 * status had said so.
 */

static ngx_int_t
ngx_http_llm_response_decode(ngx_http_llm_ctx_t *ctx)
{
    ngx_str_t                 body;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;

    if (resp->decoded) {
        return resp->decode_rc;
    }

    resp->decoded = 1;

    body.data = resp->body.start;
    body.len = ngx_http_llm_jbuf_len(&resp->body);

    resp->decode_rc = resp->overflow
                      ? NGX_DECLINED
                      : ctx->target->provider->dialect->decode_body(
                                                         resp->canon, &body);

    if (resp->decode_rc == NGX_OK && resp->canon->failed
        && !resp->canon->refused)
    {
        resp->broken = 1;
    }

    if (resp->decode_rc == NGX_DECLINED && !resp->overflow) {
        resp->unreadable = 1;
    }

    return resp->decode_rc;
}


/* whether all of a buffered body has come from the provider */

static ngx_uint_t
ngx_http_llm_response_arrived(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL) {
        return 0;
    }

    if (u->pipe && u->pipe->upstream_done) {
        return 1;
    }

    return u->headers_in.content_length_n >= 0
           && (off_t) ngx_http_llm_jbuf_len(&resp->body)
              == u->headers_in.content_length_n;
}


static ngx_int_t
ngx_http_llm_response_translated(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *out)
{
    ngx_int_t                 rc;
    ngx_str_t                 body;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_perror_t     err;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    dialect = ctx->target->provider->dialect;

    body.data = resp->body.start;
    body.len = ngx_http_llm_jbuf_len(&resp->body);

    ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
    err.status = r->headers_out.status;

    if (resp->native_error && !resp->overflow) {
        (void) ngx_http_llm_provider_mask(ctx->target->provider, body.data,
                                          body.len);
        *out = body;
        return NGX_OK;
    }

    if (resp->error_body) {
        /* a native error got here only if it overflowed */
        rc = resp->overflow ? NGX_DECLINED
                            : dialect->decode_error(r, &body, &err);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK
            && ngx_http_llm_provider_masked(r->pool, ctx->target->provider,
                                            &err.message)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (rc != NGX_OK || err.message.len == 0) {
            err.message.data = ngx_pnalloc(r->pool, 128);
            if (err.message.data == NULL) {
                return NGX_ERROR;
            }

            err.message.len = ngx_snprintf(err.message.data, 128,
                                           "Provider `%V` answered HTTP %ui.",
                                           &ctx->target->provider->name,
                                           err.status)
                              - err.message.data;
        }

        return ngx_http_llm_canon_error_body(r->pool,
                                             ngx_http_llm_client_api(ctx),
                                             &err, out);
    }

    if (ctx->embed) {
        rc = resp->overflow
             ? NGX_DECLINED
             : ngx_http_llm_embeddings_response(r, ctx, &body, out);

        if (rc != NGX_DECLINED) {
            return rc;
        }

    } else {
        rc = ngx_http_llm_response_decode(ctx);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            return ngx_http_llm_canon_body(resp->canon, out);
        }
    }

    /* the status went out already: the body says what went wrong */

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "llm: the response of provider \"%V\" could not be "
                  "translated (%uz bytes)", &ctx->target->provider->name,
                  body.len);

    resp->broken = 1;

    err.status = NGX_HTTP_BAD_GATEWAY;
    ngx_str_set(&err.type, "translation_failed");
    ngx_str_set(&err.message, "The provider's response could not be read.");

    return ngx_http_llm_canon_error_body(r->pool,
                                         ngx_http_llm_client_api(ctx),
                                         &err, out);
}
