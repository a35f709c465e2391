
/*
 * Choosing targets, and returning them with the outcome of the attempt.
 */


#ifndef _NGX_HTTP_LLM_BALANCER_H_INCLUDED_
#define _NGX_HTTP_LLM_BALANCER_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_health.h"


/*
 * the target of the next attempt (ctx->retry_same: the current one
 * again), its health node held in ctx->node; NULL when none is left
 */
ngx_http_llm_target_t *ngx_http_llm_choose(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/*
 * records the attempt's outcome; 1 if it took the target out of service
 * (_locked: with the zone's lock held)
 */
ngx_uint_t ngx_http_llm_release(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_outcome_t *o);
ngx_uint_t ngx_http_llm_release_locked(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_outcome_t *o);

/* lets go of a held node without an outcome (request gone) */
void ngx_http_llm_release_abandoned(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_zone_t *zone);
void ngx_http_llm_release_abandoned_locked(ngx_http_llm_ctx_t *ctx);


#endif /* _NGX_HTTP_LLM_BALANCER_H_INCLUDED_ */
