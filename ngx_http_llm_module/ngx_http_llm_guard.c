
/*
 * Guard policies: "llm_guard NAME { ACTION RULE REGEX ...; ... }" compiled
 * at configuration time, "llm_guard_policy NAME" where they apply. The
 * rules of a policy are compiled in sets, one per way they are used:
 * those that refuse a request, those one of which a request must match,
 * those that redact or log a request's texts, and all those that read
 * answers (with the streamed-redaction engine, ngx_http_llm_redact.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llm_guard.h"
#include "ngx_http_llm_guard_detect.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_json.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_error.h"
#include "ngx_http_llm_embeddings.h"


typedef struct {
    ngx_http_request_t            *r;
    ngx_http_llm_ctx_t            *ctx;
    ngx_http_llm_guard_t          *guard;
    ngx_uint_t                     rule;      /* a deny rule that matched */
    unsigned                       allowed:1;
    unsigned                       failed:1;  /* matching failed: refuse */
} ngx_http_llm_guard_walk_t;


static char *ngx_http_llm_guard_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_http_llm_guard_option(ngx_conf_t *cf,
    ngx_http_llm_guard_t *guard, ngx_str_t *value);
static ngx_http_llm_guard_t *ngx_http_llm_guard_find(
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name);
static char *ngx_http_llm_guard_compile(ngx_conf_t *cf,
    ngx_http_llm_guard_t *guard, ngx_http_llm_guard_set_t *set,
    ngx_uint_t where, ngx_uint_t actions);
static void ngx_http_llm_guard_cleanup(void *data);
static char *ngx_http_llm_guard_resolve(ngx_conf_t *cf,
    ngx_http_llm_loc_conf_t *conf);
static ngx_int_t ngx_http_llm_guard_walk(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node, ngx_uint_t text);
static ngx_int_t ngx_http_llm_guard_embeddings(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *input);
static ngx_int_t ngx_http_llm_guard_text(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node);
static char *ngx_http_llm_guard_roles(ngx_conf_t *cf,
    ngx_http_llm_guard_t *guard, ngx_str_t *value);
static ngx_uint_t ngx_http_llm_guard_role(ngx_str_t *role);
static ngx_int_t ngx_http_llm_guard_prompt(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *prompt);
static ngx_int_t ngx_http_llm_guard_responses(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *member);
static ngx_int_t ngx_http_llm_guard_messages(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *messages);
static ngx_int_t ngx_http_llm_guard_named(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name,
    ngx_http_llm_guard_t **guard, const char *what, ngx_str_t *owner);
static ngx_int_t ngx_http_llm_guard_visible(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node);
static ngx_int_t ngx_http_llm_guard_edit(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node);
static ngx_int_t ngx_http_llm_guard_edit_out(void *data, u_char *p,
    size_t len);
static ngx_int_t ngx_http_llm_guard_edit_hit(void *data, ngx_uint_t rule);
static ngx_int_t ngx_http_llm_guard_edit_name(void *data, ngx_uint_t rule,
    u_char *p, size_t len, ngx_str_t *placeholder);
static ngx_uint_t ngx_http_llm_guard_is_text(ngx_str_t *key);


ngx_str_t  ngx_http_llm_guard_actions[] = {
    ngx_string("deny"),
    ngx_string("allow"),
    ngx_string("redact"),
    ngx_string("log")
};


