
/*
 * Streamed redaction against the whole text's redaction (the reference of
 * t/unit/redact_stream.c): for any text, fed whole, in the pieces the
 * input's first bytes choose, and a byte at a time, what goes out is at
 * every moment a prefix of the whole text's redaction and in the end all
 * of it. The second byte chooses a set of rules; in some, zero-width and
 * bidi characters are dropped (the reference redacts the text without
 * them), and a rule's matches must pass the Luhn check.
 */


#define REDACT_FUZZ  1

#include "fuzz.h"
#include "../t/unit/redact_stream.c"
#include "ngx_http_llm_guard_detect.h"


typedef struct {
    ngx_uint_t   flags;
    const char  *patterns[4];
    ngx_uint_t   strip;          /* strip_invisible */
    ngx_uint_t   luhn;           /* the first rule's matches checked */
} rule_set_t;


static rule_set_t  rule_sets[] = {
    { 0, { "ab+c", "a|ab", "\\d{3,}", NULL }, 0, 0 },
    { 0, { "\\bx\\w*", "(?<=q)z+", "[a-c]{2}$", NULL }, 0, 0 },
    { 0, { "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", "sk-\\w{4,}",
           "(\\w)\\1\\1", NULL }, 0, 0 },
    { NGX_HTTP_LLM_REDACT_UTF, { "\xc3\xa9+", "\\w\xe2\x82\xac", ".\\b.",
                                 NULL }, 0, 0 },
    { NGX_HTTP_LLM_REDACT_UTF | NGX_HTTP_LLM_REDACT_CASELESS,
      { "\xc3\xa9t\xc3\xa9", "ab?c?d", "(?<!a)b", NULL }, 0, 0 },
    { 0, { "password", "ab+c", "\xe2\x80\x8b|\xc2", NULL }, 1, 0 },
    { 0, { "\\d(?:[ -]?\\d){12,18}", "\\d{3}", NULL }, 0, 1 },
    { NGX_HTTP_LLM_REDACT_UTF, { "\\w+\xe2\x80\x94", "(?<=\\d)x", NULL },
      1, 1 },
};

static ngx_http_llm_redact_check_pt  luhn_checks[] = {
    ngx_http_llm_detect_luhn, NULL, NULL, NULL
};

static ngx_http_llm_redact_rules_t  compiled[sizeof(rule_sets)
                                             / sizeof(rule_sets[0])];
static ngx_str_t  placeholder[] = {
    ngx_string("[0]"), ngx_string("[1]"), ngx_string("[2]"),
    ngx_string("[3]")
};


/*
 * Pieces of the text into a redactor; "whole": the redactor holds the
 * text to match it at the end, in a buffer of bufsize bytes (a text
 * longer than that is matched as it comes: held text that then fills
 * the buffer ends the run unchecked, as max_hold would)
 */

