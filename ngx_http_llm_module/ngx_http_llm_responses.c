
/*
 * POST /v1/responses (OpenAI's Responses API). OpenAI-format targets take
 * it as it came, with their model spliced in; their answers pass, read
 * for usage (a body's "usage"; a stream's response.completed, .failed or
 * .incomplete event). Every other target gets the stateless subset of it
 * converted into OpenAI's chat format, which every dialect translates
 * from; what that subset cannot carry is refused for the whole route, so
 * that the answer does not depend on which target is chosen.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_jscan.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_responses.h"
#include "ngx_http_llm_provider.h"


typedef enum {
    NGX_HTTP_LLM_RS_OTHER = 0,
    NGX_HTTP_LLM_RS_RESPONSE,
    NGX_HTTP_LLM_RS_USAGE,
    NGX_HTTP_LLM_RS_INPUT,
    NGX_HTTP_LLM_RS_OUTPUT,
    NGX_HTTP_LLM_RS_DETAILS,
    NGX_HTTP_LLM_RS_CACHED,
    NGX_HTTP_LLM_RS_TYPE,
    NGX_HTTP_LLM_RS_DELTA,
    NGX_HTTP_LLM_RS_ITEMS,
    NGX_HTTP_LLM_RS_ERROR,
    NGX_HTTP_LLM_RS_STATUS
} ngx_http_llm_rs_key_e;


/* the keys on the path to a value, read as the answer passes */
#define NGX_HTTP_LLM_RS_DEPTH  6

typedef struct {
    ngx_http_llm_jscan_t           js;
    ngx_uint_t                     depth;
    ngx_uint_t                     base;         /* 1 in an event's
                                                    "response", else 0 */
    ngx_uint_t                     path[NGX_HTTP_LLM_RS_DEPTH];
    ngx_http_llm_usage_t           usage;
    int64_t                        content;
    unsigned                       event:1;
    unsigned                       has_usage:1;
    unsigned                       final:1;      /* the stream's last */
    unsigned                       failed:1;     /* the provider says so */
    unsigned                       closed:1;
    unsigned                       over:1;
} ngx_http_llm_rs_scan_t;


static size_t ngx_http_llm_responses_bytes(ngx_http_llm_json_t *v);
static const char *ngx_http_llm_responses_unserved(ngx_http_llm_json_t *tree);
static const char *ngx_http_llm_responses_item_invalid(
    ngx_http_llm_json_t *it);
static ngx_uint_t ngx_http_llm_responses_item_served(ngx_http_llm_json_t *it);
static void ngx_http_llm_responses_item(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *msgs, ngx_http_llm_json_t *it);
static void ngx_http_llm_responses_tools(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *out, ngx_http_llm_json_t *in);
static void ngx_http_llm_responses_format(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *out, ngx_http_llm_json_t *text);
static void ngx_http_llm_rs_scan_init(ngx_http_llm_rs_scan_t *scan,
    ngx_uint_t event);
static ngx_int_t ngx_http_llm_rs_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
static void ngx_http_llm_rs_done(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_rs_scan_t *scan);


#define ngx_http_llm_rs_is(s, lit)                                           \
    ((s) != NULL && ngx_http_llm_str_is(s, lit))


