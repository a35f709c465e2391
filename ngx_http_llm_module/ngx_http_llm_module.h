
/*
 * ngx_http_llm_module: an LLM gateway inside nginx.
 *
 * Types shared by every concern of the module: configuration (providers,
 * routes, targets), the per-request context, and the entry points each
 * concern file exports.
 */


#ifndef _NGX_HTTP_LLM_MODULE_H_INCLUDED_
#define _NGX_HTTP_LLM_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the module's version: here only (debian/changelog and CHANGES follow) */
#define NGX_HTTP_LLM_VERSION  "0.2.0"


/*
 * nginx allows 10 internal redirects per request (NGX_HTTP_MAX_URI_CHANGES);
 * every failover is one, so a request makes at most this many attempts.
 */
#define NGX_HTTP_LLM_MAX_ATTEMPTS      8

/* targets are remembered as tried in a 64-bit mask */
#define NGX_HTTP_LLM_MAX_TARGETS       64

/* upstream header slots one attempt may fill */
#define NGX_HTTP_LLM_MAX_HEADERS       16
/* a provider's "keepalive": idle connections kept per worker */
#define NGX_HTTP_LLM_MAX_KEEPALIVE     1024
#define NGX_HTTP_LLM_MAX_KEEPALIVE_TIMEOUT  3600000     /* ms: an hour */
/* the shared memory of a provider's pool with "resolve": its addresses */
#define NGX_HTTP_LLM_KEEPALIVE_ZONE    65536

/* the longest model name a client may send */
#define NGX_HTTP_LLM_MAX_MODEL         256
#define NGX_HTTP_LLM_MAX_MODEL_TEXT    "256"

/* llm_route "max_models": distinct client-chosen models it tracks apart */
#define NGX_HTTP_LLM_DEFAULT_MAX_MODELS  100

/*
 * the most tokens a provider may report for a request (12 digits): more
 * is not believed, and the request is estimated as with no usage
 */
#define NGX_HTTP_LLM_TOKENS_MAX        999999999999LL

/* the most a request costs, nano-USD ($10,000,000) */
#define NGX_HTTP_LLM_COST_MAX          10000000000000000LL
#define NGX_HTTP_LLM_OTHER_MODEL       "(other)"

/* nesting a request body may have; deeper is refused with 400 */
#define NGX_HTTP_LLM_MAX_JSON_DEPTH    128

/* llm_request_memory: what every body may take, whatever its size */
#define NGX_HTTP_LLM_MEMORY_FLOOR      (64 * 1024)


typedef struct ngx_http_llm_dialect_s   ngx_http_llm_dialect_t;
typedef struct ngx_http_llm_provider_s  ngx_http_llm_provider_t;
typedef struct ngx_http_llm_target_s    ngx_http_llm_target_t;
typedef struct ngx_http_llm_route_s     ngx_http_llm_route_t;
typedef struct ngx_http_llm_ctx_s       ngx_http_llm_ctx_t;
typedef struct ngx_http_llm_zone_s      ngx_http_llm_zone_t;
typedef struct ngx_http_llm_response_s  ngx_http_llm_response_t;
typedef struct ngx_http_llm_entity_s    ngx_http_llm_entity_t;
typedef struct ngx_http_llm_redis_s     ngx_http_llm_redis_t;
typedef struct ngx_http_llm_node_s      ngx_http_llm_node_t;


/*
 * The zone's node an object of the configuration names, found once and
 * kept in the object while no node is freed (ngx_http_llm_zone.c)
 */
typedef struct {
    ngx_http_llm_node_t           *node;
    uint64_t                       generation;
    /* when this worker last moved it in the zone's queue */
    ngx_msec_t                     touched;
} ngx_http_llm_node_ref_t;


/* tokens a response used, as the provider reported or as estimated */
typedef struct {
    int64_t                        prompt;
    int64_t                        completion;
    int64_t                        cached;          /* of prompt */
    int64_t                        cache_write;     /* of prompt */
    unsigned                       reported:1;      /* by the provider */
} ngx_http_llm_usage_t;


/* when a provider's targets are taken out of service (provider "health") */
typedef struct {
    ngx_uint_t                     failure_ratio;       /* percent */
    ngx_uint_t                     min_requests;
    ngx_msec_t                     window;
    ngx_msec_t                     cooldown;
    ngx_msec_t                     max_cooldown;
    /* 429, no Retry-After */
    ngx_msec_t                     rate_limit_cooldown;
} ngx_http_llm_health_conf_t;


