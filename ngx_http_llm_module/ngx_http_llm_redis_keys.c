
/*
 * llm_redis keys=on: keys the configuration does not know, looked up in
 * Redis by their SHA-256 and cached by each worker (docs/redis.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redis_worker.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_keys.h"


/* a key found in Redis; requests that use it hold it */
typedef struct {
    ngx_http_llm_entity_t          entity;
    ngx_pool_t                    *pool;
    ngx_uint_t                     refs;
} ngx_http_llm_rkey_t;


/* what the worker knows about a digest */
typedef struct {
    ngx_str_node_t                 sn;             /* the digest */
    ngx_queue_t                    lru;
    ngx_queue_t                    waiters;        /* ngx_http_llm_rwait_t */
    ngx_http_llm_rkey_t           *key;            /* NULL: not a key */
    ngx_msec_t                     expires;
    u_char                         digest[32];
    u_char                         hex[64];
    unsigned                       pending:1;
} ngx_http_llm_rcache_t;


/* a request's part: the key it holds, or the lookup it waits for */
typedef struct {
    ngx_queue_t                    queue;
    ngx_event_t                   *wake;
    ngx_http_llm_rkey_t           *key;
    ngx_int_t                      rc;
    unsigned                       queued:1;
} ngx_http_llm_rwait_t;


static ngx_http_llm_rcache_t *ngx_http_llm_redis_cache_add(
    ngx_http_llm_redis_worker_t *w, u_char *digest, u_char *hex);
static void ngx_http_llm_redis_cache_drop(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce);
static ngx_int_t ngx_http_llm_redis_lookup(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce);
static void ngx_http_llm_redis_key_cb(redisAsyncContext *ac, void *rp,
    void *data);
static ngx_int_t ngx_http_llm_redis_key_parse(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce, redisReply *reply, ngx_http_llm_rkey_t **out);
static ngx_int_t ngx_http_llm_redis_hold(ngx_http_request_t *r,
    ngx_http_llm_rkey_t *k, ngx_event_t *wake, ngx_http_llm_rwait_t **out);
static void ngx_http_llm_redis_wait_cleanup(void *data);
static void ngx_http_llm_redis_release(ngx_http_llm_rkey_t *k);


/* keys ------------------------------------------------------------------ */


ngx_int_t
ngx_http_llm_redis_find_key(ngx_http_request_t *r, ngx_event_t *wake,
    u_char *digest, u_char *hex, ngx_http_llm_entity_t **key)
{
    uint32_t                      hash;
    ngx_str_t                     s;
    ngx_msec_t                    now;
    ngx_pool_cleanup_t           *cln;
    ngx_http_llm_rwait_t         *wt;
    ngx_http_llm_rcache_t        *ce;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    *key = NULL;

    if (w->conf == NULL || !w->conf->keys) {
        return NGX_OK;
    }

    /* resumed: the answer this request waited for */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler != ngx_http_llm_redis_wait_cleanup) {
            continue;
        }

        wt = cln->data;

        if (wt->queued) {
            /* woken by its own timer: no answer in time */
            ngx_queue_remove(&wt->queue);
            wt->queued = 0;
            wt->rc = NGX_BUSY;
        }

        if (wt->key) {
            *key = &wt->key->entity;
        }

        return (wt->rc == NGX_DECLINED) ? NGX_OK : wt->rc;
    }

    /* a digest's first bytes are as good a hash as any */

    s.data = digest;
    s.len = 32;
    ngx_memcpy(&hash, digest, sizeof(uint32_t));

    ce = (ngx_http_llm_rcache_t *) ngx_str_rbtree_lookup(&w->keys, &s, hash);
    now = ngx_current_msec;

    if (ce) {
        ngx_queue_remove(&ce->lru);
        ngx_queue_insert_head(&w->lru, &ce->lru);

        if (ce->key) {
            /* out of date: used while it is looked up again, and while
               Redis cannot be asked */

            if ((ngx_msec_int_t) (ce->expires - now) <= 0 && !ce->pending
                && ngx_http_llm_redis_lookup(w, ce) == NGX_OK)
            {
                ce->pending = 1;
            }

            if (ngx_http_llm_redis_hold(r, ce->key, NULL, &wt) != NGX_OK) {
                return NGX_ERROR;
            }

            *key = &ce->key->entity;
            return NGX_OK;
        }

        if (ce->pending) {
            goto wait;
        }

        if ((ngx_msec_int_t) (ce->expires - now) > 0) {
            /* known not to be a key */
            return NGX_OK;
        }

    } else {
        ce = ngx_http_llm_redis_cache_add(w, digest, hex);
        if (ce == NULL) {
            /* every entry awaits Redis: this key waits its turn (503) */
            return (w->nkeys >= w->conf->key_cache) ? NGX_BUSY
                                                              : NGX_ERROR;
        }
    }

    if (ngx_http_llm_redis_lookup(w, ce) != NGX_OK) {
        ngx_http_llm_redis_cache_drop(w, ce);
        return NGX_BUSY;
    }

    ce->pending = 1;

