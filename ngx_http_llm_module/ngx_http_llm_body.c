
/*
 * Client request bodies, parsed once as they lie in memory or in a file:
 * validated, what routing needs recorded, trees and cache key built.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_parse.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_dialect.h"


#define NGX_HTTP_LLM_READ_CHUNK  65536


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
    NGX_HTTP_LLM_KEY_PROMPT
} ngx_http_llm_key_e;


typedef struct {
    const char                *name;
    size_t                     len;
    ngx_http_llm_key_e         key;
} ngx_http_llm_key_name_t;


typedef struct {
    yajl_handle                yajl;
    off_t                      base;          /* offset of current chunk */
    ngx_uint_t                 depth;
    ngx_http_llm_key_e         key;           /* key of a depth-1 value */
    ngx_http_llm_key_e         container;     /* depth-1 key we are inside */
    ngx_http_llm_key_e         sub_key;       /* key in stream_options */
    ngx_uint_t                 seen;          /* known keys seen, a bit each */
    ngx_pool_t                *pool;
    ngx_http_llm_chat_t       *chat;
    ngx_http_llm_problem_t    *problem;
    ngx_http_llm_digest_t     *digest;       /* the cache key's, or NULL */
    ngx_http_llm_key_name_t   *keys;
    ngx_http_llm_tree_t       *tree;          /* NULL: none is built */
    ngx_http_llm_main_conf_t  *lmcf;
    off_t                      member_end;    /* of the last root member */
    unsigned                   root:1;
    unsigned                   messages:1;
    unsigned                   anthropic:1;   /* /v1/messages */
    unsigned                   embeddings:1;  /* /v1/embeddings */
    unsigned                   guarded:1;     /* a guard reads the tree */
    unsigned                   legacy:1;      /* /v1/completions */
} ngx_http_llm_parser_t;


static void ngx_http_llm_parser_init(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_parser_t *p,
    ngx_http_llm_chat_t *chat, ngx_http_llm_problem_t *problem);
static ngx_int_t ngx_http_llm_scan(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_parser_t *p);
static ngx_int_t ngx_http_llm_feed(ngx_http_llm_parser_t *p, u_char *data,
    size_t len);
static off_t ngx_http_llm_offset(ngx_http_llm_parser_t *p);
static int ngx_http_llm_refuse(ngx_http_llm_parser_t *p, const char *param,
    const char *fmt, ...);
static int ngx_http_llm_scalar(ngx_http_llm_parser_t *p, const char *type);
static int ngx_http_llm_json_null(void *data);
static int ngx_http_llm_json_boolean(void *data, int value);
static int ngx_http_llm_json_number(void *data, const char *s, size_t len);
static int ngx_http_llm_json_string(void *data, const unsigned char *s,
    size_t len);
static int ngx_http_llm_json_start_map(void *data);
static int ngx_http_llm_json_map_key(void *data, const unsigned char *s,
    size_t len);
static int ngx_http_llm_json_end_map(void *data);
static int ngx_http_llm_json_start_array(void *data);
static int ngx_http_llm_json_end_array(void *data);
static ngx_uint_t ngx_http_llm_route_needs_tree(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *model);
static void ngx_http_llm_member_end(ngx_http_llm_parser_t *p,
    ngx_http_llm_key_e key);
static int ngx_http_llm_cache_key(ngx_http_llm_parser_t *p,
    const unsigned char *s, size_t len);


static ngx_http_llm_key_name_t  ngx_http_llm_chat_keys[] = {
    { "model", 5, NGX_HTTP_LLM_KEY_MODEL },
    { "messages", 8, NGX_HTTP_LLM_KEY_MESSAGES },
    { "stream", 6, NGX_HTTP_LLM_KEY_STREAM },
    { "stream_options", 14, NGX_HTTP_LLM_KEY_STREAM_OPTIONS },
    { "max_tokens", 10, NGX_HTTP_LLM_KEY_MAX_TOKENS },
    { "max_completion_tokens", 21, NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS },
    { "user", 4, NGX_HTTP_LLM_KEY_USER },
    { "tools", 5, NGX_HTTP_LLM_KEY_TOOLS },
    { "temperature", 11, NGX_HTTP_LLM_KEY_TEMPERATURE },
    { "cache", 5, NGX_HTTP_LLM_KEY_CACHE },
    { NULL, 0, NGX_HTTP_LLM_KEY_NONE }
};


