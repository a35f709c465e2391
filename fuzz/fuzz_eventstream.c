
/*
 * Bedrock's binary event stream decoder: bytes cut anywhere give the same
 * events (type, data, exception) and the same verdict as the whole input
 * at once; a frame is only believed with both its CRCs right, so a frame
 * with a byte changed is never delivered as it was.
 */


#include "fuzz.h"
#include "ngx_http_llm_eventstream.h"


typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *out;
    size_t                         len;
    size_t                         size;
    ngx_uint_t                     events;
} ngx_fuzz_events_t;


static ngx_int_t
ngx_fuzz_append(ngx_fuzz_events_t *e, u_char *p, size_t len)
{
    u_char  *n;

    if (e->len + len > e->size) {
        e->size = 2 * (e->len + len) + 64;
        n = ngx_pnalloc(e->pool, e->size);
        if (n == NULL) {
            return NGX_ERROR;
        }

        if (e->len) {
            ngx_memcpy(n, e->out, e->len);
        }

        e->out = n;
    }

    if (len) {
        ngx_memcpy(e->out + e->len, p, len);
        e->len += len;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_fuzz_event(void *data, ngx_http_llm_sse_event_t *ev)
{
    ngx_fuzz_events_t  *e = data;

    u_char  sep[2];

    e->events++;

    sep[0] = ev->exception ? '!' : '|';
    sep[1] = '\0';

    if (ngx_fuzz_append(e, sep, 2) != NGX_OK
        || ngx_fuzz_append(e, ev->event.data, ev->event.len) != NGX_OK
        || ngx_fuzz_append(e, sep, 2) != NGX_OK
        || ngx_fuzz_append(e, ev->data.data, ev->data.len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_fuzz_decode(ngx_pool_t *pool, u_char *in, size_t *cut, ngx_uint_t n,
    ngx_fuzz_events_t *e)
{
    size_t             from;
    ngx_int_t          rc;
    ngx_uint_t         i;
    ngx_http_llm_es_t  es;

    ngx_memzero(e, sizeof(ngx_fuzz_events_t));
    e->pool = pool;

    ngx_memzero(&es, sizeof(ngx_http_llm_es_t));
    es.pool = pool;
    es.max = 65536;

    from = 0;

    for (i = 0; i < n; i++) {
        rc = ngx_http_llm_es_feed(&es, in + from, in + cut[i],
                                  ngx_fuzz_event, e);
        if (rc != NGX_OK) {
            return rc;
        }

        from = cut[i];
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
    size_t              at;
    ngx_int_t           rc1, rc2, rc3;
    ngx_fuzz_input_t    fi;
    ngx_fuzz_events_t   one, pieces, damaged;

    if (ngx_fuzz_input(&fi, data, size) != NGX_OK) {
        return 0;
    }

    rc1 = ngx_fuzz_decode(fi.pool, fi.in, fi.whole, 1, &one);
    rc2 = ngx_fuzz_decode(fi.pool, fi.in, fi.cut, fi.n, &pieces);

    if (rc1 != rc2) {
        abort();                         /* the cuts changed the verdict */
    }

    if (rc1 == NGX_OK
        && (one.events != pieces.events || one.len != pieces.len
            || (one.len && ngx_memcmp(one.out, pieces.out, one.len) != 0)))
    {
        abort();                         /* the cuts changed the events */
    }

    /*
     * A byte of the first frame changed (inside its 16 + headers + payload
     * bytes): the CRCs refuse it, so that frame's event is not delivered
     * with the same content (the stream is refused, or its first event
     * differs).
     */

    if (rc1 == NGX_OK && one.events > 0 && fi.size >= 16) {
        at = (size_t) (fi.cut[0] % 16);
        fi.in[at] ^= 0x5a;

        rc3 = ngx_fuzz_decode(fi.pool, fi.in, fi.whole, 1, &damaged);

        if (rc3 == NGX_OK && damaged.events == one.events
            && damaged.len == one.len
            && ngx_memcmp(damaged.out, one.out, one.len) == 0)
        {
            abort();                     /* a damaged frame was believed */
        }
    }

    ngx_destroy_pool(fi.pool);

    return 0;
}
