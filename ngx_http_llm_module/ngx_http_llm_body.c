
/*
 * Client request bodies, read once as they lie in memory or in a file:
 * validated and what routing needs recorded by the JSON scanner; trees
 * and the cache key built, when they are needed, by the scanner again.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_parse.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_jscan.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_dialect.h"


#define NGX_HTTP_LLM_READ_CHUNK  65536

#define ngx_http_llm_noinline    __attribute__((noinline))


typedef enum {
    NGX_HTTP_LLM_KEY_NONE = 0,
    NGX_HTTP_LLM_KEY_OTHER,
    NGX_HTTP_LLM_KEY_MODEL,
    NGX_HTTP_LLM_KEY_MESSAGES,
    NGX_HTTP_LLM_KEY_STREAM,
    NGX_HTTP_LLM_KEY_STREAM_OPTIONS,
    NGX_HTTP_LLM_KEY_MAX_TOKENS,
    NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS,
    NGX_HTTP_LLM_KEY_USER,
    NGX_HTTP_LLM_KEY_TOOLS,
    NGX_HTTP_LLM_KEY_TEMPERATURE,
    NGX_HTTP_LLM_KEY_INCLUDE_USAGE,
    NGX_HTTP_LLM_KEY_SYSTEM,
    NGX_HTTP_LLM_KEY_CACHE,
    NGX_HTTP_LLM_KEY_NO_CACHE,
    NGX_HTTP_LLM_KEY_NO_STORE,
    NGX_HTTP_LLM_KEY_PROMPT,
    NGX_HTTP_LLM_KEY_TOOL_CHOICE,
    NGX_HTTP_LLM_KEY_STOP,
    NGX_HTTP_LLM_KEY_MAX_OUTPUT_TOKENS,   /* found, read as MAX_TOKENS */
    NGX_HTTP_LLM_KEY_STORE,
    NGX_HTTP_LLM_KEY_BACKGROUND
} ngx_http_llm_key_e;


/* deeper, in chat's messages and tools: the value whose shape is checked */
typedef enum {
    NGX_HTTP_LLM_SHAPE_NONE = 0,
    NGX_HTTP_LLM_SHAPE_CONTENT,         /* a message's "content" */
    NGX_HTTP_LLM_SHAPE_PART,            /* an item of its array */
    NGX_HTTP_LLM_SHAPE_PART_TYPE,
    NGX_HTTP_LLM_SHAPE_PART_TEXT,
    NGX_HTTP_LLM_SHAPE_TOOL_TYPE,
    NGX_HTTP_LLM_SHAPE_FUNCTION,
    NGX_HTTP_LLM_SHAPE_FUNCTION_NAME
} ngx_http_llm_shape_e;


#define ngx_http_llm_key_bit(key)  ((ngx_uint_t) 1 << NGX_HTTP_LLM_KEY_##key)

/*
 * The members of the body's root the gateway reads, by door. The chat's
 * "tool_choice" and "stop" are checked here, as OpenAI checks them: a
 * translation would rewrite what it could not read.
 */

#define NGX_HTTP_LLM_CHAT_KEYS                                                \
    (ngx_http_llm_key_bit(MODEL) | ngx_http_llm_key_bit(MESSAGES)             \
     | ngx_http_llm_key_bit(STREAM) | ngx_http_llm_key_bit(STREAM_OPTIONS)    \
     | ngx_http_llm_key_bit(MAX_TOKENS)                                       \
     | ngx_http_llm_key_bit(MAX_COMPLETION_TOKENS)                            \
     | ngx_http_llm_key_bit(USER) | ngx_http_llm_key_bit(TOOLS)               \
     | ngx_http_llm_key_bit(TEMPERATURE) | ngx_http_llm_key_bit(CACHE)        \
     | ngx_http_llm_key_bit(TOOL_CHOICE) | ngx_http_llm_key_bit(STOP))

/* embeddings: their input is read from the tree (embeddings.c) */
#define NGX_HTTP_LLM_EMBEDDINGS_KEYS                                          \
    (ngx_http_llm_key_bit(MODEL) | ngx_http_llm_key_bit(USER)                 \
     | ngx_http_llm_key_bit(CACHE))

/* Anthropic Messages, at the /v1/messages door */
#define NGX_HTTP_LLM_MESSAGES_KEYS                                            \
    (ngx_http_llm_key_bit(MODEL) | ngx_http_llm_key_bit(MESSAGES)             \
     | ngx_http_llm_key_bit(STREAM) | ngx_http_llm_key_bit(MAX_TOKENS)        \
     | ngx_http_llm_key_bit(TOOLS) | ngx_http_llm_key_bit(SYSTEM)             \
     | ngx_http_llm_key_bit(TEMPERATURE) | ngx_http_llm_key_bit(CACHE))

/* legacy text completions, at /v1/completions: "prompt", not "messages" */
#define NGX_HTTP_LLM_COMPLETIONS_KEYS                                         \
    (ngx_http_llm_key_bit(MODEL) | ngx_http_llm_key_bit(PROMPT)               \
     | ngx_http_llm_key_bit(STREAM) | ngx_http_llm_key_bit(STREAM_OPTIONS)    \
     | ngx_http_llm_key_bit(MAX_TOKENS) | ngx_http_llm_key_bit(USER)          \
     | ngx_http_llm_key_bit(TEMPERATURE))

/*
 * OpenAI's Responses API: its input is read from the tree (responses.c);
 * "store" and "background" are booleans, as OpenAI refuses another type,
 * which is not "not true"
 */
#define NGX_HTTP_LLM_RESPONSES_KEYS                                           \
    (ngx_http_llm_key_bit(MODEL) | ngx_http_llm_key_bit(STREAM)               \
     | ngx_http_llm_key_bit(MAX_OUTPUT_TOKENS) | ngx_http_llm_key_bit(USER)   \
     | ngx_http_llm_key_bit(TOOLS) | ngx_http_llm_key_bit(TEMPERATURE)        \
     | ngx_http_llm_key_bit(STORE) | ngx_http_llm_key_bit(BACKGROUND))


/* the scanner's pass: validation and what routing and accounting read */
typedef struct {
    ngx_http_llm_jscan_t       js;
    ngx_uint_t                 depth;
    ngx_http_llm_key_e         key;           /* key of a depth-1 value */
    ngx_http_llm_key_e         container;     /* depth-1 key we are inside */
    ngx_http_llm_key_e         sub_key;       /* key in stream_options */
    ngx_uint_t                 seen;          /* known keys seen, a bit each */
    ngx_uint_t                 known;         /* the door's keys, a bit each */
    ngx_pool_t                *pool;
    ngx_http_llm_chat_t       *chat;
    ngx_http_llm_problem_t    *problem;
    ngx_http_llm_main_conf_t  *lmcf;
    off_t                      member_end;    /* of the last root member */
    ngx_uint_t                 prompt_items;  /* of the prompt's array */
    ngx_uint_t                 prompt_tokens; /* of one of its arrays */
    ngx_uint_t                 prompt_kind;   /* what its array holds */
    ngx_http_llm_shape_e       shape;         /* of the next value */
    ngx_uint_t                 shape_end;     /* the depth whose end is */
                                              /* checked, 0 none */
    ngx_uint_t                 parts;         /* of a message's content */
    const char                *part_text;     /* its "text": what it is */
    /* "llm_cache on": the cache key's digest fed in the same pass */
    ngx_http_llm_digest_t     *digest;
    unsigned                   root:1;
    unsigned                   messages:1;
    unsigned                   anthropic:1;   /* /v1/messages */
    unsigned                   embeddings:1;  /* /v1/embeddings */
    unsigned                   guarded:1;     /* a guard reads the tree */
    unsigned                   legacy:1;      /* /v1/completions */
    unsigned                   responses:1;   /* /v1/responses */
    unsigned                   chat_door:1;   /* /v1/chat/completions */
    unsigned                   in_content:1;  /* a content array */
    unsigned                   part_type:2;   /* 1 a string, 2 "text" */
    unsigned                   tool_function:1;  /* "type":"function" */
    unsigned                   has_function:1;
    unsigned                   in_function:1;
    unsigned                   function_name:1;
} ngx_http_llm_parser_t;


/* yajl's pass over a body the scanner refused: yajl's words for why */
typedef struct {
    yajl_handle                yajl;
    off_t                      base;          /* offset of current chunk */
} ngx_http_llm_builder_t;


typedef ngx_int_t (*ngx_http_llm_feed_pt)(void *data, u_char *buf,
    size_t len, off_t base);
typedef ngx_int_t (*ngx_http_llm_token_pt)(ngx_http_llm_parser_t *p,
    ngx_uint_t token);


static void ngx_http_llm_parser_init(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_parser_t *p,
    ngx_http_llm_chat_t *chat, ngx_http_llm_problem_t *problem);
static ngx_int_t ngx_http_llm_scan(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_feed_pt feed, void *data,
    ngx_uint_t grow);