static ngx_str_t  ngx_http_llm_guard_wheres[] = {
    ngx_null_string,
    ngx_string("request"),
    ngx_string("response"),
    ngx_string("both")
};


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

    char                  *rv;
    ngx_str_t             *value;
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
    guard->max_hold = NGX_CONF_UNSET_SIZE;
    guard->ignore_invisible = NGX_CONF_UNSET;
    guard->last_user = NGX_CONF_UNSET;

    if (ngx_array_init(&guard->rules, cf->pool, 4,
                       sizeof(ngx_http_llm_guard_rule_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_llm_guard_line;
    cf->handler_conf = (char *) guard;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (guard->rules.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\" has no rules", &guard->name);
        return NGX_CONF_ERROR;
    }

    if (guard->max_hold == NGX_CONF_UNSET_SIZE) {
        guard->max_hold = NGX_HTTP_LLM_GUARD_HOLD;
    }

    ngx_conf_init_value(guard->ignore_invisible, 1);
    ngx_conf_init_value(guard->last_user, 0);

    if (guard->roles == 0) {
        guard->roles = NGX_HTTP_LLM_GUARD_ALL_ROLES;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_llm_guard_cleanup;
    cln->data = guard;

    if (ngx_http_llm_guard_compile(cf, guard, &guard->deny,
                                   NGX_HTTP_LLM_GUARD_REQUEST,
                                   1 << NGX_HTTP_LLM_GUARD_DENY)
        != NGX_CONF_OK
        || ngx_http_llm_guard_compile(cf, guard, &guard->allow,
                                      NGX_HTTP_LLM_GUARD_REQUEST,
                                      1 << NGX_HTTP_LLM_GUARD_ALLOW)
           != NGX_CONF_OK
        || ngx_http_llm_guard_compile(cf, guard, &guard->edit,
                                      NGX_HTTP_LLM_GUARD_REQUEST,
                                      (1 << NGX_HTTP_LLM_GUARD_REDACT)
                                      | (1 << NGX_HTTP_LLM_GUARD_LOG))
           != NGX_CONF_OK
        || ngx_http_llm_guard_compile(cf, guard, &guard->answer,
                                      NGX_HTTP_LLM_GUARD_RESPONSE,
                                      (1 << NGX_HTTP_LLM_GUARD_DENY)
                                      | (1 << NGX_HTTP_LLM_GUARD_REDACT)
                                      | (1 << NGX_HTTP_LLM_GUARD_LOG))
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    g = ngx_array_push(&lmcf->guards);
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    *g = guard;

    return NGX_CONF_OK;
}


/*
 * "ACTION RULE REGEX [PLACEHOLDER] [where=request|response|both];",
 * "max_hold SIZE;" or "on_overflow end|redact;" inside llm_guard
 */

static char *
ngx_http_llm_guard_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_llm_guard_t *guard = (ngx_http_llm_guard_t *) conf;

    u_char                     *p;
    ngx_str_t                  *value, *arg, name, flag;
    ngx_uint_t                  i, k, n, action, where;
    ngx_http_llm_detector_t    *detector;
    ngx_http_llm_guard_rule_t  *rule, *rules;

    value = cf->args->elts;
    n = cf->args->nelts;

    for (action = 0; action < 4; action++) {
        if (value[0].len == ngx_http_llm_guard_actions[action].len
            && ngx_strncmp(value[0].data,
                           ngx_http_llm_guard_actions[action].data,
                           value[0].len)
               == 0)
        {
            break;
        }
    }

    if (action == 4) {
        return ngx_http_llm_guard_option(cf, guard, value);
    }

    if (n < 3 || n > 7) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid line in guard policy \"%V\": \"%V RULE "
                           "REGEX%s [where=...];\" is expected",
                           &guard->name, &value[0],
                           action == NGX_HTTP_LLM_GUARD_REDACT
                           ? " [PLACEHOLDER]" : "");
        return NGX_CONF_ERROR;
    }

    if (guard->rules.nelts == NGX_HTTP_LLM_GUARD_MAX_RULES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\" has more than %d rules",
                           &guard->name, NGX_HTTP_LLM_GUARD_MAX_RULES);
        return NGX_CONF_ERROR;
    }

    if (value[1].len == 0
        || value[1].len > NGX_HTTP_LLM_GUARD_MAX_RULE_NAME)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the name of a rule must have 1 to %d bytes",
                           NGX_HTTP_LLM_GUARD_MAX_RULE_NAME);
        return NGX_CONF_ERROR;
    }

    rules = guard->rules.elts;

    for (i = 0; i < guard->rules.nelts; i++) {
        if (rules[i].name.len == value[1].len
            && ngx_strncmp(rules[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate rule \"%V\" in guard policy \"%V\"",
                               &value[1], &guard->name);
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(&guard->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_llm_guard_rule_t));

    rule->name = value[1];
    rule->pattern = value[2];
    rule->action = action;

    if (value[2].len && value[2].data[0] == '@') {
        name.data = value[2].data + 1;
        name.len = value[2].len - 1;

        detector = ngx_http_llm_detector(&name);

        if (detector == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown detector \"%V\" in rule \"%V\": "
                               "%s are known", &value[2], &rule->name,
                               ngx_http_llm_detector_names);
            return NGX_CONF_ERROR;
        }

        rule->pattern = detector->pattern;
        rule->check = detector->check;
        rule->hint = detector->hint;
    }

    /* allowing and refusing are about requests; the rest reads both */
    where = (action == NGX_HTTP_LLM_GUARD_DENY
             || action == NGX_HTTP_LLM_GUARD_ALLOW)
            ? NGX_HTTP_LLM_GUARD_REQUEST
            : NGX_HTTP_LLM_GUARD_REQUEST | NGX_HTTP_LLM_GUARD_RESPONSE;

    for (i = 3; i < n; i++) {
        arg = &value[i];

        if (arg->len > 6 && ngx_strncmp(arg->data, "where=", 6) == 0) {

            for (where = 1; where < 4; where++) {
                if (arg->len - 6 == ngx_http_llm_guard_wheres[where].len
                    && ngx_strncmp(arg->data + 6,
                                   ngx_http_llm_guard_wheres[where].data,
                                   arg->len - 6)
                       == 0)
                {
                    break;
                }
            }

            if (where == 4) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" of rule \"%V\": request, "
                                   "response or both is expected", arg,
                                   &rule->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if ((arg->len == 8 && ngx_strncmp(arg->data, "caseless", 8) == 0)
            || (arg->len == 3 && ngx_strncmp(arg->data, "utf", 3) == 0))
        {
            /* PCRE2's own options, before the pattern */

            p = ngx_pnalloc(cf->pool, rule->pattern.len + 10);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }

            /* "(*UTF)" must come first: "(?i)" goes after it */

            k = (arg->len == 8 && rule->pattern.len >= 6
                 && ngx_strncmp(rule->pattern.data, "(*UTF)", 6) == 0)
                ? 6 : 0;

            flag.data = p;
            p = ngx_cpymem(p, rule->pattern.data, k);
            p = ngx_cpymem(p, (arg->len == 3) ? "(*UTF)" : "(?i)",
                           (arg->len == 3) ? 6 : 4);
            p = ngx_cpymem(p, rule->pattern.data + k, rule->pattern.len - k);
            flag.len = p - flag.data;

            rule->pattern = flag;
            continue;
        }

        if (i == 3 && action == NGX_HTTP_LLM_GUARD_REDACT) {
            if (arg->len == 0
                || arg->len > NGX_HTTP_LLM_GUARD_MAX_PLACEHOLDER)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "the placeholder of rule \"%V\" must have "
                                   "1 to %d bytes", &rule->name,
                                   NGX_HTTP_LLM_GUARD_MAX_PLACEHOLDER);
                return NGX_CONF_ERROR;
            }

            rule->placeholder = *arg;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" of rule \"%V\"", arg,
                           &rule->name);
        return NGX_CONF_ERROR;
    }

    if (action == NGX_HTTP_LLM_GUARD_ALLOW
        && where != NGX_HTTP_LLM_GUARD_REQUEST)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "allow rule \"%V\" reads requests only",
                           &rule->name);
        return NGX_CONF_ERROR;
    }

    rule->where = where;

    if (action == NGX_HTTP_LLM_GUARD_REDACT && rule->placeholder.len == 0) {
        /* "[EMAIL]" for a rule named "email" */

        p = ngx_pnalloc(cf->pool, rule->name.len + 2);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        rule->placeholder.data = p;
        rule->placeholder.len = rule->name.len + 2;

        *p++ = '[';

        for (i = 0; i < rule->name.len; i++) {
            *p++ = ngx_toupper(rule->name.data[i]);
        }

        *p = ']';
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_guard_option(ngx_conf_t *cf, ngx_http_llm_guard_t *guard,
    ngx_str_t *value)
{
    ssize_t  size;

    if (cf->args->nelts == 2
        && value[0].len == 8 && ngx_strncmp(value[0].data, "max_hold", 8) == 0)
    {
        size = ngx_parse_size(&value[1]);

        if (size == NGX_ERROR || size < 64
            || size > NGX_HTTP_LLM_GUARD_MAX_HOLD)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max_hold \"%V\": from 64 to %d "
                               "bytes", &value[1],
                               NGX_HTTP_LLM_GUARD_MAX_HOLD);
            return NGX_CONF_ERROR;
        }

        guard->max_hold = size;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts == 2
        && value[0].len == 11
        && ngx_strncmp(value[0].data, "on_overflow", 11) == 0)
    {
        if (value[1].len == 3 && ngx_strncmp(value[1].data, "end", 3) == 0) {
            guard->overflow_drops = 0;
            return NGX_CONF_OK;
        }

        if (value[1].len == 6
            && ngx_strncmp(value[1].data, "redact", 6) == 0)
        {
            guard->overflow_drops = 1;
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid on_overflow \"%V\": end or redact is "
                           "expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[0].len == 5 && ngx_strncmp(value[0].data, "roles", 5) == 0) {
        return ngx_http_llm_guard_roles(cf, guard, value);
    }

    if (cf->args->nelts == 2
        && value[0].len == 8 && ngx_strncmp(value[0].data, "messages", 8) == 0)
    {
        if (value[1].len == 3 && ngx_strncmp(value[1].data, "all", 3) == 0) {
            guard->last_user = 0;
            return NGX_CONF_OK;
        }

        if (value[1].len == 9
            && ngx_strncmp(value[1].data, "last_user", 9) == 0)
        {
            guard->last_user = 1;
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid messages \"%V\": all or last_user is "
                           "expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2
        && value[0].len == 16
        && ngx_strncmp(value[0].data, "ignore_invisible", 16) == 0)
    {
        if (value[1].len == 2 && ngx_strncmp(value[1].data, "on", 2) == 0) {
            guard->ignore_invisible = 1;
            return NGX_CONF_OK;
        }

        if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
            guard->ignore_invisible = 0;
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid ignore_invisible \"%V\": on or off is "
                           "expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid line \"%V\" in guard policy \"%V\": deny, "
                       "allow, redact, log, max_hold, on_overflow, "
                       "ignore_invisible, roles or messages is expected",
                       &value[0],
                       &guard->name);

    return NGX_CONF_ERROR;
}


/* "roles system user assistant tool;": the messages' roles read */

static char *
ngx_http_llm_guard_roles(ngx_conf_t *cf, ngx_http_llm_guard_t *guard,
    ngx_str_t *value)
{
    ngx_uint_t  i, role;

    if (guard->roles) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate roles in guard "
                           "policy \"%V\"", &guard->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "roles: at least one role "
                           "is expected");
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        role = ngx_http_llm_guard_role(&value[i]);

        if (role == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid role \"%V\": system, user, "
                               "assistant or tool is expected", &value[i]);
            return NGX_CONF_ERROR;
        }

        guard->roles |= role;
    }

    return NGX_CONF_OK;
}


