/*
 * A mock OpenAI-compatible provider for njs (ngx_http_js_module), used by
 * the quickstart, the tests and the benchmark. It answers
 * POST .../chat/completions like the real API, streaming included, and
 * the legacy POST .../completions (text_completion objects, a prompt of a
 * string or an array, streamed choices[].text, usage), and
 * reports what it received in an extra "mock" member of its answers (and,
 * for streams, in the first event).
 *
 * Behaviour is steered by the path before /v1 (the provider's url in the
 * gateway configuration) and by a "mock" member of the request body.
 * POST .../responses answers like OpenAI's Responses API (a response
 * object, or its events from response.created to response.completed;
 * failed=1: the stream ends with response.failed, cut=1: it ends before
 * its last event).
 * POST .../embeddings answers like OpenAI's, with deterministic vectors
 * (see vector()) and usage; the same controls apply:
 *
 *   status=503        answer with this error status (OpenAI error body)
 *   retry_after=2     send Retry-After with an error
 *   delay=300         milliseconds before the response starts
 *   gap=100           milliseconds between stream events
 *   chunks=5          number of content chunks in a stream
 *   reply=text        the assistant's answer
 *   prompt_tokens=N, completion_tokens=N, cached_tokens=N   usage reported
 *   no_usage=1        report no usage at all
 *   echo=1            the assistant's answer is the request body as received
 *   tools=1           with tools in the request, answer with a call of the
 *                     first one (arguments from its schema); after a tool
 *                     result, say what the tool returned
 *   error_body=1      answer 200 with an error body
 *   delay_file=name   like delay, read from <$mock_state_dir>/name on each
 *                     request (a test changes it while nginx runs)
 *   fail_times=N,counter=name   answer status= (default 503) to the first
 *                     N requests counted in file <$mock_state_dir>/name,
 *                     then normally ($mock_state_dir: an nginx variable)
 *
 *   location / {
 *       postpone_output 0;               # every event leaves at once
 *       client_body_buffer_size 16m;     # njs reads bodies from memory
 *       js_content openai.chat;
 *   }
 */


import crypto from 'crypto';
import fs from 'fs';


function controls(r, body) {
    var c = {};
    var parts = r.uri.split('/v1/')[0].split('/');

    parts.forEach(function (part) {
        part.split(',').forEach(function (kv) {
            var i = kv.indexOf('=');
            if (i > 0) {
                c[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
            }
        });
    });

    if (body && typeof body.mock === 'object' && body.mock !== null) {
        Object.keys(body.mock).forEach(function (k) {
            c[k] = String(body.mock[k]);
        });
    }

    return c;
}


function lastUserText(messages) {
    var i, m;

    for (i = messages.length - 1; i >= 0; i--) {
        m = messages[i];

        if (m && m.role === 'user') {
            if (typeof m.content === 'string') {
                return m.content;
            }

            if (Array.isArray(m.content)) {
                return m.content.filter(function (p) {
                    return p && p.type === 'text';
                }).map(function (p) { return p.text; }).join(' ');
            }
        }
    }

    return '';
}


function promptChars(messages) {
    return messages.reduce(function (n, m) {
        return n + (m && typeof m.content === 'string'
                    ? m.content.length : JSON.stringify(m || '').length);
    }, 0);
}


function words(text) {
    return text.split(/(\s+)/).filter(function (w) { return w.length; });
}


function seen(r, body, raw) {
    return {
        path: r.uri,
        method: r.method,
        model: body.model,
        authorization: r.headersIn['Authorization'] || null,
        x_api_key: r.headersIn['x-api-key'] || null,
        host: r.headersIn['Host'] || null,
        content_type: r.headersIn['Content-Type'] || null,
        extra: r.headersIn['X-Extra'] || null,
        headers: r.rawHeadersIn.map(function (h) {
                     return h[0].toLowerCase();
                 }).join(','),
        body_bytes: r.requestBuffer ? r.requestBuffer.length : 0,
        body_sha256: crypto.createHash('sha256')
                     .update(r.requestBuffer || '').digest('hex'),
        stream: body.stream === true,
        include_usage: !!(body.stream_options
                          && body.stream_options.include_usage),
        messages: Array.isArray(body.messages) ? body.messages.length : 0,
        last_user: lastUserText(body.messages || []).slice(0, 200)
    };
}


function later(ms, fn) {
    if (ms > 0) {
        setTimeout(fn, ms);
    } else {
        fn();
    }
}


/* OpenAI's own rate limit headers, on every answer as OpenAI sends them */
function ratelimit(r) {
    r.headersOut['x-ratelimit-limit-requests'] = '10000';
    r.headersOut['x-ratelimit-remaining-requests'] = '9999';
    r.headersOut['x-ratelimit-reset-requests'] = '6ms';
    r.headersOut['x-ratelimit-limit-tokens'] = '30000000';
    r.headersOut['x-ratelimit-remaining-tokens'] = '29999990';
    r.headersOut['x-ratelimit-reset-tokens'] = '0s';
}


function fail(r, status, c, message) {
    var code = status === 429 ? 'rate_limit_exceeded' : null;

    ratelimit(r);

    if (c.retry_after) {
        r.headersOut['Retry-After'] = c.retry_after;
    }

    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({
        error: {
            message: message || ('mock provider error ' + status),
            type: status === 429 ? 'requests'
                  : status >= 500 ? 'server_error' : 'invalid_request_error',
            param: null,
            code: code
        }
    }));
}


