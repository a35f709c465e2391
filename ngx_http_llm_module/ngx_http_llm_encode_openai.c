
/*
 * The encoder of OpenAI's chat completions API: deltas as
 * chat.completion.chunk events, or one chat.completion. Its errors,
 * pings, finish reasons and usage serve the legacy completions' encoder
 * too (encode_completions.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_canonical.h"


static void ngx_http_llm_oa_start(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_text(ngx_http_llm_canon_t *c, ngx_str_t *text);
static void ngx_http_llm_oa_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name);
static void ngx_http_llm_oa_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args);
static void ngx_http_llm_oa_finish(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_end(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_body(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static void ngx_http_llm_oa_chunk_head(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_chunk_open(ngx_http_llm_canon_t *c);
static void ngx_http_llm_oa_chunk_close(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish);


ngx_http_llm_encoder_t  ngx_http_llm_openai_encoder = {
    NGX_HTTP_LLM_API_OPENAI,
    "chatcmpl-",
    "call_",
    ngx_http_llm_oa_start,
    ngx_http_llm_oa_text,
    ngx_http_llm_oa_tool,
    ngx_http_llm_oa_args,
    ngx_http_llm_oa_finish,
    ngx_http_llm_oa_error,
    ngx_http_llm_oa_end,
    ngx_http_llm_oa_ping,
    ngx_http_llm_oa_body,
    ngx_http_llm_openai_error_json
};


static const char  *ngx_http_llm_oa_finish_reason[] = {
    "stop", "stop", "length", "tool_calls", "content_filter"
};


static void
ngx_http_llm_oa_start(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(&c->out, "{\"role\":\"assistant\",\"content\":\"\"}");
    ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);
}


static void
ngx_http_llm_oa_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(&c->out, "{\"content\":");
    ngx_http_llm_jbuf_qstr(&c->out, text);
    ngx_http_llm_jbuf_lit(&c->out, "}");
    ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);
}


static void
ngx_http_llm_oa_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(b, "{\"tool_calls\":[{\"index\":");
    ngx_http_llm_jbuf_int(b, index);
    ngx_http_llm_jbuf_lit(b, ",\"id\":");
    ngx_http_llm_jbuf_qstr(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"function\",\"function\":"
                             "{\"name\":");

    if (name) {
        ngx_http_llm_jbuf_qstr(b, name);

    } else {
        ngx_http_llm_jbuf_lit(b, "\"\"");
    }

    ngx_http_llm_jbuf_lit(b, ",\"arguments\":\"\"}}]}");
    ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);
}


static void
ngx_http_llm_oa_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(b, "{\"tool_calls\":[{\"index\":");
    ngx_http_llm_jbuf_int(b, index);
    ngx_http_llm_jbuf_lit(b, ",\"function\":{\"arguments\":");
    ngx_http_llm_jbuf_qstr(b, args);
    ngx_http_llm_jbuf_lit(b, "}}]}");
    ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_NONE);
}


static void
ngx_http_llm_oa_finish(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_oa_chunk_open(c);
    ngx_http_llm_jbuf_lit(&c->out, "{}");
    ngx_http_llm_oa_chunk_close(c, c->finish);
}


void
ngx_http_llm_oa_error(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err)
{
    ngx_http_llm_jbuf_lit(&c->out, "data: ");
    ngx_http_llm_openai_error_json(&c->out, err);
    ngx_http_llm_jbuf_lit(&c->out, "\n\n");
}


static void
ngx_http_llm_oa_end(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    if (!c->finished) {
        ngx_http_llm_oa_chunk_open(c);
        ngx_http_llm_jbuf_lit(b, "{}");
        ngx_http_llm_oa_chunk_close(c, NGX_HTTP_LLM_FINISH_STOP);
    }

    if (c->ctx->chat.include_usage && c->has_usage) {
        ngx_http_llm_oa_chunk_head(c);
        ngx_http_llm_jbuf_lit(b, ",\"choices\":[],\"usage\":");
        ngx_http_llm_oa_usage(c, b);
        ngx_http_llm_jbuf_lit(b, "}\n\n");
    }

    ngx_http_llm_jbuf_lit(b, "data: [DONE]\n\n");
}


/* idle streams: an SSE comment, which clients ignore */

void
ngx_http_llm_oa_ping(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_lit(&c->out, ": ping\n\n");
}


