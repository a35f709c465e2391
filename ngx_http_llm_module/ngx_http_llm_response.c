
/*
 * Provider responses on their way to the client.
 *
 * A stream is framed into events as its bytes arrive; each complete event
 * is copied into a buffer of ours and passed on at once, with a flush, so
 * nothing is held back but the unfinished tail of an event. Copying lets
 * the upstream reuse its buffer at once, and our buffers are recycled as
 * the client takes them, so a long stream does not grow in memory.
 *
 * A stream is over when its final event ("data: [DONE]") came. If the
 * provider's connection breaks first, or it ends the response early, the
 * client gets an SSE error event, which the OpenAI SDKs raise, and a
 * properly ended response: never a half event.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_cache.h"


/* an event longer than this is not an LLM stream event */
#define NGX_HTTP_LLM_MAX_EVENT  (4 * 1024 * 1024)


static ngx_int_t ngx_http_llm_response_event(void *data,
    ngx_http_llm_sse_event_t *ev);
static ngx_int_t ngx_http_llm_response_write(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp, u_char *data, size_t len);
static ngx_int_t ngx_http_llm_response_fail(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, const char *message);
static ngx_int_t ngx_http_llm_response_end(ngx_http_request_t *r,
    ngx_http_llm_response_t *resp);


ngx_int_t
ngx_http_llm_response_start(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_str_t                *type;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_response_t  *resp;

    dialect = ctx->target->provider->dialect;

    resp = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_response_t));
    if (resp == NULL) {
        return NGX_ERROR;
    }

    ctx->resp = resp;

    type = &r->headers_out.content_type;

    if (r->headers_out.status == NGX_HTTP_OK
        && type->len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(type->data, (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1) == 0)
    {
        resp->mode = NGX_HTTP_LLM_RESP_SSE;
        resp->sse.pool = r->pool;
        resp->sse.max = NGX_HTTP_LLM_MAX_EVENT;

        r->filter_need_in_memory = 1;

        /* events may be dropped or added: the length is not known */
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);

    } else if (r->headers_out.status / 100 == 2 && dialect->response_json) {
        resp->mode = NGX_HTTP_LLM_RESP_SCAN;
        r->filter_need_in_memory = 1;
    }

    return NGX_OK;
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

    if (resp->mode == NGX_HTTP_LLM_RESP_SCAN) {
        dialect = ctx->target->provider->dialect;

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

        rc = ngx_http_llm_sse_feed(&resp->sse, b->pos, b->last,
                                   ngx_http_llm_response_event, r);
        b->pos = b->last;

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            if (ngx_http_llm_response_fail(r, ctx, "The provider sent an "
                                           "event larger than the gateway "
                                           "accepts.")
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (!resp->ended) {

        if (broken) {
            if (ngx_http_llm_response_fail(r, ctx, "The connection to the "
                                           "provider broke off in the middle "
                                           "of the stream.")
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (last) {
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

    if (resp->mode == NGX_HTTP_LLM_RESP_SSE) {
        ngx_chain_update_chains(r->pool, &resp->free, &resp->busy, out,
                                (ngx_buf_tag_t) &ngx_http_llm_module);
    }
}


static ngx_int_t
ngx_http_llm_response_event(void *data, ngx_http_llm_sse_event_t *ev)
{
    ngx_http_request_t *r = data;

    ngx_int_t                 rc;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_response_t  *resp;

    ctx = ngx_http_llm_get_ctx(r);
    resp = ctx->resp;

    if (ev->data.len == sizeof("[DONE]") - 1
        && ngx_strncmp(ev->data.data, "[DONE]", sizeof("[DONE]") - 1) == 0)
    {
        resp->done = 1;
        ngx_http_llm_cache_complete(r, ctx, !resp->broken);
    }

    if (ctx->ttfb == (ngx_msec_t) -1 && ev->data.data) {
        ctx->ttfb = ngx_current_msec - ctx->attempt_start;
    }

    resp->events = 1;

    dialect = ctx->target->provider->dialect;

    if (dialect->response_event && ev->data.data) {
        rc = dialect->response_event(r, ctx, ev);

        if (rc == NGX_DECLINED) {
            return NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_llm_response_write(r, resp, ev->raw.data, ev->raw.len);
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


/* the stream ends with an error event the client can read */

static ngx_int_t
ngx_http_llm_response_fail(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    const char *message)
{
    u_char                   *p;
    ngx_str_t                 text, json;
    ngx_http_llm_response_t  *resp;

    resp = ctx->resp;
    resp->broken = 1;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm: the stream of provider \"%V\" for model \"%V\" "
                  "failed: %s", &ctx->target->provider->name,
                  &ctx->chat.model, message);

    text.data = (u_char *) message;
    text.len = ngx_strlen(message);

    if (ngx_http_llm_error_json(r->pool, NGX_HTTP_BAD_GATEWAY,
                                "stream_interrupted", NULL, &text, &json)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, json.len + sizeof("data: \n\n") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text.data = p;
    p = ngx_cpymem(p, "data: ", sizeof("data: ") - 1);
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
