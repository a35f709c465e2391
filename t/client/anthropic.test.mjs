// The official @anthropic-ai/sdk client at the gateway's /v1/messages
// door, routed to an OpenAI-format provider (non-stream, stream, tools).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({
    baseURL: process.env.GATEWAY_URL,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const tools = [{
    name: 'get_weather',
    description: 'The weather in a city',
    input_schema: {
        type: 'object',
        properties: { location: { type: 'string' } },
        required: ['location'],
    },
}];

test('a message', async () => {
    const m = await client.messages.create({
        model: 'door/gpt-4o',
        max_tokens: 100,
        system: 'You are a test.',
        messages: [{ role: 'user', content: 'Hello ünïcödé ✓' }],
    });

    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'gpt-4o');
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.content[0].text,
                 'Hello from the mock provider. You said: Hello ünïcödé ✓');
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(m.usage.output_tokens > 0);
});

test('a stream', async () => {
    const stream = client.messages.stream({
        model: 'door/gpt-4o',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'stream these words' }],
    });

    const texts = [];
    stream.on('text', (t) => texts.push(t));

    const m = await stream.finalMessage();

    assert.ok(texts.length > 1, `only ${texts.length} text events`);
    assert.equal(texts.join(''),
                 'Hello from the mock provider. You said: '
                 + 'stream these words');
    assert.equal(m.content[0].text, texts.join(''));
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.output_tokens > 0);
});

test('tools: a tool_use, then its result', async () => {
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];

    const stream = client.messages.stream({
        model: 'door/gpt-4o', max_tokens: 100, tools, messages,
    });
    const first = await stream.finalMessage();
    const use = first.content.find((b) => b.type === 'tool_use');

    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { location: 'Paris' });

    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [
        { type: 'tool_result', tool_use_id: use.id, content: 'Sunny, 18C' },
    ] });

    const second = await client.messages.create({
        model: 'door/gpt-4o', max_tokens: 100, tools, messages,
    });

    assert.equal(second.content[0].text, 'The tool said: Sunny, 18C');
    assert.equal(second.stop_reason, 'end_turn');
});

test('errors are Anthropic errors', async () => {
    await assert.rejects(
        client.messages.create({
            model: 'no-such-model', max_tokens: 10,
            messages: [{ role: 'user', content: 'x' }],
        }),
        (err) => {
            assert.ok(err instanceof Anthropic.NotFoundError, String(err));
            assert.equal(err.status, 404);
            assert.equal(err.error.error.type, 'not_found_error');
            return true;
        });
});
