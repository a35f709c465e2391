
/*
 * Gateway keys, teams and organisations: llm_key, llm_team and llm_org
 * blocks, and keys files an operator can change without touching
 * nginx.conf (read again on reload).
 *
 * Keys are kept only as SHA-256 digests: a client's key is hashed, looked
 * up by its digest, and the digests compared in constant time. The plain
 * key is never stored, logged or shown. Each worker remembers the keys
 * it authenticated by a keyed hash of them (the memo, below), so that a
 * key seen again costs a SipHash instead of a SHA-256.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_keys.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_cache.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_redis.h"
#include "ngx_http_llm_rules.h"
#include "ngx_http_llm_siphash.h"


static char *ngx_http_llm_entity_directive(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_llm_keys_file_line(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_llm_entity_attr(ngx_conf_t *cf,
    ngx_http_llm_entity_t *e, ngx_str_t *name, ngx_str_t *values,
    ngx_uint_t n, ngx_uint_t split);
static char *ngx_http_llm_entity_key(ngx_conf_t *cf,
    ngx_http_llm_entity_t *e, ngx_str_t *key);
static ngx_int_t ngx_http_llm_entity_add(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf, ngx_http_llm_entity_t *e);
static ngx_http_llm_entity_t *ngx_http_llm_entity_find(ngx_array_t *a,
    ngx_str_t *name);
static ngx_uint_t ngx_http_llm_glob(ngx_str_t *pattern, ngx_str_t *s);
static ngx_http_llm_entity_t **ngx_http_llm_key_slot(
    ngx_http_llm_main_conf_t *lmcf, u_char *digest);
static void ngx_http_llm_key_memo_cleanup(void *data);


static ngx_str_t  ngx_http_llm_entity_prefix[] = {
    ngx_string("key:"),
    ngx_string("team:"),
    ngx_string("org:")
};


typedef struct {
    ngx_http_llm_main_conf_t      *lmcf;
} ngx_http_llm_keys_file_ctx_t;


/*
 * The worker's memo of keys it authenticated: a key's SipHash-2-4-128
 * under a secret drawn when the worker starts, its length, and the
 * entity it authenticated to; never the key. A presented key whose tag
 * and length are in the memo is that entity's without a SHA-256.
 *
 * Why this is safe: an entry is made only after the key authenticated
 * by its SHA-256 digest, so another key is taken for it only if its tag
 * and length are the same: a collision of a 128-bit keyed PRF under a
 * secret no client sees (drawn from RAND_bytes, never derived from
 * anything a client can learn; tags never leave the worker), about
 * 2^-128 a try against each of the two entries a key is compared with.
 * Failures are not remembered, so unknown keys cannot fill it or evict
 * a valid key's entry; the entries are compared without an early exit.
 *
 * Only keys of the configuration (llm_key, llm_keys_file) are
 * remembered: their entities live as long as the cycle, and nothing
 * changes them within it (keys files are read again only by a reload,
 * which starts new workers with a new memo). Keys found in Redis are
 * not: they can be changed or deleted at run time, and their entities
 * are freed when no request holds them; they keep their own cache
 * (ngx_http_llm_redis_keys.c).
 */

/*
 * Sets of 2 entries: as many as the configuration has keys, a power of
 * two, at least 512 (1,024 entries) and at most 16,384 (32,768 entries,
 * 1 MiB a worker); more keys share the entries, the most recent kept
 */

#define NGX_HTTP_LLM_KEY_MEMO_MIN   512
#define NGX_HTTP_LLM_KEY_MEMO_MAX   16384


typedef struct {
    uint64_t                       tag[2];
    size_t                         len;
    ngx_http_llm_entity_t         *entity;         /* NULL: empty */
} ngx_http_llm_key_memo_entry_t;


typedef struct {
    /* the configuration the entries belong to: no other uses them */
    ngx_http_llm_main_conf_t      *lmcf;
    ngx_http_llm_key_memo_entry_t *sets;           /* [nsets][2] */
    ngx_uint_t                     mask;           /* nsets - 1 */
    uint64_t                       secret[2];
} ngx_http_llm_key_memo_t;


static ngx_http_llm_key_memo_t  ngx_http_llm_key_memo;


/* llm_key name { ... }, llm_team name { ... }, llm_org name { ... } */

