
/*
 * llm_redis: fleet-wide counters and keys created at run time, kept in
 * Redis off the request path. Every worker has one asynchronous hiredis
 * connection on nginx's event loop; one worker per interval writes this
 * instance's counters (absolute values, one hash field per instance) and
 * reads back the other instances' into each meter's "fleet".
 */


#ifndef _NGX_HTTP_LLM_REDIS_H_INCLUDED_
#define _NGX_HTTP_LLM_REDIS_H_INCLUDED_


#include "ngx_http_llm_module.h"


struct ngx_http_llm_redis_s {
    ngx_str_t                      address;        /* as configured */
    ngx_str_t                      host;           /* IP, null-terminated */
    int                            port;
    ngx_str_t                      path;           /* unix socket */
    ngx_str_t                      user;           /* ACL, with password */
    ngx_str_t                      password;
    ngx_int_t                      db;             /* -1: no SELECT */
    ngx_msec_t                     timeout;
    ngx_msec_t                     sync;
    ngx_str_t                      node;
    ngx_str_t                      prefix;
    ngx_flag_t                     fail_closed;
    ngx_flag_t                     keys;
    ngx_uint_t                     key_cache;      /* keys a worker keeps */
};


char *ngx_http_llm_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

ngx_int_t ngx_http_llm_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_llm_main_conf_t *lmcf);
void ngx_http_llm_redis_exit_process(ngx_cycle_t *cycle);

/* keys=on: whether keys not in the configuration are looked up in Redis */
ngx_uint_t ngx_http_llm_redis_keys(ngx_http_llm_main_conf_t *lmcf);

/*
 * A key the configuration does not know, by its SHA-256 digest and hex
 * digest: NGX_OK with *key set, or NULL when there is no such key;
 * NGX_AGAIN when it is being looked up (the event "wake", whose handler,
 * data and log the caller set, is posted when the answer is in); NGX_BUSY
 * when Redis cannot tell now; NGX_ERROR.
 */
ngx_int_t ngx_http_llm_redis_find_key(ngx_http_request_t *r,
    ngx_event_t *wake, u_char *digest, u_char *hex,
    ngx_http_llm_entity_t **key);

/*
 * fail=closed: NGX_OK if the key's limits can be checked; otherwise the
 * request has been answered with 503 and this returns what a phase
 * handler returns (NGX_DONE)
 */
ngx_int_t ngx_http_llm_redis_check(ngx_http_request_t *r,
    ngx_http_llm_entity_t *key);

/*
 * For the status and metrics: NGX_DECLINED without llm_redis; else whether
 * this worker's connection is up and a sync of the instance completed
 * within two intervals (1 or 0), and *age the time since that sync.
 */
ngx_int_t ngx_http_llm_redis_health(ngx_msec_t *age);

/* a request settled its usage: a worker that is shutting down writes it */
void ngx_http_llm_redis_settled(void);


#endif /* _NGX_HTTP_LLM_REDIS_H_INCLUDED_ */
