
/*
 * Limits and budgets of keys, teams and organisations: reserved before a
 * request is proxied, settled when it ends (docs/architecture.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_redis.h"


/* what a request holds against its key, team and organisation */
typedef struct {
    ngx_http_llm_entity_t         *entity[3];
    /*
     * their meters in the zone; a->parallel keeps the node alive while
     * held (ngx_http_llm_account_live()), so that the node's own lines
     * are not read
     */
    ngx_http_llm_account_t        *account[3];
    ngx_uint_t                     n;
    int64_t                        tokens;
    int64_t                        cost;

    /*
     * for x-ratelimit-*: the tightest of the limits that apply, the
     * binding limit's text (written with the configuration), NULL for
     * a kind no limit applies to
     */
    ngx_str_t                     *limit_text[2];  /* requests, tokens */
    int64_t                        remaining[2];    /* requests, tokens */
    time_t                         reset;
} ngx_http_llm_hold_t;


typedef struct {
    ngx_http_llm_entity_t         *entity;
    const char                    *what;
    const char                    *code;
    int64_t                        limit;
    ngx_uint_t                     unit;
    ngx_uint_t                     period;
    time_t                         retry;
} ngx_http_llm_refusal_t;


static ngx_uint_t ngx_http_llm_check(ngx_http_llm_entity_t *e,
    ngx_http_llm_account_t *a, ngx_http_llm_hold_t *hold, time_t now,
    ngx_http_llm_refusal_t *no);
static int64_t ngx_http_llm_sliding(ngx_http_llm_meter_t *m, time_t now);
static ngx_int_t ngx_http_llm_ratelimit_push(ngx_http_request_t *r,
    ngx_http_llm_hold_t *hold);
static ngx_int_t ngx_http_llm_ratelimit_rename(ngx_http_request_t *r,
    ngx_http_llm_hold_t *hold);
static time_t ngx_http_llm_period_end(ngx_uint_t period, time_t now);
static int64_t ngx_http_llm_days(int64_t y, int64_t m, int64_t d);
static ngx_int_t ngx_http_llm_refuse_request(ngx_http_request_t *r,
    ngx_http_llm_refusal_t *no);


const char  *ngx_http_llm_entity_kinds[] = { "key", "team", "org" };
const char  *ngx_http_llm_period_names[] = {
    "minute", "hour", "day", "month"
};


