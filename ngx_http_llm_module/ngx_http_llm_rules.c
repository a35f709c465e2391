
/*
 * Rule-based routing. Regexes are compiled once, at configuration time,
 * with JIT. "when CONDITION ROUTE;" lines in an llm_route send a request
 * to another route (its targets, strategy and failover) when their
 * condition holds: the first that holds wins, else the route's own
 * targets serve it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH  8
#endif
#include <pcre2.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_rules.h"
#include "ngx_http_llm_json_tree.h"
#include "ngx_http_llm_limits.h"
#include "ngx_http_llm_dialect.h"


typedef enum {
    NGX_HTTP_LLM_WHEN_TOOLS = 0,
    NGX_HTTP_LLM_WHEN_TEAM,
    NGX_HTTP_LLM_WHEN_PROMPT,
    NGX_HTTP_LLM_WHEN_LAST_USER,
    NGX_HTTP_LLM_WHEN_VARIABLE
} ngx_http_llm_when_e;


typedef enum {
    NGX_HTTP_LLM_OP_EQ = 0,
    NGX_HTTP_LLM_OP_REGEX,
    NGX_HTTP_LLM_OP_REGEX_CASELESS,
    NGX_HTTP_LLM_OP_GE,
    NGX_HTTP_LLM_OP_GT,
    NGX_HTTP_LLM_OP_LE,
    NGX_HTTP_LLM_OP_LT
} ngx_http_llm_op_e;


typedef struct {
    ngx_http_llm_when_e            kind;
    ngx_http_llm_op_e              op;
    unsigned                       negate:1;       /* "!=", "!~", "!~*" */

    ngx_int_t                      index;          /* of the variable */
    ngx_str_t                      value;          /* "=", the team */
    int64_t                        number;         /* prompt_tokens */
    ngx_http_llm_regex_t          *regex;

    ngx_str_t                      route_name;
    ngx_http_llm_route_t          *route;
    ngx_uint_t                     line;
} ngx_http_llm_rule_t;


static void ngx_http_llm_regex_cleanup(void *data);
static ngx_int_t ngx_http_llm_rule_op(ngx_str_t *word,
    ngx_http_llm_rule_t *rule);
static char *ngx_http_llm_rule_operand(ngx_conf_t *cf,
    ngx_http_llm_route_t *route, ngx_http_llm_rule_t *rule,
    ngx_str_t *op, ngx_str_t *operand);
static ngx_int_t ngx_http_llm_rule_holds(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx, ngx_http_llm_rule_t *rule);
static ngx_int_t ngx_http_llm_rule_last_user(ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_regex_t *rx);


ngx_http_llm_regex_t *
ngx_http_llm_regex_compile(ngx_pool_t *pool, ngx_str_t *pattern,
    ngx_uint_t caseless, u_char *err, size_t len)
{
    int                    errcode;
    u_char                 msg[128];
    uint32_t               captures;
    PCRE2_SIZE             erroffset;
    ngx_pool_cleanup_t    *cln;
    ngx_http_llm_regex_t  *rx;

    if (pattern->len == 0) {
        *ngx_snprintf(err, len - 1, "empty regex") = '\0';
        return NULL;
    }

    rx = ngx_pcalloc(pool, sizeof(ngx_http_llm_regex_t));
    cln = ngx_pool_cleanup_add(pool, 0);

    if (rx == NULL || cln == NULL) {
        *ngx_snprintf(err, len - 1, "out of memory") = '\0';
        return NULL;
    }

    cln->handler = ngx_http_llm_regex_cleanup;
    cln->data = rx;

    rx->code = pcre2_compile(pattern->data, pattern->len,
                             caseless ? PCRE2_CASELESS : 0, &errcode,
                             &erroffset, NULL);
    if (rx->code == NULL) {
        (void) pcre2_get_error_message(errcode, msg, sizeof(msg));
        *ngx_snprintf(err, len - 1, "%s at offset %uz of \"%V\"", msg,
                      (size_t) erroffset, pattern) = '\0';
        return NULL;
    }

    /* without JIT, the interpreter gives the same answers, slower */
    (void) pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE);

    captures = 0;
    (void) pcre2_pattern_info(rx->code, PCRE2_INFO_CAPTURECOUNT, &captures);
    rx->captures = captures;

    rx->match = pcre2_match_data_create(NGX_HTTP_LLM_MAX_CAPTURES, NULL);
    if (rx->match == NULL) {
        *ngx_snprintf(err, len - 1, "out of memory") = '\0';
        return NULL;
    }

    return rx;
}


