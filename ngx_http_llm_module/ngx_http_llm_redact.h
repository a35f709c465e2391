
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

#include "ngx_http_llm_redact_literal.h"


/* what a rule's match does in a stream */
#define NGX_HTTP_LLM_REDACT_REPLACE  0        /* its placeholder goes out */
#define NGX_HTTP_LLM_REDACT_PASS     1        /* it goes out as it is */
#define NGX_HTTP_LLM_REDACT_STOP     2        /* the stream stops before it */


/* a whole match is a match only if it passes (a checksum, say) */
typedef ngx_uint_t (*ngx_http_llm_redact_check_pt)(u_char *p, size_t len);


/* the anchor of a hint that is any ASCII digit */
#define NGX_HTTP_LLM_REDACT_DIGIT  1

/*
 * Every match of a rule has its anchor byte at most "before" bytes from
 * its start: a whole text is searched for anchors first, and the rule
 * tried only where one is near (anchor 0: no hint)
 */
typedef struct {
    u_char                     anchor;
    u_char                     before;
} ngx_http_llm_redact_hint_t;


/*
 * literals' places remembered per text, in slots by the number of the
 * first rule with the literal, modulo this
 */
#define NGX_HTTP_LLM_REDACT_SEEN_LITERALS  4


/* what is known of one text while rule after rule is tried on it */
typedef struct {
    size_t                     digit_from;    /* the first digit from */
    size_t                     digit;         /* there: len if none */
    ngx_uint_t                 utf;           /* 0: not checked yet */

    /* the first place of literal lit[i] from lit_from[i]: len if none */
    ngx_http_llm_redact_literal_t  *lit[NGX_HTTP_LLM_REDACT_SEEN_LITERALS];
    size_t                     lit_from[NGX_HTTP_LLM_REDACT_SEEN_LITERALS];
    size_t                     lit_at[NGX_HTTP_LLM_REDACT_SEEN_LITERALS];
} ngx_http_llm_redact_text_t;

#define NGX_HTTP_LLM_REDACT_UTF_VALID    1
#define NGX_HTTP_LLM_REDACT_UTF_INVALID  2

#define ngx_http_llm_redact_text_init(t)                                     \
    (t)->digit_from = (size_t) -1; (t)->digit = 0; (t)->utf = 0;             \
    (t)->lit[0] = NULL; (t)->lit[1] = NULL; (t)->lit[2] = NULL;              \
    (t)->lit[3] = NULL


/* rules of one policy */
typedef struct {
    pcre2_code               **codes;         /* by rule */
    u_char                    *jit;           /* by rule: JIT-compiled */
    pcre2_match_data          *match;         /* the whole match only */
    ngx_str_t                 *placeholders;  /* by rule */
    u_char                    *actions;       /* by rule; NULL: all REPLACE */
    ngx_http_llm_redact_check_pt  *checks;    /* by rule; NULL: none */
    ngx_http_llm_redact_hint_t    *hints;     /* by rule; NULL: none */
    size_t                        *windows;   /* by rule: hints' "before"
                                                 in bytes */
    /* by rule, NULL: none; the rules' or NULL: no prefilter */
    ngx_http_llm_redact_literal_t **literals;
    pcre2_match_context           *window;    /* a hint's offset limit */
    u_char                    *numbered;      /* by rule; NULL: none */
    ngx_uint_t                 nrules;
    size_t                     context;       /* bytes kept for lookbehind */
    unsigned                   utf:1;
    /* zero-width and bidi control characters are dropped from the text */
    unsigned                   strip_invisible:1;

    /* a bad rule: its number from 1, the offset ((size_t) -1: none) */
    ngx_uint_t                 error_rule;
    size_t                     error_offset;
} ngx_http_llm_redact_rules_t;


typedef ngx_int_t (*ngx_http_llm_redact_out_pt)(void *data, u_char *p,
    size_t len);