typedef enum {
    NGX_HTTP_LLM_EP_UNKNOWN = 0,
    NGX_HTTP_LLM_EP_CHAT,
    NGX_HTTP_LLM_EP_MODELS,
    NGX_HTTP_LLM_EP_MODEL,
    NGX_HTTP_LLM_EP_MESSAGES,          /* Anthropic's, the front door */
    NGX_HTTP_LLM_EP_EMBEDDINGS,
    NGX_HTTP_LLM_EP_COMPLETIONS,       /* legacy text completions */
    NGX_HTTP_LLM_EP_COUNT_TOKENS,      /* Anthropic's, at its door */
    NGX_HTTP_LLM_EP_RESPONSES          /* OpenAI's Responses API */
} ngx_http_llm_endpoint_e;


/* Anthropic's door: its request shape, its error shape */
#define ngx_http_llm_anthropic_door(ctx)                                     \
    ((ctx)->endpoint == NGX_HTTP_LLM_EP_MESSAGES                              \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS)


/*
 * a request for a model's work (a completion through any door, a count
 * of tokens, or embeddings): routed, charged and counted alike everywhere
 */
#define ngx_http_llm_completion(ctx)                                         \
    ((ctx)->endpoint == NGX_HTTP_LLM_EP_CHAT                                  \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_MESSAGES                           \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_EMBEDDINGS                         \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_COMPLETIONS                        \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_COUNT_TOKENS                       \
     || (ctx)->endpoint == NGX_HTTP_LLM_EP_RESPONSES)


/* a header sent to a provider: lowercase name, value, and whether secret */
typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      value;
    ngx_uint_t                     secret;
} ngx_http_llm_header_t;


struct ngx_http_llm_provider_s {
    ngx_str_t                      name;
    ngx_http_llm_dialect_t        *dialect;

    /* "https://api.openai.com" or "http://pool": $llm_upstream starts so */
    ngx_str_t                      origin;
    /* host[:port] of the url: a DNS name, an address or an upstream block */
    ngx_str_t                      authority;
    /* URL path prefix without the trailing slash: "/v1" */
    ngx_str_t                      base_path;
    /* Host header and TLS server name */
    ngx_str_t                      host;

    ngx_str_t                      key;            /* secret */
    ngx_array_t                   *headers;        /* ngx_http_llm_header_t */
    /* those with a value, "name: value\r\n" each: copied whole a send */
    ngx_str_t                      header_block;
    /* ngx_str_t: masked where its errors quote them; NULL: none */
    ngx_array_t                   *secrets;
    /* the headers its dialect adds per attempt: an attempt's at most */
    ngx_uint_t                     max_dynamic;

    /* options of the dialect ("version", "region", ...): ngx_keyval_t */
    ngx_array_t                   *options;
    void                          *dialect_conf;   /* the dialect's own */

    ngx_http_llm_health_conf_t     health;
    unsigned                       health_set:1;

    /* the chat endpoint, when the dialect's URL does not vary per model */
    ngx_str_t                      chat_url;
    /* legacy text completions, OpenAI-format providers only; or empty */
    ngx_str_t                      completions_url;
    /* OpenAI's Responses API, taken as it is; or empty: translated */
    ngx_str_t                      responses_url;

    /* "keepalive": idle connections per worker; 0: no pool of its own */
    ngx_uint_t                     keepalive;
    ngx_msec_t                     keepalive_timeout;  /* 0: nginx's */
    /* nginx 1.27.3+: its name resolved at run time, in a zone */
    unsigned                       keepalive_resolve:1;

    /* an env: key that is not set disables the provider when optional */
    unsigned                       disabled:1;
    unsigned                       needs_resolver:1;
    unsigned                       ssl:1;          /* https:// */

    /*
     * its peers for "proxy_pass https://llm_upstream": an upstream block
     * (its keepalive pool, or the one its url names), else its address
     * in peers; else peers.host is resolved per request
     */
    ngx_http_upstream_srv_conf_t  *pool;
    ngx_http_upstream_resolved_t   peers;

    u_char                        *file_name;
    ngx_uint_t                     line;
};


