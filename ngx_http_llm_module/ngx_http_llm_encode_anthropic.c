
/*
 * The encoder of Anthropic's Messages API (the /v1/messages door): deltas
 * as message and content block events, or one message.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_canonical.h"


static void ngx_http_llm_an_start(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_text(ngx_http_llm_canon_t *c, ngx_str_t *text);
static void ngx_http_llm_an_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name);
static void ngx_http_llm_an_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args);
static void ngx_http_llm_an_error(ngx_http_llm_canon_t *c,
    ngx_http_llm_perror_t *err);
static void ngx_http_llm_an_end(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_ping(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_body(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static void ngx_http_llm_an_error_json(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_perror_t *err);
static void ngx_http_llm_an_usage(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static void ngx_http_llm_an_close_block(ngx_http_llm_canon_t *c);
static void ngx_http_llm_an_event(ngx_http_llm_canon_t *c, const char *name);


ngx_http_llm_encoder_t  ngx_http_llm_anthropic_encoder = {
    NGX_HTTP_LLM_API_ANTHROPIC,
    "msg_",
    "toolu_",
    ngx_http_llm_an_start,
    ngx_http_llm_an_text,
    ngx_http_llm_an_tool,
    ngx_http_llm_an_args,
    NULL,                               /* message_delta comes at the end */
    ngx_http_llm_an_error,
    ngx_http_llm_an_end,
    ngx_http_llm_an_ping,
    ngx_http_llm_an_body,
    ngx_http_llm_an_error_json
};


static const char  *ngx_http_llm_an_stop[] = {
    "end_turn", "end_turn", "max_tokens", "tool_use", "refusal"
};


static void
ngx_http_llm_an_start(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_an_event(c, "message_start");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_start\",\"message\":"
                             "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"message\",\"role\":"
                             "\"assistant\",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
    ngx_http_llm_jbuf_lit(b, ",\"content\":[],\"stop_reason\":null,"
                             "\"stop_sequence\":null,\"usage\":"
                             "{\"input_tokens\":");
    ngx_http_llm_jbuf_int(b, (c->usage.prompt > 0)
                             ? c->usage.prompt - ngx_max(c->usage.cached, 0)
                               - ngx_max(c->usage.cache_write, 0)
                             : 0);
    ngx_http_llm_jbuf_lit(b, ",\"output_tokens\":0}}}\n\n");
}


static void
ngx_http_llm_an_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    if (c->block_open && c->block_tool != -1) {
        ngx_http_llm_an_close_block(c);
    }

    if (!c->block_open) {
        ngx_http_llm_an_event(c, "content_block_start");
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_start\","
                                 "\"index\":");
        ngx_http_llm_jbuf_int(b, c->blocks);
        ngx_http_llm_jbuf_lit(b, ",\"content_block\":{\"type\":\"text\","
                                 "\"text\":\"\"}}\n\n");
        c->block_open = 1;
        c->block_tool = -1;
    }

    ngx_http_llm_an_event(c, "content_block_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_delta\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"delta\":{\"type\":\"text_delta\",\"text\":");
    ngx_http_llm_jbuf_qstr(b, text);
    ngx_http_llm_jbuf_lit(b, "}}\n\n");
}


static void
ngx_http_llm_an_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    if (c->block_open) {
        ngx_http_llm_an_close_block(c);
    }

    ngx_http_llm_an_event(c, "content_block_start");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_start\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"content_block\":{\"type\":\"tool_use\","
                             "\"id\":");
    ngx_http_llm_jbuf_qstr(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"name\":");

    if (name) {
        ngx_http_llm_jbuf_qstr(b, name);

    } else {
        ngx_http_llm_jbuf_lit(b, "\"\"");
    }

    ngx_http_llm_jbuf_lit(b, ",\"input\":{}}}\n\n");

    c->block_open = 1;
    c->block_tool = index;
}


static void
ngx_http_llm_an_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args)
{
    ngx_http_llm_jbuf_t  *b;

    if (!c->block_open || c->block_tool != (ngx_int_t) index) {
        /* arguments of a tool whose block is over: nowhere to go */
        return;
    }

    b = &c->out;

    ngx_http_llm_an_event(c, "content_block_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_delta\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, ",\"delta\":{\"type\":\"input_json_delta\","
                             "\"partial_json\":");
    ngx_http_llm_jbuf_qstr(b, args);
    ngx_http_llm_jbuf_lit(b, "}}\n\n");
}


static void
ngx_http_llm_an_error(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err)
{
    ngx_http_llm_an_event(c, "error");
    ngx_http_llm_an_error_json(&c->out, err);
    ngx_http_llm_jbuf_lit(&c->out, "\n\n");
}


static void
ngx_http_llm_an_end(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    if (c->block_open) {
        ngx_http_llm_an_close_block(c);
    }

    ngx_http_llm_an_event(c, "message_delta");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_delta\",\"delta\":"
                             "{\"stop_reason\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) ngx_http_llm_an_stop[c->finish],
                          ngx_strlen(ngx_http_llm_an_stop[c->finish]));
    ngx_http_llm_jbuf_lit(b, "\",\"stop_sequence\":null},\"usage\":");
    ngx_http_llm_an_usage(c, b);
    ngx_http_llm_jbuf_lit(b, "}\n\n");

    ngx_http_llm_an_event(c, "message_stop");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"message_stop\"}\n\n");
}


