
/*
 * Failover (ngx_http_llm_failover.c): the next attempt after a failed one.
 */


#ifndef _NGX_HTTP_LLM_FAILOVER_H_INCLUDED_
#define _NGX_HTTP_LLM_FAILOVER_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_health.h"


/*
 * an attempt failed after the header filter or nginx gave up on it: the
 * next attempt, a wait for it, or the final error (a phase handler's rc)
 */
ngx_int_t ngx_http_llm_after_failure(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* no attempt is left: the client's error (a phase handler's rc) */
ngx_int_t ngx_http_llm_all_failed(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/*
 * an attempt failed: records it, plans the next; reason is the
 * NGX_HTTP_LLM_FO_* bit of the failure; 0: none is left
 */
ngx_uint_t ngx_http_llm_plan_next(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_outcome_t *o, ngx_uint_t reason);

/* the NGX_HTTP_LLM_FO_* bit of a provider's status, 0: not a failure */
ngx_uint_t ngx_http_llm_failover_reason(ngx_uint_t status);

/* a provider's Retry-After, in milliseconds (0: none) */
ngx_msec_t ngx_http_llm_retry_after(ngx_http_request_t *r);

/* timers of ctx->timer (backoff) and ctx->deadline */
void ngx_http_llm_backoff_handler(ngx_event_t *ev);
void ngx_http_llm_deadline_handler(ngx_event_t *ev);

/* server rewrite phase: a failed attempt's request restored (POST) */
ngx_int_t ngx_http_llm_retry_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LLM_FAILOVER_H_INCLUDED_ */
