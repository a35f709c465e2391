/*
 * A mock AWS Bedrock runtime (Converse and ConverseStream) for njs. It
 * answers POST .../model/<modelId>/converse and .../converse-stream as the
 * real service does: every request must be signed with SigV4 for service
 * "bedrock" (the mock verifies the signature with the secret key, like
 * AWS: 403 MissingAuthenticationTokenException, UnrecognizedClient,
 * InvalidSignatureException, 400 XAmzContentSHA256Mismatch), errors are
 * {"message":...} with the type in x-amzn-ErrorType, and streams are
 * binary application/vnd.amazon.eventstream frames with both CRCs.
 *
 * Controls, in the path before /model/, comma-separated:
 *
 *   ak=..., sk=...    the credentials expected (default: AWS's documented
 *                     example pair AKIDEXAMPLE / wJalrXUtnFEMI/...)
 *   token=1           an x-amz-security-token is expected (FQoGZXIvYXdzE)
 *   bearer=1          a Bedrock API key is expected instead: Bearer
 *                     ABSK-mock
 *   status=429        answer with this error status
 *   echo=1            the answer's text is what the mock received (JSON)
 *   reply=text        the answer's text
 *   exception=type    a stream that fails with this exception event
 *   input_tokens=N, output_tokens=N, cache_read=N, cache_write=N
 *
 * Exports the frame encoder for fixture.js.
 */


import crypto from 'crypto';


var ERRORS = {
    400: 'ValidationException', 403: 'AccessDeniedException',
    404: 'ResourceNotFoundException', 429: 'ThrottlingException',
    500: 'InternalServerException', 503: 'ServiceUnavailableException'
};


function controls(r) {
    var c = {};

    r.uri.split('/model/')[0].split('/').forEach(function (part) {
        part.split(',').forEach(function (kv) {
            var i = kv.indexOf('=');
            if (i > 0) {
                c[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
            }
        });
    });

    return c;
}


function fail(r, status, type, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['x-amzn-ErrorType'] = type
        + ':http://internal.amazon.com/coral/com.amazon.bedrock/';
    r.headersOut['x-amzn-RequestId'] = 'mock-request-id';
    r.return(status, JSON.stringify({ message: message }));
}


/* CRC-32 (IEEE), over an array of bytes */

var CRC_TABLE = (function () {
    var t = [], c, n, k;

    for (n = 0; n < 256; n++) {
        c = n;
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? (0xedb88320 ^ (c >>> 1)) : (c >>> 1);
        }
        t[n] = c >>> 0;
    }

    return t;
})();


function crc32(bytes) {
    var c = 0xffffffff, i;

    for (i = 0; i < bytes.length; i++) {
        c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    }

    return (c ^ 0xffffffff) >>> 0;
}


function be32(n) {
    return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}


function utf8(s) {
    var b = Buffer.from(s), a = [], i;

    for (i = 0; i < b.length; i++) {
        a.push(b[i]);
    }

    return a;
}


/* one event stream message: string headers, then the payload */

function frame(headers, payload) {
    var hb = [], msg, total;

    headers.forEach(function (h) {
        var name = utf8(h[0]), value = utf8(h[1]);

        hb.push(name.length);
        hb = hb.concat(name);
        hb.push(7);
        hb.push((value.length >> 8) & 0xff, value.length & 0xff);
        hb = hb.concat(value);
    });

    total = 12 + hb.length + payload.length + 4;

    msg = be32(total).concat(be32(hb.length));
    msg = msg.concat(be32(crc32(msg)));
    msg = msg.concat(hb, payload);

    return msg.concat(be32(crc32(msg)));
}


function event(type, obj) {
    return frame([[':event-type', type],
                  [':content-type', 'application/json'],
                  [':message-type', 'event']], utf8(JSON.stringify(obj)));
}


function exception(type, message) {
    return frame([[':exception-type', type],
                  [':content-type', 'application/json'],
                  [':message-type', 'exception']],
                 utf8(JSON.stringify({ message: message })));
}


function hex(s) {
    return crypto.createHash('sha256').update(s).digest('hex');
}


function hmac(key, s) {
    return crypto.createHmac('sha256', key).update(s).digest();
}


function encode(s, slash) {
    return utf8(s).map(function (b) {
        var ch = String.fromCharCode(b);

        if (/[A-Za-z0-9\-_.~]/.test(ch) || (slash && ch === '/')) {
            return ch;
        }

        return '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
    }).join('');
}


/*
 * SigV4 as AWS checks it; returns an error [status, type, message] or
 * null. The canonical URI is the path as received, encoded once more.
 */