char *
ngx_http_llm_entity_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    char                   *rv;
    ngx_str_t              *value;
    ngx_conf_t              save;
    ngx_http_llm_entity_t  *e;

    value = cf->args->elts;

    e = ngx_http_llm_pcalloc_line(cf->pool, sizeof(ngx_http_llm_entity_t));
    if (e == NULL) {
        return NGX_CONF_ERROR;
    }

    e->kind = (cmd->name.data[4] == 'k') ? NGX_HTTP_LLM_KEY
              : (cmd->name.data[4] == 't') ? NGX_HTTP_LLM_TEAM
                                           : NGX_HTTP_LLM_ORG;
    e->name = value[1];
    e->file_name = cf->conf_file->file.name.data;
    e->line = cf->conf_file->line;

    save = *cf;
    cf->handler = ngx_http_llm_entity_directive;
    cf->handler_conf = (char *) e;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (ngx_http_llm_entity_add(cf, lmcf, e) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_entity_directive(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    ngx_http_llm_entity_t  *e = (ngx_http_llm_entity_t *) conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs a value", &value[0]);
        return NGX_CONF_ERROR;
    }

    return ngx_http_llm_entity_attr(cf, e, &value[0], &value[1],
                                    cf->args->nelts - 1, 0);
}


/*
 * llm_keys_file path: one key a line, nginx syntax,
 *
 *     alice  sha256:2c26b4...  team=eng rpm=60 budget=10usd/day;
 *     bob    sk-plain-key      models=gpt-4o,claude-sonnet-4-5;
 */

char *
ngx_http_llm_keys_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    char                          *rv;
    ngx_str_t                     *value, file;
    ngx_conf_t                     save;
    ngx_http_llm_keys_file_ctx_t   fctx;

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fctx.lmcf = lmcf;

    save = *cf;
    cf->handler = ngx_http_llm_keys_file_line;
    cf->handler_conf = (char *) &fctx;

    rv = ngx_conf_parse(cf, &file);

    *cf = save;

    return rv;
}