struct ngx_http_llm_target_s {
    /*
     * What every request reads fills the first two cache lines (route.c
     * aligns the array): whether it is a route's, and its index there,
     * are found from the route's array (ngx_http_llm_target_in(),
     * ngx_http_llm_target_index())
     */
    ngx_http_llm_provider_t       *provider;

    /* USD per million tokens; negative when not configured */
    double                         input_price;
    double                         output_price;

    uint32_t                       stats_hash;
    uint32_t                       series_hash;

    /* this worker's pointers to the nodes of stats_name and series_name */
    ngx_http_llm_node_ref_t        stats_ref;
    ngx_http_llm_node_ref_t        series_ref;

    /* its health node, "provider\0model", when the model is fixed */
    ngx_str_t                      stats_name;

    /*
     * its metrics series, "route\0provider\0model", for the fixed model
     * or, when the model is not fixed, for the models past max_models
     */
    ngx_str_t                      series_name;

    /*
     * provider-side model; empty: the client's; one '*': the glob
     * capture; "$0".."$9": a regex route's captures (model_captures)
     */
    ngx_str_t                      model;
    /* a fixed model as the text after the "model" key: :"gpt-4o" */
    ngx_str_t                      model_edit;

    ngx_http_llm_route_t          *route;
    ngx_uint_t                     model_star;     /* position of '*' + 1 */
    ngx_uint_t                     model_captures;
    ngx_uint_t                     weight;

    double                         cached_price;
    double                         cache_write_price;

    /* the node of models past the route's max_models, when it is not */
    ngx_str_t                      other_name;
    uint32_t                       other_hash;

    ngx_str_t                      provider_name;
    ngx_uint_t                     line;           /* of its "target" */
};


/* whether a target is one of a route's: the route is read already */
#define ngx_http_llm_target_in(route, t)                                     \
    ((t) >= (ngx_http_llm_target_t *) (route)->targets.elts                  \
     && (t) < (ngx_http_llm_target_t *) (route)->targets.elts                 \
              + (route)->targets.nelts)

#define ngx_http_llm_target_index(route, t)                                  \
    ((ngx_uint_t) ((t) - (ngx_http_llm_target_t *) (route)->targets.elts))


typedef enum {
    NGX_HTTP_LLM_ORDERED = 0,
    NGX_HTTP_LLM_WEIGHTED,
    NGX_HTTP_LLM_LATENCY,
    NGX_HTTP_LLM_COST
} ngx_http_llm_strategy_e;


/* what makes an attempt fail over (route "failover") */
#define NGX_HTTP_LLM_FO_ERROR     0x0001
#define NGX_HTTP_LLM_FO_TIMEOUT   0x0002
#define NGX_HTTP_LLM_FO_429       0x0004
#define NGX_HTTP_LLM_FO_500       0x0008
#define NGX_HTTP_LLM_FO_502       0x0010
#define NGX_HTTP_LLM_FO_503       0x0020
#define NGX_HTTP_LLM_FO_504       0x0040
#define NGX_HTTP_LLM_FO_529       0x0080


struct ngx_http_llm_route_s {
    /*
     * What every request reads comes first, the route aligned to a cache
     * line (route.c): with thousands of routes, each line is a miss
     */

    ngx_array_t                    targets;        /* ngx_http_llm_target_t */

    /* "when" rules (ngx_http_llm_rule_t), tried in order; or NULL */
    ngx_array_t                   *rules;

    /* "guard NAME|off": its policy, over the location's */
    struct ngx_http_llm_guard_s   *guard;            /* NULL with "off" */
    unsigned                       guard_set:1;

    /* the body's tree is kept for it: a rule or a target needs it */
    unsigned                       needs_tree:1;

    /* "cache_breakpoint auto": after the system prompt and the tools */
    unsigned                       cache_breakpoint:1;
    unsigned                       cache_breakpoint_set:1;
    unsigned                       glob:1;

    ngx_msec_t                     deadline;       /* 0: none */
    ngx_uint_t                     attempts;       /* in all */
    /* ngx_http_llm_cache_mode_e */
    ngx_uint_t                     cache;
    ngx_uint_t                     strategy;
    ngx_uint_t                     explore;        /* percent */
    /* distinct client-chosen models with their own nodes in the zone */
    ngx_uint_t                     max_models;
    uint32_t                       hash;           /* of its zone node */
    ngx_uint_t                     retries;        /* on the same target */
    ngx_msec_t                     backoff;
    ngx_msec_t                     max_backoff;
    ngx_uint_t                     failover;       /* NGX_HTTP_LLM_FO_* */

