
/*
 * llm_redis: fleet-wide counters and keys created at run time.
 *
 * Every worker keeps one asynchronous hiredis connection, attached to
 * nginx's event loop through an ngx_connection_t on hiredis's socket.
 * The events are level-triggered: hiredis reads at most 16 KiB a call,
 * and a level-triggered socket with more to read is simply reported
 * again. hiredis closes the socket itself, so the connection is freed
 * without closing it, from hiredis's cleanup hook, which may run inside
 * our own read handler. Lost connections are retried from a timer with
 * exponential backoff; nothing here blocks.
 *
 * Counters are written behind: one worker per sync interval (chosen
 * through a record in the llm_zone) writes, for every meter that changed,
 * this instance's absolute value into a hash field of its own,
 *
 *     HSET <prefix><node>:<meter>:<window> <field> <used>
 *
 * and reads the hashes back to learn the sum of the other fields (the
 * rest of the fleet). Absolute values make a write idempotent: a retry
 * cannot count twice, and a Redis that lost its data gets it back with
 * the next sync. Nothing is written or read under the zone's lock: meters
 * are copied under it, the commands sent without it, and replies applied
 * under it again, to the window they were about.
 *
 * Keys unknown to the configuration are looked up in Redis by the hex
 * SHA-256 of the key (keys=on) and cached by the worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_zone.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_error.h"
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


static void ngx_http_llm_redis_record(ngx_http_llm_redis_worker_t *w);
static void ngx_http_llm_redis_connect(ngx_http_llm_redis_worker_t *w);
static void ngx_http_llm_redis_add_read(void *data);
static void ngx_http_llm_redis_del_read(void *data);
static void ngx_http_llm_redis_add_write(void *data);
static void ngx_http_llm_redis_del_write(void *data);
static void ngx_http_llm_redis_cleanup(void *data);
static void ngx_http_llm_redis_read_handler(ngx_event_t *rev);
static void ngx_http_llm_redis_write_handler(ngx_event_t *wev);
static void ngx_http_llm_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_llm_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_llm_redis_handshake_cb(redisAsyncContext *ac,
    void *rp, void *data);
static void ngx_http_llm_redis_ready_cb(redisAsyncContext *ac, void *rp,
    void *data);
static ngx_int_t ngx_http_llm_redis_command(ngx_http_llm_redis_worker_t *w,
    redisCallbackFn *fn, void *data, int argc, const char **argv,
    const size_t *argvlen);
static ngx_uint_t ngx_http_llm_redis_replied(ngx_http_llm_redis_worker_t *w,
    redisReply *reply, int type);
static void ngx_http_llm_redis_unavailable(ngx_http_llm_redis_worker_t *w,
    const char *why);
static void ngx_http_llm_redis_schedule(ngx_http_llm_redis_worker_t *w);
static void ngx_http_llm_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_watchdog_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_shutdown(ngx_http_llm_redis_worker_t *w);

static void ngx_http_llm_redis_tick_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_sync(ngx_http_llm_redis_worker_t *w,
    ngx_uint_t how);
static ngx_int_t ngx_http_llm_redis_snapshot(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch, ngx_array_t *items, ngx_uint_t how);
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


static ngx_http_llm_redis_worker_t  ngx_http_llm_redis_worker;

static const char  *ngx_http_llm_redis_units[] = { "usd", "tokens" };
static const char  *ngx_http_llm_redis_periods[] = {
    "minute", "hour", "day", "month"
};

/* a meter's keys live two of its periods */
static const ngx_uint_t  ngx_http_llm_redis_ttl[] = {
    2 * 60, 2 * 3600, 2 * 86400, 62 * 86400
};


/*
 * llm_redis address [user=name] [password=secret|env:NAME] [db=N]
 *     [timeout=1s]
 *     [sync=1s] [fail=open|closed] [node=id] [prefix=llm:] [keys=on|off]
 *     [key_cache=4096];
 */

