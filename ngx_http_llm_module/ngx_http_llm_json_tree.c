
/*
 * JSON trees and JSON output buffers for dialect translation; trees are
 * built from the scanner's tokens (ngx_http_llm_jscan.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_jscan.h"
#include "ngx_http_llm_json.h"


#define NGX_HTTP_LLM_ARENA_BLOCK  8192


struct ngx_http_llm_arena_block_s {
    ngx_http_llm_arena_block_t    *next;
    u_char                        *pos;
    u_char                        *end;
};


static ngx_int_t ngx_http_llm_json_any_token(ngx_http_llm_jscan_t *js,
    ngx_uint_t token);
static int ngx_libc_cdecl ngx_http_llm_tree_name_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_http_llm_tree_unique(ngx_http_llm_tree_t *t,
    ngx_http_llm_json_t *obj);


void
ngx_http_llm_arena_init(ngx_http_llm_arena_t *a, ngx_pool_t *pool)
{
    ngx_memzero(a, sizeof(ngx_http_llm_arena_t));
    a->pool = pool;
}


void *
ngx_http_llm_arena_alloc(ngx_http_llm_arena_t *a, size_t size)
{
    void                        *p, **large;
    ngx_http_llm_arena_block_t  *b;

    size = ngx_align(size, sizeof(void *));

    if (size > NGX_HTTP_LLM_ARENA_BLOCK / 2) {

        /* large: from the pool, given back on reset */

        if (a->large == NULL) {
            a->large = ngx_array_create(a->pool, 4, sizeof(void *));
            if (a->large == NULL) {
                return NULL;
            }
        }

        large = ngx_array_push(a->large);
        if (large == NULL || !ngx_http_llm_memcap_charge(a->cap, size)) {
            return NULL;
        }

        p = ngx_palloc(a->pool, size);
        *large = p;

        if (p) {
            a->size += size;
        }

        return p;
    }

    for (b = a->current; b; b = b->next) {
        if ((size_t) (b->end - b->pos) >= size) {
            p = b->pos;
            b->pos += size;
            a->current = b;
            return p;
        }
    }

    if (!ngx_http_llm_memcap_charge(a->cap, NGX_HTTP_LLM_ARENA_BLOCK)) {
        return NULL;
    }

    b = ngx_palloc(a->pool, NGX_HTTP_LLM_ARENA_BLOCK);
    if (b == NULL) {
        return NULL;
    }

    b->pos = (u_char *) b + ngx_align(sizeof(ngx_http_llm_arena_block_t),
                                      sizeof(void *));
    b->end = (u_char *) b + NGX_HTTP_LLM_ARENA_BLOCK;
    b->next = NULL;

    a->size += NGX_HTTP_LLM_ARENA_BLOCK;
    a->blocks += NGX_HTTP_LLM_ARENA_BLOCK;

    if (a->current) {
        /* the new block goes after the last one */
        while (a->current->next) {
            a->current = a->current->next;
        }

        a->current->next = b;

    } else {
        a->first = b;
    }

    a->current = b;

    p = b->pos;
    b->pos += size;

    return p;
}


void
ngx_http_llm_arena_reset(ngx_http_llm_arena_t *a)
{
    void                        **large;
    ngx_uint_t                    i;
    ngx_http_llm_arena_block_t   *b;

    for (b = a->first; b; b = b->next) {
        b->pos = (u_char *) b + ngx_align(sizeof(ngx_http_llm_arena_block_t),
                                          sizeof(void *));
    }

    a->current = a->first;

    if (a->large) {
        large = a->large->elts;

        for (i = 0; i < a->large->nelts; i++) {
            if (large[i]) {
                ngx_pfree(a->pool, large[i]);
            }
        }

        a->large->nelts = 0;
    }

    if (a->cap) {
        a->cap->used -= a->size - a->blocks;
    }

    a->size = a->blocks;
}


void
ngx_http_llm_tree_init(ngx_http_llm_tree_t *t, ngx_http_llm_arena_t *a)
{
    ngx_memzero(t, sizeof(ngx_http_llm_tree_t));
    t->arena = a;
}


ngx_http_llm_json_t *
ngx_http_llm_json_new(ngx_http_llm_arena_t *a, ngx_http_llm_json_type_e type)
{
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_arena_alloc(a, sizeof(ngx_http_llm_json_t));
    if (v == NULL) {
        return NULL;
    }

    ngx_memzero(v, sizeof(ngx_http_llm_json_t));
    v->type = type;

    return v;
}


void
ngx_http_llm_json_append(ngx_http_llm_json_t *parent, ngx_http_llm_json_t *v)
{
    v->parent = parent;

    if (parent->last) {
        parent->last->next = v;

    } else {
        parent->child = v;
    }

    parent->last = v;
    parent->n++;
}


