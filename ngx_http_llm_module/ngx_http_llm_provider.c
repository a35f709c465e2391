
/*
 * llm_provider blocks: where a provider is, how to authenticate to it and
 * which dialect it speaks. Keys are read once, at configuration time.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"
#include "ngx_http_llm_health.h"


static char *ngx_http_llm_provider_directive(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_llm_provider_url(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *url);
static char *ngx_http_llm_provider_key(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *value, ngx_uint_t nargs,
    ngx_str_t *out);
static char *ngx_http_llm_provider_add_option(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *value, ngx_uint_t nargs,
    ngx_uint_t secret);
static char *ngx_http_llm_check_options(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static char *ngx_http_llm_provider_header(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_llm_valid_header_value(ngx_str_t *value);
static ngx_int_t ngx_http_llm_provider_secrets(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_provider_secret_add(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *secret);
static ngx_int_t ngx_http_llm_provider_header_block(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_host_is_upstream(ngx_conf_t *cf,
    ngx_str_t *host);
static char *ngx_http_llm_provider_keepalive(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_str_t *value, ngx_uint_t n);
static char *ngx_http_llm_provider_pool(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);


static ngx_http_llm_dialect_t  *ngx_http_llm_dialects[] = {
    &ngx_http_llm_openai_dialect,
    &ngx_http_llm_anthropic_dialect,
    &ngx_http_llm_gemini_dialect,
    &ngx_http_llm_azure_dialect,
    &ngx_http_llm_bedrock_dialect,
    NULL
};


/* options of some dialect; credentials are read like "key" */
static struct {
    ngx_str_t                      name;
    ngx_uint_t                     secret;
} ngx_http_llm_dialect_options[] = {
    { ngx_string("version"), 0 },
    { ngx_string("max_tokens"), 0 },
    { ngx_string("api_version"), 0 },
    { ngx_string("deployment"), 0 },
    { ngx_string("region"), 0 },
    { ngx_string("access_key"), 1 },
    { ngx_string("secret_key"), 1 },
    { ngx_string("session_token"), 1 },
    { ngx_string("responses"), 0 },
    { ngx_null_string, 0 }
};


