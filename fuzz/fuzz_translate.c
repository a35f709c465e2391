
/*
 * Every response translator: Anthropic, Gemini and Bedrock answers (a
 * whole body, or a stream: SSE, or Bedrock's binary event stream) into
 * the client's API (OpenAI's, or Anthropic's at /v1/messages).
 *
 * Properties: a stream gives the same output whatever the buffer
 * boundaries; what a translator writes is valid JSON (each SSE event's
 * data, or the whole body); nothing crashes, leaks or reads out of
 * bounds (ASan, UBSan).
 *
 * Input: a byte choosing the dialect, the form and the client; the cuts
 * byte (fuzz.h); the provider's bytes.
 */


#include "fuzz.h"
#include "ngx_http_llm_module.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_eventstream.h"

#include <yajl/yajl_tree.h>


typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *out;
    size_t                         len;
    size_t                         size;
} ngx_fuzz_output_t;


typedef struct {
    ngx_http_llm_canon_t          *canon;
    ngx_http_llm_dialect_t        *dialect;
} ngx_fuzz_stream_t;


static ngx_http_llm_dialect_t  *ngx_fuzz_dialects[] = {
    &ngx_http_llm_anthropic_dialect,
    &ngx_http_llm_gemini_dialect,
    &ngx_http_llm_bedrock_dialect,
    &ngx_http_llm_openai_dialect
};


static void
ngx_fuzz_json_ok(u_char *p, size_t len)
{
    char        *text, err[128];
    yajl_val     v;

    text = malloc(len + 1);
    if (text == NULL) {
        return;
    }

    ngx_memcpy(text, p, len);
    text[len] = '\0';

    v = yajl_tree_parse(text, err, sizeof(err));

    if (v == NULL) {
        fprintf(stderr, "not JSON: %.*s\n", (int) ngx_min(len, 512), text);
        abort();
    }

    yajl_tree_free(v);
    free(text);
}


/* what the translator writes: kept, and each SSE event's data checked */

