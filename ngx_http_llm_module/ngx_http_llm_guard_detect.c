
/*
 * Built-in detectors: patterns written to hold back as little as they
 * can in a stream (bounded where the data is), and checksums where the
 * data has one, so that random digit runs are not taken for cards or
 * accounts. A hint says which byte every match has near its start (an
 * e-mail's "@" within 64 bytes, a card's first digit at once): whole
 * texts without it are passed over without running the pattern.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_guard_detect.h"


#define NGX_HTTP_LLM_HEX4  "[0-9A-Fa-f]{1,4}"


static ngx_http_llm_detector_t  ngx_http_llm_detectors[] = {

    { ngx_string("email"),
      ngx_string("[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}"
                 "(?:\\.[A-Za-z0-9-]{1,63}){0,8}\\.[A-Za-z]{2,24}"
                 "(?![A-Za-z0-9-])"),
      NULL, { '@', 64 } },

    /* E.164, and national forms in groups: (415) 555-2671, 030 1234 5678 */
    { ngx_string("phone"),
      ngx_string("(?<![\\w+])(?:\\+[1-9]\\d{6,14}"
                 "|(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{1,4}\\)|\\d{1,4})"
                 "[ .-]?\\d{2,4}[ .-]\\d{3,4}(?:[ .-]\\d{2,4})?)(?!\\w)"),
      NULL, { NGX_HTTP_LLM_REDACT_DIGIT, 1 } },

    /* 13 to 19 digits, spaces or dashes between, and the Luhn check */
    { ngx_string("card"),
      ngx_string("(?<![\\d-])\\d(?:[ -]?\\d){12,18}(?![\\d])"),
      ngx_http_llm_detect_luhn, { NGX_HTTP_LLM_REDACT_DIGIT, 0 } },

    /* ISO 13616, grouped by four or not, and the mod-97 check */
    { ngx_string("iban"),
      ngx_string("\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]){11,30}\\b"),
      ngx_http_llm_detect_iban, { NGX_HTTP_LLM_REDACT_DIGIT, 2 } },

    { ngx_string("us_ssn"),
      ngx_string("\\b(?!000|666|9\\d\\d)\\d{3}-(?!00)\\d{2}-(?!0000)\\d{4}\\b"),
      NULL, { NGX_HTTP_LLM_REDACT_DIGIT, 0 } },

    { ngx_string("ipv4"),
      ngx_string("(?<![\\d.])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}"
                 "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?!\\d|\\.\\d)"),
      NULL, { NGX_HTTP_LLM_REDACT_DIGIT, 0 } },

    /* full and "::"-compressed forms; never "::" alone (C++, Rust) */
    { ngx_string("ipv6"),
      ngx_string("(?<![:\\w])(?:"
                 "(?:" NGX_HTTP_LLM_HEX4 ":){7}" NGX_HTTP_LLM_HEX4
                 "|(?:" NGX_HTTP_LLM_HEX4 ":){1,7}:"
                 "(?:" NGX_HTTP_LLM_HEX4 "(?::" NGX_HTTP_LLM_HEX4 "){0,5})?"
                 "|::" NGX_HTTP_LLM_HEX4 "(?::" NGX_HTTP_LLM_HEX4 "){0,6}"
                 ")(?![:\\w])"),
      NULL, { ':', 4 } },

    /* OpenAI's and Anthropic's: sk-..., sk-proj-..., sk-ant-api03-... */
    { ngx_string("api_key"),
      ngx_string("\\bsk-[A-Za-z0-9_-]{20,256}"),
      NULL, { 0, 0 } },

    { ngx_string("aws_key"),
      ngx_string("\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b"),
      NULL, { 0, 0 } },

    { ngx_string("github_token"),
      ngx_string("\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}"
                 "|github_pat_[A-Za-z0-9_]{22,255})\\b"),
      NULL, { 0, 0 } },

    { ngx_string("jwt"),
      ngx_string("\\beyJ[A-Za-z0-9_-]{8,4096}\\.eyJ[A-Za-z0-9_-]{8,4096}"
                 "\\.[A-Za-z0-9_-]{8,4096}"),
      NULL, { 0, 0 } },

    /* the whole block: held until its END line (max_hold bounds it) */
    { ngx_string("private_key"),
      ngx_string("-----BEGIN (?:[A-Z]+ ){0,3}PRIVATE KEY-----[\\s\\S]*?"
                 "-----END (?:[A-Z]+ ){0,3}PRIVATE KEY-----"),
      NULL, { 0, 0 } },

    { ngx_null_string, ngx_null_string, NULL, { 0, 0 } }
};


const char  *ngx_http_llm_detector_names =
    "email, phone, card, iban, us_ssn, ipv4, ipv6, api_key, aws_key, "
    "github_token, jwt, private_key";


ngx_http_llm_detector_t *
ngx_http_llm_detector(ngx_str_t *name)
{
    ngx_http_llm_detector_t  *d;

    for (d = ngx_http_llm_detectors; d->name.len; d++) {
        if (d->name.len == name->len
            && ngx_strncmp(d->name.data, name->data, name->len) == 0)
        {
            return d;
        }
    }

    return NULL;
}


ngx_uint_t
ngx_http_llm_detect_luhn(u_char *p, size_t len)
{
    size_t      i;
    ngx_uint_t  sum, digits, d, twice;

    sum = 0;
    digits = 0;
    twice = 0;

    /* from the last digit: every second one doubled */

    for (i = len; i > 0; i--) {
        if (p[i - 1] < '0' || p[i - 1] > '9') {
            continue;
        }

        d = p[i - 1] - '0';

        if (twice) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }

        sum += d;
        digits++;
        twice = !twice;
    }

    return digits >= 13 && digits <= 19 && sum % 10 == 0;
}


ngx_uint_t
ngx_http_llm_detect_iban(u_char *p, size_t len)
{
    u_char      c, s[34];
    size_t      i, n;
    ngx_uint_t  rem;

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] == ' ') {
            continue;
        }

        if (n == sizeof(s)) {
            return 0;
        }

        s[n++] = p[i];
    }

    if (n < 15) {
        return 0;
    }

    /* the country and check digits go to the end; letters are 10-35 */

    rem = 0;

    for (i = 0; i < n; i++) {
        c = s[(i + 4) % n];

        if (c >= '0' && c <= '9') {
            rem = (rem * 10 + (c - '0')) % 97;

        } else if (c >= 'A' && c <= 'Z') {
            rem = (rem * 100 + (c - 'A' + 10)) % 97;

        } else {
            return 0;
        }
    }

    return rem == 1;
}
