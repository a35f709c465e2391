/*
 * A mock Anthropic Messages API for njs, used by the dialect tests, the
 * SDK tests and conf.examples/dialects.conf. It answers
 * POST .../v1/messages as the real API does: x-api-key and
 * anthropic-version are required (401 and 400 with Anthropic's error
 * shape otherwise), errors are {"type":"error","error":{...}}, streams are
 * the named events message_start, content_block_start, ping,
 * content_block_delta, content_block_stop, message_delta, message_stop.
 * POST .../v1/messages/count_tokens answers {"input_tokens":N}: N is
 * input_tokens= if set, else the characters of the system prompt, the
 * messages' texts and the tools, over four (with echo=1, what the mock
 * received in an extra "mock" member).
 *
 * With tools in the request and no tool result in the last message, the
 * answer calls the first tool (arguments made from its schema); with a
 * tool result, it says what the tool returned.
 *
 * Controls, in the path before /v1 (the provider's url), comma-separated:
 *
 *   key=sk-...        the API key expected (default sk-ant-mock-key)
 *   status=529        answer with this error status
 *   echo=1            the answer's text is what the mock received, as JSON:
 *                     {"path":...,"headers":{...},"body":{...}}
 *   reply=text        the answer's text
 *   input_tokens=N, output_tokens=N, cache_read=N, cache_creation=N
 *   error_event=1     a stream that fails with an overloaded_error event
 *
 *   location / {
 *       postpone_output 0;
 *       client_body_buffer_size 16m;
 *       js_content anthropic.messages;
 *   }
 */