/* embeddings: their input is read from the tree (embeddings.c) */
static ngx_http_llm_key_name_t  ngx_http_llm_embeddings_keys[] = {
    { "model", 5, NGX_HTTP_LLM_KEY_MODEL },
    { "user", 4, NGX_HTTP_LLM_KEY_USER },
    { "cache", 5, NGX_HTTP_LLM_KEY_CACHE },
    { NULL, 0, NGX_HTTP_LLM_KEY_NONE }
};


/* Anthropic Messages, at the /v1/messages door */
static ngx_http_llm_key_name_t  ngx_http_llm_messages_keys[] = {
    { "model", 5, NGX_HTTP_LLM_KEY_MODEL },
    { "messages", 8, NGX_HTTP_LLM_KEY_MESSAGES },
    { "stream", 6, NGX_HTTP_LLM_KEY_STREAM },
    { "max_tokens", 10, NGX_HTTP_LLM_KEY_MAX_TOKENS },
    { "tools", 5, NGX_HTTP_LLM_KEY_TOOLS },
    { "system", 6, NGX_HTTP_LLM_KEY_SYSTEM },
    { "temperature", 11, NGX_HTTP_LLM_KEY_TEMPERATURE },
    { "cache", 5, NGX_HTTP_LLM_KEY_CACHE },
    { NULL, 0, NGX_HTTP_LLM_KEY_NONE }
};


/* legacy text completions, at /v1/completions: "prompt", not "messages" */
static ngx_http_llm_key_name_t  ngx_http_llm_completions_keys[] = {
    { "model", 5, NGX_HTTP_LLM_KEY_MODEL },
    { "prompt", 6, NGX_HTTP_LLM_KEY_PROMPT },
    { "stream", 6, NGX_HTTP_LLM_KEY_STREAM },
    { "stream_options", 14, NGX_HTTP_LLM_KEY_STREAM_OPTIONS },
    { "max_tokens", 10, NGX_HTTP_LLM_KEY_MAX_TOKENS },
    { "user", 4, NGX_HTTP_LLM_KEY_USER },
    { "temperature", 11, NGX_HTTP_LLM_KEY_TEMPERATURE },
    { NULL, 0, NGX_HTTP_LLM_KEY_NONE }
};


