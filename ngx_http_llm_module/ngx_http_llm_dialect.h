
/*
 * Provider dialects: how a request is built for a provider's API and how
 * its responses are read. One ngx_http_llm_<dialect>.c file per dialect.
 *
 * A dialect whose API is not the client's translates: its decoders turn
 * the provider's responses (a whole body, each stream event, an error)
 * into canonical deltas, which the client's encoder writes
 * (ngx_http_llm_canonical.h); ngx_http_llm_response.c runs the pipeline.
 */


#ifndef _NGX_HTTP_LLM_DIALECT_H_INCLUDED_
#define _NGX_HTTP_LLM_DIALECT_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_sse.h"
#include "ngx_http_llm_canonical.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_translate.h"


/* how a stream's events are framed */
typedef enum {
    NGX_HTTP_LLM_FRAMING_SSE = 0,       /* text/event-stream */
    NGX_HTTP_LLM_FRAMING_EVENTSTREAM    /* application/vnd.amazon.eventstream */
} ngx_http_llm_framing_e;


struct ngx_http_llm_dialect_s {
    ngx_str_t      name;

    /*
     * configuration time: validate the provider and precompute the
     * headers every attempt sends (provider->headers)
     */
    char        *(*init_provider)(ngx_conf_t *cf, ngx_http_llm_provider_t *p);

    /*
     * one attempt: set ctx->upstream_url, add per-attempt headers and
     * install the request body for the target in ctx->target
     */
    ngx_int_t    (*create_request)(ngx_http_request_t *r,
                                   ngx_http_llm_ctx_t *ctx);

    /* names of headers added per attempt: an attempt's room for them */
    char         **dynamic_headers;

    /*
     * OpenAI clients of an OpenAI-format provider (the fast path; chat,
     * or the Responses API as it is): a successful response that is not
     * a stream, its bytes as they come (p, len), then last; read to
     * account for usage
     */
    ngx_int_t    (*response_json)(ngx_http_request_t *r,
                                  ngx_http_llm_ctx_t *ctx, u_char *p,
                                  size_t len, ngx_uint_t last);

    /* one event of a stream: NGX_OK passes it on, NGX_DECLINED drops it */
    ngx_int_t    (*response_event)(ngx_http_request_t *r,
                                   ngx_http_llm_ctx_t *ctx,
                                   ngx_http_llm_sse_event_t *ev);

    /* the API the provider speaks, and how its streams are framed */
    ngx_http_llm_api_e       api;
    ngx_http_llm_framing_e   framing;

    /* provider-block options it takes, besides url, key, header, ... */
    char         **options;

    /* a whole successful response into deltas, ending with the end delta */
    ngx_int_t    (*decode_body)(ngx_http_llm_canon_t *c, ngx_str_t *body);

    /* one stream event into deltas; NGX_DECLINED: not understood */
    ngx_int_t    (*decode_event)(ngx_http_llm_canon_t *c,
                                 ngx_http_llm_sse_event_t *ev);

    /* an error response's body (status in err->status already) */
    ngx_int_t    (*decode_error)(ngx_http_request_t *r, ngx_str_t *body,
                                 ngx_http_llm_perror_t *err);
};


extern ngx_http_llm_dialect_t  ngx_http_llm_openai_dialect;
extern ngx_http_llm_dialect_t  ngx_http_llm_azure_dialect;
extern ngx_http_llm_dialect_t  ngx_http_llm_anthropic_dialect;
extern ngx_http_llm_dialect_t  ngx_http_llm_gemini_dialect;
extern ngx_http_llm_dialect_t  ngx_http_llm_bedrock_dialect;


/* ngx_http_llm_openai.c: shared with Azure */
ngx_int_t ngx_http_llm_openai_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_openai_response_json(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, u_char *p, size_t len, ngx_uint_t last);
ngx_int_t ngx_http_llm_openai_response_event(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev);
ngx_int_t ngx_http_llm_openai_decode_body(ngx_http_llm_canon_t *c,
    ngx_str_t *body);
ngx_int_t ngx_http_llm_openai_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev);
ngx_int_t ngx_http_llm_openai_decode_error(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_llm_perror_t *err);

/* ngx_http_llm_messages.c: the client's request in OpenAI's format */
/* an Anthropic Messages request's shape, before any target: NGX_DECLINED
   with the problem told */
ngx_int_t ngx_http_llm_messages_check(ngx_http_llm_json_t *tree,
    ngx_http_llm_problem_t *problem);
ngx_http_llm_json_t *ngx_http_llm_chat_tree(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/*
 * building that tree from another API's (messages.c, responses.c):
 * strings and values of the client's tree are shared, not copied; any
 * failure sets error
 */
typedef struct {
    ngx_pool_t                    *pool;
    ngx_http_llm_arena_t          *arena;
    ngx_uint_t                     error;
} ngx_http_llm_conv_t;

ngx_http_llm_json_t *ngx_http_llm_conv_add(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *parent, const char *key,
    ngx_http_llm_json_type_e type);
ngx_http_llm_json_t *ngx_http_llm_conv_str(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *parent, const char *key, u_char *s, size_t len);
ngx_http_llm_json_t *ngx_http_llm_conv_ref(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *parent, const char *key, ngx_http_llm_json_t *v);
void ngx_http_llm_conv_text(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *content, ngx_http_llm_jbuf_t *b);
ngx_http_llm_json_t *ngx_http_llm_conv_call(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *calls, ngx_http_llm_json_t *id,
    ngx_http_llm_json_t *name);

#define ngx_http_llm_conv_lit(cv, parent, key, s)                            \
    ngx_http_llm_conv_str(cv, parent, key, (u_char *) s, sizeof(s) - 1)



#endif /* _NGX_HTTP_LLM_DIALECT_H_INCLUDED_ */
