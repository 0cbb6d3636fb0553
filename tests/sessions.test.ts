/**
 * Resumable conversations across two gpu-nodes: each turn resumes from the previous turn's state
 * (resident or snapshot) and answers exactly as one uninterrupted engine run would; stateless
 * requests that re-send a session's history hit the prefix cache; one turn at a time; forks;
 * tenants never see each other's sessions.
 */
import OpenAI from 'openai';
import type { ChatTemplateMessage, Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { sessionClient } from './support/session-client.js';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

const KEY_A = 'sk-tenant-a';
const KEY_B = 'sk-tenant-b';
let stack: TestStack;
let engine: Engine;
let sessions: ReturnType<typeof sessionClient>;

beforeAll(async () => {
  [stack, engine] = await Promise.all([
    startTestStack({ gpuNodes: 0, gatewayEnv: { BAMBA_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` } }),
    startDirectEngine(),
  ]);
  sessions = sessionClient(stack.url, KEY_A);
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

/** Which node wrote a request's events (its generation-start). */
async function servedBy(requestId: string): Promise<string> {
  const start = (await stack.streamEvents(requestId)).find((event) => event.type === 'generation-start');
  if (start?.type !== 'generation-start') throw new Error(`request ${requestId} has no generation-start event`);
  return start.nodeId;
}

const boundaryTokens = (messages: ChatTemplateMessage[]) => engine.tokenizeChat(messages, { addGenerationPrompt: false }).length;

describe('a session whose turns run on different nodes', () => {
  it('resumes every turn from the previous one and answers like one uninterrupted run', async () => {
    // Exactly one node is up for each turn, a different process each time.
    const order = ['node-a', 'node-b', 'node-c', 'node-d'];
    await stack.startNode(order[0]!);
    const sessionId = await sessions.create('You are a state machine.');
    const history: ChatTemplateMessage[] = [{ role: 'system', content: 'You are a state machine.' }];
    for (const [turn, nodeId] of order.entries()) {
      if (turn > 0) {
        await stack.startNode(nodeId);
        const previous = stack.nodes.get(order[turn - 1]!)!;
        const exited = new Promise((done) => previous.once('exit', done));
        previous.kill('SIGTERM');
        await exited;
        stack.nodes.delete(order[turn - 1]!);
      }
      const content = `Turn ${turn + 1}: tell me more.`;
      const expected = await directGreedy(engine, [...history, { role: 'user', content }], 24);
      const result = await sessions.turn(sessionId, content);
      expect(result.status).toBe(200);
      expect(result.text).toBe(expected);
      expect(await servedBy(result.requestId)).toBe(nodeId);
      if (turn === 0) {
        expect(result.resume).toBe('replay');
        expect(result.cachedTokens).toBe(0);
      } else {
        expect(result.resume).toBe('snapshot'); // a fresh process: the state came from Redis
        expect(result.cachedTokens).toBe(boundaryTokens(history));
      }
      history.push({ role: 'user', content }, { role: 'assistant', content: expected });
    }
    // The last turn's state is saved after its end event: the session points at it once it landed.
    const view = await stack.waitFor('the last turn\'s state', async () => {
      const read = await sessions.get(sessionId);
      return read.json.token_count === boundaryTokens(history) ? read : undefined;
    });
    expect(view.json).toMatchObject({ id: sessionId, object: 'session', model: MODEL_ID, turns: 4, token_count: boundaryTokens(history) });
    expect(view.json.messages).toEqual(history);
    expect(view.json.snapshot_bytes).toBeGreaterThan(0);
    expect(['resident', 'snapshot']).toContain(view.json.state);
  });

  it('keeps the session resident on its node: the next turn reports resident', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'first');
    const second = await sessions.turn(sessionId, 'second');
    expect(second.resume).toBe('resident');
    expect((await sessions.get(sessionId)).json.state).toBe('resident');
  });
});

describe('the prefix cache for stateless requests', () => {
  it("resumes a plain request that re-sends a finished session's history, with the same answer", async () => {
    const sessionId = await sessions.create();
    const first = await sessions.turn(sessionId, 'What is a hybrid model?');
    const second = await sessions.turn(sessionId, 'And why is its state small?');
    const history = (await sessions.get(sessionId)).json.messages as ChatTemplateMessage[];
    // Serve the stateless request from a different process than the one that took the snapshot.
    const [oldNodeId, oldNode] = [...stack.nodes][0]!;
    await stack.startNode('node-prefix');
    const exited = new Promise((done) => oldNode.once('exit', done));
    oldNode.kill('SIGTERM');
    await exited;
    stack.nodes.delete(oldNodeId);
    const next = { role: 'user' as const, content: 'Show me.' };
    const stateless = await sessions.chat({ messages: [...history, next] });
    expect(await servedBy(stateless.requestId)).toBe('node-prefix');
    expect(stateless.status).toBe(200);
    expect(stateless.resume).toBe('snapshot');
    expect(stateless.cachedTokens).toBe(boundaryTokens(history));
    expect(stateless.cachedTokens).toBeGreaterThan(0);
    const viaSession = await sessions.turn(sessionId, next.content);
    expect(stateless.text).toBe(viaSession.text);
    expect(stateless.text).toBe(await directGreedy(engine, [...history, next], 24));
    expect(first.text.length + second.text.length).toBeGreaterThan(0);
  });

  it('never serves another tenant from the prefix cache', async () => {
    const history = [{ role: 'user' as const, content: 'private question' }];
    const answered = await sessions.chat({ messages: history });
    const next = [...history, { role: 'assistant' as const, content: answered.text }, { role: 'user' as const, content: 'more' }];
    const otherTenant = await sessionClient(stack.url, KEY_B).chat({ messages: next });
    expect(otherTenant.resume).toBe('replay');
    const sameTenant = await sessions.chat({ messages: next });
    expect(sameTenant.resume).toBe('snapshot');
    expect(otherTenant.text).toBe(sameTenant.text);
  });
});

describe('one turn at a time, forks and tenants', () => {
  it('answers a turn sent while another turn of the session runs with 409 session_busy', async () => {
    const sessionId = await sessions.create();
    // The first turn streams, and is surely running once its first chunk arrived.
    const running = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL_ID, session_id: sessionId, messages: [{ role: 'user', content: 'one' }], max_tokens: 300, temperature: 0, stream: true }),
    });
    const reader = running.body!.getReader();
    await reader.read();
    const refused = await sessions.turn(sessionId, 'two');
    expect(refused.status).toBe(409);
    expect(refused.json.error).toMatchObject({ type: 'invalid_request_error', code: 'session_busy' });
    const forkRefused = await sessions.fork(sessionId);
    expect(forkRefused.status).toBe(409);
    expect(forkRefused.headers.get('x-should-retry')).toBe('true'); // it ends with the turn
    expect((await sessions.delete(sessionId)).status).toBe(409);
    while (!(await reader.read()).done) { /* let the first turn finish */ }
    expect((await sessions.get(sessionId)).json.turns).toBe(1);
    expect((await sessions.turn(sessionId, 'two, now')).status).toBe(200);
  });

  it('forks: both branches continue independently, each equal to its own uninterrupted run', async () => {
    const original = await sessions.create('Branch test.');
    const first = await sessions.turn(original, 'common start');
    const forked = await sessions.fork(original);
    expect(forked.status).toBe(201);
    const forkId = forked.json.id as string;
    expect(forked.json.messages).toEqual((await sessions.get(original)).json.messages);
    const base: ChatTemplateMessage[] = [{ role: 'system', content: 'Branch test.' }, { role: 'user', content: 'common start' }, { role: 'assistant', content: first.text }];
    const left = await sessions.turn(original, 'go left');
    const right = await sessions.turn(forkId, 'go right');
    expect(left.text).toBe(await directGreedy(engine, [...base, { role: 'user', content: 'go left' }], 24));
    expect(right.text).toBe(await directGreedy(engine, [...base, { role: 'user', content: 'go right' }], 24));
    expect(right.cachedTokens).toBe(boundaryTokens(base)); // the fork started from the shared state
    expect((await sessions.get(original)).json.messages.at(-2).content).toBe('go left');
    expect((await sessions.get(forkId)).json.messages.at(-2).content).toBe('go right');
  });

  it('forks after any message: the fork keeps that much and resumes from the state its source saved there', async () => {
    const original = await sessions.create('Fork at a turn.');
    const first = await sessions.turn(original, 'turn one');
    await sessions.turn(original, 'turn two');
    const before = (await sessions.get(original)).json;
    const forked = await sessions.fork(original, { keep_messages: 3 });
    expect(forked.status).toBe(201);
    expect(forked.json.messages).toEqual(before.messages.slice(0, 3));
    expect(forked.json).toMatchObject({ turns: 1, snapshot_bytes: 0, token_count: 0, state: 'transcript' });
    const base: ChatTemplateMessage[] = [{ role: 'system', content: 'Fork at a turn.' }, { role: 'user', content: 'turn one' }, { role: 'assistant', content: first.text }];
    const next = await sessions.turn(forked.json.id as string, 'another way');
    expect(next.resume).toBe('snapshot'); // the state saved at the end of turn one, found by its tokens
    expect(next.cachedTokens).toBe(boundaryTokens(base));
    expect(next.text).toBe(await directGreedy(engine, [...base, { role: 'user', content: 'another way' }], 24));
    expect((await sessions.get(forked.json.id as string)).json.turns).toBe(2);
    expect((await sessions.get(original)).json).toMatchObject({ turns: 2, messages: before.messages }); // untouched

    // Whole-session forks still take no body; bad values are 400s.
    const whole = await fetch(`${stack.url}/v1/sessions/${original}/fork`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}` } });
    expect(whole.status).toBe(201);
    expect(((await whole.json()) as { messages: unknown[] }).messages).toHaveLength(before.messages.length);
    for (const body of [{ keep_messages: before.messages.length + 1 }, { keep_messages: -1 }, { keep_messages: 1.5 }, { keep_messages: "two" }, [3], null]) {
      const refused = await sessions.fork(original, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json.error.type).toBe('invalid_request_error');
    }
  });

  it('gives another tenant 404 on get, turn, fork and delete', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'mine');
    const intruder = sessionClient(stack.url, KEY_B);
    expect((await intruder.get(sessionId)).status).toBe(404);
    expect((await intruder.turn(sessionId, 'let me in')).status).toBe(404);
    expect((await intruder.fork(sessionId)).status).toBe(404);
    expect((await intruder.delete(sessionId)).status).toBe(404);
    expect((await sessions.get(sessionId)).json.turns).toBe(1); // untouched
  });

  it('deletes a session with its transcript and snapshot', async () => {
    const sessionId = await sessions.create();
    await sessions.turn(sessionId, 'soon gone');
    const snapshotId = await stack.waitFor('the turn\'s snapshot', async () => (await stack.redis.hget(stack.keys.session(sessionId), 'snapshotId')) || undefined);
    expect(await stack.redis.exists(stack.keys.snapshotMeta(snapshotId))).toBe(1);
    const deleted = await sessions.delete(sessionId);
    expect(deleted.json).toEqual({ id: sessionId, object: 'session.deleted', deleted: true });
    expect((await sessions.get(sessionId)).status).toBe(404);
    expect(await stack.redis.exists(stack.keys.sessionTranscript(sessionId), stack.keys.snapshotMeta(snapshotId))).toBe(0);
    expect((await sessions.turn(sessionId, 'hello?')).status).toBe(404);
  });

  it('works through the official openai client with session_id as an extra field', async () => {
    const sessionId = await sessions.create();
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
    const body = { model: MODEL_ID, messages: [{ role: 'user' as const, content: 'via the sdk' }], max_tokens: 12, temperature: 0, session_id: sessionId };
    const { data, response } = await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse();
    expect(response.headers.get('x-bamba-resume')).toBe('replay');
    expect(data.choices[0]!.message.content).toHaveLength(12);
    expect((await sessions.get(sessionId)).json.turns).toBe(1);
  });
});
