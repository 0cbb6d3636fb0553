/**
 * `n` answers to one request, through the official client: choice i is the answer of seed + i,
 * streamed or not, chat and legacy completions; more choices than the node has slots; a refusal
 * and a client that hangs up leave nothing running.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let client: OpenAI;
// Two slots: a request of three choices runs its third when a slot frees.
beforeAll(async () => {
  stack = await startTestStack({ nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' }, gatewayEnv: { BAMBA_SHARED_PREFILL_CHARS: String(SHARED_PREFILL_CHARS) } });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => stack?.stop());

/** Messages this long are evaluated once for all choices (off by default). */
const SHARED_PREFILL_CHARS = 300;
const sampled = { model: MODEL_ID, messages: [{ role: 'user' as const, content: 'tell me something' }], max_tokens: 12, temperature: 1, seed: 11 };
const busySlots = async () => (await stack.nodeStatuses())[0]?.busySlots;
const settled = async () => stack.waitFor('every slot free and the queue empty', async () => ((await busySlots()) === 0 && (await stack.queueDepth()) === 0 ? true : undefined));

describe('n choices', () => {
  it('answers n choices, choice i the answer of seed + i; usage counts the prompt once and every completion token', async () => {
    const answer = await client.chat.completions.create({ ...sampled, n: 3 });
    const singles = await Promise.all([0, 1, 2].map((index) => client.chat.completions.create({ ...sampled, seed: sampled.seed + index })));
    expect(answer.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(answer.choices.map((choice) => choice.message)).toEqual(singles.map((single) => single.choices[0]!.message));
    expect(answer.choices.map((choice) => choice.finish_reason)).toEqual(singles.map((single) => single.choices[0]!.finish_reason));
    // Seeds that differ sample differently (the test's seed was checked to give three answers).
    expect(new Set(answer.choices.map((choice) => choice.message.content)).size).toBe(3);
    expect(answer.usage).toMatchObject({
      prompt_tokens: singles[0]!.usage!.prompt_tokens,
      completion_tokens: singles.reduce((sum, single) => sum + single.usage!.completion_tokens, 0),
      total_tokens: singles[0]!.usage!.prompt_tokens + singles.reduce((sum, single) => sum + single.usage!.completion_tokens, 0),
    });
    // One request id for all (each choice's job has its own, derived from it).
    expect(answer.id).toMatch(/^chatcmpl-/);
    await settled();
  });

  it('streams every choice by its index, each begun with the role and ended once, then one usage chunk, equal to the answer in one body', async () => {
    const whole = await client.chat.completions.create({ ...sampled, n: 3, seed: 5 });
    const stream = await client.chat.completions.create({ ...sampled, n: 3, seed: 5, stream: true, stream_options: { include_usage: true } });
    const texts = ['', '', ''];
    const roles: Array<string | undefined> = [];
    const finishes: Array<[number, string]> = [];
    const usages = [];
    for await (const chunk of stream) {
      if (chunk.usage) usages.push(chunk.usage);
      for (const choice of chunk.choices) {
        if (texts[choice.index] === '' && roles[choice.index] === undefined) roles[choice.index] = choice.delta.role;
        texts[choice.index] += choice.delta.content ?? '';
        if (choice.finish_reason) finishes.push([choice.index, choice.finish_reason]);
      }
    }
    expect(texts).toEqual(whole.choices.map((choice) => choice.message.content));
    expect(roles).toEqual(['assistant', 'assistant', 'assistant']);
    expect(finishes.sort()).toEqual(whole.choices.map((choice) => [choice.index, choice.finish_reason]));
    expect(usages).toEqual([whole.usage]);
    await settled();
  });

  it('answers legacy completions with n choices, each with its own log probabilities and text offsets, streamed or not', async () => {
    const body = { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 8, temperature: 1, seed: 3, n: 2, logprobs: 1 };
    const whole = await client.completions.create(body);
    expect(whole.choices.map((choice) => choice.index)).toEqual([0, 1]);
    for (const choice of whole.choices) {
      expect(choice.logprobs!.tokens!.join('')).toBe(choice.text);
      expect(choice.logprobs!.text_offset![0]).toBe(0);
    }
    const streamed = await client.completions.create({ ...body, stream: true });
    const tokens: string[][] = [[], []];
    const offsets: number[][] = [[], []];
    for await (const chunk of streamed) {
      for (const choice of chunk.choices) {
        tokens[choice.index]!.push(...(choice.logprobs?.tokens ?? []));
        offsets[choice.index]!.push(...(choice.logprobs?.text_offset ?? []));
      }
    }
    expect(tokens).toEqual(whole.choices.map((choice) => choice.logprobs!.tokens));
    expect(offsets).toEqual(whole.choices.map((choice) => choice.logprobs!.text_offset));
    await settled();
  });

  it('answers several prompts, n each: choice p·n + j is the answer of prompt p with seed + j; usage counts each prompt once; streamed alike', async () => {
    const prompts = ['Once upon a time', 'The weather today is', 'A short list:'];
    const body = { model: MODEL_ID, prompt: prompts, max_tokens: 6, temperature: 1, seed: 21, n: 2, echo: true };
    const whole = await client.completions.create(body);
    const singles = await Promise.all(prompts.flatMap((prompt) => [0, 1].map((offset) => client.completions.create({ ...body, prompt, n: 1, seed: body.seed + offset }))));
    expect(whole.choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(whole.choices.map((choice) => choice.text)).toEqual(singles.map((single) => single.choices[0]!.text));
    // Each choice echoes its own prompt.
    whole.choices.forEach((choice, index) => expect(choice.text.startsWith(prompts[Math.floor(index / 2)]!)).toBe(true));
    const promptTokens = [0, 2, 4].reduce((sum, index) => sum + singles[index]!.usage!.prompt_tokens, 0);
    const completionTokens = singles.reduce((sum, single) => sum + single.usage!.completion_tokens, 0);
    expect(whole.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens });
    const texts = Array.from({ length: 6 }, () => '');
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) texts[choice.index] += choice.text;
    }
    expect(texts).toEqual(whole.choices.map((choice) => choice.text));
    expect(usage).toEqual(whole.usage);
    await settled();
  });

  it('refuses a too-long prompt among several as a plain 400 naming it, streamed or not, with no choice left running', async () => {
    const body = { model: MODEL_ID, prompt: ['short', 'y'.repeat(5000), 'also short'], max_tokens: 4, n: 2 };
    for (const stream of [false, true]) {
      const response = await postJson(`${stack.url}/v1/completions`, { ...body, stream });
      expect(response.status).toBe(400);
      expect(response.json.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'prompt[1]' });
      expect(response.json.error.message).toMatch(/^prompt\[1\]: /);
      await settled();
    }
    // An explicit max_tokens the prompt leaves no room for: the refusal speaks of the prompt, as a
    // legacy completion calls it (the engine's own words are a chat's).
    const noRoom = await postJson(`${stack.url}/v1/completions`, { model: MODEL_ID, prompt: 'y'.repeat(3800), max_tokens: 500 });
    expect(noRoom.status).toBe(400);
    expect(noRoom.json.error).toMatchObject({ code: 'context_length_exceeded', param: 'prompt', message: expect.stringMatching(/in the prompt, 500 in the completion\)\. Please reduce the length of the prompt/) });
    await settled();
  });

  it('calls tools in every choice, streamed by index as in one body', async () => {
    const time = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 6 } }, required: ['zone'], additionalProperties: false } } };
    const body = { ...sampled, messages: [{ role: 'user' as const, content: 'What time is it in Paris?' }], tools: [time], tool_choice: 'required' as const, parallel_tool_calls: false, max_tokens: 200, temperature: 0, n: 2 };
    const whole = await client.chat.completions.create(body);
    expect(whole.choices.map((choice) => [choice.index, choice.finish_reason, choice.message.tool_calls?.length])).toEqual([[0, 'tool_calls', 1], [1, 'tool_calls', 1]]);
    const calls: string[] = ['', ''];
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      for (const choice of chunk.choices) {
        for (const call of choice.delta.tool_calls ?? []) calls[choice.index] += `${call.function?.name}(${call.function?.arguments})`;
      }
    }
    expect(calls).toEqual(whole.choices.map((choice) => choice.message.tool_calls!.map((call) => (call.type === 'function' ? `${call.function.name}(${call.function.arguments})` : '')).join('')));
    await settled();
  });

  it('evaluates long messages once for all choices: each resumes from that state, answering as it does without', async () => {
    const long = { ...sampled, messages: [{ role: 'user' as const, content: `${'Be brief. '.repeat(40)}Now tell me something.` }], seed: 21 };
    // Each alone first: nothing saved for these messages yet, so each evaluates them (a replay).
    const singles = [];
    for (const index of [0, 1, 2]) {
      const { data, response } = await client.chat.completions.create({ ...long, seed: long.seed + index }).withResponse();
      expect(response.headers.get('x-bamba-resume')).toBe('replay');
      singles.push(data);
    }
    const { data: answer, response } = await client.chat.completions.create({ ...long, n: 3 }).withResponse();
    expect(answer.choices.map((choice) => choice.message)).toEqual(singles.map((single) => single.choices[0]!.message));
    // No choice replayed: the messages were evaluated by one prefill, every choice found its state.
    expect(response.headers.get('x-bamba-resume')!.split(', ').filter((path) => path === 'replay')).toEqual([]);
    expect(answer.usage!.prompt_tokens).toBe(singles[0]!.usage!.prompt_tokens);
    expect(answer.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(SHARED_PREFILL_CHARS / 2);
    expect((await stack.streamKeys()).filter((key) => key.endsWith(`${answer.id}-prefill`))).toHaveLength(1);
    // A request its answers could never fit is refused before anything is evaluated, the prefill included.
    const refused = await postJson(`${stack.url}/v1/chat/completions`, { ...long, n: 2, max_tokens: 4000 });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'context_length_exceeded', message: expect.stringContaining('4000 in the completion') });
    const prefill = await stack.streamEvents(`${refused.headers.get('x-request-id')}-prefill`);
    expect(prefill.map((event) => event.type)).toEqual(['generation-error']);
    // Below the threshold, no prefill: the choices evaluate the messages themselves.
    const short = await client.chat.completions.create({ ...sampled, n: 2, seed: 99 }).withResponse();
    expect(short.response.headers.get('x-bamba-resume')).toBe('replay, replay');
    await settled();
  });

  it('gives the same answer n times when greedy', async () => {
    const answer = await client.chat.completions.create({ ...sampled, temperature: 0, n: 2 });
    expect(answer.choices[0]!.message.content).toBe(answer.choices[1]!.message.content);
    await settled();
  });

  it('a refusal found on the gpu-node is the request\'s plain 400, with no choice left running', async () => {
    const tooLong = { ...sampled, n: 3, messages: [{ role: 'user', content: 'y'.repeat(5000) }] };
    for (const stream of [false, true]) {
      const response = await postJson(`${stack.url}/v1/chat/completions`, { ...tooLong, stream });
      expect(response.status).toBe(400);
      expect(response.json.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
      await settled();
    }
  });

  it('streams before a choice that waits for a slot started; a client that hangs up stops every choice, the one still queued included', async () => {
    const response = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...sampled, messages: [{ role: 'user', content: 'talk for a long time' }], max_tokens: 4000, n: 3, stream: true }),
    });
    // Two slots: one choice at least is still queued when the answer begins (which, depends on the queue's order).
    const paths = response.headers.get('x-bamba-resume')!.split(', ');
    expect(paths).toHaveLength(3);
    expect(paths.filter((path) => path === 'queued').length).toBeGreaterThanOrEqual(1);
    expect(paths.filter((path) => path !== 'queued').length).toBeGreaterThanOrEqual(1);
    const firstEvents = await readSse(response, 3); // then hang up
    const requestId = JSON.parse(firstEvents[0]!).id as string;
    await settled();
    let started = 0;
    for (const id of [requestId, `${requestId}-1`, `${requestId}-2`]) {
      const events = await stack.streamEvents(id);
      expect(events.some((event) => event.type === 'generation-end')).toBe(false);
      if (events.some((event) => event.type === 'generation-start')) started += 1;
    }
    // Two ran; the third waited for a slot they held for 4000 tokens: it was taken back from the
    // queue (or, when a slot its siblings' cancel freed took it first, stopped at once).
    expect(started).toBeGreaterThanOrEqual(2);
    const next = await client.chat.completions.create({ ...sampled, n: 2, max_tokens: 3 });
    expect(next.usage!.completion_tokens).toBe(6);
  });
});