ngx_int_t
ngx_http_llm_responses_parse(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_problem_t *problem)
{
    ngx_uint_t            i;
    ngx_http_llm_json_t  *v, *it;

    if (ctx->tree == NULL || ctx->tree->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NGX_ERROR;
    }

    v = ngx_http_llm_json_get(ctx->tree, "input");

    if (v == NULL) {
        return ngx_http_llm_problem(problem, "input",
                                    "missing_required_parameter",
                                    "Missing required parameter: 'input'.");
    }

    if (v->type == NGX_HTTP_LLM_JSON_ARRAY) {
        if (v->n == 0) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "'input' must not be an empty "
                                        "array.");
        }

        if (v->n > NGX_HTTP_LLM_RESPONSES_MAX_ITEMS) {
            return ngx_http_llm_problem(problem, "input", NULL,
                                        "'input' may hold at most %d "
                                        "items, not %ui.",
                                        NGX_HTTP_LLM_RESPONSES_MAX_ITEMS,
                                        v->n);
        }

        for (it = v->child, i = 0; it; it = it->next, i++) {
            if (it->type != NGX_HTTP_LLM_JSON_OBJECT) {
                return ngx_http_llm_problem(problem, "input", NULL,
                                            "Invalid 'input[%ui]': "
                                            "expected an object.", i);
            }
        }

        ctx->chat.messages = v->n;

    } else if (v->type == NGX_HTTP_LLM_JSON_STRING) {
        ctx->chat.messages = 1;

    } else {
        return ngx_http_llm_problem(problem, "input", NULL,
                                    "Invalid 'input': expected a string or "
                                    "an array of input items.");
    }

    ctx->chat.message_bytes = ngx_http_llm_responses_bytes(v);

    v = ngx_http_llm_json_get(ctx->tree, "instructions");

    if (v && v->type != NGX_HTTP_LLM_JSON_STRING
        && v->type != NGX_HTTP_LLM_JSON_NULL)
    {
        return ngx_http_llm_problem(problem, "instructions", NULL,
                                    "Invalid 'instructions': expected a "
                                    "string.");
    }

    ctx->chat.message_bytes += ngx_http_llm_responses_bytes(v);

    return NGX_OK;
}


/* the text of strings in a value: the prompt's estimate */

static size_t
ngx_http_llm_responses_bytes(ngx_http_llm_json_t *v)
{
    size_t                n;
    ngx_http_llm_json_t  *c;

    if (v == NULL) {
        return 0;
    }

    if (v->type == NGX_HTTP_LLM_JSON_STRING) {
        return v->str.len;
    }

    n = 0;

    /* the tree's depth is bounded by the parse (128 levels) */

    for (c = v->child; c; c = c->next) {
        n += ngx_http_llm_responses_bytes(c);
    }

    return n;
}


ngx_int_t
ngx_http_llm_responses_check_route(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_uint_t              i, n;
    const char             *param, *why;
    ngx_http_llm_json_t    *v, *it;
    ngx_http_llm_target_t  *t;

    t = ctx->route->targets.elts;

    for (i = 0; i < ctx->route->targets.nelts; i++) {
        if (t[i].provider->responses_url.len == 0) {
            break;
        }
    }

    if (i == ctx->route->targets.nelts && ctx->guard == NULL) {
        /* every target takes the request as it is */
        return NGX_OK;
    }

    /* what is malformed is told so, before what is not served */

    v = ngx_http_llm_json_get(ctx->tree, "input");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING) && v->str.len == 0)
    {
        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST, NULL, "input",
                                 "Invalid 'input': an empty string.");
    }

    n = 0;

    for (it = ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY) ? v->child
                                                             : NULL;
         it; it = it->next)
    {
        why = ngx_http_llm_responses_item_invalid(it);

        if (why) {
            return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST, NULL, "input",
                                     "Invalid 'input[%ui]': %s.", n, why);
        }

        n++;
    }

    param = ngx_http_llm_responses_unserved(ctx->tree);

    if (param == NULL) {
        return NGX_OK;
    }

    if (i == ctx->route->targets.nelts) {
        /* a guarded call goes through chat, whatever the target */
        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "unsupported_parameter", param,
                                 "The parameter '%s' is not served where a "
                                 "guard policy applies: guarded Responses "
                                 "calls are translated, without stored "
                                 "state, conversations, background mode or "
                                 "built-in tools.", param);
    }

    return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                             "unsupported_parameter", param,
                             "The parameter '%s' is not served for model "
                             "`%V`: its target's provider `%V` (format "
                             "\"%V\") takes the Responses API translated, "
                             "without stored state, conversations, "
                             "background mode or built-in tools.",
                             param, &ctx->chat.model, &t[i].provider->name,
                             &t[i].provider->dialect->name);
}


/* the first member a translation cannot carry, or NULL */