function controls(r) {
    var c = {};

    r.uri.split('/v1/')[0].split('/').forEach(function (part) {
        part.split(',').forEach(function (kv) {
            var i = kv.indexOf('=');
            if (i > 0) {
                c[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
            }
        });
    });

    return c;
}


var ERROR_TYPES = {
    400: 'invalid_request_error', 401: 'authentication_error',
    403: 'permission_error', 404: 'not_found_error',
    413: 'request_too_large', 429: 'rate_limit_error',
    500: 'api_error', 529: 'overloaded_error'
};


function fail(r, status, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['request-id'] = 'req_mock_error';
    r.return(status, JSON.stringify({
        type: 'error',
        error: {
            type: ERROR_TYPES[status] || 'api_error',
            message: message || ('mock anthropic error ' + status)
        },
        request_id: 'req_mock_error'
    }));
}


function text(content) {
    if (typeof content === 'string') {
        return content;
    }

    if (Array.isArray(content)) {
        return content.filter(function (b) { return b && b.type === 'text'; })
                      .map(function (b) { return b.text; }).join(' ');
    }

    return '';
}


/* arguments a tool's schema asks for, made up deterministically */

function toolArgs(tool) {
    var args = {}, props = (tool.input_schema || {}).properties || {};

    Object.keys(props).forEach(function (k) {
        var t = props[k].type;
        args[k] = t === 'number' || t === 'integer' ? 1
                  : t === 'boolean' ? true : 'Paris';
    });

    return args;
}


function answer(body, c, seen) {
    var last = body.messages[body.messages.length - 1] || {};
    var result = Array.isArray(last.content)
                 && last.content.filter(function (b) {
                        return b && b.type === 'tool_result';
                    })[0];

    if (c.echo) {
        return { text: JSON.stringify(seen) };
    }

    if (result) {
        return { text: 'The tool said: ' + text(result.content) };
    }

    if (Array.isArray(body.tools) && body.tools.length
        && !(body.tool_choice && body.tool_choice.type === 'none'))
    {
        return {
            text: c.reply || 'Let me check.',
            tool: {
                type: 'tool_use',
                id: 'toolu_mock01' + body.messages.length,
                name: body.tools[0].name,
                input: toolArgs(body.tools[0])
            }
        };
    }

    return {
        text: c.reply || ('Hello from the mock provider. You said: '
                          + text(last.content).slice(0, 200))
    };
}


function messages(r) {
    var body, c, seen, a, usage, id, content, events;

    c = controls(r);

    var counting = /\/v1\/messages\/count_tokens$/.test(r.uri);

    if ((!counting && !/\/v1\/messages$/.test(r.uri))
        || r.method !== 'POST')
    {
        return fail(r, 404, 'Not found: ' + r.method + ' ' + r.uri);
    }

    if (!r.headersIn['x-api-key']) {
        return fail(r, 401, 'x-api-key header is required');
    }

    if (r.headersIn['x-api-key'] !== (c.key || 'sk-ant-mock-key')) {
        return fail(r, 401, 'invalid x-api-key');
    }

    if (!r.headersIn['anthropic-version']) {
        return fail(r, 400, 'anthropic-version: header is required');
    }

    try {
        body = JSON.parse(r.requestText || '');
    } catch (e) {
        return fail(r, 400, 'There was an error parsing the body of your '
                            + 'request: ' + e.message);
    }

    if (c.status) {
        return fail(r, Number(c.status));
    }

    if (!body.model) {
        return fail(r, 400, 'model: Field required');
    }

    if (counting) {
        return countTokens(r, body, c);
    }

    if (!body.max_tokens) {
        return fail(r, 400, 'max_tokens: Field required');
    }

    if (!Array.isArray(body.messages) || !body.messages.length) {
        return fail(r, 400, 'messages: Field required');
    }

    seen = {
        path: r.uri,
        headers: {
            'x-api-key': r.headersIn['x-api-key'] ? '(set)' : null,
            'anthropic-version': r.headersIn['anthropic-version'] || null,
            'anthropic-beta': r.headersIn['anthropic-beta'] || null,
            'content-type': r.headersIn['Content-Type'] || null,
            authorization: r.headersIn['Authorization'] || null
        },
        body: body
    };

    a = answer(body, c, seen);

    usage = {
        input_tokens: Number(c.input_tokens || 25),
        cache_creation_input_tokens: Number(c.cache_creation || 0),
        cache_read_input_tokens: Number(c.cache_read || 0),
        output_tokens: Number(c.output_tokens || 12)
    };

    id = 'msg_mock' + body.messages.length;

    content = [{ type: 'text', text: a.text }];
    if (a.tool) {
        content.push(a.tool);
    }

    r.headersOut['request-id'] = 'req_mock_' + body.messages.length;

    if (body.stream !== true) {
        r.headersOut['Content-Type'] = 'application/json';
        return r.return(200, JSON.stringify({
            id: id, type: 'message', role: 'assistant', model: body.model,
            content: content,
            stop_reason: a.tool ? 'tool_use' : 'end_turn',
            stop_sequence: null,
            usage: usage
        }));
    }

    function ev(name, data) {
        return 'event: ' + name + '\ndata: ' + JSON.stringify(data) + '\n\n';
    }

    events = [
        ev('message_start', { type: 'message_start', message: {
            id: id, type: 'message', role: 'assistant', model: body.model,
            content: [], stop_reason: null, stop_sequence: null,
            usage: { input_tokens: usage.input_tokens,
                     cache_creation_input_tokens:
                         usage.cache_creation_input_tokens,
                     cache_read_input_tokens: usage.cache_read_input_tokens,
                     output_tokens: 1 } } }),
        ev('content_block_start', { type: 'content_block_start', index: 0,
                                    content_block: { type: 'text',
                                                     text: '' } }),
        ev('ping', { type: 'ping' })
    ];

    a.text.split(/(?<= )/).forEach(function (w) {
        events.push(ev('content_block_delta', {
            type: 'content_block_delta', index: 0,
            delta: { type: 'text_delta', text: w } }));
    });

    events.push(ev('content_block_stop', { type: 'content_block_stop',
                                           index: 0 }));

    if (c.error_event) {
        events.push(ev('error', { type: 'error', error: {
            type: 'overloaded_error', message: 'Overloaded' } }));
    }

    if (a.tool) {
        var json = JSON.stringify(a.tool.input);

        events.push(ev('content_block_start', {
            type: 'content_block_start', index: 1,
            content_block: { type: 'tool_use', id: a.tool.id,
                             name: a.tool.name, input: {} } }));

        for (var i = 0; i < json.length; i += 7) {
            events.push(ev('content_block_delta', {
                type: 'content_block_delta', index: 1,
                delta: { type: 'input_json_delta',
                         partial_json: json.slice(i, i + 7) } }));
        }

        events.push(ev('content_block_stop', { type: 'content_block_stop',
                                               index: 1 }));
    }

    events.push(ev('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: a.tool ? 'tool_use' : 'end_turn',
                 stop_sequence: null },
        usage: { output_tokens: usage.output_tokens } }));
    events.push(ev('message_stop', { type: 'message_stop' }));

    if (c.error_event) {
        events = events.slice(0, events.findIndex(function (e) {
            return /^event: error/.test(e);
        }) + 1);
    }

    r.status = 200;
    r.headersOut['Content-Type'] = 'text/event-stream; charset=utf-8';
    r.headersOut['Cache-Control'] = 'no-cache';
    r.sendHeader();

    events.forEach(function (e) { r.send(e); });
    r.finish();
}


/* POST .../v1/messages/count_tokens */
function countTokens(r, body, c) {
    var chars, answer;

    if (!Array.isArray(body.messages) || !body.messages.length) {
        return fail(r, 400, 'messages: Field required');
    }

    chars = text(body.system || '').length
            + body.messages.reduce(function (n, m) {
                  return n + text(m && m.content).length;
              }, 0)
            + (body.tools ? JSON.stringify(body.tools).length : 0);

    answer = { input_tokens: Number(c.input_tokens
                                    || Math.max(1, Math.ceil(chars / 4))) };

    if (c.echo) {
        answer.mock = {
            path: r.uri,
            headers: {
                'x-api-key': '(set)',
                'anthropic-version': r.headersIn['anthropic-version'] || null,
                authorization: r.headersIn['Authorization'] || null
            },
            body: body
        };
    }

    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['request-id'] = 'req_mock_count';
    r.return(200, JSON.stringify(answer));
}


export default { messages };