static char *
ngx_http_llm_keys_file_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_llm_keys_file_ctx_t  *fctx = (ngx_http_llm_keys_file_ctx_t *)
                                          conf;

    char                   *rv;
    u_char                 *eq;
    ngx_str_t              *value, name;
    ngx_uint_t              i;
    ngx_http_llm_entity_t  *e;

    value = cf->args->elts;

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a key line needs a name and a key");
        return NGX_CONF_ERROR;
    }

    e = ngx_http_llm_pcalloc_line(cf->pool, sizeof(ngx_http_llm_entity_t));
    if (e == NULL) {
        return NGX_CONF_ERROR;
    }

    e->kind = NGX_HTTP_LLM_KEY;
    e->name = value[0];
    e->file_name = cf->conf_file->file.name.data;
    e->line = cf->conf_file->line;

    rv = ngx_http_llm_entity_key(cf, e, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (eq == NULL || eq == value[i].data) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key attribute \"%V\": "
                               "it must be name=value", &value[i]);
            return NGX_CONF_ERROR;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;

        value[i].len -= name.len + 1;
        value[i].data = eq + 1;

        rv = ngx_http_llm_entity_attr(cf, e, &name, &value[i], 1, 1);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (ngx_http_llm_entity_add(cf, fctx->lmcf, e) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* an attribute of an llm_key, llm_team or llm_org block, or a keys file */

static char *
ngx_http_llm_entity_attr(ngx_conf_t *cf, ngx_http_llm_entity_t *e,
    ngx_str_t *name, ngx_str_t *values, ngx_uint_t n, ngx_uint_t split)
{
    u_char  err[256];

    if (name->len == 3 && ngx_strncmp(name->data, "key", 3) == 0
        && e->kind == NGX_HTTP_LLM_KEY && !split)
    {
        if (n != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" takes one value", name);
            return NGX_CONF_ERROR;
        }

        if (e->has_digest) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is duplicate for \"%V\"", name,
                               &e->name);
            return NGX_CONF_ERROR;
        }

        return ngx_http_llm_entity_key(cf, e, &values[0]);
    }

    if (ngx_http_llm_entity_attr_parse(cf->pool, e, name, values, n,
                                       split ? NGX_HTTP_LLM_ATTR_LISTS : 0,
                                       err, sizeof(err))
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The attributes every source of keys shares (llm_key blocks, keys files,
 * Redis): team or org, models, budget (budget1, budget2, ... too), rpm,
 * tpm, parallel. NGX_ERROR: why is in err; NGX_DECLINED: an unknown
 * attribute, ignored with NGX_HTTP_LLM_ATTR_LENIENT.
 */

ngx_int_t
ngx_http_llm_entity_attr_parse(ngx_pool_t *pool, ngx_http_llm_entity_t *e,
    ngx_str_t *name, ngx_str_t *values, ngx_uint_t n, ngx_uint_t flags,
    u_char *err, size_t len)
{
    char                          *rv;
    u_char                        *p, *s, *end, *comma, *last, *star,
                                   msg[192];
    ngx_int_t                      num;
    ngx_str_t                      item;
    ngx_str_t                     *text;
    ngx_uint_t                     i, j, *limit, budget;
    ngx_http_llm_model_pattern_t  *glob;

#define ngx_http_llm_is(s)                                                   \
    (name->len == sizeof(s) - 1 && ngx_strncmp(name->data, s, name->len) == 0)
#define ngx_http_llm_err(...)                                                \
    *ngx_snprintf(err, len - 1, __VA_ARGS__) = '\0'

    if ((ngx_http_llm_is("team") && e->kind == NGX_HTTP_LLM_KEY)
        || (ngx_http_llm_is("org") && e->kind == NGX_HTTP_LLM_TEAM))
    {
        if (n != 1) {
            goto one_value;
        }

        if (e->parent_name.len) {
            goto duplicate;
        }

        e->parent_name = values[0];
        return NGX_OK;
    }

    for (j = 6; j < name->len && name->len > 6; j++) {
        if (name->data[j] < '0' || name->data[j] > '9') {
            break;
        }
    }

    budget = name->len >= 6 && ngx_strncmp(name->data, "budget", 6) == 0
             && j == name->len;

    if (ngx_http_llm_is("models") || budget) {

        if (!budget && e->models) {
            goto duplicate;
        }

        if (!budget) {
            e->models = ngx_array_create(pool, 4,
                                         sizeof(ngx_http_llm_model_pattern_t));
            if (e->models == NULL) {
                ngx_http_llm_err("out of memory");
                return NGX_ERROR;
            }
        }

        if (budget && n != 1) {
            goto one_value;
        }

        /* a list: of values, or in a value with commas */

        for (i = 0; i < n; i++) {
            p = values[i].data;
            last = p + values[i].len;

            while (p < last) {
                comma = (flags & NGX_HTTP_LLM_ATTR_LISTS)
                        ? ngx_strlchr(p, last, ',') : NULL;
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

                if (!budget) {
                    glob = ngx_array_push(e->models);
                    if (glob == NULL) {
                        ngx_http_llm_err("out of memory");
                        return NGX_ERROR;
                    }

                    glob->glob = item;
                    glob->regex = NULL;
                    glob->prefix = 0;

                    if (item.data[0] != '~') {
                        /* the common "gpt-4o*": one comparison */

                        star = memchr(item.data, '*', item.len);

                        if (item.len > 1
                            && star == item.data + item.len - 1)
                        {
                            glob->prefix = item.len - 1;
                        }

                        continue;
                    }

                    glob->regex = ngx_http_llm_regex_name(pool, &item, msg,
                                                          sizeof(msg));
                    if (glob->regex == NULL) {
                        ngx_http_llm_err("invalid regex \"%V\" in "
                                         "\"models\": %s", &item, msg);
                        return NGX_ERROR;
                    }

                    continue;
                }

                if (e->nbudgets == NGX_HTTP_LLM_MAX_BUDGETS) {
                    ngx_http_llm_err("more than %d budgets for \"%V\"",
                                     NGX_HTTP_LLM_MAX_BUDGETS, &e->name);
                    return NGX_ERROR;
                }

                rv = ngx_http_llm_parse_budget(&item,
                                               &e->budgets[e->nbudgets]);
                if (rv != NGX_CONF_OK) {
                    ngx_http_llm_err("invalid budget \"%V\": %s", &item, rv);
                    return NGX_ERROR;
                }

                e->nbudgets++;
            }
        }

        return NGX_OK;
    }

    text = NULL;

    if (ngx_http_llm_is("rpm")) {
        limit = &e->rpm;
        text = &e->rpm_text;

    } else if (ngx_http_llm_is("tpm")) {
        limit = &e->tpm;
        text = &e->tpm_text;

    } else if (ngx_http_llm_is("parallel")) {
        limit = &e->parallel;

    } else if (ngx_http_llm_is("guard")
               && !(flags & NGX_HTTP_LLM_ATTR_LENIENT))
    {
        /*
         * configured entities only: a policy is known when bodies are
         * read; keys made in Redis take their team's
         */

        if (n != 1) {
            goto one_value;
        }

        if (e->guard_name.len) {
            goto duplicate;
        }

        e->guard_name = values[0];
        return NGX_OK;

    } else if (flags & NGX_HTTP_LLM_ATTR_LENIENT) {
        /* fields of later versions, or the operator's own */
        return NGX_DECLINED;

    } else {
        ngx_http_llm_err("unknown attribute \"%V\" of \"%V\"", name,
                         &e->name);
        return NGX_ERROR;
    }

    if (n != 1) {
        goto one_value;
    }

    if (*limit) {
        goto duplicate;
    }

    num = ngx_atoi(values[0].data, values[0].len);

    if (num == NGX_ERROR) {
        ngx_http_llm_err("invalid %V \"%V\": it must be a number", name,
                         &values[0]);
        return NGX_ERROR;
    }

    /* 0: no limit, wherever the key comes from */

    *limit = num;

    if (text && num) {
        /* x-ratelimit-limit-*'s value, written once here, not a request */

        text->data = ngx_pnalloc(pool, NGX_INT_T_LEN);
        if (text->data == NULL) {
            ngx_http_llm_err("out of memory");
            return NGX_ERROR;
        }

        text->len = ngx_sprintf(text->data, "%i", num) - text->data;
    }

    return NGX_OK;

one_value:

    ngx_http_llm_err("\"%V\" takes one value", name);
    return NGX_ERROR;

duplicate:

    ngx_http_llm_err("\"%V\" is duplicate for \"%V\"", name, &e->name);
    return NGX_ERROR;

#undef ngx_http_llm_is
#undef ngx_http_llm_err
}


/* the key as its digest: "sha256:<64 hex digits>", or the key itself */

static char *
ngx_http_llm_entity_key(ngx_conf_t *cf, ngx_http_llm_entity_t *e,
    ngx_str_t *key)
{
    ngx_int_t   hi, lo;
    ngx_uint_t  i;

    if (key->len > 7 && ngx_strncmp(key->data, "sha256:", 7) == 0) {

        if (key->len != 7 + 64) {
            goto invalid;
        }

        for (i = 0; i < 32; i++) {
            hi = ngx_hextoi(key->data + 7 + 2 * i, 1);
            lo = ngx_hextoi(key->data + 8 + 2 * i, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                goto invalid;
            }

            e->digest[i] = (u_char) (hi << 4 | lo);
        }

    } else {
        if (key->len < 8) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the key of \"%V\" is shorter than 8 "
                               "characters", &e->name);
            return NGX_CONF_ERROR;
        }

        SHA256(key->data, key->len, e->digest);

        /* the plain key is not kept: wipe it from the configuration */
        OPENSSL_cleanse(key->data, key->len);
    }

    e->has_digest = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid key digest for \"%V\": it must be "
                       "sha256: and 64 hex digits", &e->name);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_llm_entity_add(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf,
    ngx_http_llm_entity_t *e)
{
    u_char                  *p;
    ngx_str_t               *prefix;
    ngx_array_t             *a;
    ngx_http_llm_entity_t  **pe, *other;

    a = (e->kind == NGX_HTTP_LLM_KEY) ? &lmcf->keys
        : (e->kind == NGX_HTTP_LLM_TEAM) ? &lmcf->teams : &lmcf->orgs;

    other = ngx_http_llm_entity_find(a, &e->name);

    if (other) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate %s \"%V\", "
                           "first defined in %s:%ui",
                           e->kind == NGX_HTTP_LLM_KEY ? "key"
                           : e->kind == NGX_HTTP_LLM_TEAM ? "team" : "org",
                           &e->name, other->file_name, other->line);
        return NGX_ERROR;
    }

    if (e->kind == NGX_HTTP_LLM_KEY && !e->has_digest) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_key \"%V\" has no \"key\"", &e->name);
        return NGX_ERROR;
    }

    prefix = &ngx_http_llm_entity_prefix[e->kind];

    e->node_name.len = prefix->len + e->name.len;
    e->node_name.data = ngx_pnalloc(cf->pool, e->node_name.len);
    if (e->node_name.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(e->node_name.data, prefix->data, prefix->len);
    ngx_memcpy(p, e->name.data, e->name.len);

    e->node_hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_COUNTER,
                                          &e->node_name);
    e->spend_hash = ngx_http_llm_node_hash(NGX_HTTP_LLM_NODE_SPEND,
                                           &e->node_name);

    pe = ngx_array_push(a);
    if (pe == NULL) {
        return NGX_ERROR;
    }

    *pe = e;

    return NGX_OK;
}


