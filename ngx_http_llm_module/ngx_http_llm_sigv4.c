
/*
 * AWS Signature Version 4.
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n HashedPayload
 *   StringToSign     = "AWS4-HMAC-SHA256" \n Date \n Scope \n
 *                      hex(SHA256(CanonicalRequest))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" Secret, Day), Region),
 *                      Service), "aws4_request")
 *
 * Only the headers the gateway sends are signed: host, x-amz-date, and
 * x-amz-content-sha256 and x-amz-security-token when sent. The secret
 * and the signing key live on the stack and are wiped after use.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>

#include "ngx_http_llm_sigv4.h"


static u_char  ngx_http_llm_sigv4_hexdigits[] = "0123456789abcdef";


static u_char *
ngx_http_llm_sigv4_hex(u_char *dst, u_char *src, size_t len)
{
    while (len--) {
        *dst++ = ngx_http_llm_sigv4_hexdigits[*src >> 4];
        *dst++ = ngx_http_llm_sigv4_hexdigits[*src++ & 0xf];
    }

    return dst;
}


void
ngx_http_llm_sigv4_hash(u_char *data, size_t len, u_char *hex)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);

    (void) ngx_http_llm_sigv4_hex(hex, md, SHA256_DIGEST_LENGTH);
}


u_char *
ngx_http_llm_sigv4_encode(u_char *dst, u_char *src, size_t len,
    ngx_uint_t slash)
{
    u_char  c;

    while (len--) {
        c = *src++;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~' || (slash && c == '/'))
        {
            *dst++ = c;
            continue;
        }

        *dst++ = '%';
        *dst++ = "0123456789ABCDEF"[c >> 4];
        *dst++ = "0123456789ABCDEF"[c & 0xf];
    }

    return dst;
}


size_t
ngx_http_llm_sigv4_scratch_size(ngx_http_llm_sigv4_t *s)
{
    /* the canonical request, then the string to sign */

    return s->method.len + s->uri.len + s->query.len + s->host.len
           + s->amz_date.len + s->payload_hash.len * 2
           + s->security_token.len + s->region.len + s->service.len
           + sizeof("host:\nx-amz-content-sha256:\nx-amz-date:\n"
                    "x-amz-security-token:\n\n"
                    "host;x-amz-content-sha256;x-amz-date;"
                    "x-amz-security-token\n\n\n\n")
           + sizeof("AWS4-HMAC-SHA256\n\n/////aws4_request\n") + 64 + 16;
}


