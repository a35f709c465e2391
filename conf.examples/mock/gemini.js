/*
 * A mock Google Gemini API (generativelanguage, v1beta) for njs. It
 * answers POST .../models/<model>:generateContent and
 * .../models/<model>:streamGenerateContent?alt=sse as the real API does:
 * the key in x-goog-api-key (403 PERMISSION_DENIED without one, 400
 * INVALID_ARGUMENT with API_KEY_INVALID for a wrong one), errors as
 * {"error":{"code":...,"message":...,"status":...}}, streams as server-sent
 * events of GenerateContentResponse chunks with CRLF line ends.
 *
 * With function declarations in the request and no function response in
 * the last content, the answer calls the first function.
 *
 * Controls, in the path before /v1beta, comma-separated:
 *
 *   key=...           the API key expected (default gemini-mock-key)
 *   status=429        answer with this error status
 *   echo=1            the answer's text is what the mock received (JSON)
 *   reply=text        the answer's text
 *   safety=1          the answer is blocked: finishReason SAFETY
 *   blocked=1         the prompt is blocked: promptFeedback.blockReason
 *   prompt_tokens=N, output_tokens=N, cached_tokens=N, thoughts_tokens=N
 */


var STATUS = {
    400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE',
    504: 'DEADLINE_EXCEEDED'
};


function controls(r) {
    var c = {};

    r.uri.split('/v1beta/')[0].split('/').forEach(function (part) {
        part.split(',').forEach(function (kv) {
            var i = kv.indexOf('=');
            if (i > 0) {
                c[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
            }
        });
    });

    return c;
}


function fail(r, code, message, details) {
    var e = { code: code, message: message || ('mock gemini error ' + code),
              status: STATUS[code] || 'UNKNOWN' };

    if (details) {
        e.details = details;
    }

    r.headersOut['Content-Type'] = 'application/json; charset=UTF-8';
    r.return(code, JSON.stringify({ error: e }, null, 2));
}


function partsText(parts) {
    return (parts || []).filter(function (p) { return p.text; })
                        .map(function (p) { return p.text; }).join(' ');
}


function generate(r) {
    var c = controls(r), m, body, last, seen, parts, usage, finish, resp;
    var calls = [], key = r.headersIn['x-goog-api-key'];

    m = r.uri.match(/\/v1beta\/(models\/[^:\/]+):(generateContent|streamGenerateContent|batchEmbedContents)$/);

    if (!m || r.method !== 'POST') {
        return fail(r, 404, 'Requested entity was not found.');
    }

    if (!key) {
        return fail(r, 403, 'Method doesn\'t allow unregistered callers '
                            + '(callers without established identity). '
                            + 'Please use API Key or other form of API '
                            + 'consumer identity to call this API.');
    }

    if (key !== (c.key || 'gemini-mock-key')) {
        return fail(r, 400, 'API key not valid. Please pass a valid API key.',
                    [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
                       reason: 'API_KEY_INVALID',
                       domain: 'googleapis.com' }]);
    }

    if (m[2] === 'streamGenerateContent' && r.args.alt !== 'sse') {
        return fail(r, 400, 'mock: streams are served with alt=sse only');
    }

    try {
        body = JSON.parse(r.requestText || '');
    } catch (e) {
        return fail(r, 400, 'Invalid JSON payload received. ' + e.message);
    }

    if (c.status) {
        return fail(r, Number(c.status));
    }

    if (m[2] === 'batchEmbedContents') {
        return embed(r, m[1], body);
    }

    if (!Array.isArray(body.contents) || !body.contents.length) {
        return fail(r, 400, '* GenerateContentRequest.contents: contents is '
                            + 'not specified');
    }

    last = body.contents[body.contents.length - 1] || {};

    seen = { path: r.uri, args: r.args,
             headers: { 'x-goog-api-key': '(set)',
                        authorization: r.headersIn['Authorization'] || null },
             body: body };

    parts = [];
    finish = 'STOP';

    var result = (last.parts || []).filter(function (p) {
        return p.functionResponse;
    })[0];
    var decls = body.tools && body.tools[0]
                && body.tools[0].functionDeclarations;

    if (c.echo) {
        parts.push({ text: JSON.stringify(seen) });

    } else if (result) {
        parts.push({ text: 'The tool said: '
                           + JSON.stringify(result.functionResponse.response) });

    } else if (decls && decls.length
               && !(body.toolConfig && body.toolConfig.functionCallingConfig
                    && body.toolConfig.functionCallingConfig.mode === 'NONE'))
    {
        var args = {}, props = (decls[0].parameters || {}).properties || {};

        Object.keys(props).forEach(function (k) {
            args[k] = props[k].type === 'number' ? 1 : 'Paris';
        });

        calls.push({ functionCall: { name: decls[0].name, args: args } });

    } else {
        parts.push({ text: c.reply || ('Hello from the mock provider. '
                                       + 'You said: '
                                       + partsText(last.parts).slice(0, 200)) });
    }

    if (c.safety) {
        parts = [];
        calls = [];
        finish = 'SAFETY';
    }

    usage = {
        promptTokenCount: Number(c.prompt_tokens || 21),
        candidatesTokenCount: Number(c.output_tokens || 9),
        totalTokenCount: 0
    };

    if (c.cached_tokens) {
        usage.cachedContentTokenCount = Number(c.cached_tokens);
    }

    if (c.thoughts_tokens) {
        usage.thoughtsTokenCount = Number(c.thoughts_tokens);
    }

    usage.totalTokenCount = usage.promptTokenCount
                            + usage.candidatesTokenCount
                            + (usage.thoughtsTokenCount || 0);

    function candidate(ps, fin) {
        var cand = { content: { parts: ps, role: 'model' }, index: 0 };

        if (fin) {
            cand.finishReason = fin;
            cand.safetyRatings = [{
                category: 'HARM_CATEGORY_DANGEROUS_CONTENT',
                probability: fin === 'SAFETY' ? 'HIGH' : 'NEGLIGIBLE',
                blocked: fin === 'SAFETY' ? true : undefined
            }];
        }

        return cand;
    }

    if (c.blocked) {
        resp = { promptFeedback: { blockReason: 'SAFETY',
                                   safetyRatings: [] },
                 usageMetadata: { promptTokenCount: usage.promptTokenCount,
                                  totalTokenCount: usage.promptTokenCount },
                 modelVersion: m[1].slice(7), responseId: 'mock-resp-1' };

    } else {
        resp = { candidates: [candidate(parts.concat(calls), finish)],
                 usageMetadata: usage, modelVersion: m[1].slice(7),
                 responseId: 'mock-resp-' + body.contents.length };
    }

    if (m[2] === 'generateContent') {
        r.headersOut['Content-Type'] = 'application/json; charset=UTF-8';
        return r.return(200, JSON.stringify(resp, null, 2));
    }

    /* a stream: text in word chunks, calls and finish in the last */

    var chunks = [];

    if (!c.blocked) {
        var words = parts.length ? parts[0].text.split(/(?<= )/) : [];

        words.forEach(function (w, i) {
            var last = (i === words.length - 1) && !calls.length;
            var ch = { candidates: [candidate([{ text: w }],
                                              last ? finish : null)],
                       usageMetadata: last ? usage
                                           : { promptTokenCount:
                                                   usage.promptTokenCount,
                                               totalTokenCount:
                                                   usage.promptTokenCount },
                       modelVersion: m[1].slice(7), responseId: resp.responseId };
            chunks.push(ch);
        });

        if (calls.length || !words.length) {
            chunks.push({ candidates: [candidate(calls, finish)],
                          usageMetadata: usage, modelVersion: m[1].slice(7),
                          responseId: resp.responseId });
        }

    } else {
        chunks.push(resp);
    }

    r.status = 200;
    r.headersOut['Content-Type'] = 'text/event-stream';
    r.sendHeader();

    chunks.forEach(function (ch) {
        r.send('data: ' + JSON.stringify(ch) + '\r\n\r\n');
    });

    r.finish();
}