/* the role bit of a message's "role" (0: not one of them) */

static ngx_uint_t
ngx_http_llm_guard_role(ngx_str_t *role)
{
    switch (role->len) {

    case 4:
        if (ngx_strncmp(role->data, "user", 4) == 0) {
            return NGX_HTTP_LLM_GUARD_USER;
        }

        return ngx_strncmp(role->data, "tool", 4) == 0
               ? NGX_HTTP_LLM_GUARD_TOOL : 0;

    case 6:
        return ngx_strncmp(role->data, "system", 6) == 0
               ? NGX_HTTP_LLM_GUARD_SYSTEM : 0;

    case 8:
        /* Gemini's and old OpenAI's names of the others */
        return ngx_strncmp(role->data, "function", 8) == 0
               ? NGX_HTTP_LLM_GUARD_TOOL : 0;

    case 9:
        return ngx_strncmp(role->data, "assistant", 9) == 0
               ? NGX_HTTP_LLM_GUARD_ASSISTANT
               : ngx_strncmp(role->data, "developer", 9) == 0
                 ? NGX_HTTP_LLM_GUARD_SYSTEM : 0;

    default:
        return 0;
    }
}


/* the rules of some actions that read where: one set, possibly empty */

static char *
ngx_http_llm_guard_compile(ngx_conf_t *cf, ngx_http_llm_guard_t *guard,
    ngx_http_llm_guard_set_t *set, ngx_uint_t where, ngx_uint_t actions)
{
    u_char                         err[256];
    u_char                        *act, *numbered;
    ngx_str_t                     *patterns, *placeholders, *name;
    ngx_uint_t                     i, n, checked, hinted;
    ngx_http_llm_guard_rule_t     *rules;
    ngx_http_llm_redact_hint_t    *hints;
    ngx_http_llm_redact_check_pt  *checks;

    rules = guard->rules.elts;
    n = guard->rules.nelts;

    patterns = ngx_palloc(cf->pool, n * sizeof(ngx_str_t));
    placeholders = ngx_palloc(cf->pool, n * sizeof(ngx_str_t));
    act = ngx_palloc(cf->pool, n);
    numbered = ngx_pcalloc(cf->pool, n);
    checks = ngx_palloc(cf->pool, n * sizeof(ngx_http_llm_redact_check_pt));
    hints = ngx_palloc(cf->pool, n * sizeof(ngx_http_llm_redact_hint_t));
    set->rule = ngx_palloc(cf->pool, n * sizeof(ngx_uint_t));

    if (patterns == NULL || placeholders == NULL || act == NULL
        || numbered == NULL || checks == NULL || hints == NULL
        || set->rule == NULL)
    {
        return NGX_CONF_ERROR;
    }

    n = 0;
    checked = 0;
    hinted = 0;

    for (i = 0; i < guard->rules.nelts; i++) {

        if (!(rules[i].where & where) || !(actions & (1 << rules[i].action)))
        {
            continue;
        }

        patterns[n] = rules[i].pattern;
        placeholders[n] = rules[i].placeholder;
        checks[n] = rules[i].check;
        numbered[n] = (rules[i].action == NGX_HTTP_LLM_GUARD_REDACT
                       && ngx_strlchr(rules[i].placeholder.data,
                                      rules[i].placeholder.data
                                      + rules[i].placeholder.len, '#'));
        checked |= (rules[i].check != NULL);
        hints[n] = rules[i].hint;
        hinted |= (rules[i].hint.anchor != 0);
        set->rule[n] = i;

        act[n] = (rules[i].action == NGX_HTTP_LLM_GUARD_DENY)
                 ? NGX_HTTP_LLM_REDACT_STOP
                 : (rules[i].action == NGX_HTTP_LLM_GUARD_REDACT)
                   ? NGX_HTTP_LLM_REDACT_REPLACE : NGX_HTTP_LLM_REDACT_PASS;
        n++;
    }

    if (n == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_http_llm_redact_compile(cf->pool, &set->compiled, patterns,
                                    placeholders, n, 0, err, sizeof(err))
        == NGX_OK)
    {
        set->compiled.actions = act;
        set->compiled.numbered = numbered;
        set->compiled.checks = checked ? checks : NULL;
        ngx_http_llm_redact_set_hints(&set->compiled, hinted ? hints : NULL);
        set->compiled.strip_invisible = guard->ignore_invisible ? 1 : 0;
        return NGX_CONF_OK;
    }

    if (set->compiled.error_rule == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\": %s", &guard->name, err);
        return NGX_CONF_ERROR;
    }

    name = &rules[set->rule[set->compiled.error_rule - 1]].name;

    if (set->compiled.error_offset != (size_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\", rule \"%V\": %s at offset "
                           "%uz of its pattern", &guard->name, name, err,
                           set->compiled.error_offset);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guard policy \"%V\", rule \"%V\": %s",
                           &guard->name, name, err);
    }

    return NGX_CONF_ERROR;
}


