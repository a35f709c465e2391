
/*
 * The detectors' hints (ngx_http_llm_guard_detect.c) against PCRE2 alone:
 * on texts made of pieces of real matches, near misses, noise and
 * multi-byte characters, every detector, plain, caseless, in UTF mode
 * and both, finds the same leftmost match from every start offset with
 * its hint (anchor windows, the digit sought once) as without it, and
 * in hard partial mode, as in a stream, the same match or partial match
 * from every start offset of every prefix of the texts. Also:
 * each detector finds matches in these texts at all, and a text in UTF
 * mode checked once is refused as PCRE2 refuses it. Used by
 * t/443-redact-hints.t: prints "ok NAME" or what differs, one a check.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>

#include "ngx_http_llm_redact.h"
#include "check.h"
#include "ngx_http_llm_guard_detect.h"


static const char  *pieces[] = {
    "john.doe@example.com", "a@b.co", "x@@y..z", "@", "@example.org",
    "fe80::1", "2001:db8:0:0:1:0:0:1", "::ffff", "a:b", "::", ":", "abc:",
    "4111 1111 1111 1111", "4111-1111-1111-1112", "378282246310005",
    "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "DE00",
    "123-45-6789", "000-12-3456", "+14155552671", "(415) 555-2671",
    "030 1234 5678", "10.0.0.1", "256.1.1.1", "1.2.3", "192.168.1.254",
    "sk-abcdefghijklmnopqrstuvwxyz", "AKIAABCDEFGHIJKLMNOP",
    "eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", " ", " ", ", ", ".", "-",
    "+", "(", ")", "7", "42", "x", "Word", "DE", "\xc3\xa9", "\xe2\x84\xaa",
    "\xc5\xbf", "\xf0\x9f\x98\x80", "K", "s", "_", "\n"
};

#define NPIECES  (sizeof(pieces) / sizeof(pieces[0]))


static const char  *detectors[] = {
    "email", "phone", "card", "iban", "us_ssn", "ipv4", "ipv6", "api_key",
    "aws_key", "github_token", "jwt", "private_key"
};

#define NDETECTORS  (sizeof(detectors) / sizeof(detectors[0]))


/* a text of n pieces, from a small generator with a fixed seed */

static size_t
make_text(u_char *buf, size_t size, unsigned long *seed, ngx_uint_t n)
{
    size_t       len, l;
    ngx_uint_t   i;
    const char  *p;

    len = 0;

    for (i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005UL + 1442695040888963407UL;
        p = pieces[(*seed >> 33) % NPIECES];
        l = strlen(p);

        if (len + l >= size) {
            break;
        }

        memcpy(buf + len, p, l);
        len += l;
    }

    return len;
}


