
/*
 * Response caching on nginx's proxy cache: the canonical key, what may be
 * cached, and only complete answers stored (docs/cache.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_body.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_response.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_variables.h"


#define NGX_HTTP_LLM_DIGEST  32


/*
 * The canonical form of a body, built event by event and hashed once:
 * every value as its type byte, its length (LEB128) and its bytes, so
 * that the form reads back one way only; containers opened by 'a' or 'o'
 * and closed by 'e'; an object's members ('m', the name, the value)
 * sorted by their bytes when it closes, so that their order does not
 * matter. One SHA-256 over a few hundred bytes, where a digest per
 * member and per object cost a compression each.
 */

typedef struct {
    size_t                         start;
    size_t                         len;
} ngx_http_llm_digest_member_t;


/*
 * An open array or object. The frames of a depth are reused by every
 * container at that depth: what an object's member list keeps is
 * bounded by the widest object, not by the body.
 */

typedef struct {
    ngx_http_llm_digest_member_t  *members;     /* an object's */
    ngx_uint_t                     nitems;
    ngx_uint_t                     nalloc;
    unsigned                       map:1;
    unsigned                       skip:1;      /* the next value is left out */
} ngx_http_llm_digest_frame_t;


/* the levels a digest holds without an allocation of its own */
#define NGX_HTTP_LLM_DIGEST_FRAMES  8


struct ngx_http_llm_digest_s {
    ngx_pool_t                    *pool;
    ngx_uint_t                     depth;
    ngx_uint_t                     used;        /* frames ever opened */
    ngx_uint_t                     skipping;    /* inside a left-out value */
    ngx_http_llm_memcap_t         *cap;         /* NULL: none */

    u_char                        *buf;         /* the canonical form */
    size_t                         len;
    size_t                         size;
    u_char                        *scratch;     /* for sorting members */
    size_t                         scratch_size;

    /*
     * first, or all NGX_HTTP_LLM_MAX_JSON_DEPTH + 1 once a body goes
     * deeper: the whole array would make the digest a large allocation
     * (a malloc() and a free() a request) for the few levels bodies use
     */
    ngx_http_llm_digest_frame_t   *frames;
    ngx_http_llm_digest_frame_t    first[NGX_HTTP_LLM_DIGEST_FRAMES];
};


static u_char *ngx_http_llm_digest_reserve(ngx_http_llm_digest_t *d,
    size_t n);
static ngx_uint_t ngx_http_llm_digest_plain(u_char *p, size_t len);
static ngx_int_t ngx_http_llm_digest_value(ngx_http_llm_digest_t *d,
    u_char type, u_char *value, size_t len);
static ngx_int_t ngx_http_llm_digest_sort(ngx_http_llm_digest_t *d,
    ngx_http_llm_digest_frame_t *f);
static int ngx_http_llm_digest_cmp(const void *a, const void *b);
static ngx_int_t ngx_http_llm_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_llm_cache_control(ngx_http_request_t *r,
    char *directive);


static ngx_str_t  ngx_http_llm_uncached_members[] = {
    ngx_string("user"),
    ngx_string("metadata"),
    ngx_string("stream"),
    ngx_string("stream_options"),
    ngx_string("store"),
    ngx_string("service_tier"),
    ngx_string("cache"),
    ngx_null_string
};


typedef enum {
    NGX_HTTP_LLM_CACHE_KEY = 0,
    NGX_HTTP_LLM_CACHE_BYPASS,
    NGX_HTTP_LLM_CACHE_NO_STORE,
    NGX_HTTP_LLM_CACHE_STATUS
} ngx_http_llm_cache_var_e;