ngx_http_llm_regex_t *
ngx_http_llm_regex_name(ngx_pool_t *pool, ngx_str_t *name, u_char *err,
    size_t len)
{
    ngx_str_t   pattern;
    ngx_uint_t  caseless;

    pattern.data = name->data + 1;
    pattern.len = name->len - 1;

    caseless = (pattern.len && pattern.data[0] == '*');

    if (caseless) {
        pattern.data++;
        pattern.len--;
    }

    return ngx_http_llm_regex_compile(pool, &pattern, caseless, err, len);
}


static void
ngx_http_llm_regex_cleanup(void *data)
{
    ngx_http_llm_regex_t  *rx = data;

    if (rx->match) {
        pcre2_match_data_free(rx->match);
        rx->match = NULL;
    }

    if (rx->code) {
        pcre2_code_free(rx->code);
        rx->code = NULL;
    }
}


ngx_int_t
ngx_http_llm_regex_exec(ngx_http_llm_regex_t *rx, u_char *p, size_t len)
{
    int  rc;

    rc = pcre2_match(rx->code, p, len, 0, 0, rx->match, NULL);

    /* 0: more captures than the ovector holds, still a match */
    if (rc >= 0) {
        return NGX_OK;
    }

    return (rc == PCRE2_ERROR_NOMATCH) ? NGX_DECLINED : NGX_ERROR;
}


void
ngx_http_llm_regex_capture(ngx_http_llm_regex_t *rx, u_char *subject,
    ngx_uint_t n, ngx_str_t *out)
{
    PCRE2_SIZE  *ov;

    ov = pcre2_get_ovector_pointer((pcre2_match_data *) rx->match);

    out->data = subject;
    out->len = 0;

    if (n >= pcre2_get_ovector_count((pcre2_match_data *) rx->match)
        || ov[2 * n] == PCRE2_UNSET)
    {
        return;
    }

    out->data = subject + ov[2 * n];
    out->len = ov[2 * n + 1] - ov[2 * n];
}


/*
 * when tools ROUTE;
 * when team NAME ROUTE;
 * when prompt_tokens >=|>|<=|< NUMBER ROUTE;
 * when last_user ~|~*|!~|!~* REGEX ROUTE;
 * when header NAME =|!=|~|~*|!~|!~* VALUE ROUTE;
 * when $variable =|!=|~|~*|!~|!~* VALUE ROUTE;
 */

char *
ngx_http_llm_rule_parse(ngx_conf_t *cf, ngx_http_llm_route_t *route)
{
    u_char               *p;
    ngx_str_t            *value, name;
    ngx_uint_t            n, i;
    ngx_http_llm_rule_t  *rule;

    value = cf->args->elts;
    n = cf->args->nelts;

    if (route->rules == NULL) {
        route->rules = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_llm_rule_t));
        if (route->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (route->rules->nelts == NGX_HTTP_LLM_MAX_RULES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_route \"%V\" has more than %d \"when\" rules",
                           &route->name, NGX_HTTP_LLM_MAX_RULES);
        return NGX_CONF_ERROR;
    }

    rule = ngx_array_push(route->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_llm_rule_t));

    rule->route_name = value[n - 1];
    rule->line = cf->conf_file->line;

