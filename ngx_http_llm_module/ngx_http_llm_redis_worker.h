
/*
 * llm_redis inside a worker: its one connection and what the connection,
 * the sync (ngx_http_llm_redis_sync.c) and the run-time keys
 * (ngx_http_llm_redis_keys.c) share. See docs/architecture.md.
 */


#ifndef _NGX_HTTP_LLM_REDIS_WORKER_H_INCLUDED_
#define _NGX_HTTP_LLM_REDIS_WORKER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_redis.h"


/* "redis unavailable" is logged at most this often by a worker (seconds) */
#define NGX_HTTP_LLM_REDIS_WARN_EVERY  10

#define NGX_HTTP_LLM_REDIS_MIN_BACKOFF 100
#define NGX_HTTP_LLM_REDIS_MAX_BACKOFF 5000

/* counters are read back for entities used this recently (ms) */
#define NGX_HTTP_LLM_REDIS_ACTIVE      (600 * 1000)

/* entities one sync covers at most, most recently used first */
#define NGX_HTTP_LLM_REDIS_MAX_NODES   4096

/* how long a worker trusts what Redis said about a key (ms) */
#define NGX_HTTP_LLM_REDIS_KEY_TTL     60000
#define NGX_HTTP_LLM_REDIS_NOKEY_TTL   10000

/* keys a worker caches at most, by default (key_cache=) */
#define NGX_HTTP_LLM_REDIS_MAX_KEYS    4096

#define NGX_HTTP_LLM_REDIS_MAX_NODE    64
#define NGX_HTTP_LLM_REDIS_MAX_PREFIX  64
#define NGX_HTTP_LLM_REDIS_FIELD_LEN   128

#define NGX_HTTP_LLM_REDIS_METERS      (2 + NGX_HTTP_LLM_MAX_BUDGETS)


typedef enum {
    NGX_HTTP_LLM_REDIS_DOWN = 0,
    NGX_HTTP_LLM_REDIS_CONNECTING,
    NGX_HTTP_LLM_REDIS_READY
} ngx_http_llm_redis_state_e;


typedef enum {
    NGX_HTTP_LLM_REDIS_SYNC = 0,         /* this worker's turn */
    NGX_HTTP_LLM_REDIS_FLUSH             /* shutting down: write only */
} ngx_http_llm_redis_sync_e;


/* the instance's record in the llm_zone, shared by its workers */
typedef struct {
    ngx_msec_t                     next_sync;
    ngx_msec_t                     busy_until;     /* a sync in flight */
    ngx_msec_t                     last_ok;        /* last complete sync */
    ngx_pid_t                      busy_pid;
    size_t                         field_len;
    u_char                         field[NGX_HTTP_LLM_REDIS_FIELD_LEN];
} ngx_http_llm_redis_shm_t;


typedef struct {
    ngx_http_llm_redis_t          *conf;
    ngx_http_llm_main_conf_t      *lmcf;
    ngx_http_llm_zone_t           *zone;
    ngx_http_llm_redis_shm_t      *shm;
    ngx_str_t                      field;          /* this zone's */
    ngx_log_t                     *log;

    redisAsyncContext             *ac;
    ngx_connection_t              *conn;
    ngx_uint_t                     state;
    ngx_uint_t                     pending;        /* replies awaited */
    ngx_msec_t                     backoff;
    time_t                         warned;
    time_t                         warned_full;    /* lookups at most */

    ngx_event_t                    reconnect;
    ngx_event_t                    tick;           /* sync */
    ngx_event_t                    flush;          /* while shutting down */
    ngx_event_t                    watchdog;       /* command timeout */

    ngx_rbtree_t                   keys;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_uint_t                     nkeys;

    unsigned                       down:1;         /* warned, not yet back */
    unsigned                       exiting:1;
    unsigned                       syncing:1;

    u_char                         field_data[NGX_HTTP_LLM_REDIS_FIELD_LEN];
} ngx_http_llm_redis_worker_t;


extern ngx_http_llm_redis_worker_t  ngx_http_llm_redis_worker;


/* the instance's record in the zone, made by the first worker to look */
void ngx_http_llm_redis_record(ngx_http_llm_redis_worker_t *w);

/* a command on the worker's connection; its reply goes to fn */
ngx_int_t ngx_http_llm_redis_command(ngx_http_llm_redis_worker_t *w,
    redisCallbackFn *fn, void *data, int argc, const char **argv,
    const size_t *argvlen);

/* whether a reply is one of the type (0: of any), else the connection's
   trouble is noted */
ngx_uint_t ngx_http_llm_redis_replied(ngx_http_llm_redis_worker_t *w,
    redisReply *reply, int type);

/* ngx_http_llm_redis_sync.c: every worker's timer, and the sync itself */
void ngx_http_llm_redis_tick_handler(ngx_event_t *ev);
void ngx_http_llm_redis_flush_handler(ngx_event_t *ev);
void ngx_http_llm_redis_sync(ngx_http_llm_redis_worker_t *w, ngx_uint_t how);

/* ngx_http_llm_redis_keys.c: the cache goes with the process */
void ngx_http_llm_redis_keys_free(ngx_http_llm_redis_worker_t *w);


#endif /* _NGX_HTTP_LLM_REDIS_WORKER_H_INCLUDED_ */