static ngx_http_llm_entity_t *
ngx_http_llm_entity_find(ngx_array_t *a, ngx_str_t *name)
{
    ngx_uint_t               i;
    ngx_http_llm_entity_t  **e;

    e = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (e[i]->name.len == name->len
            && ngx_strncmp(e[i]->name.data, name->data, name->len) == 0)
        {
            return e[i];
        }
    }

    return NULL;
}


/* after the http block: teams and organisations, the hash of digests */

ngx_int_t
ngx_http_llm_init_keys(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_uint_t                i, k, size;
    ngx_array_t              *parents;
    ngx_http_llm_entity_t   **e, **slot;
    ngx_array_t              *lists[2];

    if (ngx_http_llm_guard_entities(cf, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    lists[0] = &lmcf->keys;
    lists[1] = &lmcf->teams;

    for (k = 0; k < 2; k++) {
        parents = (k == 0) ? &lmcf->teams : &lmcf->orgs;
        e = lists[k]->elts;

        for (i = 0; i < lists[k]->nelts; i++) {
            if (e[i]->parent_name.len == 0) {
                continue;
            }

            e[i]->parent = ngx_http_llm_entity_find(parents,
                                                    &e[i]->parent_name);
            if (e[i]->parent == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"%V\" in %s:%ui names unknown %s \"%V\"",
                              &e[i]->name, e[i]->file_name, e[i]->line,
                              k == 0 ? "llm_team" : "llm_org",
                              &e[i]->parent_name);
                return NGX_ERROR;
            }
        }
    }

    /*
     * An open-addressed table of the digests, at most half full: a lookup
     * is one probe or two and a compare of 32 bytes, where ngx_hash_t
     * needed the digest in hex, hashed and compared byte by byte
     */

    for (size = 16; size < 2 * lmcf->keys.nelts; size *= 2) {
        /* void */
    }

    lmcf->keys_table = ngx_pcalloc(cf->pool,
                                   size * sizeof(ngx_http_llm_entity_t *));
    if (lmcf->keys_table == NULL) {
        return NGX_ERROR;
    }

    lmcf->keys_mask = size - 1;

    e = lmcf->keys.elts;

    for (i = 0; i < lmcf->keys.nelts; i++) {
        slot = ngx_http_llm_key_slot(lmcf, e[i]->digest);

        if (*slot) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "key \"%V\" in %s:%ui is the same as key \"%V\" "
                          "in %s:%ui", &e[i]->name, e[i]->file_name,
                          e[i]->line, &(*slot)->name, (*slot)->file_name,
                          (*slot)->line);
            return NGX_ERROR;
        }

        *slot = e[i];
    }

    return NGX_OK;
}


