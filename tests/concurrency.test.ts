/**
 * Continuous batching through the whole stack: 8 concurrent streams on a node with 4 slots
 * each equal their sequential twins, and the node never runs more than its slots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => { stack = await startTestStack(); });
afterAll(async () => stack?.stop());

const requestFor = (index: number, stream: boolean) => ({
  model: MODEL_ID,
  messages: [{ role: 'user', content: `Question number ${index}: what is state?` }],
  max_tokens: 48,
  temperature: 0,
  stream,
});

async function streamedText(index: number): Promise<string> {
  const response = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(requestFor(index, true)) });
  expect(response.status).toBe(200);
  const events = await readSse(response);
  expect(events.at(-1)).toBe('[DONE]');
  return events.slice(0, -1).map((event) => JSON.parse(event).choices[0]?.delta?.content ?? '').join('');
}

describe('concurrent streams', () => {
  it('8 concurrent streams each equal their sequential twin; slots never exceed 4', async () => {
    const sequential: string[] = [];
    for (let index = 0; index < 8; index++) sequential.push((await postJson(`${stack.url}/v1/chat/completions`, requestFor(index, false))).json.choices[0].message.content);
    const concurrent = await Promise.all(Array.from({ length: 8 }, (_, index) => streamedText(index)));
    expect(concurrent).toEqual(sequential);
    expect(new Set(sequential).size).toBeGreaterThan(1); // different prompts, different answers
    const [status] = await stack.nodeStatuses();
    // Requests ran side by side (how many overlap depends on arrival timing), never beyond the slots.
    expect(status!.maxBusySlots).toBeGreaterThan(1);
    expect(status!.maxBusySlots).toBeLessThanOrEqual(4);
  });
});