char *
ngx_http_llm_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    u_char                *p, *last;
    char                  *env;
    size_t                 len;
    ngx_int_t              n;
    ngx_str_t             *value, name, arg, var;
    ngx_uint_t             i;
    ngx_addr_t             addr;
    ngx_msec_t            *ms;
    ngx_http_llm_redis_t  *rd;
    u_char                 text[NGX_SOCKADDR_STRLEN];

    if (lmcf->redis) {
        return "is duplicate";
    }

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_redis_t));
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    rd->db = -1;
    rd->timeout = 1000;
    rd->sync = 1000;
    rd->fail_closed = 0;
    rd->keys = 0;
    rd->key_cache = NGX_HTTP_LLM_REDIS_MAX_KEYS;
    ngx_str_set(&rd->prefix, "llm:");

    /* the node's name is the host's; the hash field adds when it started */

    rd->node = cf->cycle->hostname;
    rd->node.len = ngx_min(rd->node.len, NGX_HTTP_LLM_REDIS_MAX_NODE);

    if (rd->node.len == 0) {
        ngx_str_set(&rd->node, "nginx");
    }

    value = cf->args->elts;
    rd->address = value[1];

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        rd->path.len = value[1].len - 5;
        rd->path.data = ngx_pnalloc(cf->pool, rd->path.len + 1);
        if (rd->path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rd->path.data, value[1].data + 5, rd->path.len + 1);

    } else {
        /* an address only: resolving a name would block the worker */

        if (ngx_parse_addr_port(cf->pool, &addr, value[1].data, value[1].len)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid llm_redis address \"%V\": it must "
                               "be an IP address and port, or unix:/path "
                               "(host names are not resolved)", &value[1]);
            return NGX_CONF_ERROR;
        }

        rd->port = ngx_inet_get_port(addr.sockaddr);

        if (rd->port == 0) {
            rd->port = 6379;
        }

        len = ngx_sock_ntop(addr.sockaddr, addr.socklen, text,
                            NGX_SOCKADDR_STRLEN, 0);

        rd->host.len = len;
        rd->host.data = ngx_pnalloc(cf->pool, len + 1);
        if (rd->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rd->host.data, text, len + 1);
    }

    for (i = 2; i < cf->args->nelts; i++) {

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (p == NULL || p == value[i].data) {
            goto invalid;
        }

        name.data = value[i].data;
        name.len = p - value[i].data;
        arg.data = p + 1;
        arg.len = value[i].data + value[i].len - arg.data;

#define ngx_http_llm_is(s)                                                   \
    (name.len == sizeof(s) - 1 && ngx_strncmp(name.data, s, name.len) == 0)

        if (ngx_http_llm_is("password")) {

            if (arg.len > 4 && ngx_strncmp(arg.data, "env:", 4) == 0) {
                var.len = arg.len - 4;
                var.data = ngx_pnalloc(cf->pool, var.len + 1);
                if (var.data == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_cpystrn(var.data, arg.data + 4, var.len + 1);

                env = getenv((char *) var.data);

                if (env == NULL || *env == '\0') {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "environment variable \"%V\" of "
                                       "llm_redis is not set", &var);
                    return NGX_CONF_ERROR;
                }

                arg.len = ngx_strlen(env);
                arg.data = ngx_pnalloc(cf->pool, arg.len);
                if (arg.data == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_memcpy(arg.data, env, arg.len);
            }

            if (arg.len == 0) {
                goto invalid;
            }

            rd->password = arg;
            continue;
        }

        if (ngx_http_llm_is("user")) {
            /* an ACL user (Redis 6+): AUTH user password */
            if (arg.len == 0) {
                goto invalid;
            }

            rd->user = arg;
            continue;
        }

        if (ngx_http_llm_is("db")) {
            n = ngx_atoi(arg.data, arg.len);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            rd->db = n;
            continue;
        }

        if (ngx_http_llm_is("timeout") || ngx_http_llm_is("sync")) {
            ms = (name.data[0] == 't') ? &rd->timeout : &rd->sync;

            *ms = ngx_parse_time(&arg, 0);

            if (*ms == (ngx_msec_t) NGX_ERROR || *ms < 10
                || *ms > 3600 * 1000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid llm_redis \"%V\": it must be "
                                   "a time between 10ms and 1h", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_llm_is("fail")) {
            if (arg.len == 4 && ngx_strncmp(arg.data, "open", 4) == 0) {
                rd->fail_closed = 0;

            } else if (arg.len == 6 && ngx_strncmp(arg.data, "closed", 6) == 0)
            {
                rd->fail_closed = 1;

            } else {
                goto invalid;
            }

            continue;
        }

        if (ngx_http_llm_is("key_cache")) {
            n = ngx_atoi(arg.data, arg.len);
            if (n == NGX_ERROR || n < 1 || n > 1000000) {
                goto invalid;
            }

            rd->key_cache = n;
            continue;
        }

        if (ngx_http_llm_is("keys")) {
            if (arg.len == 2 && ngx_strncmp(arg.data, "on", 2) == 0) {
                rd->keys = 1;

            } else if (arg.len == 3 && ngx_strncmp(arg.data, "off", 3) == 0) {
                rd->keys = 0;

            } else {
                goto invalid;
            }

            continue;
        }

        if (ngx_http_llm_is("node") || ngx_http_llm_is("prefix")) {
            last = arg.data + arg.len;

            for (p = arg.data; p < last; p++) {
                if (*p <= 0x20 || *p >= 0x7f) {
                    break;
                }
            }

            if (p < last
                || arg.len > (name.data[0] == 'n'
                              ? NGX_HTTP_LLM_REDIS_MAX_NODE
                              : NGX_HTTP_LLM_REDIS_MAX_PREFIX)
                || (name.data[0] == 'n' && arg.len == 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid llm_redis \"%V\": at most %d "
                                   "printable characters without spaces",
                                   &value[i],
                                   name.data[0] == 'n'
                                   ? NGX_HTTP_LLM_REDIS_MAX_NODE
                                   : NGX_HTTP_LLM_REDIS_MAX_PREFIX);
                return NGX_CONF_ERROR;
            }

            if (name.data[0] == 'n') {
                rd->node = arg;

            } else {
                rd->prefix = arg;
            }

            continue;
        }

#undef ngx_http_llm_is

        goto invalid;
    }

    lmcf->redis = rd;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid llm_redis parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_uint_t
ngx_http_llm_redis_keys(ngx_http_llm_main_conf_t *lmcf)
{
    return lmcf->redis && lmcf->redis->keys;
}


ngx_int_t
ngx_http_llm_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llm_main_conf_t     *lmcf;
    ngx_http_llm_redis_worker_t  *w;

    /* workers only: not the cache manager and loader */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_llm_module);

    if (lmcf == NULL || lmcf->redis == NULL) {
        return NGX_OK;
    }

    w = &ngx_http_llm_redis_worker;

    ngx_memzero(w, sizeof(ngx_http_llm_redis_worker_t));

    w->conf = lmcf->redis;
    w->lmcf = lmcf;
    w->zone = lmcf->zone;
    w->log = cycle->log;

    ngx_rbtree_init(&w->keys, &w->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&w->lru);

    w->reconnect.handler = ngx_http_llm_redis_reconnect_handler;
    w->reconnect.cancelable = 1;

    w->tick.handler = ngx_http_llm_redis_tick_handler;
    w->tick.cancelable = 1;

    /* these two hold a worker that shuts down, at most for a timeout */
    w->flush.handler = ngx_http_llm_redis_flush_handler;
    w->watchdog.handler = ngx_http_llm_redis_watchdog_handler;

    w->reconnect.data = w;
    w->reconnect.log = cycle->log;
    w->tick.data = w;
    w->tick.log = cycle->log;
    w->flush.data = w;
    w->flush.log = cycle->log;
    w->watchdog.data = w;
    w->watchdog.log = cycle->log;

    if (w->zone) {
        ngx_http_llm_redis_record(w);
        ngx_add_timer(&w->tick, w->conf->sync);
    }

    ngx_http_llm_redis_connect(w);

    return NGX_OK;
}


