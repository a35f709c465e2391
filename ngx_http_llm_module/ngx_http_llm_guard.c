
/*
 * Guard policies: "llm_guard NAME { deny RULE REGEX; ... }" compiled at
 * configuration time, "llm_guard_policy NAME" where they apply.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_error.h"


static char *ngx_http_llm_guard_rule(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static ngx_http_llm_guard_t *ngx_http_llm_guard_find(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name);
static void ngx_http_llm_guard_cleanup(void *data);
static char *ngx_http_llm_guard_resolve(ngx_conf_t *cf,
    ngx_http_llm_loc_conf_t *conf);
static ngx_int_t ngx_http_llm_guard_walk(ngx_http_llm_guard_t *guard,
    ngx_http_llm_json_t *node, ngx_uint_t text, ngx_uint_t *rule);
static ngx_uint_t ngx_http_llm_guard_is_text(ngx_str_t *key);


static ngx_http_llm_guard_t *
ngx_http_llm_guard_find(ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_http_llm_guard_t  **g;

    g = lmcf->guards.elts;

    for (i = 0; i < lmcf->guards.nelts; i++) {
        if (g[i]->name.len == name->len
            && ngx_strncmp(g[i]->name.data, name->data, name->len) == 0)
        {
            return g[i];
        }
    }

    return NULL;
}


char *
ngx_http_llm_guard_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    u_char                 err[256];
    char                  *rv;
    ngx_str_t             *value, *placeholders;
    ngx_conf_t             save;
    ngx_pool_cleanup_t    *cln;
    ngx_http_llm_guard_t  *guard, **g;

    value = cf->args->elts;

    guard = ngx_http_llm_guard_find(lmcf, &value[1]);

    if (guard) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate guard policy \"%V\", first defined "
                           "in %s:%ui", &value[1], guard->file, guard->line);
        return NGX_CONF_ERROR;
    }

    guard = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_guard_t));
    if (guard == NULL) {
        return NGX_CONF_ERROR;
    }

    guard->name = value[1];
    guard->file = cf->conf_file->file.name.data;
    guard->line = cf->conf_file->line;

    if (ngx_array_init(&guard->rule_names, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&guard->patterns, cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_llm_guard_rule;
    cf->handler_conf = (char *) guard;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (guard->patterns.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\" has no rules", &guard->name);
        return NGX_CONF_ERROR;
    }

    /* a request refused names the rule: "placeholders" are the names */
    placeholders = guard->rule_names.elts;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_llm_guard_cleanup;
    cln->data = guard;

    if (ngx_http_llm_redact_compile(cf->pool, &guard->deny,
                                    guard->patterns.elts, placeholders,
                                    guard->patterns.nelts, 0, err,
                                    sizeof(err))
        != NGX_OK)
    {
        if (guard->deny.error_rule
            && guard->deny.error_offset != (size_t) NGX_ERROR)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "guard policy \"%V\", rule \"%V\": %s at "
                               "offset %uz of its pattern", &guard->name,
                               &placeholders[guard->deny.error_rule - 1],
                               err, guard->deny.error_offset);

        } else if (guard->deny.error_rule) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "guard policy \"%V\", rule \"%V\": %s",
                               &guard->name,
                               &placeholders[guard->deny.error_rule - 1],
                               err);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "guard policy \"%V\": %s", &guard->name, err);
        }

        return NGX_CONF_ERROR;
    }

    g = ngx_array_push(&lmcf->guards);
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    *g = guard;

    return NGX_CONF_OK;
}


/* "deny RULE REGEX;" inside llm_guard */

static char *
ngx_http_llm_guard_rule(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_llm_guard_t *guard = (ngx_http_llm_guard_t *) conf;

    ngx_str_t   *value, *name, *pattern, *names;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (cf->args->nelts != 3
        || value[0].len != 4 || ngx_strncmp(value[0].data, "deny", 4) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid line in guard policy \"%V\": "
                           "\"deny RULE REGEX;\" is expected", &guard->name);
        return NGX_CONF_ERROR;
    }

    if (guard->patterns.nelts == NGX_HTTP_LLM_GUARD_MAX_RULES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\" has more than %d rules",
                           &guard->name, NGX_HTTP_LLM_GUARD_MAX_RULES);
        return NGX_CONF_ERROR;
    }

    names = guard->rule_names.elts;

    for (i = 0; i < guard->rule_names.nelts; i++) {
        if (names[i].len == value[1].len
            && ngx_strncmp(names[i].data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate rule \"%V\" in guard policy \"%V\"",
                               &value[1], &guard->name);
            return NGX_CONF_ERROR;
        }
    }

    name = ngx_array_push(&guard->rule_names);
    pattern = ngx_array_push(&guard->patterns);

    if (name == NULL || pattern == NULL) {
        return NGX_CONF_ERROR;
    }

    *name = value[1];
    *pattern = value[2];

    return NGX_CONF_OK;
}


