
/*
 * llm_redis sync: one worker per interval writes this instance's counters
 * behind and reads the fleet's back (docs/architecture.md, docs/redis.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redis_worker.h"
#include "ngx_http_llm_limits.h"


/* one sync: the nodes it holds, and the replies it awaits */
typedef struct {
    ngx_pool_t                    *pool;
    ngx_array_t                    nodes;          /* ngx_http_llm_node_t * */
    ngx_uint_t                     pending;
    unsigned                       claimed:1;
    unsigned                       failed:1;
} ngx_http_llm_redis_batch_t;


/* one meter of one entity, as it was when the sync started */
typedef struct {
    ngx_http_llm_redis_batch_t    *batch;
    ngx_http_llm_node_t           *node;
    ngx_str_t                      key;
    int64_t                        window;
    int64_t                        used;
    uint8_t                        meter;          /* 0 rpm, 1 tpm, 2 + k */
    uint8_t                        unit;
    uint8_t                        period;
    unsigned                       write:1;
    unsigned                       read:1;
} ngx_http_llm_redis_item_t;


static ngx_int_t ngx_http_llm_redis_snapshot(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch, ngx_array_t *items, ngx_uint_t how);
static ngx_uint_t ngx_http_llm_redis_meters(ngx_http_llm_node_t *ln,
    ngx_uint_t how, ngx_msec_t msec, ngx_http_llm_meter_t **meters,
    ngx_uint_t *read);
static void ngx_http_llm_redis_item(ngx_http_llm_redis_batch_t *batch,
    ngx_array_t *items, ngx_http_llm_node_t *ln, ngx_uint_t i, int64_t window,
    int64_t used, ngx_uint_t write, ngx_uint_t read);
static ngx_int_t ngx_http_llm_redis_item_key(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_item_t *it, ngx_pool_t *pool);
static ngx_http_llm_meter_t *ngx_http_llm_redis_meter(
    ngx_http_llm_redis_item_t *it);
static void ngx_http_llm_redis_hset_cb(redisAsyncContext *ac, void *rp,
    void *data);
static void ngx_http_llm_redis_hgetall_cb(redisAsyncContext *ac, void *rp,
    void *data);
static void ngx_http_llm_redis_batch_cb(redisAsyncContext *ac, void *rp,
    void *data);
static void ngx_http_llm_redis_batch_done(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch);


static const char  *ngx_http_llm_redis_units[] = { "usd", "tokens" };
static const char  *ngx_http_llm_redis_periods[] = {
    "minute", "hour", "day", "month"
};

/* a meter's keys live two of its periods */
static const ngx_uint_t  ngx_http_llm_redis_ttl[] = {
    2 * 60, 2 * 3600, 2 * 86400, 62 * 86400
};


void
ngx_http_llm_redis_settled(void)
{
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    /* a worker that shuts down writes what its last requests spent */

    if (w->conf == NULL || !w->exiting || w->zone == NULL
        || w->state != NGX_HTTP_LLM_REDIS_READY || w->flush.timer_set)
    {
        return;
    }

    ngx_add_timer(&w->flush, 10);
}


/* sync ------------------------------------------------------------------ */


/*
 * Every worker's timer: the first to find the interval over takes this
 * sync; the others come back when the next is due.
 */

void
ngx_http_llm_redis_tick_handler(ngx_event_t *ev)
{
    ngx_msec_t                    now;
    ngx_uint_t                    claimed;
    ngx_msec_int_t                delay;
    ngx_http_llm_redis_shm_t     *shm;
    ngx_http_llm_redis_worker_t  *w;

    w = ev->data;

    if (w->exiting || ngx_exiting) {
        return;
    }

    delay = w->conf->sync;
    claimed = 0;

    if (w->shm == NULL) {
        ngx_http_llm_redis_record(w);
    }

    if (w->shm && w->state == NGX_HTTP_LLM_REDIS_READY && !w->syncing) {
        shm = w->shm;
        now = ngx_current_msec;

        ngx_http_llm_zone_lock(w->zone);

        if ((ngx_msec_int_t) (now - shm->next_sync) >= 0
            && (shm->busy_until == 0
                || (ngx_msec_int_t) (now - shm->busy_until) >= 0))
        {
            shm->next_sync = now + w->conf->sync;
            shm->busy_until = now + 2 * w->conf->timeout;
            shm->busy_pid = ngx_pid;
            claimed = 1;
        }

        delay = (ngx_msec_int_t) (shm->next_sync - now);

        ngx_http_llm_zone_unlock(w->zone);

        if (claimed) {
            ngx_http_llm_redis_sync(w, NGX_HTTP_LLM_REDIS_SYNC);
        }
    }

    if (delay < 1) {
        delay = 1;
    }

    ngx_add_timer(ev, delay + ngx_random() % (w->conf->sync / 8 + 1));
}