#define ngx_http_llm_word(w, s)                                              \
    ((w)->len == sizeof(s) - 1 && ngx_strncmp((w)->data, s, (w)->len) == 0)

    if (n == 3 && ngx_http_llm_word(&value[1], "tools")) {
        rule->kind = NGX_HTTP_LLM_WHEN_TOOLS;
        return NGX_CONF_OK;
    }

    if (n == 4 && ngx_http_llm_word(&value[1], "team")) {
        rule->kind = NGX_HTTP_LLM_WHEN_TEAM;
        rule->value = value[2];
        return NGX_CONF_OK;
    }

    if (n == 5 && ngx_http_llm_word(&value[1], "prompt_tokens")) {
        rule->kind = NGX_HTTP_LLM_WHEN_PROMPT;
        rule->number = ngx_atoof(value[3].data, value[3].len);

        if (ngx_http_llm_rule_op(&value[2], rule) != NGX_OK
            || rule->op < NGX_HTTP_LLM_OP_GE || rule->number == NGX_ERROR)
        {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (n == 5 && ngx_http_llm_word(&value[1], "last_user")) {
        rule->kind = NGX_HTTP_LLM_WHEN_LAST_USER;

        if (ngx_http_llm_rule_op(&value[2], rule) != NGX_OK
            || (rule->op != NGX_HTTP_LLM_OP_REGEX
                && rule->op != NGX_HTTP_LLM_OP_REGEX_CASELESS))
        {
            goto invalid;
        }

        return ngx_http_llm_rule_operand(cf, route, rule, &value[2],
                                         &value[3]);
    }

    if (n == 6 && ngx_http_llm_word(&value[1], "header")) {

        /* the header's variable: $http_x_tier for X-Tier */

        name.len = sizeof("http_") - 1 + value[2].len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(name.data, "http_", sizeof("http_") - 1);

        for (i = 0; i < value[2].len; i++) {
            p[i] = (value[2].data[i] == '-') ? '_'
                                             : ngx_tolower(value[2].data[i]);
        }

        value++;

    } else if (n == 5 && value[1].len > 1 && value[1].data[0] == '$') {
        name.data = value[1].data + 1;
        name.len = value[1].len - 1;

    } else {
        goto invalid;
    }

    rule->kind = NGX_HTTP_LLM_WHEN_VARIABLE;

    rule->index = ngx_http_get_variable_index(cf, &name);
    if (rule->index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_rule_op(&value[2], rule) != NGX_OK
        || rule->op >= NGX_HTTP_LLM_OP_GE)
    {
        goto invalid;
    }

    return ngx_http_llm_rule_operand(cf, route, rule, &value[2], &value[3]);

#undef ngx_http_llm_word

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"when\" in llm_route \"%V\": \"when tools\", "
                       "\"when team NAME\", \"when prompt_tokens >= N\", "
                       "\"when last_user ~ REGEX\", \"when header NAME = "
                       "VALUE\" or \"when $variable = VALUE\", then a route, "
                       "is expected", &route->name);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_llm_rule_op(ngx_str_t *word, ngx_http_llm_rule_t *rule)
{
    static ngx_str_t  ops[] = {
        ngx_string("="), ngx_string("~"), ngx_string("~*"),
        ngx_string(">="), ngx_string(">"), ngx_string("<="), ngx_string("<")
    };

    ngx_str_t   op;
    ngx_uint_t  i;

    op = *word;

    /* "!=", "!~", "!~*" */
    rule->negate = (op.len > 1 && op.data[0] == '!');

    if (rule->negate) {
        op.data++;
        op.len--;
    }

    for (i = 0; i < sizeof(ops) / sizeof(ngx_str_t); i++) {
        if (ops[i].len == op.len
            && ngx_strncmp(ops[i].data, op.data, op.len) == 0)
        {
            rule->op = i;
            return (rule->negate && rule->op >= NGX_HTTP_LLM_OP_GE)
                   ? NGX_ERROR : NGX_OK;
        }
    }

    return NGX_ERROR;
}


/* the value compared with, or the regex matched */

static char *
ngx_http_llm_rule_operand(ngx_conf_t *cf, ngx_http_llm_route_t *route,
    ngx_http_llm_rule_t *rule, ngx_str_t *op, ngx_str_t *operand)
{
    u_char      err[256];
    ngx_uint_t  caseless;

    if (rule->op == NGX_HTTP_LLM_OP_EQ) {
        rule->value = *operand;
        return NGX_CONF_OK;
    }

    caseless = (rule->op == NGX_HTTP_LLM_OP_REGEX_CASELESS);

    rule->regex = ngx_http_llm_regex_compile(cf->pool, operand, caseless,
                                             err, sizeof(err));
    if (rule->regex == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid regex after \"%V\" in llm_route \"%V\": "
                           "%s", op, &route->name, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Rules name exact routes without rules of their own: one step, no
 * loops. A route keeps the body's tree when a rule reads the last user
 * message or a route it may choose has targets in another API.
 */

ngx_int_t
ngx_http_llm_rules_init(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf,
    ngx_http_llm_route_t *route)
{
    ngx_uint_t               i, j, k;
    ngx_http_llm_rule_t     *rule;
    ngx_http_llm_route_t   **rr, *list;
    ngx_http_llm_target_t   *t;

    for (k = 0; k < 1 + (route->rules ? route->rules->nelts : 0); k++) {

        if (k == 0) {
            list = route;

        } else {
            rule = route->rules->elts;
            rule = &rule[k - 1];
            rr = lmcf->routes.elts;

            for (i = 0; i < lmcf->routes.nelts; i++) {
                if (rr[i]->name.len == rule->route_name.len
                    && ngx_strncmp(rr[i]->name.data, rule->route_name.data,
                                   rule->route_name.len) == 0)
                {
                    break;
                }
            }

            if (i == lmcf->routes.nelts || rr[i]->glob || rr[i]->rules) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"when\" in %s:%ui names %s llm_route "
                              "\"%V\": it must be an exact name with no "
                              "\"when\" of its own (llm_route \"%V\" in "
                              "line %ui)", route->file_name, rule->line,
                              i == lmcf->routes.nelts ? "unknown" : "the",
                              &rule->route_name, &route->name, route->line);
                return NGX_ERROR;
            }

            rule->route = rr[i];
            list = rr[i];

            if (rule->kind == NGX_HTTP_LLM_WHEN_LAST_USER) {
                route->needs_tree = 1;
                lmcf->trees = 1;
            }
        }

        t = list->targets.elts;

        for (j = 0; j < list->targets.nelts; j++) {
            if (t[j].provider->dialect
                && t[j].provider->dialect->api != NGX_HTTP_LLM_API_OPENAI)
            {
                route->needs_tree = 1;
            }
        }
    }

    return NGX_OK;
}


ngx_http_llm_route_t *
ngx_http_llm_rules_apply(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_route_t *route)
{
    ngx_uint_t            i;
    ngx_http_llm_rule_t  *rule;

    if (route->rules == NULL) {
        return route;
    }

    rule = route->rules->elts;

    for (i = 0; i < route->rules->nelts; i++) {
        if (ngx_http_llm_rule_holds(r, ctx, &rule[i]) == NGX_OK) {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llm route \"%V\": rule %ui chose \"%V\"",
                           &route->name, i + 1, &rule[i].route->name);
            return rule[i].route;
        }
    }

    return route;
}


