
/*
 * The encoder of OpenAI's Responses API, for answers of translated
 * targets: one "response" object, or the stream of events the official
 * SDKs' helpers accumulate (response.created, output items opened,
 * their deltas, closed with their whole content, response.completed).
 * Every item is opened before its deltas and closed whole, so a stream
 * keeps the text and arguments of the item that is open.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_canonical.h"


/*
 * what a stream keeps of its answer for response.completed (the items
 * closed and the open one): past it the stream ends with an error event
 */
#define NGX_HTTP_LLM_RS_MAX_OUTPUT  (64 * 1024 * 1024)


typedef enum {
    NGX_HTTP_LLM_RS_NONE = 0,
    NGX_HTTP_LLM_RS_MESSAGE,
    NGX_HTTP_LLM_RS_CALL
} ngx_http_llm_rs_item_e;


/* a stream's state */
typedef struct {
    ngx_uint_t                     seq;         /* sequence_number */
    ngx_uint_t                     items;       /* output items opened */
    ngx_http_llm_rs_item_e         kind;        /* of the open item */
    ngx_uint_t                     tool;        /* its canonical index */
    ngx_str_t                      item_id;
    ngx_str_t                      call_id;
    ngx_str_t                      name;
    ngx_http_llm_jbuf_t            text;        /* its text or arguments */
    ngx_http_llm_jbuf_t            output;      /* items closed, as JSON */
} ngx_http_llm_rs_state_t;


static void ngx_http_llm_rs_id(ngx_http_llm_canon_t *c);
static void ngx_http_llm_rs_start(ngx_http_llm_canon_t *c);
static void ngx_http_llm_rs_text(ngx_http_llm_canon_t *c, ngx_str_t *text);
static void ngx_http_llm_rs_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name);
static void ngx_http_llm_rs_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args);
static void ngx_http_llm_rs_error(ngx_http_llm_canon_t *c,
    ngx_http_llm_perror_t *err);
static void ngx_http_llm_rs_end(ngx_http_llm_canon_t *c);
static void ngx_http_llm_rs_ping(ngx_http_llm_canon_t *c);
static void ngx_http_llm_rs_body(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b);
static ngx_http_llm_rs_state_t *ngx_http_llm_rs_state(
    ngx_http_llm_canon_t *c);
static ngx_uint_t ngx_http_llm_rs_keep(ngx_http_llm_canon_t *c,
    ngx_http_llm_rs_state_t *st, ngx_str_t *s);
static void ngx_http_llm_rs_event(ngx_http_llm_canon_t *c, const char *type);
static void ngx_http_llm_rs_item_head(ngx_http_llm_canon_t *c,
    ngx_http_llm_rs_state_t *st);
static void ngx_http_llm_rs_open(ngx_http_llm_canon_t *c,
    ngx_http_llm_rs_item_e kind);
static void ngx_http_llm_rs_close(ngx_http_llm_canon_t *c);
static void ngx_http_llm_rs_message(ngx_http_llm_jbuf_t *b, ngx_str_t *id,
    const char *status, ngx_http_llm_jbuf_t *text);
static void ngx_http_llm_rs_call(ngx_http_llm_jbuf_t *b, ngx_str_t *id,
    ngx_str_t *call_id, ngx_str_t *name, const char *status,
    ngx_http_llm_jbuf_t *args);
static void ngx_http_llm_rs_response(ngx_http_llm_canon_t *c,
    ngx_http_llm_jbuf_t *b, const char *status, ngx_http_llm_jbuf_t *output,
    ngx_uint_t usage);


/* what a buffer holds, as a JSON string */
#define ngx_http_llm_rs_jstr(b, text)                                        \
    ngx_http_llm_jbuf_str(b, (text)->start, ngx_http_llm_jbuf_len(text))


ngx_http_llm_encoder_t  ngx_http_llm_responses_encoder = {
    NGX_HTTP_LLM_API_RESPONSES,
    "resp_",
    "call_",
    ngx_http_llm_rs_start,
    ngx_http_llm_rs_text,
    ngx_http_llm_rs_tool,
    ngx_http_llm_rs_args,
    NULL,                               /* the finish goes with the end */
    ngx_http_llm_rs_error,
    ngx_http_llm_rs_end,
    ngx_http_llm_rs_ping,
    ngx_http_llm_rs_body,
    ngx_http_llm_openai_error_json
};


