/**
 * Where a session's state lives between turns, through the HTTP API with a real gpu-node: the
 * host-memory tier (resumes like the slot, token for token), turn ends that do not wait for the
 * snapshot (a next turn sent at once never replays; a node killed before the snapshot landed
 * loses no committed turn), and system-prompt checkpoints shared by new conversations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatTemplateMessage, Engine } from '@bamba/gpu-node';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { historyOf, sessionClient } from './support/session-client.js';
import { startTestStack, type TestStack } from './support/stack.js';

let engine: Engine;
beforeAll(async () => { engine = await startDirectEngine(); });
afterAll(async () => engine?.close());


describe('the host-memory tier', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    // No resident slots: a state survives its turn in host memory only.
    stack = await startTestStack({ nodeEnv: { BAMBA_RESIDENT_SESSIONS: '0' } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('resumes turns from host memory, answering exactly as the uninterrupted conversation', async () => {
    const sessionId = await sessions.create('You keep answers short.');
    const first = await sessions.turn(sessionId, 'first question');
    expect(first.resume).toBe('replay');
    for (const content of ['second question', 'third question']) {
      const expected = await directGreedy(engine, [...(await historyOf(stack, sessionId)), { role: 'user', content }], 24);
      const turn = await sessions.turn(sessionId, content); // sent the moment the previous one ended
      expect(turn.resume).toBe('host');
      expect(turn.cachedTokens).toBeGreaterThan(0);
      expect(turn.text).toBe(expected);
    }
    const status = (await stack.nodeStatuses())[0]!;
    expect(status.hostTierSessions).toBeGreaterThanOrEqual(1);
    expect(status.residentSessions).toBe(0);
    expect((await sessions.get(sessionId)).json.state).toBe('resident'); // on its node, in memory
  });
});

describe('turn ends that do not wait for the snapshot', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    stack = await startTestStack({ gpuNodes: 0 });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('a turn sent the moment the previous one ended resumes from its state, never a replay', async () => {
    await stack.startNode('steady');
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'opening');
    for (let index = 0; index < 4; index++) {
      const turn = await sessions.turn(sessionId, `quick follow-up ${index}`);
      expect(turn.status).toBe(200);
      expect(turn.resume).toBe('resident');
    }
    await stack.stopNode('steady');
  });

  it('a gpu-node killed after the end event, before the snapshot landed, loses no committed turn', async () => {
    await stack.startNode('dies-after-end', { BAMBA_FAULT_INJECTION: 'die-after-end' });
    const sessionId = await sessions.create();
    const content = 'answer, then die';
    const expected = await directGreedy(engine, [{ role: 'user', content }], 24);
    const dead = stack.nodes.get('dies-after-end')!;
    const exited = new Promise((done) => dead.once('exit', done));
    const answered = await sessions.turn(sessionId, content);
    expect(answered.status).toBe(200);
    expect(answered.text).toBe(expected);
    await exited;
    stack.nodes.delete('dies-after-end');
    expect(await historyOf(stack, sessionId)).toEqual([{ role: 'user', content }, { role: 'assistant', content: expected }]);
    expect(await stack.redis.hget(stack.keys.session(sessionId), 'snapshotId')).toBe(''); // it never landed
    await stack.startNode('survivor');
    const next = 'and after that?';
    const turn = await sessions.turn(sessionId, next);
    expect(turn.status).toBe(200);
    expect(turn.resume).toBe('replay');
    expect(turn.text).toBe(await directGreedy(engine, [{ role: 'user', content }, { role: 'assistant', content: expected }, { role: 'user', content: next }], 24));
    expect((await sessions.get(sessionId)).json.turns).toBe(2);
  });
});

describe('system-prompt checkpoints', () => {
  let stack: TestStack;
  let sessions: ReturnType<typeof sessionClient>;
  beforeAll(async () => {
    stack = await startTestStack({ nodeEnv: { BAMBA_SYSTEM_CHECKPOINT_TOKENS: '64' } });
    sessions = sessionClient(stack.url);
  });
  afterAll(async () => stack?.stop());

  it('a new conversation with a system prompt another one had resumes from its state, with the same answer', async () => {
    const system = `You are the helpdesk of a company that sells garden tools. ${'Be polite, be brief, and never promise delivery dates. '.repeat(4)}`;
    const systemTokens = engine.tokenizeChat([{ role: 'system', content: system }], { addGenerationPrompt: false }).length;
    expect(systemTokens).toBeGreaterThanOrEqual(64);
    const first = await sessions.chat({ messages: [{ role: 'system', content: system }, { role: 'user', content: 'Do you sell rakes?' }] });
    expect(first.resume).toBe('replay');
    const messages = [{ role: 'system' as const, content: system }, { role: 'user' as const, content: 'What about shovels?' }];
    const second = await stack.waitFor('the checkpoint to be used', async () => {
      const answer = await sessions.chat({ messages });
      return answer.resume === 'snapshot' ? answer : undefined;
    });
    expect(second.cachedTokens).toBe(systemTokens);
    expect(second.text).toBe(await directGreedy(engine, messages, 24));
    // A session that opens with the same system prompt starts from it too.
    const sessionId = await sessions.create(system);
    const turn = await sessions.turn(sessionId, 'And hoses?');
    expect(turn.resume).toBe('snapshot');
    expect(turn.cachedTokens).toBe(systemTokens);
    // The node's figures travel with its heartbeat (every second).
    const metrics = await stack.waitFor('the lookups in /metrics', async () => {
      const text = await (await fetch(`${stack.url}/metrics`)).text();
      return /bamba_prefix_cache_lookups\{boundary="system",outcome="hit"\} [2-9]/.test(text) ? text : undefined;
    });
    expect(metrics).toMatch(/bamba_prefix_cache_lookups\{boundary="any",outcome="miss"\} [1-9]/);
    expect((await stack.nodeStatuses())[0]!.prefixLookups.systemHits).toBeGreaterThanOrEqual(2);
    // A short system prompt is not worth a checkpoint: nothing is saved for it.
    const short = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'hi' }];
    await sessions.chat({ messages: short });
    expect((await sessions.chat({ messages: [...short.slice(0, 1), { role: 'user', content: 'hello' }] })).resume).toBe('replay');
  });
});