/* NGX_OK: the condition holds; a regex's match limit: it does not */

static ngx_int_t
ngx_http_llm_rule_holds(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx,
    ngx_http_llm_rule_t *rule)
{
    int64_t                     tokens;
    ngx_int_t                   rc;
    ngx_http_llm_entity_t      *team;
    ngx_http_variable_value_t  *vv;

    switch (rule->kind) {

    case NGX_HTTP_LLM_WHEN_TOOLS:
        return ctx->chat.tools ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_LLM_WHEN_TEAM:
        team = ctx->key ? ctx->key->parent : NULL;

        return (team && team->name.len == rule->value.len
                && ngx_strncmp(team->name.data, rule->value.data,
                               rule->value.len) == 0)
               ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_LLM_WHEN_PROMPT:
        /* estimated as the gateway's limits estimate it */
        tokens = (ctx->chat.message_bytes + 3) / 4;

        switch (rule->op) {
        case NGX_HTTP_LLM_OP_GE:
            return tokens >= rule->number ? NGX_OK : NGX_DECLINED;
        case NGX_HTTP_LLM_OP_GT:
            return tokens > rule->number ? NGX_OK : NGX_DECLINED;
        case NGX_HTTP_LLM_OP_LE:
            return tokens <= rule->number ? NGX_OK : NGX_DECLINED;
        default:
            return tokens < rule->number ? NGX_OK : NGX_DECLINED;
        }

    case NGX_HTTP_LLM_WHEN_LAST_USER:
        rc = ngx_http_llm_rule_last_user(ctx, rule->regex);
        break;

    default: /* NGX_HTTP_LLM_WHEN_VARIABLE */
        vv = ngx_http_get_indexed_variable(r, rule->index);

        if (vv == NULL || vv->not_found) {
            vv = &ngx_http_variable_null_value;
        }

        if (rule->op == NGX_HTTP_LLM_OP_EQ) {
            rc = (vv->len == rule->value.len
                  && ngx_strncmp(vv->data, rule->value.data, vv->len) == 0)
                 ? NGX_OK : NGX_DECLINED;

        } else {
            rc = ngx_http_llm_regex_exec(rule->regex, vv->data, vv->len);
        }

        break;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "llm: a \"when\" regex in %s:%ui hit PCRE2's match "
                      "limit: the rule does not hold",
                      ctx->route->file_name, rule->line);
        return NGX_DECLINED;
    }

    if (rule->negate) {
        return (rc == NGX_OK) ? NGX_DECLINED : NGX_OK;
    }

    return rc;
}


/*
 * The text of the last message whose role is "user": a string content,
 * or the "text" of its parts; any part may match
 */

static ngx_int_t
ngx_http_llm_rule_last_user(ngx_http_llm_ctx_t *ctx, ngx_http_llm_regex_t *rx)
{
    ngx_int_t             rc;
    ngx_str_t            *text;
    ngx_http_llm_json_t  *messages, *m, *last, *content, *part;

    messages = ngx_http_llm_json_get(ctx->tree, "messages");

    if (!ngx_http_llm_json_is(messages, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_DECLINED;
    }

    last = NULL;

    for (m = messages->child; m; m = m->next) {
        if (ngx_http_llm_json_eq(ngx_http_llm_json_get(m, "role"), "user")) {
            last = m;
        }
    }

    content = ngx_http_llm_json_get(last, "content");

    if (ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_STRING)) {
        return ngx_http_llm_regex_exec(rx, content->str.data,
                                       content->str.len);
    }

    if (!ngx_http_llm_json_is(content, NGX_HTTP_LLM_JSON_ARRAY)) {
        return NGX_DECLINED;
    }

    for (part = content->child; part; part = part->next) {
        text = ngx_http_llm_json_str(part, "text");

        if (text == NULL) {
            continue;
        }

        rc = ngx_http_llm_regex_exec(rx, text->data, text->len);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return NGX_DECLINED;
}
