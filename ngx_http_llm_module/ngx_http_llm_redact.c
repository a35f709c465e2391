
/*
 * Streamed redaction with PCRE2's hard partial matching: text that could
 * still become a match is held, everything before it is released at once.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redact.h"


static ngx_int_t ngx_http_llm_redact_run(ngx_http_llm_redact_t *rd,
    ngx_uint_t final);
static ngx_int_t ngx_http_llm_redact_emit(ngx_http_llm_redact_t *rd,
    u_char *p, size_t len);
static size_t ngx_http_llm_redact_whole_chars(u_char *p, size_t start,
    size_t end);


ngx_int_t
ngx_http_llm_redact_compile(ngx_pool_t *pool,
    ngx_http_llm_redact_rules_t *rules, ngx_str_t *patterns,
    ngx_str_t *placeholders, ngx_uint_t n, ngx_uint_t flags, u_char *err,
    size_t err_len)
{
    int          errcode;
    uint32_t     options, min, lookbehind, most;
    ngx_uint_t   i;
    PCRE2_SIZE   erroffset;
    pcre2_code  *code;

    static const char  empty[] = "it can match an empty text";

    ngx_memzero(rules, sizeof(ngx_http_llm_redact_rules_t));

    options = 0;

    if (flags & NGX_HTTP_LLM_REDACT_CASELESS) {
        options |= PCRE2_CASELESS;
    }

    if (flags & NGX_HTTP_LLM_REDACT_UTF) {
        options |= PCRE2_UTF;
        rules->utf = 1;
    }

    rules->codes = ngx_pcalloc(pool, n * sizeof(pcre2_code *));
    if (rules->codes == NULL) {
        return NGX_ERROR;
    }

    rules->nrules = n;
    rules->placeholders = placeholders;
    most = 0;

    for (i = 0; i < n; i++) {
        rules->error_rule = i + 1;

        code = pcre2_compile(patterns[i].data, patterns[i].len, options,
                             &errcode, &erroffset, NULL);
        if (code == NULL) {
            rules->error_offset = erroffset;
            (void) pcre2_get_error_message(errcode, err, err_len);
            ngx_http_llm_redact_free(rules);
            return NGX_ERROR;
        }

        rules->codes[i] = code;

        min = 0;
        (void) pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &min);

        if (min == 0) {
            rules->error_offset = (size_t) NGX_ERROR;
            ngx_memcpy(err, empty, ngx_min(err_len, sizeof(empty)));
            err[err_len - 1] = '\0';
            ngx_http_llm_redact_free(rules);
            return NGX_ERROR;
        }

        /* without JIT, the interpreter gives the same answers, slower */
        (void) pcre2_jit_compile(code,
                                 PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);

        lookbehind = 0;
        (void) pcre2_pattern_info(code, PCRE2_INFO_MAXLOOKBEHIND,
                                  &lookbehind);
        most = ngx_max(most, lookbehind);
    }

    rules->error_rule = 0;

    rules->match = pcre2_match_data_create(1, NULL);
    if (rules->match == NULL) {
        ngx_http_llm_redact_free(rules);
        return NGX_ERROR;
    }

    /* characters to bytes; \b and \B look one character back */
    rules->context = (most + 1) * 4;

    return NGX_OK;
}


void
ngx_http_llm_redact_free(ngx_http_llm_redact_rules_t *rules)
{
    ngx_uint_t  i;

    if (rules->match) {
        pcre2_match_data_free(rules->match);
        rules->match = NULL;
    }

    for (i = 0; rules->codes && i < rules->nrules; i++) {
        if (rules->codes[i]) {
            pcre2_code_free(rules->codes[i]);
            rules->codes[i] = NULL;
        }
    }
}


void
ngx_http_llm_redact_init(ngx_http_llm_redact_t *rd,
    ngx_http_llm_redact_rules_t *rules, u_char *buf, size_t size,
    ngx_http_llm_redact_out_pt out, void *data)
{
    ngx_memzero(rd, sizeof(ngx_http_llm_redact_t));

    rd->rules = rules;
    rd->out = out;
    rd->data = data;
    rd->buf = buf;
    rd->size = size;
}