char *
ngx_http_llm_provider_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_main_conf_t *lmcf = conf;

    char                      *rv;
    ngx_str_t                 *value;
    ngx_conf_t                 save;
    ngx_http_llm_provider_t   *p, **pp;

    value = cf->args->elts;

    if (ngx_http_llm_find_provider(lmcf, &value[1]) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate llm_provider \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    p = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_provider_t));
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    p->name = value[1];
    p->file_name = cf->conf_file->file.name.data;
    p->line = cf->conf_file->line;

    p->headers = ngx_array_create(cf->pool, 4, sizeof(ngx_http_llm_header_t));
    if (p->headers == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_llm_health_defaults(&p->health);

    p->keepalive = NGX_CONF_UNSET_UINT;

    save = *cf;
    cf->handler = ngx_http_llm_provider_directive;
    cf->handler_conf = (char *) p;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (p->origin.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_provider \"%V\" has no \"url\"", &p->name);
        return NGX_CONF_ERROR;
    }

    if (p->host.len == 0) {
        if (ngx_strncmp(p->authority.data, "unix:", 5) == 0) {
            ngx_str_set(&p->host, "localhost");

        } else {
            p->host = p->authority;
        }
    }

    if (p->dialect == NULL) {
        p->dialect = &ngx_http_llm_openai_dialect;
    }

    /*
     * a pool only when asked: it moves a DNS name's resolution to load
     * time, and its idle connections keep memory a burst of requests
     * would otherwise give back. Before the dialect builds its URLs from
     * the origin.
     */

    if (p->keepalive == NGX_CONF_UNSET_UINT) {
        p->keepalive = 0;

    } else if (p->keepalive
               && ngx_http_llm_provider_pool(cf, p) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_check_options(cf, p) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (p->dialect->init_provider) {
        rv = p->dialect->init_provider(cf, p);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (ngx_http_llm_provider_secrets(cf, p) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (p->dialect->api != NGX_HTTP_LLM_API_OPENAI) {
        /* requests to it are translated from a tree of their body */
        lmcf->trees = 1;
    }

    pp = ngx_array_push(&lmcf->providers);
    if (pp == NULL) {
        return NGX_CONF_ERROR;
    }

    *pp = p;

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_provider_directive(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    ngx_http_llm_provider_t  *p = (ngx_http_llm_provider_t *) conf;

    ngx_str_t                *value;
    ngx_uint_t                i, n;
    ngx_http_llm_dialect_t   *d;

    value = cf->args->elts;
    n = cf->args->nelts;

    if (value[0].len == 3 && ngx_strncmp(value[0].data, "url", 3) == 0) {
        if (n != 2) {
            goto invalid_args;
        }

        if (p->origin.len) {
            goto duplicate;
        }

        return ngx_http_llm_provider_url(cf, p, &value[1]);
    }

    if (value[0].len == 3 && ngx_strncmp(value[0].data, "key", 3) == 0) {
        if (n != 2 && n != 3) {
            goto invalid_args;
        }

        if (p->key.len || p->disabled) {
            goto duplicate;
        }

        return ngx_http_llm_provider_key(cf, p, &value[1], n - 1, &p->key);
    }

    if (value[0].len == 6 && ngx_strncmp(value[0].data, "format", 6) == 0) {
        if (n != 2) {
            goto invalid_args;
        }

        if (p->dialect) {
            goto duplicate;
        }

        for (i = 0; ngx_http_llm_dialects[i]; i++) {
            d = ngx_http_llm_dialects[i];

            if (d->name.len == value[1].len
                && ngx_strncmp(d->name.data, value[1].data, value[1].len) == 0)
            {
                p->dialect = d;
                return NGX_CONF_OK;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown provider format \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[0].len == 6 && ngx_strncmp(value[0].data, "header", 6) == 0) {
        if (n != 3) {
            goto invalid_args;
        }

        return ngx_http_llm_provider_header(cf, p, &value[1], &value[2]);
    }

    if (value[0].len == 6 && ngx_strncmp(value[0].data, "health", 6) == 0) {
        if (n < 2) {
            goto invalid_args;
        }

        if (p->health_set) {
            goto duplicate;
        }

        p->health_set = 1;

        return ngx_http_llm_health_directive(cf, &p->health, &value[1],
                                             n - 1);
    }

    if (value[0].len == 9 && ngx_strncmp(value[0].data, "keepalive", 9) == 0)
    {
        if (n < 2 || n > 4) {
            goto invalid_args;
        }

        if (p->keepalive != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        return ngx_http_llm_provider_keepalive(cf, p, value, n);
    }

    if (value[0].len == 4 && ngx_strncmp(value[0].data, "host", 4) == 0) {
        if (n != 2) {
            goto invalid_args;
        }

        if (p->host.len) {
            goto duplicate;
        }

        if (value[1].len == 0
            || ngx_http_llm_valid_header_value(&value[1]) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        p->host = value[1];
        return NGX_CONF_OK;
    }

    for (i = 0; ngx_http_llm_dialect_options[i].name.len; i++) {
        if (ngx_http_llm_dialect_options[i].name.len == value[0].len
            && ngx_strncmp(ngx_http_llm_dialect_options[i].name.data,
                           value[0].data, value[0].len) == 0)
        {
            if (n != 2 && !(n == 3 && ngx_http_llm_dialect_options[i].secret))
            {
                goto invalid_args;
            }

            if (ngx_http_llm_provider_option(p, (char *) value[0].data)) {
                goto duplicate;
            }

            return ngx_http_llm_provider_add_option(cf, p, value, n,
                                      ngx_http_llm_dialect_options[i].secret);
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown directive \"%V\" in llm_provider", &value[0]);
    return NGX_CONF_ERROR;

invalid_args:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid number of arguments in \"%V\" of "
                       "llm_provider \"%V\"", &value[0], &p->name);
    return NGX_CONF_ERROR;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" is duplicate in llm_provider \"%V\"",
                       &value[0], &p->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_llm_provider_url(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *url)
{
    size_t      scheme;
    u_char     *authority, *path, *last, *host_end;
    ngx_str_t   host;

    if (url->len > 7 && ngx_strncasecmp(url->data, (u_char *) "http://", 7)
                        == 0)
    {
        scheme = 7;

    } else if (url->len > 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
#if (NGX_HTTP_SSL)
        scheme = 8;
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "https in \"%V\" requires nginx built with SSL",
                           url);
        return NGX_CONF_ERROR;
#endif

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid url \"%V\": it must start with "
                           "\"http://\" or \"https://\"", url);
        return NGX_CONF_ERROR;
    }

    authority = url->data + scheme;
    last = url->data + url->len;

    if (ngx_strlchr(authority, last, '?') || ngx_strlchr(authority, last, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid url \"%V\": query strings and fragments "
                           "are not allowed", url);
        return NGX_CONF_ERROR;
    }

    if (last - authority > 5 && ngx_strncmp(authority, "unix:", 5) == 0) {

        /* http://unix:/path/to/socket:/v1, as proxy_pass writes it */

        path = ngx_strlchr(authority + 5, last, ':');
        if (path == NULL || path == authority + 5) {
            goto invalid;
        }

        p->origin.data = url->data;
        p->origin.len = path + 1 - url->data;
        p->authority.data = authority;
        p->authority.len = path - authority;
        path++;

        if (path == last || *path != '/') {
            goto invalid;
        }

        goto base_path;
    }

    for (path = authority; path < last; path++) {
        if (*path == '/') {
            break;
        }

        if (*path <= ' ' || *path == 0x7f) {
            goto invalid;
        }
    }

    if (path == authority) {
        goto invalid;
    }

    p->origin.data = url->data;
    p->origin.len = path - url->data;

    p->authority.data = authority;
    p->authority.len = path - authority;

    /* a name that is not an IP address needs DNS at run time */

    if (*authority != '[') {
        for (host_end = authority;
             host_end < authority + p->authority.len;
             host_end++)
        {
            if (*host_end == ':') {
                break;
            }
        }

        host.data = authority;
        host.len = host_end - authority;

        if (ngx_inet_addr(host.data, host.len) == INADDR_NONE) {
            p->needs_resolver = 1;
        }
    }

base_path:

    /* the path is used as given, without a trailing slash */

    while (last > path && last[-1] == '/') {
        last--;
    }

    p->base_path.data = path;
    p->base_path.len = last - path;

    for (; path < last; path++) {
        if (*path <= ' ' || *path == 0x7f) {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid url \"%V\"", url);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_llm_provider_key(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *value, ngx_uint_t nargs, ngx_str_t *out)
{
    char        *env;
    size_t       len;
    ssize_t      n;
    u_char      *s;
    ngx_str_t    name, key;
    ngx_file_t   file;
    ngx_uint_t   optional;
    ngx_file_info_t  fi;

    optional = 0;

    if (nargs == 2) {
        if (value[1].len == 8
            && ngx_strncmp(value[1].data, "optional", 8) == 0)
        {
            optional = 1;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"key\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[0].len > 4 && ngx_strncmp(value[0].data, "env:", 4) == 0) {

        name.len = value[0].len - 4;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(name.data, value[0].data + 4, name.len + 1);

        env = getenv((char *) name.data);

        if (env == NULL || *env == '\0') {
            if (optional) {
                ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                   "llm_provider \"%V\" is disabled: "
                                   "environment variable \"%V\" is not set",
                                   &p->name, &name);
                p->disabled = 1;
                return NGX_CONF_OK;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "environment variable \"%V\" of llm_provider "
                               "\"%V\" is not set", &name, &p->name);
            return NGX_CONF_ERROR;
        }

        len = ngx_strlen(env);

        key.data = ngx_pnalloc(cf->pool, len);
        if (key.data == NULL) {
            return NGX_CONF_ERROR;
        }

        key.len = len;
        ngx_memcpy(key.data, env, len);

    } else if (value[0].len > 5
               && ngx_strncmp(value[0].data, "file:", 5) == 0)
    {
        name.len = value[0].len - 5;
        name.data = value[0].data + 5;

        if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&file, sizeof(ngx_file_t));
        file.name = name;
        file.log = cf->log;

        file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (file.fd == NGX_INVALID_FILE) {
            if (optional) {
                ngx_conf_log_error(NGX_LOG_WARN, cf, ngx_errno,
                                   "llm_provider \"%V\" is disabled: "
                                   "key file \"%V\" cannot be opened",
                                   &p->name, &name);
                p->disabled = 1;
                return NGX_CONF_OK;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               ngx_open_file_n " \"%V\" failed", &name);
            return NGX_CONF_ERROR;
        }

        if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
            || ngx_file_size(&fi) > 16384)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "key file \"%V\" is not a small regular file",
                               &name);
            (void) ngx_close_file(file.fd);
            return NGX_CONF_ERROR;
        }

        len = (size_t) ngx_file_size(&fi);

        key.data = ngx_pnalloc(cf->pool, len + 1);
        if (key.data == NULL) {
            (void) ngx_close_file(file.fd);
            return NGX_CONF_ERROR;
        }

        n = ngx_read_file(&file, key.data, len, 0);

        (void) ngx_close_file(file.fd);

        if (n != (ssize_t) len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "key file \"%V\" could not be read", &name);
            return NGX_CONF_ERROR;
        }

        /* a trailing newline is the norm in key files */

        while (len && (key.data[len - 1] == '\n' || key.data[len - 1] == '\r'
                       || key.data[len - 1] == ' '
                       || key.data[len - 1] == '\t'))
        {
            len--;
        }

        key.len = len;

    } else {
        if (optional) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"optional\" applies to env: and file: keys");
            return NGX_CONF_ERROR;
        }

        key = value[0];
    }

    if (key.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty %V for llm_provider \"%V\"",
                           &((ngx_str_t *) cf->args->elts)[0], &p->name);
        return NGX_CONF_ERROR;
    }

    /* the key ends up in a request header: no control characters */

    for (s = key.data; s < key.data + key.len; s++) {
        if (*s < 0x20 || *s == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the %V of llm_provider \"%V\" contains "
                               "control characters",
                               &((ngx_str_t *) cf->args->elts)[0], &p->name);
            return NGX_CONF_ERROR;
        }
    }

    *out = key;

    return NGX_CONF_OK;
}


