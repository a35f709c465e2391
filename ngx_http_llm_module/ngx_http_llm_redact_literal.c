
/*
 * The literal prefilter of rules: the literal (or set of literals) every
 * match of a pattern contains, read from the pattern when rules are
 * compiled, and its search in a text, so that a text without it is no
 * match without a PCRE2 run (docs/guardrails.md, "Built-in detectors").
 */


#include <ngx_config.h>
#include <ngx_core.h>

/* the rules' flags, CASELESS and UTF */
#include "ngx_http_llm_redact.h"
#include "ngx_http_llm_redact_literal.h"

#if (__SSE2__)
#include <emmintrin.h>
#endif


static size_t ngx_http_llm_redact_find_one(u_char *text, size_t start,
    size_t len, u_char *lit, size_t n, u_char *rare, ngx_uint_t caseless);
static void ngx_http_llm_redact_rare(ngx_http_llm_redact_literal_t *lit);
#if (__SSE2__)
static ngx_inline unsigned ngx_http_llm_redact_block(u_char *p, size_t i1,
    size_t i2, __m128i v1, __m128i v1m, __m128i v2, __m128i v2m);
#endif
static ngx_inline u_char *ngx_http_llm_redact_candidates(u_char *p,
    unsigned bits, u_char *lit, size_t n, ngx_uint_t caseless);
static ngx_uint_t ngx_http_llm_redact_same(u_char *p, u_char *lit, size_t n,
    ngx_uint_t caseless);


/*
 * The literals every match of a pattern contains, found conservatively
 * on its top level: runs of literal characters, broken by anything else
 * (escapes of a class or an assertion, ".", "^", "$", classes, groups),
 * less a character that a quantifier makes optional. A group is skipped
 * whole, but one that is only an alternation of literals, not optional,
 * gives a set. Anything not understood for certain (a top-level "|",
 * "(?" but "(?:" and a leading "(?i)", verbs, \Q, escapes of other
 * letters or digits, a "{" not a plain quantifier) gives nothing.
 * Non-ASCII bytes break runs (a quantifier takes a whole character in
 * UTF mode); caseless in UTF mode, so do k and s, which have non-ASCII
 * equivalents (U+212A, U+017F).
 */

typedef struct {
    u_char                          run[NGX_HTTP_LLM_REDACT_LITERAL_LEN];
    size_t                          len;
    ngx_uint_t                      caseless;
    ngx_uint_t                      split;      /* at k and s */
    ngx_uint_t                      score;      /* of the best so far */
    ngx_http_llm_redact_literal_t  *lit;
} ngx_http_llm_redact_lex_t;


static ngx_uint_t ngx_http_llm_redact_lex_add(ngx_http_llm_redact_lex_t *lx,
    u_char c);
static void ngx_http_llm_redact_lex_flush(ngx_http_llm_redact_lex_t *lx);
static void ngx_http_llm_redact_lex_set(ngx_http_llm_redact_lex_t *lx,
    u_char *p, size_t len);
static size_t ngx_http_llm_redact_skip_class(u_char *p, size_t i,
    size_t len);
static size_t ngx_http_llm_redact_skip_group(u_char *p, size_t i,
    size_t len);
static size_t ngx_http_llm_redact_quantifier(u_char *p, size_t i,
    size_t len, ngx_int_t *min);