wait:

    if (ngx_http_llm_redis_hold(r, NULL, wake, &wt) != NGX_OK) {
        return NGX_ERROR;
    }

    wt->rc = NGX_AGAIN;
    wt->queued = 1;
    ngx_queue_insert_tail(&ce->waiters, &wt->queue);

    /* in case no answer ever comes: the watchdog should end it first */
    ngx_add_timer(wake, 2 * w->conf->timeout + 100);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm: redis key lookup, waiting");

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_llm_redis_hold(ngx_http_request_t *r, ngx_http_llm_rkey_t *k,
    ngx_event_t *wake, ngx_http_llm_rwait_t **out)
{
    ngx_pool_cleanup_t    *cln;
    ngx_http_llm_rwait_t  *wt;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_llm_rwait_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    wt = cln->data;
    ngx_memzero(wt, sizeof(ngx_http_llm_rwait_t));

    wt->wake = wake;
    wt->rc = NGX_OK;

    if (k) {
        wt->key = k;
        k->refs++;
    }

    cln->handler = ngx_http_llm_redis_wait_cleanup;

    *out = wt;

    return NGX_OK;
}


static void
ngx_http_llm_redis_wait_cleanup(void *data)
{
    ngx_http_llm_rwait_t  *wt = data;

    if (wt->queued) {
        ngx_queue_remove(&wt->queue);
        wt->queued = 0;
    }

    if (wt->wake) {
        if (wt->wake->timer_set) {
            ngx_del_timer(wt->wake);
        }

        if (wt->wake->posted) {
            ngx_delete_posted_event(wt->wake);
        }
    }

    if (wt->key) {
        ngx_http_llm_redis_release(wt->key);
        wt->key = NULL;
    }
}


static void
ngx_http_llm_redis_release(ngx_http_llm_rkey_t *k)
{
    if (--k->refs == 0) {
        ngx_destroy_pool(k->pool);
    }
}


static ngx_http_llm_rcache_t *
ngx_http_llm_redis_cache_add(ngx_http_llm_redis_worker_t *w, u_char *digest,
    u_char *hex)
{
    uint32_t                hash;
    ngx_uint_t              n;
    ngx_queue_t            *q, *prev;
    ngx_http_llm_rcache_t  *ce;

    /* full: the least recently used that no request waits for go */

    q = ngx_queue_last(&w->lru);

    for (n = 0;
         w->nkeys >= w->conf->key_cache && n < 64
         && q != ngx_queue_sentinel(&w->lru);
         n++)
    {
        prev = ngx_queue_prev(q);
        ce = ngx_queue_data(q, ngx_http_llm_rcache_t, lru);

        if (!ce->pending && ngx_queue_empty(&ce->waiters)) {
            ngx_http_llm_redis_cache_drop(w, ce);
        }

        q = prev;
    }

    if (w->nkeys >= w->conf->key_cache) {
        if (ngx_time() - w->warned_full >= NGX_HTTP_LLM_REDIS_WARN_EVERY) {
            w->warned_full = ngx_time();
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "llm: %ui keys being looked up in redis at once, "
                          "the most a worker does: other unknown keys get "
                          "503 (llm_redis key_cache=%ui)", w->conf->key_cache,
                          w->conf->key_cache);
        }

        return NULL;
    }

    ce = ngx_calloc(sizeof(ngx_http_llm_rcache_t), w->log);
    if (ce == NULL) {
        return NULL;
    }

    ngx_memcpy(ce->digest, digest, 32);
    ngx_memcpy(ce->hex, hex, 64);

    ce->sn.str.data = ce->digest;
    ce->sn.str.len = 32;
    ngx_memcpy(&hash, digest, sizeof(uint32_t));
    ce->sn.node.key = hash;

    ngx_queue_init(&ce->waiters);
    ngx_rbtree_insert(&w->keys, &ce->sn.node);
    ngx_queue_insert_head(&w->lru, &ce->lru);

    w->nkeys++;

    return ce;
}