void
ngx_http_llm_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                  *q;
    ngx_http_llm_rcache_t        *ce;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    if (w->conf == NULL) {
        return;
    }

    w->exiting = 1;

    if (w->reconnect.timer_set) {
        ngx_del_timer(&w->reconnect);
    }

    if (w->tick.timer_set) {
        ngx_del_timer(&w->tick);
    }

    if (w->flush.timer_set) {
        ngx_del_timer(&w->flush);
    }

    if (w->ac) {
        /* replies still awaited fail; the cleanup hook frees the socket */
        redisAsyncFree(w->ac);
    }

    if (w->watchdog.timer_set) {
        ngx_del_timer(&w->watchdog);
    }

    /* the process ends: keys still held by requests go too */

    while (!ngx_queue_empty(&w->lru)) {
        q = ngx_queue_head(&w->lru);
        ce = ngx_queue_data(q, ngx_http_llm_rcache_t, lru);

        if (ce->key) {
            ngx_destroy_pool(ce->key->pool);
            ce->key = NULL;
        }

        ngx_http_llm_redis_cache_drop(w, ce);
    }

    w->conf = NULL;
}


/* the instance's record in the zone, made by the first worker to look */

static void
ngx_http_llm_redis_record(ngx_http_llm_redis_worker_t *w)
{
    u_char                    *p;
    uint32_t                   hash;
    ngx_str_t                  name = ngx_string("redis");
    ngx_http_llm_node_t       *ln;
    ngx_http_llm_redis_shm_t  *shm;

    hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_REDIS, &name);

    ngx_http_llm_zone_lock(w->zone);

    ln = ngx_http_llm_node(w->zone, NGX_HTTP_LLM_NODE_REDIS, &name, hash,
                           sizeof(ngx_http_llm_redis_shm_t), 1);

    if (ln == NULL) {
        ngx_http_llm_zone_unlock(w->zone);
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "llm: the llm_zone is full: no room for llm_redis");
        return;
    }

    shm = ln->data;

    if (ln->refs == 0) {
        /* new: never expired; the field names this zone's counters for
           as long as the zone lives, so that a restarted instance, whose
           zone is new, never overwrites what it wrote before */

        ln->refs = 1;

        p = ngx_snprintf(shm->field, NGX_HTTP_LLM_REDIS_FIELD_LEN,
                         "%V:%T.%04xi", &w->conf->node, ngx_time(),
                         (ngx_int_t) (ngx_random() & 0xffff));

        shm->field_len = p - shm->field;
        shm->last_ok = ngx_current_msec;
        shm->next_sync = ngx_current_msec;
    }

    w->field.data = w->field_data;
    w->field.len = shm->field_len;
    ngx_memcpy(w->field.data, shm->field, shm->field_len);

    w->shm = shm;

    ngx_http_llm_zone_unlock(w->zone);
}


