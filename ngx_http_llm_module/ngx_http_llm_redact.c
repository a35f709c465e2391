
/*
 * Streamed redaction with PCRE2's hard partial matching: text that could
 * still become a match is held, everything before it is released at once.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redact.h"

#if (__SSE2__)
#include <emmintrin.h>
#endif


static ngx_int_t ngx_http_llm_redact_run(ngx_http_llm_redact_t *rd,
    ngx_uint_t final);
static ngx_int_t ngx_http_llm_redact_emit(ngx_http_llm_redact_t *rd,
    u_char *p, size_t len);
static size_t ngx_http_llm_redact_whole_chars(u_char *p, size_t start,
    size_t end);
static size_t ngx_http_llm_redact_copy_visible(ngx_http_llm_redact_t *rd,
    u_char *p, size_t len);
static ngx_uint_t ngx_http_llm_redact_invisible(u_char *p, size_t n);
static void *ngx_http_llm_redact_alloc(PCRE2_SIZE size, void *data);
static void ngx_http_llm_redact_keep(void *p, void *data);
static int ngx_http_llm_redact_exec(ngx_http_llm_redact_rules_t *rules,
    ngx_uint_t n, u_char *text, size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen);
static size_t ngx_http_llm_redact_anchor(u_char *text, size_t start,
    size_t len, u_char anchor, ngx_http_llm_redact_text_t *seen);
static size_t ngx_http_llm_redact_lead(u_char *p, size_t i, size_t len);
static ngx_http_llm_redact_literal_t *ngx_http_llm_redact_shared(
    ngx_http_llm_redact_rules_t *rules, ngx_uint_t n,
    ngx_http_llm_redact_literal_t *lit);
static ngx_uint_t ngx_http_llm_redact_may_match(
    ngx_http_llm_redact_rules_t *rules, ngx_uint_t n, u_char *text,
    size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen);


typedef int (*ngx_http_llm_redact_exec_pt)(const pcre2_code *code,
    PCRE2_SPTR subject, PCRE2_SIZE length, PCRE2_SIZE start,
    uint32_t options, pcre2_match_data *match, pcre2_match_context *mctx);


/* windows of a hint tried before the rest of a text goes to PCRE2 whole */
#define NGX_HTTP_LLM_REDACT_WINDOWS  8


