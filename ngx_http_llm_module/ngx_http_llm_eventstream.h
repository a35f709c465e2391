
/*
 * AWS event streams (application/vnd.amazon.eventstream), read
 * incrementally: binary frames of a prelude (total length, headers
 * length, CRC-32 of the two), headers, a payload and a CRC-32 of the whole
 * message. Frames come out as the same event records as server-sent
 * events: the :event-type header (or the :exception-type of an exception)
 * and the payload.
 */


#ifndef _NGX_HTTP_LLM_EVENTSTREAM_H_INCLUDED_
#define _NGX_HTTP_LLM_EVENTSTREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_sse.h"


typedef struct {
    ngx_pool_t                    *pool;
    ngx_buf_t                     *partial;     /* a frame in pieces */
    size_t                         max;         /* largest frame accepted */
    size_t                         total;       /* of the partial frame */
    const char                    *error;       /* why a frame was refused */
} ngx_http_llm_es_t;


/*
 * feeds bytes; calls handler for every complete frame. NGX_DECLINED: a
 * malformed frame (es->error says why); NGX_ERROR: no memory or the
 * handler failed
 */
ngx_int_t ngx_http_llm_es_feed(ngx_http_llm_es_t *es, u_char *p,
    u_char *last, ngx_http_llm_sse_handler_pt handler, void *data);

#define ngx_http_llm_es_pending(es)                                          \
    ((es)->partial && (es)->partial->last > (es)->partial->pos)


#endif /* _NGX_HTTP_LLM_EVENTSTREAM_H_INCLUDED_ */