void
ngx_http_llm_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_llm_redis_worker_t  *w = ev->data;

    if (w->state == NGX_HTTP_LLM_REDIS_READY) {
        ngx_http_llm_redis_sync(w, NGX_HTTP_LLM_REDIS_FLUSH);
    }
}


void
ngx_http_llm_redis_sync(ngx_http_llm_redis_worker_t *w, ngx_uint_t how)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i, ttl;
    ngx_pool_t                  *pool;
    ngx_array_t                  items;
    const char                  *argv[4];
    size_t                       argvlen[4];
    ngx_http_llm_redis_item_t   *it;
    ngx_http_llm_redis_batch_t  *batch;
    u_char                       value[NGX_INT64_LEN];
    u_char                       seconds[NGX_INT_T_LEN];

    pool = ngx_create_pool(16384, w->log);
    if (pool == NULL) {
        goto nothing;
    }

    batch = ngx_pcalloc(pool, sizeof(ngx_http_llm_redis_batch_t));
    if (batch == NULL
        || ngx_array_init(&batch->nodes, pool, 64,
                          sizeof(ngx_http_llm_node_t *))
           != NGX_OK
        || ngx_array_init(&items, pool, 64,
                          sizeof(ngx_http_llm_redis_item_t))
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        goto nothing;
    }

    batch->pool = pool;
    batch->claimed = (how == NGX_HTTP_LLM_REDIS_SYNC);

    /* a batch holds a reference while it lives: the done callback drops
       it, so that no reply can free the batch while we are sending */
    batch->pending = 1;

    if (batch->claimed) {
        w->syncing = 1;
    }

    rc = ngx_http_llm_redis_snapshot(w, batch, &items, how);

    if (rc != NGX_OK) {
        batch->failed = 1;
        ngx_http_llm_redis_batch_done(w, batch);
        return;
    }

    it = items.elts;

    for (i = 0; i < items.nelts; i++) {

        if (it[i].write) {
            argv[0] = "HSET";
            argvlen[0] = 4;
            argv[1] = (const char *) it[i].key.data;
            argvlen[1] = it[i].key.len;
            argv[2] = (const char *) w->field.data;
            argvlen[2] = w->field.len;
            argv[3] = (const char *) value;
            argvlen[3] = ngx_sprintf(value, "%L", it[i].used) - value;

            if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_hset_cb,
                                           &it[i], 4, argv, argvlen)
                != NGX_OK)
            {
                goto failed;
            }

            batch->pending++;

            ttl = ngx_http_llm_redis_ttl[it[i].period];

            argv[0] = "EXPIRE";
            argvlen[0] = 6;
            argv[2] = (const char *) seconds;
            argvlen[2] = ngx_sprintf(seconds, "%ui", ttl) - seconds;

            if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_batch_cb,
                                           batch, 3, argv, argvlen)
                != NGX_OK)
            {
                goto failed;
            }

            batch->pending++;
        }

        if (it[i].read) {
            argv[0] = "HGETALL";
            argvlen[0] = 7;
            argv[1] = (const char *) it[i].key.data;
            argvlen[1] = it[i].key.len;

            if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_hgetall_cb,
                                           &it[i], 2, argv, argvlen)
                != NGX_OK)
            {
                goto failed;
            }

            batch->pending++;
        }
    }

    if (items.nelts == 0 && batch->claimed) {
        /* nothing to write or read: a PING tells Redis is there */

        argv[0] = "PING";
        argvlen[0] = 4;

        if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_batch_cb,
                                       batch, 1, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }

        batch->pending++;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "llm: redis %s of %ui meters, %ui replies awaited",
                   how == NGX_HTTP_LLM_REDIS_SYNC ? "sync" : "flush",
                   items.nelts, batch->pending - 1);

    ngx_http_llm_redis_batch_done(w, batch);

    return;