int
main(void)
{
    int                           rc1, rc2;
    char                          name[128], detail[256];
    u_char                        err[256], text[1024];
    size_t                        len, start, end, o1[2];
    ngx_str_t                     pattern, placeholder;
    ngx_uint_t                    d, mode, t, found, compared, bad;
    PCRE2_SIZE                   *ov;
    unsigned long                 seed;
    ngx_http_llm_detector_t      *det;
    ngx_http_llm_redact_text_t    seen;
    ngx_http_llm_redact_rules_t   rules;

    ngx_str_set(&placeholder, "[X]");

    for (d = 0; d < NDETECTORS; d++) {
        pattern.data = (u_char *) detectors[d];
        pattern.len = strlen(detectors[d]);

        det = ngx_http_llm_detector(&pattern);
        if (det == NULL) {
            check(0, detectors[d], "no such detector");
            continue;
        }

        for (mode = 0; mode < 4; mode++) {
            if (ngx_http_llm_redact_compile(NULL, &rules, &det->pattern,
                                            &placeholder, 1, mode, err,
                                            sizeof(err))
                != NGX_OK)
            {
                check(0, detectors[d], (char *) err);
                continue;
            }

            rules.checks = &det->check;
            ngx_http_llm_redact_set_hints(&rules, &det->hint);
            ov = pcre2_get_ovector_pointer(rules.match);

            seed = 1 + d * 4 + mode;
            found = 0;
            compared = 0;
            bad = 0;

            for (t = 0; t < 400 && !bad; t++) {
                len = make_text(text, sizeof(text), &seed, 1 + t % 24);

                /* one text, searched again and again, as by many rules */
                ngx_http_llm_redact_text_init(&seen);

                for (start = 0; start < len && !bad; start++) {

                    /* UTF mode starts at a character's first byte */
                    if ((mode & NGX_HTTP_LLM_REDACT_UTF)
                        && (text[start] & 0xc0) == 0x80)
                    {
                        continue;
                    }

                    rc1 = ngx_http_llm_redact_match(&rules, 0, text, len,
                                                    start, 0, NULL);
                    o1[0] = ov[0];
                    o1[1] = ov[1];

                    rc2 = ngx_http_llm_redact_match(&rules, 0, text, len,
                                                    start, 0, &seen);
                    compared++;

                    if (rc1 != rc2
                        || (rc1 >= 0 && (o1[0] != ov[0] || o1[1] != ov[1])))
                    {
                        bad = 1;
                        snprintf(detail, sizeof(detail),
                                 "from %zu of \"%.*s\": %d %zu-%zu without "
                                 "the hint, %d %zu-%zu with it", start,
                                 (int) len, text, rc1, o1[0], o1[1], rc2,
                                 (size_t) ov[0], (size_t) ov[1]);
                    }

                    if (rc1 >= 0 && start == 0) {
                        found++;
                    }
                }
            }

            /* streams: each prefix of a text, as if more may follow */

            compared = 0;

            for (t = 0; t < 150 && !bad; t++) {
                len = make_text(text, sizeof(text), &seed, 1 + t % 12);

                for (end = 1; end <= len && !bad; end++) {

                    ngx_http_llm_redact_text_init(&seen);

                    for (start = 0; start < end && !bad; start++) {

                        if ((mode & NGX_HTTP_LLM_REDACT_UTF)
                            && ((text[start] & 0xc0) == 0x80
                                || (end < len && (text[end] & 0xc0) == 0x80)))
                        {
                            continue;
                        }

                        rc1 = pcre2_match(rules.codes[0], text, end, start,
                                          PCRE2_PARTIAL_HARD, rules.match,
                                          NULL);
                        o1[0] = ov[0];
                        o1[1] = ov[1];

                        rc2 = ngx_http_llm_redact_match(&rules, 0, text, end,
                                                        start,
                                                        PCRE2_PARTIAL_HARD,
                                                        &seen);
                        compared++;

                        /* a complete match refused by a check goes on */
                        if (rc1 >= 0 && det->check
                            && !det->check(text + o1[0], o1[1] - o1[0]))
                        {
                            continue;
                        }

                        if (rc1 != rc2
                            || ((rc1 >= 0 || rc1 == PCRE2_ERROR_PARTIAL)
                                && (o1[0] != ov[0] || o1[1] != ov[1])))
                        {
                            bad = 1;
                            snprintf(detail, sizeof(detail),
                                     "from %zu of \"%.*s\" (more to come): "
                                     "%d %zu-%zu without the hint, %d "
                                     "%zu-%zu with it", start, (int) end,
                                     text, rc1, o1[0], o1[1], rc2,
                                     (size_t) ov[0], (size_t) ov[1]);
                        }
                    }
                }
            }

            snprintf(name, sizeof(name), "%s, mode %lu: the same matches in "
                     "a stream with the hint (%lu searches)", detectors[d],
                     (unsigned long) mode, (unsigned long) compared);
            check(!bad, name, detail);

            snprintf(name, sizeof(name), "%s, mode %lu: the same matches "
                     "with the hint (%lu searches)", detectors[d],
                     (unsigned long) mode, (unsigned long) compared);
            check(!bad, name, detail);

            snprintf(name, sizeof(name), "%s, mode %lu: texts with a match "
                     "(%lu of 400)", detectors[d], (unsigned long) mode,
                     (unsigned long) found);
            check(found >= (ngx_uint_t) (det->hint.anchor ? 5 : 1), name,
                  "too few: the texts do not exercise the detector");

            ngx_http_llm_redact_free(&rules);
        }
    }

    /* invalid UTF-8, checked once for all rules: refused as PCRE2 does */

    pattern = ngx_http_llm_detector(&(ngx_str_t) ngx_string("email"))
              ->pattern;

    if (ngx_http_llm_redact_compile(NULL, &rules, &pattern, &placeholder,
                                    1, NGX_HTTP_LLM_REDACT_UTF, err,
                                    sizeof(err))
        == NGX_OK)
    {
        static const char  *invalid[] = {
            "a@b.co \xc0\xaf", "x@y.org \xed\xa0\x80", "\xf4\x90\x80\x80",
            "ok \xc3", "\xe2\x82"
        };

        for (t = 0; t < sizeof(invalid) / sizeof(invalid[0]); t++) {
            ngx_http_llm_redact_text_init(&seen);

            rc1 = ngx_http_llm_redact_match(&rules, 0, (u_char *) invalid[t],
                                            strlen(invalid[t]), 0, 0, &seen);

            snprintf(name, sizeof(name), "invalid UTF-8 %lu refused (%d)",
                     (unsigned long) t, rc1);
            check(rc1 < 0 && rc1 != PCRE2_ERROR_NOMATCH
                  && seen.utf == NGX_HTTP_LLM_REDACT_UTF_INVALID, name,
                  "taken as valid");
        }

        ngx_http_llm_redact_text_init(&seen);
        rc1 = ngx_http_llm_redact_match(&rules, 0,
                                        (u_char *) "\xc3\xa9 a@b.co \xf0\x9f"
                                        "\x98\x80", 16, 0, 0, &seen);
        check(rc1 > 0 && seen.utf == NGX_HTTP_LLM_REDACT_UTF_VALID,
              "valid UTF-8 checked once, then matched", "not matched");

        ngx_http_llm_redact_free(&rules);
    }

    return check_failures ? 1 : 0;
}