    ngx_str_t                      name;

    /*
     * A pattern: a glob with one '*' (name = prefix '*' suffix), or a
     * regex ("~re", "~*re"); tried in order after exact names
     */
    ngx_str_t                      prefix;
    ngx_str_t                      suffix;
    struct ngx_http_llm_regex_s   *regex;

    ngx_str_t                      guard_name;

    u_char                        *file_name;
    ngx_uint_t                     line;
};


typedef struct {
    ngx_http_llm_zone_t           *zone;
    /* ngx_http_llm_provider_t * */
    ngx_array_t                    providers;
    ngx_array_t                    routes;         /* ngx_http_llm_route_t * */
    ngx_array_t                    globs;          /* ngx_http_llm_route_t * */
    ngx_hash_t                     routes_hash;    /* exact names */

    /* header slots the configuration reads through $llm_header_<name> */

    /* gateway locations, checked once the whole http block is known */
    /* ngx_http_core_loc_conf_t * */
    ngx_array_t                    gateways;
    /* "llm_upstream": proxy_pass hands it an attempt, it the provider */
    ngx_http_upstream_srv_conf_t  *upstream;
    /* a gateway location has "proxy_pass https://llm_upstream" */
    ngx_uint_t                     upstream_used;

    ngx_str_t                      models_json;    /* GET /v1/models body */
    time_t                         created;

    /* gateway keys: SHA-256 digests to ngx_http_llm_entity_t */
    ngx_array_t                    keys;           /* ngx_http_llm_entity_t * */
    ngx_array_t                    teams;          /* ngx_http_llm_entity_t * */
    ngx_array_t                    orgs;           /* ngx_http_llm_entity_t * */
    ngx_http_llm_entity_t        **keys_table;     /* by digest, see keys.c */
    ngx_uint_t                     keys_mask;
    ngx_int_t                      default_max_tokens;
    ngx_int_t                      cache_charge;   /* percent, for hits */
    ngx_uint_t                     route_cache;    /* a route sets "cache" */

    /* some provider speaks another API than OpenAI's: bodies may need trees */
    ngx_uint_t                     trees;

    ngx_array_t                    guards;         /* ngx_http_llm_guard_t * */
    /* a route, key, team or organisation names a policy: bodies keep
       trees */
    ngx_uint_t                     entity_guards;

    ngx_http_llm_redis_t          *redis;
} ngx_http_llm_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_flag_t                     auth;           /* gateway keys required */
    /*
     * a server's own (not merged into its locations): a location of the
     * server is a gateway, so errors nginx answers before any location
     * is chosen are JSON too
     */
    ngx_uint_t                     gateway_server;
    /* the x-llm-* headers on answers: which provider, model, attempts */
    ngx_flag_t                     response_headers;
    /* ngx_http_llm_cache_mode_e */
    ngx_uint_t                     cache;
    ngx_uint_t                     cache_scope;
    ngx_str_t                      cache_namespace;
    ngx_uint_t                     status_format;  /* llm_status's default */
    /* llm_request_memory: a parse's memory beyond its body */
    ngx_uint_t                     memory_ratio;
    size_t                         memory_max;
    /* llm_guard_policy: a name until locations are merged */
    struct ngx_http_llm_guard_s   *guard;
    ngx_str_t                      guard_name;
    u_char                        *guard_file;
    ngx_uint_t                     guard_line;
    ngx_uint_t                     guard_resolved;
} ngx_http_llm_loc_conf_t;


/* one region of the client body as received: memory or temp file */
typedef struct {
    off_t                          start;          /* offset in the body */
    off_t                          end;
    u_char                        *pos;            /* memory, or NULL */
    ngx_file_t                    *file;
    off_t                          file_pos;
} ngx_http_llm_segment_t;


/* a region of the client body replaced when a request is rebuilt */
typedef struct {
    off_t                          start;
    off_t                          end;
    ngx_str_t                      text;
} ngx_http_llm_edit_t;


