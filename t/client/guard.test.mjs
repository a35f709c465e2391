// Guard policies through the official SDKs: streamed answers redacted
// (a card cut into several events arrives as one placeholder, never a
// digit of it), numbered placeholders, and an answer stopped by a deny
// rule surfacing as the SDK's error; at both doors, for Responses calls
// (which a policy sends through chat) and legacy completions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const openai = new OpenAI({
    baseURL: `${process.env.GATEWAY_URL}/guarded/v1`,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const anthropic = new Anthropic({
    baseURL: `${process.env.GATEWAY_URL}/guarded`,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const reply = 'pay with 4111 1111 1111 1111 and mail a@b.example or '
              + 'c@d.example, then a@b.example';
const redacted = 'pay with [CARD] and mail [EMAIL_1] or [EMAIL_2], '
                 + 'then [EMAIL_1]';

test('openai: a streamed answer redacted, chunk by chunk', async () => {
    const stream = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        mock: { reply },
    });

    const parts = [];
    for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (text) {
            parts.push(text);
        }
    }

    assert.ok(parts.length > 5, `only ${parts.length} chunks`);
    assert.equal(parts.join(''), redacted);
    assert.ok(!parts.some((p) => /1111|example/.test(p)));
});

test('openai: an answer that is not streamed', async () => {
    const r = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        mock: { reply },
    });

    assert.equal(r.choices[0].message.content, redacted);
    assert.ok(r.usage.total_tokens > 0);
});

test('openai: a deny rule stops the stream with an error', async () => {
    const stream = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        mock: { reply: 'the key is sk-abcdefghijklmnopqrstuvwxyz, use it' },
    });

    const parts = [];
    await assert.rejects(async () => {
        for await (const chunk of stream) {
            parts.push(chunk.choices[0]?.delta?.content ?? '');
        }
    }, /guard policy `pii` \(rule `secret`\)/);

    assert.equal(parts.join(''), 'the key is ');
});

test('openai: a legacy completion redacted as it streams, with usage', async () => {
    const stream = await openai.completions.create({
        model: 'gpt-4o-mini',
        prompt: 'hi',
        stream: true,
        stream_options: { include_usage: true },
        mock: { reply },
    });

    const parts = [];
    let usage = null, finish = null;

    for await (const chunk of stream) {
        assert.equal(chunk.object, 'text_completion');

        if (chunk.choices.length) {
            parts.push(chunk.choices[0].text);
            finish = chunk.choices[0].finish_reason || finish;
        }

        usage = chunk.usage || usage;
    }

    assert.equal(parts.join(''), redacted);
    assert.ok(!parts.some((p) => /1111|example/.test(p)));
    assert.equal(finish, 'stop');
    assert.ok(usage.total_tokens > 0);
});

test('openai: a legacy completion whose prompt a deny rule refuses', async () => {
    await assert.rejects(
        openai.completions.create({
            model: 'gpt-4o-mini',
            prompt: ['fine', 'my key is sk-abcdefghijklmnopqrstuvwxyz'],
        }),
        (e) => e instanceof OpenAI.BadRequestError
               && e.code === 'content_policy_violation');
});

test('anthropic: a streamed answer redacted at the Messages door', async () => {
    const stream = anthropic.messages.stream({
        model: 'door/gpt-4o',
        max_tokens: 100,
        messages: [{ role: 'user', content: `say: ${reply}` }],
    });

    const parts = [];
    stream.on('text', (t) => parts.push(t));

    const m = await stream.finalMessage();

    // the mock says what it was told, after the request's own redaction
    assert.match(m.content[0].text, /\[CARD\] and mail \[EMAIL_1\] or \[EMAIL_2\], then \[EMAIL_1\]/);
    assert.ok(!parts.some((p) => /1111|example/.test(p)));
    assert.equal(parts.join(''), m.content[0].text);
});

test('responses: a guarded call streamed, through chat, its texts redacted', async () => {
    const stream = openai.responses.stream({
        model: 'mock/resp-model',
        input: `say: ${reply}`,
    });

    const parts = [];
    stream.on('response.output_text.delta', (e) => parts.push(e.delta));

    const r = await stream.finalResponse();
    // a streamed response's text: the SDK adds output_text to created ones
    const text = r.output.filter((o) => o.type === 'message')
        .flatMap((o) => o.content).map((c) => c.text).join('');

    assert.equal(r.status, 'completed');
    assert.match(text, /You said: say: pay with \[CARD\] and mail \[EMAIL_1\] or \[EMAIL_2\], then \[EMAIL_1\]$/);
    assert.ok(!parts.some((p) => /1111|example/.test(p)));
    assert.equal(parts.join(''), text);
});

test('responses: a request a deny rule refuses is the SDK\'s 400', async () => {
    await assert.rejects(openai.responses.create({
        model: 'mock/resp-model',
        input: 'the key is sk-abcdefghijklmnopqrstuvwxyz',
    }), (e) => e.status === 400 && e.code === 'content_policy_violation'
               && /guard policy `pii` \(rule `secret`\)/.test(e.message));
});