static const char *
ngx_http_llm_responses_unserved(ngx_http_llm_json_t *tree)
{
    ngx_str_t            *type;
    ngx_http_llm_json_t  *v, *it;

    v = ngx_http_llm_json_get(tree, "previous_response_id");
    if (v && v->type != NGX_HTTP_LLM_JSON_NULL) {
        return "previous_response_id";
    }

    v = ngx_http_llm_json_get(tree, "conversation");
    if (v && v->type != NGX_HTTP_LLM_JSON_NULL) {
        return "conversation";
    }

    v = ngx_http_llm_json_get(tree, "prompt");
    if (v && v->type != NGX_HTTP_LLM_JSON_NULL) {
        return "prompt";
    }

    if (ngx_http_llm_json_is(ngx_http_llm_json_get(tree, "store"),
                             NGX_HTTP_LLM_JSON_TRUE))
    {
        return "store";
    }

    if (ngx_http_llm_json_is(ngx_http_llm_json_get(tree, "background"),
                             NGX_HTTP_LLM_JSON_TRUE))
    {
        return "background";
    }

    v = ngx_http_llm_json_get(tree, "tools");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY)) {
        for (it = v->child; it; it = it->next) {
            type = ngx_http_llm_json_str(it, "type");

            if (!ngx_http_llm_rs_is(type, "function")) {
                return "tools";
            }
        }
    }

    v = ngx_http_llm_json_get(tree, "tool_choice");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT)) {
        type = ngx_http_llm_json_str(v, "type");

        if (!ngx_http_llm_rs_is(type, "function")) {
            return "tool_choice";
        }
    }

    v = ngx_http_llm_json_get(tree, "input");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY)) {
        for (it = v->child; it; it = it->next) {
            if (!ngx_http_llm_responses_item_served(it)) {
                return "input";
            }
        }
    }

    return NULL;
}


/* an input item that is not one, whatever the API serves: why, or NULL */

static const char *
ngx_http_llm_responses_item_invalid(ngx_http_llm_json_t *it)
{
    ngx_http_llm_json_t  *type, *content, *part, *output;

    if (!ngx_http_llm_json_is(it, NGX_HTTP_LLM_JSON_OBJECT)) {
        return "expected an object";
    }

    type = ngx_http_llm_json_get(it, "type");

    if (type && type->type != NGX_HTTP_LLM_JSON_STRING) {
        return "its type must be a string";
    }

    if (ngx_http_llm_json_eq(type, "function_call")) {
        return (ngx_http_llm_json_str(it, "call_id") == NULL
                || ngx_http_llm_json_str(it, "name") == NULL
                || ngx_http_llm_json_str(it, "arguments") == NULL)
               ? "a function_call needs its call_id, name and arguments"
               : NULL;
    }

    if (ngx_http_llm_json_eq(type, "function_call_output")) {
        output = ngx_http_llm_json_get(it, "output");

        return (ngx_http_llm_json_str(it, "call_id") == NULL
                || !(ngx_http_llm_json_is(output, NGX_HTTP_LLM_JSON_STRING)
                     || ngx_http_llm_json_is(output,
                                             NGX_HTTP_LLM_JSON_ARRAY)))
               ? "a function_call_output needs its call_id and output"
               : NULL;
    }

    if (type && !ngx_http_llm_json_eq(type, "message")) {
        /* another item: served or not, ngx_http_llm_responses_unserved() */
        return NULL;
    }

    if (!ngx_http_llm_json_eq(ngx_http_llm_json_get(it, "role"), "user")
        && !ngx_http_llm_json_eq(ngx_http_llm_json_get(it, "role"),
                                 "assistant")
        && !ngx_http_llm_json_eq(ngx_http_llm_json_get(it, "role"), "system")
        && !ngx_http_llm_json_eq(ngx_http_llm_json_get(it, "role"),
                                 "developer"))
    {
        return "a message's role is user, assistant, system or developer";
    }

    content = ngx_http_llm_json_get(it, "content");

    if (ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_STRING)) {
        return NULL;
    }

    if (!ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_ARRAY)) {
        return "a message's content is a string or a list of parts";
    }

    for (part = content->child; part; part = part->next) {
        if (ngx_http_llm_json_str(part, "type") == NULL) {
            return "each part of a message's content needs a type";
        }
    }

    return NULL;
}


/* messages of text (and images by URL), function calls and outputs */

