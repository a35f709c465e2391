
/*
 * The shared memory zone (llm_zone): state every worker sees and that
 * survives "nginx -s reload". Nodes are found by kind and name in an
 * rbtree (crc32, then the name); idle ones are expired when memory runs
 * short. All node access happens under the zone's mutex, briefly.
 */


#ifndef _NGX_HTTP_LLM_ZONE_H_INCLUDED_
#define _NGX_HTTP_LLM_ZONE_H_INCLUDED_


#include "ngx_http_llm_module.h"


typedef enum {
    NGX_HTTP_LLM_NODE_TARGET = 1,
    NGX_HTTP_LLM_NODE_ROUTE,
    NGX_HTTP_LLM_NODE_COUNTER,
    /*
     * 0.2's series and totals, smaller than today's: a zone that lives on
     * through a reload into this version leaves them unread to age out
     */
    NGX_HTTP_LLM_NODE_RETIRED_METRICS,
    NGX_HTTP_LLM_NODE_RETIRED_SPEND,
    NGX_HTTP_LLM_NODE_REDIS,         /* a node's Redis sync state */
    NGX_HTTP_LLM_NODE_GUARD,         /* a guard policy's hits by rule */
    NGX_HTTP_LLM_NODE_METRICS,       /* a route and target's series */
    NGX_HTTP_LLM_NODE_SPEND          /* a key's, team's or org's totals */
} ngx_http_llm_node_kind_e;


/*
 * What a request found by its ref reads and writes (data, used, refs)
 * shares the rbtree node's cache line: with thousands of keys and routes
 * a node is rarely in the cache, and each line is a miss
 */
struct ngx_http_llm_node_s {
    ngx_rbtree_node_t              node;        /* key: crc32 of the name */
    void                          *data;        /* the kind's payload */
    ngx_msec_t                     used;
    /* requests holding it; a COUNTER's are its account's "parallel" */
    uint32_t                       refs;
    /* nodes counted against this one (a route's models); kept while any */
    uint32_t                       owned;
    ngx_queue_t                    queue;       /* most recently used first */
    ngx_http_llm_node_t           *owner;       /* the node counting it */
    uint16_t                       len;
    uint8_t                        kind;
    u_char                         name[1];
};


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    queue;
    /* nodes freed so far: what a worker remembers of older ones is void */
    uint64_t                       generation;
} ngx_http_llm_shctx_t;


/* a node a worker found, as long as no node has been freed since */
typedef struct {
    ngx_http_llm_node_t           *node;
    uint64_t                       generation;
    uint32_t                       hash;
} ngx_http_llm_node_memo_t;


struct ngx_http_llm_zone_s {
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_llm_shctx_t          *sh;
    /* this worker's memo of nodes by hash (pairs of slots); NULL else */
    ngx_http_llm_node_memo_t      *memo;
    ngx_uint_t                     memo_mask;
};


char *ngx_http_llm_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_llm_zone_default(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf);
/* a worker's memo of the zone's nodes */
ngx_int_t ngx_http_llm_zone_init_process(ngx_cycle_t *cycle,
    ngx_http_llm_zone_t *zone);

/*
 * with the mutex held: the node of kind and name, created with a zeroed
 * payload of size bytes when absent and create is set; NULL when absent
 * or when memory ran out
 */
ngx_http_llm_node_t *ngx_http_llm_node(ngx_http_llm_zone_t *zone,
    ngx_uint_t kind, ngx_str_t *name, uint32_t hash, size_t size,
    ngx_uint_t create);

/*
 * a node's payload (ln->data) of size bytes, found without reading a line
 * of the node: the payload comes first in the node's memory
 */
#define ngx_http_llm_node_payload(ln, size)                                  \
    ((void *) ((u_char *) (ln) - ngx_align(size, NGX_ALIGNMENT)))

/* the same, for an object whose node's name never changes: found once */
ngx_http_llm_node_t *ngx_http_llm_node_by_ref(ngx_http_llm_zone_t *zone,
    ngx_http_llm_node_ref_t *ref, ngx_uint_t kind, ngx_str_t *name,
    uint32_t hash, size_t size, ngx_uint_t create);

/* with the mutex held: the node, if any, not counted as used (a report) */
ngx_http_llm_node_t *ngx_http_llm_node_find(ngx_http_llm_zone_t *zone,
    ngx_uint_t kind, ngx_str_t *name, uint32_t hash);

uint32_t ngx_http_llm_node_hash(ngx_uint_t kind, ngx_str_t *name);

#define ngx_http_llm_zone_lock(zone)    ngx_shmtx_lock(&(zone)->shpool->mutex)
#define ngx_http_llm_zone_unlock(zone)  ngx_shmtx_unlock(&(zone)->shpool->mutex)


#endif /* _NGX_HTTP_LLM_ZONE_H_INCLUDED_ */