static void
ngx_http_llm_redis_cache_drop(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce)
{
    ngx_rbtree_delete(&w->keys, &ce->sn.node);
    ngx_queue_remove(&ce->lru);

    w->nkeys--;

    if (ce->key) {
        /* requests that hold it keep it until they end */
        ngx_http_llm_redis_release(ce->key);
    }

    ngx_free(ce);
}


static ngx_int_t
ngx_http_llm_redis_lookup(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce)
{
    u_char      *p;
    const char  *argv[2];
    size_t       argvlen[2];
    u_char       key[NGX_HTTP_LLM_REDIS_MAX_PREFIX + sizeof("apikey:") + 64];

    if (w->state == NGX_HTTP_LLM_REDIS_DOWN || w->exiting) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key, w->conf->prefix.data, w->conf->prefix.len);
    p = ngx_cpymem(p, "apikey:", sizeof("apikey:") - 1);
    p = ngx_cpymem(p, ce->hex, 64);

    argv[0] = "HGETALL";
    argvlen[0] = 7;
    argv[1] = (const char *) key;
    argvlen[1] = p - key;

    return ngx_http_llm_redis_command(w, ngx_http_llm_redis_key_cb, ce, 2,
                                      argv, argvlen);
}


static void
ngx_http_llm_redis_key_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_rcache_t  *ce = data;

    ngx_int_t                     rc;
    ngx_queue_t                  *q;
    redisReply                   *reply;
    ngx_http_llm_rkey_t          *k;
    ngx_http_llm_rwait_t         *wt;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;
    reply = rp;
    k = NULL;

    ce->pending = 0;

    if (!ngx_http_llm_redis_replied(w, reply, REDIS_REPLY_ARRAY)) {
        rc = NGX_BUSY;

    } else if (reply->elements == 0) {
        rc = NGX_DECLINED;

    } else {
        rc = ngx_http_llm_redis_key_parse(w, ce, reply, &k);

        if (rc == NGX_ERROR) {
            rc = NGX_BUSY;
        }
    }

    if (rc != NGX_BUSY) {
        if (ce->key) {
            ngx_http_llm_redis_release(ce->key);
        }

        ce->key = k;
        ce->expires = ngx_current_msec
                      + (k ? NGX_HTTP_LLM_REDIS_KEY_TTL
                           : NGX_HTTP_LLM_REDIS_NOKEY_TTL);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "llm: redis key lookup: %s, %s",
                   rc == NGX_OK ? "found" : rc == NGX_DECLINED ? "no such key"
                                                               : "failed",
                   ngx_queue_empty(&ce->waiters) ? "no waiters" : "waking");

    while (!ngx_queue_empty(&ce->waiters)) {
        q = ngx_queue_head(&ce->waiters);
        ngx_queue_remove(q);

        wt = ngx_queue_data(q, ngx_http_llm_rwait_t, queue);
        wt->queued = 0;
        wt->rc = rc;

        if (rc == NGX_OK) {
            wt->key = k;
            k->refs++;
        }

        if (wt->wake->timer_set) {
            ngx_del_timer(wt->wake);
        }

        ngx_post_event(wt->wake, &ngx_posted_events);
    }

    if (ce->key == NULL && rc == NGX_BUSY) {
        /* nothing known: asked again next time */
        ngx_http_llm_redis_cache_drop(w, ce);
    }
}


/*
 * HGETALL <prefix>apikey:<hex sha256>: name, team, models (comma-separated
 * globs), rpm, tpm, parallel, and budgets in fields whose names start with
 * "budget" (budget, budget2, ...), each one budget or a comma-separated
 * list. NGX_DECLINED: not a valid key (logged).
 */

