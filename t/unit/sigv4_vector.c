
/*
 * ngx_http_llm_sigv4.c against AWS's published SigV4 test suite
 * (get-vanilla, post-vanilla: example.amazonaws.com, service "service",
 * us-east-1, 20150830T123600Z, AKIDEXAMPLE and its example secret).
 * Prints one line per vector: name, then the Authorization value.
 */


#include <stdio.h>

#include "ngx_http_llm_sigv4.h"


static void
vector(const char *name, const char *method)
{
    u_char                 scratch[4096], out[1024], hash[64], *end;
    ngx_http_llm_sigv4_t   s;

    ngx_memzero(&s, sizeof(ngx_http_llm_sigv4_t));

    s.method.data = (u_char *) method;
    s.method.len = ngx_strlen(method);
    ngx_str_set(&s.uri, "/");
    ngx_str_set(&s.query, "");
    ngx_str_set(&s.host, "example.amazonaws.com");
    ngx_str_set(&s.amz_date, "20150830T123600Z");
    ngx_str_set(&s.region, "us-east-1");
    ngx_str_set(&s.service, "service");
    ngx_str_set(&s.access_key, "AKIDEXAMPLE");
    ngx_str_set(&s.secret_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");

    /* the hash of the empty body */
    ngx_http_llm_sigv4_hash((u_char *) "", 0, hash);
    s.payload_hash.data = hash;
    s.payload_hash.len = 64;

    end = ngx_http_llm_sigv4_authorization(&s, scratch, out);

    if (end == NULL) {
        printf("%s ERROR\n", name);
        return;
    }

    printf("%s %.*s\n", name, (int) (end - out), out);
}


int
main(void)
{
    u_char  enc[64], *end;

    vector("get-vanilla", "GET");
    vector("post-vanilla", "POST");

    end = ngx_http_llm_sigv4_encode(enc, (u_char *) "a:b/c d~", 8, 0);
    printf("encode %.*s\n", (int) (end - enc), enc);

    end = ngx_http_llm_sigv4_encode(enc, (u_char *) "/m/a%3Ab", 8, 1);
    printf("encode-path %.*s\n", (int) (end - enc), enc);

    return 0;
}