static ngx_int_t
ngx_fuzz_write(void *data, u_char *p, size_t len)
{
    ngx_fuzz_output_t  *o = data;

    u_char  *n, *line, *end, *last;

    if (o->len + len > o->size) {
        o->size = 2 * (o->len + len);
        n = ngx_pnalloc(o->pool, o->size);
        if (n == NULL) {
            return NGX_ERROR;
        }

        if (o->len) {
            ngx_memcpy(n, o->out, o->len);
        }

        o->out = n;
    }

    ngx_memcpy(o->out + o->len, p, len);
    o->len += len;

    /* a write is whole events: "data: <JSON>" lines, or "[DONE]" */

    last = p + len;

    for (line = p; line < last; line = end + 1) {
        end = ngx_strlchr(line, last, '\n');
        if (end == NULL) {
            abort();                         /* an event written in halves */
        }

        if (end - line > 6 && ngx_strncmp(line, "data: ", 6) == 0
            && !(end - line == 12 && ngx_strncmp(line + 6, "[DONE]", 6) == 0))
        {
            ngx_fuzz_json_ok(line + 6, end - line - 6);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_fuzz_event(void *data, ngx_http_llm_sse_event_t *ev)
{
    ngx_fuzz_stream_t  *s = data;

    ngx_int_t  rc;

    if (s->canon->done) {
        return NGX_OK;
    }

    if (ev->data.data == NULL && !ev->exception) {
        return NGX_OK;
    }

    rc = s->dialect->decode_event(s->canon, ev);

    ngx_http_llm_arena_reset(&s->canon->arena);

    return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_fuzz_translate(ngx_pool_t *pool, ngx_http_llm_ctx_t *ctx,
    ngx_http_request_t *r, ngx_http_llm_dialect_t *dialect, ngx_uint_t stream,
    u_char *in, size_t size, size_t *cut, ngx_uint_t n,
    ngx_fuzz_output_t *o)
{
    size_t                 from;
    ngx_int_t              rc;
    ngx_str_t              body, out;
    ngx_uint_t             i;
    ngx_http_llm_es_t      es;
    ngx_http_llm_sse_t     sse;
    ngx_fuzz_stream_t      s;
    ngx_http_llm_canon_t   canon;

    ngx_memzero(o, sizeof(ngx_fuzz_output_t));
    o->pool = pool;

    /* the same ids for both runs */
    srandom(1);

    if (ngx_http_llm_canon_init(&canon, r, ctx,
                                stream ? NGX_HTTP_LLM_CANON_STREAM
                                       : NGX_HTTP_LLM_CANON_ACCUMULATE)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    canon.write = ngx_fuzz_write;
    canon.data = o;

    if (!stream) {
        body.data = in;
        body.len = size;

        rc = dialect->decode_body(&canon, &body);

        if (rc == NGX_OK) {
            if (ngx_http_llm_canon_body(&canon, &out) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_fuzz_json_ok(out.data, out.len);
        }

        return rc;
    }

    s.canon = &canon;
    s.dialect = dialect;

    ngx_memzero(&sse, sizeof(ngx_http_llm_sse_t));
    sse.pool = pool;
    sse.max = 65536;

    ngx_memzero(&es, sizeof(ngx_http_llm_es_t));
    es.pool = pool;
    es.max = 65536;

    from = 0;

    for (i = 0; i < n; i++) {
        if (dialect->framing == NGX_HTTP_LLM_FRAMING_EVENTSTREAM) {
            rc = ngx_http_llm_es_feed(&es, in + from, in + cut[i],
                                      ngx_fuzz_event, &s);

        } else {
            rc = ngx_http_llm_sse_feed(&sse, in + from, in + cut[i],
                                       ngx_fuzz_event, &s);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        from = cut[i];
    }

    /* a stream that said how it finished ends as the module ends it */

    if (!canon.done && canon.finished && !canon.failed) {
        if (ngx_http_llm_canon_end(&canon) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_fuzz_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    choice;
    ngx_int_t                 rc1, rc2;
    ngx_uint_t                stream;
    ngx_fuzz_input_t          fi;
    ngx_connection_t          c;
    ngx_fuzz_output_t         one, pieces;
    ngx_http_request_t        r;
    ngx_http_llm_ctx_t        ctx;
    ngx_http_llm_target_t     target;
    ngx_http_llm_dialect_t   *dialect;
    ngx_http_llm_provider_t   provider;

    if (size < 2) {
        return 0;
    }

    choice = *data++;
    size--;

    dialect = ngx_fuzz_dialects[choice % 4];
    stream = (choice >> 2) & 1;

    if (dialect == &ngx_http_llm_openai_dialect && !(choice & 0x10)) {
        /*
         * OpenAI's own answers are encoded again for the Anthropic
         * door's client, or (0x10) for a legacy completion a guard reads
         */
        choice |= 0x08;
    }

    if (ngx_fuzz_input(&fi, data, size) != NGX_OK) {
        return 0;
    }

    ngx_memzero(&c, sizeof(ngx_connection_t));
    c.log = &ngx_fuzz_log;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = fi.pool;
    r.connection = &c;

    ngx_memzero(&provider, sizeof(ngx_http_llm_provider_t));
    ngx_str_set(&provider.name, "fuzz");
    provider.dialect = dialect;

    ngx_memzero(&target, sizeof(ngx_http_llm_target_t));
    target.provider = &provider;

    ngx_memzero(&ctx, sizeof(ngx_http_llm_ctx_t));
    ctx.target = &target;
    ngx_str_set(&ctx.target_model, "fuzz-model");
    ctx.endpoint = (choice & 0x08) ? NGX_HTTP_LLM_EP_MESSAGES
                   : (dialect == &ngx_http_llm_openai_dialect)
                     ? NGX_HTTP_LLM_EP_COMPLETIONS : NGX_HTTP_LLM_EP_CHAT;

    rc1 = ngx_fuzz_translate(fi.pool, &ctx, &r, dialect, stream, fi.in,
                             fi.size, fi.whole, 1, &one);

    if (stream) {
        rc2 = ngx_fuzz_translate(fi.pool, &ctx, &r, dialect, stream, fi.in,
                                 fi.size, fi.cut, fi.n, &pieces);

        if (rc1 != rc2) {
            abort();                         /* the cuts changed the outcome */
        }

        if (rc1 == NGX_OK
            && (one.len != pieces.len
                || (one.len && ngx_memcmp(one.out, pieces.out, one.len) != 0)))
        {
            fprintf(stderr, "whole: %.*s\npieces: %.*s\n",
                    (int) ngx_min(one.len, 2048), one.out,
                    (int) ngx_min(pieces.len, 2048), pieces.out);
            abort();                         /* the cuts changed the output */
        }
    }

    ngx_destroy_pool(fi.pool);

    return 0;
}