static yajl_callbacks  ngx_http_llm_json_callbacks = {
    ngx_http_llm_json_null,
    ngx_http_llm_json_boolean,
    NULL,
    NULL,
    ngx_http_llm_json_number,
    ngx_http_llm_json_string,
    ngx_http_llm_json_start_map,
    ngx_http_llm_json_map_key,
    ngx_http_llm_json_end_map,
    ngx_http_llm_json_start_array,
    ngx_http_llm_json_end_array
};


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

    ctx->segments = ngx_array_create(r->pool, 2,
                                     sizeof(ngx_http_llm_segment_t));
    if (ctx->segments == NULL) {
        return NGX_ERROR;
    }

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
    size_t                    len;
    u_char                   *msg;
    ngx_int_t                 rc;
    ngx_http_llm_tree_t      *tree;
    ngx_http_llm_arena_t     *arena;
    ngx_http_llm_memcap_t    *cap;
    ngx_http_llm_parser_t     p;
    ngx_http_llm_loc_conf_t  *llcf;

    if (ctx->body_length == 0) {
        return ngx_http_llm_problem(problem, NULL, NULL,
                                    "The request body is empty: a JSON "
                                    "object with \"model\" and \"%s\" is "
                                    "expected.",
                                    (ctx->endpoint
                                     == NGX_HTTP_LLM_EP_EMBEDDINGS)
                                    ? "input"
                                    : (ctx->endpoint
                                       == NGX_HTTP_LLM_EP_COMPLETIONS)
                                      ? "prompt" : "messages");
    }

    ngx_http_llm_parser_init(r, ctx, &p, &ctx->chat, problem);

    /*
     * What the parse keeps beyond the body (the tree, the cache key's
     * member digests) is bounded by the body's size: values of a few bytes
     * each would otherwise cost ~80 bytes of tree apiece.
     */

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    cap = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_memcap_t));
    if (cap == NULL) {
        return NGX_ERROR;
    }

    cap->max = (size_t) ngx_min((off_t) llcf->memory_max,
                               (off_t) llcf->memory_ratio * ctx->body_length
                               + NGX_HTTP_LLM_MEMORY_FLOOR);

    /*
     * legacy completions and token counts are not cached: the cache
     * stores and replays answers as chat completions (docs/endpoints.md)
     */

    if ((llcf->cache != NGX_HTTP_LLM_CACHE_OFF || p.lmcf->route_cache)
        && !p.legacy && ctx->endpoint != NGX_HTTP_LLM_EP_COUNT_TOKENS)
    {
        /*
         * the cache key is computed later, by a second pass, and only if
         * the request turns out to be cacheable (ngx_http_llm_body_digest)
         */
        ctx->digest = ngx_http_llm_digest_create(r->pool, cap);
        if (ctx->digest == NULL) {
            return NGX_ERROR;
        }
    }

    tree = NULL;

    p.guarded = (llcf->guard != NULL || p.lmcf->entity_guards);

    if (p.anthropic || p.embeddings || p.lmcf->trees || p.guarded) {
        arena = ngx_palloc(r->pool, sizeof(ngx_http_llm_arena_t));
        tree = ngx_palloc(r->pool, sizeof(ngx_http_llm_tree_t));
        if (arena == NULL || tree == NULL) {
            return NGX_ERROR;
        }

        ngx_http_llm_arena_init(arena, r->pool);
        ngx_http_llm_tree_init(tree, arena);

        arena->cap = cap;
        p.tree = tree;
    }

    rc = ngx_http_llm_scan(r, ctx, &p);

    if (p.yajl == NULL) {
        return NGX_ERROR;
    }

    if (cap->exceeded) {
        problem->status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        problem->code = "request_too_large";
        problem->param = NULL;
        problem->len = ngx_snprintf(problem->message,
                                    sizeof(problem->message),
                                    "The request body holds too many small "
                                    "values: reading it would take more "
                                    "than the %uz bytes this gateway "
                                    "allows for a body of %O bytes "
                                    "(llm_request_memory).",
                                    cap->max, ctx->body_length)
                       - problem->message;
        rc = NGX_DECLINED;
    }

    if (rc == NGX_DECLINED && problem->status == 0) {

        /* yajl refused the document itself */

        msg = yajl_get_error(p.yajl, 0, NULL, 0);

        if (msg) {
            /* yajl ends its message with a newline */
            len = ngx_strlen(msg);

            while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '
                           || msg[len - 1] == '.'))
            {
                msg[--len] = '\0';
            }
        }

        problem->status = NGX_HTTP_BAD_REQUEST;
        problem->len = ngx_snprintf(problem->message,
                                    sizeof(problem->message),
                                    "We could not parse the JSON body of "
                                    "your request: %s (at byte %O).",
                                    msg ? (char *) msg : "invalid JSON",
                                    p.base
                                    + (off_t) yajl_get_bytes_consumed(p.yajl))
                       - problem->message;

        if (msg) {
            yajl_free_error(p.yajl, msg);
        }
    }

    yajl_free(p.yajl);

    if (rc != NGX_OK) {
        return rc;
    }

    if (p.tree) {
        ctx->tree = p.tree->root;
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

    if (p.embeddings) {
        /* its input is checked by ngx_http_llm_embeddings_parse() */
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

    return NGX_OK;
}


/*
 * The cache key's digest of a body already parsed: a pass of its own,
 * made only for requests that are cacheable, which need not pay for it.
 */

ngx_int_t
ngx_http_llm_body_digest(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t                rc;
    ngx_http_llm_chat_t      chat;
    ngx_http_llm_parser_t    p;
    ngx_http_llm_problem_t   problem;

    if (ctx->digested) {
        return NGX_OK;
    }

    /* what the first pass recorded is not recorded again */

    ngx_memzero(&chat, sizeof(ngx_http_llm_chat_t));
    ngx_memzero(&problem, sizeof(ngx_http_llm_problem_t));

    ngx_http_llm_parser_init(r, ctx, &p, &chat, &problem);
    p.digest = ctx->digest;

    rc = ngx_http_llm_scan(r, ctx, &p);

    if (p.yajl) {
        yajl_free(p.yajl);
    }

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
    ngx_memzero(p, sizeof(ngx_http_llm_parser_t));

    p->pool = r->pool;
    p->chat = chat;
    p->problem = problem;
    p->keys = ngx_http_llm_chat_keys;
    p->lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);

    if (ngx_http_llm_anthropic_door(ctx)) {
        p->anthropic = 1;
        p->keys = ngx_http_llm_messages_keys;

    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        p->embeddings = 1;
        p->keys = ngx_http_llm_embeddings_keys;
    } else if (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS) {
        p->legacy = 1;
        p->keys = ngx_http_llm_completions_keys;
    }
}


