
/*
 * Streamed redaction: text that arrives in pieces goes out with every
 * match of a rule replaced by its placeholder, and no byte of a match is
 * ever released, however the text is cut (docs/architecture.md,
 * "Guardrails"). Nothing is allocated per stream beyond the caller's
 * buffer, whose size is the most that may be held back.
 */


#ifndef _NGX_HTTP_LLM_REDACT_H_INCLUDED_
#define _NGX_HTTP_LLM_REDACT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH  8
#endif
#include <pcre2.h>


/* rules of one policy */
typedef struct {
    pcre2_code               **codes;         /* by rule */
    pcre2_match_data          *match;         /* the whole match only */
    ngx_str_t                 *placeholders;  /* by rule */
    ngx_uint_t                 nrules;
    size_t                     context;       /* bytes kept for lookbehind */
    unsigned                   utf:1;

    /* a bad rule: its number from 1, the offset ((size_t) -1: none) */
    ngx_uint_t                 error_rule;
    size_t                     error_offset;
} ngx_http_llm_redact_rules_t;


typedef ngx_int_t (*ngx_http_llm_redact_out_pt)(void *data, u_char *p,
    size_t len);


typedef struct {
    ngx_http_llm_redact_rules_t  *rules;
    ngx_http_llm_redact_out_pt    out;
    void                         *data;

    u_char                       *buf;        /* context, then held text */
    size_t                        size;
    size_t                        context;    /* released, kept to look back */
    size_t                        len;

    ngx_uint_t                    matches;
    ngx_uint_t                    overflows;
    /*
     * Held text that fills the buffer ends the stream (NGX_ABORT); with
     * overflow_drops it is replaced by NGX_HTTP_LLM_REDACT_OVERFLOW and
     * matching starts again after it, so the rest of a match longer than
     * the cap may go out
     */
    unsigned                      overflow_drops:1;
} ngx_http_llm_redact_t;


#define NGX_HTTP_LLM_REDACT_CASELESS  0x01
#define NGX_HTTP_LLM_REDACT_UTF       0x02

/* the placeholder of held text dropped at the cap */
#define NGX_HTTP_LLM_REDACT_OVERFLOW  "[REDACTED]"


/*
 * Compiles n rules (patterns[i] replaced by placeholders[i]); on a bad
 * one returns NGX_ERROR with PCRE2's message (or why) in err and the rule
 * and offset in rules->error_rule and error_offset. The caller frees
 * what PCRE2 allocated with ngx_http_llm_redact_free().
 */
ngx_int_t ngx_http_llm_redact_compile(ngx_pool_t *pool,
    ngx_http_llm_redact_rules_t *rules, ngx_str_t *patterns,
    ngx_str_t *placeholders, ngx_uint_t n, ngx_uint_t flags, u_char *err,
    size_t err_len);
void ngx_http_llm_redact_free(ngx_http_llm_redact_rules_t *rules);

/* buf: at least 64 bytes more than rules->context */
void ngx_http_llm_redact_init(ngx_http_llm_redact_t *rd,
    ngx_http_llm_redact_rules_t *rules, u_char *buf, size_t size,
    ngx_http_llm_redact_out_pt out, void *data);

/*
 * NGX_OK; NGX_ABORT when the held text fills the buffer (nothing of it
 * went out); NGX_ERROR on invalid UTF-8 in UTF mode, a matching error,
 * or an error of out().
 */
ngx_int_t ngx_http_llm_redact_feed(ngx_http_llm_redact_t *rd, u_char *p,
    size_t len);
ngx_int_t ngx_http_llm_redact_finish(ngx_http_llm_redact_t *rd);


#endif /* _NGX_HTTP_LLM_REDACT_H_INCLUDED_ */