/* connection ------------------------------------------------------------ */


static void
ngx_http_llm_redis_connect(ngx_http_llm_redis_worker_t *w)
{
    int                 n;
    u_char              db[NGX_INT_T_LEN];
    const char         *argv[3];
    size_t              argvlen[3];
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    if (w->conf->path.len) {
        ac = redisAsyncConnectUnix((char *) w->conf->path.data);

    } else {
        ac = redisAsyncConnect((char *) w->conf->host.data, w->conf->port);
    }

    if (ac == NULL) {
        ngx_http_llm_redis_unavailable(w, "out of memory");
        ngx_http_llm_redis_schedule(w);
        return;
    }

    if (ac->err) {
        ngx_http_llm_redis_unavailable(w, ac->c.errstr);
        redisAsyncFree(ac);
        ngx_http_llm_redis_schedule(w);
        return;
    }

    c = ngx_get_connection(ac->c.fd, w->log);

    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_llm_redis_schedule(w);
        return;
    }

    c->data = w;
    c->read->handler = ngx_http_llm_redis_read_handler;
    c->write->handler = ngx_http_llm_redis_write_handler;
    c->read->log = w->log;
    c->write->log = w->log;

    /* so that ngx_close_idle_connections() tells us of a graceful exit */
    c->idle = 1;

    ac->data = w;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_llm_redis_add_read;
    ac->ev.delRead = ngx_http_llm_redis_del_read;
    ac->ev.addWrite = ngx_http_llm_redis_add_write;
    ac->ev.delWrite = ngx_http_llm_redis_del_write;
    ac->ev.cleanup = ngx_http_llm_redis_cleanup;

    w->ac = ac;
    w->conn = c;
    w->state = NGX_HTTP_LLM_REDIS_CONNECTING;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "llm: redis connecting to %V, fd:%d",
                   &w->conf->address, c->fd);

    (void) redisAsyncSetConnectCallback(ac, ngx_http_llm_redis_connected);
    (void) redisAsyncSetDisconnectCallback(ac,
                                           ngx_http_llm_redis_disconnected);

    /* the handshake is queued now and sent once connected; what is
       queued after it waits for it */

    if (w->conf->password.len) {
        n = 0;
        argv[n] = "AUTH";
        argvlen[n++] = 4;

        if (w->conf->user.len) {
            argv[n] = (const char *) w->conf->user.data;
            argvlen[n++] = w->conf->user.len;
        }

        argv[n] = (const char *) w->conf->password.data;
        argvlen[n++] = w->conf->password.len;

        if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_handshake_cb,
                                       NULL, n, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (w->conf->db >= 0) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", w->conf->db) - db;

        if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_handshake_cb,
                                       NULL, 2, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argv[0] = "PING";
    argvlen[0] = 4;

    if (ngx_http_llm_redis_command(w, ngx_http_llm_redis_ready_cb, NULL,
                                   1, argv, argvlen)
        == NGX_OK)
    {
        return;
    }

failed:

    /* the cleanup hook schedules the next attempt */
    redisAsyncFree(ac);
}