function verify(r, c, body) {
    var auth = r.headersIn['Authorization'], m, signed, canonical, scope;
    var sts, key, sig, path, date, now, hash;

    if (c.bearer) {
        return auth === 'Bearer ABSK-mock' ? null
               : [403, 'AccessDeniedException', 'Invalid API key'];
    }

    if (!auth) {
        return [403, 'MissingAuthenticationTokenException',
                'Missing Authentication Token'];
    }

    m = auth.match(/^AWS4-HMAC-SHA256 Credential=([^\/]+)\/(\d{8})\/([^\/]+)\/([^\/]+)\/aws4_request, ?SignedHeaders=([a-z0-9\-;]+), ?Signature=([0-9a-f]{64})$/);

    if (!m) {
        return [400, 'IncompleteSignatureException',
                'Authorization header requires Credential, SignedHeaders '
                + 'and Signature.'];
    }

    if (m[1] !== (c.ak || 'AKIDEXAMPLE')) {
        return [403, 'UnrecognizedClientException',
                'The security token included in the request is invalid.'];
    }

    if (m[4] !== 'bedrock') {
        return [403, 'InvalidSignatureException',
                'Credential should be scoped to correct service: '
                + '\'bedrock\'.'];
    }

    date = r.headersIn['X-Amz-Date'] || '';
    now = new Date();

    if (date.slice(0, 8) !== m[2]
        || Math.abs(Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1,
                             +date.slice(6, 8), +date.slice(9, 11),
                             +date.slice(11, 13), +date.slice(13, 15))
                    - now.getTime()) > 15 * 60 * 1000)
    {
        return [403, 'InvalidSignatureException', 'Signature expired: '
                + date + ' is now earlier than the allowed time.'];
    }

    if (c.token && r.headersIn['X-Amz-Security-Token'] !== 'FQoGZXIvYXdzE') {
        return [403, 'UnrecognizedClientException',
                'The security token included in the request is invalid.'];
    }

    hash = hex(body);

    if (r.headersIn['X-Amz-Content-Sha256']
        && r.headersIn['X-Amz-Content-Sha256'] !== hash)
    {
        return [400, 'XAmzContentSHA256Mismatch', 'The provided '
                + '\'x-amz-content-sha256\' header does not match what was '
                + 'computed.'];
    }

    signed = m[5].split(';');

    if (signed.indexOf('host') < 0 || signed.indexOf('x-amz-date') < 0
        || (c.token && signed.indexOf('x-amz-security-token') < 0))
    {
        return [403, 'InvalidSignatureException',
                'Host and x-amz-date must be signed.'];
    }

    path = r.variables.request_uri.split('?')[0];

    canonical = [r.method, encode(path, true), '']
        .concat(signed.map(function (h) {
            return h + ':' + String(r.headersIn[h] || '').trim()
                                 .replace(/\s+/g, ' ');
        }))
        .concat(['', m[5], hash]).join('\n');

    scope = m[2] + '/' + m[3] + '/bedrock/aws4_request';
    sts = ['AWS4-HMAC-SHA256', date, scope, hex(canonical)].join('\n');

    key = hmac('AWS4' + (c.sk || 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'),
               m[2]);
    key = hmac(key, m[3]);
    key = hmac(key, 'bedrock');
    key = hmac(key, 'aws4_request');
    sig = crypto.createHmac('sha256', key).update(sts).digest('hex');

    if (sig !== m[6]) {
        return [403, 'InvalidSignatureException',
                'The request signature we calculated does not match the '
                + 'signature you provided. Check your AWS Secret Access Key '
                + 'and signing method. Consult the service documentation '
                + 'for details.'];
    }

    return null;
}


function text(content) {
    return (content || []).filter(function (b) { return b.text; })
                          .map(function (b) { return b.text; }).join(' ');
}


