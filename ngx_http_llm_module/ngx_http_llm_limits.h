
/*
 * Clients and their limits: gateway keys, the teams and organisations
 * they belong to, and what each may spend. Usage is metered in the
 * llm_zone per entity; a request reserves its estimate against every
 * limit that applies, atomically, and settles the actual numbers in the
 * log phase.
 */


#ifndef _NGX_HTTP_LLM_LIMITS_H_INCLUDED_
#define _NGX_HTTP_LLM_LIMITS_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"


#define NGX_HTTP_LLM_MAX_BUDGETS    4

/* money is counted in nano-dollars: prices per million tokens in USD are
   micro-dollars per token, and some are fractions of that */
#define NGX_HTTP_LLM_NANO           1000000000LL


typedef enum {
    NGX_HTTP_LLM_KEY = 0,
    NGX_HTTP_LLM_TEAM,
    NGX_HTTP_LLM_ORG
} ngx_http_llm_entity_kind_e;


typedef enum {
    NGX_HTTP_LLM_USD = 0,
    NGX_HTTP_LLM_TOKENS
} ngx_http_llm_unit_e;


typedef enum {
    NGX_HTTP_LLM_MINUTE = 0,
    NGX_HTTP_LLM_HOUR,
    NGX_HTTP_LLM_DAY,
    NGX_HTTP_LLM_MONTH
} ngx_http_llm_period_e;


typedef struct {
    uint8_t                        unit;
    uint8_t                        period;
    int64_t                        amount;          /* nano-USD or tokens */
} ngx_http_llm_budget_t;


/* an entry of a "models" list: a glob, or "~re", "~*re" */
typedef struct {
    ngx_str_t                      glob;
    struct ngx_http_llm_regex_s   *regex;
    size_t                         prefix;   /* "text*": the text's length */
} ngx_http_llm_model_pattern_t;


struct ngx_http_llm_entity_s {
    /*
     * What every request reads comes first, the entity aligned to a cache
     * line (keys.c): with thousands of keys, each line is a miss
     */

    /* a key's team, a team's organisation */
    ngx_http_llm_entity_t         *parent;

    /* ngx_http_llm_model_pattern_t */
    ngx_array_t                   *models;

    /* "guard NAME|off": its policy, over its team's and the location's */
    struct ngx_http_llm_guard_s   *guard;           /* NULL with "off" */

    /* this worker's pointers to its meters and its spend in the zone */
    ngx_http_llm_node_ref_t        node_ref;
    ngx_http_llm_node_ref_t        spend_ref;
    uint32_t                       node_hash;
    uint32_t                       spend_hash;     /* its spend, same name */

    ngx_uint_t                     rpm;
    ngx_uint_t                     tpm;
    ngx_uint_t                     parallel;
    /* 32 bits, beside the flags: the first budget within two lines */
    uint32_t                       nbudgets;
    unsigned                       guard_set:1;
    unsigned                       has_digest:1;
    ngx_http_llm_budget_t          budgets[NGX_HTTP_LLM_MAX_BUDGETS];

    ngx_uint_t                     kind;
    ngx_str_t                      name;

    /* its meters' name in the zone: "key:alice", "team:eng", "org:acme" */
    ngx_str_t                      node_name;

    u_char                         digest[32];      /* keys */

    ngx_str_t                      parent_name;
    ngx_str_t                      guard_name;

    /* rpm and tpm as text, for x-ratelimit-limit-* */
    ngx_str_t                      rpm_text;
    ngx_str_t                      tpm_text;

    u_char                        *file_name;
    ngx_uint_t                     line;
};


/* one meter of an entity, for the current window of its period */
typedef struct {
    int64_t                        window;
    int64_t                        used;            /* settled, this node */
    int64_t                        reserved;        /* requests in flight */
    int64_t                        fleet;           /* other nodes (Redis) */
    int64_t                        prev;            /* previous window */
    int64_t                        synced;          /* used, as in Redis */
} ngx_http_llm_meter_t;


/* an entity's state in the zone */
typedef struct {
    uint32_t                       parallel;
    uint32_t                       nbudgets;
    /* with the counts, read by every request: one line less to miss */
    uint8_t                        unit[NGX_HTTP_LLM_MAX_BUDGETS];
    uint8_t                        period[NGX_HTTP_LLM_MAX_BUDGETS];
    ngx_http_llm_meter_t           requests;        /* rpm */
    ngx_http_llm_meter_t           tokens;          /* tpm */
    ngx_http_llm_meter_t           budgets[NGX_HTTP_LLM_MAX_BUDGETS];
} ngx_http_llm_account_t;


/* "key", "team", "org"; "minute" .. "month" */
extern const char  *ngx_http_llm_entity_kinds[];
extern const char  *ngx_http_llm_period_names[];


/* ngx_http_llm_limits.c */
ngx_int_t ngx_http_llm_reserve(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
/* with the zone's lock held */
void ngx_http_llm_settle_locked(ngx_http_llm_ctx_t *ctx);
void ngx_http_llm_unhold(ngx_http_llm_ctx_t *ctx);
ngx_int_t ngx_http_llm_ratelimit_headers(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
int64_t ngx_http_llm_cost(ngx_http_llm_target_t *t,
    ngx_http_llm_usage_t *usage);
int64_t ngx_http_llm_window(ngx_uint_t period, time_t now);
ngx_uint_t ngx_http_llm_account_live(ngx_http_llm_account_t *a, time_t now);
void ngx_http_llm_meter_advance(ngx_http_llm_meter_t *m, int64_t window);
char *ngx_http_llm_parse_budget(ngx_str_t *value,
    ngx_http_llm_budget_t *budget);

char *ngx_http_llm_default_max_tokens(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_LLM_LIMITS_H_INCLUDED_ */
