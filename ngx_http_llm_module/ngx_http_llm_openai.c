
/*
 * The OpenAI dialect: the client's request goes out as it came, with the
 * provider's model name spliced in, the provider's bearer key, and, for
 * streams, a request for the usage chunk. Responses pass as they are;
 * their usage is read on the way, and a usage chunk the client did not
 * ask for is taken out again.
 *
 * Clients of Anthropic's door get a request translated from theirs, and
 * the responses are decoded into canonical deltas for their encoder.
 */


#include <ngx_config.h>
#include <ngx_core.h>


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_jscan.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_embeddings.h"
#include "ngx_http_llm_responses.h"


typedef enum {
    NGX_HTTP_LLM_OA_OTHER = 0,
    NGX_HTTP_LLM_OA_USAGE,
    NGX_HTTP_LLM_OA_CHOICES,
    NGX_HTTP_LLM_OA_ERROR,
    NGX_HTTP_LLM_OA_PROMPT,
    NGX_HTTP_LLM_OA_COMPLETION,
    NGX_HTTP_LLM_OA_DETAILS,
    NGX_HTTP_LLM_OA_CACHED,
    NGX_HTTP_LLM_OA_OBJECT
} ngx_http_llm_openai_key_e;


/*
 * How far from its end a whole answer's usage is looked for: OpenAI's
 * has a few members after it, each a short string or null
 */
#define NGX_HTTP_LLM_OPENAI_TAIL  2048

/* levels of a value the tail's reader skips; deeper: the scanner's */
#define NGX_HTTP_LLM_OPENAI_TAIL_DEPTH  64


/* what a completion or a chunk says about usage, read incrementally */
typedef struct {
    ngx_http_llm_jscan_t           js;
    ngx_uint_t                     depth;
    ngx_uint_t                     key;          /* depth 1 */
    ngx_uint_t                     usage_key;    /* depth 2, in usage */
    ngx_uint_t                     details_key;  /* depth 3, in details */
    ngx_uint_t                     in;           /* the depth-1 value */
    unsigned                       in_details:1;
    ngx_uint_t                     choices;
    int64_t                        content;
    ngx_http_llm_usage_t           usage;
    unsigned                       has_usage:1;
    unsigned                       has_error:1;
    unsigned                       closed:1;     /* the root ended */
    unsigned                       over:1;       /* read to the end, or
                                                    not JSON: no more */
    size_t                         usage_null;   /* offset after a
                                                    top-level "usage":null */
    size_t                         object_end;   /* offset after "object"'s
                                                    value, if not a chunk's */
    size_t                         object_len;
    ngx_uint_t                     deltas;       /* choices with a delta */
} ngx_http_llm_openai_scan_t;


static char *ngx_http_llm_openai_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_openai_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static void ngx_http_llm_openai_scan_init(ngx_http_llm_openai_scan_t *scan);
static ngx_int_t ngx_http_llm_openai_text(ngx_http_llm_canon_t *c,
    ngx_http_llm_json_t *choice);
static ngx_int_t ngx_http_llm_openai_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_openai_scan_done(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_openai_scan_t *scan);
static ngx_int_t ngx_http_llm_openai_usage_tail(
    ngx_http_llm_openai_scan_t *scan, u_char *p, size_t len);
static ngx_int_t ngx_http_llm_openai_tail_read(
    ngx_http_llm_openai_scan_t *scan, u_char *p, u_char *last);
static u_char *ngx_http_llm_openai_tail_members(
    ngx_http_llm_openai_scan_t *scan, u_char *p, u_char *last,
    ngx_uint_t details);
static u_char *ngx_http_llm_openai_tail_skip(u_char *p, u_char *last,
    ngx_uint_t root);
static u_char *ngx_http_llm_openai_tail_string(u_char *p, u_char *last,
    ngx_uint_t *escaped);
static u_char *ngx_http_llm_openai_tail_number(u_char *p, u_char *last);
static ngx_inline u_char *ngx_http_llm_openai_tail_colon(u_char *p,
    u_char *last);
static ngx_inline u_char *ngx_http_llm_openai_tail_space(u_char *p,
    u_char *last);
static ngx_inline void ngx_http_llm_openai_count(
    ngx_http_llm_openai_scan_t *scan, int64_t *dst, u_char *s, size_t len);
static void ngx_http_llm_openai_cut_usage_null(ngx_http_llm_sse_event_t *ev,
    size_t end);
static void ngx_http_llm_openai_name_chunk(ngx_http_llm_sse_event_t *ev,
    size_t end, size_t len);
static ngx_uint_t ngx_http_llm_openai_levels(ngx_http_llm_json_t *v);


/* "responses chat": a server without /responses (vLLM, ...) */
static char  *ngx_http_llm_openai_options[] = {
    "responses",
    NULL
};


ngx_http_llm_dialect_t  ngx_http_llm_openai_dialect = {
    ngx_string("openai"),
    ngx_http_llm_openai_init_provider,
    ngx_http_llm_openai_create_request,
    NULL,
    ngx_http_llm_openai_response_json,
    ngx_http_llm_openai_response_event,
    NGX_HTTP_LLM_API_OPENAI,
    NGX_HTTP_LLM_FRAMING_SSE,
    ngx_http_llm_openai_options,
    ngx_http_llm_openai_decode_body,
    ngx_http_llm_openai_decode_event,
    ngx_http_llm_openai_decode_error
};