/*
 * hiredis's event hooks. Events are level-triggered (NGX_LEVEL_EVENT):
 * hiredis reads at most 16 KiB a call and cannot tell us when it stopped
 * short of EAGAIN, so a socket with more to read must be reported again.
 */

static void
ngx_http_llm_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_llm_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_llm_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_llm_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


/*
 * hiredis frees the context: the socket is still open and is closed by
 * hiredis right after this, so the connection is freed without closing
 * it. This may run inside our own read or write handler.
 */

static void
ngx_http_llm_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_llm_redis_worker_t  *w;

    w = c->data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;

    w->ac = NULL;
    w->conn = NULL;
    w->state = NGX_HTTP_LLM_REDIS_DOWN;
    w->pending = 0;

    if (w->watchdog.timer_set) {
        ngx_del_timer(&w->watchdog);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "llm: redis %V disconnected", &w->conf->address);

    ngx_http_llm_redis_schedule(w);
}


static void
ngx_http_llm_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t             *c;
    ngx_http_llm_redis_worker_t  *w;

    c = rev->data;
    w = c->data;

    if (c->close) {
        /* ngx_close_idle_connections(): the worker is shutting down */
        c->close = 0;
        ngx_http_llm_redis_shutdown(w);
        return;
    }

    if (w->ac) {
        /* may free the context, and the connection with it */
        redisAsyncHandleRead(w->ac);
    }
}


static void
ngx_http_llm_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t             *c;
    ngx_http_llm_redis_worker_t  *w;

    c = wev->data;
    w = c->data;

    if (w->ac) {
        redisAsyncHandleWrite(w->ac);
    }
}


static void
ngx_http_llm_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_llm_redis_worker_t  *w = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context next */
        ngx_http_llm_redis_unavailable(w, ac->c.errstr);
        return;
    }

    /* progress: the handshake gets a timeout of its own (a worker that
       did not run for a while sees the connection and the timer at once) */

    if (w->pending) {
        ngx_add_timer(&w->watchdog, w->conf->timeout);
    }
}


static void
ngx_http_llm_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_http_llm_redis_worker_t  *w = ac->data;

    if (status != REDIS_OK) {
        ngx_http_llm_redis_unavailable(w, ac->c.errstr);
    }
}


static void
ngx_http_llm_redis_handshake_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_redis_worker_t  *w = ac->data;

    if (!ngx_http_llm_redis_replied(w, rp, REDIS_REPLY_STATUS)) {
        if (rp) {
            /* AUTH or SELECT refused: hiredis frees it once we return */
            redisAsyncFree(ac);
        }
    }
}


static void
ngx_http_llm_redis_ready_cb(redisAsyncContext *ac, void *rp, void *data)
{
    ngx_http_llm_redis_worker_t  *w = ac->data;

    if (!ngx_http_llm_redis_replied(w, rp, REDIS_REPLY_STATUS)) {
        if (rp) {
            redisAsyncFree(ac);
        }

        return;
    }

    w->state = NGX_HTTP_LLM_REDIS_READY;
    w->backoff = 0;

    if (w->down) {
        w->down = 0;
        ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                      "llm: redis %V is available again",
                      &w->conf->address);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "llm: redis %V ready", &w->conf->address);
    }

    if (w->zone && !w->exiting && !ngx_exiting) {
        /* values not yet written go out now */
        ngx_add_timer(&w->tick, 1);
    }
}


