
/*
 * The OpenAI dialect: the client's request goes out as it came, with the
 * provider's model name spliced in and the provider's bearer key.
 */


#include "ngx_http_llm_module.h"
#include "ngx_http_llm_dialect.h"


static char *ngx_http_llm_openai_init_provider(ngx_conf_t *cf,
    ngx_http_llm_provider_t *p);
static ngx_int_t ngx_http_llm_openai_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx);


ngx_http_llm_dialect_t  ngx_http_llm_openai_dialect = {
    ngx_string("openai"),
    ngx_http_llm_openai_init_provider,
    ngx_http_llm_openai_create_request,
    NULL
};


static char *
ngx_http_llm_openai_init_provider(ngx_conf_t *cf, ngx_http_llm_provider_t *p)
{
    u_char                 *s;
    ngx_uint_t              i;
    ngx_http_llm_header_t  *h;

    p->chat_url.len = p->origin.len + p->base_path.len
                      + sizeof("/chat/completions") - 1;
    p->chat_url.data = ngx_pnalloc(cf->pool, p->chat_url.len);
    if (p->chat_url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s = ngx_cpymem(p->chat_url.data, p->origin.data, p->origin.len);
    s = ngx_cpymem(s, p->base_path.data, p->base_path.len);
    ngx_memcpy(s, "/chat/completions", sizeof("/chat/completions") - 1);

    if (p->key.len == 0) {
        /* local servers (vLLM, Ollama, a mock) may need no key */
        return NGX_CONF_OK;
    }

    h = p->headers->elts;

    for (i = 0; i < p->headers->nelts; i++) {
        if (h[i].name.len == sizeof("authorization") - 1
            && ngx_strncmp(h[i].name.data, "authorization",
                           sizeof("authorization") - 1) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llm_provider \"%V\" has both a \"key\" and "
                               "an Authorization \"header\"", &p->name);
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(p->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&h->name, "authorization");
    h->secret = 1;

    h->value.len = sizeof("Bearer ") - 1 + p->key.len;
    h->value.data = ngx_pnalloc(cf->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s = ngx_cpymem(h->value.data, "Bearer ", sizeof("Bearer ") - 1);
    ngx_memcpy(s, p->key.data, p->key.len);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_openai_create_request(ngx_http_request_t *r,
    ngx_http_llm_ctx_t *ctx)
{
    ngx_http_llm_edit_t     edit;
    ngx_http_llm_target_t  *t;

    t = ctx->target;

    ctx->upstream_url = t->provider->chat_url;

    if (ctx->target_model.len == ctx->chat.model.len
        && ngx_strncmp(ctx->target_model.data, ctx->chat.model.data,
                       ctx->chat.model.len) == 0)
    {
        return ngx_http_llm_splice_body(r, ctx, NULL, 0);
    }

    edit.start = ctx->chat.model_key_end;
    edit.end = ctx->chat.model_end;

    if (t->model_edit.len) {
        edit.text = t->model_edit;

    } else if (ngx_http_llm_model_edit(r->pool, &ctx->target_model,
                                       &edit.text)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llm_splice_body(r, ctx, &edit, 1);
}
