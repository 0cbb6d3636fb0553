/**
 * The transcript is the source of truth: a deleted, corrupted or foreign snapshot costs time
 * (replay), never content; a full snapshot budget evicts cache snapshots, never a session's
 * state; a gpu-node killed mid-turn leaves the session at its last committed turn.
 */
import { createLlamaEngine, GREEDY, tokenSequenceHash, type ChatTemplateMessage, type Engine } from '@bamba/gpu-node';
import { ensureCachedModel } from '@bamba/model-gen';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { historyOf, sessionClient } from './support/session-client.js';
import { startTestStack, type TestStack } from './support/stack.js';

let engine: Engine;
beforeAll(async () => { engine = await startDirectEngine(); });
afterAll(async () => engine?.close());


describe('damaged or missing snapshots fall back to replaying the transcript', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    // No resident sessions: every turn must go through the snapshot in Redis.
    // (nor states in host memory).
    stack = await startTestStack({ nodeEnv: { BAMBA_RESIDENT_SESSIONS: '0', BAMBA_HOST_TIER_BYTES: '0' } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  // A turn's snapshot lands after its end event: wait for the session to point at it.
  const snapshotIdOf = (sessionId: string) => stack.waitFor('the turn\'s snapshot', async () => (await stack.redis.hget(stack.keys.session(sessionId), 'snapshotId')) || undefined);

  async function expectReplayWithSameAnswer(sessionId: string, content: string): Promise<void> {
    const expected = await directGreedy(engine, [...(await historyOf(stack, sessionId)), { role: 'user', content }], 24);
    const result = await sessions.turn(sessionId, content);
    expect(result.status).toBe(200);
    expect(result.resume).toBe('replay');
    expect(result.cachedTokens).toBe(0);
    expect(result.text).toBe(expected);
    // and the turn after that resumes from the fresh snapshot again
    const after = await sessions.turn(sessionId, 'and then?');
    expect(after.resume).toBe('snapshot');
  }

  it('snapshot deleted → replay, same output', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'remember this');
    const snapshotId = await snapshotIdOf(sessionId);
    await stack.redis.del(stack.keys.snapshotMeta(snapshotId), stack.keys.snapshotChunk(snapshotId, 0));
    await expectReplayWithSameAnswer(sessionId, 'what did I say?');
  });

  it('snapshot bytes corrupted → replay, same output, no crash', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'remember this too');
    const chunkKey = stack.keys.snapshotChunk(await snapshotIdOf(sessionId), 0);
    const bytes = (await stack.redis.getBuffer(chunkKey))!;
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await stack.redis.set(chunkKey, bytes);
    await expectReplayWithSameAnswer(sessionId, 'still there?');
  });

  it('snapshot from another model (fingerprint mismatch) → replay', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'a third one');
    const otherModel = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), 'tiny', 43), device: 'cpu', slots: 4, contextSize: 1024, threads: 1 });
    let foreign: Buffer;
    try {
      const slot = otherModel.acquireSlot()!;
      for await (const _token of otherModel.generate(slot, otherModel.tokenizeChat(await historyOf(stack, sessionId)), { ...GREEDY, maxTokens: 4 })) { /* fill some state */ }
      foreign = await otherModel.exportState(slot);
    } finally {
      await otherModel.close();
    }
    const snapshotId = await snapshotIdOf(sessionId);
    await stack.redis.set(stack.keys.snapshotChunk(snapshotId, 0), foreign);
    await expectReplayWithSameAnswer(sessionId, 'who are you?');
  });
});

