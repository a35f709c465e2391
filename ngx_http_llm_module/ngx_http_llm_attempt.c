
/*
 * One attempt's upstream request, as proxy_pass consumes it: the URL in
 * $llm_upstream, the body installed as the request body, and the
 * provider's headers written into the request proxy sends. Bodies are
 * spliced from the regions the client sent, so an attempt copies only
 * the bytes it changes.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_route.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_upstream.h"


/* a spilled body up to this size goes upstream from one buffer */
#define NGX_HTTP_LLM_BODY_GATHER  262144


/* the buffers and links of a spliced body, allocated together */
typedef struct {
    ngx_buf_t                *bufs;
    ngx_chain_t              *links;
    ngx_uint_t                n;       /* left */
} ngx_http_llm_pieces_t;


static ngx_chain_t *ngx_http_llm_gather(ngx_http_request_t *r,
    ngx_chain_t *in, off_t length);
static ngx_int_t ngx_http_llm_add_range(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_pieces_t *pc, off_t from, off_t to,
    ngx_chain_t ***ll);
static ngx_chain_t *ngx_http_llm_piece(ngx_http_request_t *r,
    ngx_http_llm_pieces_t *pc);
static ngx_int_t ngx_http_llm_upstream_writer(void *data, ngx_chain_t *in);


ngx_int_t
ngx_http_llm_prepare_attempt(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_provider_t  *provider;

    provider = ctx->target->provider;

    ctx->attempt_ready = 0;

    ngx_http_llm_restore_request(r, ctx);

    if (ngx_http_llm_target_model(r->pool, ctx->target, &ctx->chat.model,
                                  &ctx->glob_capture, &ctx->target_model)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->target_model.len == 0) {
        /* a pattern's capture left empty ("openai/"): no model to ask */
        return NGX_DECLINED;
    }

    /* the provider's own headers go as its header_block; the dialect's
       per attempt in ctx->headers, from the pool as it needs */

    ctx->nheaders = 0;

    if (ctx->headers_room < provider->max_dynamic) {
        ctx->headers = ngx_palloc(r->pool, provider->max_dynamic
                                           * sizeof(ngx_http_llm_header_t));
        if (ctx->headers == NULL) {
            return NGX_ERROR;
        }

        ctx->headers_room = provider->max_dynamic;
    }

    ctx->attempt_ready = 1;

    return provider->dialect->create_request(r, ctx);
}


/*
 * Called as proxy_pass evaluates $llm_upstream, just after it created the
 * upstream and before it builds the request, or as the upstream
 * llm_upstream takes the attempt (ngx_http_llm_upstream.c): the
 * provider's headers will be written by ngx_http_llm_upstream_writer()
 * as the request is sent. Written there rather than by a
 * proxy_set_header line each, they cost no variable per header per
 * request, need no line in the configuration for a provider's own
 * "header", and never appear in proxy's debug log of the request (the
 * key among them).
 */

void
ngx_http_llm_attach_writer(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    /*
     * an upstream that has its peers already is another's: a log's, a
     * retry's; nginx's own writer is there once proxy built the request
     */

    if (u == NULL || u->peer.get != NULL || !ctx->attempt_ready
        || (u->output.output_filter != NULL
            && u->output.output_filter != ngx_chain_writer))
    {
        return;
    }

    /* with llm_upstream the request line is the writer's too */

    if (ctx->target->provider->header_block.len == 0 && ctx->nheaders == 0
        && !ngx_http_llm_upstream_fixed(u))
    {
        return;
    }

    u->output.output_filter = ngx_http_llm_upstream_writer;
    u->output.filter_ctx = r;
}


/*
 * nginx's chain writer, with the attempt's headers after the request
 * line of proxy's header buffer (the first of u->request_bufs): the
 * provider's block, then the dialect's; with llm_upstream, the request
 * line's target is the attempt's path (proxy wrote the client's). That
 * buffer is passed once a send (again after a reinit), whole; a copy
 * with the headers goes out in its place, so that a new send finds it
 * intact.
 */