static ngx_int_t
ngx_http_llm_redis_command(ngx_http_llm_redis_worker_t *w,
    redisCallbackFn *fn, void *data, int argc, const char **argv,
    const size_t *argvlen)
{
    if (w->ac == NULL) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(w->ac, fn, data, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    w->pending++;

    if (!w->watchdog.timer_set) {
        ngx_add_timer(&w->watchdog, w->conf->timeout);
    }

    return NGX_OK;
}


/*
 * Every reply, or NULL when the connection went away before it came:
 * the timeout counts from the last reply. 1 if it is of the type (0: of
 * any type but an error).
 */

static ngx_uint_t
ngx_http_llm_redis_replied(ngx_http_llm_redis_worker_t *w, redisReply *reply,
    int type)
{
    u_char  *p;
    u_char   safe[NGX_HTTP_LLM_LOG_SAFE_SIZE(128)];

    if (w->pending) {
        w->pending--;
    }

    if (w->pending == 0) {
        if (w->watchdog.timer_set) {
            ngx_del_timer(&w->watchdog);
        }

    } else if (reply) {
        ngx_add_timer(&w->watchdog, w->conf->timeout);
    }

    if (reply == NULL) {
        return 0;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!w->exiting
            && ngx_time() - w->warned >= NGX_HTTP_LLM_REDIS_WARN_EVERY)
        {
            w->warned = ngx_time();
            p = ngx_http_llm_log_safe(safe, sizeof(safe),
                                      (u_char *) reply->str, reply->len);
            ngx_log_error(NGX_LOG_WARN, w->log, 0, "llm: redis %V: %*s",
                          &w->conf->address, (size_t) (p - safe), safe);
        }

        return 0;
    }

    return type == 0 || reply->type == type;
}


static void
ngx_http_llm_redis_unavailable(ngx_http_llm_redis_worker_t *w,
    const char *why)
{
    w->down = 1;

    if (w->exiting
        || ngx_time() - w->warned < NGX_HTTP_LLM_REDIS_WARN_EVERY)
    {
        return;
    }

    w->warned = ngx_time();

    ngx_log_error(NGX_LOG_WARN, w->log, 0, "llm: redis %V unavailable: %s",
                  &w->conf->address, (why && *why) ? why : "unknown error");
}


static void
ngx_http_llm_redis_schedule(ngx_http_llm_redis_worker_t *w)
{
    ngx_msec_t  delay;

    if (w->exiting || ngx_exiting || ngx_quit || ngx_terminate
        || w->reconnect.timer_set)
    {
        return;
    }

    delay = w->backoff ? w->backoff : NGX_HTTP_LLM_REDIS_MIN_BACKOFF;

    w->backoff = ngx_min(delay * 2, NGX_HTTP_LLM_REDIS_MAX_BACKOFF);

    ngx_add_timer(&w->reconnect, delay + ngx_random() % (delay / 4 + 1));
}


static void
ngx_http_llm_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_llm_redis_worker_t  *w = ev->data;

    if (w->exiting || ngx_exiting || w->ac) {
        return;
    }

    ngx_http_llm_redis_connect(w);
}


static void
ngx_http_llm_redis_watchdog_handler(ngx_event_t *ev)
{
    ngx_http_llm_redis_worker_t  *w = ev->data;

    if (w->ac == NULL) {
        return;
    }

    ngx_http_llm_redis_unavailable(w,
                                   w->state == NGX_HTTP_LLM_REDIS_READY
                                   ? "timed out" : "connection timed out");

    /* the replies still awaited fail; the cleanup hook reconnects */
    redisAsyncFree(w->ac);
}


/*
 * A graceful exit (quit, reload): what this instance spent and Redis has
 * not yet seen is written before the worker goes; the worker waits for
 * it at most for the timeout.
 */

