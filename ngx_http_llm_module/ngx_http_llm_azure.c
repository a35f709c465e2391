
/*
 * The Azure OpenAI dialect: OpenAI's format at
 * <url>/deployments/<deployment>/chat/completions?api-version=<version>,
 * with the key in an api-key header. The deployment is the provider's
 * "deployment", or else the target's model. With "api_version v1", Azure's
 * v1 API: OpenAI's paths under <url>/v1, without api-version, the
 * deployment named by the body's model (the target's).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_llm_module.h"
#include "ngx_http_llm_provider.h"
#include "ngx_http_llm_attempt.h"
#include "ngx_http_llm_dialect.h"


#define NGX_HTTP_LLM_AZURE_API_VERSION  "2024-10-21"


typedef struct {
    ngx_str_t                      api_version;
    /* the v1 API's <url>/v1/embeddings; empty for the dated versions */
    ngx_str_t                      v1_embeddings_url;
} ngx_http_llm_azure_conf_t;


static char *ngx_http_llm_azure_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_azure_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);
static ngx_int_t ngx_http_llm_azure_url(ngx_pool_t *pool,
    ngx_http_llm_provider_t *p, ngx_str_t *deployment, ngx_str_t *op,
    ngx_str_t *url);
static char *ngx_http_llm_azure_init_v1(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p, ngx_http_llm_azure_conf_t *acf);


static ngx_str_t  ngx_http_llm_azure_chat = ngx_string("/chat/completions");
static ngx_str_t  ngx_http_llm_azure_embeddings = ngx_string("/embeddings");


static char  *ngx_http_llm_azure_options[] = {
    "api_version",
    "deployment",
    NULL
};


ngx_http_llm_dialect_t  ngx_http_llm_azure_dialect = {
    ngx_string("azure"),
    ngx_http_llm_azure_init_provider,
    ngx_http_llm_azure_create_request,
    NULL,
    ngx_http_llm_openai_response_json,
    ngx_http_llm_openai_response_event,
    NGX_HTTP_LLM_API_OPENAI,
    NGX_HTTP_LLM_FRAMING_SSE,
    ngx_http_llm_azure_options,
    ngx_http_llm_openai_decode_body,
    ngx_http_llm_openai_decode_event,
    ngx_http_llm_openai_decode_error
};


static char *
ngx_http_llm_azure_init_provider(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    u_char                     *s;
    ngx_str_t                  *v;
    ngx_http_llm_azure_conf_t  *acf;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_azure_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    p->dialect_conf = acf;

    v = ngx_http_llm_provider_option(p, "api_version");

    if (v) {
        acf->api_version = *v;

    } else {
        ngx_str_set(&acf->api_version, NGX_HTTP_LLM_AZURE_API_VERSION);
    }

    for (s = acf->api_version.data;
         s < acf->api_version.data + acf->api_version.len;
         s++)
    {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')
              || *s == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid api_version \"%V\" in llm_provider "
                               "\"%V\"", &acf->api_version, &p->name);
            return NGX_CONF_ERROR;
        }
    }

    v = ngx_http_llm_provider_option(p, "deployment");

    if (acf->api_version.len == 2
        && ngx_strncmp(acf->api_version.data, "v1", 2) == 0)
    {
        if (v) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" uses Azure's v1 API, "
                               "where the model names the deployment: name "
                               "it in the targets, not with \"deployment\"",
                               &p->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_llm_azure_init_v1(cf, p, acf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    /* a fixed deployment: the URL is known now */

    if (v && ngx_http_llm_azure_url(cf->pool, p, v, &ngx_http_llm_azure_chat,
                                    &p->chat_url)
             != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid deployment \"%V\" in llm_provider \"%V\"",
                           v, &p->name);
        return NGX_CONF_ERROR;
    }

    return ngx_http_llm_provider_key_header(cf, p, "api-key", "api-key", "");
}


/* Azure's v1 API: OpenAI's URLs under <url>/v1 */

static char *
ngx_http_llm_azure_init_v1(ngx_conf_t *cf, ngx_http_llm_provider_t *p,
    ngx_http_llm_azure_conf_t *acf)
{
    size_t      len;
    ngx_str_t  *url;

    if (ngx_http_llm_provider_chat_url(cf, p, "/v1/chat/completions")
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    len = p->chat_url.len - (sizeof("/chat/completions") - 1);

    url = &acf->v1_embeddings_url;
    url->len = len + sizeof("/embeddings") - 1;
    url->data = ngx_pnalloc(cf->pool, url->len);
    if (url->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(url->data, p->chat_url.data, len), "/embeddings",
               sizeof("/embeddings") - 1);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_azure_url(ngx_pool_t *pool, ngx_http_llm_provider_t *p,
    ngx_str_t *deployment, ngx_str_t *op, ngx_str_t *url)
{
    u_char                     *s;
    ngx_http_llm_azure_conf_t  *acf;

    acf = p->dialect_conf;

    /* a deployment name is a path segment */

    if (ngx_http_llm_model_segment(deployment) != NGX_OK) {
        return NGX_DECLINED;
    }

    url->len = p->origin.len + p->base_path.len + sizeof("/deployments/") - 1
               + deployment->len + op->len + sizeof("?api-version=") - 1
               + acf->api_version.len;

    url->data = ngx_pnalloc(pool, url->len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    s = ngx_cpymem(url->data, p->origin.data, p->origin.len);
    s = ngx_cpymem(s, p->base_path.data, p->base_path.len);
    s = ngx_cpymem(s, "/deployments/", sizeof("/deployments/") - 1);
    s = ngx_cpymem(s, deployment->data, deployment->len);
    s = ngx_cpymem(s, op->data, op->len);
    s = ngx_cpymem(s, "?api-version=", sizeof("?api-version=") - 1);
    ngx_memcpy(s, acf->api_version.data, acf->api_version.len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_azure_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                  *deployment;
    ngx_http_llm_provider_t    *p;
    ngx_http_llm_azure_conf_t  *acf;

    p = ctx->target->provider;
    acf = p->dialect_conf;

    /* the body as OpenAI's dialect builds it */

    rc = ngx_http_llm_openai_dialect.create_request(r, ctx);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS
        && acf->v1_embeddings_url.len)
    {
        ctx->upstream_url = acf->v1_embeddings_url;
        return NGX_OK;
    }

    if (ctx->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS) {
        /* the deployment's embeddings URL, built per attempt */

        deployment = ngx_http_llm_provider_option(p, "deployment");

        return ngx_http_llm_azure_url(r->pool, p,
                                      deployment ? deployment
                                                 : &ctx->target_model,
                                      &ngx_http_llm_azure_embeddings,
                                      &ctx->upstream_url);
    }

    if (p->chat_url.len) {
        ctx->upstream_url = p->chat_url;
        return NGX_OK;
    }

    /* NGX_DECLINED: the client's model cannot name a deployment */

    return ngx_http_llm_azure_url(r->pool, p, &ctx->target_model,
                                  &ngx_http_llm_azure_chat,
                                  &ctx->upstream_url);
}