static int
fuzz_stream(ngx_http_llm_redact_rules_t *rules, u_char *text, size_t len,
    const uint8_t *sizes, size_t nsizes, out_t *want, ngx_uint_t whole,
    size_t bufsize)
{
    u_char                 buf[4096];
    size_t                 pos, n, i;
    out_t                  got;
    ngx_int_t              rc;
    ngx_http_llm_redact_t  rd;

    ngx_memzero(&got, sizeof(out_t));
    ngx_http_llm_redact_init(&rd, rules, buf, ngx_min(bufsize, sizeof(buf)),
                             out_handler, &got);
    rd.whole = whole;

    pos = 0;
    i = 0;

    while (pos < len) {
        n = nsizes ? (size_t) (sizes[i++ % nsizes] % 16) + 1 : 1;
        n = ngx_min(n, len - pos);

        rc = ngx_http_llm_redact_feed(&rd, text + pos, n);

        if (rc == NGX_ABORT && bufsize < sizeof(buf)) {
            free(got.p);
            return 0;
        }

        if (rc != NGX_OK) {
            abort();
        }

        pos += n;

        if (got.len > want->len
            || (got.len && memcmp(got.p, want->p, got.len) != 0))
        {
            abort();
        }
    }

    if (ngx_http_llm_redact_finish(&rd) != NGX_OK
        || got.len != want->len
        || (got.len && memcmp(got.p, want->p, got.len) != 0))
    {
        abort();
    }

    free(got.p);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                       err[256], visible[2048];
    size_t                       len, vlen;
    out_t                        want, got;
    ngx_uint_t                   set, n;
    ngx_http_llm_redact_rules_t *rules;

    static ngx_uint_t  ready;

    if (!ready) {
        ngx_fuzz_init();

        for (set = 0; set < sizeof(rule_sets) / sizeof(rule_sets[0]); set++) {
            ngx_str_t  patterns[4];

            for (n = 0; n < 4 && rule_sets[set].patterns[n]; n++) {
                patterns[n].data = (u_char *) rule_sets[set].patterns[n];
                patterns[n].len = strlen(rule_sets[set].patterns[n]);
            }

            if (ngx_http_llm_redact_compile(ngx_create_pool(4096,
                                                            &ngx_fuzz_log),
                                            &compiled[set], patterns,
                                            placeholder, n,
                                            rule_sets[set].flags, err,
                                            sizeof(err))
                != NGX_OK)
            {
                abort();
            }

            compiled[set].strip_invisible = rule_sets[set].strip;
            compiled[set].checks = rule_sets[set].luhn ? luhn_checks : NULL;
        }

        ready = 1;
    }

    /* a byte of piece sizes, a byte of rules; texts below the cap */

    if (size < 2 || size > 2048) {
        return 0;
    }

    rules = &compiled[data[1] % (sizeof(rule_sets) / sizeof(rule_sets[0]))];
    len = size - 2;

    ngx_memzero(&want, sizeof(out_t));

    /* the reference sees the text as the stream keeps it */

    ngx_memcpy(visible, data + 2, len);
    vlen = rules->strip_invisible ? ngx_http_llm_redact_strip(visible, len)
                                  : len;

    if (reference(rules, visible, vlen, &want) != 0) {
        /* invalid UTF-8: the stream must refuse it too */
        u_char                 buf[4096];
        ngx_int_t              rc;
        ngx_http_llm_redact_t  rd;

        ngx_memzero(&got, sizeof(out_t));
        ngx_http_llm_redact_init(&rd, rules, buf, sizeof(buf), out_handler,
                                 &got);

        rc = ngx_http_llm_redact_feed(&rd, (u_char *) data + 2, len);
        if (rc == NGX_OK) {
            rc = ngx_http_llm_redact_finish(&rd);
        }

        if (rc != NGX_ERROR) {
            abort();
        }

        free(got.p);
        free(want.p);
        return 0;
    }

    /* whole, a byte at a time, and in pieces of 1 to 16 bytes */

    ngx_memzero(&got, sizeof(out_t));

    if (stream(rules, (u_char *) data + 2, len, 0, 0, &want, &got) != 0) {
        abort();
    }

    free(got.p);

    (void) fuzz_stream(rules, (u_char *) data + 2, len, NULL, 0, &want, 0,
                       4096);
    (void) fuzz_stream(rules, (u_char *) data + 2, len, data, 1, &want, 0,
                       4096);
    (void) fuzz_stream(rules, (u_char *) data + 2, len, data + 2,
                       ngx_min(len, 8), &want, 0, 4096);

    /* held whole, as an answer not streamed; and past a buffer's size */
    (void) fuzz_stream(rules, (u_char *) data + 2, len, data, 1, &want, 1,
                       4096);
    (void) fuzz_stream(rules, (u_char *) data + 2, len, data, 1, &want, 1,
                       rules->context + 64 + (data[0] % 128));

    free(want.p);

    return 0;
}