/* memory for a stream's state; a failure shows as c->out's error */

static ngx_http_llm_rs_state_t *
ngx_http_llm_rs_state(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_rs_state_t  *st;

    if (c->state) {
        return c->state;
    }

    st = ngx_pcalloc(c->r->pool, sizeof(ngx_http_llm_rs_state_t));
    if (st == NULL) {
        c->out.error = 1;
        return NULL;
    }

    ngx_http_llm_jbuf_init(&st->text, c->r->pool, 256);
    ngx_http_llm_jbuf_init(&st->output, c->r->pool, 256);

    if (st->text.error || st->output.error) {
        c->out.error = 1;
        return NULL;
    }

    c->state = st;

    return st;
}


/* whether the answer may grow by s; else the stream ends with an error */

static ngx_uint_t
ngx_http_llm_rs_keep(ngx_http_llm_canon_t *c, ngx_http_llm_rs_state_t *st,
    ngx_str_t *s)
{
    ngx_http_llm_perror_t  err;

    if (ngx_http_llm_jbuf_len(&st->text) + ngx_http_llm_jbuf_len(&st->output)
        + s->len <= NGX_HTTP_LLM_RS_MAX_OUTPUT)
    {
        return 1;
    }

    ngx_log_error(NGX_LOG_WARN, c->r->connection->log, 0,
                  "llm: the answer of provider \"%V\" is longer than a "
                  "Responses stream keeps", &c->ctx->target->provider->name);

    err.status = NGX_HTTP_BAD_GATEWAY;
    ngx_str_set(&err.type, "response_too_large");
    ngx_str_set(&err.message, "The answer is longer than the gateway keeps "
                              "for response.completed (64 MiB).");

    ngx_http_llm_rs_error(c, &err);

    /* no delta follows: the filter ends the stream (response.c) */
    c->failed = 1;
    c->done = 1;

    return 0;
}


/* Responses ids start with "resp_": the provider's answer id, prefixed */

static void
ngx_http_llm_rs_id(ngx_http_llm_canon_t *c)
{
    u_char  *p;

    if (c->id.len >= 5 && ngx_strncmp(c->id.data, "resp_", 5) == 0) {
        return;
    }

    p = ngx_pnalloc(c->r->pool, c->id.len + 5);
    if (p == NULL) {
        c->out.error = 1;
        return;
    }

    ngx_memcpy(ngx_cpymem(p, "resp_", 5), c->id.data, c->id.len);

    c->id.data = p;
    c->id.len += 5;
}


static void
ngx_http_llm_rs_start(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_rs_id(c);

    ngx_http_llm_rs_event(c, "response.created");
    ngx_http_llm_jbuf_lit(&c->out, ",\"response\":");
    ngx_http_llm_rs_response(c, &c->out, "in_progress", NULL, 0);
    ngx_http_llm_jbuf_lit(&c->out, "}\n\n");

    ngx_http_llm_rs_event(c, "response.in_progress");
    ngx_http_llm_jbuf_lit(&c->out, ",\"response\":");
    ngx_http_llm_rs_response(c, &c->out, "in_progress", NULL, 0);
    ngx_http_llm_jbuf_lit(&c->out, "}\n\n");
}


static void
ngx_http_llm_rs_text(ngx_http_llm_canon_t *c, ngx_str_t *text)
{
    ngx_http_llm_rs_state_t  *st;

    st = ngx_http_llm_rs_state(c);
    if (st == NULL) {
        return;
    }

    if (!ngx_http_llm_rs_keep(c, st, text)) {
        return;
    }

    if (st->kind != NGX_HTTP_LLM_RS_MESSAGE) {
        ngx_http_llm_rs_close(c);
        ngx_http_llm_rs_open(c, NGX_HTTP_LLM_RS_MESSAGE);
    }

    ngx_http_llm_jbuf_raw(&st->text, text->data, text->len);

    ngx_http_llm_rs_event(c, "response.output_text.delta");
    ngx_http_llm_rs_item_head(c, st);
    ngx_http_llm_jbuf_lit(&c->out, ",\"content_index\":0,\"delta\":");
    ngx_http_llm_jbuf_qstr(&c->out, text);
    ngx_http_llm_jbuf_lit(&c->out, ",\"logprobs\":[]}\n\n");
}


