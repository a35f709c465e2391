
/*
 * The pool functions the engines under test use, on malloc: harnesses
 * run once and exit, so nothing is freed.
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