static ngx_int_t ngx_http_llm_feed_jscan(void *data, u_char *buf,
    size_t len, off_t base);
static ngx_int_t ngx_http_llm_feed_yajl(void *data, u_char *buf,
    size_t len, off_t base);
static ngx_int_t ngx_http_llm_build(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_builder_t *b);
static ngx_int_t ngx_http_llm_rescan(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_jscan_handler_pt handler,
    void *data);
static ngx_int_t ngx_http_llm_duplicate(ngx_http_request_t *r,
    ngx_http_llm_problem_t *problem, ngx_str_t *name);
static ngx_int_t ngx_http_llm_not_json(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_parser_t *p);
static ngx_int_t ngx_http_llm_refuse(ngx_http_llm_parser_t *p,
    const char *param, const char *fmt, ...);
static ngx_int_t ngx_http_llm_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_token_digest(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_root_token(ngx_http_llm_parser_t *p,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_prompt_item(ngx_http_llm_parser_t *p,
    ngx_uint_t kind);
static ngx_int_t ngx_http_llm_scalar(ngx_http_llm_parser_t *p,
    const char *type);
static ngx_int_t ngx_http_llm_null(ngx_http_llm_parser_t *p);
static const char *ngx_http_llm_type_name(ngx_http_llm_parser_t *p,
    const char *type);
static ngx_int_t ngx_http_llm_shape(ngx_http_llm_parser_t *p,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_shape_end(ngx_http_llm_parser_t *p,
    ngx_uint_t token);
static ngx_int_t ngx_http_llm_boolean(ngx_http_llm_parser_t *p,
    ngx_uint_t value);
static ngx_int_t ngx_http_llm_number(ngx_http_llm_parser_t *p);
static ngx_int_t ngx_http_llm_string(ngx_http_llm_parser_t *p);
static ngx_uint_t ngx_http_llm_control(u_char *s, size_t n);
static ngx_int_t ngx_http_llm_open(ngx_http_llm_parser_t *p,
    ngx_uint_t map);
static ngx_int_t ngx_http_llm_close(ngx_http_llm_parser_t *p);
static ngx_int_t ngx_http_llm_key(ngx_http_llm_parser_t *p);
static ngx_http_llm_key_e ngx_http_llm_key_find(u_char *s, size_t len);
static void ngx_http_llm_member_end(ngx_http_llm_parser_t *p,
    ngx_http_llm_key_e key);
static ngx_int_t ngx_http_llm_cache_key(ngx_http_llm_parser_t *p,
    u_char *s, size_t len);
static ngx_uint_t ngx_http_llm_route_needs_tree(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *model);


/* the root's keys as the client writes them, in ngx_http_llm_key_e's order */
static const char  *ngx_http_llm_key_names[] = {
    NULL,
    NULL,
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "user",
    "tools",
    "temperature",
    NULL,                      /* include_usage, in stream_options */
    "system",
    "cache",
    NULL,                      /* no-cache and no-store, in cache */
    NULL,
    "prompt",
    "tool_choice",
    "stop",
    "max_output_tokens",
    "store",
    "background"
};


static const char  ngx_http_llm_a_string[] = "a string";


/*
 * Records the body as received, region by region, before proxying
 * consumes its buffers: every attempt is built from these regions.
 */

ngx_int_t
ngx_http_llm_read_segments(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    off_t                    offset;
    ngx_buf_t               *b;
    ngx_chain_t             *cl;
    ngx_http_llm_segment_t  *s;

    /* the array lives in the ctx: one allocation fewer, for its room */

    if (ngx_array_init(&ctx->segments_array, r->pool, 2,
                       sizeof(ngx_http_llm_segment_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->segments = &ctx->segments_array;

    offset = 0;
    ctx->client_body = r->request_body ? r->request_body->bufs : NULL;

    for (cl = ctx->client_body; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_special(b)) {
            continue;
        }

        s = ngx_array_push(ctx->segments);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->start = offset;

        if (b->in_file) {
            s->pos = NULL;
            s->file = b->file;
            s->file_pos = b->file_pos;
            offset += b->file_last - b->file_pos;

        } else {
            s->pos = b->pos;
            s->file = NULL;
            s->file_pos = 0;
            offset += b->last - b->pos;
        }

        s->end = offset;
    }

    ctx->body_length = offset;
    ctx->content_length = r->headers_in.content_length_n;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm body: %O bytes in %ui segments, file: %s",
                   offset, ctx->segments->nelts,
                   (r->request_body && r->request_body->temp_file)
                   ? "yes" : "no");

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_parse_chat(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_problem_t *problem)
{
    ngx_int_t                   rc;
    ngx_table_elt_t            *h;
    ngx_http_llm_tree_t        *tree;
    ngx_http_llm_arena_t       *arena;
    ngx_http_llm_memcap_t      *cap;
    ngx_http_llm_parser_t       p;
    ngx_http_llm_loc_conf_t    *llcf;
    ngx_http_llm_jscan_sink_t   sink;

    if (ctx->body_length == 0) {
        return ngx_http_llm_problem(problem, NULL, NULL,
                                    "The request body is empty: a JSON "
                                    "object with \"model\" and \"%s\" is "
                                    "expected.",
                                    (ctx->endpoint
                                     == NGX_HTTP_LLM_EP_EMBEDDINGS
                                     || ctx->endpoint
                                        == NGX_HTTP_LLM_EP_RESPONSES)
                                    ? "input"
                                    : (ctx->endpoint
                                       == NGX_HTTP_LLM_EP_COMPLETIONS)
                                      ? "prompt" : "messages");
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    ngx_http_llm_parser_init(r, ctx, &p, &ctx->chat, problem);

    p.guarded = (llcf->guard != NULL || p.lmcf->entity_guards);

    /*
     * What the parse keeps beyond the body (the tree, the cache key's
     * member digests) is bounded by the body's size: values of a few bytes
     * each would otherwise cost ~80 bytes of tree apiece.
     */

    cap = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_memcap_t));
    if (cap == NULL) {
        return NGX_ERROR;
    }

    cap->max = (size_t) ngx_min((off_t) llcf->memory_max,
                               (off_t) llcf->memory_ratio * ctx->body_length
                               + NGX_HTTP_LLM_MEMORY_FLOOR);

    /*
     * legacy completions, token counts and Responses calls are not
     * cached: the cache stores and replays answers as chat completions
     * (docs/endpoints.md)
     */

    if ((llcf->cache != NGX_HTTP_LLM_CACHE_OFF || p.lmcf->route_cache)
        && !p.legacy && !p.responses
        && ctx->endpoint != NGX_HTTP_LLM_EP_COUNT_TOKENS)
    {
        ctx->digest = ngx_http_llm_digest_create(r->pool, cap);
        if (ctx->digest == NULL) {
            return NGX_ERROR;
        }

        /*
         * With "llm_cache on" a request is cacheable unless its client
         * says no (or its route's "cache" does): its key's digest is fed
         * in this same pass, whole values from a sink. Otherwise the key
         * is computed later, by a second pass, and only if the request
         * turns out to be cacheable (ngx_http_llm_body_digest).
         */

        h = ngx_http_llm_find_header(&r->headers_in.headers, "x-llm-cache");

        if (llcf->cache == NGX_HTTP_LLM_CACHE_ON
            && (h == NULL || h->value.len != 3
                || ngx_strncasecmp(h->value.data, (u_char *) "off", 3) != 0))
        {
            p.digest = ctx->digest;
            p.js.handler = ngx_http_llm_token_digest;

            ngx_memzero(&sink, sizeof(ngx_http_llm_jscan_sink_t));
            sink.pool = r->pool;
            p.js.sink = &sink;
        }
    }

    /*
     * One pass of the scanner validates the body and reads the members
     * the gateway uses; an OpenAI-format request to OpenAI-format
     * targets needs nothing more. It allocates nothing and copies only
     * the first bytes of a value (but for the cache key's, above).
     * Callgrind, per body byte: ~0.6 instructions in long strings, ~9 in
     * short chat messages, where yajl's lexer alone took 7 and 25,
     * before its callbacks and copies (a 256 KiB body through the
     * gateway: 2.18 M instructions with yajl, 0.3 M now; make bench).
     */

    rc = ngx_http_llm_scan(r, ctx, ngx_http_llm_feed_jscan, &p.js, 0);

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&p.js);
    }

    if (p.js.sink) {
        ngx_http_llm_jscan_sink_free(&sink);
        p.js.sink = NULL;
    }

    if (rc == NGX_ERROR && p.js.error) {
        return ngx_http_llm_not_json(r, ctx, &p);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (p.digest) {
        ctx->digested = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llm cache: the body's digest, %O bytes, in the "
                       "request's scan", ctx->body_length);

    } else if (p.js.handler == ngx_http_llm_token_digest) {
        /* over its memory: a digest of its own says so, if asked */
        ctx->digest = ngx_http_llm_digest_create(r->pool, cap);
        if (ctx->digest == NULL) {
            return NGX_ERROR;
        }
    }

    /*
     * A tree (the Anthropic door, a route with targets in other dialects,
     * a guard policy) needs every value whole: the scanner builds it in a
     * second pass over the body, now known to be valid, values longer
     * than its first bytes decoded whole into a sink, whichever buffers
     * or file reads they straddle. The first pass cannot: whether a tree
     * is needed may be known only once "model" is. Embeddings read their
     * input from it.
     */

    if (p.anthropic || p.embeddings || p.responses || p.guarded
        || ctx->chat.cache_control
        || (p.lmcf->trees && ctx->chat.model.data
            && ngx_http_llm_route_needs_tree(p.lmcf, &ctx->chat.model)))
    {
        arena = ngx_palloc(r->pool, sizeof(ngx_http_llm_arena_t));
        tree = ngx_palloc(r->pool, sizeof(ngx_http_llm_tree_t));
        if (arena == NULL || tree == NULL) {
            return NGX_ERROR;
        }

        ngx_http_llm_arena_init(arena, r->pool);
        ngx_http_llm_tree_init(tree, arena);

        arena->cap = cap;
        tree->unique_root = 1;

        rc = ngx_http_llm_rescan(r, ctx, ngx_http_llm_tree_token, tree);

        if (tree->duplicate.data) {
            return ngx_http_llm_duplicate(r, problem, &tree->duplicate);
        }

        if (cap->exceeded) {
            problem->status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
            problem->code = "request_too_large";
            problem->param = NULL;
            problem->len = ngx_snprintf(problem->message,
                                        sizeof(problem->message),
                                        "The request body holds too many "
                                        "small values: reading it would "
                                        "take more than the %uz bytes this "
                                        "gateway allows for a body of %O "
                                        "bytes (llm_request_memory).",
                                        cap->max, ctx->body_length)
                           - problem->message;
            return NGX_DECLINED;
        }

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "llm: the body's tree could not be built");
            return NGX_ERROR;
        }

        ctx->tree = tree->root;
    }

    if (ctx->chat.model.data == NULL) {
        return ngx_http_llm_problem(problem, "model",
                                    "missing_required_parameter",
                                    "you must provide a model parameter");
    }

    if (ctx->chat.model.len == 0) {
        return ngx_http_llm_problem(problem, "model", NULL,
                                    "'model' must not be empty");
    }

    if (p.embeddings || p.responses) {
        /* their input is checked by ngx_http_llm_embeddings_parse() and
           ngx_http_llm_responses_parse() */
        return NGX_OK;
    }

    if (p.legacy) {
        if (!p.messages) {
            return ngx_http_llm_problem(problem, "prompt",
                                        "missing_required_parameter",
                                        "Missing required parameter: "
                                        "'prompt'.");
        }

        return NGX_OK;
    }

    if (!p.messages) {
        return ngx_http_llm_problem(problem, "messages",
                                    "missing_required_parameter",
                                    "Missing required parameter: "
                                    "'messages'.");
    }

    if (ctx->chat.messages == 0) {
        return ngx_http_llm_problem(problem, "messages", NULL,
                                    "'messages' must contain at least one "
                                    "message");
    }

    if (p.anthropic && ctx->chat.max_tokens == -1
        && ctx->endpoint == NGX_HTTP_LLM_EP_MESSAGES)
    {
        return ngx_http_llm_problem(problem, "max_tokens",
                                    "missing_required_parameter",
                                    "max_tokens: Field required");
    }

    if (p.anthropic && ctx->tree) {
        /* Anthropic's door, /v1/messages and count_tokens alike */
        return ngx_http_llm_messages_check(ctx->tree, problem);
    }

    return NGX_OK;
}