static ngx_uint_t
ngx_http_llm_responses_item_served(ngx_http_llm_json_t *it)
{
    ngx_str_t            *type, *role;
    ngx_http_llm_json_t  *content, *part;

    type = ngx_http_llm_json_str(it, "type");

    /* reasoning items are OpenAI models' own: left out (see below) */

    if (ngx_http_llm_rs_is(type, "function_call")
        || ngx_http_llm_rs_is(type, "function_call_output")
        || ngx_http_llm_rs_is(type, "reasoning"))
    {
        return 1;
    }

    if (type && !ngx_http_llm_rs_is(type, "message")) {
        return 0;
    }

    role = ngx_http_llm_json_str(it, "role");

    if (!ngx_http_llm_rs_is(role, "user")
        && !ngx_http_llm_rs_is(role, "assistant")
        && !ngx_http_llm_rs_is(role, "system")
        && !ngx_http_llm_rs_is(role, "developer"))
    {
        return 0;
    }

    content = ngx_http_llm_json_get(it, "content");

    if (ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_STRING)) {
        return 1;
    }

    if (!ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_ARRAY)) {
        return 0;
    }

    for (part = content->child; part; part = part->next) {
        type = ngx_http_llm_json_str(part, "type");

        if (ngx_http_llm_rs_is(type, "input_text")
            || ngx_http_llm_rs_is(type, "output_text"))
        {
            continue;
        }

        if (ngx_http_llm_rs_is(type, "input_image")
            && ngx_http_llm_json_str(part, "image_url"))
        {
            continue;
        }

        return 0;
    }

    return 1;
}


/*
 * The request in OpenAI's chat format: instructions as the first system
 * message, input items as messages, function tools, and the sampling
 * members under their chat names. Values are the client's, shared.
 */

ngx_http_llm_json_t *
ngx_http_llm_responses_convert(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *in)
{
    ngx_http_llm_json_t  *out, *msgs, *m, *v;

    out = ngx_http_llm_json_new(cv->arena, NGX_HTTP_LLM_JSON_OBJECT);
    if (out == NULL) {
        cv->error = 1;
        return NULL;
    }

    ngx_http_llm_conv_ref(cv, out, "model",
                          ngx_http_llm_json_get(in, "model"));

    msgs = ngx_http_llm_conv_add(cv, out, "messages",
                                 NGX_HTTP_LLM_JSON_ARRAY);
    if (msgs == NULL) {
        return NULL;
    }

    v = ngx_http_llm_json_get(in, "instructions");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING)) {
        m = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, m, "role", "system");
        ngx_http_llm_conv_ref(cv, m, "content", v);
    }

    v = ngx_http_llm_json_get(in, "input");

    if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING)) {
        m = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, m, "role", "user");
        ngx_http_llm_conv_ref(cv, m, "content", v);

    } else if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_ARRAY)) {
        for (m = v->child; m; m = m->next) {
            ngx_http_llm_responses_item(cv, msgs, m);
        }
    }

    for (v = in->child; v; v = v->next) {

#define ngx_http_llm_rs_key(k)  ngx_http_llm_str_is(&v->key, k)

        if (v->type == NGX_HTTP_LLM_JSON_NULL) {
            continue;
        }

        if (ngx_http_llm_rs_key("temperature")
            || ngx_http_llm_rs_key("top_p")
            || ngx_http_llm_rs_key("stream")
            || ngx_http_llm_rs_key("user")
            || ngx_http_llm_rs_key("parallel_tool_calls"))
        {
            ngx_http_llm_conv_ref(cv, out, NULL, v);

        } else if (ngx_http_llm_rs_key("max_output_tokens")) {
            ngx_http_llm_conv_ref(cv, out, "max_tokens", v);

        } else if (ngx_http_llm_rs_key("tools")) {
            ngx_http_llm_responses_tools(cv, out, v);

        } else if (ngx_http_llm_rs_key("tool_choice")) {

            if (v->type == NGX_HTTP_LLM_JSON_STRING) {
                ngx_http_llm_conv_ref(cv, out, NULL, v);

            } else {
                /* {"type":"function","name":...} */
                m = ngx_http_llm_conv_add(cv, out, "tool_choice",
                                          NGX_HTTP_LLM_JSON_OBJECT);
                ngx_http_llm_conv_lit(cv, m, "type", "function");
                m = ngx_http_llm_conv_add(cv, m, "function",
                                          NGX_HTTP_LLM_JSON_OBJECT);

                if (ngx_http_llm_json_get(v, "name")) {
                    ngx_http_llm_conv_ref(cv, m, "name",
                                          ngx_http_llm_json_get(v, "name"));
                }
            }

        } else if (ngx_http_llm_rs_key("text")) {
            ngx_http_llm_responses_format(cv, out, v);
        }

#undef ngx_http_llm_rs_key
    }

    return out;
}


