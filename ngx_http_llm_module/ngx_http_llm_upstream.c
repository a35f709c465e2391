
/*
 * The module's upstream block, "llm_upstream". With "proxy_pass
 * https://llm_upstream;" nginx parses no URL and looks up no upstream
 * block by name per request, as it does for "proxy_pass $llm_upstream;":
 * the block's peer initialization hands the attempt to its provider's
 * peers, found when the configuration is read. The request line is
 * written by the attempt's writer (ngx_http_llm_attempt.c).
 *
 * A provider's peers are an upstream block (its "keepalive" pool, or the
 * block its url names), or its address; a provider named by DNS is
 * resolved per request with the location's resolver, as proxy_pass does
 * a URL in a variable: while proxy builds the request, reading
 * $llm_upstream_host (its Host header) sets the name to resolve.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_variables.h"
#include "ngx_http_llm_upstream.h"


static ngx_int_t ngx_http_llm_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_llm_upstream_peer_init(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static void ngx_http_llm_upstream_attempt(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


ngx_int_t
ngx_http_llm_upstream_add(ngx_conf_t *cf, ngx_http_llm_main_conf_t *lmcf)
{
    ngx_url_t                      u;
    ngx_http_upstream_srv_conf_t  *uscf;

    ngx_memzero(&u, sizeof(ngx_url_t));
    ngx_str_set(&u.host, "llm_upstream");
    u.no_port = 1;

    /* as an "upstream" block: "upstream llm_upstream" elsewhere is a
       duplicate, and proxy_pass may name it without a port */

    uscf = ngx_http_upstream_add(cf, &u, NGX_HTTP_UPSTREAM_CREATE);
    if (uscf == NULL) {
        return NGX_ERROR;
    }

    uscf->peer.init_upstream = ngx_http_llm_upstream_init;
    lmcf->upstream = uscf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_upstream_init(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    us->peer.init = ngx_http_llm_upstream_peer_init;

    return NGX_OK;
}


/*
 * Each provider's peers, found as nginx finds them for a URL in a
 * variable: an upstream block of the URL's host (and port, if the block
 * has one), else its address; else a name to resolve per request.
 */

ngx_int_t
ngx_http_llm_upstream_providers(ngx_conf_t *cf,
    ngx_http_llm_main_conf_t *lmcf)
{
    size_t                           scheme;
    in_port_t                        port;
    ngx_str_t                        host;
    ngx_url_t                        url;
    ngx_uint_t                       i, j;
    ngx_http_llm_provider_t        **pp, *p;
    ngx_http_upstream_srv_conf_t   **uscfp, *uscf;
    ngx_http_upstream_main_conf_t   *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;
    pp = lmcf->providers.elts;

    ngx_str_set(&host, "llm_upstream_host");

    for (i = 0; i < lmcf->providers.nelts; i++) {
        p = pp[i];

        if (p->disabled) {
            continue;
        }

        /* the origin: "https://" or "http://", then host[:port] */

        scheme = (p->origin.len > 8
                  && ngx_strncasecmp(p->origin.data, (u_char *) "https://", 8)
                     == 0)
                 ? 8 : 7;

        p->ssl = (scheme == 8);
        port = p->ssl ? 443 : 80;

        ngx_memzero(&url, sizeof(ngx_url_t));
        url.url.data = p->origin.data + scheme;
        url.url.len = p->origin.len - scheme;
        url.default_port = port;
        url.uri_part = 1;
        url.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &url) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s in the url of llm_provider \"%V\" in %s:%ui",
                          url.err ? url.err : "invalid host", &p->name,
                          p->file_name, p->line);
            return NGX_ERROR;
        }

        p->peers.host = url.host;
        p->peers.port = url.no_port ? port : url.port;
        p->peers.no_port = url.no_port;

        for (j = 0; j < umcf->upstreams.nelts; j++) {
            uscf = uscfp[j];

            if (uscf != lmcf->upstream
                && uscf->host.len == url.host.len
                && ((uscf->port == 0 && url.no_port)
                    || uscf->port == p->peers.port)
                && ngx_strncasecmp(uscf->host.data, url.host.data,
                                   url.host.len)
                   == 0)
            {
                p->pool = uscf;
                break;
            }
        }

        if (p->pool == NULL && url.addrs) {
            p->peers.sockaddr = url.addrs[0].sockaddr;
            p->peers.socklen = url.addrs[0].socklen;
            p->peers.name = url.addrs[0].name;
            p->peers.naddrs = 1;
        }

        if (p->pool == NULL && p->peers.sockaddr == NULL
            && lmcf->upstream_used && !ngx_http_llm_variable_read(cf, &host))
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "llm_provider \"%V\" in %s:%ui names host \"%V\", "
                          "which is resolved per request: a location with "
                          "\"proxy_pass https://llm_upstream;\" needs "
                          "\"proxy_set_header Host $llm_upstream_host;\" "
                          "(llm_proxy_params)", &p->name, p->file_name,
                          p->line, &url.host);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* proxy sets u->conf after it evaluated a URL in a variable */

