// The official openai SDK's Responses API against the gateway:
// responses.create and responses.stream, to an OpenAI-format target (the
// call as it is) and to targets of other formats (translated), with
// function tools; and a refusal the SDK raises.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const openai = new OpenAI({
    baseURL: process.env.GATEWAY_URL + '/v1',
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

const weather = {
    type: 'function',
    name: 'weather',
    description: 'The weather of a city',
    parameters: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
    },
};

// a streamed response's text (the SDK adds output_text to created ones)
function textOf(r) {
    return r.output.filter((o) => o.type === 'message')
        .flatMap((o) => o.content)
        .filter((c) => c.type === 'output_text')
        .map((c) => c.text).join('');
}

test('responses.create to an OpenAI-format target: as it is', async () => {
    const r = await openai.responses.create({
        model: 'mock/resp-model',
        input: 'Say this is a test',
    });

    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text,
                 'Hello from the mock provider. You said: Say this is a test');
    assert.ok(r.usage.input_tokens > 0);
    assert.ok(r.usage.output_tokens > 0);
});

test('responses.stream to an OpenAI-format target', async () => {
    const stream = openai.responses.stream({
        model: 'mock/resp-model',
        input: 'stream this',
    });

    let text = '';

    stream.on('response.output_text.delta', (e) => { text += e.delta; });

    const r = await stream.finalResponse();

    assert.equal(text, 'Hello from the mock provider. You said: stream this');
    assert.equal(textOf(r), text);
    assert.ok(r.usage.total_tokens > 0);
});

for (const model of ['claude/claude-haiku', 'gemini/gemini-2.5-flash',
                     'bedrock/anthropic.claude-3-haiku'])
{
    test(`responses.create translated: ${model}`, async () => {
        const r = await openai.responses.create({
            model,
            instructions: 'Be brief.',
            input: [{ role: 'user', content: 'Hi there' }],
            max_output_tokens: 64,
        });

        assert.equal(r.object, 'response');
        assert.equal(r.status, 'completed');
        assert.match(r.output_text, /Hi there/);
        assert.equal(r.output[0].type, 'message');
        assert.ok(r.usage.input_tokens > 0);
        assert.equal(r.usage.total_tokens,
                     r.usage.input_tokens + r.usage.output_tokens);
    });

    test(`responses.stream translated: ${model}`, async () => {
        const stream = openai.responses.stream({
            model,
            input: 'Hi there',
        });

        const types = [];
        let text = '';

        for await (const e of stream) {
            types.push(e.type);

            if (e.type === 'response.output_text.delta') {
                text += e.delta;
            }
        }

        const r = await stream.finalResponse();

        assert.equal(types[0], 'response.created');
        assert.equal(types[types.length - 1], 'response.completed');
        assert.ok(types.includes('response.output_item.added'));
        assert.ok(types.includes('response.output_item.done'));
        assert.match(text, /Hi there/);
        assert.equal(textOf(r), text);
        assert.ok(r.usage.output_tokens > 0);
    });
}

test('a function call, streamed, and its output sent back', async () => {
    const stream = openai.responses.stream({
        model: 'claude/claude-haiku',
        input: 'Weather in Paris?',
        tools: [weather],
    });

    let args = '';

    stream.on('response.function_call_arguments.delta',
              (e) => { args += e.delta; });

    const r = await stream.finalResponse();
    const call = r.output.find((o) => o.type === 'function_call');

    assert.ok(call, 'a function_call item');
    assert.equal(call.name, 'weather');
    assert.equal(call.arguments, args);
    assert.equal(typeof JSON.parse(call.arguments), 'object');

    const next = await openai.responses.create({
        model: 'claude/claude-haiku',
        input: [
            { role: 'user', content: 'Weather in Paris?' },
            { type: 'function_call', call_id: call.call_id,
              name: call.name, arguments: call.arguments },
            { type: 'function_call_output', call_id: call.call_id,
              output: 'sunny' },
        ],
        tools: [weather],
    });

    assert.equal(next.output_text, 'The tool said: sunny');
});

test('previous_response_id on a translated route: a 400 naming it',
     async () => {
    await assert.rejects(
        openai.responses.create({
            model: 'claude/claude-haiku',
            input: 'Hi',
            previous_response_id: 'resp_123',
        }),
        (err) => {
            assert.equal(err.status, 400);
            assert.equal(err.param, 'previous_response_id');
            assert.equal(err.code, 'unsupported_parameter');
            return true;
        });
});

test('a provider error in a translated stream: raised by the SDK',
     async () => {
    const stream = openai.responses.stream({
        model: 'claude-err/claude-haiku',
        input: 'Hi there',
    });

    await assert.rejects(
        (async () => { for await (const e of stream) { void e; } })(),
        (err) => {
            assert.ok(err instanceof OpenAI.APIError);
            assert.match(err.message, /Overloaded/);
            return true;
        });
});