failed:

    /* the connection is going away: the replies still awaited fail */

    batch->failed = 1;
    ngx_http_llm_redis_batch_done(w, batch);

    return;

nothing:

    if (how == NGX_HTTP_LLM_REDIS_SYNC && w->shm) {
        ngx_http_llm_zone_lock(w->zone);
        w->shm->busy_until = 0;
        ngx_http_llm_zone_unlock(w->zone);
    }
}


/*
 * Under the lock: the meters to write (changed since Redis last had them)
 * and to read (of entities in use), most recently used entities first.
 * Meters move to the current window here, so that a new day is read as
 * soon as it begins; a window's last values are written first. Nothing is
 * allocated under the lock: a first pass sizes the arrays by the entities
 * that have meters to write or read, with room for some that come in
 * between, and the keys are written once it is released (the nodes are
 * held).
 */

static ngx_int_t
ngx_http_llm_redis_snapshot(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch, ngx_array_t *items, ngx_uint_t how)
{
    time_t                      now;
    int64_t                     window;
    ngx_uint_t                  i, n, read, period, nmeters, nodes, room;
    ngx_msec_t                  msec;
    ngx_queue_t                *q;
    ngx_http_llm_node_t        *ln, **pn;
    ngx_http_llm_meter_t       *m;
    ngx_http_llm_account_t     *a;
    ngx_http_llm_redis_item_t  *it;
    ngx_http_llm_meter_t       *meters[NGX_HTTP_LLM_REDIS_METERS];

    now = ngx_time();
    msec = ngx_current_msec;

    nodes = 0;
    room = 0;

    ngx_http_llm_zone_lock(w->zone);

    for (q = ngx_queue_head(&w->zone->sh->queue);
         q != ngx_queue_sentinel(&w->zone->sh->queue)
         && nodes < NGX_HTTP_LLM_REDIS_MAX_NODES;
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_llm_node_t, queue);

        nmeters = ngx_http_llm_redis_meters(ln, how, msec, meters, &read);

        if (nmeters) {
            nodes++;
            /* a meter may give two items: its last window and the new */
            room += 2 * nmeters;
        }
    }

    ngx_http_llm_zone_unlock(w->zone);

    if (nodes == 0) {
        return NGX_OK;
    }

    /* entities that have something to sync by the second pass, too */

    room += room / 8 + 2 * NGX_HTTP_LLM_REDIS_METERS * 8;
    nodes += nodes / 8 + 8;

    if (ngx_array_init(&batch->nodes, batch->pool, nodes,
                       sizeof(ngx_http_llm_node_t *)) != NGX_OK
        || ngx_array_init(items, batch->pool, room,
                          sizeof(ngx_http_llm_redis_item_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_llm_zone_lock(w->zone);

    for (q = ngx_queue_head(&w->zone->sh->queue);
         q != ngx_queue_sentinel(&w->zone->sh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_llm_node_t, queue);

        nmeters = ngx_http_llm_redis_meters(ln, how, msec, meters, &read);

        if (nmeters == 0) {
            continue;
        }

        /* more than the room made for them: the rest wait for the next */

        if (batch->nodes.nelts == batch->nodes.nalloc
            || items->nalloc - items->nelts < 2 * nmeters)
        {
            break;
        }

        a = ln->data;
        n = items->nelts;

        for (i = 0; i < nmeters; i++) {
            m = meters[i];
            period = (i < 2) ? NGX_HTTP_LLM_MINUTE : a->period[i - 2];

            if (i >= 2 && (period > NGX_HTTP_LLM_MONTH
                           || a->unit[i - 2] > NGX_HTTP_LLM_TOKENS))
            {
                continue;
            }

            window = ngx_http_llm_window(period, now);

            if (m->window != window || how == NGX_HTTP_LLM_REDIS_FLUSH) {

                /* the last values of a window, or a last write */

                if (m->used != m->synced && m->window) {
                    ngx_http_llm_redis_item(batch, items, ln, i, m->window,
                                            m->used, 1, 0);
                }

                if (how == NGX_HTTP_LLM_REDIS_FLUSH) {
                    continue;
                }

                ngx_http_llm_meter_advance(m, window);
            }

            if (m->used != m->synced || read) {
                ngx_http_llm_redis_item(batch, items, ln, i, window, m->used,
                                        m->used != m->synced, read);
            }
        }

        if (items->nelts == n) {
            continue;
        }

        pn = ngx_array_push(&batch->nodes);      /* no allocation: room */

        /* held, so that the node is not expired while replies come */
        ln->refs++;
        *pn = ln;
    }

    ngx_http_llm_zone_unlock(w->zone);

    it = items->elts;

    for (i = 0; i < items->nelts; i++) {
        if (ngx_http_llm_redis_item_key(w, &it[i], batch->pool) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * With the lock held: a counter node's meters (its rpm and tpm, then its
 * budgets) and their number, or 0 if none has anything to write and the
 * entity's are not to be read (read: in use, and not a last flush).
 */

static ngx_uint_t
ngx_http_llm_redis_meters(ngx_http_llm_node_t *ln, ngx_uint_t how,
    ngx_msec_t msec, ngx_http_llm_meter_t **meters, ngx_uint_t *read)
{
    ngx_uint_t               i, n, dirty;
    ngx_http_llm_account_t  *a;

    if (ln->kind != NGX_HTTP_LLM_NODE_COUNTER) {
        return 0;
    }

    a = ln->data;
    n = 2 + ngx_min(a->nbudgets, NGX_HTTP_LLM_MAX_BUDGETS);

    meters[0] = &a->requests;
    meters[1] = &a->tokens;

    dirty = 0;

    for (i = 0; i < n; i++) {
        if (i >= 2) {
            meters[i] = &a->budgets[i - 2];
        }

        if (meters[i]->used != meters[i]->synced) {
            dirty = 1;
        }
    }

    *read = (how == NGX_HTTP_LLM_REDIS_SYNC)
            && (a->parallel
                || (ngx_msec_int_t) (msec - ln->used)
                   < NGX_HTTP_LLM_REDIS_ACTIVE);

    return (dirty || *read) ? n : 0;
}


/* with the lock held, in an array with room: one meter to write or read */

static void
ngx_http_llm_redis_item(ngx_http_llm_redis_batch_t *batch,
    ngx_array_t *items, ngx_http_llm_node_t *ln, ngx_uint_t i, int64_t window,
    int64_t used, ngx_uint_t write, ngx_uint_t read)
{
    ngx_http_llm_account_t     *a;
    ngx_http_llm_redis_item_t  *it;

    /* replies find items by address: the array is complete before any
       command is sent */

    it = ngx_array_push(items);

    ngx_memzero(it, sizeof(ngx_http_llm_redis_item_t));

    a = ln->data;

    it->batch = batch;
    it->node = ln;
    it->window = window;
    it->used = used;
    it->meter = (uint8_t) i;
    it->write = write;
    it->read = read;

    if (i >= 2) {
        it->unit = a->unit[i - 2];
        it->period = a->period[i - 2];

    } else {
        it->unit = NGX_HTTP_LLM_TOKENS;
        it->period = NGX_HTTP_LLM_MINUTE;
    }
}


/* without the lock (the node is held, its name never changes) */

static ngx_int_t
ngx_http_llm_redis_item_key(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_item_t *it, ngx_pool_t *pool)
{
    u_char               *p;
    size_t                len;
    ngx_http_llm_node_t  *ln;

    ln = it->node;

    /* <prefix><node name>:<meter>:<window>, e.g. llm:key:alice:tpm:2944... */

    len = w->conf->prefix.len + ln->len + sizeof(":tokens:minute:") - 1
          + NGX_INT64_LEN;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    it->key.data = p;

    p = ngx_cpymem(p, w->conf->prefix.data, w->conf->prefix.len);
    p = ngx_cpymem(p, ln->name, ln->len);

    if (it->meter == 0) {
        p = ngx_cpymem(p, ":rpm", 4);

    } else if (it->meter == 1) {
        p = ngx_cpymem(p, ":tpm", 4);

    } else {
        p = ngx_sprintf(p, ":%s:%s", ngx_http_llm_redis_units[it->unit],
                        ngx_http_llm_redis_periods[it->period]);
    }

    p = ngx_sprintf(p, ":%L", it->window);

    it->key.len = p - it->key.data;

    return NGX_OK;
}


/* with the lock held: the item's meter, if it still measures the same */

static ngx_http_llm_meter_t *
ngx_http_llm_redis_meter(ngx_http_llm_redis_item_t *it)
{
    ngx_uint_t               k;
    ngx_http_llm_meter_t    *m;
    ngx_http_llm_account_t  *a;

    a = it->node->data;

    if (it->meter == 0) {
        m = &a->requests;

    } else if (it->meter == 1) {
        m = &a->tokens;

    } else {
        k = it->meter - 2;

        /* a reload may have changed the budgets */

        if (k >= a->nbudgets || a->unit[k] != it->unit
            || a->period[k] != it->period)
        {
            return NULL;
        }

        m = &a->budgets[k];
    }

    return (m->window == it->window) ? m : NULL;
}


static void
ngx_http_llm_redis_hset_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_redis_item_t  *it = data;

    ngx_http_llm_meter_t         *m;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    if (ngx_http_llm_redis_replied(w, rp, REDIS_REPLY_INTEGER)) {
        ngx_http_llm_zone_lock(w->zone);

        m = ngx_http_llm_redis_meter(it);
        if (m) {
            m->synced = it->used;
        }

        ngx_http_llm_zone_unlock(w->zone);

    } else {
        it->batch->failed = 1;
    }

    ngx_http_llm_redis_batch_done(w, it->batch);
}


static void
ngx_http_llm_redis_hgetall_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_redis_item_t  *it = data;

    off_t                         n;
    int64_t                       others, own;
    redisReply                   *reply, *f, *v;
    ngx_uint_t                    i;
    ngx_http_llm_meter_t         *m;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;
    reply = rp;

    if (!ngx_http_llm_redis_replied(w, reply, REDIS_REPLY_ARRAY)) {
        it->batch->failed = 1;
        ngx_http_llm_redis_batch_done(w, it->batch);
        return;
    }

    others = 0;
    own = 0;

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        n = ngx_atoof((u_char *) v->str, v->len);
        if (n == NGX_ERROR) {
            continue;
        }

        if (f->len == w->field.len
            && ngx_memcmp(f->str, w->field.data, f->len) == 0)
        {
            own = n;

        } else {
            others += n;
        }
    }

    ngx_http_llm_zone_lock(w->zone);

    m = ngx_http_llm_redis_meter(it);

    if (m) {
        if (m->fleet != others) {
            ngx_log_debug4(NGX_LOG_DEBUG_HTTP, w->log, 0,
                           "llm: redis fleet %V: %L, own %L of %L",
                           &it->key, others, own, m->used);
        }

        m->fleet = others;

        /* Redis lost or has another value of ours: written again next */

        if (own != it->used && m->synced == it->used) {
            m->synced = -1;
        }
    }

    ngx_http_llm_zone_unlock(w->zone);

    ngx_http_llm_redis_batch_done(w, it->batch);
}


static void
ngx_http_llm_redis_batch_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_redis_batch_t  *batch = data;

    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    /* EXPIRE or PING */

    if (!ngx_http_llm_redis_replied(w, rp, 0)) {
        batch->failed = 1;
    }

    ngx_http_llm_redis_batch_done(w, batch);
}


static void
ngx_http_llm_redis_batch_done(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch)
{
    ngx_uint_t             i;
    ngx_http_llm_node_t  **pn;

    if (--batch->pending) {
        return;
    }

    ngx_http_llm_zone_lock(w->zone);

    pn = batch->nodes.elts;

    for (i = 0; i < batch->nodes.nelts; i++) {
        pn[i]->refs--;
    }

    if (batch->claimed && w->shm) {
        if (w->shm->busy_pid == ngx_pid) {
            w->shm->busy_until = 0;
        }

        if (!batch->failed) {
            w->shm->last_ok = ngx_current_msec;
        }
    }

    ngx_http_llm_zone_unlock(w->zone);

    if (batch->claimed) {
        w->syncing = 0;
    }

    ngx_destroy_pool(batch->pool);
}