static ngx_int_t
ngx_http_llm_upstream_writer(void *data, ngx_chain_t *in)
{
    ngx_http_request_t *r = data;

    u_char               *line, *target, *version;
    size_t                len, dynamic;
    ngx_str_t            *block, path;
    ngx_buf_t            *head, *b;
    ngx_uint_t            fixed;
    ngx_chain_t          *cl, *ln, *out, **ll, *copy;
    ngx_http_llm_ctx_t   *ctx;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    head = u->request_bufs ? u->request_bufs->buf : NULL;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf == head) {
            break;
        }
    }

    if (cl == NULL) {
        /* the head went out in an earlier call */
        return ngx_chain_writer(&u->writer, in);
    }

    ctx = ngx_http_llm_get_ctx(r);
    fixed = ngx_http_llm_upstream_fixed(u);

    if (ctx == NULL || !ctx->attempt_ready || !ngx_buf_in_memory_only(head)) {
        goto unexpected;
    }

    /* the request line's end: memchr() takes its bytes a vector at a time */

    line = memchr(head->pos, LF, head->last - head->pos);

    if (line == NULL) {
        goto unexpected;
    }

    line++;

    block = &ctx->target->provider->header_block;
    dynamic = ngx_http_llm_headers_size(ctx->headers, ctx->nheaders);

    if (block->len + dynamic == 0 && !fixed) {
        return ngx_chain_writer(&u->writer, in);
    }

    len = block->len + dynamic + (head->last - head->pos);

    target = NULL;
    version = NULL;
    ngx_str_null(&path);

    if (fixed) {
        /* "METHOD target HTTP/1.x": the target is the attempt's path */

        target = memchr(head->pos, ' ', line - head->pos);

        for (version = line - 1; version > head->pos; version--) {
            if (*version == ' ') {
                break;
            }
        }

        if (target == NULL || version <= target) {
            goto unexpected;
        }

        target++;

        path.data = ctx->upstream_url.data
                    + ctx->target->provider->origin.len;
        path.len = ctx->upstream_url.len - ctx->target->provider->origin.len;

        /* as proxy_pass makes a URL's path: "/" when it has none */
        len += path.len + 1;
    }

    /* the copy's buffer, its link and its bytes in one allocation */

    b = ngx_palloc(r->pool, sizeof(ngx_buf_t) + sizeof(ngx_chain_t) + len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));

    copy = (ngx_chain_t *) (b + 1);
    copy->buf = b;
    copy->next = cl->next;

    b->start = (u_char *) (copy + 1);
    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + len;
    b->temporary = 1;

    if (fixed) {
        b->last = ngx_cpymem(b->last, head->pos, target - head->pos);

        if (path.len == 0 || path.data[0] != '/') {
            *b->last++ = '/';
        }

        b->last = ngx_cpymem(b->last, path.data, path.len);
        b->last = ngx_cpymem(b->last, version, line - version);

    } else {
        b->last = ngx_cpymem(b->last, head->pos, line - head->pos);
    }

    if (block->len) {
        b->last = ngx_cpymem(b->last, block->data, block->len);
    }

    b->last = ngx_http_llm_write_headers(b->last, ctx->headers, ctx->nheaders);
    b->last = ngx_cpymem(b->last, line, head->last - line);
    b->flush = head->flush;
    b->last_buf = head->last_buf;
    b->last_in_chain = head->last_in_chain;

    /* the links before it (none from proxy), the copy, the rest as is */

    out = NULL;
    ll = &out;

    for (ln = in; ln != cl; ln = ln->next) {
        *ll = ngx_alloc_chain_link(r->pool);
        if (*ll == NULL) {
            return NGX_ERROR;
        }

        (*ll)->buf = ln->buf;
        ll = &(*ll)->next;
    }

    *ll = copy;

    return ngx_chain_writer(&u->writer, out);

unexpected:

    if (!fixed) {
        return ngx_chain_writer(&u->writer, in);
    }

    /* the client's target must not reach the provider */

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "llm_upstream: no request line to write");

    return NGX_ERROR;
}


/* the client's request as received: the state every attempt starts from */

void
ngx_http_llm_restore_request(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    r->method = ctx->method;
    r->method_name = ctx->method_name;

    if (r->request_body && ctx->segments) {
        r->request_body->bufs = ctx->client_body;
        r->headers_in.content_length_n = ctx->content_length;
    }
}


ngx_int_t
ngx_http_llm_add_header(ngx_http_llm_ctx_t *ctx, char *name,
    ngx_str_t *value, ngx_uint_t secret)
{
    ngx_http_llm_header_t  *h;

    if (ctx->nheaders == ctx->headers_room) {
        return NGX_ERROR;
    }

    h = &ctx->headers[ctx->nheaders++];

    h->name.data = (u_char *) name;
    h->name.len = ngx_strlen(name);
    h->value = *value;
    h->secret = secret;

    return NGX_OK;
}


size_t
ngx_http_llm_headers_size(ngx_http_llm_header_t *h, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = 0;

    for (i = 0; i < n; i++) {
        if (h[i].value.len) {
            len += h[i].name.len + sizeof(": \r\n") - 1 + h[i].value.len;
        }
    }

    return len;
}


