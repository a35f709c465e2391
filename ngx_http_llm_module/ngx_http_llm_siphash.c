
/*
 * SipHash-2-4-128, from the description in "SipHash: a fast short-input
 * PRF" (Aumasson, Bernstein, 2012) and its 128-bit output variant: two
 * SipRounds a message word, four to finalise each half of the tag.
 * t/446's harness (t/unit/siphash_vector.c) checks it against the
 * reference test vectors.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_siphash.h"


#define ngx_http_llm_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define ngx_http_llm_sipround(v0, v1, v2, v3)                                \
    do {                                                                     \
        v0 += v1; v1 = ngx_http_llm_rotl(v1, 13); v1 ^= v0;                  \
        v0 = ngx_http_llm_rotl(v0, 32);                                      \
        v2 += v3; v3 = ngx_http_llm_rotl(v3, 16); v3 ^= v2;                  \
        v0 += v3; v3 = ngx_http_llm_rotl(v3, 21); v3 ^= v0;                  \
        v2 += v1; v1 = ngx_http_llm_rotl(v1, 17); v1 ^= v2;                  \
        v2 = ngx_http_llm_rotl(v2, 32);                                      \
    } while (0)


static ngx_inline uint64_t
ngx_http_llm_le64(const u_char *p)
{
#if (NGX_HAVE_LITTLE_ENDIAN && NGX_HAVE_NONALIGNED)
    uint64_t  w;

    ngx_memcpy(&w, p, sizeof(uint64_t));

    return w;
#else
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
#endif
}


void
ngx_http_llm_siphash128(const uint64_t key[2], const u_char *data,
    size_t len, uint64_t out[2])
{
    uint64_t       v0, v1, v2, v3, m;
    const u_char  *end;
    ngx_uint_t     left;

    v0 = key[0] ^ 0x736f6d6570736575ULL;
    v1 = key[1] ^ 0x646f72616e646f6dULL;
    v2 = key[0] ^ 0x6c7967656e657261ULL;
    v3 = key[1] ^ 0x7465646279746573ULL;

    /* the 128-bit variant's domain separation */
    v1 ^= 0xee;

    end = data + (len & ~(size_t) 7);

    for ( /* void */ ; data < end; data += 8) {
        m = ngx_http_llm_le64(data);

        v3 ^= m;
        ngx_http_llm_sipround(v0, v1, v2, v3);
        ngx_http_llm_sipround(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* the last word: the bytes left and the length's low byte on top */

    m = (uint64_t) (len & 0xff) << 56;
    left = len & 7;

    switch (left) {
    case 7:
        m |= (uint64_t) data[6] << 48;
        /* fall through */
    case 6:
        m |= (uint64_t) data[5] << 40;
        /* fall through */
    case 5:
        m |= (uint64_t) data[4] << 32;
        /* fall through */
    case 4:
        m |= (uint64_t) data[3] << 24;
        /* fall through */
    case 3:
        m |= (uint64_t) data[2] << 16;
        /* fall through */
    case 2:
        m |= (uint64_t) data[1] << 8;
        /* fall through */
    case 1:
        m |= (uint64_t) data[0];
        break;
    default:
        break;
    }

    v3 ^= m;
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    v0 ^= m;

    v2 ^= 0xee;
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    out[0] = v0 ^ v1 ^ v2 ^ v3;

    v1 ^= 0xdd;
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    ngx_http_llm_sipround(v0, v1, v2, v3);
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}
