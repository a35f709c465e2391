
/*
 * JSON trees for dialect translation: a document read by the scanner
 * (ngx_http_llm_jscan.c) becomes a tree of nodes in an arena (the
 * request's, or one reused per stream event), and JSON is written into
 * growable buffers.
 */


#ifndef _NGX_HTTP_LLM_JSON_TREE_H_INCLUDED_
#define _NGX_HTTP_LLM_JSON_TREE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_json.h"
#include "ngx_http_llm_jscan.h"


typedef enum {
    NGX_HTTP_LLM_JSON_NULL = 0,
    NGX_HTTP_LLM_JSON_FALSE,
    NGX_HTTP_LLM_JSON_TRUE,
    NGX_HTTP_LLM_JSON_NUMBER,          /* str: the number as written */
    NGX_HTTP_LLM_JSON_STRING,          /* str: decoded */
    NGX_HTTP_LLM_JSON_ARRAY,
    NGX_HTTP_LLM_JSON_OBJECT
} ngx_http_llm_json_type_e;


typedef struct ngx_http_llm_json_s  ngx_http_llm_json_t;

struct ngx_http_llm_json_s {
    ngx_http_llm_json_type_e       type;
    ngx_str_t                      key;         /* a member's name */
    ngx_str_t                      str;
    ngx_http_llm_json_t           *child;       /* first member/element */
    ngx_http_llm_json_t           *last;
    ngx_http_llm_json_t           *next;
    ngx_http_llm_json_t           *parent;
    ngx_uint_t                     n;           /* members/elements */
};


/*
 * A cap on what a request's parse may take from its pool, shared by its
 * tree and its cache key's digest.
 */
typedef struct {
    size_t                         used;
    size_t                         max;
    unsigned                       exceeded:1;
} ngx_http_llm_memcap_t;

#define ngx_http_llm_memcap_charge(cap, n)                                   \
    ((cap) == NULL                                                           \
     || ((cap)->used + (n) <= (cap)->max ? ((cap)->used += (n), 1)           \
                                         : ((cap)->exceeded = 1, 0)))


/*
 * Memory for trees: blocks from a pool, reused after a reset, so that a
 * long stream parses every event into the same memory.
 */

typedef struct ngx_http_llm_arena_block_s  ngx_http_llm_arena_block_t;

typedef struct {
    ngx_pool_t                    *pool;
    ngx_http_llm_arena_block_t    *first;
    ngx_http_llm_arena_block_t    *current;
    ngx_array_t                   *large;       /* void *, freed on reset */
    size_t                         size;        /* taken from the pool */
    size_t                         blocks;      /* of it, in blocks */
    ngx_http_llm_memcap_t         *cap;         /* NULL: none */
} ngx_http_llm_arena_t;


/* a tree being built from the scanner's tokens */
typedef struct {
    ngx_http_llm_arena_t          *arena;
    ngx_http_llm_json_t           *root;
    ngx_http_llm_json_t           *current;     /* open container */
    ngx_str_t                      key;         /* for the next value */
    ngx_uint_t                     depth;
    ngx_uint_t                     nodes;
    ngx_uint_t                     max_depth;   /* 0: no limit */
    ngx_uint_t                     max_nodes;   /* 0: no limit */
    ngx_str_t                      duplicate;   /* unique_root: the name
                                                   given twice */
    unsigned                       unique_root:1; /* a root object's names
                                                   are each given once */
} ngx_http_llm_tree_t;


/*
 * what a document from a provider may hold: its tree is written out again
 * recursively, and costs a node (~80 bytes) per value
 */
#define NGX_HTTP_LLM_PROVIDER_MAX_DEPTH  128
#define NGX_HTTP_LLM_PROVIDER_MAX_NODES  (1024 * 1024)




void ngx_http_llm_arena_init(ngx_http_llm_arena_t *a, ngx_pool_t *pool);
void *ngx_http_llm_arena_alloc(ngx_http_llm_arena_t *a, size_t size);
void ngx_http_llm_arena_reset(ngx_http_llm_arena_t *a);

/* the tree builder, fed the scanner's tokens (or, in tests, yajl's) */
void ngx_http_llm_tree_init(ngx_http_llm_tree_t *t, ngx_http_llm_arena_t *a);
ngx_int_t ngx_http_llm_tree_scalar(ngx_http_llm_tree_t *t,
    ngx_http_llm_json_type_e type, const u_char *s, size_t len);
ngx_int_t ngx_http_llm_tree_key(ngx_http_llm_tree_t *t, const u_char *s,
    size_t len);
ngx_int_t ngx_http_llm_tree_open(ngx_http_llm_tree_t *t,
    ngx_http_llm_json_type_e type);
ngx_int_t ngx_http_llm_tree_close(ngx_http_llm_tree_t *t);
/* a scanner's token (whole, from its sink) to the tree */
ngx_int_t ngx_http_llm_tree_jscan(ngx_http_llm_tree_t *t,
    ngx_http_llm_jscan_t *js, ngx_uint_t token);
/* the same as a scanner's handler, its data the tree */
ngx_int_t ngx_http_llm_tree_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);

/* a whole document in memory; NULL: not JSON, or no memory */
ngx_http_llm_json_t *ngx_http_llm_json_parse(ngx_http_llm_arena_t *a,
    u_char *p, size_t len);

/* whether p is one well-formed JSON document that is an object */
ngx_uint_t ngx_http_llm_json_is_object(u_char *p, size_t len);

ngx_http_llm_json_t *ngx_http_llm_json_get(ngx_http_llm_json_t *obj,
    const char *key);
/* a member that is a string (or NULL) */
ngx_str_t *ngx_http_llm_json_str(ngx_http_llm_json_t *obj, const char *key);
/* a member that is an integer, or -1 */
int64_t ngx_http_llm_json_int(ngx_http_llm_json_t *obj, const char *key);
ngx_uint_t ngx_http_llm_json_eq(ngx_http_llm_json_t *v, const char *s);
ngx_http_llm_json_t *ngx_http_llm_json_new(ngx_http_llm_arena_t *a,
    ngx_http_llm_json_type_e type);
void ngx_http_llm_json_append(ngx_http_llm_json_t *parent,
    ngx_http_llm_json_t *v);

#define ngx_http_llm_json_is(v, t)  ((v) != NULL && (v)->type == (t))


/* JSON text that is an object as it is, anything else (or NULL) as {} */
void ngx_http_llm_jbuf_object(ngx_http_llm_jbuf_t *b, ngx_str_t *json);
/* a tree written back as JSON */
void ngx_http_llm_jbuf_value(ngx_http_llm_jbuf_t *b, ngx_http_llm_json_t *v);
/* the same without the members named skip of the objects of its first
   "levels" levels */
void ngx_http_llm_jbuf_value_without(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *v, ngx_str_t *skip, ngx_uint_t levels);
/* a tree as a JSON string holding its JSON text */
void ngx_http_llm_jbuf_value_str(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *v);

#endif /* _NGX_HTTP_LLM_JSON_TREE_H_INCLUDED_ */
