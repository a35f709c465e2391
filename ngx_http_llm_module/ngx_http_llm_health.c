
/*
 * Target health: peak EWMAs of latency, and a circuit breaker
 * (docs/architecture.md, "Target health").
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_health.h"


static void ngx_http_llm_ewma_observe(ngx_http_llm_ewma_t *e, double sample,
    ngx_msec_t now);
static void ngx_http_llm_window(ngx_http_llm_stats_t *st,
    ngx_http_llm_health_conf_t *hc, ngx_msec_t now);


void
ngx_http_llm_health_defaults(ngx_http_llm_health_conf_t *hc)
{
    hc->failure_ratio = 50;
    hc->min_requests = 5;
    hc->window = 30000;
    hc->cooldown = 10000;
    hc->max_cooldown = 300000;
    hc->rate_limit_cooldown = 10000;
}


/* health failure_ratio=50% min_requests=5 window=30s cooldown=10s ... */

char *
ngx_http_llm_health_directive(ngx_conf_t *cf, ngx_http_llm_health_conf_t *hc,
    ngx_str_t *value, ngx_uint_t n)
{
    u_char      *eq;
    ngx_int_t    num;
    ngx_str_t    name, arg;
    ngx_uint_t   i;
    ngx_msec_t  *msec;

    for (i = 0; i < n; i++) {
        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (eq == NULL) {
            goto invalid;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;
        arg.data = eq + 1;
        arg.len = value[i].data + value[i].len - arg.data;

        if (name.len == 13
            && ngx_strncmp(name.data, "failure_ratio", 13) == 0)
        {
            if (arg.len && arg.data[arg.len - 1] == '%') {
                arg.len--;
            }

            num = ngx_atoi(arg.data, arg.len);
            if (num == NGX_ERROR || num == 0 || num > 100) {
                goto invalid;
            }

            hc->failure_ratio = num;
            continue;
        }

        if (name.len == 12 && ngx_strncmp(name.data, "min_requests", 12) == 0)
        {
            num = ngx_atoi(arg.data, arg.len);
            if (num == NGX_ERROR || num == 0) {
                goto invalid;
            }

            hc->min_requests = num;
            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "window", 6) == 0) {
            msec = &hc->window;

        } else if (name.len == 8 && ngx_strncmp(name.data, "cooldown", 8) == 0)
        {
            msec = &hc->cooldown;

        } else if (name.len == 12
                   && ngx_strncmp(name.data, "max_cooldown", 12) == 0)
        {
            msec = &hc->max_cooldown;

        } else if (name.len == 19
                   && ngx_strncmp(name.data, "rate_limit_cooldown", 19) == 0)
        {
            msec = &hc->rate_limit_cooldown;

        } else {
            goto invalid;
        }

        num = ngx_parse_time(&arg, 0);
        if (num == NGX_ERROR || num == 0) {
            goto invalid;
        }

        *msec = (ngx_msec_t) num;
    }

    if (hc->max_cooldown < hc->cooldown) {
        hc->max_cooldown = hc->cooldown;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"health\" parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_http_llm_availability_e
ngx_http_llm_availability(ngx_http_llm_stats_t *st,
    ngx_http_llm_health_conf_t *hc, ngx_msec_t now)
{
    if ((ngx_msec_int_t) (st->throttled_until - now) > 0) {
        return NGX_HTTP_LLM_UNAVAILABLE;
    }

    switch (st->state) {

    case NGX_HTTP_LLM_OPEN:
        if ((ngx_msec_int_t) (st->open_until - now) > 0) {
            return NGX_HTTP_LLM_UNAVAILABLE;
        }

        st->state = NGX_HTTP_LLM_HALF_OPEN;
        st->probing = 0;

        /* fall through */

    case NGX_HTTP_LLM_HALF_OPEN:
        return st->probing ? NGX_HTTP_LLM_UNAVAILABLE : NGX_HTTP_LLM_PROBE;

    default:
        return NGX_HTTP_LLM_AVAILABLE;
    }
}


ngx_msec_t
ngx_http_llm_available_at(ngx_http_llm_stats_t *st)
{
    ngx_msec_t  at;

    at = st->throttled_until;

    if (st->state == NGX_HTTP_LLM_OPEN
        && (ngx_msec_int_t) (st->open_until - at) > 0)
    {
        at = st->open_until;
    }

    return at;
}


double
ngx_http_llm_ewma_get(ngx_http_llm_ewma_t *e, ngx_msec_t now)
{
    ngx_msec_int_t  age;

    age = (ngx_msec_int_t) (now - e->stamp);

    if (age <= 0) {
        return e->value;
    }

    return e->value * exp(-(double) age / NGX_HTTP_LLM_EWMA_TAU);
}


static void
ngx_http_llm_ewma_observe(ngx_http_llm_ewma_t *e, double sample,
    ngx_msec_t now)
{
    double          w;
    ngx_msec_int_t  age;

    if (e->samples == 0 || sample > e->value) {
        e->value = sample;

    } else {
        age = (ngx_msec_int_t) (now - e->stamp);
        w = (age > 0) ? exp(-(double) age / NGX_HTTP_LLM_EWMA_TAU) : 1.0;

        e->value = e->value * w + sample * (1.0 - w);
    }

    e->stamp = now;

    if (e->samples != 0xffffffff) {
        e->samples++;
    }
}


ngx_uint_t
ngx_http_llm_record(ngx_http_llm_stats_t *st, ngx_http_llm_health_conf_t *hc,
    ngx_http_llm_outcome_t *o, ngx_uint_t probe, ngx_msec_t now)
{
    ngx_uint_t  requests, failures;

    st->last_status = (uint16_t) o->status;

    ngx_http_llm_window(st, hc, now);

    if (o->ttfb != (ngx_msec_t) -1) {
        ngx_http_llm_ewma_observe(&st->ttfb, (double) o->ttfb, now);
    }

    if (o->latency != (ngx_msec_t) -1) {
        ngx_http_llm_ewma_observe(&st->latency, (double) o->latency, now);

        if (o->output_tokens) {
            ngx_http_llm_ewma_observe(&st->per_token,
                                      (double) o->latency / o->output_tokens,
                                      now);
        }
    }

    switch (o->result) {

    case NGX_HTTP_LLM_OK:
        st->successes++;
        st->window_requests++;

        if (st->state != NGX_HTTP_LLM_CLOSED && probe) {
            /* the probe answered: back in service */
            st->state = NGX_HTTP_LLM_CLOSED;
            st->probing = 0;
            st->cooldown = 0;
            st->window_failures = 0;
            st->prev_failures = 0;
        }

        return 0;

    case NGX_HTTP_LLM_RATE_LIMITED:
        st->rate_limited++;
        st->throttled_until = now + (o->retry_after ? o->retry_after
                                                    : hc->rate_limit_cooldown);
        if (probe) {
            st->probing = 0;
        }

        return 1;

    case NGX_HTTP_LLM_TIMED_OUT:
        st->timeouts++;

        /* fall through */

    default:
        st->failures++;
        st->last_failure = now;
        st->window_requests++;
        st->window_failures++;
    }

    if (st->state == NGX_HTTP_LLM_HALF_OPEN && probe) {
        /* the probe failed: out again, for longer */
        st->cooldown = ngx_min(st->cooldown * 2, hc->max_cooldown);
        st->state = NGX_HTTP_LLM_OPEN;
        st->open_until = now + st->cooldown;
        st->probing = 0;
        return 1;
    }

    if (st->state != NGX_HTTP_LLM_CLOSED) {
        return 0;
    }

    requests = st->window_requests + st->prev_requests;
    failures = st->window_failures + st->prev_failures;

    if (requests >= hc->min_requests
        && failures * 100 >= hc->failure_ratio * requests)
    {
        st->state = NGX_HTTP_LLM_OPEN;
        st->cooldown = hc->cooldown;
        st->open_until = now + st->cooldown;
        st->probing = 0;
        return 1;
    }

    return 0;
}


static void
ngx_http_llm_window(ngx_http_llm_stats_t *st, ngx_http_llm_health_conf_t *hc,
    ngx_msec_t now)
{
    ngx_msec_int_t  age;

    age = (ngx_msec_int_t) (now - st->window_start);

    if (st->window_start != 0 && age < (ngx_msec_int_t) hc->window) {
        return;
    }

    if (st->window_start != 0 && age < (ngx_msec_int_t) (2 * hc->window)) {
        st->prev_requests = st->window_requests;
        st->prev_failures = st->window_failures;

    } else {
        st->prev_requests = 0;
        st->prev_failures = 0;
    }

    st->window_requests = 0;
    st->window_failures = 0;
    st->window_start = now;
}


const char *
ngx_http_llm_breaker_name(ngx_http_llm_stats_t *st, ngx_msec_t now)
{
    if ((ngx_msec_int_t) (st->throttled_until - now) > 0) {
        return "throttled";
    }

    switch (st->state) {
    case NGX_HTTP_LLM_OPEN:
        return ((ngx_msec_int_t) (st->open_until - now) > 0) ? "open"
                                                            : "half_open";
    case NGX_HTTP_LLM_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}
