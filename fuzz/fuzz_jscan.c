
/*
 * The JSON scanner against yajl: the same verdict and the same tokens for
 * any input, fed whole, cut in two anywhere, or a byte at a time
 * (t/unit/jscan_yajl.c, also run by t/441-jscan.t). Deeper than the
 * scanner's bound, only its refusal is expected.
 */


#define JSCAN_FUZZ  1

#include "../t/unit/jscan_yajl.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) {
        /* every cut of every input: long ones are slow, not different */
        return 0;
    }

    if (jscan_compare(data, size, "input") != 0) {
        abort();
    }

    return 0;
}
