
/*
 * The canonical layer between a provider's response and the client's:
 * a decoder per provider dialect turns what the provider sends into
 * deltas (start, text, tool call, tool arguments, finish, usage, error,
 * end); an encoder per client API (ngx_http_llm_encode_<api>.c) turns
 * deltas into what the client reads: OpenAI chat.completion(.chunk),
 * Anthropic Messages, a Responses object or events, or (a guard reading
 * legacy completions) text_completion objects.
 *
 * A stream's deltas are encoded as they come; a complete response's are
 * gathered and encoded at the end; a response that passes as it is (its
 * client speaks the provider's API) is only observed, for usage.
 */


#ifndef _NGX_HTTP_LLM_CANONICAL_H_INCLUDED_
#define _NGX_HTTP_LLM_CANONICAL_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_redact.h"


/* the wire formats: of providers (dialects) and of clients */
typedef enum {
    NGX_HTTP_LLM_API_OPENAI = 0,
    NGX_HTTP_LLM_API_ANTHROPIC,
    NGX_HTTP_LLM_API_GEMINI,
    NGX_HTTP_LLM_API_BEDROCK,
    NGX_HTTP_LLM_API_RESPONSES          /* OpenAI's Responses, clients' */
} ngx_http_llm_api_e;


typedef enum {
    NGX_HTTP_LLM_FINISH_NONE = 0,
    NGX_HTTP_LLM_FINISH_STOP,
    NGX_HTTP_LLM_FINISH_LENGTH,
    NGX_HTTP_LLM_FINISH_TOOL_CALLS,
    NGX_HTTP_LLM_FINISH_CONTENT_FILTER
} ngx_http_llm_finish_e;


typedef enum {
    NGX_HTTP_LLM_CANON_STREAM = 0,     /* encoded event by event */
    NGX_HTTP_LLM_CANON_ACCUMULATE,     /* encoded at the end */
    NGX_HTTP_LLM_CANON_OBSERVE         /* not encoded: usage only */
} ngx_http_llm_canon_mode_e;


/* a provider's error, as its dialect reads it */
typedef struct {
    ngx_uint_t                     status;
    ngx_str_t                      type;        /* provider's type/code */
    ngx_str_t                      message;
} ngx_http_llm_perror_t;


typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      name;
    ngx_http_llm_jbuf_t            args;
} ngx_http_llm_canon_tool_t;


typedef ngx_int_t (*ngx_http_llm_canon_write_pt)(void *data, u_char *p,
    size_t len);


typedef struct ngx_http_llm_canon_s    ngx_http_llm_canon_t;
typedef struct ngx_http_llm_encoder_s  ngx_http_llm_encoder_t;


/*
 * A client API's encoder. Stream events are written into c->out, which
 * the delta model flushes; the delta model has done the bookkeeping
 * (modes, ids, accumulation) before it calls them.
 */
struct ngx_http_llm_encoder_s {
    ngx_http_llm_api_e             api;
    const char                    *id_prefix;      /* of answers without one */
    const char                    *tool_prefix;    /* of tool calls without */

    void         (*start)(ngx_http_llm_canon_t *c);
    void         (*text)(ngx_http_llm_canon_t *c, ngx_str_t *text);
    void         (*tool)(ngx_http_llm_canon_t *c, ngx_uint_t index,
                         ngx_str_t *id, ngx_str_t *name);
    void         (*args)(ngx_http_llm_canon_t *c, ngx_uint_t index,
                         ngx_str_t *args);
    /* NULL: the finish waits for the end (Anthropic's usage comes last) */
    void         (*finish)(ngx_http_llm_canon_t *c);
    void         (*error)(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err);
    void         (*end)(ngx_http_llm_canon_t *c);
    void         (*ping)(ngx_http_llm_canon_t *c);

    /* a gathered answer, and an error, as the client's body */
    void         (*body)(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b);
    void         (*error_json)(ngx_http_llm_jbuf_t *b,
                               ngx_http_llm_perror_t *err);
};


extern ngx_http_llm_encoder_t  ngx_http_llm_openai_encoder;
extern ngx_http_llm_encoder_t  ngx_http_llm_completions_encoder;
extern ngx_http_llm_encoder_t  ngx_http_llm_anthropic_encoder;
extern ngx_http_llm_encoder_t  ngx_http_llm_responses_encoder;

/* parts of OpenAI's chat encoder that its legacy completions' uses */
void ngx_http_llm_oa_error(ngx_http_llm_canon_t *c,
    ngx_http_llm_perror_t *err);
void ngx_http_llm_oa_ping(ngx_http_llm_canon_t *c);
void ngx_http_llm_oa_reason(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_finish_e finish);
void ngx_http_llm_oa_usage(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b);


struct ngx_http_llm_canon_s {
    ngx_http_request_t            *r;
    ngx_http_llm_ctx_t            *ctx;
    ngx_http_llm_api_e             client;
    ngx_http_llm_encoder_t        *enc;
    ngx_http_llm_canon_mode_e      mode;

    ngx_str_t                      id;
    ngx_str_t                      model;
    time_t                         created;

    ngx_http_llm_finish_e          finish;
    ngx_http_llm_usage_t           usage;
    ngx_http_llm_perror_t          error;

