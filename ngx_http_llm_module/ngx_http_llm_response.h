
/*
 * A provider's response on its way to the client: a JSON body passes as
 * it is; a stream is framed into events, each passed on as soon as it is
 * whole, and a stream that breaks off ends with an SSE error event that
 * the OpenAI SDKs raise as an error. A response in another API than the
 * client's is translated: streams event by event, bodies at their end.
 */


#ifndef _NGX_HTTP_LLM_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_LLM_RESPONSE_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_sse.h"
#include "ngx_http_llm_eventstream.h"
#include "ngx_http_llm_canonical.h"


typedef enum {
    NGX_HTTP_LLM_RESP_PASS = 0,
    NGX_HTTP_LLM_RESP_SCAN,             /* passed on, read by the dialect */
    NGX_HTTP_LLM_RESP_SSE,
    NGX_HTTP_LLM_RESP_EVENTSTREAM,      /* AWS binary frames */
    NGX_HTTP_LLM_RESP_BUFFER            /* read whole, then translated */
} ngx_http_llm_resp_mode_e;


struct ngx_http_llm_response_s {
    ngx_http_llm_resp_mode_e       mode;
    ngx_http_llm_sse_t             sse;
    ngx_http_llm_es_t              es;

    /* translation (or, in the client's own API, observation); NULL: none */
    ngx_http_llm_canon_t          *canon;
    ngx_http_llm_jbuf_t            body;        /* BUFFER: the provider's */

    /* output being built for one call of the body filter */
    ngx_chain_t                   *out;
    ngx_chain_t                  **last_out;
    ngx_buf_t                     *buf;

    ngx_chain_t                   *free;
    ngx_chain_t                   *busy;
    ngx_chain_t                   *held;        /* stream_held: written,
                                                   not yet passed on */
    ngx_chain_t                   *kept;        /* native_held: copied,
                                                   not yet passed on */
    ngx_chain_t                  **last_kept;
    size_t                         kept_size;

    void                          *dialect;     /* the dialect's state */
    ngx_int_t                      decode_rc;   /* BUFFER, decoded */

    unsigned                       done:1;      /* the final event came */
    unsigned                       events:1;    /* an event went out */
    unsigned                       ended:1;     /* last_buf sent */
    unsigned                       broken:1;    /* ended by an error */
    unsigned                       cache_held:1;
    unsigned                       error_body:1; /* BUFFER: an error */
    unsigned                       native_error:1; /* passed, masked */
    unsigned                       begun:1;     /* SCAN: its first bytes
                                                   seen */
    unsigned                       overflow:1;  /* BUFFER: too large */
    unsigned                       header_held:1; /* BUFFER: the header
                                                     waits for the body */
    unsigned                       stream_held:1; /* a stream's header
                                                     waits for its answer */
    unsigned                       answered:1;  /* an event of the answer
                                                   was written */
    unsigned                       error_first:1; /* the provider's error
                                                     before any answer */
    unsigned                       stream_failed:1; /* held, and failed */
    unsigned                       decoded:1;   /* BUFFER: the body read */
    unsigned                       native_held:1; /* in the client's API,
                                                     its header held too */
    unsigned                       kept_whole:1; /* native_held: the body
                                                    whole, passed on */
    unsigned                       unreadable:1; /* a whole body that
                                                    is not JSON */
};


/* the header filter passes a provider's response */
ngx_int_t ngx_http_llm_response_start(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* the body filter: what goes on to the next filter, in *out */
ngx_int_t ngx_http_llm_response_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out);

/* whether the response ends with this chain */
ngx_uint_t ngx_http_llm_chain_ends(ngx_chain_t *cl);

/* after the next filter took *out: buffers sent are reused */
void ngx_http_llm_response_sent(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_chain_t **out);


/* headers_out as new: what a failed attempt set must not stay */
void ngx_http_llm_clear_headers_out(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LLM_RESPONSE_H_INCLUDED_ */
