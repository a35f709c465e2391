
/*
 * The encoder of OpenAI's legacy completions API (/v1/completions):
 * text_completion objects, the text in choices[].text, streamed or whole;
 * used where a guard policy reads the answers of /v1/completions.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_canonical.h"


static void ngx_http_llm_tc_start(ngx_http_llm_canon_t *c);
static void ngx_http_llm_tc_text(ngx_http_llm_canon_t *c, ngx_str_t *text);
static void ngx_http_llm_tc_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name);
static void ngx_http_llm_tc_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args);
static void ngx_http_llm_tc_finish(ngx_http_llm_canon_t *c);
static void ngx_http_llm_tc_end(ngx_http_llm_canon_t *c);
static void ngx_http_llm_tc_body(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static void ngx_http_llm_tc_chunk(ngx_http_llm_canon_t *c, ngx_str_t *text,
    ngx_http_llm_finish_e finish);
static void ngx_http_llm_tc_head(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);


/* a text and a finish, no tool calls (a provider's are dropped, as the
   legacy API has none) */

ngx_http_llm_encoder_t  ngx_http_llm_completions_encoder = {
    NGX_HTTP_LLM_API_OPENAI,
    "cmpl-",
    "call_",
    ngx_http_llm_tc_start,
    ngx_http_llm_tc_text,
    ngx_http_llm_tc_tool,
    ngx_http_llm_tc_args,
    ngx_http_llm_tc_finish,
    ngx_http_llm_oa_error,
    ngx_http_llm_tc_end,
    ngx_http_llm_oa_ping,
    ngx_http_llm_tc_body,
    ngx_http_llm_openai_error_json
};


/* legacy completions: a stream starts with its first text */

static void
ngx_http_llm_tc_start(ngx_http_llm_canon_t *c)
{
}


static void
ngx_http_llm_tc_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    ngx_http_llm_tc_chunk(c, text, NGX_HTTP_LLM_FINISH_NONE);
}


static void
ngx_http_llm_tc_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
}


static void
ngx_http_llm_tc_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args)
{
}


static void
ngx_http_llm_tc_finish(ngx_http_llm_canon_t *c)
{
    ngx_str_t  empty = ngx_null_string;

    ngx_http_llm_tc_chunk(c, &empty, c->finish);
}


static void
ngx_http_llm_tc_end(ngx_http_llm_canon_t *c)
{
    ngx_str_t             empty = ngx_null_string;
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    if (!c->finished) {
        ngx_http_llm_tc_chunk(c, &empty, NGX_HTTP_LLM_FINISH_STOP);
    }

    if (c->ctx->chat.include_usage && c->has_usage) {
        ngx_http_llm_jbuf_lit(b, "data: ");
        ngx_http_llm_tc_head(c, b);
        ngx_http_llm_jbuf_lit(b, ",\"choices\":[],\"usage\":");
        ngx_http_llm_oa_usage(c, b);
        ngx_http_llm_jbuf_lit(b, "}\n\n");
    }

    ngx_http_llm_jbuf_lit(b, "data: [DONE]\n\n");
}


static void
ngx_http_llm_tc_body(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    ngx_http_llm_tc_head(c, b);
    ngx_http_llm_jbuf_lit(b, ",\"choices\":[{\"text\":");
    ngx_http_llm_jbuf_str(b, c->text.start, ngx_http_llm_jbuf_len(&c->text));
    ngx_http_llm_jbuf_lit(b, ",\"index\":0,\"logprobs\":null,"
                             "\"finish_reason\":");
    ngx_http_llm_oa_reason(b, c->finish ? c->finish
                                        : NGX_HTTP_LLM_FINISH_STOP);
    ngx_http_llm_jbuf_lit(b, "}]");

    if (c->has_usage) {
        ngx_http_llm_jbuf_lit(b, ",\"usage\":");
        ngx_http_llm_oa_usage(c, b);
    }

    ngx_http_llm_jbuf_lit(b, "}");
}


static void
ngx_http_llm_tc_chunk(ngx_http_llm_canon_t *c, ngx_str_t *text,
    ngx_http_llm_finish_e finish)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_jbuf_lit(b, "data: ");
    ngx_http_llm_tc_head(c, b);
    ngx_http_llm_jbuf_lit(b, ",\"choices\":[{\"text\":");
    ngx_http_llm_jbuf_qstr(b, text);
    ngx_http_llm_jbuf_lit(b, ",\"index\":0,\"logprobs\":null,"
                             "\"finish_reason\":");
    ngx_http_llm_oa_reason(b, finish);
    ngx_http_llm_jbuf_lit(b, "}]}\n\n");
}


/* a text_completion up to its choices: id, object, created, model */

static void
ngx_http_llm_tc_head(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"object\":\"text_completion\",\"created\":");
    ngx_http_llm_jbuf_int(b, c->created);
    ngx_http_llm_jbuf_lit(b, ",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
}