static char *
ngx_http_llm_openai_init_provider(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    ngx_str_t  *v;

    if (ngx_http_llm_provider_chat_url(cf, p, "/chat/completions") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the legacy text completions' URL: the chat one without "/chat" */

    p->completions_url.len = p->chat_url.len - (sizeof("/chat") - 1);
    p->completions_url.data = ngx_pnalloc(cf->pool, p->completions_url.len);
    if (p->completions_url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(p->completions_url.data, p->chat_url.data,
                          p->chat_url.len - (sizeof("/chat/completions") - 1)),
               "/completions", sizeof("/completions") - 1);

    /*
     * the Responses API's: <url>/responses; "responses chat" leaves it
     * empty, and Responses calls are translated into chat completions
     */

    v = ngx_http_llm_provider_option(p, "responses");

    if (v && !(v->len == 4 && ngx_strncmp(v->data, "chat", 4) == 0)
        && !(v->len == 6 && ngx_strncmp(v->data, "native", 6) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"responses\" value \"%V\" in "
                           "llm_provider \"%V\": native or chat", v,
                           &p->name);
        return NGX_CONF_ERROR;
    }

    if (v == NULL || v->len == sizeof("native") - 1) {
        p->responses_url.len = p->chat_url.len
                               - (sizeof("/chat/completions") - 1)
                               + sizeof("/responses") - 1;
        p->responses_url.data = ngx_pnalloc(cf->pool, p->responses_url.len);
        if (p->responses_url.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ngx_cpymem(p->responses_url.data, p->chat_url.data,
                              p->chat_url.len
                              - (sizeof("/chat/completions") - 1)),
                   "/responses", sizeof("/responses") - 1);
    }

    return ngx_http_llm_provider_key_header(cf, p, "authorization",
                                            "Authorization", "Bearer ");
}


static ngx_int_t
ngx_http_llm_openai_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              n;
    ngx_http_llm_chat_t    *chat;
    ngx_http_llm_edit_t     edits[2], tmp;
    ngx_http_llm_target_t  *t;

    t = ctx->target;
    chat = &ctx->chat;
    n = 0;

    ctx->upstream_url = (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS)
                        ? t->provider->completions_url
                        : t->provider->chat_url;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS
        && ngx_http_llm_embeddings_url(r->pool, t->provider,
                                       &ctx->upstream_url)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* Anthropic's cache breakpoints on chat's parts: not OpenAI's API */

    if (ctx->endpoint == NGX_HTTP_LLM_EP_CHAT && chat->cache_control) {
        return ngx_http_llm_openai_body(r, ctx);
    }

    /* a guard redacted the texts of the tree: the body is built from it */

    if (ctx->embed && ctx->request_redacted) {
        /* in OpenAI's format already: the same tree, written again */
        return ngx_http_llm_rebuild_body(r, ctx);
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_MESSAGES || ctx->request_redacted
        || (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES
            && !ngx_http_llm_responses_native(ctx)))
    {
        /* converted into chat: Azure's, and OpenAI-compatible chat */
        return ngx_http_llm_openai_body(r, ctx);
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        /* as it came: Responses streams always end with their usage */
        ctx->upstream_url = t->provider->responses_url;
    }

    if (ctx->target_model.len != chat->model.len
        || ngx_strncmp(ctx->target_model.data, chat->model.data,
                       chat->model.len) != 0)
    {
        edits[n].start = chat->model_key_end;
        edits[n].end = chat->model_end;

        if (t->model_edit.len) {
            edits[n].text = t->model_edit;

        } else if (ngx_http_llm_model_edit(r->pool, &ctx->target_model,
                                           &edits[n].text)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        n++;
    }

    /* streams: the provider is asked for the usage chunk, for accounting */

    if (chat->stream && !chat->include_usage
        && ctx->endpoint != NGX_HTTP_LLM_EP_RESPONSES)
    {

        if (!chat->has_options) {
            edits[n].start = chat->root_start;
            edits[n].end = chat->root_start;
            ngx_str_set(&edits[n].text,
                        "\"stream_options\":{\"include_usage\":true},");

        } else if (!chat->options_object) {
            /* "stream_options": null */
            edits[n].start = chat->options_key_end;
            edits[n].end = chat->options_end;
            ngx_str_set(&edits[n].text, ":{\"include_usage\":true}");

        } else if (chat->has_include_usage) {
            edits[n].start = chat->usage_key_end;
            edits[n].end = chat->usage_end;
            ngx_str_set(&edits[n].text, ":true");

        } else {
            edits[n].start = chat->options_start;
            edits[n].end = chat->options_start;

            if (chat->options_members) {
                ngx_str_set(&edits[n].text, "\"include_usage\":true,");

            } else {
                ngx_str_set(&edits[n].text, "\"include_usage\":true");
            }
        }

        n++;
    }

    if (n == 2 && edits[1].start < edits[0].start) {
        tmp = edits[0];
        edits[0] = edits[1];
        edits[1] = tmp;
    }

    return ngx_http_llm_splice_body(r, ctx, edits, n);
}


/* a completion: usage is read as the body goes by */

ngx_int_t
ngx_http_llm_openai_response_json(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, u_char *p, size_t len, ngx_uint_t last)
{
    ngx_http_llm_openai_scan_t  *scan;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        return ngx_http_llm_responses_json(r, ctx, p, len, last);
    }

    scan = ctx->resp->dialect;

    if (scan == NULL) {
        scan = ngx_palloc(r->pool, sizeof(ngx_http_llm_openai_scan_t));
        if (scan == NULL) {
            return NGX_ERROR;
        }

        ngx_http_llm_openai_scan_init(scan);
        ctx->resp->dialect = scan;

        if (len && (off_t) len == r->headers_out.content_length_n) {

            /* the whole answer in one piece: its usage read from the end */

            if (ngx_http_llm_openai_usage_tail(scan, p, len) == NGX_OK) {
                ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "llm: usage read from the answer's end");

                ctx->usage = scan->usage;
                ctx->usage.reported = 1;
                ctx->resp->done = 1;
                return NGX_OK;
            }

            ngx_http_llm_openai_scan_init(scan);
        }
    }

    if (scan->over) {
        /* not JSON after all: nothing more to learn */
        return NGX_OK;
    }

    if (len && ngx_http_llm_jscan_feed(&scan->js, p, len) != NGX_OK) {
        /* held, it fails over (ngx_http_llm_held_answer()) */
        scan->over = 1;
        ctx->resp->unreadable = 1;
        return NGX_OK;
    }

    if (scan->closed && !scan->has_error) {
        /* the whole document, and not an error: complete */
        ctx->resp->done = 1;
    }

    if (last) {
        (void) ngx_http_llm_openai_scan_done(ctx, scan);
    }

    return NGX_OK;
}


