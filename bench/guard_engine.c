
/*
 * The guard policy's check alone: the rules of bench/nginx.conf.in's
 * "llm_guard bench" (read from a file: one "@detector" or pattern a
 * line) run by the gateway's own engine (ngx_http_llm_redact.c) over the
 * texts of bench/prompt4k.json (one a line), as guard.c runs them on a
 * request: each rule on each text, what one rule learns of a text shared
 * with the next. Prints the median, of 5 rounds of 2000, of the time one
 * check of all the texts takes, in µs, and their bytes.
 *
 *   guard_engine RULES TEXTS
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ngx_http_llm_redact.h"
#include "ngx_http_llm_guard_detect.h"


#define ROUNDS  5
#define CHECKS  2000


static ngx_uint_t
read_lines(const char *file, ngx_str_t *lines, ngx_uint_t max)
{
    char        buf[65536];
    size_t      len;
    FILE       *f;
    ngx_uint_t  n;

    f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        exit(2);
    }

    n = 0;

    while (n < max && fgets(buf, sizeof(buf), f)) {
        len = strcspn(buf, "\n");

        if (len == 0) {
            continue;
        }

        lines[n].data = malloc(len);
        if (lines[n].data == NULL) {
            exit(2);
        }

        memcpy(lines[n].data, buf, len);
        lines[n].len = len;
        n++;
    }

    fclose(f);

    return n;
}


static int
by_value(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


int
main(int argc, char **argv)
{
    int                            rc;
    u_char                         err[256];
    size_t                         bytes;
    double                         t[ROUNDS];
    ngx_str_t                      rules_text[64], texts[64], names[64];
    ngx_uint_t                     nrules, ntexts, i, j, k, round;
    struct timespec                a, b;
    ngx_http_llm_detector_t       *d;
    ngx_http_llm_redact_hint_t     hints[64];
    ngx_http_llm_redact_text_t     seen;
    ngx_http_llm_redact_rules_t    rules;
    ngx_http_llm_redact_check_pt   checks[64];

    if (argc != 3) {
        fprintf(stderr, "usage: guard_engine RULES TEXTS\n");
        return 2;
    }

    nrules = read_lines(argv[1], rules_text, 64);
    ntexts = read_lines(argv[2], texts, 64);

    for (i = 0; i < nrules; i++) {
        ngx_str_set(&names[i], "[X]");
        checks[i] = NULL;
        ngx_memzero(&hints[i], sizeof(ngx_http_llm_redact_hint_t));

        if (rules_text[i].data[0] != '@') {
            continue;
        }

        rules_text[i].data++;
        rules_text[i].len--;

        d = ngx_http_llm_detector(&rules_text[i]);
        if (d == NULL) {
            fprintf(stderr, "unknown detector\n");
            return 2;
        }

        rules_text[i] = d->pattern;
        checks[i] = d->check;
        hints[i] = d->hint;
    }

    if (ngx_http_llm_redact_compile(NULL, &rules, rules_text, names, nrules,
                                    0, err, sizeof(err))
        != NGX_OK)
    {
        fprintf(stderr, "rule %lu: %s\n", (unsigned long) rules.error_rule,
                err);
        return 2;
    }

    rules.checks = checks;
    ngx_http_llm_redact_set_hints(&rules, hints);

    bytes = 0;

    for (j = 0; j < ntexts; j++) {
        bytes += texts[j].len;
    }

    for (round = 0; round < ROUNDS; round++) {
        clock_gettime(CLOCK_MONOTONIC, &a);

        for (k = 0; k < CHECKS; k++) {
            for (j = 0; j < ntexts; j++) {
                ngx_http_llm_redact_text_init(&seen);

                for (i = 0; i < nrules; i++) {
                    rc = ngx_http_llm_redact_match(&rules, i, texts[j].data,
                                                   texts[j].len, 0, 0, &seen);

                    if (rc != PCRE2_ERROR_NOMATCH) {
                        fprintf(stderr, "rule %lu matched text %lu\n",
                                (unsigned long) i, (unsigned long) j);
                        return 1;
                    }
                }
            }
        }

        clock_gettime(CLOCK_MONOTONIC, &b);

        t[round] = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec))
                   / CHECKS / 1000;
    }

    qsort(t, ROUNDS, sizeof(double), by_value);

    printf("%.2f %lu\n", t[ROUNDS / 2], (unsigned long) bytes);

    return 0;
}
