
/*
 * Guard policies (llm_guard): rules on PCRE2 that refuse a request by
 * what its messages say. docs/guardrails.md.
 */


#ifndef _NGX_HTTP_LLM_GUARD_H_INCLUDED_
#define _NGX_HTTP_LLM_GUARD_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_redact.h"


/* rules in one policy (docs/guardrails.md, "Limits") */
#define NGX_HTTP_LLM_GUARD_MAX_RULES  64


typedef struct ngx_http_llm_guard_s {
    ngx_str_t                      name;
    ngx_array_t                    rule_names;    /* ngx_str_t */
    ngx_array_t                    patterns;      /* ngx_str_t */
    ngx_http_llm_redact_rules_t    deny;
    u_char                        *file;          /* where it is defined */
    ngx_uint_t                     line;
} ngx_http_llm_guard_t;


char *ngx_http_llm_guard_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_guard_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_guard_merge(ngx_conf_t *cf, ngx_http_llm_loc_conf_t *prev,
    ngx_http_llm_loc_conf_t *conf);

/*
 * NGX_OK: the request may go on; else the response to send (a 400 in
 * the client's API naming the policy and the rule, never the text)
 */
ngx_int_t ngx_http_llm_guard_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


#endif /* _NGX_HTTP_LLM_GUARD_H_INCLUDED_ */