static void
ngx_http_llm_responses_item(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *msgs, ngx_http_llm_json_t *it)
{
    ngx_str_t            *type, *role, *url;
    ngx_http_llm_json_t  *m, *content, *parts, *part, *p, *calls, *f;
    ngx_http_llm_jbuf_t   text;

    type = ngx_http_llm_json_str(it, "type");

    if (ngx_http_llm_rs_is(type, "reasoning")) {
        /*
         * an OpenAI model's reasoning (often encrypted), which clients
         * send back with stateless turns: no other model can read it
         */
        return;
    }

    if (ngx_http_llm_rs_is(type, "function_call")) {

        /* calls in a row are one assistant turn's */

        m = msgs->last;

        if (m == NULL
            || !ngx_http_llm_rs_is(ngx_http_llm_json_str(m, "role"),
                                   "assistant"))
        {
            m = ngx_http_llm_conv_add(cv, msgs, NULL,
                                      NGX_HTTP_LLM_JSON_OBJECT);
            ngx_http_llm_conv_lit(cv, m, "role", "assistant");
            ngx_http_llm_conv_add(cv, m, "content", NGX_HTTP_LLM_JSON_NULL);
        }

        calls = ngx_http_llm_json_get(m, "tool_calls");

        if (calls == NULL) {
            calls = ngx_http_llm_conv_add(cv, m, "tool_calls",
                                          NGX_HTTP_LLM_JSON_ARRAY);
        }

        f = ngx_http_llm_conv_call(cv, calls,
                                   ngx_http_llm_json_get(it, "call_id"),
                                   ngx_http_llm_json_get(it, "name"));

        if (ngx_http_llm_json_str(it, "arguments")) {
            ngx_http_llm_conv_ref(cv, f, "arguments",
                                  ngx_http_llm_json_get(it, "arguments"));

        } else {
            ngx_http_llm_conv_lit(cv, f, "arguments", "{}");
        }

        return;
    }

    content = (ngx_http_llm_rs_is(type, "function_call_output"))
              ? ngx_http_llm_json_get(it, "output")
              : ngx_http_llm_json_get(it, "content");

    ngx_http_llm_jbuf_init(&text, cv->pool, 256);
    ngx_http_llm_conv_text(cv, content, &text);

    if (text.error) {
        cv->error = 1;
        return;
    }

    m = ngx_http_llm_conv_add(cv, msgs, NULL, NGX_HTTP_LLM_JSON_OBJECT);

    if (ngx_http_llm_rs_is(type, "function_call_output")) {
        ngx_http_llm_conv_lit(cv, m, "role", "tool");

        if (ngx_http_llm_json_get(it, "call_id")) {
            ngx_http_llm_conv_ref(cv, m, "tool_call_id",
                                  ngx_http_llm_json_get(it, "call_id"));
        }

        ngx_http_llm_conv_str(cv, m, "content", text.start,
                              text.last - text.start);
        return;
    }

    role = ngx_http_llm_json_str(it, "role");

    ngx_http_llm_conv_ref(cv, m, "role", ngx_http_llm_json_get(it, "role"));

    /* a user's images stay parts; other turns are text */

    if (!ngx_http_llm_rs_is(role, "user")
        || !ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_ARRAY))
    {
        ngx_http_llm_conv_str(cv, m, "content", text.start,
                              text.last - text.start);
        return;
    }

    parts = ngx_http_llm_conv_add(cv, m, "content", NGX_HTTP_LLM_JSON_ARRAY);

    for (part = content->child; part; part = part->next) {
        type = ngx_http_llm_json_str(part, "type");
        url = ngx_http_llm_json_str(part, "image_url");

        if (ngx_http_llm_rs_is(type, "input_image") && url) {
            p = ngx_http_llm_conv_add(cv, parts, NULL,
                                      NGX_HTTP_LLM_JSON_OBJECT);
            ngx_http_llm_conv_lit(cv, p, "type", "image_url");
            p = ngx_http_llm_conv_add(cv, p, "image_url",
                                      NGX_HTTP_LLM_JSON_OBJECT);
            ngx_http_llm_conv_str(cv, p, "url", url->data, url->len);
            continue;
        }

        if (ngx_http_llm_json_str(part, "text") == NULL) {
            continue;
        }

        p = ngx_http_llm_conv_add(cv, parts, NULL, NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, p, "type", "text");
        ngx_http_llm_conv_ref(cv, p, "text",
                              ngx_http_llm_json_get(part, "text"));
    }
}