/*
 * An answer that came whole (its Content-Length in one piece): rather
 * than every token of it, only its end from the root's "usage" member is
 * read, as the document {"usage":...,<the members after it>} -- JSON that
 * closes where the answer does only if the member is the root's. In JSON
 * a '"' after an even number of backslashes opens or closes a string, and
 * none closes before the letters usage: the bytes found are the string
 * "usage" itself. The middle is not checked: the provider's framing said
 * the answer is whole. Anything else (no usage near the end, an error
 * object, a "usage" that is not the root's) is read in full, as before.
 */

static ngx_int_t
ngx_http_llm_openai_usage_tail(ngx_http_llm_openai_scan_t *scan, u_char *p,
    size_t len)
{
    u_char  *last, *s, *from, *b;
    size_t   i, k;

    /* after the "usage" found, the tail's reader reads to the very end */

    last = p + len;

    while (p < last && ngx_http_llm_jscan_space(*p)) {
        p++;
    }

    if (last - p < (ssize_t) sizeof("{\"usage\":{}}") - 1 || *p != '{') {
        return NGX_DECLINED;
    }

    /* a 200 carrying an error begins with it: read whole, a failure */

    for (b = p + 1; b < last && ngx_http_llm_jscan_space(*b); b++) {
        /* void */
    }

    if (last - b >= 7 && ngx_http_llm_jscan_is(b, "\"error\"")) {
        return NGX_DECLINED;
    }

    from = (last - p > NGX_HTTP_LLM_OPENAI_TAIL)
           ? last - NGX_HTTP_LLM_OPENAI_TAIL : p + 1;

    if (last - from < (ssize_t) sizeof("\"usage\"") - 1) {
        return NGX_DECLINED;
    }

    /*
     * Backwards, as Horspool searches: the byte under the first of the 7
     * tells how far they may move without passing a "usage" (to where
     * that byte is in it, or past it): most moves are of 6 or 7 bytes.
     */

    i = last - from - (sizeof("\"usage\"") - 1);

    for ( ;; ) {
        s = from + i;

        switch (*s) {

        case '"':
            if (s[6] == '"' && ngx_http_llm_jscan_is(s + 1, "usage")) {

                for (b = s - 1; b > p && *b == '\\'; b--) {
                    /* void */
                }

                if ((s - 1 - b) % 2 == 0) {
                    /* not within a string */
                    goto found;
                }
            }

            k = 6;
            break;

        case 'u':
            k = 1;
            break;

        case 's':
            k = 2;
            break;

        case 'a':
            k = 3;
            break;

        case 'g':
            k = 4;
            break;

        case 'e':
            k = 5;
            break;

        default:
            k = 7;
        }

        if (i < k) {
            return NGX_DECLINED;
        }

        i -= k;
    }

found:

    if (ngx_http_llm_openai_tail_read(scan, s + sizeof("\"usage\"") - 1, last)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    scan->over = 1;

    return NGX_OK;
}


/*
 * The document {"usage":...,<the members after it>} read as the scanner
 * with ngx_http_llm_openai_token() would, from just after "usage" to the
 * end: what is accepted here the scanner accepts too and finds the same
 * usage in. Whatever is not plain (a member name with an escape, a
 * second "usage", an "error", "prompt_tokens_details" as an array, values
 * nested deeper than NGX_HTTP_LLM_OPENAI_TAIL_DEPTH) is declined, for the
 * scanner to read the whole answer.
 */

static ngx_int_t
ngx_http_llm_openai_tail_read(ngx_http_llm_openai_scan_t *scan, u_char *p,
    u_char *last)
{
    p = ngx_http_llm_openai_tail_colon(p, last);

    if (p == NULL || *p != '{') {
        return NGX_DECLINED;
    }

    p = ngx_http_llm_openai_tail_members(scan, p, last, 0);

    if (p == NULL || !scan->has_usage) {
        return NGX_DECLINED;
    }

    /* the root's members after usage, if any, to its end and the answer's */

    p = ngx_http_llm_openai_tail_space(p, last);

    p = (p < last && *p == '}') ? p + 1
                                : ngx_http_llm_openai_tail_skip(p, last, 1);

    if (p == NULL || ngx_http_llm_openai_tail_space(p, last) != last) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The members of the object at p: usage's (details 0) or its
 * prompt_tokens_details' (1), whose numbers are counted as
 * ngx_http_llm_openai_number() counts them; the end of the object, or
 * NULL
 */

static u_char *
ngx_http_llm_openai_tail_members(ngx_http_llm_openai_scan_t *scan, u_char *p,
    u_char *last, ngx_uint_t details)
{
    u_char      *v;
    size_t       n;
    int64_t     *dst;
    ngx_uint_t   escaped, sub;

    p = ngx_http_llm_openai_tail_space(p + 1, last);

    if (p == last) {
        return NULL;
    }

    if (*p == '}') {
        return p + 1;
    }

    for ( ;; ) {
        if (*p != '"') {
            return NULL;
        }

        /*
         * the names counted, written plainly, with their quotes: one
         * compare each; any other name is skipped, and one with an escape
         * (it may be one of them) is for the scanner
         */

        dst = NULL;
        sub = 0;
        n = last - p;

        if (details) {
            if (n > 15 && ngx_http_llm_jscan_is(p, "\"cached_tokens\"")) {
                dst = &scan->usage.cached;
                p += 15;
            }

        } else if (n > 15 && ngx_http_llm_jscan_is(p, "\"prompt_tokens\"")) {
            dst = &scan->usage.prompt;
            p += 15;

        } else if (n > 19
                   && ngx_http_llm_jscan_is(p, "\"completion_tokens\""))
        {
            dst = &scan->usage.completion;
            p += 19;

        } else if (n > 23
                   && ngx_http_llm_jscan_is(p, "\"prompt_tokens_details\""))
        {
            sub = 1;
            p += 23;
        }

        if (dst == NULL && !sub) {
            escaped = 0;

            p = ngx_http_llm_openai_tail_string(p, last, &escaped);
            if (p == NULL || escaped) {
                return NULL;
            }
        }

        p = ngx_http_llm_openai_tail_colon(p, last);
        if (p == NULL) {
            return NULL;
        }

        if (sub && *p == '{') {
            p = ngx_http_llm_openai_tail_members(scan, p, last, 1);

        } else if (sub && *p == '[') {
            /* the scanner's handler reads its numbers: not here */
            return NULL;

        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            v = p;
            p = ngx_http_llm_openai_tail_number(p, last);

            if (p != NULL && dst != NULL) {
                ngx_http_llm_openai_count(scan, dst, v, p - v);
            }

        } else {
            p = ngx_http_llm_openai_tail_skip(p, last, 0);
        }

        if (p == NULL) {
            return NULL;
        }

        p = ngx_http_llm_openai_tail_space(p, last);

        if (p == last) {
            return NULL;
        }

        if (*p == '}') {
            return p + 1;
        }

        if (*p != ',') {
            return NULL;
        }

        p = ngx_http_llm_openai_tail_space(p + 1, last);

        if (p == last) {
            return NULL;
        }
    }
}


/*
 * A value at p checked and skipped (root 0), or the rest of the root
 * object after a member's value (root 1), whose member names must be
 * plain and neither "usage" nor "error"; the end of it, or NULL
 */

static u_char *
ngx_http_llm_openai_tail_skip(u_char *p, u_char *last, ngx_uint_t root)
{
    u_char      *name;
    uint64_t     objects;
    ngx_uint_t   level, object, escaped;

    /* bit i: the container at level i + 1 is an object */
    objects = root;
    level = root;
    escaped = 0;

    if (root) {
        goto after;
    }

value:

    switch (*p) {

    case '"':
        p = ngx_http_llm_openai_tail_string(p, last, &escaped);
        break;

    case '{':
    case '[':
        if (level == NGX_HTTP_LLM_OPENAI_TAIL_DEPTH) {
            return NULL;
        }

        object = (*p == '{');
        objects = (objects & ~((uint64_t) 1 << level))
                  | ((uint64_t) object << level);
        level++;

        p = ngx_http_llm_openai_tail_space(p + 1, last);

        if (p == last) {
            return NULL;
        }

        if (*p == (object ? '}' : ']')) {
            level--;
            p++;
            break;
        }

        if (object) {
            goto member;
        }

        goto value;

    case 't':
        if (last - p < 4 || !ngx_http_llm_jscan_is(p, "true")) {
            return NULL;
        }

        p += 4;
        break;

    case 'f':
        if (last - p < 5 || !ngx_http_llm_jscan_is(p, "false")) {
            return NULL;
        }

        p += 5;
        break;

    case 'n':
        if (last - p < 4 || !ngx_http_llm_jscan_is(p, "null")) {
            return NULL;
        }

        p += 4;
        break;

    default:
        p = ngx_http_llm_openai_tail_number(p, last);
    }

    if (p == NULL) {
        return NULL;
    }

after:

    if (level == 0) {
        return p;
    }

    p = ngx_http_llm_openai_tail_space(p, last);

    if (p == last) {
        return NULL;
    }

    object = (objects >> (level - 1)) & 1;

    if (*p == (object ? '}' : ']')) {
        level--;
        p++;
        goto after;
    }

    if (*p != ',') {
        return NULL;
    }

    p = ngx_http_llm_openai_tail_space(p + 1, last);

    if (p == last) {
        return NULL;
    }

    if (!object) {
        goto value;
    }

member:

    if (*p != '"') {
        return NULL;
    }

    name = p + 1;
    escaped = 0;

    p = ngx_http_llm_openai_tail_string(p, last, &escaped);
    if (p == NULL) {
        return NULL;
    }

    /* the root's: a second usage, or an error, is for the scanner */

    if (root && level == 1
        && (escaped
            || (p - 1 - name == 5
                && (ngx_http_llm_jscan_is(name, "usage")
                    || ngx_http_llm_jscan_is(name, "error")))))
    {
        return NULL;
    }

    p = ngx_http_llm_openai_tail_colon(p, last);
    if (p == NULL) {
        return NULL;
    }

    goto value;
}


/*
 * A string at p checked as the scanner checks it (no control character,
 * valid escapes, UTF-8 as RFC 3629 has it); just after its closing quote,
 * or NULL. escaped is set if it has an escape.
 */

static u_char *
ngx_http_llm_openai_tail_string(u_char *p, u_char *last,
    ngx_uint_t *escaped)
{
    u_char      ch;
    ngx_uint_t  n;

    p++;

    for ( ;; ) {

        /* bytes that stand for themselves, 16 at a time */

        p = ngx_http_llm_jscan_plain_run(p, last);

        if (p == last) {
            return NULL;
        }

        ch = *p++;

        if (ch == '"') {
            return p;
        }

        if (ch == '\\') {
            *escaped = 1;

            if (p == last) {
                return NULL;
            }

            ch = *p++;

            if (ch == 'u') {
                if (last - p < 4) {
                    return NULL;
                }

                for (n = 0; n < 4; n++, p++) {
                    if (!((*p >= '0' && *p <= '9')
                          || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')))
                    {
                        return NULL;
                    }
                }

            } else if (ch != '"' && ch != '\\' && ch != '/' && ch != 'b'
                       && ch != 'f' && ch != 'n' && ch != 'r' && ch != 't')
            {
                return NULL;
            }

            continue;
        }

        /* UTF-8 as RFC 3629 has it; a control character is no lead byte */

        n = ngx_http_llm_utf8_len(p - 1, last);

        if (n == 0) {
            return NULL;
        }

        p += n - 1;
    }
}


/*
 * A number at p as JSON has it, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?
 * [0-9]+)?; just after it, or NULL. What follows it is the caller's to
 * check (a digit after a leading 0 is not a ',', '}' or ']').
 */

static u_char *
ngx_http_llm_openai_tail_number(u_char *p, u_char *last)
{
    if (*p == '-' && ++p == last) {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        do { p++; } while (p < last && *p >= '0' && *p <= '9');

    } else {
        return NULL;
    }

    if (p < last && *p == '.') {
        if (++p == last || *p < '0' || *p > '9') {
            return NULL;
        }

        do { p++; } while (p < last && *p >= '0' && *p <= '9');
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        if (++p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == last || *p < '0' || *p > '9') {
            return NULL;
        }

        do { p++; } while (p < last && *p >= '0' && *p <= '9');
    }

    /* a number does not end the document {"usage":...} */

    return (p < last) ? p : NULL;
}


/* after a member's name: its ':', and the first byte of its value */

static ngx_inline u_char *
ngx_http_llm_openai_tail_colon(u_char *p, u_char *last)
{
    p = ngx_http_llm_openai_tail_space(p, last);

    if (p == last || *p != ':') {
        return NULL;
    }

    p = ngx_http_llm_openai_tail_space(p + 1, last);

    return (p == last) ? NULL : p;
}


static ngx_inline u_char *
ngx_http_llm_openai_tail_space(u_char *p, u_char *last)
{
    if (p < last && *p > ' ') {
        /* compact JSON: none */
        return p;
    }

    while (p < last && ngx_http_llm_jscan_space(*p)) {
        p++;
    }

    return p;
}


/*
 * A chunk of a stream: its content is counted (usage is estimated from
 * it if the stream breaks off), its usage read; the usage chunk, which
 * has no choices, goes to the client only if the client asked for it.
 */

ngx_int_t
ngx_http_llm_openai_response_event(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_sse_event_t *ev)
{
    ngx_http_llm_openai_scan_t  scan;

    if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        return ngx_http_llm_responses_event(r, ctx, ev);
    }

    if (ev->data.len == 0 || ev->data.data[0] != '{') {
        return NGX_OK;
    }

    ngx_http_llm_openai_scan_init(&scan);

    if (ngx_http_llm_jscan_feed(&scan.js, ev->data.data, ev->data.len)
        != NGX_OK
        || ngx_http_llm_openai_scan_done(ctx, &scan) != NGX_OK)
    {
        return NGX_OK;
    }

    ev->error = scan.has_error;

    if (!ctx->chat.include_usage) {
        if (scan.has_usage && scan.choices == 0) {
            return NGX_DECLINED;
        }

        if (scan.usage_null) {
            ngx_http_llm_openai_cut_usage_null(ev, scan.usage_null);
        }
    }

    if (scan.object_end && ctx->endpoint != NGX_HTTP_LLM_EP_COMPLETIONS) {

        /*
         * Not a chunk: Azure's events of content filter results alone
         * (its first, prompt_filter_results, has no choices). Clients
         * read choices[0].delta of every chunk: such an event is left
         * out, and a chunk named otherwise is named as OpenAI's are.
         */

        if (scan.deltas == 0 && !scan.has_usage) {
            return NGX_DECLINED;
        }

        ngx_http_llm_openai_name_chunk(ev, scan.object_end, scan.object_len);
    }

    return NGX_OK;
}


static void
ngx_http_llm_openai_name_chunk(ngx_http_llm_sse_event_t *ev, size_t end,
    size_t len)
{
    u_char                   *first, *start;
    ngx_http_llm_sse_edit_t  *e;

    first = ev->data.data;

    if (first < ev->raw.data || first + ev->data.len > ev->raw.data
                                                       + ev->raw.len
        || end > ev->data.len || end < len + 2 || ev->nedits == 2)
    {
        return;
    }

    start = first + end - len - 2;

    if (start[0] != '"' || first[end - 1] != '"') {
        /* written with escapes: left as it is */
        return;
    }

    e = &ev->edits[ev->nedits];

    if (ev->nedits && ev->edits[0].start > start) {
        /* the edits stay in the order of the bytes */
        ev->edits[1] = ev->edits[0];
        e = &ev->edits[0];
    }

    e->start = start;
    e->end = first + end;
    ngx_str_set(&e->text, "\"chat.completion.chunk\"");

    ev->nedits++;
}


/*
 * The gateway asks for usage the client did not ask for; OpenAI then adds
 * "usage":null to every chunk, which such a client would never see. The
 * member is cut from the raw event, whose data line is passed on as it
 * is: end is the offset in the data just after null.
 */

static void
ngx_http_llm_openai_cut_usage_null(ngx_http_llm_sse_event_t *ev, size_t end)
{
    u_char  *start, *p, *last, *first;

    first = ev->data.data;
    last = ev->data.data + ev->data.len;

    if (first < ev->raw.data || last > ev->raw.data + ev->raw.len
        || end < sizeof("{\"usage\":null") - 1 || end > ev->data.len)
    {
        /* data joined from several lines: not in raw as it is */
        return;
    }

    p = first + end - (sizeof("null") - 1);

    if (ngx_strncmp(p, "null", sizeof("null") - 1) != 0) {
        return;
    }

    while (p > first && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    if (p == first || *--p != ':') {
        return;
    }

    while (p > first && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    if (p - first < (ssize_t) sizeof("\"usage\"") - 1
        || ngx_strncmp(p - (sizeof("\"usage\"") - 1), "\"usage\"",
                       sizeof("\"usage\"") - 1) != 0)
    {
        /* a key written with escapes: left as it is */
        return;
    }

    p -= sizeof("\"usage\"") - 1;

    start = p;
    end += (size_t) first;        /* now an address */

    while (p > first && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    if (p > first && p[-1] == ',') {
        /* "...,"usage":null": the comma before goes with it */
        start = p - 1;

    } else {
        /* "{"usage":null, ...": the comma after goes with it */
        p = (u_char *) end;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p < last && *p == ',') {
            end = (size_t) (p + 1);
        }
    }

    ev->edits[ev->nedits].start = start;
    ev->edits[ev->nedits].end = (u_char *) end;
    ngx_str_null(&ev->edits[ev->nedits].text);
    ev->nedits++;
}


static void
ngx_http_llm_openai_number(ngx_http_llm_openai_scan_t *scan, u_char *s,
    size_t len)
{
    int64_t  *dst;

    if (scan->in != NGX_HTTP_LLM_OA_USAGE) {
        return;
    }

    if (scan->depth == 2) {
        dst = (scan->usage_key == NGX_HTTP_LLM_OA_PROMPT)
              ? &scan->usage.prompt
              : (scan->usage_key == NGX_HTTP_LLM_OA_COMPLETION)
                ? &scan->usage.completion : NULL;

    } else if (scan->depth == 3 && scan->in_details
               && scan->details_key == NGX_HTTP_LLM_OA_CACHED)
    {
        dst = &scan->usage.cached;

    } else {
        return;
    }

    if (dst == NULL) {
        return;
    }

    ngx_http_llm_openai_count(scan, dst, s, len);
}


/* a count of tokens: digits only, 12 at most (NGX_HTTP_LLM_TOKENS_MAX) */

static ngx_inline void
ngx_http_llm_openai_count(ngx_http_llm_openai_scan_t *scan, int64_t *dst,
    u_char *s, size_t len)
{
    size_t   i;
    int64_t  n;

    n = 0;

    for (i = 0; i < len && i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return;
        }

        n = n * 10 + (s[i] - '0');
    }

    if (i == len) {
        *dst = n;
        scan->has_usage = 1;
    }
}


static void
ngx_http_llm_openai_string(ngx_http_llm_openai_scan_t *scan, u_char *s,
    size_t len)
{
    if (scan->in == NGX_HTTP_LLM_OA_CHOICES && scan->depth > 2) {
        scan->content += scan->js.size;
    }

    if (scan->depth == 1 && scan->key == NGX_HTTP_LLM_OA_OBJECT
        && !(scan->js.size == sizeof("chat.completion.chunk") - 1
             && ngx_http_llm_jscan_is(s, "chat.completion.chunk")))
    {
        scan->object_end = scan->js.end;
        scan->object_len = scan->js.size;
    }
}


static void
ngx_http_llm_openai_open(ngx_http_llm_openai_scan_t *scan)
{
    if (scan->depth == 1) {
        scan->in = scan->key;

    } else if (scan->depth == 2) {
        if (scan->in == NGX_HTTP_LLM_OA_CHOICES) {
            scan->choices++;

        } else if (scan->in == NGX_HTTP_LLM_OA_USAGE
                   && scan->usage_key == NGX_HTTP_LLM_OA_DETAILS)
        {
            scan->in_details = 1;
        }
    }

    scan->depth++;
}


static void
ngx_http_llm_openai_close(ngx_http_llm_openai_scan_t *scan)
{
    scan->depth--;

    if (scan->depth == 0) {
        scan->closed = 1;

    } else if (scan->depth == 1) {
        scan->in = NGX_HTTP_LLM_OA_OTHER;

    } else if (scan->depth == 2) {
        scan->in_details = 0;
    }
}


static void
ngx_http_llm_openai_key(ngx_http_llm_openai_scan_t *scan, u_char *s,
    size_t len)
{
#define ngx_http_llm_oa_is(k)                                                \
    (len == sizeof(k) - 1 && ngx_http_llm_jscan_is(s, k))

    if (scan->depth == 1) {
        scan->key = ngx_http_llm_oa_is("usage") ? NGX_HTTP_LLM_OA_USAGE
                    : ngx_http_llm_oa_is("choices") ? NGX_HTTP_LLM_OA_CHOICES
                    : ngx_http_llm_oa_is("error") ? NGX_HTTP_LLM_OA_ERROR
                    : ngx_http_llm_oa_is("object") ? NGX_HTTP_LLM_OA_OBJECT
                    : NGX_HTTP_LLM_OA_OTHER;

        if (scan->key == NGX_HTTP_LLM_OA_ERROR) {
            scan->has_error = 1;

        } else if (scan->key == NGX_HTTP_LLM_OA_USAGE) {
            /* a member twice: the last one counts, as JSON parsers read */
            ngx_memzero(&scan->usage, sizeof(ngx_http_llm_usage_t));
            scan->has_usage = 0;
        }

    } else if (scan->depth == 2 && scan->in == NGX_HTTP_LLM_OA_USAGE) {
        scan->usage_key =
            ngx_http_llm_oa_is("prompt_tokens") ? NGX_HTTP_LLM_OA_PROMPT
            : ngx_http_llm_oa_is("completion_tokens")
              ? NGX_HTTP_LLM_OA_COMPLETION
            : ngx_http_llm_oa_is("prompt_tokens_details")
              ? NGX_HTTP_LLM_OA_DETAILS
            : NGX_HTTP_LLM_OA_OTHER;

    } else if (scan->depth == 3 && scan->in == NGX_HTTP_LLM_OA_CHOICES) {
        if (ngx_http_llm_oa_is("delta")) {
            scan->deltas++;
        }

    } else if (scan->depth == 3 && scan->in_details) {
        scan->details_key = ngx_http_llm_oa_is("cached_tokens")
                            ? NGX_HTTP_LLM_OA_CACHED : NGX_HTTP_LLM_OA_OTHER;
    }

#undef ngx_http_llm_oa_is
}


static ngx_int_t
ngx_http_llm_openai_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    ngx_http_llm_openai_scan_t  *scan = js->data;

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_OBJECT:
    case NGX_HTTP_LLM_JSCAN_ARRAY:
        ngx_http_llm_openai_open(scan);
        break;

    case NGX_HTTP_LLM_JSCAN_END:
        ngx_http_llm_openai_close(scan);
        break;

    case NGX_HTTP_LLM_JSCAN_KEY:
        ngx_http_llm_openai_key(scan, js->text, js->len);
        break;

    case NGX_HTTP_LLM_JSCAN_STRING:
        ngx_http_llm_openai_string(scan, js->text, js->len);
        break;

    case NGX_HTTP_LLM_JSCAN_NUMBER:
        ngx_http_llm_openai_number(scan, js->text,
                                   js->size > js->len ? js->size : js->len);
        break;

    case NGX_HTTP_LLM_JSCAN_NULL:
        if (scan->depth == 1 && scan->key == NGX_HTTP_LLM_OA_USAGE) {
            scan->usage_null = js->end;
        }

        break;

    default:
        break;
    }

    return NGX_OK;
}


static void
ngx_http_llm_openai_scan_init(ngx_http_llm_openai_scan_t *scan)
{
    ngx_memzero(&scan->depth, sizeof(ngx_http_llm_openai_scan_t)
                              - offsetof(ngx_http_llm_openai_scan_t, depth));

    ngx_http_llm_jscan_init(&scan->js, ngx_http_llm_openai_token, scan);
}


/* the document is complete: what it told goes into the request */

static ngx_int_t
ngx_http_llm_openai_scan_done(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_openai_scan_t *scan)
{
    if (scan->over || ngx_http_llm_jscan_finish(&scan->js) != NGX_OK) {
        scan->over = 1;
        return NGX_ERROR;
    }

    scan->over = 1;

    ctx->content_bytes += scan->content;

    if (scan->has_usage) {
        ctx->usage = scan->usage;
        ctx->usage.reported = 1;
    }

    return NGX_OK;
}


/*
 * A request from Anthropic's door, in OpenAI's format: the converted tree
 * with the target's model, and for streams a request for the usage chunk.
 */

ngx_int_t
ngx_http_llm_openai_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t            options;
    ngx_http_llm_json_t  *tree, *v, *o;
    ngx_http_llm_jbuf_t   b;

    static ngx_str_t      cache_control = ngx_string("cache_control");

    tree = ngx_http_llm_chat_tree(r, ctx);
    if (tree == NULL) {
        return NGX_ERROR;
    }

    ngx_http_llm_jbuf_init(&b, r->pool, ctx->body_length + 256);

    ngx_http_llm_jbuf_lit(&b, "{\"model\":");
    ngx_http_llm_jbuf_qstr(&b, &ctx->target_model);

    options = 0;

    for (v = tree->child; v; v = v->next) {

        /* the gateway's "cache" member is left out, as splicing does */

        if (v->key.len == 5
            && (ngx_strncmp(v->key.data, "model", 5) == 0
                || ngx_strncmp(v->key.data, "cache", 5) == 0))
        {
            continue;
        }

        ngx_http_llm_jbuf_lit(&b, ",");
        ngx_http_llm_jbuf_str(&b, v->key.data, v->key.len);
        ngx_http_llm_jbuf_lit(&b, ":");

        if (ctx->chat.stream && v->key.len == 14
            && ngx_strncmp(v->key.data, "stream_options", 14) == 0)
        {
            options = 1;

            ngx_http_llm_jbuf_lit(&b, "{\"include_usage\":true");

            if (v->type == NGX_HTTP_LLM_JSON_OBJECT) {
                for (o = v->child; o; o = o->next) {
                    if (o->key.len == 13
                        && ngx_strncmp(o->key.data, "include_usage", 13) == 0)
                    {
                        continue;
                    }

                    ngx_http_llm_jbuf_lit(&b, ",");
                    ngx_http_llm_jbuf_str(&b, o->key.data, o->key.len);
                    ngx_http_llm_jbuf_lit(&b, ":");
                    ngx_http_llm_jbuf_value(&b, o);
                }
            }

            ngx_http_llm_jbuf_lit(&b, "}");
            continue;
        }

        /*
         * Anthropic's cache breakpoints: not OpenAI's API (cache.md); on
         * messages and their parts (levels 2 and 4), on tools (level 2)
         */

        ngx_http_llm_jbuf_value_without(&b, v, &cache_control,
                                        ngx_http_llm_openai_levels(v));
    }

    if (ctx->chat.stream && !options) {
        ngx_http_llm_jbuf_lit(&b, ",\"stream_options\":"
                                  "{\"include_usage\":true}");
    }

    ngx_http_llm_jbuf_lit(&b, "}");

    if (b.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start);
}


static ngx_uint_t
ngx_http_llm_openai_levels(ngx_http_llm_json_t *v)
{
    if (v->key.len == 8 && ngx_strncmp(v->key.data, "messages", 8) == 0) {
        return 4;
    }

    if (v->key.len == 5 && ngx_strncmp(v->key.data, "tools", 5) == 0) {
        return 2;
    }

    return 0;
}


/* decoders: OpenAI's responses for clients of Anthropic's door */

static ngx_http_llm_finish_e
ngx_http_llm_openai_finish(ngx_http_llm_json_t *v)
{
    if (ngx_http_llm_json_eq(v, "length")) {
        return NGX_HTTP_LLM_FINISH_LENGTH;
    }

    if (ngx_http_llm_json_eq(v, "tool_calls")
        || ngx_http_llm_json_eq(v, "function_call"))
    {
        return NGX_HTTP_LLM_FINISH_TOOL_CALLS;
    }

    if (ngx_http_llm_json_eq(v, "content_filter")) {
        return NGX_HTTP_LLM_FINISH_CONTENT_FILTER;
    }

    return NGX_HTTP_LLM_FINISH_STOP;
}


static ngx_int_t
ngx_http_llm_openai_usage(ngx_http_llm_canon_t *c, ngx_http_llm_json_t *u)
{
    if (!ngx_http_llm_json_is(u, NGX_HTTP_LLM_JSON_OBJECT)) {
        return NGX_OK;
    }

    return ngx_http_llm_canon_usage(c,
               ngx_http_llm_json_int(u, "prompt_tokens"),
               ngx_http_llm_json_int(u, "completion_tokens"),
               ngx_http_llm_json_int(ngx_http_llm_json_get(u,
                                         "prompt_tokens_details"),
                                     "cached_tokens"),
               -1);
}


static void
ngx_http_llm_openai_error_fields(ngx_http_llm_json_t *e,
    ngx_http_llm_perror_t *err)
{
    ngx_str_t  *s;

    s = ngx_http_llm_json_str(e, "message");
    if (s) {
        err->message = *s;
    }

    s = ngx_http_llm_json_str(e, "code");
    if (s == NULL) {
        s = ngx_http_llm_json_str(e, "type");
    }

    if (s) {
        err->type = *s;
    }
}


static ngx_int_t
ngx_http_llm_openai_message(ngx_http_llm_canon_t *c, ngx_http_llm_json_t *m,
    ngx_uint_t stream)
{
    int64_t               index;
    ngx_str_t            *s, *id, *name, *args;
    ngx_uint_t            i;
    ngx_http_llm_json_t  *calls, *call, *f;

    s = ngx_http_llm_json_str(m, "content");
    if (s && ngx_http_llm_canon_text(c, s) != NGX_OK) {
        return NGX_ERROR;
    }

    calls = ngx_http_llm_json_get(m, "tool_calls");
    if (!ngx_http_llm_json_is(calls, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_OK;
    }

    for (call = calls->child, i = 0; call; call = call->next, i++) {
        index = ngx_http_llm_json_int(call, "index");
        if (index < 0 || !stream) {
            index = i;
        }

        f = ngx_http_llm_json_get(call, "function");
        id = ngx_http_llm_json_str(call, "id");
        name = ngx_http_llm_json_str(f, "name");
        args = ngx_http_llm_json_str(f, "arguments");

        /* a stream's tool call begins with its id and name */

        if ((id || !stream)
            && ngx_http_llm_canon_tool(c, index, id, name) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (args
            && ngx_http_llm_canon_args(c, index, args->data, args->len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a legacy completion's choice: its text is the choice's own member */

static ngx_int_t
ngx_http_llm_openai_text(ngx_http_llm_canon_t *c, ngx_http_llm_json_t *choice)
{
    ngx_str_t  *s;

    s = ngx_http_llm_json_str(choice, "text");

    return (s && s->len) ? ngx_http_llm_canon_text(c, s) : NGX_OK;
}


ngx_int_t
ngx_http_llm_openai_decode_body(ngx_http_llm_canon_t *c, ngx_str_t *body)
{
    ngx_http_llm_json_t    *tree, *choice, *e;
    ngx_http_llm_perror_t   err;

    tree = ngx_http_llm_json_parse(&c->arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    e = ngx_http_llm_json_get(tree, "error");

    if (ngx_http_llm_json_is(e, NGX_HTTP_LLM_JSON_OBJECT)) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
        err.status = NGX_HTTP_BAD_GATEWAY;
        ngx_http_llm_openai_error_fields(e, &err);

        return ngx_http_llm_canon_error(c, &err);
    }

    choice = ngx_http_llm_json_get(tree, "choices");
    if (!ngx_http_llm_json_is(choice, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_DECLINED;
    }

    choice = choice->child;

    if (ngx_http_llm_canon_start(c, ngx_http_llm_json_str(tree, "id"),
                                 ngx_http_llm_json_str(tree, "model"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (choice) {
        if (ngx_http_llm_openai_message(c,
                                        ngx_http_llm_json_get(choice,
                                                              "message"),
                                        0)
            != NGX_OK
            || ngx_http_llm_openai_text(c, choice) != NGX_OK
            || ngx_http_llm_canon_finish(c, ngx_http_llm_openai_finish(
                                ngx_http_llm_json_get(choice,
                                                      "finish_reason")))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llm_openai_usage(c, ngx_http_llm_json_get(tree, "usage"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llm_canon_end(c);
}


ngx_int_t
ngx_http_llm_openai_decode_event(ngx_http_llm_canon_t *c,
    ngx_http_llm_sse_event_t *ev)
{
    ngx_http_llm_json_t    *tree, *choice, *e, *finish;
    ngx_http_llm_perror_t   err;

    if (ev->data.len == sizeof("[DONE]") - 1
        && ngx_strncmp(ev->data.data, "[DONE]", sizeof("[DONE]") - 1) == 0)
    {
        return ngx_http_llm_canon_end(c);
    }

    tree = ngx_http_llm_json_parse(&c->arena, ev->data.data, ev->data.len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    e = ngx_http_llm_json_get(tree, "error");

    if (ngx_http_llm_json_is(e, NGX_HTTP_LLM_JSON_OBJECT)) {
        ngx_memzero(&err, sizeof(ngx_http_llm_perror_t));
        err.status = NGX_HTTP_BAD_GATEWAY;
        ngx_http_llm_openai_error_fields(e, &err);

        return ngx_http_llm_canon_error(c, &err);
    }

    if (ngx_http_llm_canon_start(c, ngx_http_llm_json_str(tree, "id"),
                                 ngx_http_llm_json_str(tree, "model"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    choice = ngx_http_llm_json_get(tree, "choices");

    if (ngx_http_llm_json_is(choice, NGX_HTTP_LLM_JSON_ARRAY)
        && choice->child)
    {
        choice = choice->child;

        if (ngx_http_llm_openai_message(c,
                                        ngx_http_llm_json_get(choice,
                                                              "delta"),
                                        1)
            != NGX_OK
            || ngx_http_llm_openai_text(c, choice) != NGX_OK)
        {
            return NGX_ERROR;
        }

        finish = ngx_http_llm_json_get(choice, "finish_reason");

        if (ngx_http_llm_json_is(finish, NGX_HTTP_LLM_JSON_STRING)
            && ngx_http_llm_canon_finish(c, ngx_http_llm_openai_finish(finish))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_llm_openai_usage(c, ngx_http_llm_json_get(tree, "usage"));
}


ngx_int_t
ngx_http_llm_openai_decode_error(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_llm_perror_t *err)
{
    ngx_http_llm_json_t   *tree;
    ngx_http_llm_arena_t   arena;

    ngx_http_llm_arena_init(&arena, r->pool);

    tree = ngx_http_llm_json_parse(&arena, body->data, body->len);
    if (tree == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_llm_openai_error_fields(ngx_http_llm_json_get(tree, "error"),
                                     err);

    return NGX_OK;
}