/*
 * The body's segments, in memory or read from its file, parsed whole;
 * the caller frees p->yajl (NULL if it could not be made).
 */

static ngx_int_t
ngx_http_llm_scan(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_parser_t *p)
{
    off_t                    offset;
    size_t                   size, buf_size;
    ssize_t                  n;
    u_char                  *buf;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_llm_segment_t  *s;

    p->yajl = yajl_alloc(&ngx_http_llm_json_callbacks, NULL, p);
    if (p->yajl == NULL) {
        return NGX_ERROR;
    }

    buf = NULL;
    buf_size = 0;
    rc = NGX_OK;
    s = ctx->segments->elts;

    for (i = 0; i < ctx->segments->nelts && rc == NGX_OK; i++) {

        if (s[i].pos) {
            p->base = s[i].start;
            rc = ngx_http_llm_feed(p, s[i].pos, s[i].end - s[i].start);
            continue;
        }

        for (offset = s[i].start; offset < s[i].end; offset += n) {

            /*
             * yajl lexes a token that spans two calls from its start again
             * on every call: reads as large as what was parsed before keep
             * a long string (a base64 image, say) from costing quadratic
             * time
             */

            size = (size_t) ngx_min(s[i].end - offset,
                                    ngx_max(offset, NGX_HTTP_LLM_READ_CHUNK));

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

            p->base = offset;
            rc = ngx_http_llm_feed(p, buf, size);

            if (rc != NGX_OK) {
                break;
            }
        }
    }

    if (buf) {
        ngx_pfree(r->pool, buf);
    }

    if (rc == NGX_OK) {
        p->base = ctx->body_length;

        if (yajl_complete_parse(p->yajl) != yajl_status_ok) {
            rc = NGX_DECLINED;
        }
    }

    return rc;
}