/* a numbered placeholder: the one for this match of that rule */
typedef ngx_int_t (*ngx_http_llm_redact_name_pt)(void *data, ngx_uint_t rule,
    u_char *p, size_t len, ngx_str_t *placeholder);

/* a rule matched; NGX_OK goes on, anything else is returned by feed */
typedef ngx_int_t (*ngx_http_llm_redact_hit_pt)(void *data, ngx_uint_t rule);


typedef struct {
    ngx_http_llm_redact_rules_t  *rules;
    ngx_http_llm_redact_out_pt    out;
    ngx_http_llm_redact_hit_pt    hit;        /* optional */
    ngx_http_llm_redact_name_pt   name;       /* for numbered rules */
    void                         *data;

    u_char                       *buf;        /* context, then held text */
    size_t                        size;
    size_t                        context;    /* released, kept to look back */
    size_t                        len;

    u_char                        pend[3];    /* what may begin an
                                                 invisible character */
    ngx_uint_t                    npend;

    ngx_uint_t                    matches;
    ngx_uint_t                    overflows;
    ngx_uint_t                    stopped_by;  /* a STOP rule's number */
    /*
     * Held text that fills the buffer ends the stream (NGX_ABORT); with
     * overflow_drops it is replaced by NGX_HTTP_LLM_REDACT_OVERFLOW and
     * matching starts again after it, so the rest of a match longer than
     * the cap may go out
     */
    unsigned                      overflow_drops:1;
    /*
     * The text comes whole (an answer not streamed): it is held until
     * finish and matched once without partial matching, which lets a
     * rule's required literal rule it out (ngx_http_llm_redact_match);
     * text that would not fit the buffer is matched as it comes
     */
    unsigned                      whole:1;
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

/* the rules' hints (by rule, or NULL), after compiling */
void ngx_http_llm_redact_set_hints(ngx_http_llm_redact_rules_t *rules,
    ngx_http_llm_redact_hint_t *hints);

/* buf: at least 64 bytes more than rules->context */
void ngx_http_llm_redact_init(ngx_http_llm_redact_t *rd,
    ngx_http_llm_redact_rules_t *rules, u_char *buf, size_t size,
    ngx_http_llm_redact_out_pt out, void *data);

/*
 * NGX_OK; NGX_ABORT when the held text fills the buffer (nothing of it
 * went out); NGX_DECLINED when a STOP rule matched (rd->stopped_by: the
 * rule; what came before the match went out, nothing of it or after it
 * did, and nothing more will); NGX_ERROR on invalid UTF-8 in UTF mode, a
 * matching error, or an error of out().
 */
ngx_int_t ngx_http_llm_redact_feed(ngx_http_llm_redact_t *rd, u_char *p,
    size_t len);
ngx_int_t ngx_http_llm_redact_finish(ngx_http_llm_redact_t *rd);

/*
 * pcre2_match() of rule n from start, its ovector in rules->match, past
 * whole matches that the rule's check refuses. "seen" (or NULL) is what
 * earlier rules learnt of the same text: with it, texts are searched
 * with the rules' hints (whole texts, and in hard partial mode texts
 * that may go on), and a text in UTF mode is checked once for all rules.
 */
int ngx_http_llm_redact_match(ngx_http_llm_redact_rules_t *rules,
    ngx_uint_t n, u_char *text, size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen);

/*
 * A whole text without its zero-width and bidi control characters, in
 * place; returns the new length
 */
size_t ngx_http_llm_redact_strip(u_char *p, size_t len);

/* the offset of the first zero-width or bidi character, len if none */
size_t ngx_http_llm_redact_find_invisible(u_char *p, size_t len);

/* UTF-8 as PCRE2 takes it */
ngx_uint_t ngx_http_llm_redact_valid_utf8(u_char *p, size_t len);


#endif /* _NGX_HTTP_LLM_REDACT_H_INCLUDED_ */
