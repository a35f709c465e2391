
/*
 * Built-in detectors of guard policies ("redact email @email;"): PCRE2
 * patterns for common personal data and secrets, some with a checksum
 * that a match must pass (docs/guardrails.md, "Built-in detectors").
 */


#ifndef _NGX_HTTP_LLM_GUARD_DETECT_H_INCLUDED_
#define _NGX_HTTP_LLM_GUARD_DETECT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redact.h"


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      pattern;
    ngx_http_llm_redact_check_pt   check;      /* NULL: none */
    ngx_http_llm_redact_hint_t     hint;       /* where a match may be */
} ngx_http_llm_detector_t;


/* the detector of that name (without the "@"), or NULL */
ngx_http_llm_detector_t *ngx_http_llm_detector(ngx_str_t *name);

/* "email, phone, ...": the names, for an error message */
extern const char  *ngx_http_llm_detector_names;

/* the checks, for their tests */
ngx_uint_t ngx_http_llm_detect_luhn(u_char *p, size_t len);
ngx_uint_t ngx_http_llm_detect_iban(u_char *p, size_t len);


#endif /* _NGX_HTTP_LLM_GUARD_DETECT_H_INCLUDED_ */