static ngx_int_t
ngx_http_llm_feed(ngx_http_llm_parser_t *p, u_char *data, size_t len)
{
    yajl_status  status;

    status = yajl_parse(p->yajl, data, len);

    if (status == yajl_status_ok) {
        return NGX_OK;
    }

    return (status == yajl_status_error || p->problem->status)
           ? NGX_DECLINED : NGX_ERROR;
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


/* in a yajl callback: returns 0, which stops yajl */

static int
ngx_http_llm_refuse(ngx_http_llm_parser_t *p, const char *param,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_http_llm_vproblem(p->problem, param, NULL, fmt, args);
    va_end(args);

    return 0;
}


static const char *
ngx_http_llm_key_param(ngx_http_llm_key_e key)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_llm_chat_keys[i].name; i++) {
        if (ngx_http_llm_chat_keys[i].key == key) {
            return ngx_http_llm_chat_keys[i].name;
        }
    }

    for (i = 0; ngx_http_llm_messages_keys[i].name; i++) {
        if (ngx_http_llm_messages_keys[i].key == key) {
            return ngx_http_llm_messages_keys[i].name;
        }
    }

    for (i = 0; ngx_http_llm_completions_keys[i].name; i++) {
        if (ngx_http_llm_completions_keys[i].key == key) {
            return ngx_http_llm_completions_keys[i].name;
        }
    }

    return NULL;
}


/*
 * A value other than the one expected for a known key: type is what the
 * value is; only the keys the gateway reads are checked.
 */

static int
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
            return 1;
        }

        param = ngx_http_llm_key_param(p->key);

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

    return 1;
}


/* the offset in the body just after the token being reported */

static off_t
ngx_http_llm_offset(ngx_http_llm_parser_t *p)
{
    return p->base + (off_t) yajl_get_bytes_consumed(p->yajl);
}


static int
ngx_http_llm_json_null(void *data)
{
    ngx_http_llm_parser_t  *p = data;

    if (p->digest
        && ngx_http_llm_digest_scalar(p->digest, 'z', NULL, 0) != NGX_OK)
    {
        return 0;
    }

    if (p->tree
        && ngx_http_llm_tree_scalar(p->tree, NGX_HTTP_LLM_JSON_NULL, NULL, 0)
           != NGX_OK)
    {
        return 0;
    }

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->options_end = ngx_http_llm_offset(p);
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return 1;
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
            p->key = NGX_HTTP_LLM_KEY_NONE;
            return 1;

        default:
            break;
        }
    }

    return ngx_http_llm_scalar(p, "null");
}


static int
ngx_http_llm_json_boolean(void *data, int value)
{
    ngx_http_llm_parser_t  *p = data;

    if (p->digest
        && ngx_http_llm_digest_scalar(p->digest, value ? 't' : 'f', NULL, 0)
           != NGX_OK)
    {
        return 0;
    }

    if (p->tree
        && ngx_http_llm_tree_scalar(p->tree,
                                    value ? NGX_HTTP_LLM_JSON_TRUE
                                          : NGX_HTTP_LLM_JSON_FALSE,
                                    NULL, 0)
           != NGX_OK)
    {
        return 0;
    }

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_STREAM) {
        p->chat->stream = value ? 1 : 0;
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return 1;
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_opt = value ? NGX_HTTP_LLM_OPT_ON
                                   : NGX_HTTP_LLM_OPT_OFF;
        p->key = NGX_HTTP_LLM_KEY_NONE;
        return 1;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_CACHE) {
        if (p->sub_key == NGX_HTTP_LLM_KEY_NO_CACHE) {
            p->chat->cache_no_cache = value ? 1 : 0;

        } else if (p->sub_key == NGX_HTTP_LLM_KEY_NO_STORE) {
            p->chat->cache_no_store = value ? 1 : 0;
        }

        return 1;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS
        && p->sub_key == NGX_HTTP_LLM_KEY_INCLUDE_USAGE)
    {
        p->chat->include_usage = value ? 1 : 0;
        p->chat->usage_end = ngx_http_llm_offset(p);
        return 1;
    }

    return ngx_http_llm_scalar(p, "a boolean");
}