/*
 * A body that is not JSON. The client is told why in yajl's words, at
 * the byte where yajl stopped, as before the scanner read bodies: yajl
 * reads the body again only on this path. The two documents yajl lets
 * through, a whole document followed by an unterminated string and VT or
 * FF taken for white space, are told in the scanner's words.
 */

static ngx_int_t
ngx_http_llm_not_json(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_parser_t *p)
{
    off_t                    at;
    size_t                   len;
    u_char                  *msg;
    ngx_int_t                rc;
    const char              *why;
    ngx_http_llm_segment_t  *seg;
    ngx_http_llm_problem_t  *problem;
    ngx_http_llm_builder_t   b;

    ngx_memzero(&b, sizeof(ngx_http_llm_builder_t));

    rc = ngx_http_llm_build(r, ctx, &b);

    if (rc == NGX_ERROR) {
        if (b.yajl) {
            yajl_free(b.yajl);
        }

        return NGX_ERROR;
    }

    msg = NULL;
    why = p->js.error;
    at = p->js.at;

    if (rc == NGX_DECLINED) {
        msg = yajl_get_error(b.yajl, 0, NULL, 0);

        if (msg) {
            /* yajl ends its message with a newline */
            len = ngx_strlen(msg);

            while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '
                           || msg[len - 1] == '.'))
            {
                msg[--len] = '\0';
            }

            why = (const char *) msg;
        }

        at = b.base + (off_t) yajl_get_bytes_consumed(b.yajl);
    }

    seg = ctx->segments ? ctx->segments->elts : NULL;

    if (seg && seg[0].pos && seg[0].end - seg[0].start >= 3
        && ngx_strncmp(seg[0].pos, "\xef\xbb\xbf", 3) == 0)
    {
        /* what editors on Windows write first, which JSON has not */
        why = "it begins with a UTF-8 byte order mark (EF BB BF), which "
              "JSON does not allow: send the body without it";
        at = 0;
    }

    problem = p->problem;
    problem->status = NGX_HTTP_BAD_REQUEST;
    problem->param = NULL;
    problem->code = NULL;
    problem->len = ngx_snprintf(problem->message, sizeof(problem->message),
                                "We could not parse the JSON body of your "
                                "request: %s (at byte %O).", why, at)
                   - problem->message;

    if (msg) {
        yajl_free_error(b.yajl, msg);
    }

    yajl_free(b.yajl);

    return NGX_DECLINED;
}


/*
 * "llm_cache on": the parser's token, then the digest's, in one pass. A
 * digest over its memory is dropped, never the request: it is then not
 * cached, and ngx_http_llm_body_digest() says why.
 */

static ngx_int_t
ngx_http_llm_token_digest(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    ngx_int_t               rc;
    ngx_http_llm_parser_t  *p;

    p = js->data;

    rc = ngx_http_llm_token(js, token);

    if (rc == NGX_OK && p->digest
        && ngx_http_llm_digest_feed(p->digest, js, token) != NGX_OK)
    {
        p->digest = NULL;
    }

    return rc;
}


/*
 * The cache key's digest of a body already parsed: a pass of its own,
 * made only for requests that are cacheable, which need not pay for it.
 */

ngx_int_t
ngx_http_llm_body_digest(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->digested) {
        return NGX_OK;
    }

    rc = ngx_http_llm_rescan(r, ctx, ngx_http_llm_digest_token,
                             ctx->digest);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "llm: this request's cache key would take more memory "
                      "than llm_request_memory allows: not cached");
        return NGX_DECLINED;
    }

    ctx->digested = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm cache: the body's digest, %O bytes", ctx->body_length);

    return NGX_OK;
}


static void
ngx_http_llm_parser_init(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_parser_t *p, ngx_http_llm_chat_t *chat,
    ngx_http_llm_problem_t *problem)
{
    /* the scanner's own state is its init's: its buffers need no zeros */

    ngx_memzero(&p->depth, sizeof(ngx_http_llm_parser_t)
                           - offsetof(ngx_http_llm_parser_t, depth));

    ngx_http_llm_jscan_init(&p->js, ngx_http_llm_token, p);

    p->pool = r->pool;
    p->chat = chat;
    p->problem = problem;
    p->known = NGX_HTTP_LLM_CHAT_KEYS;
    p->lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (ngx_http_llm_anthropic_door(ctx)) {
        p->anthropic = 1;
        p->known = NGX_HTTP_LLM_MESSAGES_KEYS;

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        p->embeddings = 1;
        p->known = NGX_HTTP_LLM_EMBEDDINGS_KEYS;

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS) {
        p->legacy = 1;
        p->known = NGX_HTTP_LLM_COMPLETIONS_KEYS;

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
        p->responses = 1;
        p->known = NGX_HTTP_LLM_RESPONSES_KEYS;

    } else {
        p->chat_door = 1;
    }
}


/*
 * The body's segments, in memory or read from its file, fed to a parser
 * in order.
 */

