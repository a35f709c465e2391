
/*
 * What every harness needs of nginx: a log, a pool, the time; and the
 * fuzzer's input cut into pieces, as the network cuts bodies and streams.
 */


#ifndef _NGX_HTTP_LLM_FUZZ_H_INCLUDED_
#define _NGX_HTTP_LLM_FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


static ngx_log_t       ngx_fuzz_log;
static ngx_open_file_t ngx_fuzz_log_file;


/* inline: a harness that uses one of these does not warn of the other */

static ngx_inline void
ngx_fuzz_init(void)
{
    ngx_pagesize = getpagesize();
    ngx_pagesize_shift = 0;
    while ((1 << ngx_pagesize_shift) < (ngx_int_t) ngx_pagesize) {
        ngx_pagesize_shift++;
    }
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    ngx_time_init();

    ngx_fuzz_log_file.fd = ngx_stderr;
    ngx_fuzz_log.file = &ngx_fuzz_log_file;
    ngx_fuzz_log.log_level = NGX_LOG_EMERG;
}


/*
 * The first byte chooses where the rest is cut: into at most 4 pieces,
 * at offsets taken from the bits of that byte.
 */

static ngx_inline ngx_uint_t
ngx_fuzz_cuts(const uint8_t **data, size_t *size, size_t *cut)
{
    uint8_t     seed;
    ngx_uint_t  i, n;

    if (*size == 0) {
        cut[0] = 0;
        return 1;
    }

    seed = **data;
    (*data)++;
    (*size)--;

    n = 1 + (seed & 3);

    for (i = 0; i + 1 < n; i++) {
        cut[i] = *size ? (size_t) (seed >> 2) * (i + 1) * 7 % (*size + 1) : 0;
    }

    cut[n - 1] = *size;

    /* in order, and never backwards */

    for (i = 1; i < n; i++) {
        if (cut[i] < cut[i - 1]) {
            cut[i] = cut[i - 1];
        }
    }

    return n;
}


/*
 * One run's input: cut as above, and copied into the run's own pool (the
 * readers take it writable, and a harness may damage a byte of it);
 * NGX_ERROR without memory.
 */

typedef struct {
    ngx_pool_t  *pool;
    u_char      *in;
    size_t       size;
    size_t       cut[4];
    size_t       whole[1];
    ngx_uint_t   n;
} ngx_fuzz_input_t;


static ngx_inline ngx_int_t
ngx_fuzz_input(ngx_fuzz_input_t *fi, const uint8_t *data, size_t size)
{
    fi->n = ngx_fuzz_cuts(&data, &size, fi->cut);
    fi->size = size;
    fi->whole[0] = size;

    fi->pool = ngx_create_pool(4096, &ngx_fuzz_log);
    if (fi->pool == NULL) {
        return NGX_ERROR;
    }

    fi->in = ngx_pnalloc(fi->pool, size + 1);
    if (fi->in == NULL) {
        ngx_destroy_pool(fi->pool);
        return NGX_ERROR;
    }

    ngx_memcpy(fi->in, data, size);

    return NGX_OK;
}


#endif /* _NGX_HTTP_LLM_FUZZ_H_INCLUDED_ */
