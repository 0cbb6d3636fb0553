/**
 * A region on a local 3-master Redis Cluster: session turns, a fork, a prefix-cache hit and a
 * gpu-node failover work as on one Redis, and a snapshot's chunks spread over the shards.
 */
import { randomBytes } from 'node:crypto';
import { tokenSequenceHash, type ChatTemplateMessage, type Engine } from '@bamba/gpu-node';
import { isCluster, SnapshotStore } from '@bamba/region';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { sessionClient } from './support/session-client.js';
import { MODEL_ID, postJson, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
let sessions: ReturnType<typeof sessionClient>;

beforeAll(async () => {
  [stack, engine] = await Promise.all([
    startTestStack({ cluster: true, gpuNodes: 2, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' } }),
    startDirectEngine({ contextSize: 4096 }),
  ]);
  sessions = sessionClient(stack.url);
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

const history = async (sessionId: string) => (await sessions.get(sessionId)).json.messages as ChatTemplateMessage[];

describe('a region on a Redis Cluster', () => {
  it('runs a session turn by turn, each resumed and equal to an uninterrupted run', async () => {
    const sessionId = await sessions.create('You run on a cluster.');
    for (const [turn, content] of ['first question', 'second question', 'third question'].entries()) {
      const expected = await directGreedy(engine, [...(await history(sessionId)), { role: 'user', content }], 24);
      const result = await sessions.turn(sessionId, content);
      expect(result.status).toBe(200);
      expect(result.text).toBe(expected);
      expect(result.resume).toBe(turn === 0 ? 'replay' : 'resident');
    }
    expect((await sessions.get(sessionId)).json.turns).toBe(3);
  });

  it('forks a session and both branches continue from the shared state', async () => {
    const original = await sessions.create();
    await sessions.turn(original, 'common start');
    const base = await history(original);
    const forked = await sessions.fork(original);
    expect(forked.status).toBe(201);
    const left = await sessions.turn(original, 'go left');
    const right = await sessions.turn(forked.json.id, 'go right');
    expect(left.text).toBe(await directGreedy(engine, [...base, { role: 'user', content: 'go left' }], 24));
    expect(right.text).toBe(await directGreedy(engine, [...base, { role: 'user', content: 'go right' }], 24));
    expect(right.cachedTokens).toBeGreaterThan(0);
  });

  it('serves a stateless request from the prefix cache', async () => {
    const messages: ChatTemplateMessage[] = [{ role: 'user', content: 'cache me on the cluster' }];
    const first = await sessions.chat({ messages });
    const next = [...messages, { role: 'assistant' as const, content: first.text }, { role: 'user' as const, content: 'and then?' }];
    // The snapshot is written just after the answer; with two nodes the follow-up may go to the
    // other one, which cannot wait for a write it does not know of: wait until it landed.
    const fingerprint = (await stack.nodeStatuses())[0]!.models[0]!.fingerprint;
    const entry = stack.keys.prefixEntry('local', fingerprint, tokenSequenceHash(engine.tokenizeChat(next.slice(0, 2), { addGenerationPrompt: false })));
    await stack.waitFor('the prefix-cache entry', async () => ((await stack.redis.exists(entry)) === 1 ? true : undefined));
    const second = await sessions.chat({ messages: next });
    expect(second.resume).toBe('snapshot');
    expect(second.cachedTokens).toBe(engine.tokenizeChat(next.slice(0, 2), { addGenerationPrompt: false }).length);
    expect(second.text).toBe(await directGreedy(engine, next, 24));
  });

  it('spreads a snapshot’s chunks over the shards', async () => {
    expect(isCluster(stack.redis)).toBe(true);
    const store = new SnapshotStore(stack.redis, stack.keys, 1024 ** 3);
    const bytes = randomBytes(6 * 1024 * 1024 + 5);
    const info = await store.put(bytes, { tenant: 'local', fingerprint: '0'.repeat(64), tokenCount: 1, tokenHash: '1'.repeat(64), indexPrefix: false });
    expect((await store.read(info.snapshotId))!.equals(bytes)).toBe(true);
    if (!isCluster(stack.redis)) return;
    const holders = await Promise.all(stack.redis.nodes('master').map(async (master) => (await master.keys(`*:{c:${info.snapshotId}:*`)).length));
    expect(holders.reduce((sum, count) => sum + count, 0)).toBe(7);
    expect(holders.filter((count) => count > 0).length).toBeGreaterThan(1);
    await store.forget(info.snapshotId);
    expect(await store.read(info.snapshotId)).toBeNull();
  });

  it('completes a request on the other gpu-node when its node dies', async () => {
    const request = { model: MODEL_ID, messages: [{ role: 'user', content: 'survive on a cluster' }], max_tokens: 2000, temperature: 0 };
    const pending = postJson(`${stack.url}/v1/chat/completions`, request);
    const busy = await stack.waitFor('a node to start the request', async () => (await stack.nodeStatuses()).find((status) => status.busySlots > 0));
    stack.nodes.get(busy.nodeId)!.kill('SIGKILL');
    stack.nodes.delete(busy.nodeId);
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.json.usage.completion_tokens).toBe(2000);
    expect(response.json.choices[0].message.content).toBe(await directGreedy(engine, request.messages as ChatTemplateMessage[], 2000));
  });
});
