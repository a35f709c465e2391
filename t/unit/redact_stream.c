
/*
 * ngx_http_llm_redact.c, the streamed redaction, against the redaction of
 * the whole text (each rule's leftmost match, the first rule at one
 * place, matches one after the other; computed here rule by rule without
 * partial matching): fed whole, cut in two at every offset, a byte at a
 * time and in pieces of every size up to 7, what goes out is always a
 * prefix of the whole text's redaction and in the end all of it. Also:
 * text that cannot become a match is not held, text past the cap never
 * goes out, bad rules are refused with the rule and offset. Used by
 * t/442-redact.t: prints "ok NAME" or what differs, one line a check.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>

#include "ngx_http_llm_redact.h"


typedef struct {
    u_char  *p;
    size_t   len;
    size_t   size;
} out_t;


static void
out_add(out_t *o, u_char *p, size_t len)
{
    if (o->len + len + 1 > o->size) {
        o->size = (o->len + len + 1) * 2;
        o->p = realloc(o->p, o->size);
        if (o->p == NULL) {
            abort();
        }
    }

    memcpy(o->p + o->len, p, len);
    o->len += len;
    o->p[o->len] = '\0';
}


static ngx_int_t
out_handler(void *data, u_char *p, size_t len)
{
    out_add(data, p, len);
    return NGX_OK;
}


/* the whole text's redaction, rule by rule */

static int
reference(ngx_http_llm_redact_rules_t *rules, u_char *text, size_t len,
    out_t *o)
{
    int          rc;
    size_t       pos, start, stop;
    ngx_uint_t   i, best;
    PCRE2_SIZE  *ov;

    ov = pcre2_get_ovector_pointer(rules->match);
    pos = 0;

    while (pos < len) {
        best = NGX_CONF_UNSET_UINT;
        start = len;
        stop = len;

        for (i = 0; i < rules->nrules; i++) {
            /* with the rules' checks, if any */
            rc = ngx_http_llm_redact_match(rules, i, text, len, pos, 0, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) {
                continue;
            }

            if (rc < 0) {
                /* invalid UTF-8 */
                return -1;
            }

            if (ov[0] < start) {
                best = i;
                start = ov[0];
                stop = ov[1];
            }
        }

        out_add(o, text + pos, start - pos);

        if (best == NGX_CONF_UNSET_UINT) {
            break;
        }

        out_add(o, rules->placeholders[best].data,
                rules->placeholders[best].len);
        pos = stop;
    }

    return 0;
}


/*
 * Feeds text: a first piece of first bytes (0: all of it), then pieces
 * of size bytes (0: the rest at once); 0 when every prefix that went out
 * is a prefix of want and the end is want, else -1 (got: what went out).
 */

static int
stream(ngx_http_llm_redact_rules_t *rules, u_char *text, size_t len,
    size_t first, size_t size, out_t *want, out_t *got)
{
    u_char                 buf[4096];
    size_t                 pos, n;
    ngx_http_llm_redact_t  rd;

    ngx_http_llm_redact_init(&rd, rules, buf, sizeof(buf), out_handler, got);

    pos = 0;

    while (pos < len) {
        n = (pos == 0) ? (first ? first : len) : (size ? size : len);
        n = ngx_min(n, len - pos);

        if (ngx_http_llm_redact_feed(&rd, text + pos, n) != NGX_OK) {
            return -1;
        }

        pos += n;

        if (got->len > want->len
            || (got->len && memcmp(got->p, want->p, got->len) != 0))
        {
            return -1;
        }
    }

    if (ngx_http_llm_redact_finish(&rd) != NGX_OK) {
        return -1;
    }

    if (got->len != want->len
        || (got->len && memcmp(got->p, want->p, got->len) != 0))
    {
        return -1;
    }

    return 0;
}


#ifndef REDACT_FUZZ

static int  failures;