/*
 * The slot of a digest: its entity's, or the empty one where it would
 * go. The digest is SHA-256 of the key, so its first bytes are as good
 * an index as any hash of them; a client's digests are never inserted,
 * so a client cannot lengthen the runs a lookup walks.
 */

static ngx_http_llm_entity_t **
ngx_http_llm_key_slot(ngx_http_llm_main_conf_t *lmcf, u_char *digest)
{
    uint64_t                 index;
    ngx_http_llm_entity_t  **slot;

    ngx_memcpy(&index, digest, sizeof(uint64_t));

    for ( ;; ) {
        slot = &lmcf->keys_table[index & lmcf->keys_mask];

        if (*slot == NULL || ngx_memcmp((*slot)->digest, digest, 32) == 0) {
            return slot;
        }

        index++;
    }
}


/*
 * A worker's memo, from the cycle's pool: it goes with the cycle, and a
 * process that keeps running after a reload (master_process off, where
 * init_process is not called again) does not use it for the new one
 */

ngx_int_t
ngx_http_llm_keys_init_process(ngx_cycle_t *cycle,
    ngx_http_llm_main_conf_t *lmcf)
{
    ngx_uint_t                nsets;
    ngx_pool_cleanup_t       *cln;
    ngx_http_llm_key_memo_t  *memo;

    memo = &ngx_http_llm_key_memo;

    if (lmcf->keys.nelts == 0 || memo->sets) {
        return NGX_OK;
    }

    for (nsets = NGX_HTTP_LLM_KEY_MEMO_MIN;
         nsets < lmcf->keys.nelts && nsets < NGX_HTTP_LLM_KEY_MEMO_MAX;
         nsets *= 2)
    {
        /* void */
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    memo->sets = ngx_pcalloc(cycle->pool,
                             nsets * 2
                             * sizeof(ngx_http_llm_key_memo_entry_t));
    if (memo->sets == NULL) {
        return NGX_ERROR;
    }

    memo->mask = nsets - 1;

    cln->handler = ngx_http_llm_key_memo_cleanup;
    cln->data = memo;

    if (RAND_bytes((u_char *) memo->secret, sizeof(memo->secret)) != 1) {
        /* keys are still checked, each by its SHA-256 */
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "llm: RAND_bytes() failed: authenticated keys are "
                      "not remembered");
        memo->sets = NULL;
        return NGX_OK;
    }

    memo->lmcf = lmcf;

    return NGX_OK;
}


