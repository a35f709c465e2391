
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


#define NGX_HTTP_LLM_DIGEST  32


/* a length as 8 bytes, little-endian: values are told apart by it */
#define ngx_http_llm_digest_length(n, b)                                     \
    (b)[0] = (u_char) (n); (b)[1] = (u_char) ((n) >> 8);                     \
    (b)[2] = (u_char) ((n) >> 16); (b)[3] = (u_char) ((n) >> 24);            \
    (b)[4] = (u_char) ((uint64_t) (n) >> 32);                                \
    (b)[5] = (u_char) ((uint64_t) (n) >> 40);                                \
    (b)[6] = (u_char) ((uint64_t) (n) >> 48);                                \
    (b)[7] = (u_char) ((uint64_t) (n) >> 56)


/*
 * An open array or object. An array's elements are hashed as they come
 * into the array's digest; an object's members each into a digest of
 * their own (name and value), kept to be sorted when the object closes.
 * The frames of a depth are reused by every container at that depth, so
 * what the digest keeps is bounded by the widest object, not by the body.
 */

typedef struct {
    EVP_MD_CTX                    *md;          /* an array's, lazily */
    EVP_MD_CTX                    *member;      /* an object's member's */
    u_char                        *items;       /* an object's members */
    ngx_uint_t                     nitems;
    ngx_uint_t                     nalloc;
    unsigned                       map:1;
    unsigned                       skip:1;      /* the next value is left out */
} ngx_http_llm_digest_frame_t;


struct ngx_http_llm_digest_s {
    ngx_pool_t                    *pool;
    ngx_uint_t                     depth;
    ngx_uint_t                     used;        /* frames ever opened */
    ngx_uint_t                     skipping;    /* inside a left-out value */
    ngx_http_llm_memcap_t         *cap;         /* NULL: none */
    EVP_MD_CTX                    *md;          /* for one-shot digests */

    u_char                         result[NGX_HTTP_LLM_DIGEST];
    ngx_http_llm_digest_frame_t    frames[NGX_HTTP_LLM_MAX_JSON_DEPTH + 1];
};


static EVP_MD_CTX *ngx_http_llm_digest_md(ngx_uint_t i);
static ngx_int_t ngx_http_llm_sha256_typed(EVP_MD_CTX *md, u_char type,
    u_char *data, size_t len, u_char *digest);
static ngx_int_t ngx_http_llm_digest_value(ngx_http_llm_digest_t *d,
    u_char type, u_char *value, size_t len);
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

    d->md = ngx_http_llm_sha256_ctx;

    return d;
}


/*
 * The digest contexts of each depth (an array's, an object member's),
 * made once per process: a body's digest is computed in one call, never
 * two at a time.
 */

static EVP_MD_CTX *
ngx_http_llm_digest_md(ngx_uint_t i)
{
    static EVP_MD_CTX  *mds[2 * (NGX_HTTP_LLM_MAX_JSON_DEPTH + 1)];

    if (mds[i] == NULL) {
        mds[i] = EVP_MD_CTX_new();
    }

    return mds[i];
}


/* the digest of a type byte and a value */