static ngx_http_variable_t  ngx_http_llm_cache_vars[] = {

    { ngx_string("llm_cache_key"), NULL, ngx_http_llm_cache_variable,
      NGX_HTTP_LLM_CACHE_KEY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cache_bypass"), NULL, ngx_http_llm_cache_variable,
      NGX_HTTP_LLM_CACHE_BYPASS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_no_cache"), NULL, ngx_http_llm_cache_variable,
      NGX_HTTP_LLM_CACHE_NO_STORE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cache_status"), NULL, ngx_http_llm_cache_variable,
      NGX_HTTP_LLM_CACHE_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* the digest */

/*
 * SHA-256 fetched once per process: OpenSSL 3 looks the algorithm up,
 * under a lock, on every use of EVP_sha256() or SHA256()
 */

static const EVP_MD  *ngx_http_llm_sha256_md;
static EVP_MD_CTX    *ngx_http_llm_sha256_ctx;


static ngx_int_t
ngx_http_llm_sha256_init(void)
{
    if (ngx_http_llm_sha256_md == NULL) {
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
        ngx_http_llm_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
        ngx_http_llm_sha256_md = EVP_sha256();
#endif
        if (ngx_http_llm_sha256_md == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llm_sha256_ctx == NULL) {
        ngx_http_llm_sha256_ctx = EVP_MD_CTX_new();
        if (ngx_http_llm_sha256_ctx == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_sha256(const u_char *data, size_t len, u_char *digest)
{
    if (ngx_http_llm_sha256_init() != NGX_OK
        || EVP_DigestInit_ex(ngx_http_llm_sha256_ctx, ngx_http_llm_sha256_md,
                             NULL)
           != 1
        || EVP_DigestUpdate(ngx_http_llm_sha256_ctx, data, len) != 1
        || EVP_DigestFinal_ex(ngx_http_llm_sha256_ctx, digest, NULL) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_http_llm_digest_t *
ngx_http_llm_digest_create(ngx_pool_t *pool, ngx_http_llm_memcap_t *cap)
{
    ngx_http_llm_digest_t  *d;

    if (ngx_http_llm_sha256_init() != NGX_OK) {
        return NULL;
    }

    /* frames are zeroed as they are first used: most bodies are shallow */

    d = ngx_palloc(pool, sizeof(ngx_http_llm_digest_t));
    if (d == NULL) {
        return NULL;
    }

    ngx_memzero(d, offsetof(ngx_http_llm_digest_t, frames));

    d->pool = pool;
    d->cap = cap;
    d->frames = d->first;

    return d;
}


/* room for n more bytes of the canonical form, charged to the cap */

static u_char *
ngx_http_llm_digest_reserve(ngx_http_llm_digest_t *d, size_t n)
{
    size_t   size;
    u_char  *buf;

    if (d->size - d->len >= n) {
        return d->buf + d->len;
    }

    size = ngx_max(2 * d->size, d->len + n);
    size = ngx_max(size, 512);

    if (!ngx_http_llm_memcap_charge(d->cap, size - d->size)) {
        return NULL;
    }

    buf = ngx_pnalloc(d->pool, size);
    if (buf == NULL) {
        return NULL;
    }

    if (d->buf) {
        ngx_memcpy(buf, d->buf, d->len);
        ngx_pfree(d->pool, d->buf);
    }

    d->buf = buf;
    d->size = size;

    return buf + d->len;
}


ngx_int_t
ngx_http_llm_digest_open(ngx_http_llm_digest_t *d, ngx_uint_t map)
{
    u_char                       *p;
    size_t                        size;
    ngx_http_llm_digest_frame_t  *f, *frames;

    if (d->skipping || (d->depth && d->frames[d->depth - 1].skip)) {
        d->skipping++;
        return NGX_OK;
    }

    if (d->depth > NGX_HTTP_LLM_MAX_JSON_DEPTH) {
        return NGX_ERROR;
    }

    if (d->depth == NGX_HTTP_LLM_DIGEST_FRAMES && d->frames == d->first) {
        size = (NGX_HTTP_LLM_MAX_JSON_DEPTH + 1)
               * sizeof(ngx_http_llm_digest_frame_t);

        if (!ngx_http_llm_memcap_charge(d->cap, size)) {
            return NGX_ERROR;
        }

        frames = ngx_palloc(d->pool, size);
        if (frames == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(frames, d->first, sizeof(d->first));
        d->frames = frames;
    }

    p = ngx_http_llm_digest_reserve(d, 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = map ? 'o' : 'a';
    d->len++;

    if (d->depth == d->used) {
        ngx_memzero(&d->frames[d->used++], sizeof(ngx_http_llm_digest_frame_t));
    }

    f = &d->frames[d->depth++];

    f->map = map ? 1 : 0;
    f->skip = 0;
    f->nitems = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_digest_close(ngx_http_llm_digest_t *d)
{
    u_char                       *p;
    ngx_http_llm_digest_frame_t  *f;

    if (d->skipping) {
        if (--d->skipping == 0) {
            d->frames[d->depth - 1].skip = 0;
        }

        return NGX_OK;
    }

    f = &d->frames[--d->depth];

    if (f->map && f->nitems > 1 && ngx_http_llm_digest_sort(d, f) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_llm_digest_reserve(d, 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = 'e';
    d->len++;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_digest_key(ngx_http_llm_digest_t *d, u_char *key, size_t len)
{
    ngx_uint_t                     n;
    ngx_str_t                     *name;
    ngx_http_llm_digest_frame_t   *f;
    ngx_http_llm_digest_member_t  *members;

    if (d->skipping || d->depth == 0) {
        return NGX_OK;
    }

    f = &d->frames[d->depth - 1];

    if (d->depth == 1) {
        for (name = ngx_http_llm_uncached_members; name->len; name++) {
            if (name->len == len && ngx_strncmp(name->data, key, len) == 0) {
                f->skip = 1;
                return NGX_OK;
            }
        }
    }

    if (f->nitems == f->nalloc) {
        n = f->nalloc ? 2 * f->nalloc : 8;

        if (!ngx_http_llm_memcap_charge(d->cap,
                          n * sizeof(ngx_http_llm_digest_member_t)))
        {
            return NGX_ERROR;
        }

        members = ngx_palloc(d->pool,
                             n * sizeof(ngx_http_llm_digest_member_t));
        if (members == NULL) {
            return NGX_ERROR;
        }

        if (f->members) {
            ngx_memcpy(members, f->members,
                       f->nitems * sizeof(ngx_http_llm_digest_member_t));
            ngx_pfree(d->pool, f->members);
        }

        f->members = members;
        f->nalloc = n;
    }

    /* a member: "m", the name, then its value; it ends where the next starts */

    f->members[f->nitems++].start = d->len;

    return ngx_http_llm_digest_value(d, 'm', key, len);
}


/* -?[1-9][0-9]* or 0: an integer that prints as it is written */

static ngx_uint_t
ngx_http_llm_digest_plain(u_char *p, size_t len)
{
    u_char  *last;

    last = p + len;

    if (p < last && *p == '-') {
        p++;
    }

    if (p == last || *p < '0' || *p > '9') {
        return 0;
    }

    if (*p == '0') {
        return p + 1 == last && len == 1;
    }

    while (p < last) {
        if (*p < '0' || *p > '9') {
            return 0;
        }

        p++;
    }

    return 1;
}


/* type: 's' string (decoded), 'n' number, 't' true, 'f' false, 'z' null */

ngx_int_t
ngx_http_llm_digest_scalar(ngx_http_llm_digest_t *d, u_char type,
    u_char *value, size_t len)
{
    int      n;
    char    *end, number[64];
    double   x;

    if (d->skipping) {
        return NGX_OK;
    }

    if (d->depth && d->frames[d->depth - 1].skip) {
        d->frames[d->depth - 1].skip = 0;
        return NGX_OK;
    }

    /*
     * 1, 1.0 and 1e0 are the same number. An integer of up to 15 digits
     * without a leading zero is already what "%.17g" would print.
     */

    if (type == 'n' && len < sizeof(number)
        && !(len <= 16 && ngx_http_llm_digest_plain(value, len)))
    {
        ngx_memcpy(number, value, len);
        number[len] = '\0';

        x = strtod(number, &end);

        if (*end == '\0' && x == x) {
            n = snprintf(number, sizeof(number), "%.17g", x);

            if (n > 0 && (size_t) n < sizeof(number)) {
                value = (u_char *) number;
                len = n;
            }
        }
    }

    if (ngx_http_llm_digest_value(d, type, value, len) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a value's bytes: its type, its length (LEB128) and itself */

static ngx_int_t
ngx_http_llm_digest_value(ngx_http_llm_digest_t *d, u_char type,
    u_char *value, size_t len)
{
    size_t   n;
    u_char  *p, *start;

    p = ngx_http_llm_digest_reserve(d, 1 + 10 + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    start = p;
    *p++ = type;

    for (n = len; n >= 0x80; n >>= 7) {
        *p++ = (u_char) (n | 0x80);
    }

    *p++ = (u_char) n;

    if (len) {
        p = ngx_cpymem(p, value, len);
    }

    d->len += p - start;

    return NGX_OK;
}


/*
 * An object's members in a fixed order: by their bytes (name first, then
 * value, so that even repeated names are ordered).
 */

static u_char  *ngx_http_llm_digest_sorting;


static ngx_int_t
ngx_http_llm_digest_sort(ngx_http_llm_digest_t *d,
    ngx_http_llm_digest_frame_t *f)
{
    size_t                         start, size;
    u_char                        *p;
    ngx_uint_t                     i, j, sorted;
    ngx_http_llm_digest_member_t  *m, tmp;

    m = f->members;
    start = m[0].start;

    ngx_http_llm_digest_sorting = d->buf;
    sorted = 1;

    for (i = 0; i < f->nitems; i++) {
        m[i].len = ((i + 1 < f->nitems) ? m[i + 1].start : d->len)
                   - m[i].start;

        if (i && sorted && ngx_http_llm_digest_cmp(&m[i - 1], &m[i]) > 0) {
            sorted = 0;
        }
    }

    if (sorted) {
        return NGX_OK;
    }

    size = d->len - start;

    if (d->scratch_size < size) {
        if (!ngx_http_llm_memcap_charge(d->cap, size - d->scratch_size)) {
            return NGX_ERROR;
        }

        if (d->scratch) {
            ngx_pfree(d->pool, d->scratch);
        }

        d->scratch = ngx_pnalloc(d->pool, size);
        if (d->scratch == NULL) {
            return NGX_ERROR;
        }

        d->scratch_size = size;
    }

    if (f->nitems > 16) {
        ngx_qsort(m, f->nitems, sizeof(ngx_http_llm_digest_member_t),
                  ngx_http_llm_digest_cmp);

    } else {
        /* a few members: an insertion sort, without qsort()'s calls */

        for (i = 1; i < f->nitems; i++) {
            tmp = m[i];

            for (j = i; j > 0 && ngx_http_llm_digest_cmp(&m[j - 1], &tmp) > 0;
                 j--)
            {
                m[j] = m[j - 1];
            }

            m[j] = tmp;
        }
    }

    p = d->scratch;

    for (i = 0; i < f->nitems; i++) {
        p = ngx_cpymem(p, d->buf + m[i].start, m[i].len);
    }

    ngx_memcpy(d->buf + start, d->scratch, size);

    return NGX_OK;
}


static int
ngx_http_llm_digest_cmp(const void *a, const void *b)
{
    int                                  rc;
    const ngx_http_llm_digest_member_t  *x = a, *y = b;

    rc = ngx_memcmp(ngx_http_llm_digest_sorting + x->start,
                    ngx_http_llm_digest_sorting + y->start,
                    ngx_min(x->len, y->len));

    if (rc) {
        return rc;
    }

    return (x->len > y->len) - (x->len < y->len);
}


/*
 * The body's canonical form, once it is all read: hashed with the key's
 * other parts by the caller, in one digest.
 */

void
ngx_http_llm_digest_result(ngx_http_llm_digest_t *d, ngx_str_t *form)
{
    form->data = d->buf;
    form->len = d->len;
}


/*
 * The scanner's tokens to the digest, as yajl's callbacks once were:
 * numbers as written, strings and keys decoded, whole from the sink.
 */

ngx_int_t
ngx_http_llm_digest_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    return ngx_http_llm_digest_feed(js->data, js, token);
}


ngx_int_t
ngx_http_llm_digest_feed(ngx_http_llm_digest_t *d, ngx_http_llm_jscan_t *js,
    ngx_uint_t token)
{
    ngx_str_t  value;

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_OBJECT:
        return ngx_http_llm_digest_open(d, 1);

    case NGX_HTTP_LLM_JSCAN_ARRAY:
        return ngx_http_llm_digest_open(d, 0);

    case NGX_HTTP_LLM_JSCAN_END:
        return ngx_http_llm_digest_close(d);

    case NGX_HTTP_LLM_JSCAN_TRUE:
        return ngx_http_llm_digest_scalar(d, 't', NULL, 0);

    case NGX_HTTP_LLM_JSCAN_FALSE:
        return ngx_http_llm_digest_scalar(d, 'f', NULL, 0);

    case NGX_HTTP_LLM_JSCAN_NULL:
        return ngx_http_llm_digest_scalar(d, 'z', NULL, 0);

    default:
        break;
    }

    if (ngx_http_llm_jscan_value(js, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_KEY:
        return ngx_http_llm_digest_key(d, value.data, value.len);

    case NGX_HTTP_LLM_JSCAN_STRING:
        return ngx_http_llm_digest_scalar(d, 's', value.data, value.len);

    default: /* NGX_HTTP_LLM_JSCAN_NUMBER */
        return ngx_http_llm_digest_scalar(d, 'n', value.data, value.len);
    }
}


/*
 * Once the request is parsed and routed, and before each attempt (the
 * key names the attempt's dialect): is it cacheable, and its key.
 */

void
ngx_http_llm_cache_decide(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    size_t                    len;
    u_char                   *p, *buf, digest[NGX_HTTP_LLM_DIGEST];
    ngx_str_t                 scope, dialect, form;
    ngx_uint_t                mode;
    ngx_table_elt_t          *h;
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    mode = (ctx->route->cache != NGX_CONF_UNSET_UINT) ? ctx->route->cache
                                                      : llcf->cache;

    ctx->cache_eligible = 0;

    if (mode == NGX_HTTP_LLM_CACHE_OFF || ctx->digest == NULL) {
        return;
    }

    /* a hit, a miss or a bypass, for the metrics */
    ctx->cache_decided = 1;

    if (mode == NGX_HTTP_LLM_CACHE_ON) {
        ctx->cache_eligible = 1;

    } else {
        /* embeddings are deterministic; completions at temperature 0 */
        ctx->cache_eligible = ctx->embed != NULL
                              || (ctx->chat.has_temperature
                                  && ctx->chat.temperature == 0);
    }

    /* the body's "cache", then the header, which wins */

    if (ctx->chat.cache_opt == NGX_HTTP_LLM_OPT_ON) {
        ctx->cache_eligible = 1;

    } else if (ctx->chat.cache_opt == NGX_HTTP_LLM_OPT_OFF) {
        ctx->cache_eligible = 0;
    }

    h = ngx_http_llm_find_header(&r->headers_in.headers, "x-llm-cache");

    if (h) {
        if (h->value.len == 2 && ngx_strncasecmp(h->value.data,
                                                 (u_char *) "on", 2) == 0)
        {
            ctx->cache_eligible = 1;

        } else if (h->value.len == 3
                   && ngx_strncasecmp(h->value.data, (u_char *) "off", 3)
                      == 0)
        {
            ctx->cache_eligible = 0;
        }
    }

    if (!ctx->cache_eligible) {
        return;
    }

    if (ngx_http_llm_body_digest(r, ctx) != NGX_OK) {
        ctx->cache_eligible = 0;
        return;
    }

    ctx->cache_no_store = ctx->chat.cache_no_store
                          || ngx_http_llm_cache_control(r, "no-store");
    ctx->cache_no_lookup = ctx->cache_no_store || ctx->chat.cache_no_cache
                           || ngx_http_llm_cache_control(r, "no-cache");

    /* the tenant: one never reads another's answers */

    if (llcf->cache_scope == NGX_HTTP_LLM_SCOPE_GLOBAL || ctx->key == NULL) {
        ngx_str_set(&scope, "*");

    } else if (llcf->cache_scope == NGX_HTTP_LLM_SCOPE_TEAM
               && ctx->key->parent)
    {
        scope = ctx->key->parent->node_name;

    } else {
        scope = ctx->key->node_name;
    }

    dialect = ctx->target->provider->dialect->name;

    len = sizeof("llm-cache-3") + scope.len + 1 + llcf->cache_namespace.len
          + 1 + ctx->route->name.len + 1 + dialect.len + 2;

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        ctx->cache_eligible = 0;
        return;
    }

    p = ngx_cpymem(buf, "llm-cache-3", sizeof("llm-cache-3"));
    p = ngx_cpymem(p, scope.data, scope.len);
    *p++ = '\0';
    p = ngx_cpymem(p, llcf->cache_namespace.data, llcf->cache_namespace.len);
    *p++ = '\0';
    p = ngx_cpymem(p, ctx->route->name.data, ctx->route->name.len);
    *p++ = '\0';
    p = ngx_cpymem(p, dialect.data, dialect.len);
    *p++ = '\0';
    /* the endpoint: the same body may ask for embeddings or a chat */
    *p++ = ctx->embed ? 'e' : (ctx->chat.stream ? 's' : 'j');

    /* then the body's canonical form: all of it in one digest */

    ngx_http_llm_digest_result(ctx->digest, &form);

    if (ngx_http_llm_sha256_init() != NGX_OK
        || EVP_DigestInit_ex(ngx_http_llm_sha256_ctx, ngx_http_llm_sha256_md,
                             NULL)
           != 1
        || EVP_DigestUpdate(ngx_http_llm_sha256_ctx, buf, p - buf) != 1
        || EVP_DigestUpdate(ngx_http_llm_sha256_ctx, form.data, form.len)
           != 1
        || EVP_DigestFinal_ex(ngx_http_llm_sha256_ctx, digest, NULL) != 1)
    {
        ctx->cache_eligible = 0;
        return;
    }

    ctx->cache_key.data = ngx_pnalloc(r->pool, 2 * NGX_HTTP_LLM_DIGEST);
    if (ctx->cache_key.data == NULL) {
        ctx->cache_eligible = 0;
        return;
    }

    ctx->cache_key.len = ngx_hex_dump(ctx->cache_key.data, digest,
                                      NGX_HTTP_LLM_DIGEST)
                         - ctx->cache_key.data;
}


/*
 * The header filter passes a response: from the cache, or not. A hit
 * asked no provider: its target's health is left alone. (Whether nginx
 * will store a response is settled only after this filter, with
 * proxy_no_cache: the response filter sees to that.)
 */

void
ngx_http_llm_cache_response(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    if (r->upstream == NULL) {
        return;
    }

    ctx->cache_status = r->upstream->cache_status;

    if (r->cached) {
        ctx->cache_hit = 1;
    }
}


/*
 * The response filter: a response nginx is storing is held "not
 * cacheable" until it is complete. Only a response nginx decided to store
 * (ctx->cache_storing, set by the response filter when it saw
 * u->cacheable on the first body buffer) is ever made cacheable again.
 */

void
ngx_http_llm_cache_complete(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_uint_t complete)
{
    if (!ctx->cache_storing || r->upstream == NULL) {
        return;
    }

    r->upstream->cacheable = complete ? 1 : 0;
}


ngx_int_t
ngx_http_llm_cache_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_llm_cache_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t            value;
    ngx_http_llm_ctx_t  *ctx;

    static ngx_str_t  statuses[] = {
        ngx_null_string,
        ngx_string("MISS"),
        ngx_string("BYPASS"),
        ngx_string("EXPIRED"),
        ngx_string("STALE"),
        ngx_string("UPDATING"),
        ngx_string("REVALIDATED"),
        ngx_string("HIT")
    };

    ctx = ngx_http_llm_get_ctx(r);

    ngx_str_null(&value);

    switch (data) {

    case NGX_HTTP_LLM_CACHE_KEY:
        if (ctx && ctx->cache_eligible) {
            value = ctx->cache_key;

        } else {
            /* never looked up nor stored (see the other two) */
            ngx_str_set(&value, "-");
        }

        break;

    case NGX_HTTP_LLM_CACHE_BYPASS:
        if (ctx == NULL || !ctx->cache_eligible || ctx->cache_no_lookup) {
            ngx_str_set(&value, "1");
        }

        break;

    case NGX_HTTP_LLM_CACHE_NO_STORE:
        if (ctx == NULL || !ctx->cache_eligible || ctx->cache_no_store) {
            ngx_str_set(&value, "1");
        }

        break;

    default: /* NGX_HTTP_LLM_CACHE_STATUS */
        if (ctx && ctx->cache_status
            && ctx->cache_status < sizeof(statuses) / sizeof(ngx_str_t))
        {
            value = statuses[ctx->cache_status];

        } else if (ctx && ctx->digest && ngx_http_llm_completion(ctx)
                   && ctx->prepared)
        {
            /* caching is configured, and this request was not looked up */
            ngx_str_set(&value, "BYPASS");
        }
    }

    return ngx_http_llm_variable_set(v, &value);
}


/* whether the client's Cache-Control has this directive */

static ngx_int_t
ngx_http_llm_cache_control(ngx_http_request_t *r, char *directive)
{
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_http_llm_find_header(&r->headers_in.headers, "cache-control");

    if (h == NULL) {
        return 0;
    }

    len = ngx_strlen(directive);

    return ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                            (u_char *) directive, len - 1)
           != NULL;
}


/* llm_cache off | deterministic | on */

char *
ngx_http_llm_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->cache != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        llcf->cache = NGX_HTTP_LLM_CACHE_OFF;

    } else if (ngx_strcmp(value[1].data, "deterministic") == 0) {
        llcf->cache = NGX_HTTP_LLM_CACHE_DETERMINISTIC;

    } else if (ngx_strcmp(value[1].data, "on") == 0) {
        llcf->cache = NGX_HTTP_LLM_CACHE_ON;

    } else {
        return "must be \"off\", \"deterministic\" or \"on\"";
    }

    return NGX_CONF_OK;
}


/* llm_cache_scope team | key | global [namespace] */

char *
ngx_http_llm_cache_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->cache_scope != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "team") == 0) {
        llcf->cache_scope = NGX_HTTP_LLM_SCOPE_TEAM;

    } else if (ngx_strcmp(value[1].data, "key") == 0) {
        llcf->cache_scope = NGX_HTTP_LLM_SCOPE_KEY;

    } else if (ngx_strcmp(value[1].data, "global") == 0) {
        llcf->cache_scope = NGX_HTTP_LLM_SCOPE_GLOBAL;

    } else {
        return "must be \"team\", \"key\" or \"global\"";
    }

    if (cf->args->nelts == 3) {
        llcf->cache_namespace = value[2];
    }

    return NGX_CONF_OK;
}