    /* stream encoding */
    void                          *state;       /* the encoder's own */
    ngx_uint_t                     blocks;      /* Anthropic blocks sent */
    ngx_int_t                      block_tool;  /* tool of the open block */
    ngx_uint_t                     tools_seen;

    /* accumulated */
    ngx_http_llm_jbuf_t            text;
    ngx_array_t                    tools;       /* canon_tool_t */

    /* one event's output, and where it goes */
    ngx_http_llm_jbuf_t            out;
    ngx_http_llm_canon_write_pt    write;
    void                          *data;

    /* for decoders: event trees, the provider's content blocks */
    ngx_http_llm_arena_t           arena;
    ngx_array_t                    block_tools; /* ngx_uint_t: tool + 1 */

    /*
     * a guard's answer rules: text and tool arguments go through their
     * redactors, and what is held is released before any other delta
     */
    struct ngx_http_llm_guard_s   *guard;
    ngx_http_llm_redact_t         *text_rd;
    ngx_http_llm_redact_t         *args_rd;
    ngx_uint_t                     args_index;  /* of what args_rd holds */

    unsigned                       started:1;   /* start delta seen */
    unsigned                       sent_start:1;
    unsigned                       block_open:1;
    unsigned                       has_usage:1;
    unsigned                       finished:1;  /* finish delta seen */
    unsigned                       done:1;      /* end delta seen */
    unsigned                       failed:1;    /* error delta seen */
    unsigned                       refused:1;   /* stopped by a guard */
    unsigned                       args_held:1;
};


ngx_int_t ngx_http_llm_canon_init(ngx_http_llm_canon_t *c,
    ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_canon_mode_e mode);

/* the answer is read by a guard policy's rules (not in OBSERVE mode) */
ngx_int_t ngx_http_llm_canon_guard(ngx_http_llm_canon_t *c,
    struct ngx_http_llm_guard_s *guard);

/* deltas; id, model and name may be NULL or empty */
ngx_int_t ngx_http_llm_canon_start(ngx_http_llm_canon_t *c, ngx_str_t *id,
    ngx_str_t *model);
ngx_int_t ngx_http_llm_canon_text(ngx_http_llm_canon_t *c, ngx_str_t *text);
ngx_int_t ngx_http_llm_canon_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name);
ngx_int_t ngx_http_llm_canon_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    u_char *p, size_t len);
ngx_int_t ngx_http_llm_canon_call(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name, ngx_http_llm_json_t *args);
ngx_int_t ngx_http_llm_canon_finish(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish);
/* counts not reported are -1; cached and cache_write are of prompt */
ngx_int_t ngx_http_llm_canon_usage(ngx_http_llm_canon_t *c, int64_t prompt,
    int64_t completion, int64_t cached, int64_t cache_write);
ngx_int_t ngx_http_llm_canon_error(ngx_http_llm_canon_t *c,
    ngx_http_llm_perror_t *err);
ngx_int_t ngx_http_llm_canon_end(ngx_http_llm_canon_t *c);

/*
 * content blocks of a provider's stream that are tool calls: the tool a
 * block is, by the block's index (NGX_DECLINED: none)
 */
ngx_int_t ngx_http_llm_canon_block_tool(ngx_http_llm_canon_t *c,
    ngx_uint_t block, ngx_uint_t *tool);
ngx_int_t ngx_http_llm_canon_set_block_tool(ngx_http_llm_canon_t *c,
    ngx_uint_t block, ngx_uint_t tool);

/* the provider's keep-alive: passed on, so idle clients do not time out */
ngx_int_t ngx_http_llm_canon_ping(ngx_http_llm_canon_t *c);

/* a response gathered: the client's body */
ngx_int_t ngx_http_llm_canon_body(ngx_http_llm_canon_t *c, ngx_str_t *out);

/* a provider's error as the client's API shapes it */
ngx_int_t ngx_http_llm_canon_error_body(ngx_pool_t *pool,
    ngx_http_llm_api_e client, ngx_http_llm_perror_t *err, ngx_str_t *out);

/* the encoder of a client API */
ngx_http_llm_encoder_t *ngx_http_llm_encoder(ngx_http_llm_api_e client);

/* OpenAI's error body (ngx_http_llm_encode_openai.c) */
void ngx_http_llm_openai_error_json(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_perror_t *err);

/* an Anthropic error type for a status (ngx_http_llm_encode_anthropic.c) */
const char *ngx_http_llm_anthropic_error_type(ngx_uint_t status);

/* "call_" and 24 random characters, for tool calls without an id */
ngx_int_t ngx_http_llm_canon_random_id(ngx_pool_t *pool, const char *prefix,
    ngx_str_t *id);

/* the client's API: OpenAI's chat or Responses, or Anthropic at its door */
#define ngx_http_llm_client_api(ctx)                                         \
    (ngx_http_llm_anthropic_door(ctx) ? NGX_HTTP_LLM_API_ANTHROPIC           \
     : ((ctx)->endpoint == NGX_HTTP_LLM_EP_RESPONSES)                         \
       ? NGX_HTTP_LLM_API_RESPONSES : NGX_HTTP_LLM_API_OPENAI)


#endif /* _NGX_HTTP_LLM_CANONICAL_H_INCLUDED_ */
