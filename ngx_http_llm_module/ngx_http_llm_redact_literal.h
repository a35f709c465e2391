
/*
 * The literal prefilter of rules: what every match of a pattern must
 * contain, found when the rules are compiled, and its search in a text.
 */


#ifndef _NGX_HTTP_LLM_REDACT_LITERAL_H_INCLUDED_
#define _NGX_HTTP_LLM_REDACT_LITERAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * What every match of a rule contains: one literal (n 1) or one of a
 * set, at most 32 bytes each (longer ones are cut: a part of a required
 * literal is required too), ASCII letters lowercase if caseless. Text
 * without it is no match, without a PCRE2 run.
 */

#define NGX_HTTP_LLM_REDACT_MEMBERS      8
#define NGX_HTTP_LLM_REDACT_LITERAL_LEN  32
#define NGX_HTTP_LLM_REDACT_LITERAL_MIN  3

typedef struct {
    ngx_uint_t                 n;
    unsigned                   caseless:1;
    unsigned                   utf:1;         /* the rule's code is UTF */
    u_char                     slot;          /* in a text's memo */
    u_char                     len[NGX_HTTP_LLM_REDACT_MEMBERS];
    u_char                     rare[NGX_HTTP_LLM_REDACT_MEMBERS][2];
    u_char                     data[NGX_HTTP_LLM_REDACT_MEMBERS]
                                   [NGX_HTTP_LLM_REDACT_LITERAL_LEN];
} ngx_http_llm_redact_literal_t;


/*
 * The literal(s) every match of a pattern contains (flags: the rules'
 * CASELESS, UTF); NGX_DECLINED when none is certain or long enough
 */
ngx_int_t ngx_http_llm_redact_literal(u_char *pattern, size_t len,
    ngx_uint_t flags, ngx_http_llm_redact_literal_t *lit);

/* the first place of the literal (any of the set) from start, or len */
size_t ngx_http_llm_redact_find_literal(ngx_http_llm_redact_literal_t *lit,
    u_char *text, size_t start, size_t len);


#endif /* _NGX_HTTP_LLM_REDACT_LITERAL_H_INCLUDED_ */