static void
ngx_http_llm_an_ping(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_an_event(c, "ping");
    ngx_http_llm_jbuf_lit(&c->out, "{\"type\":\"ping\"}\n\n");
}


static void
ngx_http_llm_an_body(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    ngx_str_t                   args;
    ngx_uint_t                  i;
    ngx_http_llm_canon_tool_t  *t;

    t = c->tools.elts;

    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"message\",\"role\":"
                             "\"assistant\",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
    ngx_http_llm_jbuf_lit(b, ",\"content\":[");

    if (ngx_http_llm_jbuf_len(&c->text)) {
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"text\",\"text\":");
        ngx_http_llm_jbuf_str(b, c->text.start,
                              ngx_http_llm_jbuf_len(&c->text));
        ngx_http_llm_jbuf_lit(b, "}");

        if (c->tools.nelts) {
            ngx_http_llm_jbuf_lit(b, ",");
        }
    }

    for (i = 0; i < c->tools.nelts; i++) {
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"tool_use\",\"id\":");
        ngx_http_llm_jbuf_qstr(b, &t[i].id);
        ngx_http_llm_jbuf_lit(b, ",\"name\":");
        ngx_http_llm_jbuf_qstr(b, &t[i].name);
        ngx_http_llm_jbuf_lit(b, ",\"input\":");

        /* arguments are JSON text; Anthropic wants the object */

        args.data = t[i].args.start;
        args.len = ngx_http_llm_jbuf_len(&t[i].args);

        ngx_http_llm_jbuf_object(b, &args);

        ngx_http_llm_jbuf_lit(b, "}");

        if (i + 1 < c->tools.nelts) {
            ngx_http_llm_jbuf_lit(b, ",");
        }
    }

    ngx_http_llm_jbuf_lit(b, "],\"stop_reason\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) ngx_http_llm_an_stop[c->finish],
                          ngx_strlen(ngx_http_llm_an_stop[c->finish]));
    ngx_http_llm_jbuf_lit(b, "\",\"stop_sequence\":null,\"usage\":");
    ngx_http_llm_an_usage(c, b);
    ngx_http_llm_jbuf_lit(b, "}");
}


const char *
ngx_http_llm_anthropic_error_type(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        return "invalid_request_error";
    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";
    case NGX_HTTP_FORBIDDEN:
        return "permission_error";
    case NGX_HTTP_NOT_FOUND:
        return "not_found_error";
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "request_too_large";
    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    default:
        return (status >= 500) ? "api_error" : "invalid_request_error";
    }
}


static void
ngx_http_llm_an_error_json(ngx_http_llm_jbuf_t *b, ngx_http_llm_perror_t *err)
{
    const char  *type;

    type = ngx_http_llm_anthropic_error_type(err->status);

    ngx_http_llm_jbuf_lit(b, "{\"type\":\"error\",\"error\":{\"type\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) type, ngx_strlen(type));
    ngx_http_llm_jbuf_lit(b, "\",\"message\":");
    ngx_http_llm_jbuf_qstr(b, &err->message);
    ngx_http_llm_jbuf_lit(b, "}}");
}


/* Anthropic counts cache reads apart from the other input tokens */

static void
ngx_http_llm_an_usage(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    int64_t  prompt, cached, written;

    prompt = ngx_max(c->usage.prompt, 0);
    cached = ngx_min(ngx_max(c->usage.cached, 0), prompt);
    written = ngx_min(ngx_max(c->usage.cache_write, 0), prompt - cached);

    ngx_http_llm_jbuf_lit(b, "{\"input_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt - cached - written);
    ngx_http_llm_jbuf_lit(b, ",\"cache_creation_input_tokens\":");
    ngx_http_llm_jbuf_int(b, written);
    ngx_http_llm_jbuf_lit(b, ",\"cache_read_input_tokens\":");
    ngx_http_llm_jbuf_int(b, cached);
    ngx_http_llm_jbuf_lit(b, ",\"output_tokens\":");
    ngx_http_llm_jbuf_int(b, ngx_max(c->usage.completion, 0));
    ngx_http_llm_jbuf_lit(b, "}");
}


static void
ngx_http_llm_an_close_block(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t  *b;

    b = &c->out;

    ngx_http_llm_an_event(c, "content_block_stop");
    ngx_http_llm_jbuf_lit(b, "{\"type\":\"content_block_stop\",\"index\":");
    ngx_http_llm_jbuf_int(b, c->blocks);
    ngx_http_llm_jbuf_lit(b, "}\n\n");

    c->blocks++;
    c->block_open = 0;
    c->block_tool = -1;
}


static void
ngx_http_llm_an_event(ngx_http_llm_canon_t *c, const char *name)
{
    ngx_http_llm_jbuf_lit(&c->out, "event: ");
    ngx_http_llm_jbuf_raw(&c->out, (u_char *) name, ngx_strlen(name));
    ngx_http_llm_jbuf_lit(&c->out, "\ndata: ");
}