/* the same vectors as the OpenAI mock's (openai.js, vector()) */
function vector(input, dims) {
    var h = 0, i, v = [];

    for (i = 0; i < input.length; i++) {
        h = (h * 31 + input.charCodeAt(i)) % 65521;
    }

    for (i = 0; i < dims; i++) {
        v.push(((h + 37 * i) % 512 - 256) / 256);
    }

    return v;
}


/* batchEmbedContents: one vector per request; Gemini reports no usage */
function embed(r, model, body) {
    var i, q, text, out = [];

    if (!Array.isArray(body.requests) || !body.requests.length) {
        return fail(r, 400, '* BatchEmbedContentsRequest.requests: '
                            + 'requests is not specified');
    }

    for (i = 0; i < body.requests.length; i++) {
        q = body.requests[i] || {};

        if (q.model !== model) {
            return fail(r, 400, '* BatchEmbedContentsRequest.requests[' + i
                                + '].model: model ' + q.model
                                + ' differs from ' + model);
        }

        text = q.content && q.content.parts && q.content.parts[0]
               && q.content.parts[0].text;

        if (typeof text !== 'string') {
            return fail(r, 400, '* BatchEmbedContentsRequest.requests[' + i
                                + '].content: text is not specified');
        }

        out.push({ values: vector(text, Number(q.outputDimensionality
                                                || 8)) });
    }

    r.headersOut['Content-Type'] = 'application/json; charset=UTF-8';
    r.return(200, JSON.stringify({ embeddings: out }));
}


export default { generate };
