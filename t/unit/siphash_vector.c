
/*
 * ngx_http_llm_siphash.c against SipHash-2-4-128's reference test
 * vectors (vectors.h of the reference implementation): the key 00..0f,
 * the message 00 01 .. of each length, the 16 bytes of the tag. Lengths
 * 0 to 17 take every number of bytes left after the words; 63 is the
 * longest of the vectors.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <string.h>

#include "ngx_http_llm_siphash.h"
#include "check.h"


static const struct {
    size_t       len;
    const char  *tag;
} vectors[] = {
    { 0,  "a3817f04ba25a8e66df67214c7550293" },
    { 1,  "da87c1d86b99af44347659119b22fc45" },
    { 2,  "8177228da4a45dc7fca38bdef60affe4" },
    { 3,  "9c70b60c5267a94e5f33b6b02985ed51" },
    { 4,  "f88164c12d9c8faf7d0f6e7c7bcd5579" },
    { 5,  "1368875980776f8854527a07690e9627" },
    { 6,  "14eeca338b208613485ea0308fd7a15e" },
    { 7,  "a1f1ebbed8dbc153c0b84aa61ff08239" },
    { 8,  "3b62a9ba6258f5610f83e264f31497b4" },
    { 9,  "264499060ad9baabc47f8b02bb6d71ed" },
    { 10, "00110dc378146956c95447d3f3d0fbba" },
    { 11, "0151c568386b6677a2b4dc6f81e5dc18" },
    { 12, "d626b266905ef35882634df68532c125" },
    { 13, "9869e247e9c08b10d029934fc4b952f7" },
    { 14, "31fcefac66d7de9c7ec7485fe4494902" },
    { 15, "5493e99933b0a8117e08ec0f97cfc3d9" },
    { 16, "6ee2a4ca67b054bbfd3315bf85230577" },
    { 17, "473d06e8738db89854c066c47ae47740" },
    { 63, "5150d1772f50834a503e069a973fbd7c" },
};


int
main(void)
{
    char        hex[33], name[32];
    u_char      k[16], msg[65];
    uint64_t    key[2], out[2], moved[2];
    ngx_uint_t  i, j;

    for (i = 0; i < 16; i++) {
        k[i] = (u_char) i;
    }

    for (i = 0; i < 64; i++) {
        msg[i] = (u_char) i;
    }

    /* the key's bytes as two little-endian words */

    key[0] = 0;
    key[1] = 0;

    for (i = 0; i < 8; i++) {
        key[0] |= (uint64_t) k[i] << (8 * i);
        key[1] |= (uint64_t) k[8 + i] << (8 * i);
    }

    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        ngx_http_llm_siphash128(key, msg, vectors[i].len, out);

        /* the tag's bytes: each half little-endian, as the reference */

        for (j = 0; j < 16; j++) {
            snprintf(hex + 2 * j, 3, "%02x",
                     (unsigned) (out[j / 8] >> (8 * (j % 8))) & 0xff);
        }

        snprintf(name, sizeof(name), "length %u", (unsigned) vectors[i].len);

        check(strcmp(hex, vectors[i].tag) == 0, name, hex);
    }

    /* a message at an odd address: the same tag */

    ngx_http_llm_siphash128(key, msg, 63, out);
    memmove(msg + 1, msg, 63);
    ngx_http_llm_siphash128(key, msg + 1, 63, moved);

    check(out[0] == moved[0] && out[1] == moved[1], "unaligned",
          "another tag");

    /* one bit of the key changes the tag */

    key[1] ^= 1;
    ngx_http_llm_siphash128(key, msg + 1, 63, moved);

    check(out[0] != moved[0] && out[1] != moved[1], "keyed", "the same tag");

    return check_failures ? 1 : 0;
}