/* why a client request is refused: the status and OpenAI error fields */
typedef struct {
    ngx_uint_t                     status;
    const char                    *code;
    const char                    *param;
    size_t                         len;
    u_char                         message[256];
} ngx_http_llm_problem_t;


/* what the request parser extracts from a chat completion body */
typedef struct {
    ngx_str_t                      model;
    off_t                          model_key_end;  /* after the key's quote */
    off_t                          model_end;      /* after the value */

    /* where stream_options is, to ask providers for usage in streams */
    off_t                          root_start;     /* after the first '{' */
    off_t                          options_key_end;
    off_t                          options_start;  /* after its '{' */
    off_t                          options_end;
    off_t                          usage_key_end;  /* include_usage */
    off_t                          usage_end;
    ngx_uint_t                     options_members;
    unsigned                       has_options:1;
    unsigned                       options_object:1;
    unsigned                       has_include_usage:1;

    double                         temperature;
    unsigned                       has_temperature:1;

    int64_t                        max_tokens;     /* -1: not given */
    ngx_uint_t                     messages;
    size_t                         message_bytes;  /* text in messages */
    ngx_str_t                      user;           /* its first 256 bytes */
    ngx_uint_t                     tools_n;        /* of "tools" */

    unsigned                       stream:1;
    unsigned                       tools:1;
    unsigned                       include_usage:1;
    /* a "cache_control" in system, messages or tools: an OpenAI target
       gets none, a route adds no breakpoint of its own */
    unsigned                       cache_control:1;

    /*
     * The body's "cache" member (true, false or {"no-cache","no-store"}),
     * removed before the body goes to a provider: the bytes from
     * cache_start to cache_end, with the comma before it, or when it
     * comes first the comma after it, up to the next member's key.
     */
    off_t                          cache_start;
    off_t                          cache_end;
    unsigned                       cache_member:1;
    unsigned                       cache_first:1;  /* awaits the next key */
    unsigned                       cache_opt:2;    /* ngx_http_llm_opt_e */
    unsigned                       cache_no_cache:1;
    unsigned                       cache_no_store:1;
} ngx_http_llm_chat_t;


/* a client's choice about caching: none, on or off */
typedef enum {
    NGX_HTTP_LLM_OPT_NONE = 0,
    NGX_HTTP_LLM_OPT_ON,
    NGX_HTTP_LLM_OPT_OFF
} ngx_http_llm_opt_e;


struct ngx_http_llm_ctx_s {
    ngx_http_llm_endpoint_e        endpoint;

    /* the client request as received, restored before every attempt */
    ngx_uint_t                     method;
    ngx_str_t                      method_name;
    off_t                          content_length;
    ngx_chain_t                   *client_body;
    ngx_array_t                   *segments;       /* ngx_http_llm_segment_t */
    ngx_array_t                    segments_array; /* where it points */
    off_t                          body_length;

    ngx_http_llm_chat_t            chat;

    /*
     * the body as a JSON tree, when a target needs a translation; and in
     * OpenAI's format (the same tree, or the front door's, converted)
     */
    struct ngx_http_llm_json_s    *tree;
    struct ngx_http_llm_json_s    *chat_tree;

    /* POST /v1/embeddings: what its body asks (ngx_http_llm_embeddings.h) */
    struct ngx_http_llm_embed_s   *embed;

    ngx_http_llm_route_t          *route;
    ngx_str_t                      glob_capture;

    /* attempts */
    ngx_uint_t                     attempts;
    uint64_t                       tried;
    uint8_t                        same[NGX_HTTP_LLM_MAX_TARGETS];
    ngx_http_llm_target_t         *target;
    void                          *node;           /* its health, held */
    ngx_msec_t                     start;
    ngx_msec_t                     attempt_start;
    ngx_msec_t                     ttfb;
    ngx_event_t                    timer;          /* backoff */
    ngx_event_t                    deadline;
    ngx_http_llm_zone_t           *zone;
    ngx_str_t                      target_model;
    /* the target's node is its route's "(other)": past max_models */
    unsigned                       other_model:1;
    ngx_str_t                      upstream_url;
    /*
     * the attempt's headers: its provider's static ones (header_block),
     * then the dialect's dynamic ones here, room for max_dynamic
     */
    ngx_http_llm_header_t         *headers;
    ngx_uint_t                     nheaders;
    ngx_uint_t                     headers_room;