ngx_int_t
ngx_http_llm_redact_compile(ngx_pool_t *pool,
    ngx_http_llm_redact_rules_t *rules, ngx_str_t *patterns,
    ngx_str_t *placeholders, ngx_uint_t n, ngx_uint_t flags, u_char *err,
    size_t err_len)
{
    int          errcode;
    uint32_t                  options, min, lookbehind, most, all;
    ngx_uint_t                i;
    PCRE2_SIZE                erroffset;
    pcre2_code               *code;
    ngx_http_llm_redact_literal_t  *lit;
    pcre2_compile_context    *cctx;
    pcre2_general_context    *gctx;

    static const char  empty[] = "it can match an empty text";

    ngx_memzero(rules, sizeof(ngx_http_llm_redact_rules_t));

    /* a hint's window is a limit on where a match may start */
    options = PCRE2_USE_OFFSET_LIMIT;

    if (flags & NGX_HTTP_LLM_REDACT_CASELESS) {
        options |= PCRE2_CASELESS;
    }

    if (flags & NGX_HTTP_LLM_REDACT_UTF) {
        options |= PCRE2_UTF;
        rules->utf = 1;
    }

    rules->codes = ngx_pcalloc(pool, n * sizeof(pcre2_code *));
    rules->jit = ngx_pcalloc(pool, n);
    rules->windows = ngx_pcalloc(pool, n * sizeof(size_t));
    rules->literals = ngx_pcalloc(pool,
                                  n * sizeof(ngx_http_llm_redact_literal_t *));

    if (rules->codes == NULL || rules->jit == NULL || rules->windows == NULL
        || rules->literals == NULL)
    {
        return NGX_ERROR;
    }

    rules->nrules = n;
    rules->placeholders = placeholders;
    most = 0;

    /*
     * PCRE2's memory, the JIT's work included, from the configuration's
     * pool: a few large blocks instead of thousands of mallocs, which
     * sanitizers make slow (the JIT's code pages are its own)
     */

    gctx = NULL;
    cctx = NULL;

    if (pool) {
        gctx = pcre2_general_context_create(ngx_http_llm_redact_alloc,
                                            ngx_http_llm_redact_keep, pool);
        cctx = gctx ? pcre2_compile_context_create(gctx) : NULL;

        if (cctx == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < n; i++) {
        rules->error_rule = i + 1;

        code = pcre2_compile(patterns[i].data, patterns[i].len, options,
                             &errcode, &erroffset, cctx);
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
        if (pcre2_jit_compile(code,
                              PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD)
            == 0)
        {
            rules->jit[i] = 1;
        }

        /* a rule in UTF mode by its own "(*UTF)": characters held whole */
        (void) pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &all);

        if (all & PCRE2_UTF) {
            rules->utf = 1;
        }

        /* what every match contains, to skip texts without it */

        if (!(all & (PCRE2_EXTENDED | PCRE2_EXTENDED_MORE | PCRE2_LITERAL))) {
            lit = ngx_palloc(pool, sizeof(ngx_http_llm_redact_literal_t));
            if (lit == NULL) {
                ngx_http_llm_redact_free(rules);
                return NGX_ERROR;
            }

            if (ngx_http_llm_redact_literal(patterns[i].data, patterns[i].len,
                        ((options & PCRE2_CASELESS)
                         ? NGX_HTTP_LLM_REDACT_CASELESS : 0)
                        | ((all & PCRE2_UTF) ? NGX_HTTP_LLM_REDACT_UTF : 0),
                        lit)
                == NGX_OK)
            {
                rules->literals[i] = ngx_http_llm_redact_shared(rules, i, lit);
            }
        }

        lookbehind = 0;
        (void) pcre2_pattern_info(code, PCRE2_INFO_MAXLOOKBEHIND,
                                  &lookbehind);
        most = ngx_max(most, lookbehind);
    }

    rules->error_rule = 0;

    /* malloc's: matching may grow its frames, at run time */
    rules->match = pcre2_match_data_create(1, NULL);
    rules->window = pcre2_match_context_create(gctx);

    if (rules->match == NULL || rules->window == NULL) {
        ngx_http_llm_redact_free(rules);
        return NGX_ERROR;
    }

    /* characters to bytes; \b and \B look one character back */
    rules->context = (most + 1) * 4;

    return NGX_OK;
}


static void *
ngx_http_llm_redact_alloc(PCRE2_SIZE size, void *data)
{
    ngx_pool_t  *pool = data;

    return ngx_palloc(pool, size);
}


/* freed with the pool */

static void
ngx_http_llm_redact_keep(void *p, void *data)
{
}


void
ngx_http_llm_redact_free(ngx_http_llm_redact_rules_t *rules)
{
    ngx_uint_t  i;

    if (rules->match) {
        pcre2_match_data_free(rules->match);
        rules->match = NULL;
    }

    if (rules->window) {
        pcre2_match_context_free(rules->window);
        rules->window = NULL;
    }

    for (i = 0; rules->codes && i < rules->nrules; i++) {
        if (rules->codes[i]) {
            pcre2_code_free(rules->codes[i]);
            rules->codes[i] = NULL;
        }
    }
}


/*
 * An earlier rule's literal if it is the same: rules that share one
 * share where it was found in a text (its memo slot)
 */

static ngx_http_llm_redact_literal_t *
ngx_http_llm_redact_shared(ngx_http_llm_redact_rules_t *rules, ngx_uint_t n,
    ngx_http_llm_redact_literal_t *lit)
{
    ngx_uint_t                      i, m;
    ngx_http_llm_redact_literal_t  *old;

    for (i = 0; i < n; i++) {
        old = rules->literals[i];

        if (old == NULL || old->n != lit->n || old->caseless != lit->caseless
            || old->utf != lit->utf)
        {
            continue;
        }

        for (m = 0; m < lit->n; m++) {
            if (old->len[m] != lit->len[m]
                || ngx_memcmp(old->data[m], lit->data[m], lit->len[m]) != 0)
            {
                break;
            }
        }

        if (m == lit->n) {
            return old;
        }
    }

    lit->slot = n % NGX_HTTP_LLM_REDACT_SEEN_LITERALS;

    return lit;
}


