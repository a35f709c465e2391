
/*
 * AWS Signature Version 4 for one request: the canonical request (with
 * the hash of the body), the string to sign, and the signature by the
 * HMAC-SHA256 key chain, as the value of an Authorization header. Pure
 * functions over OpenSSL: a test harness links them alone.
 */


#ifndef _NGX_HTTP_LLM_SIGV4_H_INCLUDED_
#define _NGX_HTTP_LLM_SIGV4_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_str_t                      method;
    ngx_str_t                      uri;         /* canonical, encoded */
    ngx_str_t                      query;       /* canonical */
    ngx_str_t                      host;
    ngx_str_t                      amz_date;    /* 20150830T123600Z */
    ngx_str_t                      payload_hash;    /* hex SHA-256 */
    ngx_str_t                      security_token;  /* empty: none */
    ngx_str_t                      region;
    ngx_str_t                      service;
    ngx_str_t                      access_key;
    ngx_str_t                      secret_key;
    unsigned                       content_sha256:1; /* header signed */
} ngx_http_llm_sigv4_t;


/* scratch the signing needs, and the header value's length, at most */
size_t ngx_http_llm_sigv4_scratch_size(ngx_http_llm_sigv4_t *s);
size_t ngx_http_llm_sigv4_auth_size(ngx_http_llm_sigv4_t *s);

/* writes the Authorization value at out, returns its end; NULL: error */
u_char *ngx_http_llm_sigv4_authorization(ngx_http_llm_sigv4_t *s,
    u_char *scratch, u_char *out);

/* hex SHA-256 (64 bytes) of data */
void ngx_http_llm_sigv4_hash(u_char *data, size_t len, u_char *hex);

/*
 * percent-encoding as AWS does: all but A-Z a-z 0-9 - _ . ~ (and '/'
 * if slash); dst needs 3 * len bytes
 */
u_char *ngx_http_llm_sigv4_encode(u_char *dst, u_char *src, size_t len,
    ngx_uint_t slash);


#endif /* _NGX_HTTP_LLM_SIGV4_H_INCLUDED_ */