static int
ngx_http_llm_json_number(void *data, const char *s, size_t len)
{
    ngx_http_llm_parser_t  *p = data;

    size_t   i;
    char     number[32], *end;
    int64_t  n;

    if (p->digest
        && ngx_http_llm_digest_scalar(p->digest, 'n', (u_char *) s, len)
           != NGX_OK)
    {
        return 0;
    }

    if (p->tree
        && ngx_http_llm_tree_scalar(p->tree, NGX_HTTP_LLM_JSON_NUMBER,
                                    (u_char *) s, len)
           != NGX_OK)
    {
        return 0;
    }

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_PROMPT) {
        /* a prompt of token ids: a token is some four bytes of text */
        p->chat->message_bytes += 4;
        return 1;
    }

    if (p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_TEMPERATURE) {
        p->key = NGX_HTTP_LLM_KEY_NONE;

        if (len < sizeof(number)) {
            ngx_memcpy(number, s, len);
            number[len] = '\0';

            p->chat->temperature = strtod(number, &end);
            p->chat->has_temperature = (*end == '\0');
        }

        return 1;
    }

    if (p->depth == 1
        && (p->key == NGX_HTTP_LLM_KEY_MAX_TOKENS
            || p->key == NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS))
    {
        n = 0;

        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || n > 1000000000) {
                return ngx_http_llm_refuse(p, ngx_http_llm_key_param(p->key),
                                           "Invalid '%s': expected an "
                                           "integer from 1 to 1000000000, "
                                           "got %*s.",
                                           ngx_http_llm_key_param(p->key),
                                           ngx_min(len, 32), s);
            }

            n = n * 10 + (s[i] - '0');
        }

        if (n == 0 || n > 1000000000) {
            return ngx_http_llm_refuse(p, ngx_http_llm_key_param(p->key),
                                       "Invalid '%s': expected an integer "
                                       "from 1 to 1000000000, got %*s.",
                                       ngx_http_llm_key_param(p->key),
                                       ngx_min(len, 32), s);
        }

        /* max_completion_tokens supersedes the older max_tokens */

        if (p->key == NGX_HTTP_LLM_KEY_MAX_COMPLETION_TOKENS
            || p->chat->max_tokens == -1)
        {
            p->chat->max_tokens = n;
        }

        p->key = NGX_HTTP_LLM_KEY_NONE;
        return 1;
    }

    return ngx_http_llm_scalar(p, "a number");
}


static int
ngx_http_llm_json_string(void *data, const unsigned char *s, size_t len)
{
    ngx_http_llm_parser_t  *p = data;

    size_t      i;
    ngx_str_t  *dst;

    if (p->digest
        && ngx_http_llm_digest_scalar(p->digest, 's', (u_char *) s, len)
           != NGX_OK)
    {
        return 0;
    }

    if (p->tree
        && ngx_http_llm_tree_scalar(p->tree, NGX_HTTP_LLM_JSON_STRING, s, len)
           != NGX_OK)
    {
        return 0;
    }

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->key);
    }

    if (p->depth > 2 && p->container == NGX_HTTP_LLM_KEY_MESSAGES) {
        p->chat->message_bytes += len;
        return 1;
    }

    /* a legacy prompt: a string, or an array of strings (or of tokens) */

    if ((p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_PROMPT)
        || (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_PROMPT))
    {
        p->chat->message_bytes += len;

        if (p->depth == 1) {
            p->messages = 1;
            p->key = NGX_HTTP_LLM_KEY_NONE;
        }

        return 1;
    }

    /* Anthropic's system prompt: a string, or text blocks */

    if ((p->depth == 1 && p->key == NGX_HTTP_LLM_KEY_SYSTEM)
        || (p->depth > 1 && p->container == NGX_HTTP_LLM_KEY_SYSTEM))
    {
        p->chat->message_bytes += len;

        if (p->depth == 1) {
            p->key = NGX_HTTP_LLM_KEY_NONE;
        }

        return 1;
    }

    if (p->depth == 1) {
        switch (p->key) {

        case NGX_HTTP_LLM_KEY_MODEL:

            /*
             * the name reaches response headers (x-llm-model), logs and
             * providers: a CR or LF in it would split a header
             */

            for (i = 0; i < len; i++) {
                if (s[i] < 0x20 || s[i] == 0x7f) {
                    return ngx_http_llm_refuse(p, "model", "Invalid "
                                               "'model': control "
                                               "characters are not "
                                               "allowed.");
                }
            }

            /* a client's name may become a node in the zone: bounded */

            if (len > NGX_HTTP_LLM_MAX_MODEL) {
                return ngx_http_llm_refuse(p, "model", "Invalid 'model': "
                                           "longer than "
                                           NGX_HTTP_LLM_MAX_MODEL_TEXT
                                           " bytes.");
            }

            dst = &p->chat->model;
            p->chat->model_end = ngx_http_llm_offset(p);
            break;

        case NGX_HTTP_LLM_KEY_USER:
            dst = &p->chat->user;
            break;

        default:
            return ngx_http_llm_scalar(p, "a string");
        }

        /* yajl's buffer is gone after the callback */

        dst->data = ngx_pnalloc(p->pool, len + 1);
        if (dst->data == NULL) {
            return 0;
        }

        ngx_memcpy(dst->data, s, len);
        dst->data[len] = '\0';
        dst->len = len;

        /*
         * A tree only serves routes with targets in other dialects; the
         * model names the route, so building stops as soon as it is known
         * that none of them needs it.
         */

        if (p->tree && !p->anthropic && !p->guarded && !p->embeddings
            && dst == &p->chat->model
            && !ngx_http_llm_route_needs_tree(p->lmcf, dst))
        {
            p->tree = NULL;
        }

        p->key = NGX_HTTP_LLM_KEY_NONE;
        return 1;
    }

    return ngx_http_llm_scalar(p, "a string");
}


