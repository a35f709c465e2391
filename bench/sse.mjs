// A small SSE load client for make bench (Node, no dependencies).
//
//   node sse.mjs --url URL --body FILE [--headers FILE]
//                [--concurrency 50] [--duration 5]
//   node sse.mjs ... --hold SECONDS --ready FILE --concurrency 1000
//
// --headers: a file of "Name: value" lines, sent with every request.
//
// Load mode: --concurrency connections each POST streaming requests one
// after the other for --duration seconds; time to the first "data:" event
// (TTFT) and to "data: [DONE]" are measured per stream. Prints one line:
//
//   streams errors streams/s ttft_p50 ttft_p99 total_p50 total_p99   (ms)
//
// Hold mode: opens --concurrency streams at once, writes their number to
// --ready once every one has had its first event, keeps them open for
// --hold seconds (a slow stream), then closes them all and exits.

import http from 'node:http';
import fs from 'node:fs';

function options(argv) {
    const o = { headers: {}, concurrency: 50, duration: 5 };

    for (let i = 2; i < argv.length; i += 2) {
        const name = argv[i].replace(/^--/, ''), value = argv[i + 1];

        if (value === undefined) {
            throw new Error(`--${name} needs a value`);
        }

        if (name === 'headers') {
            for (const line of fs.readFileSync(value, 'utf8').split('\n')) {
                const colon = line.indexOf(':');
                if (colon > 0) {
                    o.headers[line.slice(0, colon).trim()] =
                        line.slice(colon + 1).trim();
                }
            }
        } else {
            o[name] = ['url', 'body', 'ready'].includes(name)
                      ? value : Number(value);
        }
    }

    if (!o.url || !o.body) {
        throw new Error('--url and --body are required');
    }

    return o;
}

const o = options(process.argv);
const body = fs.readFileSync(o.body);
const url = new URL(o.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const headers = Object.assign({
    'Content-Type': 'application/json',
    'Content-Length': body.length
}, o.headers);

// One stream: resolves with its timings in ms, or rejects. With "hold",
// the response is left open and handed to the caller on the first event.
function stream(onFirst) {
    return new Promise((resolve, reject) => {
        const start = process.hrtime.bigint();
        const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
        let ttft = null, done = null, tail = '';

        const req = http.request({
            hostname: url.hostname, port: url.port, path: url.pathname,
            method: 'POST', headers, agent
        }, (res) => {
            if (res.statusCode !== 200) {
                res.resume();
                return reject(new Error(`status ${res.statusCode}`));
            }

            res.setEncoding('utf8');

            res.on('data', (text) => {
                // "[DONE]" or "data:" may be cut between two reads
                const seen = tail + text;

                if (ttft === null && seen.includes('data:')) {
                    ttft = ms();
                    if (onFirst) {
                        onFirst(req);
                    }
                }

                if (done === null && seen.includes('data: [DONE]')) {
                    done = ms();
                }

                tail = seen.slice(-16);
            });

            // the next request waits for the end, to reuse the connection
            res.on('end', () => done === null
                                ? reject(new Error('stream ended early'))
                                : resolve({ ttft, total: done }));
            res.on('error', reject);
        });

        req.on('error', reject);
        req.end(body);
    });
}

function percentile(sorted, q) {
    if (sorted.length === 0) {
        return NaN;
    }
    return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

async function load() {
    const ttft = [], total = [];
    const end = Date.now() + o.duration * 1000;
    const began = process.hrtime.bigint();
    let errors = 0;

    async function worker() {
        while (Date.now() < end) {
            try {
                const t = await stream(null);
                ttft.push(t.ttft);
                total.push(t.total);
            } catch (e) {
                errors++;
                if (errors <= 3) {
                    process.stderr.write(`sse: ${e.message}\n`);
                }
            }
        }
    }

    await Promise.all(Array.from({ length: o.concurrency }, worker));

    const secs = Number(process.hrtime.bigint() - began) / 1e9;
    ttft.sort((a, b) => a - b);
    total.sort((a, b) => a - b);

    const f = (x) => x.toFixed(3);
    console.log([ttft.length, errors, (ttft.length / secs).toFixed(1),
                 f(percentile(ttft, 0.5)), f(percentile(ttft, 0.99)),
                 f(percentile(total, 0.5)), f(percentile(total, 0.99))]
                .join(' '));
}

async function hold() {
    const open = [];
    let first = 0;

    await new Promise((resolve, reject) => {
        for (let i = 0; i < o.concurrency; i++) {
            stream((req) => {
                open.push(req);
                if (++first === o.concurrency) {
                    resolve();
                }
            }).catch(() => {});
        }
        setTimeout(() => reject(new Error(
            `only ${first} of ${o.concurrency} streams started`)), 30000);
    });

    fs.writeFileSync(o.ready, `${open.length}\n`);
    await new Promise((r) => setTimeout(r, o.hold * 1000));
    open.forEach((req) => req.destroy());
    console.log(open.length);
}

(o.hold ? hold() : load()).then(() => process.exit(0), (e) => {
    process.stderr.write(`sse: ${e.message}\n`);
    process.exit(1);
});
