
/*
 * The shared memory zone, modelled on limit_req's: new, existing and
 * reloaded zones, an rbtree of named nodes, expiry of idle nodes.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_limits.h"


/* nodes unused this long are expired as new ones are created */
#define NGX_HTTP_LLM_NODE_IDLE  (3600 * 1000)

/*
 * A node used again is moved to the head of the LRU queue at most once
 * in this many milliseconds: a move reads and writes its two neighbours
 * and the old head, which among thousands of nodes are three cache
 * misses each way. "used" and the order are then true to the minute,
 * which neither expiry (an hour idle) nor the Redis sync (ten minutes
 * active) notices.
 */
#define NGX_HTTP_LLM_NODE_TOUCH  (60 * 1000)


static ngx_int_t ngx_http_llm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_llm_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_uint_t ngx_http_llm_expire(ngx_http_llm_zone_t *zone,
    ngx_uint_t force);
static void ngx_http_llm_node_touch(ngx_http_llm_zone_t *zone,
    ngx_http_llm_node_t *ln);


char *
ngx_http_llm_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    u_char               *p;
    ssize_t               size;
    ngx_str_t            *value, name, s;
    ngx_http_llm_zone_t  *zone;

    if (lmcf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": it must be name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_llm_module);
    if (zone->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone->init = ngx_http_llm_init_zone;
    zone->shm_zone->data = zone;

    lmcf->zone = zone;

    return NGX_CONF_OK;
}


/* without llm_zone: a small zone of its own, so workers still share */

ngx_int_t
ngx_http_llm_zone_default(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_str_t             name = ngx_string("llm_default");
    ngx_http_llm_zone_t  *zone;

    if (lmcf->zone) {
        return NGX_OK;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_zone_t));
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->shm_zone = ngx_shared_memory_add(cf, &name, 4 * 1024 * 1024,
                                           &ngx_http_llm_module);
    if (zone->shm_zone == NULL) {
        return NGX_ERROR;
    }

    zone->shm_zone->init = ngx_http_llm_init_zone;
    zone->shm_zone->data = zone;

    lmcf->zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_llm_zone_t  *ozone = data;

    size_t                len;
    ngx_http_llm_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the state lives on */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_llm_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;
    zone->sh->generation = 0;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_llm_rbtree_insert_value);

    ngx_queue_init(&zone->sh->queue);

    len = sizeof(" in llm_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in llm_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* running out is expected: idle nodes are expired then */
    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


uint32_t
ngx_http_llm_node_hash(ngx_uint_t kind, ngx_str_t *name)
{
    u_char    k;
    uint32_t  hash;

    k = (u_char) kind;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, &k, 1);
    ngx_crc32_update(&hash, name->data, name->len);
    ngx_crc32_final(hash);

    return hash;
}


/* a lookup that leaves the node's place in the queue and its use time */