char *
ngx_http_llm_default_max_tokens(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    ngx_str_t  *value;

    if (lmcf->default_max_tokens != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lmcf->default_max_tokens = ngx_atoi(value[1].data, value[1].len);

    if (lmcf->default_max_tokens == NGX_ERROR
        || lmcf->default_max_tokens == 0)
    {
        return "must be a positive number";
    }

    return NGX_CONF_OK;
}


/* "10usd/day", "0.50usd/hour", "2000000tokens/month" */

char *
ngx_http_llm_parse_budget(ngx_str_t *value, ngx_http_llm_budget_t *budget)
{
    char        *end;
    u_char      *slash, *unit;
    double       amount;
    ngx_str_t    period;
    ngx_uint_t   i;
    u_char       number[32];

    slash = ngx_strlchr(value->data, value->data + value->len, '/');
    if (slash == NULL) {
        return "it must be like 10usd/day or 1000000tokens/month";
    }

    for (unit = value->data;
         unit < slash && ((*unit >= '0' && *unit <= '9') || *unit == '.');
         unit++)
    {
        /* void */
    }

    if (unit == value->data || (size_t) (unit - value->data) >= sizeof(number))
    {
        return "it must start with an amount";
    }

    ngx_cpystrn(number, value->data, unit - value->data + 1);

    amount = strtod((char *) number, &end);
    if (*end != '\0' || amount <= 0 || amount > 1e12) {
        return "invalid amount";
    }

    if (slash - unit == 3 && ngx_strncmp(unit, "usd", 3) == 0) {
        budget->unit = NGX_HTTP_LLM_USD;
        budget->amount = (int64_t) llround(amount * NGX_HTTP_LLM_NANO);

    } else if (slash - unit == 6 && ngx_strncmp(unit, "tokens", 6) == 0) {
        budget->unit = NGX_HTTP_LLM_TOKENS;
        budget->amount = (int64_t) amount;

    } else {
        return "the unit must be usd or tokens";
    }

    period.data = slash + 1;
    period.len = value->data + value->len - period.data;

    for (i = 0; i < 4; i++) {
        if (ngx_strlen(ngx_http_llm_period_names[i]) == period.len
            && ngx_strncmp(ngx_http_llm_period_names[i], period.data,
                           period.len) == 0)
        {
            budget->period = (uint8_t) i;
            return NGX_CONF_OK;
        }
    }

    return "the period must be minute, hour, day or month";
}


/* the window a time falls in, for a period: minutes, hours, days since
   the epoch, or months since year 0 (UTC) */

int64_t
ngx_http_llm_window(ngx_uint_t period, time_t now)
{
    ngx_tm_t  tm;

    /* the month of the last day asked for: a day's month never changes */
    static time_t   day = -1;
    static int64_t  month;

    switch (period) {
    case NGX_HTTP_LLM_MINUTE:
        return now / 60;
    case NGX_HTTP_LLM_HOUR:
        return now / 3600;
    case NGX_HTTP_LLM_DAY:
        return now / 86400;
    default:
        if (now / 86400 != day) {
            ngx_gmtime(now, &tm);
            month = (int64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon - 1;
            day = now / 86400;
        }

        return month;
    }
}


/*
 * With the lock held: whether an entity's meters hold anything that
 * counts now (a rate limit window of the last two minutes, or spend in
 * a budget's current window). Such a node is never evicted from the zone:
 * that would give the entity its limits afresh, and with llm_redis write
 * the reset to the fleet.
 */

ngx_uint_t
ngx_http_llm_account_live(ngx_http_llm_account_t *a, time_t now)
{
    int64_t                minute;
    ngx_uint_t             k;
    ngx_http_llm_meter_t  *m;

    if (a->parallel) {
        return 1;
    }

    minute = now / 60;

    if ((a->requests.window >= minute - 1
         && (a->requests.used || a->requests.prev || a->requests.reserved))
        || (a->tokens.window >= minute - 1
            && (a->tokens.used || a->tokens.prev || a->tokens.reserved)))
    {
        return 1;
    }

    for (k = 0; k < a->nbudgets && k < NGX_HTTP_LLM_MAX_BUDGETS; k++) {
        m = &a->budgets[k];

        if (m->window == ngx_http_llm_window(a->period[k], now)
            && (m->used || m->reserved || m->fleet))
        {
            return 1;
        }
    }

    return 0;
}


static time_t
ngx_http_llm_period_end(ngx_uint_t period, time_t now)
{
    int64_t   w;
    ngx_tm_t  tm;

    switch (period) {
    case NGX_HTTP_LLM_MINUTE:
        return (now / 60 + 1) * 60;
    case NGX_HTTP_LLM_HOUR:
        return (now / 3600 + 1) * 3600;
    case NGX_HTTP_LLM_DAY:
        return (now / 86400 + 1) * 86400;
    default:
        ngx_gmtime(now, &tm);
        w = (int64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon;   /* next month */
        return (time_t) ngx_http_llm_days(w / 12, w % 12 + 1, 1) * 86400;
    }
}


/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm) */

static int64_t
ngx_http_llm_days(int64_t y, int64_t m, int64_t d)
{
    int64_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


void
ngx_http_llm_meter_advance(ngx_http_llm_meter_t *m, int64_t window)
{
    if (m->window == window) {
        return;
    }

    /* the previous window is kept for sliding estimates */
    m->prev = (window == m->window + 1) ? m->used + m->fleet : 0;

    m->window = window;
    m->used = 0;
    m->fleet = 0;
    m->synced = 0;
}


/* a per-minute meter as a sliding minute */

static int64_t
ngx_http_llm_sliding(ngx_http_llm_meter_t *m, time_t now)
{
    return m->used + m->fleet + m->reserved
           + m->prev * (60 - now % 60) / 60;
}


ngx_int_t
ngx_http_llm_reserve(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    double                      in, out, prompt, completion;
    time_t                      now;
    ngx_int_t                   rc;
    ngx_uint_t                  i, k;
    ngx_http_llm_node_t        *node;
    ngx_http_llm_hold_t        *hold;
    ngx_http_llm_entity_t      *e;
    ngx_http_llm_target_t      *t;
    ngx_http_llm_account_t     *a;
    ngx_http_llm_refusal_t      no;
    ngx_http_llm_main_conf_t   *lmcf;

    if (ctx->key == NULL) {
        return NGX_OK;
    }

    /* llm_redis fail=closed: 503 while the fleet's usage is unknown */

    rc = ngx_http_llm_redis_check(r, ctx->key);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    hold = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_hold_t));
    if (hold == NULL) {
        return NGX_ERROR;
    }

    for (e = ctx->key; e && hold->n < 3; e = e->parent) {
        hold->entity[hold->n++] = e;
    }

    /* the estimate: the prompt at four bytes a token, and a completion
       of max_tokens, priced at the route's dearest target */

    prompt = ceil((double) ctx->chat.message_bytes / 4)
             + 4.0 * ctx->chat.messages;
    completion = (ctx->chat.max_tokens > 0) ? (double) ctx->chat.max_tokens
                                            : (double) lmcf->default_max_tokens;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        /* nothing is generated */
        completion = 0;
    }

    hold->tokens = (int64_t) (prompt + completion);

    in = 0;
    out = 0;
    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        in = ngx_max(in, t[i].input_price);
        out = ngx_max(out, t[i].output_price);
    }

    hold->cost = (int64_t) llround((prompt * in + completion * out) * 1000);

    if (ctx->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS) {
        /* a count uses no tokens: it is a request, and costs nothing */
        hold->tokens = 0;
        hold->cost = 0;
    }

    now = ngx_time();

    ngx_http_llm_zone_lock(lmcf->zone);

    for (i = 0; i < hold->n; i++) {
        e = hold->entity[i];

        node = ngx_http_llm_node_by_ref(lmcf->zone, &e->node_ref,
                                        NGX_HTTP_LLM_NODE_COUNTER,
                                        &e->node_name, e->node_hash,
                                        sizeof(ngx_http_llm_account_t), 1);
        if (node == NULL) {
            ngx_http_llm_zone_unlock(lmcf->zone);

            /* full of what must not be forgotten: no new key's spend */

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "llm: llm_zone \"%V\" (%uz bytes) is full of live "
                          "limits and budgets: \"%V\" is refused; give the "
                          "zone more memory",
                          &lmcf->zone->shm_zone->shm.name,
                          lmcf->zone->shm_zone->shm.size, &e->node_name);

            return ngx_http_llm_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "accounting_unavailable", NULL,
                                     "The gateway cannot account for this "
                                     "request now. Retry later.");
        }

        a = ngx_http_llm_node_payload(node, sizeof(ngx_http_llm_account_t));
        hold->account[i] = a;

        /* budgets changed by a reload start afresh */

        for (k = 0; k < e->nbudgets; k++) {
            if (k >= a->nbudgets || a->unit[k] != e->budgets[k].unit
                || a->period[k] != e->budgets[k].period)
            {
                ngx_memzero(&a->budgets[k], sizeof(ngx_http_llm_meter_t));
                a->unit[k] = e->budgets[k].unit;
                a->period[k] = e->budgets[k].period;
            }
        }

        a->nbudgets = e->nbudgets;

        if (!ngx_http_llm_check(e, a, hold, now, &no)) {
            ngx_http_llm_zone_unlock(lmcf->zone);

            /* the gateway's 429 says which of its limits binds */

            if (ngx_http_llm_ratelimit_push(r, hold) != NGX_OK) {
                return NGX_ERROR;
            }

            return ngx_http_llm_refuse_request(r, &no);
        }
    }

    for (i = 0; i < hold->n; i++) {
        e = hold->entity[i];
        a = hold->account[i];

        a->parallel++;
        a->requests.used++;
        a->tokens.reserved += hold->tokens;

        for (k = 0; k < e->nbudgets; k++) {
            a->budgets[k].reserved += (e->budgets[k].unit == NGX_HTTP_LLM_USD)
                                      ? hold->cost : hold->tokens;
        }
    }

    ngx_http_llm_zone_unlock(lmcf->zone);

    ctx->hold = hold;

    return NGX_OK;
}


