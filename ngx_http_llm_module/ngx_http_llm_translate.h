
/*
 * The request walker: every request translator visits the OpenAI chat
 * request the same way, once; only what it writes differs (its
 * ngx_http_llm_walker_t).
 */


#ifndef _NGX_HTTP_LLM_TRANSLATE_H_INCLUDED_
#define _NGX_HTTP_LLM_TRANSLATE_H_INCLUDED_


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_json_tree.h"


#define NGX_HTTP_LLM_TURN_USER       1
#define NGX_HTTP_LLM_TURN_ASSISTANT  2


typedef struct ngx_http_llm_walk_s  ngx_http_llm_walk_t;


/*
 * What a dialect writes for each part of the conversation, in order.
 * Strings may be NULL where the client left them out; a text lives until
 * the next call.
 */
typedef struct {
    /* a system or developer message's text (each, in order) */
    void         (*system)(ngx_http_llm_walk_t *w, ngx_str_t *text);
    /* a user's text, or the assistant's (joined; may be empty) */
    void         (*text)(ngx_http_llm_walk_t *w, ngx_uint_t turn,
                         ngx_str_t *text);
    /* a user's image: a data: URL or a link */
    void         (*image)(ngx_http_llm_walk_t *w, ngx_str_t *url);
    /* the assistant's tool call: arguments are JSON text */
    void         (*tool_call)(ngx_http_llm_walk_t *w, ngx_str_t *id,
                              ngx_str_t *name, ngx_str_t *arguments);
    /* a tool's result, with the function name of the call it answers
       (when the walker's "names" is set) */
    void         (*tool_result)(ngx_http_llm_walk_t *w, ngx_str_t *id,
                                ngx_str_t *name, ngx_str_t *content);
    /* a function the model may call (n: functions written before it) */
    void         (*function)(ngx_http_llm_walk_t *w, ngx_uint_t n,
                             ngx_str_t *name, ngx_str_t *description,
                             ngx_http_llm_json_t *parameters);
    /* tool results need their call's function name: the walker indexes
       tool calls by id (otherwise it does not, and gives NULL) */
    ngx_uint_t     names;
} ngx_http_llm_walker_t;


struct ngx_http_llm_walk_s {
    ngx_http_request_t            *r;
    ngx_http_llm_jbuf_t           *b;           /* the provider's body */
    ngx_http_llm_walker_t         *emit;
    void                          *data;        /* the dialect's */

    /* the dialect's state: the turn being written, parts written */
    ngx_uint_t                     turn;
    ngx_uint_t                     parts;
    ngx_uint_t                     n;

    /*
     * the cache_control object of the part being written (Anthropic's
     * breakpoint, an extension on OpenAI's parts and tools), or NULL:
     * set around a system, text, image, tool_result or function call
     */
    ngx_http_llm_json_t           *cache;
    /* what the route's "cache_breakpoint auto" puts after the last system
       text and the last tool, or NULL (ngx_http_llm_auto_breakpoint) */
    ngx_http_llm_json_t           *auto_cache;

    /* private */
    ngx_http_llm_jbuf_t            tmp;
    ngx_rbtree_t                   calls;       /* tool call id -> name */
    ngx_rbtree_node_t              sentinel;
};


/* {"type":"ephemeral"}, for the walker's auto_cache: when the route asks
   for it and the request has no breakpoint of its own; else NULL */
ngx_http_llm_json_t *ngx_http_llm_auto_breakpoint(ngx_http_llm_ctx_t *ctx);

/* the system and developer messages; the conversation (each dialect
   puts them where its API wants them) */
ngx_int_t ngx_http_llm_walk_system(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *msgs);
ngx_int_t ngx_http_llm_walk_turns(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *msgs);
/* the function tools of a request's "tools" array, those with a name */
void ngx_http_llm_walk_functions(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *tools);
/* for function emitters: [,]<open>"name":...[,"description":...] */
void ngx_http_llm_walk_function_head(ngx_http_llm_walk_t *w, ngx_uint_t n,
    const char *open, ngx_str_t *name, ngx_str_t *description);
/* a function's parameters schema, an empty object's when it has none */
void ngx_http_llm_walk_schema(ngx_http_llm_walk_t *w,
    ngx_http_llm_json_t *parameters);
void ngx_http_llm_walk_init(ngx_http_llm_walk_t *w, ngx_http_request_t *r,
    ngx_http_llm_jbuf_t *b, ngx_http_llm_walker_t *emit);

/* what a provider calls the sampling parameters; NULL: not written */
typedef struct {
    const char                    *max_tokens;
    const char                    *temperature;
    const char                    *top_p;
    const char                    *stop;        /* an array, always */
} ngx_http_llm_param_names_t;

/* the sampling parameters the client gave, as ,"name":value members */
void ngx_http_llm_translate_params(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *tree, ngx_http_llm_param_names_t *names);

/* the text of a content: a string, or the text parts joined by sep */
ngx_int_t ngx_http_llm_content_text(ngx_http_llm_json_t *content,
    ngx_http_llm_jbuf_t *b, const char *sep);
/* "data:image/png;base64,AAAA": the media type and the base64 data */
ngx_int_t ngx_http_llm_data_url(ngx_str_t *url, ngx_str_t *type,
    ngx_str_t *data);
/* max_completion_tokens, or the older max_tokens; -1: neither */
int64_t ngx_http_llm_max_tokens(ngx_http_llm_json_t *tree);


#endif /* _NGX_HTTP_LLM_TRANSLATE_H_INCLUDED_ */