static ngx_int_t
ngx_http_llm_scan(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_feed_pt feed, void *data, ngx_uint_t grow)
{
    off_t                    offset, chunk;
    size_t                   size, buf_size;
    ssize_t                  n;
    u_char                  *buf;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_llm_segment_t  *s;

    buf = NULL;
    buf_size = 0;
    rc = NGX_OK;
    s = ctx->segments->elts;

    for (i = 0; i < ctx->segments->nelts && rc == NGX_OK; i++) {

        if (s[i].pos) {
            rc = feed(data, s[i].pos, s[i].end - s[i].start, s[i].start);
            continue;
        }

        for (offset = s[i].start; offset < s[i].end; offset += n) {

            /*
             * yajl lexes a token that spans two calls from its start again
             * on every call: reads as large as what was parsed before keep
             * a long string (a base64 image, say) from costing quadratic
             * time; the scanner takes pieces cut anywhere
             */

            chunk = grow ? ngx_max(offset, NGX_HTTP_LLM_READ_CHUNK)
                         : NGX_HTTP_LLM_READ_CHUNK;
            size = (size_t) ngx_min(s[i].end - offset, chunk);

            if (size > buf_size) {
                if (buf) {
                    ngx_pfree(r->pool, buf);
                }

                buf = ngx_palloc(r->pool, size);
                if (buf == NULL) {
                    rc = NGX_ERROR;
                    break;
                }

                buf_size = size;
            }

            n = ngx_read_file(s[i].file, buf, size,
                              s[i].file_pos + offset - s[i].start);

            if (n != (ssize_t) size) {
                rc = NGX_ERROR;
                break;
            }

            rc = feed(data, buf, size, offset);

            if (rc != NGX_OK) {
                break;
            }
        }
    }

    if (buf) {
        ngx_pfree(r->pool, buf);
    }

    return rc;
}


static ngx_int_t
ngx_http_llm_feed_jscan(void *data, u_char *buf, size_t len, off_t base)
{
    /* the scanner counts offsets itself: pieces come in order */

    return ngx_http_llm_jscan_feed(data, buf, len);
}


static ngx_int_t
ngx_http_llm_feed_yajl(void *data, u_char *buf, size_t len, off_t base)
{
    ngx_http_llm_builder_t  *b = data;

    b->base = base;

    return (yajl_parse(b->yajl, buf, len) == yajl_status_ok)
           ? NGX_OK : NGX_DECLINED;
}


/*
 * A yajl pass over the whole body, for its words on why it is not JSON:
 * NGX_DECLINED if yajl stopped it; the caller frees b->yajl (NULL if it
 * could not be made).
 */