static void
ngx_http_llm_redis_shutdown(ngx_http_llm_redis_worker_t *w)
{
    w->exiting = 1;

    if (w->reconnect.timer_set) {
        ngx_del_timer(&w->reconnect);
    }

    if (w->tick.timer_set) {
        ngx_del_timer(&w->tick);
    }

    if (w->state == NGX_HTTP_LLM_REDIS_READY && w->zone) {
        ngx_http_llm_redis_sync(w, NGX_HTTP_LLM_REDIS_FLUSH);
        return;
    }

    if (w->ac) {
        /* not connected yet: nothing to wait for */
        redisAsyncFree(w->ac);
    }
}


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

static void
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


static void
ngx_http_llm_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_llm_redis_worker_t  *w = ev->data;

    if (w->state == NGX_HTTP_LLM_REDIS_READY) {
        ngx_http_llm_redis_sync(w, NGX_HTTP_LLM_REDIS_FLUSH);
    }
}


static void
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
 * allocated under the lock: a first pass sizes the arrays, and the keys
 * are written once it is released (the nodes are held).
 */

static ngx_int_t
ngx_http_llm_redis_snapshot(ngx_http_llm_redis_worker_t *w,
    ngx_http_llm_redis_batch_t *batch, ngx_array_t *items, ngx_uint_t how)
{
    time_t                      now;
    int64_t                     window;
    ngx_uint_t                  i, n, read, dirty, period, nmeters, nodes;
    ngx_uint_t                  room;
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

        if (ln->kind == NGX_HTTP_LLM_NODE_COUNTER) {
            a = ln->data;
            nodes++;
            /* a meter may give two items: its last window and the new */
            room += 2 * (2 + ngx_min(a->nbudgets, NGX_HTTP_LLM_MAX_BUDGETS));
        }
    }

    ngx_http_llm_zone_unlock(w->zone);

    if (nodes == 0) {
        return NGX_OK;
    }

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

        if (ln->kind != NGX_HTTP_LLM_NODE_COUNTER) {
            continue;
        }

        a = ln->data;

        /* entities counted since the first pass wait for the next sync */

        if (batch->nodes.nelts == batch->nodes.nalloc
            || items->nalloc - items->nelts
               < 2 * (2 + ngx_min(a->nbudgets, NGX_HTTP_LLM_MAX_BUDGETS)))
        {
            break;
        }

        nmeters = 2 + ngx_min(a->nbudgets, NGX_HTTP_LLM_MAX_BUDGETS);

        meters[0] = &a->requests;
        meters[1] = &a->tokens;

        dirty = 0;

        for (i = 0; i < nmeters; i++) {
            if (i >= 2) {
                meters[i] = &a->budgets[i - 2];
            }

            if (meters[i]->used != meters[i]->synced) {
                dirty = 1;
            }
        }

        read = (how == NGX_HTTP_LLM_REDIS_SYNC)
               && (ln->refs
                   || (ngx_msec_int_t) (msec - ln->used)
                      < NGX_HTTP_LLM_REDIS_ACTIVE);

        if (!dirty && !read) {
            continue;
        }

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


/* status ----------------------------------------------------------------- */


ngx_int_t
ngx_http_llm_redis_health(ngx_msec_t *age)
{
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    if (w->conf == NULL || w->shm == NULL) {
        return NGX_DECLINED;
    }

    /* last_ok: one word, read without the lock */
    *age = ngx_current_msec - w->shm->last_ok;

    return w->state == NGX_HTTP_LLM_REDIS_READY
           && *age <= 2 * w->conf->sync + w->conf->timeout;
}


/* fail=closed ----------------------------------------------------------- */