static void
ngx_http_llm_rs_tool(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name)
{
    ngx_http_llm_rs_state_t  *st;

    st = ngx_http_llm_rs_state(c);
    if (st == NULL) {
        return;
    }

    ngx_http_llm_rs_close(c);

    /* copied: the event trees they come from are reused */

    st->tool = index;
    st->call_id.len = id->len;
    st->call_id.data = ngx_pstrdup(c->r->pool, id);
    st->name.len = name ? name->len : 0;
    st->name.data = name ? ngx_pstrdup(c->r->pool, name) : NULL;

    if ((id->len && st->call_id.data == NULL)
        || (st->name.len && st->name.data == NULL))
    {
        c->out.error = 1;
        return;
    }

    ngx_http_llm_rs_open(c, NGX_HTTP_LLM_RS_CALL);
}


/* arguments of the open call (a call's arguments come before the next) */

static void
ngx_http_llm_rs_args(ngx_http_llm_canon_t *c, ngx_uint_t index,
    ngx_str_t *args)
{
    ngx_http_llm_rs_state_t  *st;

    st = ngx_http_llm_rs_state(c);
    if (st == NULL || st->kind != NGX_HTTP_LLM_RS_CALL || st->tool != index
        || !ngx_http_llm_rs_keep(c, st, args))
    {
        return;
    }

    ngx_http_llm_jbuf_raw(&st->text, args->data, args->len);

    ngx_http_llm_rs_event(c, "response.function_call_arguments.delta");
    ngx_http_llm_rs_item_head(c, st);
    ngx_http_llm_jbuf_lit(&c->out, ",\"delta\":");
    ngx_http_llm_jbuf_qstr(&c->out, args);
    ngx_http_llm_jbuf_lit(&c->out, "}\n\n");
}


/*
 * The provider's error in the middle of a stream: an "error" event whose
 * data also holds OpenAI's error object, which the SDKs raise.
 */

static void
ngx_http_llm_rs_error(ngx_http_llm_canon_t *c, ngx_http_llm_perror_t *err)
{
    ngx_http_llm_jbuf_t  e;

    ngx_http_llm_jbuf_init(&e, c->r->pool, 256 + err->message.len * 2);
    ngx_http_llm_openai_error_json(&e, err);

    if (e.error) {
        c->out.error = 1;
        return;
    }

    ngx_http_llm_rs_event(c, "error");
    ngx_http_llm_jbuf_lit(&c->out, ",\"message\":");
    ngx_http_llm_jbuf_qstr(&c->out, &err->message);
    ngx_http_llm_jbuf_lit(&c->out, ",");

    /* {"error":{...}} without its opening brace */
    ngx_http_llm_jbuf_raw(&c->out, e.start + 1, ngx_http_llm_jbuf_len(&e) - 1);
    ngx_http_llm_jbuf_lit(&c->out, "\n\n");
}


static void
ngx_http_llm_rs_end(ngx_http_llm_canon_t *c)
{
    ngx_uint_t                complete;
    ngx_http_llm_rs_state_t  *st;

    st = ngx_http_llm_rs_state(c);
    if (st == NULL) {
        return;
    }

    ngx_http_llm_rs_close(c);

    complete = (c->finish != NGX_HTTP_LLM_FINISH_LENGTH
                && c->finish != NGX_HTTP_LLM_FINISH_CONTENT_FILTER);

    ngx_http_llm_rs_event(c, complete ? "response.completed"
                                      : "response.incomplete");
    ngx_http_llm_jbuf_lit(&c->out, ",\"response\":");
    ngx_http_llm_rs_response(c, &c->out,
                             complete ? "completed" : "incomplete",
                             &st->output, 1);
    ngx_http_llm_jbuf_lit(&c->out, "}\n\n");
}


