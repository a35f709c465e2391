
/*
 * POST /v1/responses, OpenAI's Responses API: passed as it is to
 * OpenAI-format targets (usage read from its answers and events), and
 * for every other target its stateless subset converted into the chat
 * format the dialects translate from; answers are then written by the
 * Responses encoder (ngx_http_llm_encode_responses.c).
 */


#ifndef _NGX_HTTP_LLM_RESPONSES_H_INCLUDED_
#define _NGX_HTTP_LLM_RESPONSES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_sse.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_dialect.h"


/* input items a request may hold (docs/endpoints.md) */
#define NGX_HTTP_LLM_RESPONSES_MAX_ITEMS  4096


/* the body's input, once parsed: NGX_DECLINED with *problem set */
ngx_int_t ngx_http_llm_responses_parse(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_problem_t *problem);

/*
 * whether every target of the route can take it (a guard policy, what
 * translated targets cannot serve): else it answered (NGX_DONE)
 */
ngx_int_t ngx_http_llm_responses_check_route(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* the request in OpenAI's chat format, for translated targets */
ngx_http_llm_json_t *ngx_http_llm_responses_convert(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *in);

/*
 * an attempt's target takes the request as it is; not where a guard
 * policy applies: its rules read the call and the answer in chat's terms
 */
#define ngx_http_llm_responses_native(ctx)                                   \
    ((ctx)->endpoint == NGX_HTTP_LLM_EP_RESPONSES                             \
     && (ctx)->target->provider->responses_url.len && (ctx)->guard == NULL)

/* answers of OpenAI-format targets, as they pass: read for usage */
ngx_int_t ngx_http_llm_responses_json(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, u_char *p, size_t len, ngx_uint_t last);
ngx_int_t ngx_http_llm_responses_event(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev);


#endif /* _NGX_HTTP_LLM_RESPONSES_H_INCLUDED_ */