/* with the lock held: 1 if the request fits every limit of the entity */

static ngx_uint_t
ngx_http_llm_check(ngx_http_llm_entity_t *e, ngx_http_llm_account_t *a,
    ngx_http_llm_hold_t *hold, time_t now, ngx_http_llm_refusal_t *no)
{
    int64_t                 used, amount;
    ngx_uint_t              k;
    ngx_http_llm_meter_t   *m;
    ngx_http_llm_budget_t  *b;

    no->entity = e;
    no->code = "rate_limit_exceeded";
    no->unit = NGX_HTTP_LLM_TOKENS;
    no->period = NGX_HTTP_LLM_MINUTE;
    no->retry = ngx_http_llm_period_end(NGX_HTTP_LLM_MINUTE, now) - now;

    ngx_http_llm_meter_advance(&a->requests,
                               ngx_http_llm_window(NGX_HTTP_LLM_MINUTE, now));
    ngx_http_llm_meter_advance(&a->tokens,
                               ngx_http_llm_window(NGX_HTTP_LLM_MINUTE, now));

    if (e->parallel && a->parallel + 1 > e->parallel) {
        no->what = "requests in parallel";
        no->limit = e->parallel;
        no->retry = 1;
        return 0;
    }

    if (e->rpm) {
        used = ngx_http_llm_sliding(&a->requests, now);

        if (used + 1 > (int64_t) e->rpm) {
            no->what = "requests per minute";
            no->limit = e->rpm;
            hold->limit_text[0] = &e->rpm_text;
            hold->remaining[0] = 0;
            hold->reset = now + no->retry;
            return 0;
        }

        if (hold->limit_text[0] == NULL
            || (int64_t) e->rpm - used - 1 < hold->remaining[0])
        {
            hold->limit_text[0] = &e->rpm_text;
            hold->remaining[0] = e->rpm - used - 1;
            hold->reset = now + no->retry;
        }
    }

    if (e->tpm) {
        used = ngx_http_llm_sliding(&a->tokens, now);

        if (used + hold->tokens > (int64_t) e->tpm) {
            no->what = "tokens per minute";
            no->limit = e->tpm;
            hold->limit_text[1] = &e->tpm_text;
            hold->remaining[1] = ngx_max((int64_t) e->tpm - used, 0);
            hold->reset = now + no->retry;
            return 0;
        }

        if (hold->limit_text[1] == NULL
            || (int64_t) e->tpm - used - hold->tokens < hold->remaining[1])
        {
            hold->limit_text[1] = &e->tpm_text;
            hold->remaining[1] = e->tpm - used - hold->tokens;
            hold->reset = now + no->retry;
        }
    }

    for (k = 0; k < e->nbudgets; k++) {
        b = &e->budgets[k];
        m = &a->budgets[k];

        ngx_http_llm_meter_advance(m, ngx_http_llm_window(b->period, now));

        amount = (b->unit == NGX_HTTP_LLM_USD) ? hold->cost : hold->tokens;

        if (m->used + m->fleet + m->reserved + amount > b->amount) {
            no->what = "budget";
            no->code = "insufficient_quota";
            no->limit = b->amount;
            no->unit = b->unit;
            no->period = b->period;
            no->retry = ngx_http_llm_period_end(b->period, now) - now;
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_llm_refuse_request(ngx_http_request_t *r, ngx_http_llm_refusal_t *no)
{
    const char       *kind;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");

    h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "%T", ngx_max(no->retry, 1))
                   - h->value.data;

    if (no->code[0] == 'i') {
        kind = ngx_http_llm_entity_kinds[no->entity->kind];

        if (no->unit == NGX_HTTP_LLM_USD) {
            return ngx_http_llm_fail(r, NGX_HTTP_TOO_MANY_REQUESTS, no->code,
                                     NULL, "Budget exhausted for %s `%V`: "
                                     "%L.%06L USD per %s. It resets in "
                                     "%T s.", kind, &no->entity->name,
                                     no->limit / NGX_HTTP_LLM_NANO,
                                     no->limit % NGX_HTTP_LLM_NANO / 1000,
                                     ngx_http_llm_period_names[no->period],
                                     no->retry);
        }

        return ngx_http_llm_fail(r, NGX_HTTP_TOO_MANY_REQUESTS, no->code,
                                 NULL, "Budget exhausted for %s `%V`: %L "
                                 "tokens per %s. It resets in %T s.", kind,
                                 &no->entity->name, no->limit,
                                 ngx_http_llm_period_names[no->period],
                                 no->retry);
    }

    return ngx_http_llm_fail(r, NGX_HTTP_TOO_MANY_REQUESTS, no->code, NULL,
                             "Rate limit reached for %s `%V`: %L %s. "
                             "Retry after %T s.",
                             ngx_http_llm_entity_kinds[no->entity->kind],
                             &no->entity->name, no->limit, no->what,
                             ngx_max(no->retry, 1));
}


/*
 * At the request's end, with the zone's lock held (the caller lets the
 * Redis worker know after it: ngx_http_llm_redis_settled()): the
 * reservation is replaced by what was used. A request whose attempts all
 * failed used nothing.
 */

void
ngx_http_llm_settle_locked(ngx_http_llm_ctx_t *ctx)
{
    time_t                      now;
    int64_t                     tokens, cost;
    ngx_uint_t                  i, k;
    ngx_http_llm_hold_t        *hold;
    ngx_http_llm_entity_t      *e;
    ngx_http_llm_account_t     *a;

    hold = ctx->hold;

    if (hold == NULL) {
        return;
    }

    ctx->hold = NULL;

    tokens = ctx->usage.prompt + ctx->usage.completion;
    cost = ctx->cost;

    now = ngx_time();

    for (i = 0; i < hold->n; i++) {
        e = hold->entity[i];
        a = hold->account[i];

        if (a->parallel) {
            a->parallel--;
        }

        ngx_http_llm_meter_advance(&a->tokens,
                               ngx_http_llm_window(NGX_HTTP_LLM_MINUTE, now));
        a->tokens.reserved -= hold->tokens;
        a->tokens.used += tokens;

        for (k = 0; k < e->nbudgets && k < a->nbudgets; k++) {
            ngx_http_llm_meter_advance(&a->budgets[k],
                             ngx_http_llm_window(e->budgets[k].period, now));

            if (e->budgets[k].unit == NGX_HTTP_LLM_USD) {
                a->budgets[k].reserved -= hold->cost;
                a->budgets[k].used += cost;

            } else {
                a->budgets[k].reserved -= hold->tokens;
                a->budgets[k].used += tokens;
            }
        }
    }
}


/* the request ended without the log phase: the reservation goes */

void
ngx_http_llm_unhold(ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t               i, k;
    ngx_http_llm_hold_t     *hold;
    ngx_http_llm_account_t  *a;

    hold = ctx->hold;

    if (hold == NULL) {
        return;
    }

    ctx->hold = NULL;

    ngx_http_llm_zone_lock(ctx->zone);

    for (i = 0; i < hold->n; i++) {
        a = hold->account[i];

        if (a->parallel) {
            a->parallel--;
        }

        a->tokens.reserved -= hold->tokens;

        for (k = 0; k < hold->entity[i]->nbudgets && k < a->nbudgets; k++) {
            a->budgets[k].reserved -=
                (hold->entity[i]->budgets[k].unit == NGX_HTTP_LLM_USD)
                ? hold->cost : hold->tokens;
        }
    }

    ngx_http_llm_zone_unlock(ctx->zone);
}


/* OpenAI's x-ratelimit-* headers, for the tightest limit that applies */

ngx_int_t
ngx_http_llm_ratelimit_headers(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    if (ctx->hold == NULL) {
        return NGX_OK;
    }

    if (ngx_http_llm_ratelimit_rename(r, ctx->hold) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_llm_ratelimit_push(r, ctx->hold);
}


static ngx_int_t
ngx_http_llm_ratelimit_push(ngx_http_request_t *r, ngx_http_llm_hold_t *hold)
{
    u_char            *p;
    time_t             reset;
    ngx_str_t          reset_text;
    ngx_uint_t         i;
    ngx_table_elt_t   *h;

    static ngx_str_t   names[] = {
        ngx_string("x-ratelimit-limit-requests"),
        ngx_string("x-ratelimit-remaining-requests"),
        ngx_string("x-ratelimit-limit-tokens"),
        ngx_string("x-ratelimit-remaining-tokens")
    };

    static ngx_str_t   resets[] = {
        ngx_string("x-ratelimit-reset-requests"),
        ngx_string("x-ratelimit-reset-tokens")
    };

    if (hold->limit_text[0] == NULL && hold->limit_text[1] == NULL) {
        return NGX_OK;
    }

    reset = ngx_max(hold->reset - ngx_time(), 0);

    /*
     * the text of the values left in one allocation (the limits' was
     * written with the configuration); both resets share one
     */

    p = ngx_pnalloc(r->pool, 2 * NGX_INT64_LEN + NGX_TIME_T_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    reset_text.data = p;
    p = ngx_http_llm_uint_text(p, (uint64_t) reset);
    *p++ = 's';
    reset_text.len = p - reset_text.data;

    for (i = 0; i < 4; i++) {
        if (hold->limit_text[i >> 1] == NULL) {
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key = names[i];

        if (!(i & 1)) {
            h->value = *hold->limit_text[i >> 1];

        } else {
            h->value.data = p;
            p = ngx_http_llm_uint_text(p, (uint64_t)
                                 ngx_max(hold->remaining[i >> 1], 0));
            h->value.len = p - h->value.data;
        }

        if (i & 1) {
            /* x-ratelimit-reset-*, in OpenAI's duration format */

            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = 1;
            h->key = resets[i >> 1];
            h->value = reset_text;
        }
    }

    return NGX_OK;
}


/*
 * The client sees one set of x-ratelimit-* headers per kind, the
 * gateway's, which is the limit that binds it: the provider's headers of
 * a kind the gateway limits move to x-provider-ratelimit-*.
 */

static ngx_int_t
ngx_http_llm_ratelimit_rename(ngx_http_request_t *r,
    ngx_http_llm_hold_t *hold)
{
    u_char           *p;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    static const char prefix[] = "x-ratelimit-";
    static const char moved[] = "x-provider-ratelimit-";

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len <= sizeof(prefix) - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) prefix,
                               sizeof(prefix) - 1) != 0)
        {
            continue;
        }

        p = h[i].key.data + h[i].key.len;

        if (!((hold->limit_text[0] && h[i].key.len > 9
               && ngx_strncasecmp(p - 9, (u_char *) "-requests", 9) == 0)
              || (hold->limit_text[1] && h[i].key.len > 7
                  && ngx_strncasecmp(p - 7, (u_char *) "-tokens", 7) == 0)))
        {
            continue;
        }

        p = ngx_pnalloc(r->pool, h[i].key.len + sizeof(moved) - sizeof(prefix));
        if (p == NULL) {
            return NGX_ERROR;
        }

        h[i].key.len = ngx_cpymem(ngx_cpymem(p, moved, sizeof(moved) - 1),
                                  h[i].key.data + sizeof(prefix) - 1,
                                  h[i].key.len - (sizeof(prefix) - 1))
                       - p;
        h[i].key.data = p;
    }

    return NGX_OK;
}


/* what a response cost, in nano-USD, at the target's prices */

int64_t
ngx_http_llm_cost(ngx_http_llm_target_t *t, ngx_http_llm_usage_t *usage)
{
    double   cost;
    int64_t  uncached;

    if (t == NULL || t->input_price < 0 || t->output_price < 0) {
        return 0;
    }

    /* a provider counting more cached tokens than prompt ones earns
       nothing back */

    uncached = ngx_max(usage->prompt - usage->cached - usage->cache_write, 0);

    /* USD per million tokens is micro-USD per token: x1000 is nano-USD */

    cost = (double) uncached * t->input_price
           + (double) usage->cached * t->cached_price
           + (double) usage->cache_write * t->cache_write_price
           + (double) usage->completion * t->output_price;

    cost *= 1000;

    /*
     * bounded: llround() of what int64_t cannot hold is undefined, and
     * a request costs at most NGX_HTTP_LLM_COST_MAX ($10,000,000), which
     * sums and shares of it can hold
     */

    if (!(cost >= 0)) {
        return 0;
    }

    if (cost > (double) NGX_HTTP_LLM_COST_MAX) {
        return NGX_HTTP_LLM_COST_MAX;
    }

    return (int64_t) llround(cost);
}
