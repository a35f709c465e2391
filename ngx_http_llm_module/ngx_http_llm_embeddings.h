
/*
 * POST /v1/embeddings: the request's input checked, the URL and body for
 * each dialect that serves embeddings, and the answers of those whose
 * API is not OpenAI's translated into OpenAI's.
 */


#ifndef _NGX_HTTP_LLM_EMBEDDINGS_H_INCLUDED_
#define _NGX_HTTP_LLM_EMBEDDINGS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json_tree.h"


/* what one request may ask for (OpenAI's own bounds, docs/endpoints.md) */
#define NGX_HTTP_LLM_EMBED_MAX_INPUTS      2048
#define NGX_HTTP_LLM_EMBED_MAX_BYTES       (4 * 1024 * 1024)
#define NGX_HTTP_LLM_EMBED_MAX_DIMENSIONS  65536

/* what a provider's answer may hold: vectors in all, their values each */
#define NGX_HTTP_LLM_EMBED_MAX_VALUES      (4 * 1024 * 1024)


typedef enum {
    NGX_HTTP_LLM_EMBED_TEXT = 0,        /* a string, or strings */
    NGX_HTTP_LLM_EMBED_TOKENS           /* token ids, or arrays of them */
} ngx_http_llm_embed_kind_e;


typedef struct ngx_http_llm_embed_s {
    ngx_http_llm_json_t           *input;      /* the tree's "input" */
    ngx_uint_t                     count;      /* inputs */
    size_t                         bytes;      /* of their text */
    int64_t                        dimensions; /* -1: not asked */
    ngx_http_llm_embed_kind_e      kind;
    unsigned                       array:1;    /* input was an array */
    unsigned                       base64:1;   /* encoding_format base64 */
} ngx_http_llm_embed_t;


/* the body's input, once parsed: NGX_DECLINED with *problem set */
ngx_int_t ngx_http_llm_embeddings_parse(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_problem_t *problem);

/* whether every target of the route can take it: else NGX_DECLINED */
ngx_int_t ngx_http_llm_embeddings_check_route(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_problem_t *problem);

/* amazon.titan-embed-*, cohere.embed-*: Bedrock models it embeds with */
ngx_uint_t ngx_http_llm_embeddings_bedrock_known(ngx_str_t *model);

/* <url>/embeddings of an OpenAI-format provider */
ngx_int_t ngx_http_llm_embeddings_url(ngx_pool_t *pool,
    ngx_http_llm_provider_t *p, ngx_str_t *url);

/* the translated requests: URL and body of the attempt */
ngx_int_t ngx_http_llm_embeddings_gemini(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* the InvokeModel body of Bedrock's Titan or Cohere embedding models */
ngx_int_t ngx_http_llm_embeddings_bedrock(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_jbuf_t *b);

/* a translated answer, whole, in OpenAI's format; NGX_DECLINED: unread */
ngx_int_t ngx_http_llm_embeddings_response(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_str_t *body, ngx_str_t *out);


#endif /* _NGX_HTTP_LLM_EMBEDDINGS_H_INCLUDED_ */
