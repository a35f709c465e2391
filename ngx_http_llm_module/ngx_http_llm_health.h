
/*
 * Health of targets (a provider and the model it is asked for), shared by
 * all workers in the llm_zone: latency as peak EWMAs with time decay,
 * requests in flight, outcome counters, and a circuit breaker.
 */


#ifndef _NGX_HTTP_LLM_HEALTH_H_INCLUDED_
#define _NGX_HTTP_LLM_HEALTH_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"


/* time constant of the EWMA decay, as Finagle and linkerd use */
#define NGX_HTTP_LLM_EWMA_TAU      10000.0


typedef enum {
    NGX_HTTP_LLM_CLOSED = 0,
    NGX_HTTP_LLM_OPEN,
    NGX_HTTP_LLM_HALF_OPEN
} ngx_http_llm_breaker_e;


/* one latency signal: a peak EWMA in milliseconds */
typedef struct {
    double                         value;
    ngx_msec_t                     stamp;
    uint32_t                       samples;
} ngx_http_llm_ewma_t;


typedef struct {
    ngx_http_llm_ewma_t            ttfb;        /* streams: first event */
    ngx_http_llm_ewma_t            latency;     /* others: whole response */
    ngx_http_llm_ewma_t            per_token;   /* others: per output token */

    uint32_t                       inflight;
    uint64_t                       requests;
    uint64_t                       successes;
    uint64_t                       failures;
    uint64_t                       rate_limited;
    uint64_t                       timeouts;

    uint8_t                        state;       /* ngx_http_llm_breaker_e */
    uint8_t                        probing;
    uint16_t                       last_status;
    ngx_msec_t                     open_until;
    ngx_msec_t                     cooldown;
    ngx_msec_t                     throttled_until;
    ngx_msec_t                     last_failure;

    /* two fixed windows: failures are counted over the last two */
    ngx_msec_t                     window_start;
    uint32_t                       window_requests;
    uint32_t                       window_failures;
    uint32_t                       prev_requests;
    uint32_t                       prev_failures;
} ngx_http_llm_stats_t;


typedef enum {
    NGX_HTTP_LLM_AVAILABLE = 0,
    NGX_HTTP_LLM_PROBE,                 /* half-open: one request may try */
    NGX_HTTP_LLM_UNAVAILABLE
} ngx_http_llm_availability_e;


typedef enum {
    NGX_HTTP_LLM_OK = 0,                /* answered (2xx, or a 4xx that is
                                           the client's fault) */
    NGX_HTTP_LLM_FAILED,                /* connect error, 5xx, broken stream */
    NGX_HTTP_LLM_TIMED_OUT,
    NGX_HTTP_LLM_RATE_LIMITED           /* 429 */
} ngx_http_llm_result_e;


typedef struct {
    ngx_http_llm_result_e          result;
    ngx_uint_t                     status;
    ngx_msec_t                     retry_after;     /* ms, 0: not given */
    ngx_msec_t                     ttfb;            /* ms, or -1 */
    ngx_msec_t                     latency;         /* ms, or -1 */
    ngx_uint_t                     output_tokens;
} ngx_http_llm_outcome_t;


ngx_http_llm_availability_e ngx_http_llm_availability(
    ngx_http_llm_stats_t *st, ngx_http_llm_health_conf_t *hc,
    ngx_msec_t now);

/* the time from which the target will take requests again */
ngx_msec_t ngx_http_llm_available_at(ngx_http_llm_stats_t *st);

double ngx_http_llm_ewma_get(ngx_http_llm_ewma_t *e, ngx_msec_t now);

/* records an attempt's outcome; returns 1 if it opened the breaker */
ngx_uint_t ngx_http_llm_record(ngx_http_llm_stats_t *st,
    ngx_http_llm_health_conf_t *hc, ngx_http_llm_outcome_t *o,
    ngx_uint_t probe, ngx_msec_t now);

char *ngx_http_llm_health_directive(ngx_conf_t *cf,
    ngx_http_llm_health_conf_t *hc, ngx_str_t *value, ngx_uint_t n);
void ngx_http_llm_health_defaults(ngx_http_llm_health_conf_t *hc);

const char *ngx_http_llm_breaker_name(ngx_http_llm_stats_t *st,
    ngx_msec_t now);


#endif /* _NGX_HTTP_LLM_HEALTH_H_INCLUDED_ */