static ngx_int_t
ngx_http_llm_build(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_builder_t *b)
{
    ngx_int_t  rc;

    /* yajl's verdict and words only: no callbacks */
    b->yajl = yajl_alloc(NULL, NULL, b);
    if (b->yajl == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_scan(r, ctx, ngx_http_llm_feed_yajl, b, 1);

    if (rc == NGX_OK) {
        b->base = ctx->body_length;

        if (yajl_complete_parse(b->yajl) != yajl_status_ok) {
            rc = NGX_DECLINED;
        }
    }

    return rc;
}


/*
 * A second pass of the scanner over a body it found valid, every value
 * whole from a sink, to a tree or the cache key's digest: NGX_ERROR if
 * the handler stopped it (the cap, or no memory).
 */

static ngx_int_t
ngx_http_llm_rescan(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_jscan_handler_pt handler, void *data)
{
    ngx_int_t                   rc;
    ngx_http_llm_jscan_t        js;
    ngx_http_llm_jscan_sink_t   sink;

    ngx_memzero(&sink, sizeof(ngx_http_llm_jscan_sink_t));
    sink.pool = r->pool;

    ngx_http_llm_jscan_init(&js, handler, data);
    js.sink = &sink;

    rc = ngx_http_llm_scan(r, ctx, ngx_http_llm_feed_jscan, &js, 0);

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    ngx_http_llm_jscan_sink_free(&sink);

    return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
}


/*
 * A name given twice at the top of a body read whole (a translation, a
 * guard): the name as the client wrote it, within a bound, is the param.
 */

static ngx_int_t
ngx_http_llm_duplicate(ngx_http_request_t *r, ngx_http_llm_problem_t *problem,
    ngx_str_t *name)
{
    u_char  *param;
    size_t   len;

    len = ngx_min(name->len, NGX_HTTP_LLM_MAX_MODEL);

    param = ngx_pnalloc(r->pool, len + 1);
    if (param == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(param, name->data, len);
    param[len] = '\0';

    return ngx_http_llm_problem(problem, (const char *) param, NULL,
                                "Duplicate key '%s' in the request body.",
                                param);
}


/* a 400 for the client */

static void
ngx_http_llm_vproblem(ngx_http_llm_problem_t *problem, const char *param,
    const char *code, const char *fmt, va_list args)
{
    problem->len = ngx_vslprintf(problem->message,
                                 problem->message + sizeof(problem->message),
                                 fmt, args)
                   - problem->message;

    problem->status = NGX_HTTP_BAD_REQUEST;
    problem->param = param;
    problem->code = code;
}


/* after parsing: returns NGX_DECLINED, the body is refused */

ngx_int_t
ngx_http_llm_problem(ngx_http_llm_problem_t *problem, const char *param,
    const char *code, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_http_llm_vproblem(problem, param, code, fmt, args);
    va_end(args);

    return NGX_DECLINED;
}


/* while scanning: returns NGX_DECLINED, which stops the scanner */

static ngx_int_t
ngx_http_llm_refuse(ngx_http_llm_parser_t *p, const char *param,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_http_llm_vproblem(p->problem, param, NULL, fmt, args);
    va_end(args);

    return NGX_DECLINED;
}


static const char *
ngx_http_llm_key_param(ngx_http_llm_parser_t *p, ngx_http_llm_key_e key)
{
    if (key == NGX_HTTP_LLM_KEY_MAX_TOKENS && p->responses) {
        key = NGX_HTTP_LLM_KEY_MAX_OUTPUT_TOKENS;
    }

    return ngx_http_llm_key_names[key];
}


/*
 * One of the root's keys the gateway reads, whichever door: by length
 * and letters, where a list's names were each compared.
 */

static ngx_http_llm_key_e
ngx_http_llm_key_find(u_char *s, size_t len)
{
#define ngx_http_llm_key_is(name)  ngx_http_llm_jscan_is(s, name)

    switch (len) {

    case 4:
        return ngx_http_llm_key_is("user") ? NGX_HTTP_LLM_KEY_USER
               : ngx_http_llm_key_is("stop") ? NGX_HTTP_LLM_KEY_STOP
               : NGX_HTTP_LLM_KEY_OTHER;

    case 5:
        return ngx_http_llm_key_is("model") ? NGX_HTTP_LLM_KEY_MODEL
               : ngx_http_llm_key_is("tools") ? NGX_HTTP_LLM_KEY_TOOLS
               : ngx_http_llm_key_is("cache") ? NGX_HTTP_LLM_KEY_CACHE
               : ngx_http_llm_key_is("store") ? NGX_HTTP_LLM_KEY_STORE
               : NGX_HTTP_LLM_KEY_OTHER;

    case 6:
        return ngx_http_llm_key_is("stream") ? NGX_HTTP_LLM_KEY_STREAM
               : ngx_http_llm_key_is("system") ? NGX_HTTP_LLM_KEY_SYSTEM
               : ngx_http_llm_key_is("prompt") ? NGX_HTTP_LLM_KEY_PROMPT
               : NGX_HTTP_LLM_KEY_OTHER;

    case 8:
        return ngx_http_llm_key_is("messages") ? NGX_HTTP_LLM_KEY_MESSAGES
               : NGX_HTTP_LLM_KEY_OTHER;

    case 10:
        return ngx_http_llm_key_is("max_tokens") ? NGX_HTTP_LLM_KEY_MAX_TOKENS
               : ngx_http_llm_key_is("background")
                 ? NGX_HTTP_LLM_KEY_BACKGROUND
               : NGX_HTTP_LLM_KEY_OTHER;

    case 11:
        return ngx_http_llm_key_is("temperature")
               ? NGX_HTTP_LLM_KEY_TEMPERATURE
               : ngx_http_llm_key_is("tool_choice")
                 ? NGX_HTTP_LLM_KEY_TOOL_CHOICE
               : NGX_HTTP_LLM_KEY_OTHER;

    case 14:
        return ngx_http_llm_key_is("stream_options")
               ? NGX_HTTP_LLM_KEY_STREAM_OPTIONS : NGX_HTTP_LLM_KEY_OTHER;

    case 17:
        return ngx_http_llm_key_is("max_output_tokens")
               ? NGX_HTTP_LLM_KEY_MAX_OUTPUT_TOKENS : NGX_HTTP_LLM_KEY_OTHER;

    case 21:
        return ngx_http_llm_key_is("max_completion_tokens")
               ? NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS
               : NGX_HTTP_LLM_KEY_OTHER;

    default:
        return NGX_HTTP_LLM_KEY_OTHER;
    }

#undef ngx_http_llm_key_is
}


/*
 * The shape of chat's messages and tools, which OpenAI checks and a
 * translation would skip silently where it is wrong: a content part's
 * "type" and "text", a tool's "type", "function" and its "name". A key
 * here names the value that comes next, at the depth of its object (a
 * message's members are at 3, a part's at 5, a tool's at 3, its
 * function's at 4); the key's value resets it. Keys of 8 bytes at most.
 */

static ngx_inline void
ngx_http_llm_shape_key(ngx_http_llm_parser_t *p, u_char *s, size_t len)
{
    switch (len) {

    case 4:
        if (p->depth == 5) {
            if (p->in_content) {
                p->shape = ngx_http_llm_jscan_is(s, "type")
                           ? NGX_HTTP_LLM_SHAPE_PART_TYPE
                           : ngx_http_llm_jscan_is(s, "text")
                             ? NGX_HTTP_LLM_SHAPE_PART_TEXT
                             : NGX_HTTP_LLM_SHAPE_NONE;
            }

        } else if (p->depth == 3) {
            if (p->container == NGX_HTTP_LLM_KEY_TOOLS
                && ngx_http_llm_jscan_is(s, "type"))
            {
                p->shape = NGX_HTTP_LLM_SHAPE_TOOL_TYPE;
            }

        } else if (p->depth == 4 && p->in_function
                   && ngx_http_llm_jscan_is(s, "name"))
        {
            p->shape = NGX_HTTP_LLM_SHAPE_FUNCTION_NAME;
        }

        break;

    case 7:
        if (p->depth == 3 && p->container == NGX_HTTP_LLM_KEY_MESSAGES
            && ngx_http_llm_jscan_is(s, "content"))
        {
            p->shape = NGX_HTTP_LLM_SHAPE_CONTENT;
        }

        break;

    case 8:
        if (p->depth == 3 && p->container == NGX_HTTP_LLM_KEY_TOOLS
            && ngx_http_llm_jscan_is(s, "function"))
        {
            p->shape = NGX_HTTP_LLM_SHAPE_FUNCTION;
        }

        break;
    }
}


/*
 * The scanner's tokens. Offsets are the scanner's: js.end is just after
 * the token, as yajl's bytes consumed were in its callbacks.
 */

static ngx_int_t
ngx_http_llm_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    ngx_http_llm_token_pt   handler;
    ngx_http_llm_parser_t  *p = js->data;

    /*
     * Below the root's members and their items -- a message's role and
     * content, a tool's schema, a member the gateway does not read --
     * only strings are counted and "cache_control" looked for: most of
     * a body's tokens are these, told apart before anything else
     */

    if (p->depth > 2 && p->container != NGX_HTTP_LLM_KEY_PROMPT) {

        /*
         * p->shape: a value of chat's messages or tools whose shape is
         * checked (never a key's, nor an end's)
         */

        handler = ngx_http_llm_shape;

        switch (token) {

        case NGX_HTTP_LLM_JSCAN_STRING:
            if (p->container == NGX_HTTP_LLM_KEY_MESSAGES
                || p->container == NGX_HTTP_LLM_KEY_SYSTEM)
            {
                p->chat->message_bytes += js->size;
            }

            if (p->shape == NGX_HTTP_LLM_SHAPE_NONE) {
                return NGX_OK;
            }

            if (p->shape == NGX_HTTP_LLM_SHAPE_CONTENT) {
                /* the most frequent content, not worth a call */
                p->shape = NGX_HTTP_LLM_SHAPE_NONE;
                return NGX_OK;
            }

            goto call;

        case NGX_HTTP_LLM_JSCAN_KEY:

            if (js->size <= 8 && p->chat_door) {
                ngx_http_llm_shape_key(p, js->text, js->size);
                return NGX_OK;
            }

            /* Anthropic's breakpoints on OpenAI's parts and tools */

            if (js->size == 13
                && (p->container == NGX_HTTP_LLM_KEY_MESSAGES
                    || p->container == NGX_HTTP_LLM_KEY_SYSTEM
                    || p->container == NGX_HTTP_LLM_KEY_TOOLS)
                && ngx_http_llm_jscan_is(js->text, "cache_control"))
            {
                p->chat->cache_control = 1;
            }

            return NGX_OK;

        case NGX_HTTP_LLM_JSCAN_OBJECT:
        case NGX_HTTP_LLM_JSCAN_ARRAY:
            if (p->shape != NGX_HTTP_LLM_SHAPE_NONE) {
                goto call;
            }

            if (p->depth == NGX_HTTP_LLM_MAX_JSON_DEPTH) {
                break;
            }

            p->depth++;
            return NGX_OK;

        case NGX_HTTP_LLM_JSCAN_END:
            p->depth--;

            if (p->depth != p->shape_end) {
                return NGX_OK;
            }

            handler = ngx_http_llm_shape_end;
            goto call;

        default:
            if (p->shape != NGX_HTTP_LLM_SHAPE_NONE) {
                goto call;
            }

            return NGX_OK;
        }
    }

    if (p->depth == 2 && token == NGX_HTTP_LLM_JSCAN_OBJECT
        && p->container == NGX_HTTP_LLM_KEY_MESSAGES)
    {
        /* a message */
        p->chat->messages++;
        p->depth++;
        return NGX_OK;
    }

    handler = ngx_http_llm_root_token;

call:

    /*
     * the handler's one call: the paths that return before it save no
     * registers and make no frame
     */

    return handler(p, token);
}


/*
 * The root's tokens and its members': a function apart, so that only
 * these save and restore the registers its inlined handlers use
 */

static ngx_http_llm_noinline ngx_int_t
ngx_http_llm_root_token(ngx_http_llm_parser_t *p, ngx_uint_t token)
{
    switch (token) {

    case NGX_HTTP_LLM_JSCAN_OBJECT:
        return ngx_http_llm_open(p, 1);

    case NGX_HTTP_LLM_JSCAN_ARRAY:
        return ngx_http_llm_open(p, 0);

    case NGX_HTTP_LLM_JSCAN_END:
        return ngx_http_llm_close(p);

    case NGX_HTTP_LLM_JSCAN_KEY:
        return ngx_http_llm_key(p);

    case NGX_HTTP_LLM_JSCAN_STRING:
        return ngx_http_llm_string(p);

    case NGX_HTTP_LLM_JSCAN_NUMBER:
        return ngx_http_llm_number(p);

    case NGX_HTTP_LLM_JSCAN_TRUE:
    case NGX_HTTP_LLM_JSCAN_FALSE:
        return ngx_http_llm_boolean(p, token == NGX_HTTP_LLM_JSCAN_TRUE);

    default: /* NGX_HTTP_LLM_JSCAN_NULL */
        return ngx_http_llm_null(p);
    }
}


/*
 * A legacy prompt is a string, or an array, not empty, of strings, of
 * token ids, or of arrays of token ids (not empty): anything else, or a
 * mix, is refused as OpenAI refuses it. kind: 's' a string, 't' a token
 * id, 'a' an array, as an item of the prompt's array.
 */

static ngx_int_t
ngx_http_llm_prompt_item(ngx_http_llm_parser_t *p, ngx_uint_t kind)
{
    if (kind && p->depth == 2
        && (p->prompt_kind == 0 || p->prompt_kind == kind))
    {
        p->prompt_kind = kind;
        p->prompt_items++;
        return NGX_OK;
    }

    if (p->depth == 3 && kind == 't') {
        p->prompt_tokens++;
        return NGX_OK;
    }

    return ngx_http_llm_refuse(p, "prompt", "Invalid 'prompt': expected a "
                               "string, an array of strings, an array of "
                               "token ids or an array of arrays of token "
                               "ids, not empty.");
}


/*
 * A value other than the one expected for a known key: type is what the
 * value is; only the keys the gateway reads are checked.
 */

static ngx_int_t
ngx_http_llm_scalar(ngx_http_llm_parser_t *p, const char *type)
{
    const char  *param;

    if (p->depth == 0) {
        return ngx_http_llm_refuse(p, NULL, "The request body must be a "
                                   "JSON object, not %s.", type);
    }

    if (p->depth == 1) {
        if (p->key == NGX_HTTP_LLM_KEY_OTHER) {
            p->key = NGX_HTTP_LLM_KEY_NONE;
            return NGX_OK;
        }

        param = ngx_http_llm_key_param(p, p->key);

        if (p->key == NGX_HTTP_LLM_KEY_STORE
            || p->key == NGX_HTTP_LLM_KEY_BACKGROUND)
        {
            return ngx_http_llm_refuse(p, param, "Invalid type for '%s': "
                                       "expected a boolean, but got %s "
                                       "instead.", param,
                                       ngx_http_llm_type_name(p, type));
        }

        return ngx_http_llm_refuse(p, param, "Invalid type for '%s': "
                                   "got %s.", param, type);
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS
        && p->sub_key == NGX_HTTP_LLM_KEY_INCLUDE_USAGE)
    {
        return ngx_http_llm_refuse(p, "stream_options", "Invalid type for "
                                   "'stream_options.include_usage': got %s.",
                                   type);
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_CACHE
        && (p->sub_key == NGX_HTTP_LLM_KEY_NO_CACHE
            || p->sub_key == NGX_HTTP_LLM_KEY_NO_STORE))
    {
        return ngx_http_llm_refuse(p, "cache", "Invalid type for "
                                   "'cache.%s': expected a boolean, but "
                                   "got %s.",
                                   p->sub_key == NGX_HTTP_LLM_KEY_NO_CACHE
                                   ? "no-cache" : "no-store", type);
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_MESSAGES) {
        return ngx_http_llm_refuse(p, "messages", "Invalid type for "
                                   "'messages[%ui]': expected an object, "
                                   "but got %s.", p->chat->messages, type);
    }

    if (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_PROMPT) {
        /* null, a boolean, an object in a prompt */
        return ngx_http_llm_prompt_item(p, 0);
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_TOOLS) {
        return ngx_http_llm_refuse(p, "tools", "Invalid type for "
                                   "'tools[%ui]': expected an object, but "
                                   "got %s.", p->chat->tools_n, type);
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STOP) {
        return ngx_http_llm_refuse(p, "stop", "Invalid type for 'stop': "
                                   "expected a string or an array of "
                                   "strings, but an item is %s.", type);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_null(ngx_http_llm_parser_t *p)
{
    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->options_end = p->js.end;
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    if (p->depth == 1) {
        switch (p->key) {

        /* an explicit null is the same as an absent optional parameter */

        case NGX_HTTP_LLM_KEY_STREAM:
        case NGX_HTTP_LLM_KEY_MAX_TOKENS:
        case NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS:
        case NGX_HTTP_LLM_KEY_USER:
        case NGX_HTTP_LLM_KEY_TOOLS:
        case NGX_HTTP_LLM_KEY_TEMPERATURE:
        case NGX_HTTP_LLM_KEY_SYSTEM:
        case NGX_HTTP_LLM_KEY_TOOL_CHOICE:
        case NGX_HTTP_LLM_KEY_STOP:
        case NGX_HTTP_LLM_KEY_STORE:
        case NGX_HTTP_LLM_KEY_BACKGROUND:
            p->key = NGX_HTTP_LLM_KEY_NONE;
            return NGX_OK;

        default:
            break;
        }
    }

    return ngx_http_llm_scalar(p, "null");
}


static ngx_int_t
ngx_http_llm_boolean(ngx_http_llm_parser_t *p, ngx_uint_t value)
{
    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_STREAM) {
        p->chat->stream = value ? 1 : 0;
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    if (p->depth == 1
        && (p->key == NGX_HTTP_LLM_KEY_STORE
            || p->key == NGX_HTTP_LLM_KEY_BACKGROUND))
    {
        /* read from the tree (responses.c) */
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_opt = value ? NGX_HTTP_LLM_OPT_ON
                                   : NGX_HTTP_LLM_OPT_OFF;
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_CACHE) {
        if (p->sub_key == NGX_HTTP_LLM_KEY_NO_CACHE) {
            p->chat->cache_no_cache = value ? 1 : 0;

        } else if (p->sub_key == NGX_HTTP_LLM_KEY_NO_STORE) {
            p->chat->cache_no_store = value ? 1 : 0;
        }

        return NGX_OK;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS
        && p->sub_key == NGX_HTTP_LLM_KEY_INCLUDE_USAGE)
    {
        p->chat->include_usage = value ? 1 : 0;
        p->chat->usage_end = p->js.end;
        return NGX_OK;
    }

    return ngx_http_llm_scalar(p, "a boolean");
}


static ngx_int_t
ngx_http_llm_number(ngx_http_llm_parser_t *p)
{
    char         number[32], *end;
    u_char      *s;
    size_t       i, len;
    int64_t      n;
    const char  *param;

    /* the number's first bytes: enough to read or to refuse it */

    s = p->js.text;
    len = p->js.len;

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_PROMPT) {
        /* a prompt of token ids: a token is some four bytes of text */
        p->chat->message_bytes += 4;

        /* a token id is an integer from 0, of 10 digits at most */

        if (p->js.size > 10 || len != p->js.size) {
            return ngx_http_llm_prompt_item(p, 0);
        }

        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return ngx_http_llm_prompt_item(p, 0);
            }
        }

        return ngx_http_llm_prompt_item(p, 't');
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_TEMPERATURE) {
        p->key = NGX_HTTP_LLM_KEY_NONE;

        if (p->js.size < sizeof(number)) {

            if (ngx_http_llm_short_decimal(s, len, &p->chat->temperature)
                == NGX_OK)
            {
                p->chat->has_temperature = 1;

            } else {
                ngx_memcpy(number, s, len);
                number[len] = '\0';

                p->chat->temperature = strtod(number, &end);
                p->chat->has_temperature = (*end == '\0');
            }
        }

        return NGX_OK;
    }

    if (p->depth == 1
        && (p->key == NGX_HTTP_LLM_KEY_MAX_TOKENS
            || p->key == NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS))
    {
        n = 0;

        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || n > 1000000000) {
                param = ngx_http_llm_key_param(p, p->key);

                return ngx_http_llm_refuse(p, param,
                                           "Invalid '%s': expected an "
                                           "integer from 1 to 1000000000, "
                                           "got %*s%s.", param,
                                           ngx_min(len, 32), s,
                                           (len > 32) ? "..." : "");
            }

            n = n * 10 + (s[i] - '0');
        }

        if (n == 0 || n > 1000000000) {
            param = ngx_http_llm_key_param(p, p->key);

            return ngx_http_llm_refuse(p, param,
                                       "Invalid '%s': expected an integer "
                                       "from 1 to 1000000000, got %*s%s.",
                                       param, ngx_min(len, 32), s,
                                       (len > 32) ? "..." : "");
        }

        /* max_completion_tokens supersedes the older max_tokens */

        if (p->key == NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS
            || p->chat->max_tokens == -1)
        {
            p->chat->max_tokens = n;
        }

        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    return ngx_http_llm_scalar(p, "a number");
}