static ngx_http_llm_json_t *
ngx_http_llm_tree_add(ngx_http_llm_tree_t *t, ngx_http_llm_json_type_e type)
{
    ngx_http_llm_json_t  *v;

    if (t->max_nodes && ++t->nodes > t->max_nodes) {
        return NULL;
    }

    v = ngx_http_llm_json_new(t->arena, type);
    if (v == NULL) {
        return NULL;
    }

    if (t->current == NULL) {
        if (t->root) {
            /* a second document */
            return NULL;
        }

        t->root = v;
        return v;
    }

    if (t->current->type == NGX_HTTP_LLM_JSON_OBJECT) {
        v->key = t->key;
        ngx_str_null(&t->key);
    }

    ngx_http_llm_json_append(t->current, v);

    return v;
}


static ngx_int_t
ngx_http_llm_tree_copy(ngx_http_llm_tree_t *t, ngx_str_t *dst,
    const u_char *s, size_t len)
{
    dst->len = len;

    if (len == 0) {
        dst->data = (u_char *) "";
        return NGX_OK;
    }

    /* the scanner's bytes are gone after the token */

    dst->data = ngx_http_llm_arena_alloc(t->arena, len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, s, len);

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_tree_scalar(ngx_http_llm_tree_t *t,
    ngx_http_llm_json_type_e type, const u_char *s, size_t len)
{
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_tree_add(t, type);
    if (v == NULL) {
        return NGX_ERROR;
    }

    if (s) {
        return ngx_http_llm_tree_copy(t, &v->str, s, len);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_tree_key(ngx_http_llm_tree_t *t, const u_char *s, size_t len)
{
    return ngx_http_llm_tree_copy(t, &t->key, s, len);
}


ngx_int_t
ngx_http_llm_tree_open(ngx_http_llm_tree_t *t, ngx_http_llm_json_type_e type)
{
    ngx_http_llm_json_t  *v;

    if (t->max_depth && ++t->depth > t->max_depth) {
        return NGX_ERROR;
    }

    v = ngx_http_llm_tree_add(t, type);
    if (v == NULL) {
        return NGX_ERROR;
    }

    t->current = v;

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_tree_close(ngx_http_llm_tree_t *t)
{
    if (t->current == NULL) {
        return NGX_ERROR;
    }

    if (t->depth) {
        t->depth--;
    }

    if (t->unique_root && t->current->parent == NULL
        && t->current->type == NGX_HTTP_LLM_JSON_OBJECT
        && ngx_http_llm_tree_unique(t, t->current) != NGX_OK)
    {
        return NGX_ERROR;
    }

    t->current = t->current->parent;

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_llm_tree_name_cmp(const void *one, const void *two)
{
    int         rc;
    ngx_str_t  *a, *b;

    a = *(ngx_str_t **) one;
    b = *(ngx_str_t **) two;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));

    if (rc) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


/*
 * A request's members, each given once: with two of a name, the gateway
 * would read one (a guard, a translation) and a provider another. Sorted,
 * so that a root of many members costs n log n, not n squared.
 */

static ngx_int_t
ngx_http_llm_tree_unique(ngx_http_llm_tree_t *t, ngx_http_llm_json_t *obj)
{
    ngx_str_t            **names;
    ngx_uint_t             n, i;
    ngx_http_llm_json_t   *v;

    n = 0;

    for (v = obj->child; v; v = v->next) {
        n++;
    }

    if (n < 2) {
        return NGX_OK;
    }

    names = ngx_http_llm_arena_alloc(t->arena, n * sizeof(ngx_str_t *));
    if (names == NULL) {
        return NGX_ERROR;
    }

    i = 0;

    for (v = obj->child; v; v = v->next) {
        names[i++] = &v->key;
    }

    ngx_qsort(names, n, sizeof(ngx_str_t *), ngx_http_llm_tree_name_cmp);

    for (i = 1; i < n; i++) {
        if (names[i]->len == names[i - 1]->len
            && ngx_memcmp(names[i]->data, names[i - 1]->data, names[i]->len)
               == 0)
        {
            t->duplicate = *names[i];
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The scanner's tokens build the tree yajl's callbacks once built:
 * numbers as written, strings and keys decoded, whole from the sink,
 * members in order and duplicates kept.
 */

ngx_int_t
ngx_http_llm_tree_jscan(ngx_http_llm_tree_t *t, ngx_http_llm_jscan_t *js,
    ngx_uint_t token)
{
    ngx_str_t  value;

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_OBJECT:
        return ngx_http_llm_tree_open(t, NGX_HTTP_LLM_JSON_OBJECT);

    case NGX_HTTP_LLM_JSCAN_ARRAY:
        return ngx_http_llm_tree_open(t, NGX_HTTP_LLM_JSON_ARRAY);

    case NGX_HTTP_LLM_JSCAN_END:
        return ngx_http_llm_tree_close(t);

    case NGX_HTTP_LLM_JSCAN_TRUE:
        return ngx_http_llm_tree_scalar(t, NGX_HTTP_LLM_JSON_TRUE, NULL, 0);

    case NGX_HTTP_LLM_JSCAN_FALSE:
        return ngx_http_llm_tree_scalar(t, NGX_HTTP_LLM_JSON_FALSE, NULL, 0);

    case NGX_HTTP_LLM_JSCAN_NULL:
        return ngx_http_llm_tree_scalar(t, NGX_HTTP_LLM_JSON_NULL, NULL, 0);

    default:
        break;
    }

    if (ngx_http_llm_jscan_value(js, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (token) {

    case NGX_HTTP_LLM_JSCAN_KEY:
        return ngx_http_llm_tree_key(t, value.data, value.len);

    case NGX_HTTP_LLM_JSCAN_STRING:
        return ngx_http_llm_tree_scalar(t, NGX_HTTP_LLM_JSON_STRING,
                                        value.data, value.len);

    default: /* NGX_HTTP_LLM_JSCAN_NUMBER */
        return ngx_http_llm_tree_scalar(t, NGX_HTTP_LLM_JSON_NUMBER,
                                        value.data, value.len);
    }
}


ngx_int_t
ngx_http_llm_tree_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    return ngx_http_llm_tree_jscan(js->data, js, token);
}


/*
 * A document from a provider, by the scanner: values past its first bytes
 * whole from a sink, given back to the pool at once (large allocations),
 * so that a stream's events, parsed one by one, do not pile up.
 */

ngx_http_llm_json_t *
ngx_http_llm_json_parse(ngx_http_llm_arena_t *a, u_char *p, size_t len)
{
    ngx_int_t                   rc;
    ngx_http_llm_tree_t         t;
    ngx_http_llm_jscan_t        js;
    ngx_http_llm_jscan_sink_t   sink;

    ngx_http_llm_tree_init(&t, a);

    /* what providers send: bounded in depth and in values */
    t.max_depth = NGX_HTTP_LLM_PROVIDER_MAX_DEPTH;
    t.max_nodes = NGX_HTTP_LLM_PROVIDER_MAX_NODES;

    ngx_memzero(&sink, sizeof(ngx_http_llm_jscan_sink_t));
    sink.pool = a->pool;

    ngx_http_llm_jscan_init(&js, ngx_http_llm_tree_token, &t);
    js.sink = &sink;

    rc = ngx_http_llm_jscan_feed(&js, p, len);

    if (rc == NGX_OK) {
        rc = ngx_http_llm_jscan_finish(&js);
    }

    ngx_http_llm_jscan_sink_free(&sink);

    if (rc != NGX_OK || t.current != NULL) {
        return NULL;
    }

    return t.root;
}


ngx_uint_t
ngx_http_llm_json_is_object(u_char *p, size_t len)
{
    u_char                *last;
    ngx_http_llm_jscan_t   js;

    for (last = p + len; p < last; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            break;
        }
    }

    if (p == last || *p != '{') {
        return 0;
    }

    ngx_http_llm_jscan_init(&js, ngx_http_llm_json_any_token, NULL);

    return ngx_http_llm_jscan_feed(&js, p, last - p) == NGX_OK
           && ngx_http_llm_jscan_finish(&js) == NGX_OK;
}


static ngx_int_t
ngx_http_llm_json_any_token(ngx_http_llm_jscan_t *js, ngx_uint_t token)
{
    return NGX_OK;
}


ngx_http_llm_json_t *
ngx_http_llm_json_get(ngx_http_llm_json_t *obj, const char *key)
{
    size_t                len;
    ngx_http_llm_json_t  *v, *found;

    if (obj == NULL || obj->type != NGX_HTTP_LLM_JSON_OBJECT) {
        return NULL;
    }

    len = ngx_strlen(key);
    found = NULL;

    /* the last of a name given twice, as JSON.parse() and Python read it */

    for (v = obj->child; v; v = v->next) {
        if (v->key.len == len && ngx_strncmp(v->key.data, key, len) == 0) {
            found = v;
        }
    }

    return found;
}


ngx_str_t *
ngx_http_llm_json_str(ngx_http_llm_json_t *obj, const char *key)
{
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_json_get(obj, key);

    return ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING) ? &v->str : NULL;
}


int64_t
ngx_http_llm_json_int(ngx_http_llm_json_t *obj, const char *key)
{
    size_t                i;
    int64_t               n;
    ngx_http_llm_json_t  *v;

    v = ngx_http_llm_json_get(obj, key);

    if (!ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_NUMBER)
        || v->str.len == 0 || v->str.len > 18)
    {
        return -1;
    }

    n = 0;

    for (i = 0; i < v->str.len; i++) {
        if (v->str.data[i] < '0' || v->str.data[i] > '9') {
            return -1;
        }

        n = n * 10 + (v->str.data[i] - '0');
    }

    return n;
}


ngx_uint_t
ngx_http_llm_json_eq(ngx_http_llm_json_t *v, const char *s)
{
    size_t  len;

    if (!ngx_http_llm_json_is(v, NGX_HTTP_LLM_JSON_STRING)) {
        return 0;
    }

    len = ngx_strlen(s);

    return v->str.len == len && ngx_strncmp(v->str.data, s, len) == 0;
}


void
ngx_http_llm_jbuf_value(ngx_http_llm_jbuf_t *b, ngx_http_llm_json_t *v)
{
    ngx_http_llm_jbuf_value_without(b, v, NULL, 0);
}


/*
 * A tree written back, without the members named skip of the objects in
 * its first "levels" levels of containers (the value itself is level 1):
 * deeper objects, such as a schema's properties, keep theirs.
 */

void
ngx_http_llm_jbuf_value_without(ngx_http_llm_jbuf_t *b,
    ngx_http_llm_json_t *v, ngx_str_t *skip, ngx_uint_t levels)
{
    ngx_uint_t            n, inner;
    ngx_http_llm_json_t  *c;

    if (v == NULL) {
        ngx_http_llm_jbuf_lit(b, "null");
        return;
    }

    inner = levels ? levels - 1 : 0;

    switch (v->type) {

    case NGX_HTTP_LLM_JSON_NULL:
        ngx_http_llm_jbuf_lit(b, "null");
        return;

    case NGX_HTTP_LLM_JSON_FALSE:
        ngx_http_llm_jbuf_lit(b, "false");
        return;

    case NGX_HTTP_LLM_JSON_TRUE:
        ngx_http_llm_jbuf_lit(b, "true");
        return;

    case NGX_HTTP_LLM_JSON_NUMBER:
        ngx_http_llm_jbuf_raw(b, v->str.data, v->str.len);
        return;

    case NGX_HTTP_LLM_JSON_STRING:
        ngx_http_llm_jbuf_str(b, v->str.data, v->str.len);
        return;

    case NGX_HTTP_LLM_JSON_ARRAY:
        ngx_http_llm_jbuf_lit(b, "[");

        for (c = v->child; c; c = c->next) {
            ngx_http_llm_jbuf_value_without(b, c, skip, inner);

            if (c->next) {
                ngx_http_llm_jbuf_lit(b, ",");
            }
        }

        ngx_http_llm_jbuf_lit(b, "]");
        return;

    case NGX_HTTP_LLM_JSON_OBJECT:
        ngx_http_llm_jbuf_lit(b, "{");

        for (c = v->child, n = 0; c; c = c->next) {
            if (levels && c->key.len == skip->len
                && ngx_strncmp(c->key.data, skip->data, skip->len) == 0)
            {
                continue;
            }

            if (n++) {
                ngx_http_llm_jbuf_lit(b, ",");
            }

            ngx_http_llm_jbuf_str(b, c->key.data, c->key.len);
            ngx_http_llm_jbuf_lit(b, ":");
            ngx_http_llm_jbuf_value_without(b, c, skip, inner);
        }

        ngx_http_llm_jbuf_lit(b, "}");
        return;
    }
}


void
ngx_http_llm_jbuf_value_str(ngx_http_llm_jbuf_t *b, ngx_http_llm_json_t *v)
{
    ngx_http_llm_jbuf_t  tmp;

    ngx_http_llm_jbuf_init(&tmp, b->pool, 256);
    ngx_http_llm_jbuf_value(&tmp, v);

    if (tmp.error) {
        b->error = 1;
        return;
    }

    ngx_http_llm_jbuf_str(b, tmp.start, tmp.last - tmp.start);
    ngx_pfree(tmp.pool, tmp.start);
}


void
ngx_http_llm_jbuf_object(ngx_http_llm_jbuf_t *b, ngx_str_t *json)
{
    if (json && ngx_http_llm_json_is_object(json->data, json->len)) {
        ngx_http_llm_jbuf_raw(b, json->data, json->len);

    } else {
        ngx_http_llm_jbuf_lit(b, "{}");
    }
}