ngx_int_t
ngx_http_llm_redis_check(ngx_http_request_t *r, ngx_http_llm_entity_t *key)
{
    ngx_msec_t                    last;
    ngx_table_elt_t              *h;
    ngx_http_llm_entity_t        *e;
    ngx_http_llm_redis_worker_t  *w;

    w = &ngx_http_llm_redis_worker;

    if (w->conf == NULL || !w->conf->fail_closed || w->shm == NULL) {
        return NGX_OK;
    }

    /* only limits that count across the fleet need Redis */

    for (e = key; e; e = e->parent) {
        if (e->rpm || e->tpm || e->nbudgets) {
            break;
        }
    }

    if (e == NULL) {
        return NGX_OK;
    }

    /*
     * Refused once no worker has completed a sync for two intervals, and
     * this worker has no working connection either (a worker that did not
     * run for a while has not failed to sync). last_ok: one word, read
     * without the lock.
     */

    last = w->shm->last_ok;

    if (w->state == NGX_HTTP_LLM_REDIS_READY
        || (ngx_msec_int_t) (ngx_current_msec - last)
           <= (ngx_msec_int_t) (2 * w->conf->sync))
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "llm: key \"%V\" refused: redis %V unavailable and "
                  "fail=closed", &key->name, &w->conf->address);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    ngx_str_set(&h->value, "1");

    return ngx_http_llm_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "accounting_unavailable", NULL,
                             "The limits of key `%V` cannot be checked "
                             "now: usage accounting is unavailable. "
                             "Retry later.", &key->name);
}


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
    u_char                  *p, *last, *comma, *s, *end;
    char                    *rv;
    ngx_int_t                n;
    ngx_str_t                name, val, item, *glob;
    ngx_uint_t               i, j, *limit;
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

#define ngx_http_llm_is(s)                                                   \
    (name.len == sizeof(s) - 1 && ngx_strncmp(name.data, s, name.len) == 0)

        if (ngx_http_llm_is("name")) {

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

        if (ngx_http_llm_is("team")) {
            e->parent_name = val;
            continue;
        }

        if (ngx_http_llm_is("models")) {
            e->models = ngx_array_create(pool, 4, sizeof(ngx_str_t));
            if (e->models == NULL) {
                goto nomem;
            }

            p = val.data;
            last = val.data + val.len;

            while (p < last) {
                comma = ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                for (s = p; s < comma && *s == ' '; s++) { /* void */ }
                for (end = comma; end > s && end[-1] == ' '; end--) {
                    /* void */
                }

                if (end > s) {
                    glob = ngx_array_push(e->models);
                    if (glob == NULL) {
                        goto nomem;
                    }

                    glob->data = s;
                    glob->len = end - s;
                }

                p = comma + 1;
            }

            continue;
        }

        if (name.len >= 6 && ngx_strncmp(name.data, "budget", 6) == 0) {

            for (j = 6; j < name.len; j++) {
                if (name.data[j] < '0' || name.data[j] > '9') {
                    break;
                }
            }

            if (j < name.len) {
                continue;
            }

            p = val.data;
            last = val.data + val.len;

            while (p < last) {
                comma = ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                for (s = p; s < comma && *s == ' '; s++) { /* void */ }
                for (end = comma; end > s && end[-1] == ' '; end--) {
                    /* void */
                }

                p = comma + 1;

                if (end == s) {
                    continue;
                }

                item.data = s;
                item.len = end - s;

                if (e->nbudgets == NGX_HTTP_LLM_MAX_BUDGETS) {
                    ngx_sprintf(why, "more than %d budgets%Z",
                                NGX_HTTP_LLM_MAX_BUDGETS);
                    goto invalid;
                }

                rv = ngx_http_llm_parse_budget(&item,
                                               &e->budgets[e->nbudgets]);
                if (rv != NGX_CONF_OK) {
                    ngx_snprintf(why, sizeof(why) - 1,
                                 "invalid budget \"%V\": %s%Z", &item, rv);
                    why[sizeof(why) - 1] = '\0';
                    goto invalid;
                }

                e->nbudgets++;
            }

            continue;
        }

        if (ngx_http_llm_is("rpm")) {
            limit = &e->rpm;

        } else if (ngx_http_llm_is("tpm")) {
            limit = &e->tpm;

        } else if (ngx_http_llm_is("parallel")) {
            limit = &e->parallel;

        } else {
            /* fields of later versions, or the operator's own */
            continue;
        }

#undef ngx_http_llm_is

        n = ngx_atoi(val.data, val.len);

        if (n == NGX_ERROR) {
            ngx_snprintf(why, sizeof(why) - 1,
                         "invalid %V \"%V\": it must be a number%Z",
                         &name, &val);
            why[sizeof(why) - 1] = '\0';
            goto invalid;
        }

        /* 0: no limit */
        *limit = n;
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
