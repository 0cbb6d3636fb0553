/**
 * Continuous batching through the whole stack: 8 concurrent streams on a node with 4 slots run
 * 4 at a time, never more, and each stream carries exactly the answer its request gets alone
 * (greedy, from the engine called in-process). Timing is controlled, not hoped for: 4 long
 * "blocker" streams fill the slots while the 8 requests queue, then the blockers hang up and
 * the 8 start together.
 *
 * A decode step that batches several sequences rounds slightly differently from a step with one
 * (probabilities differ by up to ~2e-4), so a random model's greedy answer could in principle
 * flip at a near-tie under load; on these prompts it does not (no flip in 200 engine rounds of 4
 * concurrent generations). What did make answers differ was a slot sampling another slot's
 * logits (gpu-node/src/engine/reorder-guard.ts); this one run rarely catches that race, the
 * engine test's 20 rounds of it do (5 of 5 runs without the guard).
 */
import type { Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
beforeAll(async () => { [stack, engine] = await Promise.all([startTestStack({ nodeEnv: { BAMBA_CONTEXT_SIZE: '4096' }, gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: '100' } }), startDirectEngine({ contextSize: 4096 })]); });
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

    for (const [index, stream] of streams.entries()) {
      expect(stream.usage.completion_tokens).toBe(48);
      expect(stream.text, `stream ${index}`).toBe(await directGreedy(engine, messagesFor(index), 48));
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
    const [status] = await stack.nodeStatuses();
    expect(status!.maxBusySlots).toBeLessThanOrEqual(4);
  });
});
