// The official openai npm client against a running gateway
// (scripts/client-test.sh starts it and sets GATEWAY_URL).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({
    baseURL: `${process.env.GATEWAY_URL}/v1`,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const messages = [
    { role: 'system', content: 'You are a test.' },
    { role: 'user', content: 'Hello from the SDK: ünïcödé ✓' },
];

test('a completion is routed, failed over and rewritten', async () => {
    const r = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
    });

    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'mock-model-x');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.match(r.choices[0].message.content,
                 /You said: Hello from the SDK: ünïcödé ✓/);
    assert.ok(r.usage.total_tokens > 0);

    // what the provider received: its own key, never the client's
    assert.equal(r.mock.authorization, 'Bearer sk-provider-mock');
    assert.equal(r.mock.x_api_key, null);
    assert.equal(r.mock.model, 'mock-model-x');
});

test('a stream arrives as chunks with the role first', async () => {
    const stream = await client.chat.completions.create({
        model: 'mock/streamer',
        messages: [{ role: 'user', content: 'stream these words please' }],
        stream: true,
    });

    const chunks = [];
    for await (const chunk of stream) {
        chunks.push(chunk);
    }

    assert.ok(chunks.length >= 4, `only ${chunks.length} chunks`);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks[0].model, 'streamer');

    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '')
                       .join('');
    assert.equal(text, 'Hello from the mock provider. You said: '
                       + 'stream these words please');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('an unknown model is a typed NotFoundError', async () => {
    await assert.rejects(
        client.chat.completions.create({ model: 'no-such-model', messages }),
        (err) => {
            assert.ok(err instanceof OpenAI.NotFoundError, String(err));
            assert.equal(err.status, 404);
            assert.equal(err.code, 'model_not_found');
            assert.equal(err.param, 'model');
            assert.match(err.message, /no-such-model/);
            return true;
        });
});

test('an invalid request is a typed BadRequestError', async () => {
    await assert.rejects(
        client.chat.completions.create({ model: 'gpt-4o-mini' }),
        (err) => {
            assert.ok(err instanceof OpenAI.BadRequestError, String(err));
            assert.equal(err.status, 400);
            assert.equal(err.param, 'messages');
            return true;
        });
});

test('models are listed', async () => {
    const ids = [];
    for await (const model of client.models.list()) {
        ids.push(model.id);
    }

    assert.deepEqual(ids, ['gpt-4o-mini']);

    const one = await client.models.retrieve('gpt-4o-mini');
    assert.equal(one.id, 'gpt-4o-mini');
    assert.equal(one.owned_by, 'down');   // the route's first target
});