static ngx_int_t
ngx_http_llm_string(ngx_http_llm_parser_t *p)
{
    u_char     *s;
    size_t      len;
    ngx_str_t  *dst;

    /*
     * the string's first NGX_HTTP_LLM_JSCAN_KEEP decoded bytes, and its
     * whole decoded length in js.size: the strings read here are short
     */

    s = p->js.text;
    len = p->js.len;

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth > 2 && p->container == NGX_HTTP_LLM_KEY_MESSAGES) {
        p->chat->message_bytes += p->js.size;
        return NGX_OK;
    }

    /* a legacy prompt: a string, or an array of strings (or of tokens) */

    if ((p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_PROMPT)
        || (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_PROMPT))
    {
        /* the whole decoded length: len is its first bytes only */
        p->chat->message_bytes += p->js.size;

        if (p->depth == 1) {
            p->messages = 1;
            p->key = NGX_HTTP_LLM_KEY_NONE;
            return NGX_OK;
        }

        return ngx_http_llm_prompt_item(p, 's');
    }

    /* Anthropic's system prompt: a string, or text blocks */

    if ((p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_SYSTEM)
        || (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_SYSTEM))
    {
        p->chat->message_bytes += p->js.size;

        if (p->depth == 1) {
            p->key = NGX_HTTP_LLM_KEY_NONE;
        }

        return NGX_OK;
    }

    if (p->depth == 1) {
        switch (p->key) {

        case NGX_HTTP_LLM_KEY_MODEL:

            /*
             * the name reaches response headers (x-llm-model), logs and
             * providers: a CR or LF in it would split a header
             */

            if (ngx_http_llm_control(s, len)) {
                return ngx_http_llm_refuse(p, "model", "Invalid 'model': "
                                           "control characters are not "
                                           "allowed.");
            }

            /* a client's name may become a node in the zone: bounded */

            if (p->js.size > NGX_HTTP_LLM_MAX_MODEL) {
                return ngx_http_llm_refuse(p, "model", "Invalid 'model': "
                                           "longer than "
                                           NGX_HTTP_LLM_MAX_MODEL_TEXT
                                           " bytes.");
            }

            dst = &p->chat->model;
            p->chat->model_end = p->js.end;
            break;

        case NGX_HTTP_LLM_KEY_USER:

            /* nothing reads more of it than its first bytes */

            dst = &p->chat->user;
            break;

        case NGX_HTTP_LLM_KEY_TOOL_CHOICE:
            p->key = NGX_HTTP_LLM_KEY_NONE;

            if ((len == 4 && ngx_http_llm_jscan_is(s, "none"))
                || (len == 4 && ngx_http_llm_jscan_is(s, "auto"))
                || (len == 8 && ngx_http_llm_jscan_is(s, "required")))
            {
                return NGX_OK;
            }

            return ngx_http_llm_refuse(p, "tool_choice", "Invalid value "
                                       "for 'tool_choice': expected "
                                       "'none', 'auto', 'required' or an "
                                       "object.");

        case NGX_HTTP_LLM_KEY_STOP:
            p->key = NGX_HTTP_LLM_KEY_NONE;
            return NGX_OK;

        default:
            return ngx_http_llm_scalar(p, "a string");
        }

        /* the scanner's buffer is reused for the next token */

        dst->data = ngx_pnalloc(p->pool, len + 1);
        if (dst->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(dst->data, s, len);
        dst->data[len] = '\0';
        dst->len = len;

        p->key = NGX_HTTP_LLM_KEY_NONE;
        return NGX_OK;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STOP) {
        return NGX_OK;
    }

    return ngx_http_llm_scalar(p, "a string");
}