/* {"type":"function","name",...} into {"type":"function","function":{}} */

static void
ngx_http_llm_responses_tools(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *out, ngx_http_llm_json_t *in)
{
    ngx_http_llm_json_t  *tools, *t, *tc, *f, *v;

    if (in->type != NGX_HTTP_LLM_JSON_ARRAY || in->n == 0) {
        return;
    }

    tools = ngx_http_llm_conv_add(cv, out, "tools", NGX_HTTP_LLM_JSON_ARRAY);

    for (t = in->child; t; t = t->next) {
        if (ngx_http_llm_json_str(t, "name") == NULL) {
            continue;
        }

        tc = ngx_http_llm_conv_add(cv, tools, NULL, NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, tc, "type", "function");
        f = ngx_http_llm_conv_add(cv, tc, "function",
                                  NGX_HTTP_LLM_JSON_OBJECT);

        ngx_http_llm_conv_ref(cv, f, "name", ngx_http_llm_json_get(t, "name"));

        v = ngx_http_llm_json_get(t, "description");
        if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING)) {
            ngx_http_llm_conv_ref(cv, f, NULL, v);
        }

        v = ngx_http_llm_json_get(t, "parameters");
        if (ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_OBJECT)) {
            ngx_http_llm_conv_ref(cv, f, NULL, v);
        }
    }
}


/* text.format: json_schema and json_object as chat's response_format */

static void
ngx_http_llm_responses_format(ngx_http_llm_conv_t *cv,
    ngx_http_llm_json_t *out, ngx_http_llm_json_t *text)
{
    ngx_str_t            *type;
    ngx_http_llm_json_t  *format, *rf, *js, *v;

    format = ngx_http_llm_json_get(text, "format");
    type = ngx_http_llm_json_str(format, "type");

    if (ngx_http_llm_rs_is(type, "json_object")) {
        rf = ngx_http_llm_conv_add(cv, out, "response_format",
                                   NGX_HTTP_LLM_JSON_OBJECT);
        ngx_http_llm_conv_lit(cv, rf, "type", "json_object");
        return;
    }

    if (!ngx_http_llm_rs_is(type, "json_schema")) {
        return;
    }

    rf = ngx_http_llm_conv_add(cv, out, "response_format",
                               NGX_HTTP_LLM_JSON_OBJECT);
    ngx_http_llm_conv_lit(cv, rf, "type", "json_schema");
    js = ngx_http_llm_conv_add(cv, rf, "json_schema",
                               NGX_HTTP_LLM_JSON_OBJECT);

    for (v = format->child; v; v = v->next) {
        if (!(v->key.len == 4 && ngx_strncmp(v->key.data, "type", 4) == 0)) {
            ngx_http_llm_conv_ref(cv, js, NULL, v);
        }
    }
}


/* answers of OpenAI-format targets, as they pass */