function chat(r) {
    var raw = r.requestText || '';
    var body, c, reply, usage, id, created;

    try {
        body = JSON.parse(raw);
    } catch (e) {
        return fail(r, 400, {}, 'mock provider: invalid JSON: ' + e.message);
    }

    c = controls(r, body);

    r.log('mock received ' + r.uri + ' model=' + body.model
          + ' auth=' + (r.headersIn['Authorization'] || '-'));

    var legacy = !/\/chat\/completions\/?$/.test(r.uri)
                 && /\/completions\/?$/.test(r.uri);

    var resp = /\/responses\/?$/.test(r.uri);

    if (!legacy && !resp && !/\/chat\/completions\/?$/.test(r.uri)
        && !/\/embeddings\/?$/.test(r.uri))
    {
        return fail(r, 404, c, 'mock provider: unknown path ' + r.uri);
    }

    if (c.delay_file && r.variables.mock_state_dir) {
        try {
            c.delay = String(Number(fs.readFileSync(
                          r.variables.mock_state_dir + '/'
                          + c.delay_file.replace(/[^A-Za-z0-9_-]/g, '_')))
                      || 0);
        } catch (e) {
            c.delay = '0';
        }
    }

    if (c.fail_times && c.counter && r.variables.mock_state_dir) {
        var file = r.variables.mock_state_dir + '/'
                   + c.counter.replace(/[^A-Za-z0-9_-]/g, '_');
        var count = 0;

        try {
            count = Number(fs.readFileSync(file)) || 0;
        } catch (e) {
            count = 0;
        }

        fs.writeFileSync(file, String(count + 1));

        if (count < Number(c.fail_times)) {
            c.status = c.status || '503';
        } else {
            delete c.status;
        }
    }

    if (c.status && c.status !== '200') {
        return later(Number(c.delay || 0), function () {
            fail(r, Number(c.status), c);
        });
    }

    if (/\/embeddings\/?$/.test(r.uri)) {
        return later(Number(c.delay || 0), function () {
            embed(r, body, c, raw);
        });
    }

    if (legacy) {
        return completions(r, body, c, raw);
    }

    if (resp) {
        return responses(r, body, c, raw);
    }

    if (!body.model || !Array.isArray(body.messages)) {
        return fail(r, 400, c, 'mock provider: model and messages required');
    }

    reply = c.reply
            || ('Hello from the mock provider. You said: '
                + lastUserText(body.messages).slice(0, 200));

    if (c.echo) {
        reply = raw;
    }

    var call = null, lastMsg = body.messages[body.messages.length - 1] || {};

    if (c.tools && Array.isArray(body.tools) && body.tools.length) {
        if (lastMsg.role === 'tool') {
            reply = 'The tool said: ' + lastMsg.content;

        } else {
            var fn = body.tools[0].function || {}, args = {};
            var props = (fn.parameters || {}).properties || {};

            Object.keys(props).forEach(function (k) {
                args[k] = props[k].type === 'number' ? 1 : 'Paris';
            });

            call = { id: 'call_mock' + body.messages.length, type: 'function',
                     function: { name: fn.name,
                                 arguments: JSON.stringify(args) } };
            reply = '';
        }
    }

    usage = {
        prompt_tokens: Number(c.prompt_tokens
                              || Math.ceil(promptChars(body.messages) / 4)),
        completion_tokens: Number(c.completion_tokens
                                  || words(reply).length)
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;

    if (c.cached_tokens) {
        usage.prompt_tokens_details = {
            cached_tokens: Number(c.cached_tokens),
            audio_tokens: 0
        };
    }

    if (c.no_usage) {
        usage = undefined;
    }

    id = 'chatcmpl-mock-' + Math.floor(Math.random() * 1e12).toString(36);
    created = Math.floor(Date.now() / 1000);

    if (c.error_body) {
        r.headersOut['Content-Type'] = 'application/json';
        return r.return(200, JSON.stringify({
            error: { message: 'mock provider: error in a 200',
                     type: 'server_error', param: null, code: null }
        }));
    }

    ratelimit(r);

    if (body.stream !== true) {
        return answer(r, c, {
            id: id,
            object: 'chat.completion',
            created: created,
            model: body.model,
            choices: [{
                index: 0,
                message: call
                         ? { role: 'assistant', content: null,
                             refusal: null, tool_calls: [call] }
                         : { role: 'assistant', content: reply,
                             refusal: null },
                logprobs: null,
                finish_reason: call ? 'tool_calls' : 'stop'
            }],
            usage: usage,
            system_fingerprint: 'fp_mock',
            mock: seen(r, body, raw)
        });
    }

    /* a stream: role, content chunks, finish, usage if asked, [DONE] */

    var chunks = split(reply, c), i;

    function event(delta, finish, extra) {
        var e = {
            id: id, object: 'chat.completion.chunk', created: created,
            model: body.model, system_fingerprint: 'fp_mock',
            choices: [{ index: 0, delta: delta, logprobs: null,
                        finish_reason: finish }]
        };

        /* as OpenAI does: every chunk carries "usage": null once asked */
        if (body.stream_options && body.stream_options.include_usage) {
            e.usage = null;
        }

        if (extra) {
            Object.keys(extra).forEach(function (k) { e[k] = extra[k]; });
        }

        return 'data: ' + JSON.stringify(e) + '\n\n';
    }

    var events = [event({ role: 'assistant', content: '', refusal: null },
                        null, { mock: seen(r, body, raw) })];

    chunks.forEach(function (text) { events.push(event({ content: text },
                                                        null)); });

    if (call) {
        events.push(event({ tool_calls: [{ index: 0, id: call.id,
                                           type: 'function',
                                           function: { name: call.function.name,
                                                       arguments: '' } }] },
                          null));

        for (i = 0; i < call.function.arguments.length; i += 5) {
            events.push(event({ tool_calls: [{ index: 0, function: {
                arguments: call.function.arguments.slice(i, i + 5) } }] },
                null));
        }
    }

    events.push(event({}, call ? 'tool_calls' : 'stop'));

    if (usage && body.stream_options && body.stream_options.include_usage) {
        events.push('data: ' + JSON.stringify({
            id: id, object: 'chat.completion.chunk', created: created,
            model: body.model, system_fingerprint: 'fp_mock',
            choices: [], usage: usage
        }) + '\n\n');
    }

    events.push('data: [DONE]\n\n');

    send(r, c, events);
}


/* a reply in c.chunks pieces (a word each by default) */
function split(reply, c) {
    var pieces = words(reply), chunks = [], i;
    var n = Number(c.chunks || pieces.length);
    var per = Math.ceil(pieces.length / Math.max(n, 1));

    for (i = 0; i < pieces.length; i += per) {
        chunks.push(pieces.slice(i, i + per).join(''));
    }

    return chunks;
}


/* a whole answer, after c.delay */
function answer(r, c, json) {
    later(Number(c.delay || 0), function () {
        r.headersOut['Content-Type'] = 'application/json';
        r.return(200, JSON.stringify(json));
    });
}


/* a stream's events, after c.delay, c.gap apart */
function send(r, c, events) {
    later(Number(c.delay || 0), function () {
        var gap = Number(c.gap || 0), k = 0;

        r.status = 200;
        r.headersOut['Content-Type'] = 'text/event-stream';
        r.headersOut['Cache-Control'] = 'no-cache';
        r.sendHeader();

        function next() {
            r.send(events[k++]);

            if (k < events.length) {
                later(gap, next);
            } else {
                r.finish();
            }
        }

        next();
    });
}


/*
 * A text's (or token ids') vector: dimensions (default 8) multiples of
 * 1/256 in [-1, 1), exact in float32, from a hash of the input, so that
 * tests can compute them and compare base64 with floats exactly.
 */
function vector(input, dims) {
    var h = 0, i, v = [];
    var s = typeof input === 'string' ? input : JSON.stringify(input);

    for (i = 0; i < s.length; i++) {
        h = (h * 31 + s.charCodeAt(i)) % 65521;
    }

    for (i = 0; i < dims; i++) {
        v.push(((h + 37 * i) % 512 - 256) / 256);
    }

    return v;
}


function embed(r, body, c, raw) {
    var inputs, dims, usage, tokens, answer;

    if (!body.model || body.input === undefined) {
        return fail(r, 400, c, 'mock provider: model and input required');
    }

    inputs = typeof body.input === 'string' ? [body.input]
             : (Array.isArray(body.input) && typeof body.input[0] === 'number')
               ? [body.input] : body.input;

    if (!Array.isArray(inputs) || inputs.length === 0) {
        return fail(r, 400, c, 'mock provider: invalid input');
    }

    dims = Number(body.dimensions || 8);

    tokens = inputs.reduce(function (n, x) {
        return n + (typeof x === 'string' ? Math.ceil(x.length / 4) || 1
                                          : x.length);
    }, 0);

    usage = { prompt_tokens: Number(c.prompt_tokens || tokens) };
    usage.total_tokens = usage.prompt_tokens;

    answer = {
        object: 'list',
        data: inputs.map(function (x, i) {
            var v = vector(x, dims);

            if (body.encoding_format === 'base64') {
                v = Buffer.from(new Float32Array(v).buffer)
                    .toString('base64');
            }

            return { object: 'embedding', index: i, embedding: v };
        }),
        model: body.model,
        mock: seen(r, body, raw)
    };

    if (!c.no_usage) {
        answer.usage = usage;
    }

    answer.mock.encoding_format = body.encoding_format || null;
    answer.mock.dimensions = body.dimensions || null;
    answer.mock.inputs = inputs.length;

    ratelimit(r);
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(answer));
}


