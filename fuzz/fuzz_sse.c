
/*
 * The SSE reader: bytes cut anywhere give the same events as the whole
 * input at once, and every event's bytes are bytes of the input.
 */


#include "fuzz.h"
#include "ngx_http_llm_sse.h"


typedef struct {
    ngx_str_t                      raw;          /* events' bytes, joined */
    ngx_str_t                      data;         /* their data, joined */
    ngx_uint_t                     events;
    size_t                         size;
} ngx_fuzz_events_t;


static ngx_int_t
ngx_fuzz_event(void *data, ngx_http_llm_sse_event_t *ev)
{
    ngx_fuzz_events_t  *e = data;

    if (e->raw.len + ev->raw.len > e->size
        || e->data.len + ev->data.len > e->size)
    {
        abort();                         /* more bytes out than went in */
    }

    if (ev->raw.len) {
        ngx_memcpy(e->raw.data + e->raw.len, ev->raw.data, ev->raw.len);
        e->raw.len += ev->raw.len;
    }

    if (ev->data.len) {
        ngx_memcpy(e->data.data + e->data.len, ev->data.data, ev->data.len);
        e->data.len += ev->data.len;
    }
    e->events++;

    return NGX_OK;
}


static ngx_int_t
ngx_fuzz_read(ngx_pool_t *pool, u_char *in, size_t size, size_t *cut,
    ngx_uint_t n, ngx_fuzz_events_t *e)
{
    size_t              from;
    ngx_int_t           rc;
    ngx_uint_t          i;
    ngx_http_llm_sse_t  sse;

    ngx_memzero(&sse, sizeof(ngx_http_llm_sse_t));
    sse.pool = pool;
    sse.max = 4096;

    e->size = size;
    e->raw.len = 0;
    e->data.len = 0;
    e->events = 0;
    e->raw.data = ngx_pnalloc(pool, size + 1);
    e->data.data = ngx_pnalloc(pool, size + 1);

    if (e->raw.data == NULL || e->data.data == NULL) {
        return NGX_ERROR;
    }

    from = 0;

    for (i = 0; i < n; i++) {
        rc = ngx_http_llm_sse_feed(&sse, in + from, in + cut[i],
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
    ngx_int_t           rc1, rc2;
    ngx_fuzz_input_t    fi;
    ngx_fuzz_events_t   one, pieces;

    if (ngx_fuzz_input(&fi, data, size) != NGX_OK) {
        return 0;
    }

    rc1 = ngx_fuzz_read(fi.pool, fi.in, fi.size, fi.whole, 1, &one);
    rc2 = ngx_fuzz_read(fi.pool, fi.in, fi.size, fi.cut, fi.n, &pieces);

    if (rc1 != rc2) {
        abort();
    }

    if (rc1 == NGX_OK
        && (one.events != pieces.events
            || one.raw.len != pieces.raw.len
            || ngx_memcmp(one.raw.data, pieces.raw.data, one.raw.len) != 0
            || one.data.len != pieces.data.len
            || ngx_memcmp(one.data.data, pieces.data.data, one.data.len)
               != 0))
    {
        abort();                         /* the cuts changed the events */
    }

    if (rc1 == NGX_OK && ngx_memcmp(one.raw.data, fi.in, one.raw.len) != 0) {
        abort();                         /* events are the input, in order */
    }

    ngx_destroy_pool(fi.pool);

    return 0;
}