static ngx_int_t
ngx_http_llm_sha256_typed(EVP_MD_CTX *md, u_char type, u_char *data,
    size_t len, u_char *digest)
{
    if (EVP_DigestInit_ex(md, ngx_http_llm_sha256_md, NULL) != 1
        || EVP_DigestUpdate(md, &type, 1) != 1
        || (len && EVP_DigestUpdate(md, data, len) != 1)
        || EVP_DigestFinal_ex(md, digest, NULL) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_digest_open(ngx_http_llm_digest_t *d, ngx_uint_t map)
{
    u_char                        type;
    ngx_http_llm_digest_frame_t  *f;

    if (d->skipping || (d->depth && d->frames[d->depth - 1].skip)) {
        d->skipping++;
        return NGX_OK;
    }

    if (d->depth > NGX_HTTP_LLM_MAX_JSON_DEPTH) {
        return NGX_ERROR;
    }

    if (d->depth == d->used) {
        ngx_memzero(&d->frames[d->used++], sizeof(ngx_http_llm_digest_frame_t));
    }

    f = &d->frames[d->depth++];

    f->map = map ? 1 : 0;
    f->skip = 0;
    f->nitems = 0;

    if (map) {
        return NGX_OK;
    }

    if (f->md == NULL) {
        f->md = ngx_http_llm_digest_md(2 * (d->depth - 1));
        if (f->md == NULL) {
            return NGX_ERROR;
        }
    }

    type = 'a';

    if (EVP_DigestInit_ex(f->md, ngx_http_llm_sha256_md, NULL) != 1
        || EVP_DigestUpdate(f->md, &type, 1) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_digest_close(ngx_http_llm_digest_t *d)
{
    u_char                        digest[NGX_HTTP_LLM_DIGEST];
    ngx_http_llm_digest_frame_t  *f;

    if (d->skipping) {
        if (--d->skipping == 0) {
            d->frames[d->depth - 1].skip = 0;
        }

        return NGX_OK;
    }

    f = &d->frames[--d->depth];

    if (!f->map) {
        if (EVP_DigestFinal_ex(f->md, digest, NULL) != 1) {
            return NGX_ERROR;
        }

        return ngx_http_llm_digest_value(d, 'd', digest, NGX_HTTP_LLM_DIGEST);
    }

    /* an object's members in a fixed order: sorted by their digests */

    if (f->nitems > 1) {
        ngx_qsort(f->items, f->nitems, NGX_HTTP_LLM_DIGEST,
                  ngx_http_llm_digest_cmp);
    }

    if (ngx_http_llm_sha256_typed(d->md, 'o', f->items,
                            f->nitems * NGX_HTTP_LLM_DIGEST, digest)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llm_digest_value(d, 'd', digest, NGX_HTTP_LLM_DIGEST);
}


ngx_int_t
ngx_http_llm_digest_key(ngx_http_llm_digest_t *d, u_char *key, size_t len)
{
    u_char                        length[8];
    ngx_str_t                    *name;
    ngx_http_llm_digest_frame_t  *f;

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

    /* a member: "m", the name's length and the name, then its value */

    if (f->member == NULL) {
        f->member = ngx_http_llm_digest_md(2 * (d->depth - 1) + 1);
        if (f->member == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_http_llm_digest_length(len, length);

    if (EVP_DigestInit_ex(f->member, ngx_http_llm_sha256_md, NULL) != 1
        || EVP_DigestUpdate(f->member, "m", 1) != 1
        || EVP_DigestUpdate(f->member, length, sizeof(length)) != 1
        || (len && EVP_DigestUpdate(f->member, key, len) != 1))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
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

    if (type == 'n' && len < sizeof(number)) {

        /* 1, 1.0 and 1e0 are the same number */

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

    return ngx_http_llm_digest_value(d, type, value, len);
}


/*
 * A value is complete (type 'd': a container's digest): the result, or
 * into its array (type, length, bytes), or the end of its member's digest.
 */

static ngx_int_t
ngx_http_llm_digest_value(ngx_http_llm_digest_t *d, u_char type,
    u_char *value, size_t len)
{
    u_char                       *items, length[8];
    ngx_uint_t                    n;
    ngx_http_llm_digest_frame_t  *f;

    if (d->depth == 0) {
        if (type == 'd') {
            ngx_memcpy(d->result, value, NGX_HTTP_LLM_DIGEST);
            return NGX_OK;
        }

        return ngx_http_llm_sha256_typed(d->md, type, value, len, d->result);
    }

    f = &d->frames[d->depth - 1];

    if (!f->map) {
        ngx_http_llm_digest_length(len, length);

        return EVP_DigestUpdate(f->md, &type, 1) == 1
               && EVP_DigestUpdate(f->md, length, sizeof(length)) == 1
               && (len == 0 || EVP_DigestUpdate(f->md, value, len) == 1)
               ? NGX_OK : NGX_ERROR;
    }

    if (f->nitems == f->nalloc) {
        n = f->nalloc ? 2 * f->nalloc : 8;

        if (!ngx_http_llm_memcap_charge(d->cap, n * NGX_HTTP_LLM_DIGEST)) {
            return NGX_ERROR;
        }

        items = ngx_palloc(d->pool, n * NGX_HTTP_LLM_DIGEST);
        if (items == NULL) {
            return NGX_ERROR;
        }

        if (f->items) {
            ngx_memcpy(items, f->items, f->nitems * NGX_HTTP_LLM_DIGEST);
            ngx_pfree(d->pool, f->items);
        }

        f->items = items;
        f->nalloc = n;
    }

    items = f->items + f->nitems++ * NGX_HTTP_LLM_DIGEST;

    /* the member's value is the last of its bytes: no length needed */

    return EVP_DigestUpdate(f->member, &type, 1) == 1
           && (len == 0 || EVP_DigestUpdate(f->member, value, len) == 1)
           && EVP_DigestFinal_ex(f->member, items, NULL) == 1
           ? NGX_OK : NGX_ERROR;
}


static int
ngx_http_llm_digest_cmp(const void *a, const void *b)
{
    return ngx_memcmp(a, b, NGX_HTTP_LLM_DIGEST);
}


u_char *
ngx_http_llm_digest_result(ngx_http_llm_digest_t *d)
{
    return d->result;
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
    ngx_str_t                 scope, dialect;
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

    len = sizeof("llm-cache-2") + scope.len + 1 + llcf->cache_namespace.len
          + 1 + ctx->route->name.len + 1 + dialect.len + 2
          + NGX_HTTP_LLM_DIGEST;

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        ctx->cache_eligible = 0;
        return;
    }

    p = ngx_cpymem(buf, "llm-cache-2", sizeof("llm-cache-2"));
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
    p = ngx_cpymem(p, ngx_http_llm_digest_result(ctx->digest),
                   NGX_HTTP_LLM_DIGEST);

    if (ngx_http_llm_sha256(buf, p - buf, digest) != NGX_OK) {
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

    if (value.data == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
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
