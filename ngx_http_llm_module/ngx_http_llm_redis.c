
/*
 * llm_redis: the directive, and each worker's one hiredis connection on
 * nginx's event loop (docs/architecture.md, "Redis").
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_redis_worker.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_error.h"


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
static void ngx_http_llm_redis_unavailable(ngx_http_llm_redis_worker_t *w,
    const char *why);
static void ngx_http_llm_redis_schedule(ngx_http_llm_redis_worker_t *w);
static void ngx_http_llm_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_watchdog_handler(ngx_event_t *ev);
static void ngx_http_llm_redis_shutdown(ngx_http_llm_redis_worker_t *w);


ngx_http_llm_redis_worker_t  ngx_http_llm_redis_worker;


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
ngx_http_llm_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_llm_main_conf_t *lmcf)
{
    ngx_http_llm_redis_worker_t  *w;

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
    ngx_http_llm_redis_keys_free(w);

    w->conf = NULL;
}


/* the instance's record in the zone, made by the first worker to look */

void
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


ngx_int_t
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

ngx_uint_t
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
