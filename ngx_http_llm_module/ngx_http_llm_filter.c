
/*
 * Response filters of gateway locations.
 *
 * The header filter sees a provider's status before anything reaches the
 * client: a retryable failure is turned into a failover (the attempt is
 * finalized with 502, which error_page sends back to the handler), a
 * stream is switched to unbuffered so each event goes out as it arrives.
 * Error pages nginx itself generates (413, 405, 502, ...) are replaced by
 * OpenAI-shaped JSON, so a client never sees an HTML page.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_error.h"


static ngx_int_t ngx_http_llm_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_llm_replace_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_replace_body(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status, const char *code,
    ngx_str_t *message);
static ngx_int_t ngx_http_llm_is_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_failover_status(ngx_uint_t status);
static void ngx_http_llm_clear_headers_out(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_provider_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_llm_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_llm_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_llm_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                status;
    ngx_table_elt_t          *h;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    if (!llcf->enable || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx && ctx->own_response) {
        return ngx_http_next_header_filter(r);
    }

    if (r->err_status >= NGX_HTTP_BAD_REQUEST) {
        /* a page nginx generated itself */
        return ngx_http_llm_replace_error_page(r, ctx);
    }

    if (ctx == NULL || !ctx->proxying || r->upstream == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* a provider's response; nothing has been sent to the client yet */

    status = r->headers_out.status;

    if (ngx_http_llm_failover_status(status) && ngx_http_llm_can_retry(r, ctx))
    {
        ctx->failover = 1;
        ctx->failed_status = status;
        ctx->failed_provider = ctx->target->provider;

        /* the next attempt's response must not inherit these headers */
        ngx_http_llm_clear_headers_out(r);

        return NGX_HTTP_BAD_GATEWAY;
    }

    if (status >= NGX_HTTP_BAD_REQUEST && !ngx_http_llm_is_json(r)) {
        return ngx_http_llm_provider_error_page(r, ctx, status);
    }

    if (ctx->chat.stream && status == NGX_HTTP_OK) {

        /*
         * Server-sent events go out as they arrive. The upstream reads
         * u->buffering after this filter returns, as it would after an
         * "X-Accel-Buffering: no" from the provider.
         */

        r->upstream->buffering = 0;

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        /* and so do nginx instances in front of this one */

        h->hash = 1;
        ngx_str_set(&h->key, "X-Accel-Buffering");
        ngx_str_set(&h->value, "no");
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_llm_failover_status(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_TOO_MANY_REQUESTS:
    case NGX_HTTP_INTERNAL_SERVER_ERROR:
    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_GATEWAY_TIME_OUT:
    case 529:  /* Anthropic: overloaded */
        return 1;
    default:
        return 0;
    }
}


/*
 * A provider's error that is not JSON (a CDN's HTML page, plain text) is
 * replaced by an OpenAI-shaped error with the provider's status.
 */

static ngx_int_t
ngx_http_llm_provider_error_page(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_uint_t status)
{
    u_char     buf[256];
    ngx_str_t  message;

    message.data = buf;
    message.len = ngx_snprintf(buf, sizeof(buf), "Provider `%V` answered "
                               "HTTP %ui without a JSON error.",
                               &ctx->target->provider->name, status)
                  - buf;

    return ngx_http_llm_replace_body(r, ctx, status, "upstream_error",
                                     &message);
}


static ngx_int_t
ngx_http_llm_is_json(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    type = &r->headers_out.content_type;

    return type->len >= sizeof("json") - 1
           && ngx_strlcasestrn(type->data, type->data + type->len,
                               (u_char *) "json", sizeof("json") - 2)
              != NULL;
}


static void
ngx_http_llm_clear_headers_out(ngx_http_request_t *r)
{
    ngx_memzero(&r->headers_out, sizeof(ngx_http_headers_out_t));

    if (ngx_list_init(&r->headers_out.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, r->pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        /* an empty list still works: nginx pushes into a new part */
        return;
    }

    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;
}


static ngx_int_t
ngx_http_llm_replace_error_page(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_str_t                  message;
    ngx_uint_t                 status;
    const char                *code;
    u_char                     buf[128];
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx == NULL) {
        ctx = ngx_http_llm_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    status = r->err_status;
    code = NULL;

    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        message.len = ngx_sprintf(buf, "The request body is larger than the "
                                  "gateway accepts (%O bytes).",
                                  clcf->client_max_body_size)
                      - buf;
        message.data = buf;
        code = "request_too_large";
        break;

    case NGX_HTTP_BAD_GATEWAY:
        ngx_str_set(&message, "The provider could not be reached or sent "
                              "an invalid response.");
        code = "upstream_error";
        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        ngx_str_set(&message, "The provider did not answer in time.");
        code = "upstream_timeout";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        ngx_str_set(&message, "Method not allowed.");
        code = "method_not_allowed";
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        ngx_str_set(&message, "The request was not received in time.");
        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_str_set(&message, "Too many requests.");
        code = "rate_limit_exceeded";
        break;

    default:
        message.len = ngx_sprintf(buf, "The gateway answered HTTP %ui.",
                                  status)
                      - buf;
        message.data = buf;
    }

    return ngx_http_llm_replace_body(r, ctx, status, code, &message);
}


/* the response goes on with these headers and an error body of ours */

static ngx_int_t
ngx_http_llm_replace_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_uint_t status, const char *code, ngx_str_t *message)
{
    if (ngx_http_llm_error_json(r->pool, status, code, NULL, message,
                                &ctx->replacement)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->replace_body = 1;

    r->headers_out.content_length_n = ctx->replacement.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_llm_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t           *b;
    ngx_uint_t           last;
    ngx_chain_t         *cl, out;
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_module);

    if (ctx == NULL || !ctx->replace_body || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's own page is swallowed; the JSON goes out in its place */

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last || ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = b->pos + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