static ngx_int_t
ngx_http_llm_redis_key_parse(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_rcache_t *ce, redisReply *reply, ngx_http_llm_rkey_t **out)
{
    u_char                  *p;
    ngx_str_t                name, val;
    ngx_uint_t               i;
    ngx_pool_t              *pool;
    redisReply              *f, *v;
    ngx_http_llm_rkey_t     *k;
    ngx_http_llm_entity_t   *e, **team;
    u_char                   why[256];
    u_char                   safe[NGX_HTTP_LLM_LOG_SAFE_SIZE(256)];

    pool = ngx_create_pool(1024, w->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    k = ngx_pcalloc(pool, sizeof(ngx_http_llm_rkey_t));
    if (k == NULL) {
        goto nomem;
    }

    k->pool = pool;
    k->refs = 1;

    e = &k->entity;
    e->kind = NGX_HTTP_LLM_KEY;
    ngx_memcpy(e->digest, ce->digest, 32);
    e->has_digest = 1;
    e->file_name = (u_char *) "redis";

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        name.data = (u_char *) f->str;
        name.len = f->len;

        val.len = v->len;
        val.data = ngx_pnalloc(pool, val.len + 1);
        if (val.data == NULL) {
            goto nomem;
        }

        ngx_memcpy(val.data, v->str, val.len);
        val.data[val.len] = '\0';

        if (name.len == 4 && ngx_strncmp(name.data, "name", 4) == 0) {

            for (p = val.data; p < val.data + val.len; p++) {
                if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
                    break;
                }
            }

            if (val.len == 0 || val.len > 128 || p < val.data + val.len) {
                ngx_sprintf(why, "its name must be 1 to 128 printable "
                            "characters without spaces or quotes%Z");
                goto invalid;
            }

            e->name = val;
            continue;
        }

        if (ngx_http_llm_entity_attr_parse(pool, e, &name, &val, 1,
                                           NGX_HTTP_LLM_ATTR_LISTS
                                           |NGX_HTTP_LLM_ATTR_LENIENT,
                                           why, sizeof(why))
            == NGX_ERROR)
        {
            goto invalid;
        }
    }

    if (e->name.len == 0) {
        ngx_sprintf(why, "it has no name%Z");
        goto invalid;
    }

    if (e->parent_name.len) {
        team = w->lmcf->teams.elts;

        for (i = 0; i < w->lmcf->teams.nelts; i++) {
            if (team[i]->name.len == e->parent_name.len
                && ngx_strncmp(team[i]->name.data, e->parent_name.data,
                               e->parent_name.len) == 0)
            {
                e->parent = team[i];
                break;
            }
        }

        if (e->parent == NULL) {
            ngx_snprintf(why, sizeof(why) - 1,
                         "its team \"%V\" is not a configured llm_team%Z",
                         &e->parent_name);
            why[sizeof(why) - 1] = '\0';
            goto invalid;
        }
    }

    /* metered by name, as a configured key of that name would be */

    e->node_name.len = sizeof("key:") - 1 + e->name.len;
    e->node_name.data = ngx_pnalloc(pool, e->node_name.len);
    if (e->node_name.data == NULL) {
        goto nomem;
    }

    p = ngx_cpymem(e->node_name.data, "key:", sizeof("key:") - 1);
    ngx_memcpy(p, e->name.data, e->name.len);

    e->node_hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_COUNTER,
                                          &e->node_name);
    e->spend_hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_SPEND,
                                           &e->node_name);

    *out = k;

    return NGX_OK;

invalid:

    /* why quotes what Redis holds: made safe for the log */
    p = ngx_http_llm_log_safe(safe, sizeof(safe), why, ngx_strlen(why));

    ngx_log_error(NGX_LOG_ERR, w->log, 0,
                  "llm: redis key \"%Vapikey:%*s\" is refused: %*s",
                  &w->conf->prefix, (size_t) 64, ce->hex,
                  (size_t) (p - safe), safe);

    ngx_destroy_pool(pool);

    return NGX_DECLINED;

nomem:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/* the process ends: every cached key, also those requests still hold */

void
ngx_http_llm_redis_keys_free(ngx_http_llm_redis_worker_t *w)
{
    ngx_queue_t            *q;
    ngx_http_llm_rcache_t  *ce;

    while (!ngx_queue_empty(&w->lru)) {
        q = ngx_queue_head(&w->lru);
        ce = ngx_queue_data(q, ngx_http_llm_rcache_t, lru);

        if (ce->key) {
            ngx_destroy_pool(ce->key->pool);
            ce->key = NULL;
        }

        ngx_http_llm_redis_cache_drop(w, ce);
    }
}
