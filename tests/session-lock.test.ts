/**
 * A session's turn lock and its expiry, with real processes: a turn keeps its session alive
 * while it runs (even past the session's idle TTL), and a turn that ends for good without a
 * commit gives the session back at once, also when the gateway that started it is gone (the
 * gpu-node releases it; before, it held every turn off for the request deadline + 30 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSse, type TestStack, startTestStack } from './support/stack.js';

const SESSION_TTL_SECONDS = 30;
let stack: TestStack;
beforeAll(async () => {
  // One slot, so a job can be made to wait in the queue; a small context, so a session can outgrow it.
  stack = await startTestStack({ gpuNodes: 1, gatewayProcess: true, nodeEnv: { BAMBA_SLOTS: '1', BAMBA_CONTEXT_SIZE: '2048' }, gatewayEnv: { BAMBA_SESSION_TTL_SECONDS: String(SESSION_TTL_SECONDS) } });
});
afterAll(async () => stack?.stop());

const newSession = async (system: string) => {
  const response = await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID, system });
  expect(response.status).toBe(201);
  return response.json.id as string;
};
const turn = (sessionId: string, content: string, extra: object = {}, signal?: AbortSignal) => fetch(`${stack.url}/v1/chat/completions`, {
  method: 'POST',
  ...(signal ? { signal } : {}),
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: MODEL_ID, session_id: sessionId, messages: [{ role: 'user', content }], max_tokens: 8, temperature: 0, ...extra }),
});
const lockOf = (sessionId: string) => `${stack.keys.session(sessionId)}:lock`;

describe('a session turn lock', () => {
  it('keeps the session and its transcript alive while the turn runs, past the idle TTL', async () => {
    const sessionId = await newSession('short');
    const client = new AbortController();
    const streaming = turn(sessionId, 'go on', { max_tokens: 1500, stream: true }, client.signal);
    // The turn holds its lock from before it is queued until it commits (which sets the TTL anew).
    const requestId = await stack.waitFor('the turn to take the session lock', async () => (await stack.redis.get(lockOf(sessionId))) ?? undefined);
    const lifetimes = await Promise.all([stack.keys.session(sessionId), stack.keys.sessionTranscript(sessionId)].map((key) => stack.redis.pttl(key)));
    expect(await stack.redis.get(lockOf(sessionId))).toBe(requestId); // still this turn's: nothing committed in between
    for (const left of lifetimes) expect(left).toBeGreaterThan(SESSION_TTL_SECONDS * 1000);
    expect((await streaming).status).toBe(200);
    client.abort();
  });

  it('is given back by the gpu-node when the turn is refused after its gateway died', async () => {
    // The session's history alone fills most of the context; the turn's own message passes the
    // gateway's checks, and the gpu-node refuses it once it sees the whole conversation.
    const sessionId = await newSession('a'.repeat(1950));
    // The only slot is busy, so the turn waits in the queue while its gateway is killed.
    const busy = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'keep the slot busy' }], max_tokens: 1900, temperature: 0, stream: true }) });
    await readSse(busy, 2);
    void turn(sessionId, 'b'.repeat(150)).catch(() => { /* its gateway dies */ });
    const requestId = await stack.waitFor('the turn to take the session lock', async () => (await stack.redis.get(lockOf(sessionId))) ?? undefined);
    // Queued (in the region's queue, or the node's own for a session resident there), not started.
    expect(await stack.streamEvents(requestId)).toEqual([]);
    process.kill(stack.gatewayPid!, 'SIGKILL');

    const events = await stack.waitFor('the gpu-node to refuse the turn', async () => {
      const found = await stack.streamEvents(requestId);
      return found.some((event) => event.type === 'generation-error') ? found : undefined;
    }, 60_000);
    expect(events.find((event) => event.type === 'generation-error')).toMatchObject({ error: { code: 'context_length_exceeded', message: expect.stringContaining('fork it with fewer') } });
    // Given back with the refusal (just after the queue marked the job failed), not when the lock's
    // TTL (two and a half minutes) runs out: looked for within 10 s.
    const failed = `${stack.keys.bullPrefix}:${stack.keys.generationQueue}:failed`;
    await stack.waitFor('the job to be failed', async () => ((await stack.redis.zscore(failed, requestId)) !== null ? true : undefined));
    await stack.waitFor('the gpu-node to give the lock back', async () => ((await stack.redis.exists(lockOf(sessionId))) === 0 ? true : undefined), 10_000);
    expect(await stack.redis.hget(stack.keys.session(sessionId), 'version')).toBe('0');
  });
});
