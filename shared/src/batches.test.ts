/** A batch line is one job with one answer: several prompts or choices are refused, naming the field. */
import { describe, expect, it } from 'vitest';
import { checkBatchLine } from './batches.js';

const defaults = { maxTokens: 16, maxMessages: 10, randomSeed: () => 7 };
const check = (body: object) => checkBatchLine(JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/completions', body }), 1, '/v1/completions', new Set(), defaults, 1 << 20);

describe('checkBatchLine on legacy completions', () => {
  it('takes one prompt, as a string or as an array of one', () => {
    for (const prompt of ['hello', ['hello']]) {
      const item = check({ model: 'm', prompt });
      expect('request' in item && item.request.input).toEqual({ kind: 'completion', prompt: 'hello' });
    }
  });

  it('refuses several prompts (one line per prompt) and n > 1 (one line per answer)', () => {
    expect(check({ model: 'm', prompt: ['a', 'b'] })).toMatchObject({ error: { code: 'invalid_request', param: 'body.prompt', line: 1 }, customId: 'a' });
    expect(check({ model: 'm', prompt: 'a', n: 2 })).toMatchObject({ error: { code: 'invalid_request', param: 'body.n' } });
  });
});

describe('checkBatchLine on /v1/responses', () => {
  const line = (body: object) => checkBatchLine(JSON.stringify({ custom_id: 'r', method: 'POST', url: '/v1/responses', body }), 2, '/v1/responses', new Set(), defaults, 1 << 20);

  it('runs the response as a chat of its instructions and input, keeping the response request for its output', () => {
    const item = line({ model: 'm', instructions: 'Be brief.', input: 'Hi' });
    expect('request' in item && item.request.input).toEqual({ kind: 'chat', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] });
    expect('response' in item && item.response?.instructions).toBe('Be brief.');
  });

  it('refuses what needs stored state, naming it', () => {
    expect(line({ model: 'm', input: 'Hi', store: true })).toMatchObject({ error: { param: 'body.store', message: expect.stringMatching(/^store: true is not supported in a batch/) } });
    expect(line({ model: 'm', input: 'Hi', conversation: 'conv_x' })).toMatchObject({ error: { param: 'body.conversation' } });
    expect(line({ model: 'm', input: 'Hi', store: false })).toHaveProperty('request');
  });
});