static void
ngx_http_llm_guard_cleanup(void *data)
{
    ngx_http_llm_guard_t  *guard = data;

    ngx_http_llm_redact_free(&guard->deny);
}


/* "llm_guard_policy NAME | off": resolved when locations are merged */

char *
ngx_http_llm_guard_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->guard_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    llcf->guard_name = value[1];
    llcf->guard_file = cf->conf_file->file.name.data;
    llcf->guard_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


char *
ngx_http_llm_guard_merge(ngx_conf_t *cf, ngx_http_llm_loc_conf_t *prev,
    ngx_http_llm_loc_conf_t *conf)
{
    /* the http level's own conf is never merged: resolved here */
    if (ngx_http_llm_guard_resolve(cf, prev) != NGX_CONF_OK
        || ngx_http_llm_guard_resolve(cf, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->guard_name.data == NULL) {
        conf->guard = prev->guard;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_guard_resolve(ngx_conf_t *cf, ngx_http_llm_loc_conf_t *conf)
{
    ngx_http_llm_main_conf_t  *lmcf;

    if (conf->guard_name.data == NULL || conf->guard_resolved) {
        return NGX_CONF_OK;
    }

    conf->guard_resolved = 1;

    if (conf->guard_name.len == 3
        && ngx_strncmp(conf->guard_name.data, "off", 3) == 0)
    {
        conf->guard = NULL;
        return NGX_CONF_OK;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llm_module);

    conf->guard = ngx_http_llm_guard_find(lmcf, &conf->guard_name);

    if (conf->guard) {
        return NGX_CONF_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "unknown guard policy \"%V\" in %s:%ui",
                  &conf->guard_name, conf->guard_file, conf->guard_line);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_llm_guard_request(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_uint_t                rule;
    ngx_str_t                *names;
    ngx_http_llm_json_t      *member;
    ngx_http_llm_guard_t     *guard;
    ngx_http_llm_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);
    guard = llcf->guard;

    if (guard == NULL || ctx->tree == NULL
        || ctx->tree->type != NGX_HTTP_LLM_JSON_OBJECT)
    {
        return NGX_OK;
    }

    /* the messages, and Anthropic's system prompt */

    for (member = ctx->tree->child; member; member = member->next) {

        if (!(member->key.len == 8
              && ngx_strncmp(member->key.data, "messages", 8) == 0)
            && !(member->key.len == 6
                 && ngx_strncmp(member->key.data, "system", 6) == 0))
        {
            continue;
        }

        rc = ngx_http_llm_guard_walk(guard, member, member->key.len == 6,
                                     &rule);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            names = guard->rule_names.elts;

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "llm: request refused by guard policy \"%V\", "
                          "rule \"%V\"", &guard->name, &names[rule]);

            return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                     "content_policy_violation", NULL,
                                     "The request was refused by the guard "
                                     "policy `%V` (rule `%V`).",
                                     &guard->name, &names[rule]);
        }
    }

    return NGX_OK;
}


/*
 * The text of a message: strings under "content", "text" (content
 * parts), "arguments" (tool calls) and a string system prompt; depth is
 * bounded by the body parser's limit
 */

static ngx_int_t
ngx_http_llm_guard_walk(ngx_http_llm_guard_t *guard,
    ngx_http_llm_json_t *node, ngx_uint_t text, ngx_uint_t *rule)
{
    int                   rc;
    ngx_int_t             found;
    ngx_uint_t            i, is_text;
    ngx_http_llm_json_t  *child;

    if (node->type == NGX_HTTP_LLM_JSON_STRING) {

        if (!text) {
            return NGX_OK;
        }

        for (i = 0; i < guard->deny.nrules; i++) {
            rc = pcre2_match(guard->deny.codes[i], node->str.data,
                             node->str.len, 0, 0, guard->deny.match, NULL);

            /* a match, or a match limit: refusing is the safe side */
            if (rc != PCRE2_ERROR_NOMATCH) {
                *rule = i;
                return NGX_DECLINED;
            }
        }

        return NGX_OK;
    }

    for (child = node->child; child; child = child->next) {

        /* an array's elements are what the array is; members by name */
        is_text = (node->type == NGX_HTTP_LLM_JSON_ARRAY)
                  ? text : ngx_http_llm_guard_is_text(&child->key);

        found = ngx_http_llm_guard_walk(guard, child, is_text, rule);
        if (found != NGX_OK) {
            return found;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_llm_guard_is_text(ngx_str_t *key)
{
    switch (key->len) {

    case 4:
        return ngx_strncmp(key->data, "text", 4) == 0;

    case 7:
        return ngx_strncmp(key->data, "content", 7) == 0;

    case 9:
        return ngx_strncmp(key->data, "arguments", 9) == 0;

    default:
        return 0;
    }
}