ngx_http_llm_node_t *
ngx_http_llm_node_find(ngx_http_llm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *name, uint32_t hash)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_llm_node_t       *ln;
    ngx_http_llm_node_memo_t  *memo;

    /*
     * With thousands of keys and routes, the tree's levels are cache
     * misses, a dozen a lookup; the memo is one, and the node itself,
     * which the caller reads anyway. A node it names is alive as long as
     * no node has been freed (the zone's generation), which the mutex
     * held here makes certain.
     */

    memo = zone->memo ? &zone->memo[hash & zone->memo_mask & ~(ngx_uint_t) 1]
                      : NULL;

    for (i = 0; memo && i < 2; i++) {
        ln = memo[i].node;

        if (ln && memo[i].hash == hash
            && memo[i].generation == zone->sh->generation
            && ln->kind == kind
            && ngx_memn2cmp(name->data, ln->name, name->len, ln->len) == 0)
        {
            return ln;
        }
    }

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_llm_node_t *) node;

        rc = (ngx_int_t) kind - ln->kind;

        if (rc == 0) {
            rc = ngx_memn2cmp(name->data, ln->name, name->len, ln->len);
        }

        if (rc == 0) {
            if (memo) {
                /* the newest first, the one it displaces second */
                memo[1] = memo[0];
                memo[0].node = ln;
                memo[0].generation = zone->sh->generation;
                memo[0].hash = hash;
            }

            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * A worker's memo of nodes, from its cycle's pool (the master has none:
 * its memo would outlive a reload's cycle). A slot for every 512 bytes
 * of the zone (nodes take 300 bytes to 1 KB), from 256 to 131,072
 * slots: at most 3 MiB a worker, 768 KiB for a zone of 16m.
 */

ngx_int_t
ngx_http_llm_zone_init_process(ngx_cycle_t *cycle, ngx_http_llm_zone_t *zone)
{
    size_t      size;
    ngx_uint_t  n;

    size = zone->shm_zone->shm.size / 512;

    for (n = 256; n < size && n < 131072; n *= 2) { /* void */ }

    zone->memo = ngx_pcalloc(cycle->pool,
                             n * sizeof(ngx_http_llm_node_memo_t));
    if (zone->memo == NULL) {
        return NGX_ERROR;
    }

    zone->memo_mask = n - 1;

    return NGX_OK;
}


ngx_http_llm_node_t *
ngx_http_llm_node(ngx_http_llm_zone_t *zone, ngx_uint_t kind, ngx_str_t *name,
    uint32_t hash, size_t size, ngx_uint_t create)
{
    u_char               *p;
    size_t                n;
    ngx_http_llm_node_t  *ln;

    ln = ngx_http_llm_node_find(zone, kind, name, hash);

    if (ln) {
        ngx_http_llm_node_touch(zone, ln);
        return ln;
    }

    if (!create || name->len > 0xffff) {
        return NULL;
    }

    (void) ngx_http_llm_expire(zone, 0);

    /*
     * The payload first, the node after it (ngx_http_llm_node_payload()):
     * the payload begins a cache line (the slab aligns a chunk to its
     * size), what a request writes of it laid out to fill few lines, and
     * a request that finds a node by its ref reads no line of the node
     */
    n = ngx_align(size, NGX_ALIGNMENT)
        + offsetof(ngx_http_llm_node_t, name) + name->len;

    p = ngx_slab_alloc_locked(zone->shpool, n);

    if (p == NULL) {
        if (ngx_http_llm_expire(zone, 1) == 0) {
            return NULL;
        }

        p = ngx_slab_alloc_locked(zone->shpool, n);
        if (p == NULL) {
            return NULL;
        }
    }

    ngx_memzero(p, n);

    ln = (ngx_http_llm_node_t *) (p + ngx_align(size, NGX_ALIGNMENT));

    ln->node.key = hash;
    ln->kind = (uint8_t) kind;
    ln->len = (uint16_t) name->len;
    ln->used = ngx_current_msec;
    ngx_memcpy(ln->name, name->data, name->len);

    ln->data = p;

    ngx_rbtree_insert(&zone->sh->rbtree, &ln->node);
    ngx_queue_insert_head(&zone->sh->queue, &ln->queue);

    return ln;
}


/*
 * Removes nodes no request holds, oldest first: one or two idle ones on
 * every creation, and when memory ran out (force) up to ten of any age.
 */

/*
 * Without a hash, a memo or a name to compare, which with thousands of
 * keys are cache misses: the node found last time, if no node has been
 * freed since (the name of an entity's meter never changes). Without a
 * ref, as ngx_http_llm_node().
 */

ngx_http_llm_node_t *
ngx_http_llm_node_by_ref(ngx_http_llm_zone_t *zone,
    ngx_http_llm_node_ref_t *ref, ngx_uint_t kind, ngx_str_t *name,
    uint32_t hash, size_t size, ngx_uint_t create)
{
    ngx_http_llm_node_t  *ln;

    if (ref == NULL) {
        return ngx_http_llm_node(zone, kind, name, hash, size, create);
    }

    if (ref->node && ref->generation == zone->sh->generation) {

        /* the node's own lines are left unread until the time comes */

        if (ngx_current_msec - ref->touched >= NGX_HTTP_LLM_NODE_TOUCH) {
            ngx_http_llm_node_touch(zone, ref->node);
            ref->touched = ngx_current_msec;
        }

        return ref->node;
    }

    ln = ngx_http_llm_node(zone, kind, name, hash, size, create);

    ref->node = ln;
    ref->generation = zone->sh->generation;
    ref->touched = ngx_current_msec;

    return ln;
}


static void
ngx_http_llm_node_touch(ngx_http_llm_zone_t *zone, ngx_http_llm_node_t *ln)
{
    if (ngx_current_msec - ln->used < NGX_HTTP_LLM_NODE_TOUCH) {
        return;
    }

    ngx_queue_remove(&ln->queue);
    ngx_queue_insert_head(&zone->sh->queue, &ln->queue);
    ln->used = ngx_current_msec;
}


static ngx_uint_t
ngx_http_llm_expire(ngx_http_llm_zone_t *zone, ngx_uint_t force)
{
    ngx_uint_t            n, freed;
    ngx_queue_t          *q, *prev;
    ngx_http_llm_node_t  *ln;

    freed = 0;
    q = ngx_queue_last(&zone->sh->queue);

    for (n = 0; n < (force ? 64 : 3); n++) {

        if (q == ngx_queue_sentinel(&zone->sh->queue)) {
            break;
        }

        prev = ngx_queue_prev(q);
        ln = ngx_queue_data(q, ngx_http_llm_node_t, queue);

        if (!force && ngx_current_msec - ln->used < NGX_HTTP_LLM_NODE_IDLE) {
            break;
        }

        if (ln->refs == 0 && ln->owned == 0
            && !(ln->kind == NGX_HTTP_LLM_NODE_COUNTER
                 && ngx_http_llm_account_live(ln->data, ngx_time())))
        {
            if (ln->owner) {
                ln->owner->owned--;
            }

            ngx_queue_remove(q);
            ngx_rbtree_delete(&zone->sh->rbtree, &ln->node);
            ngx_slab_free_locked(zone->shpool, ln->data);

            /* every worker's memo of nodes is void from now */
            zone->sh->generation++;

            if (++freed == (force ? 10 : 2)) {
                break;
            }
        }

        q = prev;
    }

    return freed;
}


static void
ngx_http_llm_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t             rc;
    ngx_rbtree_node_t   **p;
    ngx_http_llm_node_t  *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_http_llm_node_t *) node;
            lnt = (ngx_http_llm_node_t *) temp;

            rc = (ngx_int_t) ln->kind - lnt->kind;

            if (rc == 0) {
                rc = ngx_memn2cmp(ln->name, lnt->name, ln->len, lnt->len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