static void
ngx_http_llm_oa_body(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    ngx_uint_t                  i;
    ngx_http_llm_canon_tool_t  *t;

    t = c->tools.elts;

    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"object\":\"chat.completion\","
                             "\"created\":");
    ngx_http_llm_jbuf_int(b, c->created);
    ngx_http_llm_jbuf_lit(b, ",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
    ngx_http_llm_jbuf_lit(b, ",\"choices\":[{\"index\":0,\"message\":"
                             "{\"role\":\"assistant\",\"content\":");

    if (ngx_http_llm_jbuf_len(&c->text) || c->tools.nelts == 0) {
        ngx_http_llm_jbuf_str(b, c->text.start,
                              ngx_http_llm_jbuf_len(&c->text));

    } else {
        ngx_http_llm_jbuf_lit(b, "null");
    }

    ngx_http_llm_jbuf_lit(b, ",\"refusal\":null");

    if (c->tools.nelts) {
        ngx_http_llm_jbuf_lit(b, ",\"tool_calls\":[");

        for (i = 0; i < c->tools.nelts; i++) {
            ngx_http_llm_jbuf_lit(b, "{\"id\":");
            ngx_http_llm_jbuf_qstr(b, &t[i].id);
            ngx_http_llm_jbuf_lit(b, ",\"type\":\"function\","
                                     "\"function\":{\"name\":");
            ngx_http_llm_jbuf_qstr(b, &t[i].name);
            ngx_http_llm_jbuf_lit(b, ",\"arguments\":");
            ngx_http_llm_jbuf_str(b, t[i].args.start,
                                  ngx_http_llm_jbuf_len(&t[i].args));
            ngx_http_llm_jbuf_lit(b, "}}");

            if (i + 1 < c->tools.nelts) {
                ngx_http_llm_jbuf_lit(b, ",");
            }
        }

        ngx_http_llm_jbuf_lit(b, "]");
    }

    ngx_http_llm_jbuf_lit(b, "},\"logprobs\":null,\"finish_reason\":");
    ngx_http_llm_oa_reason(b, c->finish ? c->finish
                                        : NGX_HTTP_LLM_FINISH_STOP);
    ngx_http_llm_jbuf_lit(b, "}]");

    if (c->has_usage) {
        ngx_http_llm_jbuf_lit(b, ",\"usage\":");
        ngx_http_llm_oa_usage(c, b);
    }

    ngx_http_llm_jbuf_lit(b, "}");
}


static const char *
ngx_http_llm_openai_error_type(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";
    case NGX_HTTP_FORBIDDEN:
        return "permission_error";
    case NGX_HTTP_NOT_FOUND:
        return "not_found_error";
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";
    default:
        return (status >= 500) ? "server_error" : "invalid_request_error";
    }
}


/* OpenAI's vocabulary for the type; the provider's word is the code */

void
ngx_http_llm_openai_error_json(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_perror_t *err)
{
    const char  *type;

    type = ngx_http_llm_openai_error_type(err->status);

    ngx_http_llm_jbuf_lit(b, "{\"error\":{\"message\":");
    ngx_http_llm_jbuf_qstr(b, &err->message);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) type, ngx_strlen(type));
    ngx_http_llm_jbuf_lit(b, "\",\"param\":null,\"code\":");

    if (err->type.len) {
        ngx_http_llm_jbuf_qstr(b, &err->type);

    } else {
        ngx_http_llm_jbuf_lit(b, "null");
    }

    ngx_http_llm_jbuf_lit(b, "}}");
}


/* a chunk event up to its choices: id, object, created, model */

static void
ngx_http_llm_oa_chunk_head(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_jbuf_lit(b, "data: {\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"object\":\"chat.completion.chunk\","
                             "\"created\":");
    ngx_http_llm_jbuf_int(b, c->created);
    ngx_http_llm_jbuf_lit(b, ",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
}


static void
ngx_http_llm_oa_chunk_open(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_oa_chunk_head(c);
    ngx_http_llm_jbuf_lit(&c->out, ",\"choices\":[{\"index\":0,\"delta\":");
}


static void
ngx_http_llm_oa_chunk_close(ngx_http_llm_canon_t *c,
    ngx_http_llm_finish_e finish)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_jbuf_lit(b, ",\"logprobs\":null,\"finish_reason\":");
    ngx_http_llm_oa_reason(b, finish);
    ngx_http_llm_jbuf_lit(b, "}]}\n\n");
}


/* a finish reason: a string, or null while the answer goes on */

void
ngx_http_llm_oa_reason(ngx_http_llm_jbuf_t *b, ngx_http_llm_finish_e finish)
{
    const char  *reason;

    if (finish == NGX_HTTP_LLM_FINISH_NONE) {
        ngx_http_llm_jbuf_lit(b, "null");
        return;
    }

    reason = ngx_http_llm_oa_finish_reason[finish];

    ngx_http_llm_jbuf_lit(b, "\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) reason, ngx_strlen(reason));
    ngx_http_llm_jbuf_lit(b, "\"");
}


void
ngx_http_llm_oa_usage(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    int64_t  prompt, completion;

    prompt = ngx_max(c->usage.prompt, 0);
    completion = ngx_max(c->usage.completion, 0);

    ngx_http_llm_jbuf_lit(b, "{\"prompt_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt);
    ngx_http_llm_jbuf_lit(b, ",\"completion_tokens\":");
    ngx_http_llm_jbuf_int(b, completion);
    ngx_http_llm_jbuf_lit(b, ",\"total_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt + completion);
    ngx_http_llm_jbuf_lit(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    ngx_http_llm_jbuf_int(b, ngx_max(c->usage.cached, 0));
    ngx_http_llm_jbuf_lit(b, "}}");
}
