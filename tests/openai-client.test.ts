/**
 * The official `openai` client against a running stack: chat and completions, streaming and
 * not; greedy output equals the engine's own output for the same tokens.
 */
import OpenAI from 'openai';
import type { Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
let client: OpenAI;

beforeAll(async () => {
  // A keep-alive comment after every millisecond of silence: every stream below carries them
  // between its events, and the official client must read past them.
  [stack, engine] = await Promise.all([startTestStack({ gatewayEnv: { BAMBA_SSE_KEEPALIVE_MS: '1' } }), startDirectEngine()]);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused-without-keys', maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Name three hybrid models.' },
];

describe('openai client against the stack', () => {
  it('lists the served model', async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual([MODEL_ID]);
    expect(await client.models.retrieve(MODEL_ID)).toEqual(models.data[0]);
    // Every answer carries a request id the client exposes.
    expect((await client.models.retrieve(MODEL_ID).withResponse()).request_id).toMatch(/^req_[0-9a-f]{32}$/);
    await expect(client.models.retrieve('no-such-model')).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('chat, non-streaming: greedy text equals the engine called directly', async () => {
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 40, temperature: 0 });
    const expected = await directGreedy(engine, messages, 40);
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]!.message).toMatchObject({ role: 'assistant', content: expected });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage).toMatchObject({ prompt_tokens: engine.tokenizeChat(messages).length, completion_tokens: 40, total_tokens: engine.tokenizeChat(messages).length + 40 });
    // The answering node's model fingerprint, shortened as OpenAI's look.
    const [node] = await stack.nodeStatuses();
    expect(completion.system_fingerprint).toBe(`fp_${node!.models[0]!.fingerprint.slice(0, 10)}`);
  });

  it('chat, streaming: the deltas add up to the same text, then usage', async () => {
    const stream = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finishReason: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      expect(chunk.usage).toBeNull(); // OpenAI's chunks before the usage chunk say usage: null
      expect(chunk.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
      text += choice.delta.content ?? '';
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    expect(text).toBe(await directGreedy(engine, messages, 40));
    expect(chunks).toBeGreaterThan(3);
    expect(finishReason).toBe('length');
    expect(usage?.completion_tokens).toBe(40);
  });

  it('a stream\'s keep-alive comments are skipped by the client: the same text as read raw', async () => {
    // A long prompt: a silence of some milliseconds while it is evaluated.
    const long = [{ role: 'user' as const, content: 'word '.repeat(140) }];
    const raw = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL_ID, messages: long, max_tokens: 20, temperature: 0, stream: true }),
    });
    const rawText = await raw.text();
    expect(rawText).toContain(': keep-alive\n\n');
    const rawContent = rawText.split('\n\n').filter((block) => block.startsWith('data: {')).map((block) => JSON.parse(block.slice(6)).choices[0]?.delta?.content ?? '').join('');
    let text = '';
    for await (const chunk of await client.chat.completions.create({ model: MODEL_ID, messages: long, max_tokens: 20, temperature: 0, stream: true })) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(rawContent);
    expect(text).toBe(await directGreedy(engine, long, 20));
  });

  it('completions, non-streaming and streaming, equal the engine on the raw prompt', async () => {
    const prompt = 'Once upon a time';
    const expected = await directGreedy(engine, prompt, 30);
    const completion = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 30, temperature: 0 });
    expect(completion.object).toBe('text_completion');
    expect(completion.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(completion.choices[0]!.text).toBe(expected);
    const stream = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 30, temperature: 0, stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(expected);
    // echo: each choice's text starts with the prompt (streamed: in its first chunk).
    const echoed = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 30, temperature: 0, echo: true, n: 2 });
    expect(echoed.choices.map((choice) => choice.text)).toEqual([prompt + expected, prompt + expected]);
    expect(echoed.usage!.prompt_tokens).toBe(completion.usage!.prompt_tokens);
    const texts = ['', ''];
    let firstChunk: string | undefined;
    for await (const chunk of await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 30, temperature: 0, echo: true, n: 2, stream: true })) {
      for (const choice of chunk.choices) {
        if (choice.index === 0 && firstChunk === undefined) firstChunk = choice.text;
        texts[choice.index] += choice.text;
      }
    }
    expect(texts).toEqual([prompt + expected, prompt + expected]);
    expect(firstChunk!.startsWith(prompt)).toBe(true);
  });

  it('applies stop strings like the engine does', async () => {
    const full = await directGreedy(engine, messages, 40);
    const stop = full.slice(12, 14);
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 40, temperature: 0, stop: [stop] });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.choices[0]!.message.content).toBe(full.slice(0, full.indexOf(stop)));
  });

  it('applies presence_penalty, frequency_penalty and logit_bias like the engine does', async () => {
    const plain = await directGreedy(engine, messages, 40);
    const banned = engine.tokenize(plain.slice(0, 1))[0]!;
    const more = { presencePenalty: 1.5, frequencyPenalty: 0.5, logitBias: { [banned]: -100 } };
    const expected = await directGreedy(engine, messages, 40, [], more);
    // Each setting changes this answer, so a setting lost on the way would show.
    expect(expected).not.toBe(plain);
    expect(expected).not.toBe(await directGreedy(engine, messages, 40, [], { logitBias: more.logitBias }));
    expect(expected).not.toBe(await directGreedy(engine, messages, 40, [], { ...more, presencePenalty: 0 }));
    expect(expected).not.toBe(await directGreedy(engine, messages, 40, [], { ...more, frequencyPenalty: 0 }));
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 40, temperature: 0, presence_penalty: 1.5, frequency_penalty: 0.5, logit_bias: { [banned]: -100 } });
    expect(completion.choices[0]!.message.content).toBe(expected);
  });

  it('samples reproducibly with a seed', async () => {
    const request = { model: MODEL_ID, messages, max_tokens: 24, temperature: 1, seed: 1234 };
    const first = await client.chat.completions.create(request);
    const second = await client.chat.completions.create(request);
    expect(second.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
  });
});
