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