/*
 * An option of a dialect, kept until the provider's format is known (it
 * may come later in the block); credentials are read now, as keys are.
 */

static char *
ngx_http_llm_provider_add_option(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *value, ngx_uint_t nargs, ngx_uint_t secret)
{
    char          *rv;
    ngx_keyval_t  *kv;

    if (p->options == NULL) {
        p->options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (p->options == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(p->options);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[0];
    kv->value = value[1];

    if (secret) {
        rv = ngx_http_llm_provider_key(cf, p, &value[1], nargs - 1,
                                       &kv->value);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        return NGX_CONF_OK;
    }

    if (value[1].len == 0
        || ngx_http_llm_valid_header_value(&value[1]) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid %V \"%V\"",
                           &value[0], &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* every option given is one the provider's format takes */

static char *
ngx_http_llm_check_options(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    char          **name;
    ngx_uint_t      i;
    ngx_keyval_t   *kv;

    if (p->options == NULL) {
        return NGX_CONF_OK;
    }

    kv = p->options->elts;

    for (i = 0; i < p->options->nelts; i++) {

        for (name = p->dialect->options; name && *name; name++) {
            if (ngx_strlen(*name) == kv[i].key.len
                && ngx_strncmp(*name, kv[i].key.data, kv[i].key.len) == 0)
            {
                break;
            }
        }

        if (name == NULL || *name == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is not an option of format \"%V\" "
                               "in llm_provider \"%V\"", &kv[i].key,
                               &p->dialect->name, &p->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


ngx_str_t *
ngx_http_llm_provider_option(ngx_http_llm_provider_t *p, char *name)
{
    size_t         len;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    if (p->options == NULL) {
        return NULL;
    }

    len = ngx_strlen(name);
    kv = p->options->elts;

    for (i = 0; i < p->options->nelts; i++) {
        if (kv[i].key.len == len
            && ngx_strncmp(kv[i].key.data, name, len) == 0)
        {
            return &kv[i].value;
        }
    }

    return NULL;
}


static char *
ngx_http_llm_provider_header(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *name, ngx_str_t *value)
{
    u_char                 *s;
    ngx_http_llm_header_t  *h;

    if (name->len == 0) {
        goto invalid;
    }

    for (s = name->data; s < name->data + name->len; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '-'))
        {
            goto invalid;
        }
    }

    if (ngx_http_llm_valid_header_value(value) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value of header \"%V\"", name);
        return NGX_CONF_ERROR;
    }

    h = ngx_array_push(p->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name.len = name->len;
    h->name.data = ngx_pnalloc(cf->pool, name->len);
    if (h->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(h->name.data, name->data, name->len);

    h->value = *value;
    h->secret = ngx_http_llm_secret_header(&h->name);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid header name \"%V\"",
                       name);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_llm_valid_header_value(ngx_str_t *value)
{
    u_char  *s;

    for (s = value->data; s < value->data + value->len; s++) {
        if ((*s < 0x20 && *s != '\t') || *s == 0x7f) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* headers that carry credentials, whatever sets them */

ngx_uint_t
ngx_http_llm_secret_header(ngx_str_t *name)
{
    static ngx_str_t  secret[] = {
        ngx_string("authorization"),
        ngx_string("x-api-key"),
        ngx_string("api-key"),
        ngx_string("x-goog-api-key"),
        ngx_string("x-amz-security-token"),
        ngx_string("proxy-authorization"),
        ngx_string("cookie"),
        ngx_null_string
    };

    ngx_uint_t  i;

    for (i = 0; secret[i].len; i++) {
        if (secret[i].len == name->len
            && ngx_strncmp(secret[i].data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


ngx_http_llm_provider_t *
ngx_http_llm_find_provider(ngx_http_llm_main_conf_t *lmcf, ngx_str_t *name)
{
    ngx_uint_t                 i;
    ngx_http_llm_provider_t  **pp;

    pp = lmcf->providers.elts;

    for (i = 0; i < lmcf->providers.nelts; i++) {
        if (pp[i]->name.len == name->len
            && ngx_strncmp(pp[i]->name.data, name->data, name->len) == 0)
        {
            return pp[i];
        }
    }

    return NULL;
}


/*
 * Checks that need the whole http block: a provider named by hostname
 * needs a resolver where requests are proxied.
 */

ngx_int_t
ngx_http_llm_check_providers(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    u_char                     *colon;
    ngx_str_t                   host;
    ngx_uint_t                  i, j, k;
    ngx_resolver_t             *resolver;
    ngx_http_llm_provider_t   **pp, *p;
    ngx_http_core_loc_conf_t  **gw;

    pp = lmcf->providers.elts;
    gw = lmcf->gateways.elts;

    for (i = 0; i < lmcf->providers.nelts; i++) {
        p = pp[i];

        if (p->disabled || lmcf->gateways.nelts == 0) {
            continue;
        }

        if (p->needs_resolver) {
            host = p->authority;

            colon = ngx_strlchr(host.data, host.data + host.len, ':');
            if (colon) {
                host.len = colon - host.data;
            }

            if (ngx_http_llm_host_is_upstream(cf, &host)) {
                p->needs_resolver = 0;

            } else {
                for (j = 0; j < lmcf->gateways.nelts; j++) {
                    resolver = gw[j]->resolver;

                    if (resolver == NULL || resolver->connections.nelts == 0) {
                        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                                      "llm_provider \"%V\" in %s:%ui names "
                                      "host \"%V\", which needs a "
                                      "\"resolver\" in the gateway location "
                                      "\"%V\"; or name an upstream block or "
                                      "an IP address in its url",
                                      &p->name, p->file_name, p->line, &host,
                                      &gw[j]->name);
                        return NGX_ERROR;
                    }
                }
            }
        }

        /*
         * at most NGX_HTTP_LLM_MAX_HEADERS, its own and its dialect's; an
         * attempt makes room for its dialect's, max_dynamic
         */

        for (k = 0; p->dialect->dynamic_headers
                    && p->dialect->dynamic_headers[k]; k++)
        {
            /* void */
        }

        if (p->headers->nelts + k > NGX_HTTP_LLM_MAX_HEADERS) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "llm_provider \"%V\" in %s:%ui has %ui \"header\" "
                          "lines: at most %ui with format %V",
                          &p->name, p->file_name, p->line,
                          p->headers->nelts, NGX_HTTP_LLM_MAX_HEADERS - k,
                          &p->dialect->name);
            return NGX_ERROR;
        }

        p->max_dynamic = k;

        if (ngx_http_llm_provider_header_block(cf, p) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The provider's own headers as every attempt sends them, formatted once:
 * the upstream writer copies the block whole. Their values hold no CR or
 * LF (checked as each was set); those without a value are not sent.
 */

static ngx_int_t
ngx_http_llm_provider_header_block(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    size_t  len;

    len = ngx_http_llm_headers_size(p->headers->elts, p->headers->nelts);

    if (len == 0) {
        return NGX_OK;
    }

    p->header_block.data = ngx_pnalloc(cf->pool, len);
    if (p->header_block.data == NULL) {
        return NGX_ERROR;
    }

    p->header_block.len = len;

    (void) ngx_http_llm_write_headers(p->header_block.data, p->headers->elts,
                                      p->headers->nelts);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_host_is_upstream(ngx_conf_t *cf, ngx_str_t *host)
{
    ngx_uint_t                      i;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if ((uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE)
            && uscfp[i]->host.len == host->len
            && ngx_strncasecmp(uscfp[i]->host.data, host->data, host->len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* keepalive connections [timeout=time] [resolve] | off */

static char *
ngx_http_llm_provider_keepalive(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *value, ngx_uint_t n)
{
    ngx_str_t   time;
    ngx_uint_t  i;

    i = 2;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        if (n != 2) {
            goto invalid;
        }

        p->keepalive = 0;
        return NGX_CONF_OK;
    }

    p->keepalive = ngx_atoi(value[1].data, value[1].len);

    if (p->keepalive == (ngx_uint_t) NGX_ERROR || p->keepalive == 0
        || p->keepalive > NGX_HTTP_LLM_MAX_KEEPALIVE)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid keepalive \"%V\" in llm_provider "
                           "\"%V\": connections from 1 to %d, or off",
                           &value[1], &p->name, NGX_HTTP_LLM_MAX_KEEPALIVE);
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; i < n; i++) {

        /* timeout=: sooner than the provider closes idle connections */

        if (value[i].len > 8 && p->keepalive_timeout == 0
            && ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            time.data = value[i].data + 8;
            time.len = value[i].len - 8;
            p->keepalive_timeout = ngx_parse_time(&time, 0);

            if (p->keepalive_timeout == (ngx_msec_t) NGX_ERROR
                || p->keepalive_timeout == 0
                || p->keepalive_timeout > NGX_HTTP_LLM_MAX_KEEPALIVE_TIMEOUT)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in keepalive of "
                                   "llm_provider \"%V\": timeout=time, from "
                                   "1ms to 1h", &value[i], &p->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (value[i].len == 7 && !p->keepalive_resolve
            && ngx_strncmp(value[i].data, "resolve", 7) == 0)
        {
#if (nginx_version >= 1027003 && NGX_HTTP_UPSTREAM_ZONE)
            p->keepalive_resolve = 1;
            continue;
#else
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"resolve\" in keepalive of llm_provider "
                               "\"%V\" needs nginx 1.27.3 or newer with "
                               "the upstream zone module (this is "
                               NGINX_VERSION ")", &p->name);
            return NGX_CONF_ERROR;
#endif
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"%V\" in keepalive of llm_provider \"%V\"",
                       &value[i], &p->name);
    return NGX_CONF_ERROR;
}


/*
 * "keepalive N": the provider gets an upstream block of its own, written
 * as an operator would write it and built by nginx's upstream directive,
 * so that each worker keeps up to N idle connections (and TLS sessions)
 * to it; a URL in $llm_upstream that names no upstream block opens a new
 * connection every request. A DNS name is then resolved when the
 * configuration loads, as an upstream block's server is, or with
 * "resolve" (nginx 1.27.3+) at run time, which needs the block in shared
 * memory. max_fails=0: the gateway's health, not nginx's, takes the
 * provider out of rotation.
 */

static char *
ngx_http_llm_provider_pool(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    char             *rv;
    u_char            c, *s, *text;
    size_t            scheme, len;
    ngx_url_t         u;
    ngx_str_t        *arg, name;
    ngx_buf_t         b;
    ngx_uint_t        i;
    ngx_array_t      *args, *saved_args;
    ngx_command_t    *cmd;
    ngx_conf_file_t   file, *saved_file;

    for (i = 0; i < p->name.len; i++) {
        c = p->name.data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" has \"keepalive\": its "
                               "name may then have only letters, digits, "
                               "'_', '-' and '.'", &p->name);
            return NGX_CONF_ERROR;
        }
    }

    for (cmd = ngx_http_upstream_module.commands; cmd->name.len; cmd++) {
        if (cmd->name.len == sizeof("upstream") - 1
            && ngx_strncmp(cmd->name.data, "upstream", cmd->name.len) == 0)
        {
            break;
        }
    }

    if (cmd->name.len == 0) {
        return NGX_CONF_ERROR;
    }

    name.len = sizeof("llm_provider_") - 1 + p->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(name.data, "llm_provider_",
                          sizeof("llm_provider_") - 1),
               p->name.data, p->name.len);

    /* the server: a unix socket, or host:port with the scheme's port */

    scheme = p->authority.data - p->origin.data;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = p->authority;
    u.no_resolve = 1;

    if (ngx_parse_url(cf->temp_pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in the url of llm_provider \"%V\"",
                           u.err ? u.err : "invalid host", &p->name);
        return NGX_CONF_ERROR;
    }

    if (u.family != AF_UNIX && ngx_http_llm_host_is_upstream(cf, &u.host)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm_provider \"%V\" has \"keepalive\", but "
                           "its url names upstream \"%V\", whose own "
                           "\"keepalive\" applies", &p->name, &u.host);
        return NGX_CONF_ERROR;
    }

    if (p->keepalive_resolve && !p->needs_resolver) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"resolve\" in keepalive of llm_provider \"%V\" "
                           "is for a url with a host name", &p->name);
        return NGX_CONF_ERROR;
    }

    /*
     * "[zone <name> 64k;] server <authority>[:port] [resolve] max_fails=0;
     *  keepalive N; [keepalive_timeout Tms;] }"
     */

    len = sizeof("zone  64k; ") - 1 + name.len
          + sizeof("server ") - 1 + p->authority.len + sizeof(":443") - 1
          + sizeof(" resolve max_fails=0; keepalive ;") - 1 + NGX_INT_T_LEN
          + sizeof(" keepalive_timeout ms;") - 1 + NGX_INT_T_LEN
          + sizeof("}") - 1;

    text = ngx_pnalloc(cf->temp_pool, len);
    if (text == NULL) {
        return NGX_CONF_ERROR;
    }

    s = text;

    if (p->keepalive_resolve) {
        /* nginx re-resolves a name at run time only in shared memory */
        s = ngx_sprintf(s, "zone %V %uz; ", &name,
                        (size_t) NGX_HTTP_LLM_KEEPALIVE_ZONE);
    }

    s = ngx_cpymem(s, "server ", sizeof("server ") - 1);
    s = ngx_cpymem(s, p->authority.data, p->authority.len);

    if (u.no_port && u.family != AF_UNIX) {
        s = (scheme == sizeof("https://") - 1)
            ? ngx_cpymem(s, ":443", sizeof(":443") - 1)
            : ngx_cpymem(s, ":80", sizeof(":80") - 1);
    }

    if (p->keepalive_resolve) {
        s = ngx_cpymem(s, " resolve", sizeof(" resolve") - 1);
    }

    s = ngx_sprintf(s, " max_fails=0; keepalive %ui;", p->keepalive);

    if (p->keepalive_timeout) {
        s = ngx_sprintf(s, " keepalive_timeout %Mms;", p->keepalive_timeout);
    }

    *s++ = '}';

    /*
     * nginx's own "upstream" directive reads the block from this text as
     * if it came from the provider's line of the configuration file; the
     * text ends with the block's '}', so the file itself is never read
     */

    args = ngx_array_create(cf->temp_pool, 2, sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_CONF_ERROR;
    }

    arg = ngx_array_push_n(args, 2);
    if (arg == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&arg[0], "upstream");
    arg[1] = name;

    ngx_memzero(&b, sizeof(ngx_buf_t));
    b.start = text;
    b.pos = text;
    b.last = s;
    b.end = s;
    b.temporary = 1;

    file = *cf->conf_file;
    file.buffer = &b;
    file.dump = NULL;
    file.line = p->line;

    saved_file = cf->conf_file;
    saved_args = cf->args;
    cf->conf_file = &file;
    cf->args = args;

    rv = cmd->set(cf, cmd, NULL);

    cf->conf_file = saved_file;
    cf->args = saved_args;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* the URLs now name the block: "https://llm_provider_<name>" */

    len = scheme + name.len;

    s = ngx_pnalloc(cf->pool, len);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(s, p->origin.data, scheme), name.data, name.len);

    p->origin.data = s;
    p->origin.len = len;
    p->needs_resolver = 0;

    return NGX_CONF_OK;
}


/* the chat URL: the provider's origin and path, then the API's suffix */

ngx_int_t
ngx_http_llm_provider_chat_url(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    char *suffix)
{
    u_char  *s;
    size_t   len;

    len = ngx_strlen(suffix);

    p->chat_url.len = p->origin.len + p->base_path.len + len;
    p->chat_url.data = ngx_pnalloc(cf->pool, p->chat_url.len);
    if (p->chat_url.data == NULL) {
        return NGX_ERROR;
    }

    s = ngx_cpymem(p->chat_url.data, p->origin.data, p->origin.len);
    s = ngx_cpymem(s, p->base_path.data, p->base_path.len);
    ngx_memcpy(s, suffix, len);

    return NGX_OK;
}


/*
 * The header that carries the provider's key (name, its value prefix then
 * the key), sent by every attempt; a "header" line of the same name
 * would be a second key, and is refused. No key: nothing is sent (local
 * servers, a mock, may need none).
 */

char *
ngx_http_llm_provider_key_header(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    char *name, char *shown, char *prefix)
{
    u_char                 *s;
    size_t                  len, plen;
    ngx_uint_t              i;
    ngx_http_llm_header_t  *h;

    if (p->key.len == 0) {
        return NGX_CONF_OK;
    }

    len = ngx_strlen(name);
    h = p->headers->elts;

    for (i = 0; i < p->headers->nelts; i++) {
        if (h[i].name.len == len
            && ngx_strncasecmp(h[i].name.data, (u_char *) name, len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" has both a \"key\" and "
                               "an %s \"header\"", &p->name, shown);
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(p->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name.data = (u_char *) name;
    h->name.len = len;
    h->secret = 1;

    plen = ngx_strlen(prefix);

    if (plen == 0) {
        h->value = p->key;
        return NGX_CONF_OK;
    }

    h->value.len = plen + p->key.len;
    h->value.data = ngx_pnalloc(cf->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s = ngx_cpymem(h->value.data, prefix, plen);
    ngx_memcpy(s, p->key.data, p->key.len);

    return NGX_CONF_OK;
}


/*
 * A provider's error may quote the credential it was sent ("Incorrect API
 * key provided: sk-..."): the key and the values of secret headers (the
 * token after a scheme such as "Bearer ") are masked in what the gateway
 * passes on or logs of its errors. Shorter than 8 bytes, a secret would
 * mask ordinary words; such keys are not masked.
 */

static ngx_int_t
ngx_http_llm_provider_secrets(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    u_char                 *sp;
    ngx_str_t               token;
    ngx_uint_t              i;
    ngx_http_llm_header_t  *h;

    if (ngx_http_llm_provider_secret(cf, p, &p->key) != NGX_OK) {
        return NGX_ERROR;
    }

    h = p->headers->elts;

    for (i = 0; i < p->headers->nelts; i++) {
        if (!h[i].secret) {
            continue;
        }

        token = h[i].value;

        for (sp = token.data + token.len; sp > token.data; sp--) {
            if (sp[-1] == ' ') {
                token.len -= sp - token.data;
                token.data = sp;
                break;
            }
        }

        if (ngx_http_llm_provider_secret(cf, p, &token) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A secret, and the form JSON gives it when it holds '/', '"' or a
 * backslash (an AWS secret has '/', which some encoders escape): an
 * error body quotes it either way.
 */

ngx_int_t
ngx_http_llm_provider_secret(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *secret)
{
    u_char     *s, *d;
    size_t      n;
    ngx_str_t   escaped;

    if (ngx_http_llm_provider_secret_add(cf, p, secret) != NGX_OK) {
        return NGX_ERROR;
    }

    n = 0;

    for (s = secret->data; s < secret->data + secret->len; s++) {
        if (*s == '/' || *s == '"' || *s == '\\') {
            n++;
        }
    }

    if (n == 0 || secret->len < 8) {
        return NGX_OK;
    }

    escaped.len = secret->len + n;
    escaped.data = ngx_pnalloc(cf->pool, escaped.len);
    if (escaped.data == NULL) {
        return NGX_ERROR;
    }

    d = escaped.data;

    for (s = secret->data; s < secret->data + secret->len; s++) {
        if (*s == '/' || *s == '"' || *s == '\\') {
            *d++ = '\\';
        }

        *d++ = *s;
    }

    return ngx_http_llm_provider_secret_add(cf, p, &escaped);
}


static ngx_int_t
ngx_http_llm_provider_secret_add(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_str_t *secret)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    if (secret->len < 8) {
        return NGX_OK;
    }

    if (p->secrets == NULL) {
        p->secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (p->secrets == NULL) {
            return NGX_ERROR;
        }
    }

    s = p->secrets->elts;

    for (i = 0; i < p->secrets->nelts; i++) {
        if (s[i].len == secret->len
            && ngx_memcmp(s[i].data, secret->data, secret->len) == 0)
        {
            return NGX_OK;
        }
    }

    if (ngx_array_push(p->secrets) == NULL) {
        return NGX_ERROR;
    }

    /* the longest first: one within another is masked with it, whole */

    s = p->secrets->elts;

    for (i = p->secrets->nelts - 1; i > 0 && s[i - 1].len < secret->len; i--)
    {
        s[i] = s[i - 1];
    }

    s[i] = *secret;

    return NGX_OK;
}


/* each secret in s..s+len becomes as many '*': the length stays */

ngx_uint_t
ngx_http_llm_provider_mask(ngx_http_llm_provider_t *p, u_char *s, size_t len)
{
    u_char      *f, *last;
    ngx_str_t   *secret;
    ngx_uint_t   i, n;

    if (p->secrets == NULL) {
        return 0;
    }

    n = 0;
    last = s + len;
    secret = p->secrets->elts;

    for (i = 0; i < p->secrets->nelts; i++) {
        f = s;

        while ((size_t) (last - f) >= secret[i].len) {
            f = memchr(f, secret[i].data[0], last - secret[i].len + 1 - f);

            if (f == NULL) {
                break;
            }

            if (ngx_memcmp(f, secret[i].data, secret[i].len) != 0) {
                f++;
                continue;
            }

            ngx_memset(f, '*', secret[i].len);
            f += secret[i].len;
            n++;
        }
    }

    return n;
}


/* a string the gateway does not own: masked in a copy, if need be */

ngx_int_t
ngx_http_llm_provider_masked(ngx_pool_t *pool, ngx_http_llm_provider_t *p,
    ngx_str_t *s)
{
    u_char  *copy;

    if (p->secrets == NULL || s->len == 0) {
        return NGX_OK;
    }

    copy = ngx_pnalloc(pool, s->len);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, s->data, s->len);

    if (ngx_http_llm_provider_mask(p, copy, s->len)) {
        s->data = copy;
    }

    return NGX_OK;
}