size_t
ngx_http_llm_sigv4_auth_size(ngx_http_llm_sigv4_t *s)
{
    return sizeof("AWS4-HMAC-SHA256 Credential=/YYYYMMDD///aws4_request, "
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-security-token, Signature=")
           + s->access_key.len + s->region.len + s->service.len + 64;
}


u_char *
ngx_http_llm_sigv4_authorization(ngx_http_llm_sigv4_t *s, u_char *scratch,
    u_char *out)
{
    u_char        *p, *sts, *signed_headers, *sh_end;
    size_t         klen;
    unsigned int   len;
    u_char         md[SHA256_DIGEST_LENGTH], key[SHA256_DIGEST_LENGTH];
    u_char         secret[4 + 256], sig[SHA256_DIGEST_LENGTH];

    if (s->amz_date.len != 16 || s->secret_key.len > 256) {
        return NULL;
    }

    /* the canonical request */

    p = scratch;
    p = ngx_cpymem(p, s->method.data, s->method.len);
    *p++ = '\n';
    p = ngx_cpymem(p, s->uri.data, s->uri.len);
    *p++ = '\n';

    if (s->query.len) {
        p = ngx_cpymem(p, s->query.data, s->query.len);
    }

    *p++ = '\n';

    p = ngx_cpymem(p, "host:", 5);
    p = ngx_cpymem(p, s->host.data, s->host.len);
    *p++ = '\n';

    if (s->content_sha256) {
        p = ngx_cpymem(p, "x-amz-content-sha256:", 21);
        p = ngx_cpymem(p, s->payload_hash.data, s->payload_hash.len);
        *p++ = '\n';
    }

    p = ngx_cpymem(p, "x-amz-date:", 11);
    p = ngx_cpymem(p, s->amz_date.data, s->amz_date.len);
    *p++ = '\n';

    if (s->security_token.len) {
        p = ngx_cpymem(p, "x-amz-security-token:", 21);
        p = ngx_cpymem(p, s->security_token.data, s->security_token.len);
        *p++ = '\n';
    }

    *p++ = '\n';

    signed_headers = p;
    p = ngx_cpymem(p, "host", 4);

    if (s->content_sha256) {
        p = ngx_cpymem(p, ";x-amz-content-sha256", 21);
    }

    p = ngx_cpymem(p, ";x-amz-date", 11);

    if (s->security_token.len) {
        p = ngx_cpymem(p, ";x-amz-security-token", 21);
    }

    sh_end = p;
    *p++ = '\n';
    p = ngx_cpymem(p, s->payload_hash.data, s->payload_hash.len);

    SHA256(scratch, p - scratch, md);

    /* the string to sign, after it in the scratch */

    sts = p;
    p = ngx_cpymem(p, "AWS4-HMAC-SHA256\n", 17);
    p = ngx_cpymem(p, s->amz_date.data, 16);
    *p++ = '\n';
    p = ngx_cpymem(p, s->amz_date.data, 8);
    *p++ = '/';
    p = ngx_cpymem(p, s->region.data, s->region.len);
    *p++ = '/';
    p = ngx_cpymem(p, s->service.data, s->service.len);
    p = ngx_cpymem(p, "/aws4_request\n", 14);
    p = ngx_http_llm_sigv4_hex(p, md, SHA256_DIGEST_LENGTH);

    /* the signing key */

    ngx_memcpy(secret, "AWS4", 4);
    ngx_memcpy(secret + 4, s->secret_key.data, s->secret_key.len);
    klen = 4 + s->secret_key.len;

    len = SHA256_DIGEST_LENGTH;

    if (HMAC(EVP_sha256(), secret, (int) klen, s->amz_date.data, 8, key,
             &len)
        == NULL
        || HMAC(EVP_sha256(), key, SHA256_DIGEST_LENGTH, s->region.data,
                s->region.len, key, &len)
           == NULL
        || HMAC(EVP_sha256(), key, SHA256_DIGEST_LENGTH, s->service.data,
                s->service.len, key, &len)
           == NULL
        || HMAC(EVP_sha256(), key, SHA256_DIGEST_LENGTH,
                (u_char *) "aws4_request", 12, key, &len)
           == NULL
        || HMAC(EVP_sha256(), key, SHA256_DIGEST_LENGTH, sts, p - sts, sig,
                &len)
           == NULL)
    {
        OPENSSL_cleanse(secret, sizeof(secret));
        OPENSSL_cleanse(key, sizeof(key));
        return NULL;
    }

    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));

    /* the header's value */

    p = out;
    p = ngx_cpymem(p, "AWS4-HMAC-SHA256 Credential=", 28);
    p = ngx_cpymem(p, s->access_key.data, s->access_key.len);
    *p++ = '/';
    p = ngx_cpymem(p, s->amz_date.data, 8);
    *p++ = '/';
    p = ngx_cpymem(p, s->region.data, s->region.len);
    *p++ = '/';
    p = ngx_cpymem(p, s->service.data, s->service.len);
    p = ngx_cpymem(p, "/aws4_request, SignedHeaders=", 29);
    p = ngx_cpymem(p, signed_headers, sh_end - signed_headers);
    p = ngx_cpymem(p, ", Signature=", 12);
    p = ngx_http_llm_sigv4_hex(p, sig, SHA256_DIGEST_LENGTH);

    return p;
}