static void
check(int ok, const char *name, const char *fmt, const char *a,
    const char *b)
{
    if (ok) {
        printf("ok %s\n", name);

    } else {
        failures++;
        printf("not ok %s: ", name);
        printf(fmt, a, b);
        printf("\n");
    }
}


typedef struct {
    const char  *name;
    ngx_uint_t   flags;
    const char  *patterns[4];
    const char  *placeholders[4];
    const char  *text;
    const char  *expected;       /* the whole text's redaction */
    const char  *held;           /* NULL, or what is out before finish */
} case_t;


static case_t  cases[] = {

    { "e-mail addresses", 0,
      { "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}" }, { "[EMAIL]" },
      "write to john.doe@example.com or jane@ex.org",
      "write to [EMAIL] or [EMAIL]", "write to [EMAIL] or " },

    { "digit runs, one at the very end", 0,
      { "\\d{4,}" }, { "[NUM]" },
      "card 4111111111111111 exp 12/29, pin 1234",
      "card [NUM] exp 12/29, pin [NUM]", "card [NUM] exp 12/29, pin " },

    { "nothing that can match is held", 0,
      { "\\d{4}" }, { "[NUM]" },
      "no digits here at all, 12 and 345.",
      "no digits here at all, 12 and 345.",
      "no digits here at all, 12 and 345." },

    { "the first alternative that matches, not the longest", 0,
      { "a|ab" }, { "[X]" },
      "abab cab", "[X]b[X]b c[X]b", NULL },

    { "a longer alternative first", 0,
      { "ab|a" }, { "[X]" },
      "aaab xab a", "[X][X][X] x[X] [X]", NULL },

    { "word boundaries", 0,
      { "\\bsecret\\b" }, { "[S]" },
      "secrets secret secret, xsecret secret",
      "secrets [S] [S], xsecret [S]", "secrets [S] [S], xsecret " },

    { "a lookbehind reaching into released text", 0,
      { "(?<=key=)[a-z0-9]+" }, { "[K]" },
      "key=abc123 nokey=zz key=q x", "key=[K] nokey=[K] key=[K] x", NULL },

    { "the end of the text", 0,
      { "foo$" }, { "[F]" },
      "foo foo", "foo [F]", "foo " },

    { "several rules: leftmost wins, then the first rule", 0,
      { "sk-[A-Za-z0-9]{8,}", "[A-Za-z0-9-]+@[a-z]+\\.com",
        "\\d{3}-\\d{4}", "sk-" },
      { "[KEY]", "[EMAIL]", "[PHONE]", "[SK]" },
      "sk-abcdefgh12@x.com call 555-1234, sk-short",
      "[KEY]@x.com call [PHONE], [SK]short", NULL },

    { "a back reference", 0,
      { "(\\w)\\1{3}" }, { "[RUN]" },
      "abbbbc xxxx yyy", "a[RUN]c [RUN] yyy", NULL },

    { "UTF-8: characters cut anywhere", NGX_HTTP_LLM_REDACT_UTF,
      { "caf\xc3\xa9\\w*" }, { "[C]" },
      "un caf\xc3\xa9 cr\xc3\xa8me, caf\xc3\xa9s \xe2\x82\xac "
      "\xf0\x9f\x98\x80 caf\xc3\xa9ine",
      "un [C] cr\xc3\xa8me, [C] \xe2\x82\xac \xf0\x9f\x98\x80 [C]", NULL },

    { "UTF-8, caseless", NGX_HTTP_LLM_REDACT_UTF
                         | NGX_HTTP_LLM_REDACT_CASELESS,
      { "\xc3\xa9t\xc3\xa9" }, { "[E]" },
      "\xc3\xa9t\xc3\xa9 \xc3\x89t\xc3\xa9 \xc3\x89T\xc3\x89 ete",
      "[E] [E] [E] ete", NULL },

    { "a match across many pieces", 0,
      { "-----BEGIN [A-Z ]*PRIVATE KEY-----[\\s\\S]*?-----END [A-Z ]*"
        "PRIVATE KEY-----" }, { "[PEM]" },
      "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n"
      "-----END RSA PRIVATE KEY----- done",
      "key: [PEM] done", "key: [PEM] done" },
};