describe('the snapshot memory budget', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  const BUDGET_BYTES = 2_000_000; // about four tiny-model snapshots
  beforeAll(async () => {
    stack = await startTestStack({ nodeEnv: { BAMBA_RESIDENT_SESSIONS: '0', BAMBA_HOST_TIER_BYTES: '0', BAMBA_SNAPSHOT_BUDGET_BYTES: String(BUDGET_BYTES) } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('evicts cache snapshots least-recently-used first and never a live session’s state', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'keep my state');
    const sessionSnapshot = await stack.waitFor('the turn\'s snapshot', async () => (await stack.redis.hget(stack.keys.session(sessionId), 'snapshotId')) || undefined);
    const histories: ChatTemplateMessage[][] = [];
    for (let index = 0; index < 12; index++) {
      const messages: ChatTemplateMessage[] = [{ role: 'user', content: `stateless question ${index}` }];
      const answer = await sessions.chat({ messages });
      histories.push([...messages, { role: 'assistant', content: answer.text }]);
    }
    // A stateless answer ends before its snapshot is written: wait until the last write landed
    // (its prefix-cache entry exists) and the eviction after it is done.
    const fingerprint = (await stack.nodeStatuses())[0]!.models[0]!.fingerprint;
    const newestEntry = stack.keys.prefixEntry('local', fingerprint, tokenSequenceHash(engine.tokenizeChat(histories.at(-1)!, { addGenerationPrompt: false })));
    await stack.waitFor('the last snapshot write', async () => ((await stack.redis.exists(newestEntry)) === 1 && Number(await stack.redis.get(stack.keys.snapshotBytes)) <= BUDGET_BYTES ? true : undefined));
    const storedBytes = Number(await stack.redis.get(stack.keys.snapshotBytes));
    const snapshots = await stack.redis.zcard(stack.keys.snapshotLru);
    expect(storedBytes).toBeLessThanOrEqual(BUDGET_BYTES);
    expect(snapshots).toBeLessThan(13); // 13 were written
    expect(await stack.redis.exists(stack.keys.snapshotMeta(sessionSnapshot))).toBe(1); // the session's state survived
    // The oldest cache entry is gone (replay), the newest is still there (snapshot).
    const oldest = await sessions.chat({ messages: [...histories[0]!, { role: 'user', content: 'more' }] });
    const newest = await sessions.chat({ messages: [...histories.at(-1)!, { role: 'user', content: 'more' }] });
    expect(oldest.resume).toBe('replay');
    expect(newest.resume).toBe('snapshot');
    // The session resumes from its snapshot with the right answer.
    const content = 'am I intact?';
    const expected = await directGreedy(engine, [...(await historyOf(stack, sessionId)), { role: 'user', content }], 24);
    const turn = await sessions.turn(sessionId, content);
    expect(turn.resume).toBe('snapshot');
    expect(turn.text).toBe(expected);
  });
});

describe('a gpu-node killed mid-turn', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    stack = await startTestStack({ gpuNodes: 2, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('leaves the session at its last committed turn, and the retried turn completes', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'committed turn');
    const before = await historyOf(stack, sessionId);
    const content = 'a long answer, please';
    const streamsBefore = new Set(await stack.streamKeys());
    const pending = sessions.turn(sessionId, content, { max_tokens: 2000 });
    const requestId = await stack.waitFor('the turn to start', async () => (await stack.streamKeys()).find((key) => !streamsBefore.has(key))?.split(':stream:')[1]);
    const startOf = async (attempt: number) => (await stack.streamEvents(requestId)).find((event) => event.type === 'generation-start' && event.attempt === attempt);
    const first = await stack.waitFor('the first attempt to start', () => startOf(1));
    if (first.type !== 'generation-start') throw new Error('not a start');
    stack.nodes.get(first.nodeId)!.kill('SIGKILL');
    stack.nodes.delete(first.nodeId);
    // Once the retry runs on the other node (the dead node's lock expired), nothing of the dead
    // attempt was committed, and the turn is still locked against other writers.
    await stack.waitFor('the retry to start', () => startOf(2));
    expect(await historyOf(stack, sessionId)).toEqual(before);
    expect((await sessions.turn(sessionId, 'a turn in between')).status).toBe(409);
    const result = await pending;
    expect(result.status).toBe(200);
    expect(result.json.usage.completion_tokens).toBe(2000);
    const after = await historyOf(stack, sessionId);
    expect(after).toEqual([...before, { role: 'user', content }, { role: 'assistant', content: result.text }]);
    expect((await sessions.get(sessionId)).json.turns).toBe(2);
    const longContext = await startDirectEngine({ contextSize: 4096 });
    try {
      expect(result.text).toBe(await directGreedy(longContext, [...before, { role: 'user', content }], 2000));
    } finally {
      await longContext.close();
    }
  });
});

describe('a snapshot that cannot be taken', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    // llama.cpp cannot write its state file there: every export (and import) fails, as with a full /dev/shm.
    stack = await startTestStack({ nodeEnv: { BAMBA_STATE_DIR: '/nonexistent/bamba-state' } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('costs the next turn a replay, never the turn: it is answered, committed, and not retried', async () => {
    const sessionId = await sessions.create();
    const first = await sessions.turn(sessionId, 'no snapshot for me');
    expect(first.status).toBe(200);
    // The state is saved after the end event; once that failed, the session says so.
    const view = await stack.waitFor('the failed save to settle', async () => {
      const read = await sessions.get(sessionId);
      return read.json.state === 'transcript' ? read : undefined;
    });
    expect(view.json).toMatchObject({ turns: 1, snapshot_bytes: 0, state: 'transcript' });
    expect(view.json.messages).toEqual([{ role: 'user', content: 'no snapshot for me' }, { role: 'assistant', content: first.text }]);
    const starts = (await stack.streamEvents(first.requestId)).filter((event) => event.type === 'generation-start');
    expect(starts).toHaveLength(1); // one attempt: the failed export did not fail the job
    const content = 'and now?';
    const second = await sessions.turn(sessionId, content);
    expect(second.resume).toBe('replay');
    expect(second.text).toBe(await directGreedy(engine, [...(await historyOf(stack, sessionId)).slice(0, 2), { role: 'user', content }], 24));
  });
});

describe('a gpu-node that dies after a commit, before the end event', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    stack = await startTestStack({ gpuNodes: 0 });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('has its retry answer from the committed turn: the client gets that answer, and the turn is in the transcript once', async () => {
    await stack.startNode('dies-after-commit', { BAMBA_FAULT_INJECTION: 'die-after-commit' });
    const sessionId = await sessions.create();
    const content = 'commit, then die';
    const expected = await directGreedy(engine, [{ role: 'user', content }], 24);
    const pending = sessions.turn(sessionId, content);
    const dead = stack.nodes.get('dies-after-commit')!;
    await new Promise((done) => dead.once('exit', done));
    stack.nodes.delete('dies-after-commit');
    // Committed before it died: the transcript has the turn already.
    expect(await historyOf(stack, sessionId)).toEqual([{ role: 'user', content }, { role: 'assistant', content: expected }]);
    await stack.startNode('survivor');
    const result = await pending;
    expect(result.status).toBe(200);
    expect(result.text).toBe(expected);
    expect(await historyOf(stack, sessionId)).toEqual([{ role: 'user', content }, { role: 'assistant', content: expected }]);
    expect((await sessions.get(sessionId)).json.turns).toBe(1);
    const starts = (await stack.streamEvents(result.requestId)).filter((event) => event.type === 'generation-start');
    expect(starts.map((event) => event.type === 'generation-start' && event.nodeId)).toEqual(['dies-after-commit', 'survivor']);
  });
});