static void
ngx_http_llm_guard_cleanup(void *data)
{
    ngx_http_llm_guard_t  *guard = data;

    ngx_http_llm_redact_free(&guard->deny.compiled);
    ngx_http_llm_redact_free(&guard->allow.compiled);
    ngx_http_llm_redact_free(&guard->edit.compiled);
    ngx_http_llm_redact_free(&guard->answer.compiled);
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
ngx_http_llm_guard_entities(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_uint_t               i, k;
    ngx_array_t             *lists[3];
    ngx_http_llm_route_t   **rr;
    ngx_http_llm_entity_t  **e;

    rr = lmcf->routes.elts;

    for (i = 0; i < lmcf->routes.nelts; i++) {
        /* globs are listed twice */
        if (rr[i]->guard_name.len && !rr[i]->guard_set
            && ngx_http_llm_guard_named(cf, lmcf, &rr[i]->guard_name,
                                        &rr[i]->guard, "llm_route",
                                        &rr[i]->name)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        rr[i]->guard_set = (rr[i]->guard_name.len != 0);
    }

    lists[0] = &lmcf->keys;
    lists[1] = &lmcf->teams;
    lists[2] = &lmcf->orgs;

    for (k = 0; k < 3; k++) {
        e = lists[k]->elts;

        for (i = 0; i < lists[k]->nelts; i++) {
            if (e[i]->guard_name.len
                && ngx_http_llm_guard_named(cf, lmcf, &e[i]->guard_name,
                                            &e[i]->guard,
                                            (k == 0) ? "llm_key"
                                            : (k == 1) ? "llm_team"
                                            : "llm_org", &e[i]->name)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            e[i]->guard_set = (e[i]->guard_name.len != 0);
        }
    }

    return NGX_OK;
}


/* "guard NAME | off" of a route or an entity: its policy, or NULL */

static ngx_int_t
ngx_http_llm_guard_named(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf,
    ngx_str_t *name, ngx_http_llm_guard_t **guard, const char *what,
    ngx_str_t *owner)
{
    lmcf->entity_guards = 1;

    if (name->len == 3 && ngx_strncmp(name->data, "off", 3) == 0) {
        *guard = NULL;
        return NGX_OK;
    }

    *guard = ngx_http_llm_guard_find(lmcf, name);

    if (*guard == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%s \"%V\" names unknown guard policy \"%V\"", what,
                      owner, name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * the key's, its team's or organisation's policy, else the route's that
 * serves (a "when" rule's choice), else the route's asked for, else the
 * location's
 */

static ngx_http_llm_guard_t *
ngx_http_llm_guard_of(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_entity_t    *e;
    ngx_http_llm_loc_conf_t  *llcf;

    for (e = ctx->key; e; e = e->parent) {
        if (e->guard_set) {
            return e->guard;
        }
    }

    if (ctx->route && ctx->route->guard_set) {
        return ctx->route->guard;
    }

    if (ctx->asked_route && ctx->asked_route->guard_set) {
        return ctx->asked_route->guard;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_module);

    return llcf->guard;
}


ngx_int_t
ngx_http_llm_guard_request(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_http_llm_json_t        *member;
    ngx_http_llm_guard_t       *guard;
    ngx_http_llm_guard_rule_t  *rules;
    ngx_http_llm_guard_walk_t   w;

    guard = ngx_http_llm_guard_of(r, ctx);
    ctx->guard = guard;

    if (guard == NULL
        || (guard->deny.compiled.nrules == 0
            && guard->allow.compiled.nrules == 0
            && guard->edit.compiled.nrules == 0)
        || ctx->tree == NULL || ctx->tree->type != NGX_HTTP_LLM_JSON_OBJECT)
    {
        return NGX_OK;
    }

    ngx_memzero(&w, sizeof(ngx_http_llm_guard_walk_t));
    w.r = r;
    w.ctx = ctx;
    w.guard = guard;
    w.rule = NGX_CONF_UNSET_UINT;

    /* the messages, and Anthropic's system prompt; embeddings' input */

    for (member = ctx->tree->child; member; member = member->next) {

        if (ctx->embed) {
            if (member != ctx->embed->input) {
                continue;
            }

            rc = ngx_http_llm_guard_embeddings(&w, member);

        } else if (ctx->endpoint == NGX_HTTP_LLM_EP_RESPONSES) {
            rc = ngx_http_llm_guard_responses(&w, member);

        } else if (ctx->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS) {
            rc = ngx_http_llm_str_is(&member->key, "prompt")
                 ? ngx_http_llm_guard_prompt(&w, member) : NGX_OK;

        } else if (!(member->key.len == 8
              && ngx_strncmp(member->key.data, "messages", 8) == 0)
            && !(member->key.len == 6
                 && ngx_strncmp(member->key.data, "system", 6) == 0))
        {
            continue;

        } else if (member->key.len == 6) {
            /* Anthropic's system prompt */
            rc = (guard->roles & NGX_HTTP_LLM_GUARD_SYSTEM) && !guard->last_user
                 ? ngx_http_llm_guard_walk(&w, member, 1) : NGX_OK;

        } else {
            rc = ngx_http_llm_guard_messages(&w, member);
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            break;
        }
    }

    rules = guard->rules.elts;

    if (w.rule != NGX_CONF_UNSET_UINT) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "llm: request refused by guard policy \"%V\", "
                      "rule \"%V\"", &guard->name, &rules[w.rule].name);

        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "content_policy_violation", NULL,
                                 "The request was refused by the guard "
                                 "policy `%V` (rule `%V`).",
                                 &guard->name, &rules[w.rule].name);
    }

    if (w.failed) {
        /* a match limit, or a text PCRE2 cannot read: the safe side */
        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "content_policy_violation", NULL,
                                 "The request could not be checked by the "
                                 "guard policy `%V`.", &guard->name);
    }

    if (guard->allow.compiled.nrules && !w.allowed) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "llm: request refused by guard policy \"%V\": no "
                      "allow rule matched", &guard->name);

        return ngx_http_llm_fail(r, NGX_HTTP_BAD_REQUEST,
                                 "content_policy_violation", NULL,
                                 "The request was refused by the guard "
                                 "policy `%V` (no allow rule matched).",
                                 &guard->name);
    }

    return NGX_OK;
}