/* idle streams: an SSE comment, which clients ignore */

static void
ngx_http_llm_rs_ping(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_lit(&c->out, ": ping\n\n");
}


/* a gathered answer: its text as a message, then its function calls */

static void
ngx_http_llm_rs_body(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b)
{
    ngx_str_t                   id;
    ngx_uint_t                  i, complete;
    ngx_http_llm_jbuf_t         output;
    ngx_http_llm_canon_tool_t  *t;

    ngx_http_llm_rs_id(c);

    ngx_http_llm_jbuf_init(&output, c->r->pool,
                           ngx_http_llm_jbuf_len(&c->text) * 2 + 256);

    if (ngx_http_llm_jbuf_len(&c->text) || c->tools.nelts == 0) {
        if (ngx_http_llm_canon_random_id(c->r->pool, "msg_", &id)
            != NGX_OK)
        {
            b->error = 1;
            return;
        }

        ngx_http_llm_rs_message(&output, &id, "completed", &c->text);
    }

    t = c->tools.elts;

    for (i = 0; i < c->tools.nelts; i++) {
        if (ngx_http_llm_canon_random_id(c->r->pool, "fc_", &id) != NGX_OK) {
            b->error = 1;
            return;
        }

        if (ngx_http_llm_jbuf_len(&output)) {
            ngx_http_llm_jbuf_lit(&output, ",");
        }

        ngx_http_llm_rs_call(&output, &id, &t[i].id, &t[i].name,
                             "completed", &t[i].args);
    }

    if (output.error) {
        b->error = 1;
        return;
    }

    complete = (c->finish != NGX_HTTP_LLM_FINISH_LENGTH
                && c->finish != NGX_HTTP_LLM_FINISH_CONTENT_FILTER);

    ngx_http_llm_rs_response(c, b, complete ? "completed" : "incomplete",
                             &output, 1);
}


/* "event: <type>" and the data up to its sequence number */

static void
ngx_http_llm_rs_event(ngx_http_llm_canon_t *c, const char *type)
{
    size_t                    len;
    ngx_http_llm_rs_state_t  *st;

    st = ngx_http_llm_rs_state(c);
    if (st == NULL) {
        return;
    }

    len = ngx_strlen(type);

    ngx_http_llm_jbuf_lit(&c->out, "event: ");
    ngx_http_llm_jbuf_raw(&c->out, (u_char *) type, len);
    ngx_http_llm_jbuf_lit(&c->out, "\ndata: {\"type\":\"");
    ngx_http_llm_jbuf_raw(&c->out, (u_char *) type, len);
    ngx_http_llm_jbuf_lit(&c->out, "\",\"sequence_number\":");
    ngx_http_llm_jbuf_int(&c->out, st->seq++);
}


/* the open item's place: its id and output index */

static void
ngx_http_llm_rs_item_head(ngx_http_llm_canon_t *c,
    ngx_http_llm_rs_state_t *st)
{
    ngx_http_llm_jbuf_lit(&c->out, ",\"item_id\":");
    ngx_http_llm_jbuf_qstr(&c->out, &st->item_id);
    ngx_http_llm_jbuf_lit(&c->out, ",\"output_index\":");
    ngx_http_llm_jbuf_int(&c->out, st->items - 1);
}