ngx_int_t
ngx_http_llm_responses_json(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    u_char *p, size_t len, ngx_uint_t last)
{
    ngx_http_llm_rs_scan_t  *scan;

    scan = ctx->resp->dialect;

    if (scan == NULL) {
        scan = ngx_palloc(r->pool, sizeof(ngx_http_llm_rs_scan_t));
        if (scan == NULL) {
            return NGX_ERROR;
        }

        ngx_http_llm_rs_scan_init(scan, 0);
        ctx->resp->dialect = scan;
    }

    if (scan->over) {
        return NGX_OK;
    }

    if (len && ngx_http_llm_jscan_feed(&scan->js, p, len) != NGX_OK) {
        /* not JSON after all: nothing more to learn */
        scan->over = 1;
        return NGX_OK;
    }

    if (scan->closed && !scan->failed) {
        /* a whole answer, and not a failure of the target */
        ctx->resp->done = 1;
    }

    if (last && ngx_http_llm_jscan_finish(&scan->js) == NGX_OK) {
        scan->over = 1;
        ngx_http_llm_rs_done(ctx, scan);
    }

    return NGX_OK;
}


/*
 * An event of a stream: text deltas are counted (usage is estimated from
 * them if the stream breaks off); the last event carries the usage.
 * Responses streams end with that event, not with [DONE].
 */

ngx_int_t
ngx_http_llm_responses_event(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_sse_event_t *ev)
{
    ngx_http_llm_rs_scan_t  scan;

    if (ev->data.len == 0 || ev->data.data[0] != '{') {
        return NGX_OK;
    }

    ngx_http_llm_rs_scan_init(&scan, 1);

    if (ngx_http_llm_jscan_feed(&scan.js, ev->data.data, ev->data.len)
        != NGX_OK
        || ngx_http_llm_jscan_finish(&scan.js) != NGX_OK)
    {
        return NGX_OK;
    }

    ngx_http_llm_rs_done(ctx, &scan);

    if (scan.final) {
        ctx->resp->done = 1;

        if (scan.failed) {
            /* whole, but ended by the provider's error: a failure */
            ctx->resp->broken = 1;
            ev->error = 1;
        }
    }

    return NGX_OK;
}


static void
ngx_http_llm_rs_scan_init(ngx_http_llm_rs_scan_t *scan, ngx_uint_t event)
{
    ngx_memzero(scan, sizeof(ngx_http_llm_rs_scan_t));

    scan->event = event;
    scan->base = event;

    ngx_http_llm_jscan_init(&scan->js, ngx_http_llm_rs_token, scan);
}


static void
ngx_http_llm_rs_done(ngx_http_llm_ctx_t *ctx, ngx_http_llm_rs_scan_t *scan)
{
    ctx->content_bytes += scan->content;

    if (scan->has_usage) {
        ctx->usage = scan->usage;
        ctx->usage.reported = 1;
    }
}


static ngx_uint_t
ngx_http_llm_rs_key_of(ngx_http_llm_jscan_t *js)
{
    ngx_str_t  s;

    s.data = js->text;
    s.len = js->len;

#define ngx_http_llm_rs_name(lit, k)                                         \
    if (js->size == sizeof(lit) - 1 && ngx_http_llm_rs_is(&s, lit)) {         \
        return k;                                                            \
    }

    ngx_http_llm_rs_name("response", NGX_HTTP_LLM_RS_RESPONSE)
    ngx_http_llm_rs_name("usage", NGX_HTTP_LLM_RS_USAGE)
    ngx_http_llm_rs_name("input_tokens", NGX_HTTP_LLM_RS_INPUT)
    ngx_http_llm_rs_name("output_tokens", NGX_HTTP_LLM_RS_OUTPUT)
    ngx_http_llm_rs_name("input_tokens_details", NGX_HTTP_LLM_RS_DETAILS)
    ngx_http_llm_rs_name("cached_tokens", NGX_HTTP_LLM_RS_CACHED)
    ngx_http_llm_rs_name("type", NGX_HTTP_LLM_RS_TYPE)
    ngx_http_llm_rs_name("delta", NGX_HTTP_LLM_RS_DELTA)
    ngx_http_llm_rs_name("output", NGX_HTTP_LLM_RS_ITEMS)
    ngx_http_llm_rs_name("error", NGX_HTTP_LLM_RS_ERROR)
    ngx_http_llm_rs_name("status", NGX_HTTP_LLM_RS_STATUS)

#undef ngx_http_llm_rs_name

    return NGX_HTTP_LLM_RS_OTHER;
}


