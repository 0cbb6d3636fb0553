/**
 * Jobs whose gateway died stop instead of generating for nobody: the gateway's stream readers
 * keep presence keys alive in Redis, and a gpu-node stops (or drops before it starts) a job whose
 * reader's presence lapsed. A session turn cut so is not committed and its lock is given back;
 * stored responses (background or not: their answers are read later) run on.
 *
 * Timing is controlled, not hoped for: the tiny model generates thousands of tokens a second, so
 * the gpu-node is paused (SIGSTOP) while the gateway is killed and its presence lapses, and
 * resumed only once its reader check is due; it then sees the readers gone at once.
 */
import { READER_CHECK_MS } from '@bamba/gpu-node';
import type { StreamEvent } from '@bamba/shared';
import { parseGatewayConfig, silentLogger, startGateway } from '@bamba/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, startTestStack, type TestStack } from './support/stack.js';

const MAX_TOKENS = 4000;
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({
    gatewayProcess: true,
    // Four slots, so one more request waits in the queue; a lock long enough to outlast the pause.
    nodeEnv: { BAMBA_SLOTS: '4', BAMBA_CONTEXT_SIZE: '4096', BAMBA_LOCK_DURATION_MS: '30000', BAMBA_STALLED_INTERVAL_MS: '15000' },
    gatewayEnv: { BAMBA_RELAY_PRESENCE_MS: '1000' },
  });
});
afterAll(async () => stack?.stop());

