
/*
 * Rule-based routing: regexes compiled at configuration time (route
 * names, keys' model lists) and "when" rules that send a request to
 * another route. docs/routing.md.
 */


#ifndef _NGX_HTTP_LLM_RULES_H_INCLUDED_
#define _NGX_HTTP_LLM_RULES_H_INCLUDED_


#include "ngx_http_llm_module.h"


/* "when" rules in one route (docs/routing.md, "Limits") */
#define NGX_HTTP_LLM_MAX_RULES       32

/* captures a target model may use: $0 .. $9 */
#define NGX_HTTP_LLM_MAX_CAPTURES    10


typedef struct ngx_http_llm_regex_s {
    void                          *code;      /* pcre2_code */
    /* reused: a worker matches one text at a time */
    void                          *match;     /* pcre2_match_data */
    ngx_uint_t                     captures;
} ngx_http_llm_regex_t;


/*
 * A regex compiled with JIT, freed with the pool; NULL: PCRE2's message
 * and the offset in err
 */
ngx_http_llm_regex_t *ngx_http_llm_regex_compile(ngx_pool_t *pool,
    ngx_str_t *pattern, ngx_uint_t caseless, u_char *err, size_t len);

/* "~re" or "~*re": the regex; NULL with err as above */
ngx_http_llm_regex_t *ngx_http_llm_regex_name(ngx_pool_t *pool,
    ngx_str_t *name, u_char *err, size_t len);

/* NGX_OK: a match; NGX_DECLINED: none; NGX_ERROR: a match limit */
ngx_int_t ngx_http_llm_regex_exec(ngx_http_llm_regex_t *rx, u_char *p,
    size_t len);

/* after a match: capture n (0 to 9), empty when it did not take part */
void ngx_http_llm_regex_capture(ngx_http_llm_regex_t *rx, u_char *subject,
    ngx_uint_t n, ngx_str_t *out);

/* "when CONDITION ROUTE;" inside llm_route */
char *ngx_http_llm_rule_parse(ngx_conf_t *cf, ngx_http_llm_route_t *route);

/* after the http block: rules find their routes */
ngx_int_t ngx_http_llm_rules_init(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf, ngx_http_llm_route_t *route);

/* the route that serves the request: a rule's, or the route itself */
ngx_http_llm_route_t *ngx_http_llm_rules_apply(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_route_t *route);


#endif /* _NGX_HTTP_LLM_RULES_H_INCLUDED_ */