/*
 * Embeddings' texts, every one; token ids cannot be read by the rules:
 * a policy with rules refuses them (the safe side, as for a text PCRE2
 * cannot read).
 */

static ngx_int_t
ngx_http_llm_guard_embeddings(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *input)
{
    if (w->ctx->embed->kind == NGX_HTTP_LLM_EMBED_TOKENS) {
        w->failed = 1;
        return NGX_DECLINED;
    }

    return ngx_http_llm_guard_walk(w, input, 1);
}


/*
 * A legacy completion's prompt, the user's: a string or strings; token
 * ids cannot be read by the rules and are refused, as embeddings' are.
 */

static ngx_int_t
ngx_http_llm_guard_prompt(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *prompt)
{
    ngx_http_llm_json_t  *p;

    if (prompt->type == NGX_HTTP_LLM_JSON_ARRAY) {
        for (p = prompt->child; p; p = p->next) {
            if (p->type != NGX_HTTP_LLM_JSON_STRING) {
                w->failed = 1;
                return NGX_DECLINED;
            }
        }

    } else if (prompt->type != NGX_HTTP_LLM_JSON_STRING) {
        w->failed = 1;
        return NGX_DECLINED;
    }

    return (w->guard->roles & NGX_HTTP_LLM_GUARD_USER) || w->guard->last_user
           ? ngx_http_llm_guard_walk(w, prompt, 1) : NGX_OK;
}