static void
ngx_http_llm_rs_number(ngx_http_llm_rs_scan_t *scan, ngx_http_llm_jscan_t *js)
{
    size_t       i;
    int64_t      n, *dst;
    ngx_uint_t   d, b;

    d = scan->depth;
    b = scan->base;

    if (d >= NGX_HTTP_LLM_RS_DEPTH
        || (b && scan->path[1] != NGX_HTTP_LLM_RS_RESPONSE)
        || d < b + 2 || scan->path[b + 1] != NGX_HTTP_LLM_RS_USAGE)
    {
        return;
    }

    dst = NULL;

    if (d == b + 2 && scan->path[d] == NGX_HTTP_LLM_RS_INPUT) {
        dst = &scan->usage.prompt;

    } else if (d == b + 2 && scan->path[d] == NGX_HTTP_LLM_RS_OUTPUT) {
        dst = &scan->usage.completion;

    } else if (d == b + 3 && scan->path[b + 2] == NGX_HTTP_LLM_RS_DETAILS
               && scan->path[d] == NGX_HTTP_LLM_RS_CACHED)
    {
        dst = &scan->usage.cached;
    }

    if (dst == NULL || js->size != js->len || js->len > 12) {
        return;
    }

    n = 0;

    for (i = 0; i < js->len; i++) {
        if (js->text[i] < '0' || js->text[i] > '9') {
            return;
        }

        n = n * 10 + (js->text[i] - '0');
    }

    *dst = n;
    scan->has_usage = 1;
}


static void
ngx_http_llm_rs_string(ngx_http_llm_rs_scan_t *scan, ngx_http_llm_jscan_t *js)
{
    ngx_str_t  s;

    if (scan->event && scan->depth == 1) {

        if (scan->path[1] == NGX_HTTP_LLM_RS_DELTA) {
            scan->content += js->size;

        } else if (scan->path[1] == NGX_HTTP_LLM_RS_TYPE) {
            s.data = js->text;
            s.len = js->len;

            /* the last event of a stream, and an error, which ends it */

            if (ngx_http_llm_rs_is(&s, "response.failed")
                || ngx_http_llm_rs_is(&s, "error"))
            {
                scan->final = 1;
                scan->failed = 1;

            } else if (ngx_http_llm_rs_is(&s, "response.completed")
                       || ngx_http_llm_rs_is(&s, "response.incomplete"))
            {
                scan->final = 1;
            }
        }

        return;
    }

    if (!scan->event && scan->depth == 1
        && scan->path[1] == NGX_HTTP_LLM_RS_STATUS)
    {
        s.data = js->text;
        s.len = js->len;

        if (ngx_http_llm_rs_is(&s, "failed")) {
            scan->failed = 1;
        }

        return;
    }

    if (!scan->event && scan->depth > 1
        && scan->path[1] == NGX_HTTP_LLM_RS_ITEMS)
    {
        scan->content += js->size;
    }
}


static ngx_int_t
ngx_http_llm_rs_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    ngx_http_llm_rs_scan_t  *scan = js->data;

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_OBJECT:
    case NGX_HTTP_LLM_JSCAN_ARRAY:
        scan->depth++;

        if (scan->depth < NGX_HTTP_LLM_RS_DEPTH) {
            scan->path[scan->depth] = NGX_HTTP_LLM_RS_OTHER;
        }

        /* an answer's "error" is null unless the model failed */

        if (!scan->event && scan->depth == 2
            && scan->path[1] == NGX_HTTP_LLM_RS_ERROR)
        {
            scan->failed = 1;
        }

        break;

    case NGX_HTTP_LLM_JSCAN_END:
        scan->depth--;

        if (scan->depth == 0) {
            scan->closed = 1;
        }

        break;

    case NGX_HTTP_LLM_JSCAN_KEY:
        if (scan->depth < NGX_HTTP_LLM_RS_DEPTH) {
            scan->path[scan->depth] = ngx_http_llm_rs_key_of(js);
        }

        break;

    case NGX_HTTP_LLM_JSCAN_STRING:
        ngx_http_llm_rs_string(scan, js);
        break;

    case NGX_HTTP_LLM_JSCAN_NUMBER:
        ngx_http_llm_rs_number(scan, js);
        break;

    default:
        break;
    }

    return NGX_OK;
}