void
ngx_http_llm_redact_set_hints(ngx_http_llm_redact_rules_t *rules,
    ngx_http_llm_redact_hint_t *hints)
{
    ngx_uint_t  i;

    rules->hints = hints;

    /* in UTF mode, a caseless class may take a character of 3 bytes */

    for (i = 0; hints && i < rules->nrules; i++) {
        rules->windows[i] = rules->utf ? 4 * (size_t) hints[i].before
                                       : hints[i].before;
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
    size_t     n, room;
    ngx_int_t  rc;

    /* dropping invisible characters may write 3 bytes at once */
    room = rd->rules->strip_invisible ? 3 : 0;

    if (rd->whole && rd->len + rd->npend + len + room >= rd->size) {
        /* too long to hold whole: matched as it comes, as a stream is */
        rd->whole = 0;

        if (rd->len) {
            rc = ngx_http_llm_redact_run(rd, 0);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    while (len) {

        if (rd->len + room >= rd->size) {
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

        if (rd->rules->strip_invisible) {
            n = ngx_http_llm_redact_copy_visible(rd, p, len);

        } else {
            n = ngx_min(rd->size - rd->len, len);
            ngx_memcpy(rd->buf + rd->len, p, n);
            rd->len += n;
        }

        p += n;
        len -= n;

        if (rd->whole) {
            continue;
        }

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

    /* bytes that were not an invisible character after all */
    ngx_memcpy(rd->buf + rd->len, rd->pend, rd->npend);
    rd->len += rd->npend;
    rd->npend = 0;

    rc = ngx_http_llm_redact_run(rd, 1);

    rd->context = 0;
    rd->len = 0;

    return rc;
}


/*
 * Input into the buffer without zero-width and bidi control characters,
 * while 3 bytes are free; a character cut at the end of the input waits
 * in rd->pend. Returns the input bytes taken.
 */

static size_t
ngx_http_llm_redact_copy_visible(ngx_http_llm_redact_t *rd, u_char *p,
    size_t len)
{
    u_char      *dst;
    size_t       i;
    ngx_uint_t   k;

    dst = rd->buf + rd->len;

    for (i = 0; i < len && rd->buf + rd->size - dst > 3; i++) {

        if (rd->npend == 0
            && p[i] != 0xc2 && p[i] != 0xe2 && p[i] != 0xef)
        {
            *dst++ = p[i];
            continue;
        }

        rd->pend[rd->npend++] = p[i];

        k = ngx_http_llm_redact_invisible(rd->pend, rd->npend);

        if (k == 2) {
            /* one whole: dropped */
            rd->npend = 0;
            continue;
        }

        if (k == 1) {
            continue;
        }

        /* not one: the bytes before this one go as they are, and this
           one is looked at again on its own */

        dst = ngx_cpymem(dst, rd->pend, rd->npend - 1);
        rd->npend = 0;
        i--;
    }

    rd->len = dst - rd->buf;

    return i;
}


/*
 * 2: p is a whole invisible character, 1: the beginning of one, 0: not:
 * U+00AD, U+200B-U+200F, U+202A-U+202E, U+2060-U+2064, U+2066-U+2069,
 * U+FEFF
 */

static ngx_uint_t
ngx_http_llm_redact_invisible(u_char *p, size_t n)
{
    if (p[0] == 0xc2) {
        return (n == 1) ? 1 : (p[1] == 0xad) ? 2 : 0;
    }

    if (p[0] == 0xef) {
        if (n == 1) {
            return 1;
        }

        if (p[1] != 0xbb) {
            return 0;
        }

        return (n == 2) ? 1 : (p[2] == 0xbf) ? 2 : 0;
    }

    /* 0xe2 */

    if (n == 1) {
        return 1;
    }

    if (p[1] != 0x80 && p[1] != 0x81) {
        return 0;
    }

    if (n == 2) {
        return 1;
    }

    if (p[1] == 0x80) {
        return ((p[2] >= 0x8b && p[2] <= 0x8f)
                || (p[2] >= 0xaa && p[2] <= 0xae)) ? 2 : 0;
    }

    return ((p[2] >= 0xa0 && p[2] <= 0xa4)
            || (p[2] >= 0xa6 && p[2] <= 0xa9)) ? 2 : 0;
}


size_t
ngx_http_llm_redact_find_invisible(u_char *p, size_t len)
{
    size_t  i, n;

    for (i = ngx_http_llm_redact_lead(p, 0, len);
         i < len;
         i = ngx_http_llm_redact_lead(p, i + 1, len))
    {
        n = (p[i] == 0xc2) ? 2 : 3;

        if (i + n <= len && ngx_http_llm_redact_invisible(p + i, n) == 2) {
            return i;
        }
    }

    return len;
}


size_t
ngx_http_llm_redact_strip(u_char *p, size_t len)
{
    u_char  *dst;
    size_t   i, at, n;

    dst = p;
    i = 0;

    while (i < len) {
        at = ngx_http_llm_redact_lead(p, i, len);

        /* the bytes before it stay as they are */

        if (dst != p + i) {
            ngx_memmove(dst, p + i, at - i);
        }

        dst += at - i;
        i = at;

        if (i == len) {
            break;
        }

        n = (p[i] == 0xc2) ? 2 : 3;

        if (i + n <= len && ngx_http_llm_redact_invisible(p + i, n) == 2) {
            i += n;
            continue;
        }

        *dst++ = p[i++];
    }

    return dst - p;
}


/*
 * The first byte from i that may begin an invisible character (0xc2,
 * 0xe2, 0xef), or len: 16 bytes at a time, or runs of ASCII 8 at a time
 */

static size_t
ngx_http_llm_redact_lead(u_char *p, size_t i, size_t len)
{
#if (__SSE2__)
    unsigned   bits;
    __m128i    v, c2, e2, ef;

    c2 = _mm_set1_epi8((char) 0xc2);
    e2 = _mm_set1_epi8((char) 0xe2);
    ef = _mm_set1_epi8((char) 0xef);

    while (len - i >= 16) {
        v = _mm_loadu_si128((const __m128i *) (p + i));

        bits = (unsigned) _mm_movemask_epi8(
                   _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, c2),
                                             _mm_cmpeq_epi8(v, e2)),
                                _mm_cmpeq_epi8(v, ef)));
        if (bits) {
            return i + __builtin_ctz(bits);
        }

        i += 16;
    }
#else
    uint64_t  word;

    while (len - i >= 8) {
        ngx_memcpy(&word, p + i, 8);

        if (word & 0x8080808080808080ULL) {
            break;
        }

        i += 8;
    }
#endif

    for ( /* void */ ; i < len; i++) {
        if (p[i] == 0xc2 || p[i] == 0xe2 || p[i] == 0xef) {
            break;
        }
    }

    return i;
}


int
ngx_http_llm_redact_match(ngx_http_llm_redact_rules_t *rules, ngx_uint_t n,
    u_char *text, size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen)
{
    int          rc;
    PCRE2_SIZE  *ov;

    if (seen && rules->utf) {
        if (seen->utf == 0) {
            seen->utf = ngx_http_llm_redact_valid_utf8(text, len)
                        ? NGX_HTTP_LLM_REDACT_UTF_VALID
                        : NGX_HTTP_LLM_REDACT_UTF_INVALID;
        }

        /* an invalid text: PCRE2 says so, for the rules in UTF mode */
        if (seen->utf == NGX_HTTP_LLM_REDACT_UTF_VALID) {
            options |= PCRE2_NO_UTF_CHECK;
        }
    }

    ov = pcre2_get_ovector_pointer(rules->match);

    for ( ;; ) {
        rc = ngx_http_llm_redact_exec(rules, n, text, len, start, options,
                                      seen);

        if (rc < 0 || rules->checks == NULL || rules->checks[n] == NULL
            || rules->checks[n](text + ov[0], ov[1] - ov[0]))
        {
            return rc;
        }

        /* refused by the check: the next match starts after its start */

        start = ov[0] + 1;

        while (rules->utf && start < len && (text[start] & 0xc0) == 0x80) {
            start++;
        }

        if (start >= len) {
            return PCRE2_ERROR_NOMATCH;
        }
    }
}


/*
 * The leftmost match from start. A rule with a hint is tried in windows:
 * from "before" bytes ahead of each anchor, starting no later than the
 * anchor (PCRE2's offset limit); a match cannot start anywhere else.
 * Text without its anchor costs a memchr() instead of a pattern run at
 * every letter (an e-mail's class of characters begins at any). In a
 * stream (hard partial matching) the last "before" bytes may also begin
 * a match whose anchor is yet to come. Where anchors are dense, PCRE2
 * takes the rest of the text.
 */

static int
ngx_http_llm_redact_exec(ngx_http_llm_redact_rules_t *rules, ngx_uint_t n,
    u_char *text, size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen)
{
    int                          rc;
    size_t                       at, from, before;
    ngx_uint_t                   windows;
    ngx_http_llm_redact_hint_t  *hint;
    ngx_http_llm_redact_exec_pt  match;

    if (!ngx_http_llm_redact_may_match(rules, n, text, len, start, options,
                                       seen))
    {
        return PCRE2_ERROR_NOMATCH;
    }

    /*
     * JIT code called directly skips pcre2_match()'s checks of its
     * arguments, the UTF-8 check among them: only on a text checked here
     */

    match = (rules->jit[n]
             && (!rules->utf
                 || (seen && seen->utf == NGX_HTTP_LLM_REDACT_UTF_VALID)))
            ? pcre2_jit_match : pcre2_match;

    hint = rules->hints ? &rules->hints[n] : NULL;

    if (hint == NULL || hint->anchor == 0 || seen == NULL) {
        return match(rules->codes[n], text, len, start, options,
                     rules->match, NULL);
    }

    before = rules->windows[n];

    for (windows = 0; /* void */; windows++) {

        at = ngx_http_llm_redact_anchor(text, start, len, hint->anchor, seen);

        if (at == len && !(options & PCRE2_PARTIAL_HARD)) {
            return PCRE2_ERROR_NOMATCH;
        }

        from = (at - start > before) ? at - before : start;

        while (rules->utf && from > start && (text[from] & 0xc0) == 0x80) {
            from--;
        }

        if (at == len || windows == NGX_HTTP_LLM_REDACT_WINDOWS) {
            return match(rules->codes[n], text, len, from, options,
                         rules->match, NULL);
        }

        (void) pcre2_set_offset_limit(rules->window, at);

        rc = match(rules->codes[n], text, len, from, options, rules->match,
                   rules->window);

        if (rc != PCRE2_ERROR_NOMATCH) {
            return rc;
        }

        /* anchors are ASCII: the next byte begins a character */
        start = at + 1;
    }
}


/* the offset of the first anchor from start, len if there is none */

static size_t
ngx_http_llm_redact_anchor(u_char *text, size_t start, size_t len,
    u_char anchor, ngx_http_llm_redact_text_t *seen)
{
    u_char    *p, *last;
    uint64_t   word, low, ge0, ge10;
#if (__SSE2__)
    __m128i    v, lo, hi;
#endif

    if (anchor != NGX_HTTP_LLM_REDACT_DIGIT) {
        p = memchr(text + start, anchor, len - start);
        return p ? (size_t) (p - text) : len;
    }

    /* the first digit is sought once for all the rules that need one */

    if (seen->digit_from <= start && start <= seen->digit) {
        return seen->digit;
    }

    last = text + len;
    p = text + start;

#if (__SSE2__)

    /*
     * 16 bytes at a time, compared as signed: bytes from 0x80 are below
     * '0' then
     */

    lo = _mm_set1_epi8('0' - 1);
    hi = _mm_set1_epi8('9' + 1);

    while (last - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);

        if (_mm_movemask_epi8(_mm_and_si128(_mm_cmpgt_epi8(v, lo),
                                            _mm_cmplt_epi8(v, hi))))
        {
            break;
        }

        p += 16;
    }

#endif

    /*
     * Eight bytes at a time: a byte's high bit is set in "ge0" when its
     * low seven bits are at least '0', in "ge10" when at least '9' + 1;
     * a digit has the first, not the second, and no high bit of its own
     */

    while (last - p >= 8) {
        ngx_memcpy(&word, p, 8);

        low = word & 0x7f7f7f7f7f7f7f7fULL;
        ge0 = low + 0x5050505050505050ULL;
        ge10 = low + 0x4646464646464646ULL;

        if (ge0 & ~ge10 & ~word & 0x8080808080808080ULL) {
            break;
        }

        p += 8;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p >= '0' && *p <= '9') {
            break;
        }
    }

    seen->digit_from = start;
    seen->digit = p - text;

    return seen->digit;
}