u_char *
ngx_http_llm_write_headers(u_char *p, ngx_http_llm_header_t *h, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (h[i].value.len) {
            p = ngx_cpymem(p, h[i].name.data, h[i].name.len);
            *p++ = ':'; *p++ = ' ';
            p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
            *p++ = CR; *p++ = LF;
        }
    }

    return p;
}


/*
 * Installs the client body with edits applied (sorted, not overlapping)
 * as the request body proxy_pass sends. No edits: the body as received.
 */

ngx_int_t
ngx_http_llm_splice_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_edit_t *edits, ngx_uint_t nedits)
{
    off_t                   cursor, end, length;
    ngx_buf_t              *b;
    ngx_uint_t              i, j;
    ngx_chain_t            *out, **ll, *cl;
    ngx_http_llm_edit_t    *all, edit;
    ngx_http_llm_pieces_t   pc;

    if (ctx->chat.cache_member) {

        /* the body's "cache" member is the gateway's, not the provider's */

        all = ngx_palloc(r->pool, (nedits + 1) * sizeof(ngx_http_llm_edit_t));
        if (all == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(all, edits, nedits * sizeof(ngx_http_llm_edit_t));

        edit.start = ctx->chat.cache_start;
        edit.end = ctx->chat.cache_end;
        ngx_str_null(&edit.text);

        /* in order of their start; an insertion before a replacement */

        for (j = nedits;
             j > 0 && (all[j - 1].start > edit.start
                       || (all[j - 1].start == edit.start
                           && all[j - 1].end > all[j - 1].start));
             j--)
        {
            all[j] = all[j - 1];
        }

        all[j] = edit;
        edits = all;
        nedits++;
    }

    if (nedits == 0) {
        r->request_body->bufs = ngx_http_llm_gather(r, ctx->client_body,
                                                    ctx->body_length);
        r->headers_in.content_length_n = ctx->body_length;
        return r->request_body->bufs ? NGX_OK : NGX_ERROR;
    }

    /*
     * Every piece in one allocation: the edits cut the ranges between
     * them, which split at most one segment each, and a text is a piece.
     */

    pc.n = ctx->segments->nelts + 2 * nedits;

    pc.bufs = ngx_palloc(r->pool,
                         pc.n * (sizeof(ngx_buf_t) + sizeof(ngx_chain_t)));
    if (pc.bufs == NULL) {
        return NGX_ERROR;
    }

    pc.links = (ngx_chain_t *) (pc.bufs + pc.n);

    out = NULL;
    ll = &out;
    cl = NULL;
    cursor = 0;
    length = 0;

    for (i = 0; i <= nedits; i++) {
        end = (i < nedits) ? edits[i].start : ctx->body_length;

        if (ngx_http_llm_add_range(r, ctx, &pc, cursor, end, &ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        length += end - cursor;

        if (i == nedits) {
            break;
        }

        if (edits[i].text.len) {
            cl = ngx_http_llm_piece(r, &pc);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            b = cl->buf;
            b->start = edits[i].text.data;
            b->pos = b->start;
            b->last = b->start + edits[i].text.len;
            b->end = b->last;
            b->memory = 1;

            *ll = cl;
            ll = &cl->next;

            length += edits[i].text.len;
        }

        cursor = edits[i].end;
    }

    for (cl = out; cl && cl->next; cl = cl->next) { /* void */ }

    if (cl) {
        cl->buf->last_buf = 1;
    }

    r->request_body->bufs = ngx_http_llm_gather(r, out, length);
    r->headers_in.content_length_n = length;

    return r->request_body->bufs ? NGX_OK : NGX_ERROR;
}


/*
 * A body nginx kept in a temporary file goes upstream in pieces (one
 * write per client_body_buffer_size read from the file, and the model's
 * name between them); on a keepalive connection the pieces meet delayed
 * ACKs and stall 20-40 ms. Up to NGX_HTTP_LLM_BODY_GATHER bytes, such a
 * body is sent from one buffer instead.
 */

static ngx_chain_t *
ngx_http_llm_gather(ngx_http_request_t *r, ngx_chain_t *in, off_t length)
{
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            break;
        }
    }

    if (cl == NULL || length > NGX_HTTP_LLM_BODY_GATHER) {
        return in;
    }

    b = ngx_create_temp_buf(r->pool, (size_t) length);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NULL;
    }

    for ( /* void */ ; in; in = in->next) {

        if (in->buf->in_file) {
            size = (size_t) (in->buf->file_last - in->buf->file_pos);

            n = ngx_read_file(in->buf->file, b->last, size,
                              in->buf->file_pos);

            if (n != (ssize_t) size) {
                return NULL;
            }

            b->last += size;
            continue;
        }

        b->last = ngx_cpymem(b->last, in->buf->pos,
                             in->buf->last - in->buf->pos);
    }

    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm body: %O bytes upstream from one buffer", length);

    return cl;
}