static ngx_uint_t  ncases = sizeof(cases) / sizeof(cases[0]);


int
main(void)
{
    u_char                       err[256], name[256], *text;
    size_t                       len, cut, size;
    out_t                        want, got;
    ngx_str_t                    patterns[4], placeholders[4], bad[2];
    ngx_uint_t                   c, n;
    ngx_http_llm_redact_t        rd;
    ngx_http_llm_redact_rules_t  rules;

    for (c = 0; c < ncases; c++) {
        case_t  *k = &cases[c];

        for (n = 0; n < 4 && k->patterns[n]; n++) {
            patterns[n].data = (u_char *) k->patterns[n];
            patterns[n].len = strlen(k->patterns[n]);
            placeholders[n].data = (u_char *) k->placeholders[n];
            placeholders[n].len = strlen(k->placeholders[n]);
        }

        if (ngx_http_llm_redact_compile(NULL, &rules, patterns, placeholders,
                                        n, k->flags, err, sizeof(err))
            != NGX_OK)
        {
            check(0, k->name, "does not compile: %s%s", (char *) err, "");
            continue;
        }

        text = (u_char *) k->text;
        len = strlen(k->text);

        memset(&want, 0, sizeof(out_t));
        (void) reference(&rules, text, len, &want);

        snprintf((char *) name, sizeof(name), "%s: the whole text", k->name);
        check(strcmp((char *) want.p, k->expected) == 0, (char *) name,
              "redacted as \"%s\", not \"%s\"", (char *) want.p, k->expected);

        /* whole, then cut in two at every offset */

        for (cut = 0; cut <= len; cut++) {
            memset(&got, 0, sizeof(out_t));

            if (stream(&rules, text, len, cut, 0, &want, &got) != 0) {
                snprintf((char *) name, sizeof(name), "%s: cut at %zu",
                         k->name, cut);
                check(0, (char *) name, "out: \"%s\", want \"%s\"",
                      got.p ? (char *) got.p : "", (char *) want.p);
                break;
            }

            free(got.p);
        }

        snprintf((char *) name, sizeof(name), "%s: cut anywhere", k->name);
        if (cut > len) {
            check(1, (char *) name, "", "", "");
        }

        /* pieces of one size, 1 to 7 bytes */

        for (size = 1; size <= 7; size++) {
            memset(&got, 0, sizeof(out_t));

            if (stream(&rules, text, len, size, size, &want, &got) != 0) {
                break;
            }

            free(got.p);
        }

        snprintf((char *) name, sizeof(name), "%s: in pieces of 1 to 7 bytes",
                 k->name);
        check(size > 7, (char *) name, "out: \"%s\", want \"%s\"",
              got.p ? (char *) got.p : "", (char *) want.p);

        /* what is out before the end: held back only what must be */

        if (k->held) {
            memset(&got, 0, sizeof(out_t));
            ngx_http_llm_redact_init(&rd, &rules, err, sizeof(err),
                                     out_handler, &got);
            (void) ngx_http_llm_redact_feed(&rd, text, len);

            snprintf((char *) name, sizeof(name), "%s: out before the end",
                     k->name);
            check(got.p && strcmp((char *) got.p, k->held) == 0,
                  (char *) name, "\"%s\", not \"%s\"",
                  got.p ? (char *) got.p : "", k->held);
            free(got.p);
        }

        free(want.p);
        ngx_http_llm_redact_free(&rules);
    }

    /* past the cap: the stream ends, or the held text is dropped */

    patterns[0].data = (u_char *) "secret-[a-z]+!";
    patterns[0].len = strlen("secret-[a-z]+!");
    placeholders[0].data = (u_char *) "[SECRET]";
    placeholders[0].len = 8;

    if (ngx_http_llm_redact_compile(NULL, &rules, patterns, placeholders, 1,
                                    0, err, sizeof(err))
        == NGX_OK)
    {
        u_char      small[64];
        const char *long_one = "a secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! b";

        memset(&got, 0, sizeof(out_t));
        ngx_http_llm_redact_init(&rd, &rules, small, sizeof(small),
                                 out_handler, &got);
        rd.overflow_drops = 1;

        for (cut = 0; cut < strlen(long_one); cut++) {
            (void) ngx_http_llm_redact_feed(&rd, (u_char *) long_one + cut, 1);
        }

        (void) ngx_http_llm_redact_finish(&rd);

        /* what was held never goes out; the match's tail may */
        check(got.p
              && strncmp((char *) got.p, "a " NGX_HTTP_LLM_REDACT_OVERFLOW,
                         2 + sizeof(NGX_HTTP_LLM_REDACT_OVERFLOW) - 1)
                 == 0
              && strstr((char *) got.p, "secret") == NULL
              && strlen((char *) got.p) < strlen(long_one) - sizeof(small)
                                          + 2 + 16
              && rd.overflows == 1,
              "over the cap, overflow_drops: what was held is dropped",
              "out: \"%s\"%s", got.p ? (char *) got.p : "", "");
        free(got.p);

        memset(&got, 0, sizeof(out_t));
        ngx_http_llm_redact_init(&rd, &rules, small, sizeof(small),
                                 out_handler, &got);

        n = NGX_OK;

        for (cut = 0; cut < strlen(long_one) && n == NGX_OK; cut++) {
            n = ngx_http_llm_redact_feed(&rd, (u_char *) long_one + cut, 1);
        }

        check(n == (ngx_uint_t) NGX_ABORT && got.p
              && strcmp((char *) got.p, "a ") == 0,
              "over the cap: the stream ends, nothing held went out",
              "out: \"%s\"%s", got.p ? (char *) got.p : "", "");
        free(got.p);

        ngx_http_llm_redact_free(&rules);
    }

    /* bad rules */

    bad[0].data = (u_char *) "fine";
    bad[0].len = 4;
    bad[1].data = (u_char *) "a(b";
    bad[1].len = 3;

    n = ngx_http_llm_redact_compile(NULL, &rules, bad, placeholders, 2, 0,
                                    err, sizeof(err));
    check(n == (ngx_uint_t) NGX_ERROR && rules.error_rule == 2
          && rules.error_offset == 3
          && strstr((char *) err, "missing closing parenthesis"),
          "a bad pattern: its rule, offset and PCRE2's words", "\"%s\"%s",
          (char *) err, "");

    bad[1].data = (u_char *) "x*";
    bad[1].len = 2;

    n = ngx_http_llm_redact_compile(NULL, &rules, bad, placeholders, 2, 0,
                                    err, sizeof(err));
    check(n == (ngx_uint_t) NGX_ERROR && rules.error_rule == 2
          && strstr((char *) err, "empty"),
          "a rule that can match nothing is refused", "\"%s\"%s",
          (char *) err, "");

    /* invalid UTF-8 in UTF mode: an error, nothing of it out */

    bad[0].data = (u_char *) "x";
    bad[0].len = 1;

    if (ngx_http_llm_redact_compile(NULL, &rules, bad, placeholders, 1,
                                    NGX_HTTP_LLM_REDACT_UTF, err, sizeof(err))
        == NGX_OK)
    {
        memset(&got, 0, sizeof(out_t));
        ngx_http_llm_redact_init(&rd, &rules, err, sizeof(err), out_handler,
                                 &got);
        n = ngx_http_llm_redact_feed(&rd, (u_char *) "ab\xff\xfe cd", 7);
        if (n == NGX_OK) {
            n = ngx_http_llm_redact_finish(&rd);
        }

        check(n == (ngx_uint_t) NGX_ERROR, "invalid UTF-8 is an error",
              "%s%s", "", "");
        free(got.p);
        ngx_http_llm_redact_free(&rules);
    }

    return failures ? 1 : 0;
}

#endif