/* the prompt of a legacy completion: a string, strings, or token ids */
function promptText(prompt) {
    if (typeof prompt === 'string') {
        return prompt;
    }

    if (Array.isArray(prompt)) {
        return prompt.map(function (p) {
            return typeof p === 'string' ? p : JSON.stringify(p);
        }).join(' ');
    }

    return '';
}


/* POST .../completions: OpenAI's legacy text completions */
function completions(r, body, c, raw) {
    var reply, usage, id, created, chunks, prompt, asked, events;

    if (!body.model || body.prompt === undefined || body.prompt === null) {
        return fail(r, 400, c, 'mock provider: model and prompt required');
    }

    prompt = promptText(body.prompt);
    reply = c.reply || (' and the mock provider completes: '
                        + prompt.slice(0, 200));

    if (c.echo) {
        reply = raw;
    }

    usage = {
        prompt_tokens: Number(c.prompt_tokens
                              || Math.ceil(prompt.length / 4)),
        completion_tokens: Number(c.completion_tokens
                                  || words(reply).length)
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;

    if (c.no_usage) {
        usage = undefined;
    }

    id = 'cmpl-mock-' + Math.floor(Math.random() * 1e12).toString(36);
    created = Math.floor(Date.now() / 1000);

    var mock = seen(r, body, raw);
    mock.prompt = prompt.slice(0, 200);

    ratelimit(r);

    if (body.stream !== true) {
        return answer(r, c, {
            id: id,
            object: 'text_completion',
            created: created,
            model: body.model,
            choices: [{ text: reply, index: 0, logprobs: null,
                        finish_reason: 'stop' }],
            usage: usage,
            system_fingerprint: 'fp_mock',
            mock: mock
        });
    }

    asked = !!(body.stream_options && body.stream_options.include_usage);
    chunks = split(reply, c);

    function event(text, finish, extra) {
        var e = {
            id: id, object: 'text_completion', created: created,
            choices: [{ text: text, index: 0, logprobs: null,
                        finish_reason: finish }],
            model: body.model, system_fingerprint: 'fp_mock'
        };

        if (asked) {
            e.usage = null;
        }

        if (extra) {
            Object.keys(extra).forEach(function (k) { e[k] = extra[k]; });
        }

        return 'data: ' + JSON.stringify(e) + '\n\n';
    }

    events = [];

    chunks.forEach(function (text, k) {
        events.push(event(text, null, k === 0 ? { mock: mock } : null));
    });

    events.push(event('', 'stop', events.length ? null : { mock: mock }));

    if (usage && asked) {
        events.push('data: ' + JSON.stringify({
            id: id, object: 'text_completion', created: created,
            choices: [], model: body.model, system_fingerprint: 'fp_mock',
            usage: usage
        }) + '\n\n');
    }

    events.push('data: [DONE]\n\n');

    send(r, c, events);
}


/* POST .../responses: OpenAI's Responses API, stateless */
function responses(r, body, c, raw) {
    var reply, usage, id, item, seq, events, chunks, mock, text, done;

    if (!body.model || body.input === undefined) {
        return fail(r, 400, c, 'mock provider: model and input required');
    }

    text = typeof body.input === 'string' ? body.input
           : JSON.stringify(body.input);
    reply = c.reply || ('Hello from the mock provider. You said: '
                        + text.slice(0, 200));

    if (c.echo) {
        reply = raw;
    }

    usage = {
        input_tokens: Number(c.prompt_tokens || Math.ceil(text.length / 4)),
        input_tokens_details: { cached_tokens: Number(c.cached_tokens || 0) },
        output_tokens: Number(c.completion_tokens || words(reply).length),
        output_tokens_details: { reasoning_tokens: 0 }
    };
    usage.total_tokens = usage.input_tokens + usage.output_tokens;

    if (c.no_usage) {
        usage = null;
    }

    id = 'resp_mock' + Math.floor(Math.random() * 1e12).toString(36);
    mock = seen(r, body, raw);
    item = { id: 'msg_mock', type: 'message', status: 'completed',
             role: 'assistant',
             content: [{ type: 'output_text', text: reply,
                         annotations: [] }] };

    function response(status, output, u) {
        return { id: id, object: 'response',
                 created_at: Math.floor(Date.now() / 1000),
                 status: status, error: null, incomplete_details: null,
                 model: body.model, output: output, usage: u };
    }

    ratelimit(r);

    if (body.stream !== true) {
        done = response('completed', [item], usage);
        done.mock = mock;
        return answer(r, c, done);
    }

    seq = 0;
    events = [];

    function event(type, e) {
        e.type = type;
        e.sequence_number = seq++;
        events.push('event: ' + type + '\ndata: ' + JSON.stringify(e)
                    + '\n\n');
    }

    done = response('in_progress', [], null);
    done.mock = mock;
    event('response.created', { response: done });
    event('response.output_item.added', { output_index: 0,
        item: { id: 'msg_mock', type: 'message', status: 'in_progress',
                role: 'assistant', content: [] } });
    event('response.content_part.added', { item_id: 'msg_mock',
          output_index: 0, content_index: 0,
          part: { type: 'output_text', text: '', annotations: [] } });

    chunks = split(reply, c);
    chunks.forEach(function (t) {
        event('response.output_text.delta', { item_id: 'msg_mock',
              output_index: 0, content_index: 0, delta: t });
    });

    event('response.output_item.done', { output_index: 0, item: item });

    if (!c.cut) {
        event(c.failed ? 'response.failed' : 'response.completed',
              { response: response(c.failed ? 'failed' : 'completed',
                                   [item], usage) });
    }

    send(r, c, events);
}


export default { chat };