ngx_int_t
ngx_http_llm_redact_feed(ngx_http_llm_redact_t *rd, u_char *p, size_t len)
{
    size_t     n;
    ngx_int_t  rc;

    while (len) {

        if (rd->len == rd->size) {
            /* held text fills the buffer: it never goes out as it is */

            rd->overflows++;

            if (!rd->overflow_drops) {
                return NGX_ABORT;
            }

            rc = ngx_http_llm_redact_emit(rd, (u_char *)
                                          NGX_HTTP_LLM_REDACT_OVERFLOW,
                                          sizeof(NGX_HTTP_LLM_REDACT_OVERFLOW)
                                          - 1);
            if (rc != NGX_OK) {
                return rc;
            }

            /* what follows is not next to what was kept any more */
            rd->context = 0;
            rd->len = 0;
        }

        n = ngx_min(rd->size - rd->len, len);

        ngx_memcpy(rd->buf + rd->len, p, n);
        rd->len += n;
        p += n;
        len -= n;

        rc = ngx_http_llm_redact_run(rd, 0);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_redact_finish(ngx_http_llm_redact_t *rd)
{
    ngx_int_t  rc;

    rc = ngx_http_llm_redact_run(rd, 1);

    rd->context = 0;
    rd->len = 0;

    return rc;
}


static ngx_int_t
ngx_http_llm_redact_run(ngx_http_llm_redact_t *rd, ngx_uint_t final)
{
    int                           rc;
    u_char                       *buf;
    size_t                        pos, end, keep, from, start, stop;
    uint32_t                      options;
    ngx_uint_t                    i, best, partial, best_partial;
    PCRE2_SIZE                   *ov;
    ngx_http_llm_redact_rules_t  *rules;

    rules = rd->rules;
    buf = rd->buf;
    pos = rd->context;
    end = rd->len;

    if (rules->utf) {
        /* a character cut at the end waits for its other bytes */
        end = ngx_http_llm_redact_whole_chars(buf, pos, end);

        if (final && end != rd->len) {
            return NGX_ERROR;
        }
    }

    options = final ? 0 : PCRE2_PARTIAL_HARD;
    ov = pcre2_get_ovector_pointer(rules->match);

    while (pos < end) {

        /*
         * The leftmost match of any rule, the first rule among those at
         * one place; in hard partial mode a rule reports the first place
         * where it matches or could still match, so a place where the
         * first rule could still match holds the text from there on
         */

        best = NGX_CONF_UNSET_UINT;
        start = end;
        stop = end;
        best_partial = 0;

        for (i = 0; i < rules->nrules; i++) {

            rc = pcre2_match(rules->codes[i], buf, end, pos, options,
                             rules->match, NULL);

            if (rc == PCRE2_ERROR_NOMATCH) {
                continue;
            }

            if (rc == PCRE2_ERROR_PARTIAL) {
                partial = 1;

            } else if (rc >= 0 && ov[1] > ov[0]) {
                partial = 0;

            } else {
                /* invalid UTF-8, or a limit of PCRE2's */
                return NGX_ERROR;
            }

            if (ov[0] < start) {
                best = i;
                start = ov[0];
                stop = ov[1];
                best_partial = partial;
            }
        }

        if (best == NGX_CONF_UNSET_UINT) {
            /* nothing from here can start a match, whatever follows */
            if (ngx_http_llm_redact_emit(rd, buf + pos, end - pos) != NGX_OK)
            {
                return NGX_ERROR;
            }

            pos = end;
            break;
        }

        if (ngx_http_llm_redact_emit(rd, buf + pos, start - pos) != NGX_OK) {
            return NGX_ERROR;
        }

        pos = start;

        if (best_partial) {
            break;
        }

        if (ngx_http_llm_redact_emit(rd, rules->placeholders[best].data,
                                     rules->placeholders[best].len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        rd->matches++;
        pos = stop;
    }

    /* keep what lookbehinds may need, from a character's first byte */

    keep = ngx_min(pos, rules->context);
    from = pos - keep;

    while (rules->utf && from < pos && (buf[from] & 0xc0) == 0x80) {
        from++;
    }

    if (from) {
        ngx_memmove(buf, buf + from, rd->len - from);
    }

    rd->len -= from;
    rd->context = pos - from;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_redact_emit(ngx_http_llm_redact_t *rd, u_char *p, size_t len)
{
    if (len == 0) {
        return NGX_OK;
    }

    return rd->out(rd->data, p, len);
}


/* end, or where a character that end cuts begins */

static size_t
ngx_http_llm_redact_whole_chars(u_char *p, size_t start, size_t end)
{
    size_t  i, need;

    for (i = end; i > start && end - i < 4; i--) {

        if ((p[i - 1] & 0xc0) == 0x80) {
            continue;
        }

        if (p[i - 1] < 0x80) {
            return end;
        }

        /* a lead byte at i - 1: is its character whole? */

        need = (p[i - 1] >= 0xf0) ? 4 : (p[i - 1] >= 0xe0) ? 3 : 2;

        return (end - (i - 1) >= need) ? end : i - 1;
    }

    return end;
}