/* UTF-8 as PCRE2 takes it: no overlong forms, surrogates, or past 10FFFF */

ngx_uint_t
ngx_http_llm_redact_valid_utf8(u_char *p, size_t len)
{
    u_char    *last;
    uint32_t   c, min;
    uint64_t   word;
    ngx_uint_t  n, i;

    last = p + len;

    while (p < last) {

        /* runs of ASCII eight bytes at a time */

        while (last - p >= 8) {
            ngx_memcpy(&word, p, 8);

            if (word & 0x8080808080808080ULL) {
                break;
            }

            p += 8;
        }

        if (p == last) {
            break;
        }

        c = *p++;

        if (c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            c &= 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            c &= 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            c &= 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if ((size_t) (last - p) < n) {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (p[i] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }

        p += n;
    }

    return 1;
}


/*
 * Whether text from start may hold a match of rule n: not if the rule's
 * literal is not there (a whole text: a match in a stream may be only
 * partly there yet)
 */

static ngx_uint_t
ngx_http_llm_redact_may_match(ngx_http_llm_redact_rules_t *rules,
    ngx_uint_t n, u_char *text, size_t len, size_t start, uint32_t options,
    ngx_http_llm_redact_text_t *seen)
{
    size_t                          at;
    ngx_uint_t                      k;
    ngx_http_llm_redact_literal_t  *lit;

    if (rules->literals == NULL || rules->literals[n] == NULL
        || (options & (PCRE2_PARTIAL_HARD | PCRE2_PARTIAL_SOFT)))
    {
        return 1;
    }

    lit = rules->literals[n];

    /* invalid UTF-8 is PCRE2's to refuse, for a rule in UTF mode */

    if (lit->utf
        && (seen == NULL || seen->utf != NGX_HTTP_LLM_REDACT_UTF_VALID))
    {
        return 1;
    }

    if (seen == NULL) {
        return ngx_http_llm_redact_find_literal(lit, text, start, len) < len;
    }

    k = lit->slot;

    if (seen->lit[k] != lit || seen->lit_from[k] > start
        || start > seen->lit_at[k])
    {
        seen->lit[k] = lit;
        seen->lit_from[k] = start;
        seen->lit_at[k] = ngx_http_llm_redact_find_literal(lit, text, start,
                                                           len);
    }

    at = seen->lit_at[k];

    return at < len;
}


static ngx_int_t
ngx_http_llm_redact_run(ngx_http_llm_redact_t *rd, ngx_uint_t final)
{
    int                           rc;
    u_char                       *buf;
    size_t                        pos, end, keep, from, start, stop;
    ngx_int_t                     said;
    ngx_str_t                     placeholder;
    uint32_t                      options;
    ngx_uint_t                    i, best, partial, best_partial, action;
    PCRE2_SIZE                   *ov;
    ngx_http_llm_redact_text_t    seen;
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

    /* the buffer does not change while the rules are tried on it */
    ngx_http_llm_redact_text_init(&seen);

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

            rc = ngx_http_llm_redact_match(rules, i, buf, end, pos, options,
                                           &seen);

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

        rd->matches++;

        if (rd->hit) {
            said = rd->hit(rd->data, best);
            if (said != NGX_OK) {
                return said;
            }
        }

        action = rules->actions ? rules->actions[best]
                                : NGX_HTTP_LLM_REDACT_REPLACE;

        if (action == NGX_HTTP_LLM_REDACT_STOP) {
            rd->stopped_by = best;
            rd->context = 0;
            rd->len = 0;
            return NGX_DECLINED;
        }

        if (action == NGX_HTTP_LLM_REDACT_PASS) {
            said = ngx_http_llm_redact_emit(rd, buf + start, stop - start);

        } else if (rules->numbered && rules->numbered[best] && rd->name) {
            said = rd->name(rd->data, best, buf + start, stop - start,
                            &placeholder);

            if (said == NGX_OK) {
                said = ngx_http_llm_redact_emit(rd, placeholder.data,
                                                placeholder.len);
            }

        } else {
            said = ngx_http_llm_redact_emit(rd,
                                            rules->placeholders[best].data,
                                            rules->placeholders[best].len);
        }

        if (said != NGX_OK) {
            return NGX_ERROR;
        }

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
