/*
 * Serves recorded-shape provider responses (t/fixtures/<dialect>/...) for
 * the golden tests, optionally in two pieces: the first "split" bytes and
 * the rest go out as separate chunks of the response (two sends, each its
 * own chunk), so the gateway reads them in separate buffers.
 *
 * Controls, in the path before /v1 or /model/ (the provider's url):
 *
 *   fixture=anthropic:text.sse   the file anthropic/text.sse, under
 *                                $mock_fixture_dir
 *   split=N                      first N bytes, then the rest (or
 *                                "split-N" in the model's name;
 *                                "split-bytewise": a chunk per byte)
 *   status=N                     the status (default 200)
 *   errortype=ThrottlingException    an x-amzn-ErrorType header
 *   corrupt=N                    the byte at offset N is flipped
 *   length=1                     a Content-Length (one piece, not
 *                                chunked; not with split)
 *
 * The type comes from the name: .sse text/event-stream, .json
 * application/json, .es.json an AWS event stream: a JSON array of
 * {"headers": {...}, "payload": {...}} encoded into binary frames here.
 */


import fs from 'fs';
import bedrock from 'bedrock.js';


function controls(r) {
    var c = {};

    r.uri.split(/\/v1\/|\/v1beta\/|\/model\//)[0].split('/')
     .forEach(function (part) {
        part.split(',').forEach(function (kv) {
            var i = kv.indexOf('=');
            if (i > 0) {
                c[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
            }
        });
    });

    return c;
}


/* one piece of the response: String.bytesFrom() of a large array sends
   nothing in Debian's njs, so the piece goes as strings of 4 KiB, with
   nginx's own flush only at the end (one piece for the client still) */

function send(r, bytes) {
    var i, s = '';

    for (i = 0; i < bytes.length; i += 4096) {
        s += String.bytesFrom(bytes.slice(i, i + 4096));
    }

    r.send(s);
}


function serve(r) {
    var c = controls(r), name, data, bytes, type, split, i, m;

    /* dialect:name, the ':' for a '/' */
    name = (c.fixture || '').replace(/:/g, '/')
                            .replace(/[^A-Za-z0-9_.\/-]/g, '_')
                            .replace(/\.\.+/g, '.');

    try {
        data = fs.readFileSync(r.variables.mock_fixture_dir + '/' + name);
    } catch (e) {
        r.return(404, 'no fixture ' + name + '\n');
        return;
    }

    if (/\.es\.json$/.test(name)) {
        bytes = [];

        JSON.parse(data.toString()).forEach(function (m) {
            var headers = Object.keys(m.headers).map(function (k) {
                return [k, m.headers[k]];
            });

            bytes = bytes.concat(bedrock.frame(headers,
                                   bedrock.utf8(JSON.stringify(m.payload))));
        });

        type = 'application/vnd.amazon.eventstream';

    } else {
        bytes = [];

        for (i = 0; i < data.length; i++) {
            bytes.push(data[i]);
        }

        type = /\.sse$/.test(name) ? 'text/event-stream'
                                   : 'application/json';
    }

    if (c.corrupt) {
        bytes[Number(c.corrupt)] ^= 0x55;
    }

    if (c.errortype) {
        r.headersOut['x-amzn-ErrorType'] = c.errortype
            + ':http://internal.amazon.com/coral/com.amazon.bedrock/';
    }

    /* or "split-N" in the model's name, in the path or the body */

    if (!c.split) {
        m = (decodeURIComponent(r.uri) + ' ' + (r.requestText || ''))
            .match(/split-(\d+|bytewise)/);

        if (m) {
            c.split = m[1];
        }
    }

    r.status = Number(c.status || 200);
    r.headersOut['Content-Type'] = c.type || type;

    if (c.length) {
        r.headersOut['Content-Length'] = String(bytes.length);
    }
    r.sendHeader();

    if (c.split === 'bytewise') {
        for (i = 0; i < bytes.length; i++) {
            r.send(String.bytesFrom([bytes[i]]));
        }

        r.finish();
        return;
    }

    split = Math.min(Number(c.split || bytes.length), bytes.length);

    if (split > 0) {
        send(r, bytes.slice(0, split));
    }

    if (split < bytes.length) {
        send(r, bytes.slice(split));
    }

    r.finish();
}


export default { serve };
