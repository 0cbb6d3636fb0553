/**
 * Continuous batching through the whole stack: 8 concurrent streams on a node with 4 slots run
 * 4 at a time, never more, and each stream carries exactly what the node generated for its own
 * request. Timing is controlled, not hoped for: 4 long "blocker" streams fill the slots while
 * the 8 requests queue, then the blockers hang up and the 8 start together.
 *
 * Why not compare with a sequential run token for token: a decode step that batches several
 * sequences rounds differently from a step with one (measured: probabilities differ by ~5e-5),
 * so a random model's greedy answer can flip at a near-tie under load. Prompts are evaluated
 * alone (the engine's evaluation gate), which removes most of that; tests/openai-client.test.ts
 * and the session suites compare single requests with the engine token for token. Here each
 * stream is checked against the node's own record of its generation: the prefix-cache entry
 * keyed by the hash of its request's messages plus the streamed answer.
 */
import { tokenSequenceHash, type Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
beforeAll(async () => { [stack, engine] = await Promise.all([startTestStack({ nodeEnv: { BAMBA_CONTEXT_SIZE: '4096' }, gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: '100' } }), startDirectEngine()]); });
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

const messagesFor = (index: number) => [{ role: 'user' as const, content: `Question number ${index}: what is state?` }];
const open = (messages: unknown, maxTokens: number, signal?: AbortSignal) => fetch(`${stack.url}/v1/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: MODEL_ID, messages, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  ...(signal ? { signal } : {}),
});

/** Stream entry ids are `<ms>-<seq>`: comparable as (ms, seq) pairs. */
const entryOrder = (id: string) => id.split('-').map(Number) as [number, number];
const before = (left: string, right: string) => { const [a, b] = entryOrder(left); const [c, d] = entryOrder(right); return a < c || (a === c && b < d); };

describe('concurrent streams', () => {
  it('8 streams on 4 slots: 4 run side by side, never more, each stream exactly its own generation', async () => {
    const blockers = await Promise.all(Array.from({ length: 4 }, (_, index) => open([{ role: 'user', content: `blocker ${index}` }], 4000, AbortSignal.timeout(120_000))));
    const blockerReaders = blockers.map((response) => response.body!.getReader());
    await Promise.all(blockerReaders.map((reader) => reader.read())); // all four are generating
    const pending = Array.from({ length: 8 }, (_, index) => open(messagesFor(index), 48));
    await stack.waitFor('8 queued requests', async () => ((await stack.queueDepth()) === 8 ? true : undefined));
    await Promise.all(blockerReaders.map((reader) => reader.cancel())); // the slots free together
    const responses = await Promise.all(pending);
    const streams = await Promise.all(responses.map(async (response) => {
      expect(response.status).toBe(200);
      const events = await readSse(response);
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
      return { id: chunks[0].id as string, text: chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join(''), usage: chunks.at(-1).usage };
    }));

    const [status] = await stack.nodeStatuses();
    const fingerprint = status!.models[0]!.fingerprint;
    for (const [index, stream] of streams.entries()) {
      expect(stream.usage.completion_tokens).toBe(48);
      expect(stream.text).toHaveLength(48); // one printable character per token
      const boundary = engine.tokenizeChat([...messagesFor(index), { role: 'assistant', content: stream.text }], { addGenerationPrompt: false });
      // The node stores it just after the answer ends (stateless answers do not wait for it).
      const entry = stack.keys.prefixEntry('local', fingerprint, tokenSequenceHash(boundary));
      await stack.waitFor(`stream ${index} to be what the node generated for its request`, async () => ((await stack.redis.exists(entry)) === 1 ? true : undefined), 5000);
    }
    expect(new Set(streams.map((stream) => stream.text)).size).toBe(8);

    // Side by side, from the stream entries' own ids (Redis stamps them): how many overlapped.
    const spans = await Promise.all(streams.map(async (stream) => {
      const key = (await stack.streamKeys()).find((candidate) => candidate.endsWith(`:stream:${stream.id}`))!;
      const entries = await stack.redis.xrange(key, '-', '+');
      return { start: entries[0]![0], end: entries.at(-1)![0] };
    }));
    const overlapAt = (point: string) => spans.filter((span) => !before(point, span.start) && before(point, span.end)).length;
    const mostAtOnce = Math.max(...spans.map((span) => overlapAt(span.start)));
    expect(mostAtOnce).toBe(4);
    expect(status!.maxBusySlots).toBeLessThanOrEqual(4);
  });
});
