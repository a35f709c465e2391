
/*
 * Guard policies (llm_guard): rules on PCRE2 that refuse, redact or log
 * what requests and answers say, streamed answers included.
 * docs/guardrails.md.
 */


#ifndef _NGX_HTTP_LLM_GUARD_H_INCLUDED_
#define _NGX_HTTP_LLM_GUARD_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_redact.h"


/* rules in one policy: a bit each in a request's record of hits */
#define NGX_HTTP_LLM_GUARD_MAX_RULES        64

/* text of an answer held back at most (max_hold), default and bounds */
#define NGX_HTTP_LLM_GUARD_HOLD             4096
#define NGX_HTTP_LLM_GUARD_MAX_HOLD         (1024 * 1024)

#define NGX_HTTP_LLM_GUARD_MAX_PLACEHOLDER  128
#define NGX_HTTP_LLM_GUARD_MAX_RULE_NAME    128

/* texts remembered per request for numbered placeholders */
#define NGX_HTTP_LLM_GUARD_MAX_NUMBERED     1024

/* the roles of the messages a policy reads ("roles") */
#define NGX_HTTP_LLM_GUARD_SYSTEM           0x01   /* and "developer" */
#define NGX_HTTP_LLM_GUARD_USER             0x02
#define NGX_HTTP_LLM_GUARD_ASSISTANT        0x04
#define NGX_HTTP_LLM_GUARD_TOOL             0x08
#define NGX_HTTP_LLM_GUARD_ALL_ROLES        0x0f

/* where a rule reads */
#define NGX_HTTP_LLM_GUARD_REQUEST          0x01
#define NGX_HTTP_LLM_GUARD_RESPONSE         0x02


typedef enum {
    NGX_HTTP_LLM_GUARD_DENY = 0,
    NGX_HTTP_LLM_GUARD_ALLOW,
    NGX_HTTP_LLM_GUARD_REDACT,
    NGX_HTTP_LLM_GUARD_LOG
} ngx_http_llm_guard_action_e;


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      pattern;
    ngx_str_t                      placeholder;
    ngx_http_llm_redact_check_pt   check;         /* a detector's */
    ngx_http_llm_redact_hint_t     hint;          /* a detector's */
    ngx_http_llm_guard_action_e    action;
    ngx_uint_t                     where;
} ngx_http_llm_guard_rule_t;


/* some of a policy's rules, compiled together */
typedef struct {
    ngx_http_llm_redact_rules_t    compiled;
    ngx_uint_t                    *rule;          /* number in the policy */
} ngx_http_llm_guard_set_t;


typedef struct ngx_http_llm_guard_s {
    ngx_str_t                      name;
    ngx_array_t                    rules;         /* guard_rule_t */

    ngx_http_llm_guard_set_t       deny;          /* requests refused */
    ngx_http_llm_guard_set_t       allow;         /* one must match */
    ngx_http_llm_guard_set_t       edit;          /* redacted, logged */
    ngx_http_llm_guard_set_t       answer;        /* answers: all actions */

    size_t                         max_hold;
    unsigned                       overflow_drops:1;
    ngx_flag_t                     ignore_invisible;
    ngx_uint_t                     roles;         /* NGX_HTTP_LLM_GUARD_* */
    ngx_flag_t                     last_user;     /* "messages last_user" */

    u_char                        *file;          /* where it is defined */
    ngx_uint_t                     line;
} ngx_http_llm_guard_t;


/* the actions' names, by ngx_http_llm_guard_action_e */
extern ngx_str_t  ngx_http_llm_guard_actions[];


char *ngx_http_llm_guard_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_guard_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_guard_merge(ngx_conf_t *cf, ngx_http_llm_loc_conf_t *prev,
    ngx_http_llm_loc_conf_t *conf);

/*
 * NGX_OK: the request may go on, its texts redacted where rules say so
 * (ctx->request_redacted: the body is to be built again from the tree);
 * else the response to send (a 400 in the client's API naming the
 * policy and the rule, never the text)
 */
ngx_int_t ngx_http_llm_guard_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);

/* keys', teams' and organisations' "guard": resolved after the http block */
ngx_int_t ngx_http_llm_guard_entities(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);

/* the policy that reads this request's answer, or NULL */
ngx_http_llm_guard_t *ngx_http_llm_guard_answers(ngx_http_request_t *r);

/*
 * A redactor of an answer's text under guard's answer rules: released
 * text goes to out(data), hits are recorded in ctx
 */
ngx_http_llm_redact_t *ngx_http_llm_guard_redactor(ngx_http_request_t *r,
    ngx_http_llm_guard_t *guard, ngx_http_llm_redact_out_pt out,
    void *data);

/* a rule of the answer set matched: recorded and logged */
void ngx_http_llm_guard_hit(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_guard_t *guard, ngx_uint_t where, ngx_uint_t rule);

/* a rule of the answer set, by its number there */
ngx_http_llm_guard_rule_t *ngx_http_llm_guard_answer_rule(
    ngx_http_llm_guard_t *guard, ngx_uint_t n);

/*
 * A numbered placeholder ("[EMAIL_#]"): the same text of a rule gets the
 * same number throughout a request, request and answer alike
 */
ngx_int_t ngx_http_llm_guard_number(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_guard_t *guard, ngx_uint_t rule,
    u_char *p, size_t len, ngx_str_t *placeholder);

/* the rule of the answer set numbered n, its number in the policy */
#define ngx_http_llm_guard_answer_number(guard, n)  ((guard)->answer.rule[n])

/* $llm_guard: "policy/rule:action:where" of the rules that fired */
ngx_int_t ngx_http_llm_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_LLM_GUARD_H_INCLUDED_ */
