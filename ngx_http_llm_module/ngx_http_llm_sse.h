
/*
 * Server-sent events, read incrementally: bytes go in as they arrive, in
 * buffers of any size; complete events come out, with the bytes they were
 * made of. Lines may end in LF, CRLF or CR; an empty line ends an event.
 */


#ifndef _NGX_HTTP_LLM_SSE_H_INCLUDED_
#define _NGX_HTTP_LLM_SSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* a span of an event's raw bytes replaced on the way to the client */
typedef struct {
    u_char                        *start;
    u_char                        *end;
    ngx_str_t                      text;        /* written instead */
} ngx_http_llm_sse_edit_t;


typedef struct {
    ngx_str_t                      raw;         /* as received, with the
                                                   blank line ending it */
    ngx_str_t                      event;       /* "event:" field, if any */
    ngx_str_t                      data;        /* "data:" lines, joined */
    ngx_http_llm_sse_edit_t        edits[2];    /* by a dialect, in the
                                                   order of raw */
    ngx_uint_t                     nedits;
    unsigned                       exception:1; /* an eventstream exception:
                                                   event is its type */
    unsigned                       error:1;     /* the provider's error: a
                                                   key it quotes is masked
                                                   as it goes out */
} ngx_http_llm_sse_event_t;


typedef ngx_int_t (*ngx_http_llm_sse_handler_pt)(void *data,
    ngx_http_llm_sse_event_t *ev);


typedef struct {
    ngx_pool_t                    *pool;
    ngx_buf_t                     *partial;     /* an event in pieces */
    ngx_buf_t                     *scratch;     /* data of many lines */
    size_t                         max;         /* largest event accepted */
    ngx_uint_t                     column;      /* in the current line */
    unsigned                       cr:1;        /* last byte was CR */
} ngx_http_llm_sse_t;


/*
 * feeds bytes; calls handler for every complete event. NGX_DECLINED: an
 * event larger than max; NGX_ERROR: no memory or the handler failed
 */
ngx_int_t ngx_http_llm_sse_feed(ngx_http_llm_sse_t *sse, u_char *p,
    u_char *last, ngx_http_llm_sse_handler_pt handler, void *data);

/* bytes of an event begun but not finished */
#define ngx_http_llm_sse_pending(sse)                                        \
    ((sse)->partial && (sse)->partial->last > (sse)->partial->pos)


#endif /* _NGX_HTTP_LLM_SSE_H_INCLUDED_ */