/* a word of ngx_http_llm_control(): non-zero if it has one */

static ngx_inline uint64_t
ngx_http_llm_control_word(u_char *s)
{
    uint64_t  w, d;

    ngx_memcpy(&w, s, 8);
    d = w ^ 0x7f7f7f7f7f7f7f7fULL;

    return (((w - 0x2020202020202020ULL) & ~w)
            | ((d - 0x0101010101010101ULL) & ~d))
           & 0x8080808080808080ULL;
}


/*
 * Whether a control character, C0 or DEL, is among the n bytes at s:
 * eight at a time, a byte below 0x20, or a DEL (a zero once XORed with
 * 0x7f), found in a word by the borrow its subtraction makes
 */

static ngx_uint_t
ngx_http_llm_control(u_char *s, size_t n)
{
    u_char  *last;

    if (n < 8) {
        for (last = s + n; s < last; s++) {
            if (*s < 0x20 || *s == 0x7f) {
                return 1;
            }
        }

        return 0;
    }

    /* the last word may overlap the one before */

    last = s + n - 8;

    for ( /* void */ ; s < last; s += 8) {
        if (ngx_http_llm_control_word(s)) {
            return 1;
        }
    }

    return ngx_http_llm_control_word(last) != 0;
}


static ngx_int_t
ngx_http_llm_open(ngx_http_llm_parser_t *p, ngx_uint_t map)
{
    if (p->depth == NGX_HTTP_LLM_MAX_JSON_DEPTH) {
        return ngx_http_llm_refuse(p, NULL, "The request body is nested "
                                   "more than %d levels deep.",
                                   NGX_HTTP_LLM_MAX_JSON_DEPTH);
    }

    if (p->depth == 0) {
        if (!map) {
            return ngx_http_llm_scalar(p, "an array");
        }

        p->root = 1;
        p->depth = 1;
        p->chat->root_start = p->js.end;
        p->member_end = p->chat->root_start;

        return NGX_OK;
    }

    if (p->depth == 1) {
        switch (p->key) {

        case NGX_HTTP_LLM_KEY_MESSAGES:
        case NGX_HTTP_LLM_KEY_TOOLS:
            if (map) {
                return ngx_http_llm_scalar(p, "an object");
            }

            if (p->key == NGX_HTTP_LLM_KEY_MESSAGES) {
                p->messages = 1;
            }

            break;

        case NGX_HTTP_LLM_KEY_STREAM_OPTIONS:
            if (!map) {
                return ngx_http_llm_scalar(p, "an array");
            }

            p->chat->options_object = 1;
            p->chat->options_start = p->js.end;
            break;

        case NGX_HTTP_LLM_KEY_SYSTEM:
            if (map) {
                return ngx_http_llm_scalar(p, "an object");
            }

            break;

        case NGX_HTTP_LLM_KEY_PROMPT:
            if (map) {
                return ngx_http_llm_scalar(p, "an object");
            }

            p->messages = 1;
            p->prompt_items = 0;
            p->prompt_kind = 0;
            break;

        case NGX_HTTP_LLM_KEY_CACHE:
        case NGX_HTTP_LLM_KEY_TOOL_CHOICE:
            if (!map) {
                return ngx_http_llm_scalar(p, "an array");
            }

            break;

        case NGX_HTTP_LLM_KEY_STOP:
            if (map) {
                return ngx_http_llm_scalar(p, "an object");
            }

            break;

        case NGX_HTTP_LLM_KEY_OTHER:
            break;

        default:
            return ngx_http_llm_scalar(p, map ? "an object" : "an array");
        }

        p->container = p->key;
        p->key = NGX_HTTP_LLM_KEY_NONE;

    } else if (p->depth == 2) {

        if (p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS
            && p->sub_key == NGX_HTTP_LLM_KEY_INCLUDE_USAGE)
        {
            return ngx_http_llm_scalar(p, map ? "an object" : "an array");
        }

        if (p->container == NGX_HTTP_LLM_KEY_MESSAGES) {
            if (!map) {
                return ngx_http_llm_scalar(p, "an array");
            }

            p->chat->messages++;

        } else if (p->container == NGX_HTTP_LLM_KEY_TOOLS) {
            if (!map) {
                return ngx_http_llm_scalar(p, "an array");
            }

            p->chat->tools = 1;
            p->chat->tools_n++;

            /* its end is checked: whether a "function" tool has one */
            p->tool_function = 0;
            p->has_function = 0;
            p->shape_end = 2;

        } else if (p->container == NGX_HTTP_LLM_KEY_STOP) {
            return ngx_http_llm_scalar(p, map ? "an object" : "an array");

        } else if (p->container == NGX_HTTP_LLM_KEY_PROMPT) {
            if (map || ngx_http_llm_prompt_item(p, 'a') != NGX_OK) {
                return ngx_http_llm_prompt_item(p, 0);
            }

            p->prompt_tokens = 0;
        }

    } else if (p->container == NGX_HTTP_LLM_KEY_PROMPT) {
        /* deeper than an array of arrays of token ids */
        return ngx_http_llm_prompt_item(p, 0);
    }

    p->depth++;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_close(ngx_http_llm_parser_t *p)
{
    p->depth--;

    if (p->container == NGX_HTTP_LLM_KEY_PROMPT
        && ((p->depth == 1 && p->prompt_items == 0)
            || (p->depth == 2 && p->prompt_tokens == 0)))
    {
        /* [] or [[]] */
        p->depth++;
        return ngx_http_llm_prompt_item(p, 0);
    }

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->container);

        if (p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
            p->chat->options_end = p->js.end;
        }

        p->container = NGX_HTTP_LLM_KEY_NONE;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_key(ngx_http_llm_parser_t *p)
{
    u_char              *s;
    size_t               len;
    ngx_http_llm_key_e   key;

    /* the names looked for are short: a longer one is none of them */

    s = p->js.text;
    len = p->js.size;

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->options_members++;

        if (len == 13 && ngx_http_llm_jscan_is(s, "include_usage")) {
            if (p->chat->has_include_usage) {
                return ngx_http_llm_refuse(p, "stream_options",
                                           "Duplicate key 'include_usage' "
                                           "in 'stream_options'.");
            }

            p->sub_key = NGX_HTTP_LLM_KEY_INCLUDE_USAGE;
            p->chat->has_include_usage = 1;
            p->chat->usage_key_end = p->js.end;

        } else {
            p->sub_key = NGX_HTTP_LLM_KEY_OTHER;
        }

        return NGX_OK;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_CACHE) {
        return ngx_http_llm_cache_key(p, s, len);
    }

    if (p->depth != 1) {
        /* Anthropic's breakpoints on OpenAI's parts and tools (cache.md) */

        if ((p->container == NGX_HTTP_LLM_KEY_MESSAGES
             || p->container == NGX_HTTP_LLM_KEY_SYSTEM
             || p->container == NGX_HTTP_LLM_KEY_TOOLS)
            && len == 13 && ngx_http_llm_jscan_is(s, "cache_control"))
        {
            p->chat->cache_control = 1;
        }

        return NGX_OK;
    }

    if (p->chat->cache_first) {
        /* "cache" came first: it goes with everything up to this key */

        p->chat->cache_first = 0;
        p->chat->cache_end = p->js.start;
    }

    key = ngx_http_llm_key_find(s, len);

    if (!(p->known & ((ngx_uint_t) 1 << key))) {
        p->key = NGX_HTTP_LLM_KEY_OTHER;
        return NGX_OK;
    }

    /* the Responses API's name for it */

    p->key = (key == NGX_HTTP_LLM_KEY_MAX_OUTPUT_TOKENS)
             ? NGX_HTTP_LLM_KEY_MAX_TOKENS : key;

    /*
     * A key the gateway interprets may appear once: otherwise the gateway
     * could route on one value while the provider acts on another.
     */

    if (p->seen & ((ngx_uint_t) 1 << p->key)) {
        return ngx_http_llm_refuse(p, ngx_http_llm_key_names[key],
                                   "Duplicate key '%s' in the request body.",
                                   ngx_http_llm_key_names[key]);
    }

    p->seen |= (ngx_uint_t) 1 << p->key;

    if (p->key == NGX_HTTP_LLM_KEY_MODEL) {
        p->chat->model_key_end = p->js.end;

    } else if (p->key == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->has_options = 1;
        p->chat->options_key_end = p->js.end;

    } else if (p->key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_member = 1;
        p->chat->cache_start = p->member_end;
    }

    return NGX_OK;
}


/*
 * A member of the root ended: where the "cache" member's removal ends,
 * when it was this one and not the first (it goes with the comma before
 * it); the first also takes the comma after it, up to the next key.
 */