static ngx_int_t
ngx_http_llm_add_range(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_pieces_t *pc, off_t from, off_t to, ngx_chain_t ***ll)
{
    off_t                    lo, hi;
    ngx_buf_t               *b;
    ngx_uint_t               i;
    ngx_chain_t             *cl;
    ngx_http_llm_segment_t  *s;

    s = ctx->segments->elts;

    for (i = 0; i < ctx->segments->nelts && from < to; i++) {

        if (s[i].end <= from || s[i].start >= to) {
            continue;
        }

        lo = ngx_max(from, s[i].start);
        hi = ngx_min(to, s[i].end);

        cl = ngx_http_llm_piece(r, pc);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        b = cl->buf;

        if (s[i].pos) {
            /* start = pos: upstream reinit rewinds buffers to start */
            b->start = s[i].pos + (lo - s[i].start);
            b->pos = b->start;
            b->last = s[i].pos + (hi - s[i].start);
            b->end = b->last;
            b->memory = 1;

        } else {
            b->in_file = 1;
            b->file = s[i].file;
            b->file_pos = s[i].file_pos + (lo - s[i].start);
            b->file_last = s[i].file_pos + (hi - s[i].start);
        }

        **ll = cl;
        *ll = &cl->next;
    }

    return NGX_OK;
}


/* a zeroed buffer in its link, from the pieces allocated for a body */

static ngx_chain_t *
ngx_http_llm_piece(ngx_http_request_t *r, ngx_http_llm_pieces_t *pc)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (pc->n == 0) {
        /* not expected: the count above is an upper bound */

        b = ngx_palloc(r->pool, sizeof(ngx_buf_t));
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NULL;
        }

    } else {
        pc->n--;
        b = pc->bufs++;
        cl = pc->links++;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* installs a body the dialect built in memory (a translated request) */

ngx_int_t
ngx_http_llm_set_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    u_char *data, size_t len)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL || r->request_body == NULL) {
        return NGX_ERROR;
    }

    /* start = pos: upstream reinit rewinds buffers to start */
    b->start = data;
    b->pos = data;
    b->last = data + len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->headers_in.content_length_n = len;

    return NGX_OK;
}


/*
 * A request whose texts a guard redacted, to a target of the client's own
 * API: its tree written again with the target's model. The gateway's
 * "cache" member is left out, as splicing leaves it out.
 */

ngx_int_t
ngx_http_llm_rebuild_body(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    return ngx_http_llm_rebuild_body_with(r, ctx, NULL);
}


/* the same, a member written by "member" unless it returns NGX_DECLINED */

ngx_int_t
ngx_http_llm_rebuild_body_with(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_member_pt member)
{
    ngx_http_llm_json_t  *v;
    ngx_http_llm_jbuf_t   b;

    ngx_http_llm_jbuf_init(&b, r->pool, ctx->body_length + 256);

    ngx_http_llm_jbuf_lit(&b, "{\"model\":");
    ngx_http_llm_jbuf_qstr(&b, &ctx->target_model);

    for (v = ctx->tree->child; v; v = v->next) {

        if (v->key.len == 5
            && (ngx_strncmp(v->key.data, "model", 5) == 0
                || ngx_strncmp(v->key.data, "cache", 5) == 0))
        {
            continue;
        }

        ngx_http_llm_jbuf_lit(&b, ",");
        ngx_http_llm_jbuf_str(&b, v->key.data, v->key.len);
        ngx_http_llm_jbuf_lit(&b, ":");

        if (member == NULL || member(&b, v) == NGX_DECLINED) {
            ngx_http_llm_jbuf_value(&b, v);
        }
    }

    ngx_http_llm_jbuf_lit(&b, "}");

    if (b.error) {
        return NGX_ERROR;
    }

    return ngx_http_llm_set_body(r, ctx, b.start, b.last - b.start);
}


ngx_int_t
ngx_http_llm_model_segment(ngx_str_t *model)
{
    u_char      c;
    ngx_uint_t  i, dots;

    dots = 0;

    for (i = 0; i < model->len; i++) {
        c = model->data[i];

        if (c == '.') {
            dots++;
            continue;
        }

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }

    return (model->len == 0 || dots == model->len) ? NGX_DECLINED : NGX_OK;
}
