
/*
 * JSON trees from the scanner's tokens against trees from yajl's
 * callbacks: the same tree and the same memory charged for any input the
 * scanner takes, fed whole, cut anywhere, or a byte at a time; and a
 * value's first bytes and length the same with a sink as without
 * (t/unit/jscan_tree.c, also run by t/445-jscan-tree.t).
 */


#define JTREE_FUZZ  1

#include "fuzz.h"
#include "../t/unit/jscan_tree.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ngx_uint_t  ready;

    if (!ready) {
        ngx_fuzz_init();
        ready = 1;
    }

    if (size > 65536) {
        /* every cut of every input: long ones are slow, not different */
        return 0;
    }

    jtree_pool = ngx_create_pool(4096, &ngx_fuzz_log);
    if (jtree_pool == NULL) {
        abort();
    }

    if (jtree_compare(data, size, "input", 0, size <= 2048) != 0) {
        abort();
    }

    ngx_destroy_pool(jtree_pool);

    return 0;
}