const chat = (body: object) => fetch(`${stack.url}/v1/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: MODEL_ID, max_tokens: MAX_TOKENS, temperature: 0, stream: true, ...body }),
});
const generated = (events: StreamEvent[]) => events.reduce((sum, event) => sum + (event.type === 'token-delta' ? event.tokens : 0), 0);
/** The relay group a request's events go to (from its stream's key). */
async function relayGroupOf(requestId: string): Promise<string> {
  const key = (await stack.streamKeys()).find((candidate) => candidate.endsWith(`:stream:${requestId}`));
  const group = key?.match(/\{r:([^}]+)\}/)?.[1];
  if (!group) throw new Error(`no stream for ${requestId}`);
  return group;
}
/** Whether the job is failed, in whichever queue ran it (a session turn may go to its node's own). */
async function isFailed(requestId: string): Promise<boolean> {
  const scores = await Promise.all([stack.keys.generationQueue, stack.keys.nodeQueue('node-0')].map((queue) => stack.redis.zscore(`${stack.keys.bullPrefix}:${queue}:failed`, requestId)));
  return scores.some((score) => score !== null);
}
/** What the queue recorded when the job ended (`{"outcome":...}`). */
const jobResult = async (requestId: string) => (await stack.redis.hget(`${stack.keys.bullPrefix}:${stack.keys.generationQueue}:${requestId}`, 'returnvalue')) ?? undefined;

describe('a gateway killed mid-generation', () => {
  it('has its running and queued jobs stopped on the gpu-node, its session turn not committed; a background response runs on', async () => {
    const created = await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID, system: 'be long' });
    expect(created.status).toBe(201);
    const sessionId = created.json.id as string;
    const turn = await chat({ session_id: sessionId, messages: [{ role: 'user', content: 'tell me everything' }] });
    const plain = await chat({ messages: [{ role: 'user', content: 'and you too' }] });
    // Both generating (their streams are left open: a client that hangs up cancels its job).
    const ids = await Promise.all([turn, plain].map(async (response) => {
      const { value } = await response.body!.getReader().read();
      return JSON.parse(/^data: (.*)$/m.exec(new TextDecoder().decode(value))![1]!).id as string;
    }));
    const background = await postJson(`${stack.url}/v1/responses`, { model: MODEL_ID, input: 'keep going', background: true, max_output_tokens: MAX_TOKENS, temperature: 0 });
    expect(background.status).toBe(200);
    const backgroundId = background.json.id as string;
    // A stored response streamed to its client (store defaults to true).
    const stored = await fetch(`${stack.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, input: 'store me', stream: true, max_output_tokens: MAX_TOKENS, temperature: 0 }) });
    const storedId = /"id":"(resp_[^"]+)"/.exec(new TextDecoder().decode((await stored.body!.getReader().read()).value))![1]!;
    const outliving = [backgroundId, storedId];
    for (const id of outliving) await stack.waitFor(`${id} to generate`, async () => (generated(await stack.streamEvents(id)) > 0 ? true : undefined));
    // Every slot is busy: this one waits in the queue.
    void chat({ messages: [{ role: 'user', content: 'me later' }] }).catch(() => { /* its gateway dies */ });
    await stack.waitFor('a third request to be queued', async () => ((await stack.queueDepth()) === 1 ? true : undefined));

    const node = stack.nodes.get('node-0')!;
    const pausedAt = Date.now();
    node.kill('SIGSTOP');
    try {
      process.kill(stack.gatewayPid!, 'SIGKILL');
      const group = await relayGroupOf(ids[0]!);
      await stack.waitFor('the killed gateway’s presence to lapse', async () => ((await stack.redis.exists(stack.keys.relayPresence(group))) === 0 ? true : undefined));
      // Resume once the node's reader check is due, so it runs as soon as the node does.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, pausedAt + READER_CHECK_MS + 200 - Date.now())));
    } finally {
      node.kill('SIGCONT');
    }

    const queuedId = await stack.waitFor('the queued request to reach the node', async () => {
      const waiting = await stack.redis.lrange(`${stack.keys.bullPrefix}:${stack.keys.generationQueue}:wait`, 0, -1);
      if (waiting.length > 0) return undefined;
      const keys = await stack.streamKeys();
      const other = keys.map((key) => key.split(':stream:')[1]!).find((id) => !ids.includes(id) && !outliving.includes(id));
      return other;
    }, 30_000);
    for (const requestId of [...ids, queuedId]) {
      await stack.waitFor(`job ${requestId} to be failed for good`, async () => ((await isFailed(requestId)) ? true : undefined), 30_000);
      const events = await stack.streamEvents(requestId);
      expect(generated(events), requestId).toBeLessThan(MAX_TOKENS);
      // Said on its stream, in case a reader was there after all (it would otherwise wait for its deadline).
      expect(events.at(-1), requestId).toMatchObject({ type: 'generation-error', error: { code: 'reader_gone' } });
    }
    // Their answers are stored for readers to come: not stopped.
    for (const id of outliving) {
      expect(JSON.parse(await stack.waitFor(`${id} to end`, () => jobResult(id), 30_000)), id).toEqual({ outcome: 'finished' });
      expect((await stack.streamEvents(id)).at(-1), id).toMatchObject({ type: 'generation-end' });
    }
    // Their runner is gone, so another gateway settles them from their streams as soon as it reads
    // them, not only once their deadline passed.
    const reader = await startGateway(parseGatewayConfig({ ...stack.gatewayEnv, PORT: '0' }), { logger: silentLogger });
    try {
      for (const id of outliving) {
        const retrieved = await fetch(`${reader.url}/v1/responses/${id}`);
        expect(retrieved.status, id).toBe(200);
        const response = (await retrieved.json()) as { status: string; output: Array<{ content: Array<{ text: string }> }> };
        expect(['completed', 'incomplete'], id).toContain(response.status);
        expect(response.output[0]!.content[0]!.text.length, id).toBeGreaterThan(0);
      }
    } finally {
      await reader.close();
    }
    // The cut turn was not committed, and the session is free for the next one.
    await stack.waitFor('the session lock to be given back', async () => ((await stack.redis.exists(`${stack.keys.session(sessionId)}:lock`)) === 0 ? true : undefined));
    expect(await stack.redis.hget(stack.keys.session(sessionId), 'version')).toBe('0');
  });
});