static void
ngx_http_llm_key_memo_cleanup(void *data)
{
    ngx_http_llm_key_memo_t  *memo = data;

    OPENSSL_cleanse(memo->secret, sizeof(memo->secret));
    memo->sets = NULL;
    memo->lmcf = NULL;
}


/*
 * The client's key, from "Authorization: Bearer" as OpenAI clients send
 * it, or "x-api-key" as Anthropic clients may: the entity it belongs to,
 * in ctx->key. NGX_DECLINED: the request has been answered with 401 (or
 * 503). NGX_AGAIN: the key is looked up in Redis, and ctx->timer, set up
 * by the caller, is posted when the answer is in; then call again.
 */

ngx_int_t
ngx_http_llm_authenticate(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    u_char                         *p, *last;
    ngx_str_t                       key;
    uint64_t                        tag[2];
    ngx_uint_t                      i;
    ngx_table_elt_t                *h;
    ngx_http_llm_entity_t          *e;
    ngx_http_llm_key_memo_t        *memo;
    ngx_http_llm_main_conf_t       *lmcf;
    ngx_http_llm_key_memo_entry_t  *set;
    u_char                          digest[32], hex[64];

    ngx_str_null(&key);

    if (r->headers_in.authorization) {
        p = r->headers_in.authorization->value.data;
        last = p + r->headers_in.authorization->value.len;

        /* "Bearer " in any case, without a call a byte */

        if (last - p > 7
            && (p[0] | 0x20) == 'b' && (p[1] | 0x20) == 'e'
            && (p[2] | 0x20) == 'a' && (p[3] | 0x20) == 'r'
            && (p[4] | 0x20) == 'e' && (p[5] | 0x20) == 'r' && p[6] == ' ')
        {
            for (p += 7; p < last && *p == ' '; p++) { /* void */ }

            key.data = p;
            key.len = last - p;
        }
    }

    if (key.len == 0) {
        h = ngx_http_llm_find_header(&r->headers_in.headers, "x-api-key");

        if (h) {
            key = h->value;
        }
    }

    if (key.len == 0) {
        (void) ngx_http_llm_fail(r, NGX_HTTP_UNAUTHORIZED, "missing_api_key",
                                 NULL, "You didn't provide an API key. "
                                 "Send it in an Authorization header using "
                                 "Bearer auth (Authorization: Bearer "
                                 "YOUR_KEY), or in an x-api-key header.");
        return NGX_DECLINED;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_module);
    memo = &ngx_http_llm_key_memo;
    set = NULL;

    if (memo->lmcf == lmcf) {
        ngx_http_llm_siphash128(memo->secret, key.data, key.len, tag);

        set = &memo->sets[2 * (tag[0] & memo->mask)];

        /* all 128 bits of the tag compared, without an early exit */

        for (i = 0; i < 2; i++) {
            if (((set[i].tag[0] ^ tag[0]) | (set[i].tag[1] ^ tag[1])) == 0
                && set[i].len == key.len && set[i].entity)
            {
                ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "llm: key from the memo");
                ctx->key = set[i].entity;
                return NGX_OK;
            }
        }
    }

    if (ngx_http_llm_sha256(key.data, key.len, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    e = *ngx_http_llm_key_slot(lmcf, digest);

    if (e && set && CRYPTO_memcmp(e->digest, digest, 32) == 0) {

        /* a key of the configuration: remembered, the older entry out */

        set[1] = set[0];
        set[0].tag[0] = tag[0];
        set[0].tag[1] = tag[1];
        set[0].len = key.len;
        set[0].entity = e;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llm: key remembered");
    }

    if (e == NULL && ngx_http_llm_redis_keys(lmcf)) {

        /* not configured: perhaps a key created at run time, in Redis */

        ngx_hex_dump(hex, digest, 32);

        switch (ngx_http_llm_redis_find_key(r, &ctx->timer, digest, hex, &e)) {

        case NGX_OK:
            break;

        case NGX_AGAIN:
            return NGX_AGAIN;

        case NGX_BUSY:
            h = ngx_list_push(&r->headers_out.headers);
            if (h) {
                h->hash = 1;
                ngx_str_set(&h->key, "Retry-After");
                ngx_str_set(&h->value, "1");
            }

            (void) ngx_http_llm_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "key_store_unavailable", NULL,
                                     "The API key cannot be verified now: "
                                     "the key store is unavailable. Retry "
                                     "later.");
            return NGX_DECLINED;

        default:
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DECLINED;
        }
    }

    if (e == NULL || CRYPTO_memcmp(e->digest, digest, 32) != 0) {
        (void) ngx_http_llm_fail(r, NGX_HTTP_UNAUTHORIZED, "invalid_api_key",
                                 NULL, "Incorrect API key provided.");
        return NGX_DECLINED;
    }

    ctx->key = e;

    return NGX_OK;
}


