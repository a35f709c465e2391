// The official openai npm client against providers in other dialects:
// Anthropic, Gemini and Bedrock mocks behind the gateway (non-stream,
// stream, tools). scripts/client-test.sh starts it and sets GATEWAY_URL.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({
    baseURL: `${process.env.GATEWAY_URL}/v1`,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const tools = [{
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'The weather in a city',
        parameters: {
            type: 'object',
            properties: { location: { type: 'string' } },
            required: ['location'],
        },
    },
}];

const targets = [
    ['anthropic', 'claude/claude-sonnet-4-5'],
    ['gemini', 'gemini/gemini-2.5-flash'],
    ['bedrock', 'bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0'],
];

for (const [dialect, model] of targets) {
    test(`${dialect}: a completion`, async () => {
        const r = await client.chat.completions.create({
            model,
            messages: [
                { role: 'system', content: 'You are a test.' },
                { role: 'user', content: 'Hello ünïcödé ✓' },
            ],
        });

        assert.equal(r.object, 'chat.completion');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content,
                     'Hello from the mock provider. You said: '
                     + 'Hello ünïcödé ✓');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.ok(r.usage.prompt_tokens > 0);
        assert.ok(r.usage.completion_tokens > 0);
    });

    test(`${dialect}: a stream`, async () => {
        const stream = await client.chat.completions.create({
            model,
            messages: [{ role: 'user', content: 'stream these words' }],
            stream: true,
            stream_options: { include_usage: true },
        });

        const chunks = [];
        for await (const chunk of stream) {
            chunks.push(chunk);
        }

        assert.equal(chunks[0].choices[0].delta.role, 'assistant');

        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '')
                           .join('');
        assert.equal(text, 'Hello from the mock provider. You said: '
                           + 'stream these words');

        const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(finish.length, 1);
        assert.equal(finish[0].choices[0].finish_reason, 'stop');
        assert.ok(chunks.at(-1).usage.total_tokens > 0);
    });

    test(`${dialect}: tools, called and answered, streamed`, async () => {
        const messages = [{ role: 'user', content: 'Weather in Paris?' }];

        const runner = client.chat.completions.stream({
            model, messages, tools,
        });

        const first = await runner.finalChatCompletion();
        const call = first.choices[0].message.tool_calls[0];

        assert.equal(first.choices[0].finish_reason, 'tool_calls');
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments),
                         { location: 'Paris' });
        assert.ok(call.id.length > 0);

        messages.push(first.choices[0].message);
        messages.push({ role: 'tool', tool_call_id: call.id,
                        content: 'Sunny, 18C' });

        const second = await client.chat.completions.create({
            model, messages, tools,
        });

        assert.match(second.choices[0].message.content, /Sunny, 18C/);
        assert.equal(second.choices[0].finish_reason, 'stop');
    });
}

test('a provider error keeps its status and reaches the SDK typed', async () => {
    await assert.rejects(
        client.chat.completions.create({
            model: 'claude/claude-x',
            max_tokens: 5,
            messages: [],
        }),
        (err) => {
            assert.ok(err instanceof OpenAI.BadRequestError, String(err));
            return true;
        });
});