static int
ngx_http_llm_json_open(ngx_http_llm_parser_t *p, ngx_uint_t map)
{
    if (p->tree
        && ngx_http_llm_tree_open(p->tree, map ? NGX_HTTP_LLM_JSON_OBJECT
                                               : NGX_HTTP_LLM_JSON_ARRAY)
           != NGX_OK)
    {
        return 0;
    }

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
        p->chat->root_start = ngx_http_llm_offset(p);
        p->member_end = p->chat->root_start;

        if (p->digest && ngx_http_llm_digest_open(p->digest, 1) != NGX_OK) {
            return 0;
        }

        return 1;
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
            p->chat->options_start = ngx_http_llm_offset(p);
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
            break;

        case NGX_HTTP_LLM_KEY_CACHE:
            if (!map) {
                return ngx_http_llm_scalar(p, "an array");
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
            p->chat->tools = 1;
        }
    }

    p->depth++;

    if (p->digest && ngx_http_llm_digest_open(p->digest, map) != NGX_OK) {
        return 0;
    }

    return 1;
}


static int
ngx_http_llm_json_start_map(void *data)
{
    return ngx_http_llm_json_open(data, 1);
}


static int
ngx_http_llm_json_start_array(void *data)
{
    return ngx_http_llm_json_open(data, 0);
}


static int
ngx_http_llm_json_close(void *data)
{
    ngx_http_llm_parser_t  *p = data;

    if (p->digest && ngx_http_llm_digest_close(p->digest) != NGX_OK) {
        return 0;
    }

    if (p->tree && ngx_http_llm_tree_close(p->tree) != NGX_OK) {
        return 0;
    }

    p->depth--;

    if (p->depth == 1) {
        ngx_http_llm_member_end(p, p->container);

        if (p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
            p->chat->options_end = ngx_http_llm_offset(p);
        }

        p->container = NGX_HTTP_LLM_KEY_NONE;
    }

    return 1;
}


static int
ngx_http_llm_json_end_map(void *data)
{
    return ngx_http_llm_json_close(data);
}


static int
ngx_http_llm_json_end_array(void *data)
{
    return ngx_http_llm_json_close(data);
}