    /* why the last attempt failed: status from the provider or nginx */
    ngx_uint_t                     failed_status;
    ngx_msec_t                     retry_after;
    ngx_http_llm_provider_t       *failed_provider;
    /* what the provider said, when its 2xx body was an error */
    ngx_uint_t                     error_status;
    ngx_str_t                      error_message;

    /* time spent in the module before the response, in microseconds */
    uint64_t                       overhead;

    /* the client: its key, and what it holds against its limits */
    ngx_http_llm_entity_t         *key;
    void                          *hold;           /* ngx_http_llm_hold_t */
    ngx_http_llm_usage_t           usage;
    int64_t                        content_bytes;  /* of the answer */

    /* the guard policy of the request, and the rules of it that fired, a
       bit per rule: in the request, in the answer */
    struct ngx_http_llm_guard_s   *guard;
    ngx_array_t                   *guard_numbers;  /* guard.c's */
    ngx_http_llm_route_t          *asked_route;    /* before "when" rules */
    uint64_t                       guard_hits[2];
    /* a guard redacted the request's texts: its body is built again */
    unsigned                       request_redacted:1;
    int64_t                        cost;           /* nano-USD */

    /* the cache */
    void                          *digest;         /* ngx_http_llm_digest_t */
    ngx_str_t                      cache_key;
    ngx_uint_t                     cache_status;   /* NGX_HTTP_CACHE_* */

    /* the response */
    ngx_http_llm_response_t       *resp;
    ngx_int_t                    (*input_filter_init)(void *data);
    ngx_event_pipe_input_filter_pt pipe_input_filter;
    ngx_int_t                    (*upstream_input_filter)(void *data,
                                                      ssize_t bytes);
    void                         (*upstream_finalize)(ngx_http_request_t *r,
                                                      ngx_int_t rc);
    ngx_int_t                      upstream_rc;    /* a held stream's end */
    ngx_str_t                      replacement;    /* body replacing nginx's */

    unsigned                       body_requested:1;
    unsigned                       body_waiting:1;
    unsigned                       body_ready:1;
    unsigned                       prepared:1;
    /* the headers are ctx->target's (a refused attempt's are not) */
    unsigned                       attempt_ready:1;
    unsigned                       proxying:1;
    unsigned                       retrying:1;
    unsigned                       failover:1;
    unsigned                       own_response:1;
    unsigned                       replace_body:1;
    unsigned                       replaced:1;
    unsigned                       probe:1;
    unsigned                       retry_same:1;
    unsigned                       waiting:1;       /* backoff timer */
    unsigned                       deadline_hit:1;
    unsigned                       accounted:1;
    unsigned                       completed:1;
    unsigned                       cache_eligible:1;
    unsigned                       digested:1;     /* digest is the body's */
    unsigned                       cache_decided:1; /* caching applies */
    unsigned                       cache_no_lookup:1;
    unsigned                       cache_no_store:1;
    unsigned                       cache_hit:1;
    unsigned                       cache_storing:1;
};


/* ngx_http_llm_module.c */
extern ngx_module_t  ngx_http_llm_module;

char *ngx_http_llm_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

ngx_http_llm_ctx_t *ngx_http_llm_get_ctx(ngx_http_request_t *r);
ngx_http_llm_ctx_t *ngx_http_llm_create_ctx(ngx_http_request_t *r);

/* the first header of that name in a request's or response's list */
ngx_table_elt_t *ngx_http_llm_header_lookup(ngx_list_t *headers,
    u_char *name, size_t len);
#define ngx_http_llm_find_header(headers, name)                              \
    ngx_http_llm_header_lookup(headers, (u_char *) name, sizeof(name) - 1)

/* n in decimal at p, as ngx_sprintf("%uL") without its format parsing */
void *ngx_http_llm_pcalloc_line(ngx_pool_t *pool, size_t size);
u_char *ngx_http_llm_uint_text(u_char *p, uint64_t n);

/*
 * a JSON number of up to 15 digits, no exponent: exactly what strtod()
 * makes of it, NGX_DECLINED for any other (then strtod() is asked)
 */
ngx_int_t ngx_http_llm_short_decimal(u_char *p, size_t len, double *x);


#endif /* _NGX_HTTP_LLM_MODULE_H_INCLUDED_ */
