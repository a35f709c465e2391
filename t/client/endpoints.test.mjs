// The official SDKs at the endpoints beside chat: openai's
// completions.create (legacy text completions, whole and streamed) and
// @anthropic-ai/sdk's messages.countTokens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const openai = new OpenAI({
    baseURL: process.env.GATEWAY_URL + '/v1',
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const anthropic = new Anthropic({
    baseURL: process.env.GATEWAY_URL,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

test('a legacy completion, after a failover', async () => {
    const c = await openai.completions.create({
        model: 'gpt-4o-mini',
        prompt: 'Say this is a test',
        max_tokens: 16,
    });

    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, 'mock-model-x');
    assert.equal(c.choices[0].text,
                 ' and the mock provider completes: Say this is a test');
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.ok(c.usage.prompt_tokens > 0);
    assert.ok(c.usage.completion_tokens > 0);
});

test('a streamed legacy completion, with usage', async () => {
    const stream = await openai.completions.create({
        model: 'mock/text-model',
        prompt: ['stream', 'these'],
        stream: true,
        stream_options: { include_usage: true },
    });

    let text = '', usage = null, finish = null;

    for await (const chunk of stream) {
        assert.equal(chunk.object, 'text_completion');

        if (chunk.choices.length) {
            text += chunk.choices[0].text;
            finish = chunk.choices[0].finish_reason || finish;
        }

        if (chunk.usage) {
            usage = chunk.usage;
        }
    }

    assert.equal(text, ' and the mock provider completes: stream these');
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0);
});

test('a completion on a route without an OpenAI-format target', async () => {
    await assert.rejects(
        openai.completions.create({ model: 'claude/claude-x', prompt: 'x' }),
        (e) => e instanceof OpenAI.BadRequestError
               && /served by OpenAI-format targets only/.test(e.message));
});

test('tokens counted by an Anthropic target', async () => {
    const r = await anthropic.messages.countTokens({
        model: 'claude/claude-sonnet-4-5',
        system: 'You are a test.',
        messages: [{ role: 'user', content: 'Hello, Claude' }],
    });

    // the mock counts characters over four: "You are a test." and
    // "Hello, Claude", 28 characters
    assert.deepEqual(r, { input_tokens: 7 });
});

test('tokens cannot be counted by an OpenAI-format target', async () => {
    await assert.rejects(
        anthropic.messages.countTokens({
            model: 'mock/gpt-4o',
            messages: [{ role: 'user', content: 'Hello' }],
        }),
        (e) => e instanceof Anthropic.BadRequestError
               && e.error.type === 'error'
               && e.error.error.type === 'invalid_request_error'
               && /cannot count tokens/.test(e.error.error.message));
});
