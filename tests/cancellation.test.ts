/**
 * A client that hangs up cancels its work: a running generation stops and frees its slot, a
 * queued job of a gone client never starts, and the next request is served at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => { stack = await startTestStack({ nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' } }); });
afterAll(async () => stack?.stop());

const request = (content: string, stream: boolean, maxTokens = 4000) => ({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: maxTokens, temperature: 0, stream });
const open = (body: unknown, signal?: AbortSignal) =>
  fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
const busySlots = async () => (await stack.nodeStatuses())[0]?.busySlots;

describe('client disconnects', () => {
  it('a disconnect mid-stream stops the generation and frees the slot; the next request starts at once', async () => {
    const response = await open(request('talk for a long time', true));
    const firstEvents = await readSse(response, 3); // then hang up
    const requestId = JSON.parse(firstEvents[0]!).id as string;
    await stack.waitFor('the slot to be freed', async () => ((await busySlots()) === 0 ? true : undefined));
    const events = await stack.streamEvents(requestId);
    const generated = events.reduce((sum, event) => sum + (event.type === 'token-delta' ? event.tokens : 0), 0);
    expect(events.some((event) => event.type === 'generation-end')).toBe(false);
    expect(generated).toBeLessThan(4000);
    const next = await postJson(`${stack.url}/v1/chat/completions`, request('next', false, 5));
    expect(next.status).toBe(200);
    expect(next.json.usage.completion_tokens).toBe(5);
  });

  it('a request whose client hangs up is counted as 499 (client closed), not as a server error nor as the 200 a stream began with', async () => {
    const requestsOf = async (status: string) => {
      const metrics = await (await fetch(`${stack.url}/metrics`)).text();
      const line = metrics.split('\n').find((entry) => entry.startsWith('bamba_requests_total{') && entry.includes('route="/v1/chat/completions"') && entry.includes(`status="${status}"`));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const [closedBefore, failedBefore] = [await requestsOf('499'), await requestsOf('500')];
    const controller = new AbortController();
    const pending = open(request('hang up on this', false), controller.signal).catch((error: Error) => error);
    await stack.waitFor('the request to run', async () => ((await busySlots()) === 1 ? true : undefined));
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await stack.waitFor('the slot to be freed', async () => ((await busySlots()) === 0 ? true : undefined));
    await stack.waitFor('the request to be counted', async () => ((await requestsOf('499')) === closedBefore + 1 ? true : undefined));
    expect(await requestsOf('500')).toBe(failedBefore);

    // A stream went out with a 200 header; it is counted when it ends, with the 499 its log line says.
    const [closedNow, okNow] = [await requestsOf('499'), await requestsOf('200')];
    const stream = await open(request('hang up on this stream', true));
    const reader = stream.body!.getReader();
    await reader.read();
    await reader.cancel();
    await stack.waitFor('the slot to be freed', async () => ((await busySlots()) === 0 ? true : undefined));
    await stack.waitFor('the stream to be counted', async () => ((await requestsOf('499')) === closedNow + 1 ? true : undefined));
    expect(await requestsOf('200')).toBe(okNow);
  });

  it('a queued job whose client left is dropped before it starts', async () => {
    const streamsBefore = (await stack.streamKeys()).length;
    const blockers = await Promise.all([open(request('blocker one', true)), open(request('blocker two', true))]);
    const readers = blockers.map((response) => response.body!.getReader());
    await Promise.all(readers.map((reader) => reader.read()));
    await stack.waitFor('both slots busy', async () => ((await busySlots()) === 2 ? true : undefined));
    const controller = new AbortController();
    const queued = open(request('never runs', false), controller.signal).catch((error: Error) => error);
    await stack.waitFor('the job to be queued', async () => ((await stack.queueDepth()) === 1 ? true : undefined));
    controller.abort();
    expect(await queued).toBeInstanceOf(Error);
    await stack.waitFor('the queue to drop it', async () => ((await stack.queueDepth()) === 0 ? true : undefined));
    for (const reader of readers) await reader.cancel();
    await stack.waitFor(`both slots free (node: ${JSON.stringify(await stack.nodeStatuses())})`, async () => ((await busySlots()) === 0 ? true : undefined));
    // Only the two blockers ever started (each started job writes a stream); the dropped one did not.
    expect((await stack.streamKeys()).length).toBe(streamsBefore + 2);
  });
});
