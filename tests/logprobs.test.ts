/**
 * Log probabilities (`logprobs`, `top_logprobs`; the legacy completions' `logprobs: n`) through
 * the official client against a running stack: one entry per generated token, equal to the
 * engine's own, streamed chunk by chunk as they are generated, in batch results, and on the
 * Responses API's output text (`include`).
 */
import OpenAI from 'openai';
import { GREEDY, type Engine } from '@bamba/gpu-node';
import type { TokenLogprob } from '@bamba/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBatchLine, runChatBatch } from './support/chat-batch.js';
import { startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
let client: OpenAI;

beforeAll(async () => {
  [stack, engine] = await Promise.all([startTestStack({ workers: 1 }), startDirectEngine()]);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused-without-keys', maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

const messages = [{ role: 'user' as const, content: 'Say something about state space models.' }];
const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

/** The engine's own entries for a greedy answer, called in-process. */
async function directEntries(prompt: number[], maxTokens: number, alternatives: number): Promise<TokenLogprob[]> {
  const slot = engine.acquireSlot()!;
  try {
    const entries: TokenLogprob[] = [];
    for await (const generated of engine.generate(slot, prompt, { ...GREEDY, maxTokens, logprobs: alternatives })) if (generated.logprob) entries.push(generated.logprob);
    return entries;
  } finally {
    await engine.releaseSlot(slot);
  }
}

function expectSameEntries(actual: ReadonlyArray<{ token: string; logprob: number; top_logprobs: ReadonlyArray<{ token: string; logprob: number }> }>, expected: TokenLogprob[]) {
  expect(actual.map((entry) => entry.token)).toEqual(expected.map((entry) => entry.token));
  actual.forEach((entry, index) => {
    expect(entry.logprob).toBeCloseTo(expected[index]!.logprob, 4);
    expect(entry.top_logprobs.map((alternative) => alternative.token)).toEqual(expected[index]!.top_logprobs.map((alternative) => alternative.token));
  });
}

describe('logprobs', () => {
  it('chat: one entry per token, the most likely alternatives first, equal to the engine’s own', async () => {
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 3 });
    const choice = completion.choices[0]!;
    const content = choice.logprobs!.content!;
    expect(content).toHaveLength(completion.usage!.completion_tokens);
    expect(content.map((entry) => entry.token).join('')).toBe(choice.message.content);
    for (const entry of content) {
      expect(entry.bytes).toEqual(bytesOf(entry.token));
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      const chances = entry.top_logprobs.map((alternative) => alternative.logprob);
      expect(chances).toEqual([...chances].sort((a, b) => b - a));
      expect(chances.reduce((sum, logprob) => sum + Math.exp(logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
      // Greedy: the chosen token is the most likely one.
      expect(entry.top_logprobs[0]).toMatchObject({ token: entry.token, logprob: entry.logprob });
      expect(entry.top_logprobs[0]!.bytes).toEqual(bytesOf(entry.token));
    }
    expectSameEntries(content, await directEntries(engine.tokenizeChat(messages), 24, 3));
    expect(choice.logprobs!.refusal).toBeNull();
    // As many alternatives as asked for, up to 20, most likely first.
    const most = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 20 });
    for (const entry of most.choices[0]!.logprobs!.content!) {
      const chances = entry.top_logprobs.map((alternative) => alternative.logprob);
      expect(chances).toHaveLength(20);
      expect(chances).toEqual([...chances].sort((a, b) => b - a));
    }
  });

  it('chat, streaming: each chunk carries its own tokens’ entries, which add up to the whole answer’s', async () => {
    const whole = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 2 });
    const stream = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 2, stream: true });
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice?.logprobs?.content) continue;
      // A chunk's entries are the tokens of its text (this vocabulary never holds a character back).
      expect(choice.logprobs.content.map((entry) => entry.token).join('')).toBe(choice.delta.content);
      streamed.push(...choice.logprobs.content);
    }
    expect(streamed).toEqual(whole.choices[0]!.logprobs!.content);
  });

  it('chat without logprobs: logprobs is null, as before', async () => {
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4, temperature: 0 });
    expect(completion.choices[0]!.logprobs).toBeNull();
    const zero = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4, temperature: 0, logprobs: true });
    expect(zero.choices[0]!.logprobs!.content!.every((entry) => entry.top_logprobs.length === 0)).toBe(true);
  });

  it('sampled: the entries are of the distribution the token was drawn from (top_k leaves k)', async () => {
    const completion = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 16, temperature: 1, top_k: 4, seed: 3, logprobs: true, top_logprobs: 20 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(16);
    for (const entry of content) {
      expect(entry.top_logprobs.length).toBeLessThanOrEqual(4);
      expect(entry.top_logprobs.map((alternative) => alternative.token)).toContain(entry.token);
      expect(entry.top_logprobs.reduce((sum, alternative) => sum + Math.exp(alternative.logprob), 0)).toBeCloseTo(1, 4);
    }
  });

  it('sampled with min_p: every alternative left is at least min_p times as likely as the most likely one', async () => {
    const body = { model: MODEL_ID, messages, max_tokens: 16, temperature: 1, seed: 3, logprobs: true, top_logprobs: 20 };
    const free = await client.chat.completions.create(body);
    const held = await client.chat.completions.create({ ...body, min_p: 0.5 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const alternatives = (completion: OpenAI.ChatCompletion) => completion.choices[0]!.logprobs!.content!.map((entry) => entry.top_logprobs.map((alternative) => alternative.logprob));
    for (const place of alternatives(held)) {
      expect(place.length).toBeGreaterThanOrEqual(1);
      for (const logprob of place) expect(logprob).toBeGreaterThanOrEqual(place[0]! + Math.log(0.5) - 1e-6);
    }
    // Without it the tiny model's flat distributions leave more (so the check above could fail).
    expect(alternatives(free).some((place) => place.some((logprob) => logprob < place[0]! + Math.log(0.5)))).toBe(true);
    // The Responses API takes the extension too.
    const response = await client.responses.create({ model: MODEL_ID, input: 'Hybrid models', max_output_tokens: 16, temperature: 1, include: ['message.output_text.logprobs'], top_logprobs: 20, min_p: 0.5 } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const places = (response.output[0] as OpenAI.Responses.ResponseOutputMessage).content.flatMap((part) => (part.type === 'output_text' ? part.logprobs ?? [] : [])).map((entry) => entry.top_logprobs.map((alternative) => alternative.logprob));
    expect(places.length).toBe(response.usage!.output_tokens);
    for (const place of places) for (const logprob of place) expect(logprob).toBeGreaterThanOrEqual(place[0]! + Math.log(0.5) - 1e-6);
  });

  it('legacy completions: tokens, token_logprobs, top_logprobs and text_offset, streamed or not', async () => {
    const prompt = 'Hybrid models keep';
    const completion = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 20, temperature: 0, logprobs: 2 });
    const logprobs = completion.choices[0]!.logprobs!;
    expect(logprobs.tokens!.join('')).toBe(completion.choices[0]!.text);
    expect(logprobs.tokens).toHaveLength(completion.usage!.completion_tokens);
    let offset = 0;
    logprobs.tokens!.forEach((token, index) => {
      expect(logprobs.text_offset![index]).toBe(offset);
      offset += token.length;
      const alternatives = logprobs.top_logprobs![index]!;
      expect(Object.keys(alternatives)).toHaveLength(2);
      expect(alternatives[token]).toBe(logprobs.token_logprobs![index]);
    });
    const expected = await directEntries(engine.tokenize(prompt), 20, 2);
    expect(logprobs.tokens).toEqual(expected.map((entry) => entry.token));
    const stream = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 20, temperature: 0, logprobs: 2, stream: true });
    const streamed = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Array<Record<string, number>>, text_offset: [] as number[] };
    for await (const chunk of stream) {
      const part = chunk.choices[0]?.logprobs;
      if (!part) continue;
      streamed.tokens.push(...part.tokens!);
      streamed.token_logprobs.push(...part.token_logprobs!);
      streamed.top_logprobs.push(...part.top_logprobs!);
      streamed.text_offset.push(...part.text_offset!); // each chunk's offsets go on from the last
    }
    expect(streamed).toEqual(logprobs);
  });

  it('a batch line asking for logprobs gets them in its result', async () => {
    const { output, errors } = await runChatBatch(client, stack, [
      chatBatchLine('with', { model: MODEL_ID, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 1 }),
      chatBatchLine('without', { model: MODEL_ID, messages, max_tokens: 8, temperature: 0 }),
    ]);
    expect(errors).toEqual([]);
    const body = (id: string) => output.find((line) => line.custom_id === id).response.body;
    const content = body('with').choices[0].logprobs.content;
    expect(content).toHaveLength(8);
    expect(content.map((entry: { token: string }) => entry.token).join('')).toBe(body('with').choices[0].message.content);
    expect(body('without').choices[0].logprobs).toBeNull();
  });

  it('responses: include message.output_text.logprobs shows them on the output text, each delta its own, the same in a replay of the stored response', async () => {
    const ask = { model: MODEL_ID, input: messages, max_output_tokens: 24, temperature: 0, include: ['message.output_text.logprobs' as const], top_logprobs: 2 };
    const chat = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 2 });
    const response = await client.responses.create(ask);
    expect(response.top_logprobs).toBe(2);
    const part = (response.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText;
    expect(part.text).toBe(chat.choices[0]!.message.content);
    expect(part.logprobs).toEqual(chat.choices[0]!.logprobs!.content);
    expect(part.logprobs).toHaveLength(response.usage!.output_tokens);
    // Retrieved later, the same.
    const stored = await client.responses.retrieve(response.id);
    expect((stored.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0]).toEqual(part);

    const deltasOf = (events: OpenAI.Responses.ResponseStreamEvent[]) => events.filter((event) => event.type === 'response.output_text.delta');
    const live: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of await client.responses.create({ ...ask, stream: true })) live.push(event);
    for (const delta of deltasOf(live)) expect(delta.logprobs.map((entry) => entry.token).join('')).toBe(delta.delta);
    expect(deltasOf(live).flatMap((delta) => delta.logprobs)).toEqual(part.logprobs);
    const done = live.find((event) => event.type === 'response.output_text.done');
    expect(done?.type === 'response.output_text.done' && done.logprobs).toEqual(part.logprobs);
    const completed = live.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect((completed.response.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0]).toEqual(part);
    // A reader of the stored response (a replay of its answer) gets the very same events.
    const replayed: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of await client.responses.retrieve(completed.response.id, { stream: true })) replayed.push(event);
    expect(replayed.filter((event) => event.type.startsWith('response.output_text'))).toEqual(live.filter((event) => event.type.startsWith('response.output_text')));

    // Without the include: none, as before (top_logprobs alone is echoed and shows nothing, as OpenAI's).
    const plain = await client.responses.create({ model: MODEL_ID, input: messages, max_output_tokens: 4, temperature: 0 });
    expect(((plain.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText).logprobs).toEqual([]);
    expect(plain.top_logprobs).toBeNull();
    const alone = await client.responses.create({ model: MODEL_ID, input: messages, max_output_tokens: 4, temperature: 0, top_logprobs: 3 });
    expect(((alone.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText).logprobs).toEqual([]);
    expect(alone.top_logprobs).toBe(3);
  });

  it('refuses what it cannot show, naming the field', async () => {
    await expect(client.chat.completions.create({ model: MODEL_ID, messages, top_logprobs: 2 })).rejects.toMatchObject({ status: 400, param: 'top_logprobs' });
    await expect(client.chat.completions.create({ model: MODEL_ID, messages, logprobs: true, top_logprobs: 21 })).rejects.toMatchObject({ status: 400, param: 'top_logprobs' });
    await expect(client.completions.create({ model: MODEL_ID, prompt: 'x', logprobs: 6 })).rejects.toMatchObject({ status: 400, param: 'logprobs' });
    await expect(client.responses.create({ model: MODEL_ID, input: 'x', include: ['message.output_text.logprobs'], top_logprobs: 21 })).rejects.toMatchObject({ status: 400, param: 'top_logprobs' });
    await expect(client.responses.create({ model: MODEL_ID, input: 'x', include: ['message.output_text.logprobs', 'reasoning.encrypted_content'] })).rejects.toMatchObject({ status: 400, param: 'include[1]', code: 'unsupported_parameter' });
  });
});
