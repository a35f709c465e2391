
/*
 * The pool functions the code under test uses, on malloc: harnesses
 * run once and exit, so little is freed.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdlib.h>


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return calloc(1, size);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


/* every pool allocation is malloc()'s: given back as nginx gives large */

ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    free(p);

    return NGX_OK;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *elts;

    if (a->nelts == a->nalloc) {
        elts = malloc(2 * a->nalloc * a->size);
        if (elts == NULL) {
            return NULL;
        }

        ngx_memcpy(elts, a->elts, a->nelts * a->size);
        a->elts = elts;
        a->nalloc *= 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = malloc(sizeof(ngx_array_t));
    if (a == NULL) {
        return NULL;
    }

    a->elts = malloc(n * size);
    if (a->elts == NULL) {
        return NULL;
    }

    a->nelts = 0;
    a->size = size;
    a->nalloc = n;
    a->pool = p;

    return a;
}