static int
ngx_http_llm_json_map_key(void *data, const unsigned char *s, size_t len)
{
    ngx_http_llm_parser_t  *p = data;

    ngx_str_t   *text;
    ngx_uint_t   i;

    if (p->digest
        && ngx_http_llm_digest_key(p->digest, (u_char *) s, len) != NGX_OK)
    {
        return 0;
    }

    if (p->tree && ngx_http_llm_tree_key(p->tree, s, len) != NGX_OK) {
        return 0;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->options_members++;

        if (len == 13 && ngx_strncmp(s, "include_usage", 13) == 0) {
            if (p->chat->has_include_usage) {
                return ngx_http_llm_refuse(p, "stream_options",
                                           "Duplicate key 'include_usage' "
                                           "in 'stream_options'.");
            }

            p->sub_key = NGX_HTTP_LLM_KEY_INCLUDE_USAGE;
            p->chat->has_include_usage = 1;
            p->chat->usage_key_end = ngx_http_llm_offset(p);

        } else {
            p->sub_key = NGX_HTTP_LLM_KEY_OTHER;
        }

        return 1;
    }

    if (p->depth == 2 && p->container == NGX_HTTP_LLM_KEY_CACHE) {
        return ngx_http_llm_cache_key(p, s, len);
    }

    if (p->depth != 1) {
        return 1;
    }

    if (p->chat->cache_first) {
        /* "cache" came first: it goes with everything up to this key,
           which is written again */

        p->chat->cache_first = 0;
        p->chat->cache_end = ngx_http_llm_offset(p);

        text = &p->chat->cache_text;
        text->len = 2 + len + ngx_escape_json(NULL, (u_char *) s, len);

        text->data = ngx_pnalloc(p->pool, text->len);
        if (text->data == NULL) {
            return 0;
        }

        text->data[0] = '"';
        (void) ngx_escape_json(text->data + 1, (u_char *) s, len);
        text->data[text->len - 1] = '"';
    }

    p->key = NGX_HTTP_LLM_KEY_OTHER;

    for (i = 0; p->keys[i].name; i++) {
        if (p->keys[i].len == len
            && ngx_strncmp(p->keys[i].name, s, len) == 0)
        {
            p->key = p->keys[i].key;
            break;
        }
    }

    if (p->key == NGX_HTTP_LLM_KEY_OTHER) {
        return 1;
    }

    /*
     * A key the gateway interprets may appear once: otherwise the gateway
     * could route on one value while the provider acts on another.
     */

    if (p->seen & ((ngx_uint_t) 1 << p->key)) {
        return ngx_http_llm_refuse(p, p->keys[i].name,
                                   "Duplicate key '%s' in the request body.",
                                   p->keys[i].name);
    }

    p->seen |= (ngx_uint_t) 1 << p->key;

    if (p->key == NGX_HTTP_LLM_KEY_MODEL) {
        p->chat->model_key_end = ngx_http_llm_offset(p);

    } else if (p->key == NGX_HTTP_LLM_KEY_STREAM_OPTIONS) {
        p->chat->has_options = 1;
        p->chat->options_key_end = ngx_http_llm_offset(p);

    } else if (p->key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_member = 1;
        p->chat->cache_start = p->member_end;
    }

    return 1;
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

    end = ngx_http_llm_offset(p);

    if (key == NGX_HTTP_LLM_KEY_CACHE) {
        p->chat->cache_end = end;
        p->chat->cache_first = (p->chat->cache_start == p->chat->root_start);
    }

    p->member_end = end;
}


/* the members of the body's "cache" object, LiteLLM's shape */

static int
ngx_http_llm_cache_key(ngx_http_llm_parser_t *p, const unsigned char *s,
    size_t len)
{
    if (len == 8 && ngx_strncmp(s, "no-cache", 8) == 0) {
        p->sub_key = NGX_HTTP_LLM_KEY_NO_CACHE;

    } else if (len == 8 && ngx_strncmp(s, "no-store", 8) == 0) {
        p->sub_key = NGX_HTTP_LLM_KEY_NO_STORE;

    } else {
        p->sub_key = NGX_HTTP_LLM_KEY_OTHER;
    }

    return 1;
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