static void
ngx_http_llm_rs_open(ngx_http_llm_canon_t *c, ngx_http_llm_rs_item_e kind)
{
    ngx_http_llm_rs_state_t  *st;

    st = c->state;

    if (ngx_http_llm_canon_random_id(c->r->pool,
                                     (kind == NGX_HTTP_LLM_RS_MESSAGE)
                                     ? "msg_" : "fc_",
                                     &st->item_id)
        != NGX_OK)
    {
        c->out.error = 1;
        return;
    }

    st->kind = kind;
    st->items++;
    ngx_http_llm_jbuf_reset(&st->text);

    ngx_http_llm_rs_event(c, "response.output_item.added");
    ngx_http_llm_jbuf_lit(&c->out, ",\"output_index\":");
    ngx_http_llm_jbuf_int(&c->out, st->items - 1);
    ngx_http_llm_jbuf_lit(&c->out, ",\"item\":");

    if (kind == NGX_HTTP_LLM_RS_CALL) {
        ngx_http_llm_rs_call(&c->out, &st->item_id, &st->call_id, &st->name,
                             "in_progress", &st->text);
        ngx_http_llm_jbuf_lit(&c->out, "}\n\n");
        return;
    }

    ngx_http_llm_rs_message(&c->out, &st->item_id, "in_progress", NULL);
    ngx_http_llm_jbuf_lit(&c->out, "}\n\n");

    ngx_http_llm_rs_event(c, "response.content_part.added");
    ngx_http_llm_rs_item_head(c, st);
    ngx_http_llm_jbuf_lit(&c->out, ",\"content_index\":0,\"part\":"
                          "{\"type\":\"output_text\",\"text\":\"\","
                          "\"annotations\":[]}}\n\n");
}


/* the open item is whole: its done events, and it joins the output */

static void
ngx_http_llm_rs_close(ngx_http_llm_canon_t *c)
{
    ngx_http_llm_jbuf_t      *b;
    ngx_http_llm_rs_state_t  *st;

    st = c->state;
    b = &c->out;

    if (st == NULL || st->kind == NGX_HTTP_LLM_RS_NONE) {
        return;
    }

    if (ngx_http_llm_jbuf_len(&st->output)) {
        ngx_http_llm_jbuf_lit(&st->output, ",");
    }

    if (st->kind == NGX_HTTP_LLM_RS_CALL) {
        ngx_http_llm_rs_event(c, "response.function_call_arguments.done");
        ngx_http_llm_rs_item_head(c, st);
        ngx_http_llm_jbuf_lit(b, ",\"arguments\":");
        ngx_http_llm_rs_jstr(b, &st->text);
        ngx_http_llm_jbuf_lit(b, "}\n\n");

        ngx_http_llm_rs_call(&st->output, &st->item_id, &st->call_id,
                             &st->name, "completed", &st->text);

    } else {
        ngx_http_llm_rs_event(c, "response.output_text.done");
        ngx_http_llm_rs_item_head(c, st);
        ngx_http_llm_jbuf_lit(b, ",\"content_index\":0,\"text\":");
        ngx_http_llm_rs_jstr(b, &st->text);
        ngx_http_llm_jbuf_lit(b, ",\"logprobs\":[]}\n\n");

        ngx_http_llm_rs_event(c, "response.content_part.done");
        ngx_http_llm_rs_item_head(c, st);
        ngx_http_llm_jbuf_lit(b, ",\"content_index\":0,\"part\":"
                                 "{\"type\":\"output_text\",\"text\":");
        ngx_http_llm_rs_jstr(b, &st->text);
        ngx_http_llm_jbuf_lit(b, ",\"annotations\":[]}}\n\n");

        ngx_http_llm_rs_message(&st->output, &st->item_id, "completed",
                                &st->text);
    }

    ngx_http_llm_rs_event(c, "response.output_item.done");
    ngx_http_llm_jbuf_lit(b, ",\"output_index\":");
    ngx_http_llm_jbuf_int(b, st->items - 1);
    ngx_http_llm_jbuf_lit(b, ",\"item\":");

    if (st->kind == NGX_HTTP_LLM_RS_CALL) {
        ngx_http_llm_rs_call(b, &st->item_id, &st->call_id, &st->name,
                             "completed", &st->text);

    } else {
        ngx_http_llm_rs_message(b, &st->item_id, "completed", &st->text);
    }

    ngx_http_llm_jbuf_lit(b, "}\n\n");

    if (st->output.error) {
        b->error = 1;
    }

    st->kind = NGX_HTTP_LLM_RS_NONE;
}


/* an output message; text NULL: no content yet */