/*
 * A Responses call: "instructions" are the system prompt; "input" a user
 * message, or items, read as chat messages are (a function call is the
 * assistant's, its output the tool's)
 */

static ngx_int_t
ngx_http_llm_guard_responses(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *member)
{
    ngx_http_llm_guard_t  *guard;

    guard = w->guard;

    if (ngx_http_llm_str_is(&member->key, "instructions")) {
        return (guard->roles & NGX_HTTP_LLM_GUARD_SYSTEM) && !guard->last_user
               ? ngx_http_llm_guard_walk(w, member, 1) : NGX_OK;
    }

    if (!ngx_http_llm_str_is(&member->key, "input")) {
        return NGX_OK;
    }

    if (member->type == NGX_HTTP_LLM_JSON_STRING) {
        return (guard->roles & NGX_HTTP_LLM_GUARD_USER) || guard->last_user
               ? ngx_http_llm_guard_walk(w, member, 1) : NGX_OK;
    }

    return ngx_http_llm_guard_messages(w, member);
}


/* the messages of the roles the policy reads, or the last user message */

static ngx_int_t
ngx_http_llm_guard_messages(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *messages)
{
    ngx_int_t             rc;
    ngx_uint_t            role;
    ngx_str_t            *name;
    ngx_http_llm_json_t  *m, *last;

    if (messages->type != NGX_HTTP_LLM_JSON_ARRAY) {
        return NGX_OK;
    }

    last = NULL;

    for (m = messages->child; m; m = m->next) {
        name = ngx_http_llm_json_str(m, "role");

        if (name) {
            role = ngx_http_llm_guard_role(name);

        } else {
            /* Responses items: a function call and its output */
            name = ngx_http_llm_json_str(m, "type");
            role = (name == NULL) ? 0
                   : ngx_http_llm_str_is(name, "function_call")
                     ? NGX_HTTP_LLM_GUARD_ASSISTANT
                   : ngx_http_llm_str_is(name, "function_call_output")
                     ? NGX_HTTP_LLM_GUARD_TOOL : 0;
        }

        /* a message of no known role is read: the safe side */

        if (w->guard->last_user) {
            if (role == NGX_HTTP_LLM_GUARD_USER) {
                last = m;
            }

            continue;
        }

        if (role && !(w->guard->roles & role)) {
            continue;
        }

        /* a message that is a string is all text (the safe side) */
        rc = ngx_http_llm_guard_walk(w, m,
                                     m->type == NGX_HTTP_LLM_JSON_STRING);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return last ? ngx_http_llm_guard_walk(w, last, 0) : NGX_OK;
}


/*
 * The text of a message: strings under "content", "text" (content
 * parts), "arguments" (tool calls) and a string system prompt; depth is
 * bounded by the body parser's limit
 */

static ngx_int_t
ngx_http_llm_guard_walk(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node, ngx_uint_t text)
{
    ngx_int_t             rc;
    ngx_uint_t            is_text;
    ngx_http_llm_json_t  *child;

    if (node->type == NGX_HTTP_LLM_JSON_STRING) {
        return text ? ngx_http_llm_guard_text(w, node) : NGX_OK;
    }

    for (child = node->child; child; child = child->next) {

        /* an array's elements are what the array is; members by name */
        is_text = (node->type == NGX_HTTP_LLM_JSON_ARRAY)
                  ? text : ngx_http_llm_guard_is_text(&child->key);

        rc = ngx_http_llm_guard_walk(w, child, is_text);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_guard_text(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node)
{
    int                           rc;
    ngx_uint_t                    i;
    ngx_http_llm_guard_t         *guard;
    ngx_http_llm_redact_text_t    seen;
    ngx_http_llm_redact_rules_t  *set;

    guard = w->guard;

    if (guard->ignore_invisible
        && ngx_http_llm_guard_visible(w, node) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* what one rule learns of the text serves the others */
    ngx_http_llm_redact_text_init(&seen);

    set = &guard->deny.compiled;

    for (i = 0; i < set->nrules; i++) {
        rc = ngx_http_llm_redact_match(set, i, node->str.data, node->str.len,
                                       0, 0, &seen);

        /* a match, or a match limit: refusing is the safe side */
        if (rc != PCRE2_ERROR_NOMATCH) {
            w->rule = guard->deny.rule[i];
            w->ctx->guard_hits[0] |= (uint64_t) 1 << w->rule;
            return NGX_DECLINED;
        }
    }

    set = &guard->allow.compiled;

    for (i = 0; !w->allowed && i < set->nrules; i++) {
        rc = ngx_http_llm_redact_match(set, i, node->str.data, node->str.len,
                                       0, 0, &seen);

        if (rc >= 0) {
            w->allowed = 1;
            w->ctx->guard_hits[0] |= (uint64_t) 1 << guard->allow.rule[i];
        }
    }

    set = &guard->edit.compiled;

    /* most texts match nothing: the engine runs for those that do */

    for (i = 0; i < set->nrules; i++) {
        rc = ngx_http_llm_redact_match(set, i, node->str.data, node->str.len,
                                       0, 0, &seen);

        if (rc != PCRE2_ERROR_NOMATCH) {
            return ngx_http_llm_guard_edit(w, node);
        }
    }

    return NGX_OK;
}


/* a text without its zero-width and bidi characters, which hide matches */

static ngx_int_t
ngx_http_llm_guard_visible(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node)
{
    u_char  *p;
    size_t   at, len;

    /* curly quotes and dashes share lead bytes with them: no copy then */

    at = ngx_http_llm_redact_find_invisible(node->str.data, node->str.len);

    if (at == node->str.len) {
        return NGX_OK;
    }

    p = ngx_pnalloc(w->r->pool, node->str.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, node->str.data, node->str.len);

    len = at + ngx_http_llm_redact_strip(p + at, node->str.len - at);

    node->str.data = p;
    node->str.len = len;
    w->ctx->request_redacted = 1;

    return NGX_OK;
}


typedef struct {
    ngx_http_llm_guard_walk_t     *walk;
    ngx_http_llm_jbuf_t            out;
} ngx_http_llm_guard_edit_t;


/* the text redacted (and its log rules counted) as an answer would be */

static ngx_int_t
ngx_http_llm_guard_edit(ngx_http_llm_guard_walk_t *w,
    ngx_http_llm_json_t *node)
{
    u_char                     *buf;
    size_t                      size;
    ngx_int_t                   rc;
    ngx_http_llm_redact_t       rd;
    ngx_http_llm_guard_edit_t   e;

    size = node->str.len + w->guard->edit.compiled.context + 64;

    buf = ngx_pnalloc(w->r->pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    e.walk = w;
    ngx_http_llm_jbuf_init(&e.out, w->r->pool, node->str.len + 64);

    ngx_http_llm_redact_init(&rd, &w->guard->edit.compiled, buf, size,
                             ngx_http_llm_guard_edit_out, &e);
    rd.hit = ngx_http_llm_guard_edit_hit;
    rd.name = ngx_http_llm_guard_edit_name;

    rc = ngx_http_llm_redact_feed(&rd, node->str.data, node->str.len);

    if (rc == NGX_OK) {
        rc = ngx_http_llm_redact_finish(&rd);
    }

    if (rc != NGX_OK || e.out.error) {
        w->failed = 1;
        return NGX_DECLINED;
    }

    /* log rules only: the text stays as it was */

    if (ngx_http_llm_jbuf_len(&e.out) == node->str.len
        && ngx_memcmp(e.out.start, node->str.data, node->str.len) == 0)
    {
        return NGX_OK;
    }

    node->str.data = e.out.start;
    node->str.len = ngx_http_llm_jbuf_len(&e.out);

    w->ctx->request_redacted = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_guard_edit_out(void *data, u_char *p, size_t len)
{
    ngx_http_llm_guard_edit_t  *e = data;

    ngx_http_llm_jbuf_raw(&e->out, p, len);

    return e->out.error ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_llm_guard_edit_hit(void *data, ngx_uint_t rule)
{
    ngx_http_llm_guard_edit_t  *e = data;

    ngx_http_llm_guard_walk_t  *w;
    ngx_http_llm_guard_rule_t  *rules;

    w = e->walk;
    rules = w->guard->rules.elts;
    rule = w->guard->edit.rule[rule];

    if (rules[rule].action == NGX_HTTP_LLM_GUARD_LOG
        && !(w->ctx->guard_hits[0] & ((uint64_t) 1 << rule)))
    {
        ngx_log_error(NGX_LOG_INFO, w->r->connection->log, 0,
                      "llm: guard policy \"%V\", rule \"%V\" matched the "
                      "request", &w->guard->name, &rules[rule].name);
    }

    w->ctx->guard_hits[0] |= (uint64_t) 1 << rule;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_guard_edit_name(void *data, ngx_uint_t rule, u_char *p,
    size_t len, ngx_str_t *placeholder)
{
    ngx_http_llm_guard_edit_t  *e = data;

    ngx_http_llm_guard_walk_t  *w;

    w = e->walk;

    return ngx_http_llm_guard_number(w->r, w->ctx, w->guard,
                                     w->guard->edit.rule[rule], p, len,
                                     placeholder);
}


typedef struct {
    ngx_uint_t                     rule;
    ngx_uint_t                     number;
    ngx_str_t                      text;
} ngx_http_llm_guard_number_t;


ngx_int_t
ngx_http_llm_guard_number(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_guard_t *guard, ngx_uint_t rule, u_char *p, size_t len,
    ngx_str_t *placeholder)
{
    u_char                       *hash, *d;
    ngx_str_t                    *ph;
    ngx_uint_t                    i, number;
    ngx_http_llm_guard_rule_t    *rules;
    ngx_http_llm_guard_number_t  *n;

    rules = guard->rules.elts;
    ph = &rules[rule].placeholder;

    if (ctx->guard_numbers == NULL) {
        ctx->guard_numbers = ngx_array_create(r->pool, 4,
                                        sizeof(ngx_http_llm_guard_number_t));
        if (ctx->guard_numbers == NULL) {
            return NGX_ERROR;
        }
    }

    n = ctx->guard_numbers->elts;
    number = 1;

    for (i = 0; i < ctx->guard_numbers->nelts; i++) {
        if (n[i].rule != rule) {
            continue;
        }

        if (n[i].text.len == len && ngx_memcmp(n[i].text.data, p, len) == 0)
        {
            number = n[i].number;
            goto found;
        }

        number = n[i].number + 1;
    }

    /* past the cap, texts are numbered but not remembered */

    if (ctx->guard_numbers->nelts < NGX_HTTP_LLM_GUARD_MAX_NUMBERED) {
        n = ngx_array_push(ctx->guard_numbers);
        if (n == NULL) {
            return NGX_ERROR;
        }

        n->rule = rule;
        n->number = number;
        n->text.len = len;
        n->text.data = ngx_pnalloc(r->pool, len);

        if (n->text.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(n->text.data, p, len);
    }

found:

    d = ngx_pnalloc(r->pool, ph->len + NGX_INT_T_LEN);
    if (d == NULL) {
        return NGX_ERROR;
    }

    hash = ngx_strlchr(ph->data, ph->data + ph->len, '#');

    placeholder->data = d;

    d = ngx_cpymem(d, ph->data, hash - ph->data);
    d = ngx_sprintf(d, "%ui", number);
    d = ngx_cpymem(d, hash + 1, ph->data + ph->len - hash - 1);

    placeholder->len = d - placeholder->data;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_llm_guard_is_text(ngx_str_t *key)
{
    switch (key->len) {

    case 4:
        return ngx_strncmp(key->data, "text", 4) == 0;

    case 6:
        /* a Responses function call's output */
        return ngx_strncmp(key->data, "output", 6) == 0;

    case 7:
        return ngx_strncmp(key->data, "content", 7) == 0;

    case 9:
        return ngx_strncmp(key->data, "arguments", 9) == 0;

    default:
        return 0;
    }
}


ngx_http_llm_guard_t *
ngx_http_llm_guard_answers(ngx_http_request_t *r)
{
    ngx_http_llm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_module);

    if (ctx == NULL || ctx->guard == NULL
        || ctx->guard->answer.compiled.nrules == 0)
    {
        return NULL;
    }

    return ctx->guard;
}


ngx_http_llm_redact_t *
ngx_http_llm_guard_redactor(ngx_http_request_t *r, ngx_http_llm_guard_t *guard,
    ngx_http_llm_redact_out_pt out, void *data)
{
    u_char                 *buf;
    size_t                  size;
    ngx_http_llm_redact_t  *rd;

    /* held text, what lookbehinds need before it, and a character */
    size = guard->max_hold + guard->answer.compiled.context + 4;

    rd = ngx_palloc(r->pool, sizeof(ngx_http_llm_redact_t));
    buf = ngx_pnalloc(r->pool, size);

    if (rd == NULL || buf == NULL) {
        return NULL;
    }

    ngx_http_llm_redact_init(rd, &guard->answer.compiled, buf, size, out,
                             data);
    rd->overflow_drops = guard->overflow_drops;

    return rd;
}


ngx_http_llm_guard_rule_t *
ngx_http_llm_guard_answer_rule(ngx_http_llm_guard_t *guard, ngx_uint_t n)
{
    ngx_http_llm_guard_rule_t  *rules;

    rules = guard->rules.elts;

    return &rules[guard->answer.rule[n]];
}


void
ngx_http_llm_guard_hit(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_guard_t *guard, ngx_uint_t where, ngx_uint_t rule)
{
    uint64_t                    bit;
    ngx_uint_t                  n;
    ngx_http_llm_guard_rule_t  *rules;

    rules = guard->rules.elts;
    n = guard->answer.rule[rule];
    bit = (uint64_t) 1 << n;

    if (rules[n].action == NGX_HTTP_LLM_GUARD_LOG
        && !(ctx->guard_hits[1] & bit))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "llm: guard policy \"%V\", rule \"%V\" matched the "
                      "answer", &guard->name, &rules[n].name);
    }

    ctx->guard_hits[1] |= bit;
}


ngx_int_t
ngx_http_llm_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    size_t                      len;
    ngx_uint_t                  i, w;
    ngx_http_llm_ctx_t         *ctx;
    ngx_http_llm_guard_t       *guard;
    ngx_http_llm_guard_rule_t  *rules;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_module);
    guard = ctx ? ctx->guard : NULL;

    if (guard == NULL
        || (ctx->guard_hits[0] | ctx->guard_hits[1]) == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    rules = guard->rules.elts;
    len = 0;

    for (w = 0; w < 2; w++) {
        for (i = 0; i < guard->rules.nelts; i++) {
            if (ctx->guard_hits[w] & ((uint64_t) 1 << i)) {
                len += guard->name.len + rules[i].name.len
                       + sizeof("/:redact:response,") - 1;
            }
        }
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (w = 0; w < 2; w++) {
        for (i = 0; i < guard->rules.nelts; i++) {
            if (!(ctx->guard_hits[w] & ((uint64_t) 1 << i))) {
                continue;
            }

            if (p != v->data) {
                *p++ = ',';
            }

            p = ngx_sprintf(p, "%V/%V:%V:%s", &guard->name, &rules[i].name,
                            &ngx_http_llm_guard_actions[rules[i].action],
                            w ? "response" : "request");
        }
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