function converse(r) {
    var c = controls(r), m, raw, body, err, last, seen, content, usage;
    var stop, tool, result;

    m = r.uri.match(/\/model\/([^\/]+)\/(converse|converse-stream|invoke)$/);

    if (!m || r.method !== 'POST') {
        return fail(r, 404, 'UnknownOperationException',
                    'Unknown operation ' + r.method + ' ' + r.uri);
    }

    raw = r.requestBuffer || '';
    err = verify(r, c, raw);

    if (err) {
        return fail(r, err[0], err[1], err[2]);
    }

    try {
        body = JSON.parse(r.requestText || '');
    } catch (e) {
        return fail(r, 400, 'ValidationException', 'Malformed input request, '
                    + 'please reformat your input and try again.');
    }

    if (c.status) {
        return fail(r, Number(c.status), ERRORS[c.status] || 'UnknownError',
                    'mock bedrock error ' + c.status);
    }

    if (m[2] === 'invoke') {
        return invoke(r, decodeURIComponent(m[1]), body);
    }

    if (!Array.isArray(body.messages) || !body.messages.length) {
        return fail(r, 400, 'ValidationException',
                    'A conversation must start with a user message.');
    }

    last = body.messages[body.messages.length - 1] || {};

    seen = { path: r.variables.request_uri, model: decodeURIComponent(m[1]),
             headers: {
                 'x-amz-date': r.headersIn['X-Amz-Date'] || null,
                 'x-amz-content-sha256':
                     r.headersIn['X-Amz-Content-Sha256'] || null,
                 'x-amz-security-token':
                     r.headersIn['X-Amz-Security-Token'] ? '(set)' : null,
                 authorization: (r.headersIn['Authorization'] || '')
                                .replace(/Signature=[0-9a-f]+/,
                                         'Signature=(valid)')
             },
             body: body };

    result = (last.content || []).filter(function (b) {
        return b.toolResult;
    })[0];

    stop = 'end_turn';
    content = [];

    if (c.echo) {
        content.push({ text: JSON.stringify(seen) });

    } else if (result) {
        content.push({ text: 'The tool said: '
                             + text(result.toolResult.content) });

    } else if (body.toolConfig && body.toolConfig.tools
               && body.toolConfig.tools.length)
    {
        var spec = body.toolConfig.tools[0].toolSpec, args = {};
        var props = ((spec.inputSchema || {}).json || {}).properties || {};

        Object.keys(props).forEach(function (k) {
            args[k] = props[k].type === 'number' ? 1 : 'Paris';
        });

        tool = { toolUseId: 'tooluse_mock' + body.messages.length,
                 name: spec.name, input: args };
        content.push({ text: c.reply || 'Let me check.' });
        content.push({ toolUse: tool });
        stop = 'tool_use';

    } else {
        content.push({ text: c.reply || ('Hello from the mock provider. '
                                         + 'You said: '
                                         + text(last.content).slice(0, 200)) });
    }

    usage = { inputTokens: Number(c.input_tokens || 19),
              outputTokens: Number(c.output_tokens || 11) };

    if (c.cache_read) {
        usage.cacheReadInputTokens = Number(c.cache_read);
    }

    if (c.cache_write) {
        usage.cacheWriteInputTokens = Number(c.cache_write);
    }

    usage.totalTokens = usage.inputTokens + usage.outputTokens
                        + (usage.cacheReadInputTokens || 0)
                        + (usage.cacheWriteInputTokens || 0);

    r.headersOut['x-amzn-RequestId'] = 'mock-request-id';

    if (m[2] === 'converse') {
        r.headersOut['Content-Type'] = 'application/json';
        return r.return(200, JSON.stringify({
            output: { message: { role: 'assistant', content: content } },
            stopReason: stop, usage: usage, metrics: { latencyMs: 42 }
        }));
    }

    var frames = [event('messageStart', { role: 'assistant', p: 'abcd' })];
    var cut;

    content[0].text.split(/(?<= )/).forEach(function (w) {
        frames.push(event('contentBlockDelta', {
            contentBlockIndex: 0, delta: { text: w }, p: 'abcdefgh' }));
    });

    frames.push(event('contentBlockStop', { contentBlockIndex: 0, p: 'ab' }));

    /* an exception ends the stream there */

    if (c.exception) {
        frames.push(exception(c.exception, 'The model stream failed: '
                                           + c.exception));
        cut = frames.length;
    }

    if (tool) {
        var json = JSON.stringify(tool.input);

        frames.push(event('contentBlockStart', {
            contentBlockIndex: 1,
            start: { toolUse: { toolUseId: tool.toolUseId,
                                name: tool.name } }, p: 'abc' }));

        for (var i = 0; i < json.length; i += 6) {
            frames.push(event('contentBlockDelta', {
                contentBlockIndex: 1,
                delta: { toolUse: { input: json.slice(i, i + 6) } },
                p: 'abcd' }));
        }

        frames.push(event('contentBlockStop', { contentBlockIndex: 1 }));
    }

    frames.push(event('messageStop', { stopReason: stop, p: 'abcdef' }));
    frames.push(event('metadata', { usage: usage,
                                    metrics: { latencyMs: 42 }, p: 'ab' }));

    r.status = 200;
    r.headersOut['Content-Type'] = 'application/vnd.amazon.eventstream';
    r.sendHeader();

    frames.slice(0, cut).forEach(function (f) {
        r.send(String.bytesFrom(f));
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


/*
 * InvokeModel of the embedding models: Titan Text Embeddings v2 (one
 * text, its token count) and Cohere Embed (texts, no usage).
 */
function invoke(r, model, body) {
    var v;

    r.headersOut['Content-Type'] = 'application/json';

    if (/^cohere\.embed/.test(model)) {
        if (!Array.isArray(body.texts) || !body.texts.length
            || body.input_type !== 'search_document')
        {
            return fail(r, 400, 'ValidationException',
                        'Malformed input request: texts and input_type '
                        + 'are required');
        }

        return r.return(200, JSON.stringify({
            id: 'mock-cohere', response_type: 'embeddings_floats',
            texts: body.texts,
            embeddings: body.texts.map(function (t) {
                return vector(t, 8);
            })
        }));
    }

    if (/^amazon\.titan-embed/.test(model)) {
        if (typeof body.inputText !== 'string' || body.texts) {
            return fail(r, 400, 'ValidationException',
                        'Malformed input request: inputText is required');
        }

        v = vector(body.inputText, Number(body.dimensions || 8));

        return r.return(200, JSON.stringify({
            embedding: v, embeddingsByType: { float: v },
            inputTextTokenCount: 7
        }));
    }

    return fail(r, 400, 'ValidationException',
                'mock: not an embedding model: ' + model);
}


export default { converse, frame, event, exception, crc32, utf8 };