static void
ngx_http_llm_member_end(ngx_http_llm_parser_t *p, ngx_http_llm_key_e key)
{
    off_t  end;

    end = p->js.end;

    if (key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_end = end;
        p->chat->cache_first = (p->chat->cache_start == p->chat->root_start);
    }

    p->member_end = end;
}


/* the members of the body's "cache" object, LiteLLM's shape */

static ngx_int_t
ngx_http_llm_cache_key(ngx_http_llm_parser_t *p, u_char *s, size_t len)
{
    if (len == 8 && ngx_http_llm_jscan_is(s, "no-cache")) {
        p->sub_key = NGX_HTTP_LLM_KEY_NO_CACHE;

    } else if (len == 8 && ngx_http_llm_jscan_is(s, "no-store")) {
        p->sub_key = NGX_HTTP_LLM_KEY_NO_STORE;

    } else {
        p->sub_key = NGX_HTTP_LLM_KEY_OTHER;
    }

    return NGX_OK;
}


/*
 * The value a key of ngx_http_llm_shape_key() named, or an item of a
 * content array: what it is; an object or array is counted here (at a
 * depth of 5 at most, far from the limit's), a string was
 */

static ngx_http_llm_noinline ngx_int_t
ngx_http_llm_shape(ngx_http_llm_parser_t *p, ngx_uint_t token)
{
    const char            *type;
    ngx_uint_t             m, t;
    ngx_http_llm_shape_e   shape;

    shape = p->shape;
    p->shape = NGX_HTTP_LLM_SHAPE_NONE;

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_STRING:
        type = ngx_http_llm_a_string;
        break;

    case NGX_HTTP_LLM_JSCAN_OBJECT:
        type = "an object";
        break;

    case NGX_HTTP_LLM_JSCAN_ARRAY:
        type = "an array";
        break;

    case NGX_HTTP_LLM_JSCAN_NUMBER:
        type = ngx_http_llm_type_name(p, "a number");
        break;

    case NGX_HTTP_LLM_JSCAN_TRUE:
    case NGX_HTTP_LLM_JSCAN_FALSE:
        type = "a boolean";
        break;

    default: /* NGX_HTTP_LLM_JSCAN_NULL */
        type = "null";
        break;
    }

    m = p->chat->messages - 1;
    t = p->chat->tools_n - 1;

    switch (shape) {

    case NGX_HTTP_LLM_SHAPE_CONTENT:

        /* a string, or parts; another type is not checked here */

        if (token == NGX_HTTP_LLM_JSCAN_ARRAY) {
            p->in_content = 1;
            p->parts = 0;
            p->shape = NGX_HTTP_LLM_SHAPE_PART;
            p->shape_end = 3;
        }

        break;

    case NGX_HTTP_LLM_SHAPE_PART:
        if (token != NGX_HTTP_LLM_JSCAN_OBJECT) {
            return ngx_http_llm_refuse(p, "messages", "Invalid type for "
                                       "'messages[%ui].content[%ui]': "
                                       "expected an object, but got %s "
                                       "instead.", m, p->parts, type);
        }

        p->parts++;
        p->part_type = 0;
        p->part_text = NULL;
        p->shape_end = 4;
        break;

    case NGX_HTTP_LLM_SHAPE_PART_TYPE:
        if (type != ngx_http_llm_a_string) {
            return ngx_http_llm_refuse(p, "messages", "Invalid type for "
                                       "'messages[%ui].content[%ui].type': "
                                       "expected a string, but got %s "
                                       "instead.", m, p->parts - 1, type);
        }

        p->part_type = (p->js.size == 4
                        && ngx_http_llm_jscan_is(p->js.text, "text"))
                       ? 2 : 1;
        break;

    case NGX_HTTP_LLM_SHAPE_PART_TEXT:
        /* whether it had to be a string is known once the part ends */
        p->part_text = type;
        break;

    case NGX_HTTP_LLM_SHAPE_TOOL_TYPE:
        if (type != ngx_http_llm_a_string) {
            return ngx_http_llm_refuse(p, "tools", "Invalid type for "
                                       "'tools[%ui].type': expected a "
                                       "string, but got %s instead.", t,
                                       type);
        }

        p->tool_function = (p->js.size == 8
                            && ngx_http_llm_jscan_is(p->js.text,
                                                     "function"));
        break;

    case NGX_HTTP_LLM_SHAPE_FUNCTION:
        if (token == NGX_HTTP_LLM_JSCAN_OBJECT) {
            p->in_function = 1;
            p->has_function = 1;
            p->function_name = 0;
            p->shape_end = 3;
            break;
        }

        if (token != NGX_HTTP_LLM_JSCAN_NULL) {
            return ngx_http_llm_refuse(p, "tools", "Invalid type for "
                                       "'tools[%ui].function': expected an "
                                       "object, but got %s instead.", t,
                                       type);
        }

        break;

    default: /* NGX_HTTP_LLM_SHAPE_FUNCTION_NAME */
        if (type != ngx_http_llm_a_string) {
            return ngx_http_llm_refuse(p, "tools", "Invalid type for "
                                       "'tools[%ui].function.name': "
                                       "expected a string, but got %s "
                                       "instead.", t, type);
        }

        p->function_name = 1;
        break;
    }

    if (token == NGX_HTTP_LLM_JSCAN_OBJECT
        || token == NGX_HTTP_LLM_JSCAN_ARRAY)
    {
        p->depth++;
    }

    return NGX_OK;
}


/*
 * The end of what ngx_http_llm_shape() opened, p->depth now the one it
 * was in: a content part (4), the content array or a tool's function
 * (3), a tool (2)
 */

static ngx_http_llm_noinline ngx_int_t
ngx_http_llm_shape_end(ngx_http_llm_parser_t *p, ngx_uint_t token)
{
    ngx_uint_t  m;

    m = p->chat->messages - 1;

    switch (p->depth) {

    case 4:
        /* a content part; the next item is one too */

        p->shape = NGX_HTTP_LLM_SHAPE_PART;
        p->shape_end = 3;

        if (p->part_type == 0) {
            return ngx_http_llm_refuse(p, "messages", "Missing required "
                                       "parameter: 'messages[%ui].content"
                                       "[%ui].type'.", m, p->parts - 1);
        }

        if (p->part_type == 2 && p->part_text != ngx_http_llm_a_string) {
            if (p->part_text == NULL) {
                return ngx_http_llm_refuse(p, "messages", "Missing required "
                                           "parameter: 'messages[%ui]."
                                           "content[%ui].text'.", m,
                                           p->parts - 1);
            }

            return ngx_http_llm_refuse(p, "messages", "Invalid type for "
                                       "'messages[%ui].content[%ui].text': "
                                       "expected a string, but got %s "
                                       "instead.", m, p->parts - 1,
                                       p->part_text);
        }

        break;

    case 3:
        if (p->in_content) {
            /* the content array, whose next item was awaited */
            p->in_content = 0;
            p->shape = NGX_HTTP_LLM_SHAPE_NONE;
            p->shape_end = 0;
            break;
        }

        /* a tool's function */

        p->in_function = 0;
        p->shape_end = 2;

        if (!p->function_name) {
            return ngx_http_llm_refuse(p, "tools", "Missing required "
                                       "parameter: 'tools[%ui].function."
                                       "name'.", p->chat->tools_n - 1);
        }

        break;

    default: /* 2: a tool */
        p->shape_end = 0;

        if (p->tool_function && !p->has_function) {
            return ngx_http_llm_refuse(p, "tools", "Missing required "
                                       "parameter: 'tools[%ui].function'.",
                                       p->chat->tools_n - 1);
        }

        break;
    }

    return NGX_OK;
}


/* a value's type as OpenAI names it */

static const char *
ngx_http_llm_type_name(ngx_http_llm_parser_t *p, const char *type)
{
    size_t  i;

    if (ngx_strcmp(type, "a number") != 0) {
        return type;
    }

    for (i = 0; i < p->js.len; i++) {
        if (p->js.text[i] == '.' || p->js.text[i] == 'e'
            || p->js.text[i] == 'E')
        {
            return "a decimal";
        }
    }

    return "an integer";
}


static ngx_uint_t
ngx_http_llm_route_needs_tree(ngx_http_llm_main_conf_t *lmcf,
    ngx_str_t *model)
{
    ngx_str_t               capture;
    ngx_uint_t              i;
    ngx_http_llm_route_t   *route;
    ngx_http_llm_target_t  *t;

    route = ngx_http_llm_find_route(lmcf, model, &capture);
    if (route == NULL) {
        return 0;
    }

    if (route->needs_tree) {
        return 1;
    }

    t = route->targets.elts;

    for (i = 0; i < route->targets.nelts; i++) {
        if (t[i].provider && t[i].provider->dialect
            && t[i].provider->dialect->api != NGX_HTTP_LLM_API_OPENAI)
        {
            return 1;
        }
    }

    return 0;
}
