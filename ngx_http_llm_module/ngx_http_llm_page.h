
/*
 * The status page: one self-contained HTML document that draws the
 * gateway's state from the JSON status, refreshing it.
 */


#ifndef _NGX_HTTP_LLM_PAGE_H_INCLUDED_
#define _NGX_HTTP_LLM_PAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


extern ngx_str_t  ngx_http_llm_status_page;


#endif /* _NGX_HTTP_LLM_PAGE_H_INCLUDED_ */