static void
ngx_http_llm_rs_message(ngx_http_llm_jbuf_t *b, ngx_str_t *id,
    const char *status, ngx_http_llm_jbuf_t *text)
{
    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"message\",\"status\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) status, ngx_strlen(status));
    ngx_http_llm_jbuf_lit(b, "\",\"role\":\"assistant\",\"content\":[");

    if (text) {
        ngx_http_llm_jbuf_lit(b, "{\"type\":\"output_text\",\"text\":");
        ngx_http_llm_rs_jstr(b, text);
        ngx_http_llm_jbuf_lit(b, ",\"annotations\":[]}");
    }

    ngx_http_llm_jbuf_lit(b, "]}");
}


static void
ngx_http_llm_rs_call(ngx_http_llm_jbuf_t *b, ngx_str_t *id,
    ngx_str_t *call_id, ngx_str_t *name, const char *status,
    ngx_http_llm_jbuf_t *args)
{
    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, id);
    ngx_http_llm_jbuf_lit(b, ",\"type\":\"function_call\",\"status\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) status, ngx_strlen(status));
    ngx_http_llm_jbuf_lit(b, "\",\"call_id\":");
    ngx_http_llm_jbuf_qstr(b, call_id);
    ngx_http_llm_jbuf_lit(b, ",\"name\":");
    ngx_http_llm_jbuf_qstr(b, name);
    ngx_http_llm_jbuf_lit(b, ",\"arguments\":");
    ngx_http_llm_rs_jstr(b, args);
    ngx_http_llm_jbuf_lit(b, "}");
}


/* the response object; usage only once the answer is whole */

static void
ngx_http_llm_rs_response(ngx_http_llm_canon_t *c, ngx_http_llm_jbuf_t *b,
    const char *status, ngx_http_llm_jbuf_t *output, ngx_uint_t usage)
{
    int64_t  prompt, completion;

    ngx_http_llm_jbuf_lit(b, "{\"id\":");
    ngx_http_llm_jbuf_qstr(b, &c->id);
    ngx_http_llm_jbuf_lit(b, ",\"object\":\"response\",\"created_at\":");
    ngx_http_llm_jbuf_int(b, c->created);
    ngx_http_llm_jbuf_lit(b, ",\"status\":\"");
    ngx_http_llm_jbuf_raw(b, (u_char *) status, ngx_strlen(status));
    ngx_http_llm_jbuf_lit(b, "\",\"error\":null,\"incomplete_details\":");

    if (c->finish == NGX_HTTP_LLM_FINISH_LENGTH) {
        ngx_http_llm_jbuf_lit(b, "{\"reason\":\"max_output_tokens\"}");

    } else if (c->finish == NGX_HTTP_LLM_FINISH_CONTENT_FILTER) {
        ngx_http_llm_jbuf_lit(b, "{\"reason\":\"content_filter\"}");

    } else {
        ngx_http_llm_jbuf_lit(b, "null");
    }

    ngx_http_llm_jbuf_lit(b, ",\"model\":");
    ngx_http_llm_jbuf_qstr(b, &c->model);
    ngx_http_llm_jbuf_lit(b, ",\"output\":[");

    if (output) {
        ngx_http_llm_jbuf_raw(b, output->start, ngx_http_llm_jbuf_len(output));
    }

    ngx_http_llm_jbuf_lit(b, "],\"usage\":");

    if (!usage || !c->has_usage) {
        ngx_http_llm_jbuf_lit(b, "null}");
        return;
    }

    prompt = ngx_max(c->usage.prompt, 0);
    completion = ngx_max(c->usage.completion, 0);

    ngx_http_llm_jbuf_lit(b, "{\"input_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt);
    ngx_http_llm_jbuf_lit(b, ",\"input_tokens_details\":{\"cached_tokens\":");
    ngx_http_llm_jbuf_int(b, ngx_max(c->usage.cached, 0));
    ngx_http_llm_jbuf_lit(b, "},\"output_tokens\":");
    ngx_http_llm_jbuf_int(b, completion);
    ngx_http_llm_jbuf_lit(b, ",\"output_tokens_details\":"
                             "{\"reasoning_tokens\":0},\"total_tokens\":");
    ngx_http_llm_jbuf_int(b, prompt + completion);
    ngx_http_llm_jbuf_lit(b, "}}");
}