/* a key may use a model if its own list and its team's allow it */

ngx_int_t
ngx_http_llm_model_allowed(ngx_http_llm_entity_t *e, ngx_str_t *model)
{
    ngx_uint_t                     i;
    ngx_http_llm_model_pattern_t  *glob;

    for ( /* void */ ; e; e = e->parent) {

        if (e->models == NULL) {
            continue;
        }

        glob = e->models->elts;

        for (i = 0; i < e->models->nelts; i++) {
            /* a regex's match limit is no match: refusing is safe */
            if (glob[i].prefix
                ? model->len >= glob[i].prefix
                  && ngx_memcmp(model->data, glob[i].glob.data,
                                glob[i].prefix) == 0
                : glob[i].regex
                ? ngx_http_llm_regex_exec(glob[i].regex, model->data,
                                          model->len) == NGX_OK
                : ngx_http_llm_glob(&glob[i].glob, model))
            {
                break;
            }
        }

        if (i == e->models->nelts) {
            return 0;
        }
    }

    return 1;
}


/* '*' matches any text, everything else itself */

static ngx_uint_t
ngx_http_llm_glob(ngx_str_t *pattern, ngx_str_t *s)
{
    u_char  *p, *pe, *q, *qe, *star_p, *star_q;

    p = pattern->data;
    pe = p + pattern->len;
    q = s->data;
    qe = q + s->len;
    star_p = NULL;
    star_q = NULL;

    while (q < qe) {
        if (p < pe && *p == '*') {
            star_p = ++p;
            star_q = q;

        } else if (p < pe && *p == *q) {
            p++;
            q++;

        } else if (star_p) {
            p = star_p;
            q = ++star_q;

        } else {
            return 0;
        }
    }

    while (p < pe && *p == '*') {
        p++;
    }

    return p == pe;
}
