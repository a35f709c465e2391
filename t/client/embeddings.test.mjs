// The official openai npm client's embeddings.create against a running
// gateway (scripts/client-test.sh starts it and sets GATEWAY_URL). The
// SDK asks for base64 unless told otherwise, and decodes it into floats:
// the vectors must come out the same as the mock's floats, for an
// OpenAI-format target (base64 passed through) and for Gemini and
// Bedrock (base64 made by the gateway).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({
    baseURL: `${process.env.GATEWAY_URL}/v1`,
    apiKey: 'sk-client-key-not-for-providers',
    maxRetries: 0,
});

// the mock's vector (conf.examples/mock/openai.js, vector())
function vector(input, dims = 8) {
    let h = 0;
    const v = [];

    for (let i = 0; i < input.length; i++) {
        h = (h * 31 + input.charCodeAt(i)) % 65521;
    }

    for (let i = 0; i < dims; i++) {
        v.push(((h + 37 * i) % 512 - 256) / 256);
    }

    return v;
}

for (const model of ['mock/text-embedding-3-small', 'gemini/embedding-001',
                     'bedrock/cohere.embed-english-v3'])
{
    test(`${model}: the SDK's default base64 decodes to the vectors`,
         async () => {
        const r = await client.embeddings.create({
            model,
            input: ['hello', 'world ✓'],
        });

        assert.equal(r.object, 'list');
        assert.equal(r.data.length, 2);
        assert.equal(r.data[0].index, 0);
        assert.deepEqual(r.data[0].embedding, vector('hello'));
        assert.deepEqual(r.data[1].embedding, vector('world ✓'));
        assert.ok(r.usage.prompt_tokens > 0);
    });

    test(`${model}: floats asked for, floats given`, async () => {
        const r = await client.embeddings.create({
            model,
            input: 'one text',
            encoding_format: 'float',
        });

        assert.deepEqual(r.data[0].embedding, vector('one text'));
    });
}

test('dimensions reach the provider', async () => {
    const r = await client.embeddings.create({
        model: 'gemini/embedding-001',
        input: 'short',
        dimensions: 3,
        encoding_format: 'float',
    });

    assert.deepEqual(r.data[0].embedding, vector('short', 3));
});

test('Titan: one text, its token count', async () => {
    const r = await client.embeddings.create({
        model: 'bedrock/amazon.titan-embed-text-v2:0',
        input: 'titan',
    });

    assert.deepEqual(r.data[0].embedding, vector('titan'));
    assert.equal(r.usage.prompt_tokens, 7);
});

test('bad input is an SDK BadRequestError naming the parameter', async () => {
    await assert.rejects(
        client.embeddings.create({ model: 'mock/e', input: [] }),
        (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
});