ngx_uint_t
ngx_http_llm_upstream_fixed(ngx_http_upstream_t *u)
{
    return u->conf && u->conf->upstream
           && u->conf->upstream->peer.init == ngx_http_llm_upstream_peer_init;
}


static ngx_int_t
ngx_http_llm_upstream_peer_init(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_upstream_t      *u;
    ngx_http_llm_ctx_t       *ctx;
    ngx_http_llm_provider_t  *p;

    ctx = ngx_http_llm_get_ctx(r);

    if (ctx == NULL || !ctx->attempt_ready) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream \"llm_upstream\" takes only the attempts "
                      "of an llm_gateway location");
        return NGX_ERROR;
    }

    u = r->upstream;
    p = ctx->target->provider;

    ngx_http_llm_upstream_attempt(r, ctx);

    if (p->pool) {
        u->upstream = p->pool;
        return p->pool->peer.init(r, p->pool);
    }

    if (p->peers.sockaddr) {
        return ngx_http_upstream_create_round_robin_peer(r, &p->peers);
    }

    /* a name to resolve: $llm_upstream_host was not read (no Host line) */

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "llm_provider \"%V\" names host \"%V\", which is resolved "
                  "per request: its location needs \"proxy_set_header Host "
                  "$llm_upstream_host;\" (llm_proxy_params)",
                  &p->name, &p->peers.host);

    return NGX_ERROR;
}


void
ngx_http_llm_upstream_resolve(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
    ngx_http_upstream_t           *u;
    ngx_http_llm_provider_t       *p;
    ngx_http_upstream_resolved_t  *ur;

    u = r->upstream;

    /* only while proxy builds the request, and once */

    if (u == NULL || u->state != NULL || u->resolved != NULL
        || !ctx->attempt_ready || !ngx_http_llm_upstream_fixed(u))
    {
        return;
    }

    p = ctx->target->provider;

    if (p->pool || p->peers.sockaddr) {
        return;
    }

    /* nginx resolves it, as for "proxy_pass $llm_upstream" */

    ur = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_resolved_t));
    if (ur == NULL) {
        return;
    }

    ur->host = p->peers.host;
    ur->port = p->peers.port;
    ur->no_port = p->peers.no_port;

    u->resolved = ur;

    ngx_http_llm_upstream_attempt(r, ctx);
}


/* the attempt's scheme and TLS name, and the writer of its request */

static void
ngx_http_llm_upstream_attempt(ngx_http_request_t *r, ngx_http_llm_ctx_t *ctx)
{
#if (NGX_HTTP_SSL)
    ngx_http_upstream_t      *u;
    ngx_http_llm_provider_t  *p;

    u = r->upstream;
    p = ctx->target->provider;

    u->ssl = p->ssl;
    u->ssl_name = p->host;
#endif

    ngx_http_llm_attach_writer(r, ctx);
}