#define ngx_http_llm_redact_is_alnum(c)                                      \
    (((c) >= '0' && (c) <= '9') || (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z'))

#define ngx_http_llm_redact_is_ks(c)                                         \
    (((c) | 0x20) == 'k' || ((c) | 0x20) == 's')


ngx_int_t
ngx_http_llm_redact_literal(u_char *pattern, size_t len, ngx_uint_t flags,
    ngx_http_llm_redact_literal_t *lit)
{
    u_char                     c;
    size_t                     i, end;
    ngx_int_t                  min;
    ngx_uint_t                 last;
    ngx_http_llm_redact_lex_t  lx;

    ngx_memzero(lit, sizeof(ngx_http_llm_redact_literal_t));
    ngx_memzero(&lx, sizeof(ngx_http_llm_redact_lex_t));

    lx.lit = lit;
    lx.caseless = (flags & NGX_HTTP_LLM_REDACT_CASELESS) ? 1 : 0;
    lit->utf = (flags & NGX_HTTP_LLM_REDACT_UTF) ? 1 : 0;

    /* what a rule's "caseless" and "utf" put first */

    for (i = 0; /* void */; ) {

        if (len - i >= 4 && ngx_strncmp(pattern + i, "(?i)", 4) == 0) {
            lx.caseless = 1;
            i += 4;

        } else if (len - i >= 6 && ngx_strncmp(pattern + i, "(*UTF)", 6) == 0)
        {
            lit->utf = 1;
            i += 6;

        } else {
            break;
        }
    }

    lx.split = lx.caseless && lit->utf;
    lit->caseless = lx.caseless;

    /* last: the element before is a character of the run */
    last = 0;

    while (i < len) {
        c = pattern[i];

        switch (c) {

        case '\\':
            if (i + 1 == len) {
                return NGX_DECLINED;
            }

            c = pattern[i + 1];
            i += 2;

            if (ngx_http_llm_redact_is_alnum(c)) {
                if (ngx_strlchr((u_char *) "bBsSdDwWhHvVRAzZGK",
                                (u_char *) "bBsSdDwWhHvVRAzZGK" + 18, c)
                    == NULL)
                {
                    return NGX_DECLINED;
                }

                ngx_http_llm_redact_lex_flush(&lx);
                last = 0;
                continue;
            }

            if (c >= 0x80) {
                return NGX_DECLINED;
            }

            last = ngx_http_llm_redact_lex_add(&lx, c);
            continue;

        case '.':
        case '^':
        case '$':
            ngx_http_llm_redact_lex_flush(&lx);
            last = 0;
            i++;
            continue;

        case '[':
            end = ngx_http_llm_redact_skip_class(pattern, i, len);
            if (end == 0) {
                return NGX_DECLINED;
            }

            ngx_http_llm_redact_lex_flush(&lx);
            last = 0;
            i = end;
            continue;

        case '(':
            if (i + 1 < len && pattern[i + 1] == '?'
                && (i + 2 == len || pattern[i + 2] != ':'))
            {
                return NGX_DECLINED;
            }

            end = ngx_http_llm_redact_skip_group(pattern, i, len);
            if (end == 0) {
                return NGX_DECLINED;
            }

            ngx_http_llm_redact_lex_flush(&lx);
            last = 0;

            /* a set only if the group is not made optional */
            min = 1;

            if (end < len) {
                (void) ngx_http_llm_redact_quantifier(pattern, end, len, &min);
            }

            if (min > 0) {
                ngx_http_llm_redact_lex_set(&lx, pattern + i + 1,
                                            end - i - 2);
            }

            i = end;
            continue;

        case '?':
        case '*':
        case '+':
        case '{':
            end = ngx_http_llm_redact_quantifier(pattern, i, len, &min);
            if (end == 0) {
                return NGX_DECLINED;
            }

            if (last && min == 0) {
                lx.len--;
            }

            ngx_http_llm_redact_lex_flush(&lx);
            last = 0;
            i = end;
            continue;

        case '|':
        case ')':
            return NGX_DECLINED;

        default:
            i++;

            if (c >= 0x80 || (lx.split && ngx_http_llm_redact_is_ks(c))) {
                ngx_http_llm_redact_lex_flush(&lx);
                last = 0;
                continue;
            }

            last = ngx_http_llm_redact_lex_add(&lx, c);
        }
    }

    ngx_http_llm_redact_lex_flush(&lx);

    if (lit->n == 0) {
        return NGX_DECLINED;
    }

    ngx_http_llm_redact_rare(lit);

    return NGX_OK;
}


/*
 * The two bytes of each member least frequent in prose, sought first:
 * fewer places to compare whole. A rough rank, rarer lower: letters by
 * their frequency in English (capitals rarer, unless caseless), digits,
 * then punctuation, space the most frequent of all.
 */

static void
ngx_http_llm_redact_rare(ngx_http_llm_redact_literal_t *lit)
{
    u_char      c, r, best[2];
    size_t      i;
    ngx_uint_t  m;

    static const char  letters[] = "zqxjkvbpygfwmucldrhsnioate";

    for (m = 0; m < lit->n; m++) {
        best[0] = 255;
        best[1] = 255;
        lit->rare[m][0] = 0;
        lit->rare[m][1] = lit->len[m] - 1;

        for (i = 0; i < lit->len[m]; i++) {
            c = lit->data[m][i];

            if (c >= 'a' && c <= 'z') {
                r = 100 + 5 * (u_char) (ngx_strchr(letters, c) - letters);

            } else if (c >= 'A' && c <= 'Z') {
                r = 60 + (u_char) (ngx_strchr(letters, c | 0x20) - letters);

            } else if (c >= '0' && c <= '9') {
                r = 80;

            } else if (c == ' ') {
                r = 254;

            } else if (c == '.' || c == ',' || c == '\n') {
                r = 90;

            } else {
                r = 50;
            }

            if (r < best[0]) {
                best[1] = best[0];
                lit->rare[m][1] = lit->rare[m][0];
                best[0] = r;
                lit->rare[m][0] = (u_char) i;

            } else if (r < best[1]) {
                best[1] = r;
                lit->rare[m][1] = (u_char) i;
            }
        }

        /* two places, not the same one twice */

        if (lit->rare[m][0] == lit->rare[m][1]) {
            lit->rare[m][1] = (lit->rare[m][0] == 0) ? lit->len[m] - 1 : 0;
        }
    }
}


/* a character to the run; 1: it is the run's last */

static ngx_uint_t
ngx_http_llm_redact_lex_add(ngx_http_llm_redact_lex_t *lx, u_char c)
{
    if (lx->len == NGX_HTTP_LLM_REDACT_LITERAL_LEN) {
        /* a run's first bytes are as required as the whole */
        ngx_http_llm_redact_lex_flush(lx);
    }

    lx->run[lx->len++] = lx->caseless ? ngx_tolower(c) : c;

    return 1;
}


/* the run ends: the literal if it is the best so far */

static void
ngx_http_llm_redact_lex_flush(ngx_http_llm_redact_lex_t *lx)
{
    if (lx->len >= NGX_HTTP_LLM_REDACT_LITERAL_MIN && lx->len > lx->score) {
        lx->score = lx->len;
        lx->lit->n = 1;
        lx->lit->len[0] = (u_char) lx->len;
        ngx_memcpy(lx->lit->data[0], lx->run, lx->len);
    }

    lx->len = 0;
}


/*
 * A group's inside (p, len), if it is an alternation of literals: the
 * set, if its members are long enough and it is the best so far. A set
 * scores one less than its shortest member: several searches.
 */

static void
ngx_http_llm_redact_lex_set(ngx_http_llm_redact_lex_t *lx, u_char *p,
    size_t len)
{
    u_char                         c;
    u_char                         buf[NGX_HTTP_LLM_REDACT_LITERAL_LEN];
    size_t                         i, piece, best, shortest;
    ngx_uint_t                     n;
    ngx_http_llm_redact_literal_t  set;

    if (len >= 2 && p[0] == '?' && p[1] == ':') {
        p += 2;
        len -= 2;
    }

    ngx_memzero(&set, sizeof(ngx_http_llm_redact_literal_t));

    n = 0;
    shortest = (size_t) -1;
    i = 0;

    while (i <= len) {

        if (n == NGX_HTTP_LLM_REDACT_MEMBERS) {
            return;
        }

        /* a member: its longest piece without k or s when split */

        piece = 0;
        best = 0;

        for ( /* void */ ; i < len && p[i] != '|'; i++) {
            c = p[i];

            if (c == '\\') {
                if (i + 1 == len || ngx_http_llm_redact_is_alnum(p[i + 1])
                    || p[i + 1] >= 0x80)
                {
                    return;
                }

                c = p[++i];

            } else if (c >= 0x80 || ngx_strchr("[](){}.^$*+?", c)) {
                return;
            }

            if (lx->split && ngx_http_llm_redact_is_ks(c)) {
                piece = 0;
                continue;
            }

            /* a piece's first bytes are as required as the whole */
            if (piece == NGX_HTTP_LLM_REDACT_LITERAL_LEN) {
                continue;
            }

            buf[piece++] = lx->caseless ? ngx_tolower(c) : c;

            if (piece > best) {
                best = piece;
                ngx_memcpy(set.data[n], buf, piece);
            }
        }

        if (best < NGX_HTTP_LLM_REDACT_LITERAL_MIN) {
            return;
        }

        set.len[n++] = (u_char) best;
        shortest = ngx_min(shortest, best);

        /* past the "|" */
        i++;
    }

    if (n > 1) {
        shortest--;
    }

    if (shortest > lx->score) {
        lx->score = shortest;
        set.n = n;
        set.caseless = lx->lit->caseless;
        set.utf = lx->lit->utf;
        *lx->lit = set;
    }
}


/* past a class from its "[", 0 if it is not understood */

static size_t
ngx_http_llm_redact_skip_class(u_char *p, size_t i, size_t len)
{
    size_t  k;

    i++;

    if (i < len && p[i] == '^') {
        i++;
    }

    /* a "]" first is one of the class */
    if (i < len && p[i] == ']') {
        i++;
    }

    while (i < len) {

        if (p[i] == '\\') {
            if (i + 1 == len || p[i + 1] == 'Q') {
                return 0;
            }

            i += 2;
            continue;
        }

        if (p[i] == '[' && i + 1 < len
            && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '='))
        {
            /* only a whole "[:name:]" */

            k = i + 2;

            if (k < len && p[k] == '^') {
                k++;
            }

            while (k < len && (p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z') {
                k++;
            }

            if (k + 1 >= len || p[k] != p[i + 1] || p[k + 1] != ']') {
                return 0;
            }

            i = k + 2;
            continue;
        }

        if (p[i] == ']') {
            return i + 1;
        }

        i++;
    }

    return 0;
}


/*
 * Past a group from its "(", 0 if it is not understood: inside, verbs,
 * \Q, callouts, comments and options but those that keep the syntax
 * could hide or end what counts as brackets
 */

static size_t
ngx_http_llm_redact_skip_group(u_char *p, size_t i, size_t len)
{
    size_t      k;
    ngx_uint_t  depth;

    depth = 0;

    while (i < len) {

        switch (p[i]) {

        case '\\':
            if (i + 1 == len || p[i + 1] == 'Q') {
                return 0;
            }

            i += 2;
            continue;

        case '[':
            i = ngx_http_llm_redact_skip_class(p, i, len);
            if (i == 0) {
                return 0;
            }

            continue;

        case '(':
            if (i + 1 < len && p[i + 1] == '*') {
                return 0;
            }

            if (i + 2 < len && p[i + 1] == '?'
                && ngx_strchr(":=!<>|'P", p[i + 2]) == NULL)
            {
                /* options: only those that do not change the syntax */

                for (k = i + 2; k < len && ngx_strchr("imnsUJ-^", p[k])
                                && p[k] != '\0'; k++)
                {
                    /* void */
                }

                if (k == len || (p[k] != ')' && p[k] != ':')) {
                    return 0;
                }
            }

            depth++;
            i++;
            continue;

        case ')':
            i++;

            if (--depth == 0) {
                return i;
            }

            continue;

        default:
            i++;
        }
    }

    return 0;
}


/*
 * Past a quantifier (and its lazy or possessive mark) at i, its least
 * count (0 or 1, for at least 1) in min; 0 if it is not understood
 */

static size_t
ngx_http_llm_redact_quantifier(u_char *p, size_t i, size_t len,
    ngx_int_t *min)
{
    size_t      k;
    ngx_uint_t  digits, least;

    switch (p[i]) {

    case '?':
    case '*':
        *min = 0;
        i++;
        break;

    case '+':
        *min = 1;
        i++;
        break;

    case '{':
        /* {n}, {n,} or {n,m} only; other forms are literal in some
           versions of PCRE2 and quantifiers in others */

        least = 0;
        digits = 0;

        for (k = i + 1; k < len && p[k] >= '0' && p[k] <= '9'; k++) {
            least |= (p[k] != '0');
            digits++;
        }

        if (digits == 0 || k == len) {
            return 0;
        }

        if (p[k] == ',') {
            for (k++; k < len && p[k] >= '0' && p[k] <= '9'; k++) {
                /* void */
            }
        }

        if (k == len || p[k] != '}') {
            return 0;
        }

        *min = least ? 1 : 0;
        i = k + 1;
        break;

    default:
        *min = 1;
        return i;
    }

    if (i < len && (p[i] == '?' || p[i] == '+')) {
        i++;
    }

    return i;
}


size_t
ngx_http_llm_redact_find_literal(ngx_http_llm_redact_literal_t *lit,
    u_char *text, size_t start, size_t len)
{
    size_t      best, at, end;
    ngx_uint_t  i;

    best = len;

    /* the first of any member: later ones are sought before it only */

    for (i = 0; i < lit->n; i++) {
        end = ngx_min(len, best + lit->len[i] - 1);

        at = ngx_http_llm_redact_find_one(text, start, end, lit->data[i],
                                          lit->len[i], lit->rare[i],
                                          lit->caseless);
        if (at < end) {
            best = at;
        }
    }

    return best;
}


/*
 * The first place of one literal (n >= 2) in text from start to len, or
 * len. Places where its two rarest bytes are (ASCII letters folded with
 * | 0x20 if caseless, exact otherwise) are found 32 or 16 at a time, then
 * compared whole: two bytes leave few places to compare, and few
 * branches to mispredict. The last places are a block that overlaps
 * places already refused, rather than a byte at a time.
 */

static size_t
ngx_http_llm_redact_find_one(u_char *text, size_t start, size_t len,
    u_char *lit, size_t n, u_char *rare, ngx_uint_t caseless)
{
    u_char      *p, *last, b1, b2, m1, m2;
    size_t       i1, i2;
#if (__SSE2__)
    u_char      *q;
    unsigned     bits;
    __m128i      v1, v1m, v2, v2m;
#endif

    if (len < start + n) {
        return len;
    }

    i1 = rare[0];
    i2 = rare[1];
    b1 = lit[i1];
    b2 = lit[i2];
    m1 = (caseless && b1 >= 'a' && b1 <= 'z') ? 0x20 : 0;
    m2 = (caseless && b2 >= 'a' && b2 <= 'z') ? 0x20 : 0;

    p = text + start;
    last = text + len - n;       /* the last place it may begin */

#if (__SSE2__)

    v1 = _mm_set1_epi8((char) b1);
    v1m = _mm_set1_epi8((char) m1);
    v2 = _mm_set1_epi8((char) b2);
    v2m = _mm_set1_epi8((char) m2);

    /* 32 places, and the 32 bytes from each's rare ones: in the text */

    while (last - p >= 31) {
        bits = ngx_http_llm_redact_block(p, i1, i2, v1, v1m, v2, v2m)
               | (ngx_http_llm_redact_block(p + 16, i1, i2, v1, v1m, v2, v2m)
                  << 16);

        if (bits) {
            q = ngx_http_llm_redact_candidates(p, bits, lit, n, caseless);
            if (q) {
                return q - text;
            }
        }

        p += 32;
    }

    if (last - p >= 15) {
        bits = ngx_http_llm_redact_block(p, i1, i2, v1, v1m, v2, v2m);
        q = ngx_http_llm_redact_candidates(p, bits, lit, n, caseless);
        if (q) {
            return q - text;
        }

        p += 16;
    }

    if (p <= last && last - (text + start) >= 15) {
        p = last - 15;
        bits = ngx_http_llm_redact_block(p, i1, i2, v1, v1m, v2, v2m);
        q = ngx_http_llm_redact_candidates(p, bits, lit, n, caseless);

        return q ? (size_t) (q - text) : len;
    }

#endif

    for ( /* void */ ; p <= last; p++) {
        if ((p[i1] | m1) == b1 && (p[i2] | m2) == b2
            && ngx_http_llm_redact_same(p, lit, n, caseless))
        {
            return p - text;
        }
    }

    return len;
}


#if (__SSE2__)

/* a bit for each of the 16 places from p whose two rare bytes are there */

static ngx_inline unsigned
ngx_http_llm_redact_block(u_char *p, size_t i1, size_t i2, __m128i v1,
    __m128i v1m, __m128i v2, __m128i v2m)
{
    __m128i  a, b;

    a = _mm_loadu_si128((const __m128i *) (p + i1));
    b = _mm_loadu_si128((const __m128i *) (p + i2));

    return (unsigned) _mm_movemask_epi8(
                          _mm_and_si128(
                              _mm_cmpeq_epi8(_mm_or_si128(a, v1m), v1),
                              _mm_cmpeq_epi8(_mm_or_si128(b, v2m), v2)));
}

#endif


/* the first of the places from p that bits give that is the literal */

static ngx_inline u_char *
ngx_http_llm_redact_candidates(u_char *p, unsigned bits, u_char *lit,
    size_t n, ngx_uint_t caseless)
{
    while (bits) {
        if (ngx_http_llm_redact_same(p + __builtin_ctz(bits), lit, n,
                                     caseless))
        {
            return p + __builtin_ctz(bits);
        }

        bits &= bits - 1;
    }

    return NULL;
}


/* the bytes at p are the literal */

static ngx_uint_t
ngx_http_llm_redact_same(u_char *p, u_char *lit, size_t n,
    ngx_uint_t caseless)
{
    u_char  c;
    size_t  i;

    if (!caseless) {
        return ngx_memcmp(p, lit, n) == 0;
    }

    for (i = 0; i < n; i++) {
        c = p[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != lit[i]) {
            return 0;
        }
    }

    return 1;
}
