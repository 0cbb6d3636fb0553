/**
 * Two regions (each its own redis-server, gateway, gpu-node and workers) behind the edge Worker
 * running under `wrangler dev` (workerd), all real processes on loopback: routing by preference
 * and by the id's home, streaming through the edge, edge → region trust, failover to the
 * replicated transcript and back, moving a session with its state, and a client disconnect at
 * the edge cancelling the job in the region.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEdgeDev, type EdgeDev } from '@bamba/cli/edge-dev';
import { freePort } from '@bamba/cli/local-redis';
import { parseGatewayConfig, silentLogger, startGateway } from '@bamba/gateway';
import { SessionStore, SessionTransfer, SnapshotStore } from '@bamba/region';
import { EDGE_HEADER, signEdgeRequest } from '@bamba/shared';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, readSse, startGatewayProcess, startTestStack, type TestStack } from './support/stack.js';

const SECRET = randomBytes(32).toString('hex');
const EDGE_KEY = 'edge-key-0123';
const REGION_KEY = 'region-key-0123';
let us: TestStack;
let eu: TestStack;
let edge: EdgeDev;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'bamba-edge-'));
  const [usPort, euPort] = [await freePort(), await freePort()];
  const regions = JSON.stringify([
    { name: 'us', url: `http://127.0.0.1:${usPort}`, continent: 'NA' },
    { name: 'eu', url: `http://127.0.0.1:${euPort}`, continent: 'EU' },
  ]);
  const region = (name: string, port: number) => startTestStack({
    region: name,
    workers: 1,
    nodeEnv: { BAMBA_REPLICATE_SESSIONS: 'true', BAMBA_CONTEXT_SIZE: '4096' },
    gatewayEnv: { PORT: String(port), BAMBA_HOST: '127.0.0.1', BAMBA_EDGE_SECRET: SECRET, BAMBA_API_KEYS: `${REGION_KEY}:tenant-a`, BAMBA_REPLICATE_SESSIONS: 'true' },
    workersEnv: { BAMBA_EDGE_SECRET: SECRET, BAMBA_REGIONS: regions },
  });
  [us, eu] = await Promise.all([region('us', usPort), region('eu', euPort)]);
  edge = await startEdgeDev({
    workDir,
    bindings: { BAMBA_API_KEYS: `${EDGE_KEY}:tenant-a`, BAMBA_EDGE_SECRET: SECRET, BAMBA_REGIONS: regions, BAMBA_EDGE_BREAKER_OPEN_MS: '1500' },
  });
});
afterAll(async () => {
  await edge?.stop();
  await Promise.all([us?.stop(), eu?.stop()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const AUTH = { authorization: `Bearer ${EDGE_KEY}` };
const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${edge.url}${path}`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
const turn = (sessionId: string, content: string) => post('/v1/chat/completions', { model: MODEL_ID, session_id: sessionId, messages: [{ role: 'user', content }], max_tokens: 12, temperature: 0 });
const newSession = async (region: string) => {
  const response = await post('/v1/sessions', { model: MODEL_ID, system: 'You answer in a few words.' }, { 'x-bamba-prefer-region': region });
  expect(response.status).toBe(201);
  expect(response.headers.get('x-bamba-region')).toBe(region);
  return ((await response.json()) as { id: string }).id;
};
const sessionsOf = (stack: TestStack) => new SessionStore(stack.redis, stack.keys, new SnapshotStore(stack.redis, stack.keys, Number.MAX_SAFE_INTEGER));

describe('the edge in front of two regions', () => {
  it('streams a chat through the edge to the end, from the preferred region', async () => {
    const response = await post('/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: 'hello' }], max_tokens: 16, stream: true }, { 'x-bamba-prefer-region': 'eu' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-bamba-region')).toBe('eu');
    const events = await readSse(response);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.filter((event) => event !== '[DONE]').map((event) => JSON.parse(event).choices[0]?.finish_reason).filter(Boolean)).toEqual(['length']);
    const models = (await (await fetch(`${edge.url}/v1/models`, { headers: AUTH })).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((model) => model.id)).toEqual([MODEL_ID]);
  });

  it('keeps a session made in eu in eu: its id says so and its turns go there', async () => {
    const sessionId = await newSession('eu');
    expect(sessionId).toMatch(/^sess_eu_[0-9a-f]{32}$/);
    for (const content of ['first', 'second']) {
      const response = await turn(sessionId, content);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-bamba-region')).toBe('eu');
    }
    expect((await sessionsOf(eu).get('tenant-a', sessionId))?.session.version).toBe(2);
    expect(await sessionsOf(us).get('tenant-a', sessionId).then((view) => view?.session.version ?? 0)).toBeLessThanOrEqual(2); // a replica at most
  });

  it('a region refuses a tenant header without a valid, fresh signature (401), and still takes its own API keys', async () => {
    const direct = (headers: Record<string, string>) => fetch(`${us.url}/v1/models`, { headers });
    expect((await direct({ [EDGE_HEADER.tenant]: 'tenant-a' })).status).toBe(401);
    const forged = await signEdgeRequest('not-the-shared-secret-0123456789abcdef', { tenant: 'tenant-a', failover: false }, 'GET', '/v1/models', Date.now());
    expect((await direct(forged)).status).toBe(401);
    const stale = await signEdgeRequest(SECRET, { tenant: 'tenant-a', failover: false }, 'GET', '/v1/models', Date.now() - 5 * 60_000);
    expect((await direct(stale)).status).toBe(401);
    const otherPath = await signEdgeRequest(SECRET, { tenant: 'tenant-a', failover: false }, 'GET', '/v1/files', Date.now());
    expect((await direct(otherPath)).status).toBe(401);
    const internal = await signEdgeRequest(SECRET, { tenant: '', failover: false }, 'GET', '/v1/models', Date.now());
    expect((await direct(internal)).status).toBe(401); // a region-to-region signature names no tenant
    const good = await signEdgeRequest(SECRET, { tenant: 'tenant-a', failover: false }, 'GET', '/v1/models', Date.now());
    expect((await direct(good)).status).toBe(200);
    expect((await direct({ authorization: `Bearer ${REGION_KEY}` })).status).toBe(200);
    expect((await fetch(`${us.url}/internal/v1/replicas/x`, { method: 'PUT', body: '{}' })).status).toBe(401);
  });

  it('when us is down, eu answers its session from the replicated transcript (a replay), and us carries on from there once back', async () => {
    const sessionId = await newSession('us');
    const answers: string[] = [];
    for (const content of ['one', 'two']) {
      const response = await turn(sessionId, content);
      expect(response.headers.get('x-bamba-region')).toBe('us');
      answers.push(((await response.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content);
    }
    await eu.waitFor('the transcript to reach eu', async () => ((await sessionsOf(eu).get('tenant-a', sessionId))?.session.version === 2 ? true : undefined), 20_000);

    await us.gateway.close(); // us cannot be reached now
    const failedOver = await turn(sessionId, 'three');
    expect(failedOver.status).toBe(200);
    expect(failedOver.headers.get('x-bamba-region')).toBe('eu');
    expect(failedOver.headers.get('x-bamba-resume')).toBe('replay');
    const third = ((await failedOver.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content;
    // The same as a stateless request carrying the whole history.
    const history = [{ role: 'system', content: 'You answer in a few words.' }, { role: 'user', content: 'one' }, { role: 'assistant', content: answers[0] }, { role: 'user', content: 'two' }, { role: 'assistant', content: answers[1] }, { role: 'user', content: 'three' }];
    const replay = await post('/v1/chat/completions', { model: MODEL_ID, messages: history, max_tokens: 12, temperature: 0 }, { 'x-bamba-prefer-region': 'eu' });
    expect(((await replay.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe(third);

    // us comes back: eu's workers hand the failover turn home, and the next turn there continues it.
    us.gateway = await startGateway(parseGatewayConfig(us.gatewayEnv), { logger: silentLogger });
    await us.waitFor('the failover turn to reach us', async () => ((await sessionsOf(us).get('tenant-a', sessionId))?.session.version === 3 ? true : undefined), 20_000);
    // The edge tries us again once its breaker lets it (BAMBA_EDGE_BREAKER_OPEN_MS); its readiness says when.
    await us.waitFor('the edge to try us again', async () => {
      const ready = (await (await fetch(`${edge.url}/readyz`)).json()) as { regions: Record<string, string> };
      return ready.regions.us === 'usable' ? true : undefined;
    }, 20_000);
    const back = await turn(sessionId, 'four');
    expect(back.status).toBe(200);
    expect(back.headers.get('x-bamba-region')).toBe('us');
    expect((await sessionsOf(us).get('tenant-a', sessionId))?.session.version).toBe(4);
    const transcript = (await sessionsOf(us).get('tenant-a', sessionId))!.messages.map((message) => message.content);
    expect(transcript.slice(0, 7)).toEqual([...history.map((message) => message.content), third]);
    expect(transcript[7]).toBe('four');
  });

  it('moves a session us → eu with its state: the old id keeps working and resumes from the moved snapshot', async () => {
    const sessionId = await newSession('us');
    for (const content of ['alpha', 'beta']) expect((await turn(sessionId, content)).headers.get('x-bamba-region')).toBe('us');
    const moved = await post(`/v1/sessions/${sessionId}/move`, { region: 'eu' });
    expect(moved.status, await moved.clone().text()).toBe(200);
    expect(moved.headers.get('x-bamba-region')).toBe('eu');
    const session = (await moved.json()) as { id: string; turns: number; state: string };
    expect(session.id).toMatch(/^sess_eu_/);
    expect(session).toMatchObject({ turns: 2, state: 'snapshot' });
    expect(await sessionsOf(us).get('tenant-a', sessionId)).toBeNull();
    // The session left us: the replica us kept at eu goes (eu holds the session itself now).
    await eu.waitFor('the old replica to be dropped', async () => ((await sessionsOf(eu).get('tenant-a', sessionId)) === null ? true : undefined), 20_000);
    // The old id's tombstone at eu forwards to the new id: with us down, the old id still leads to the session.
    const euTransfer = new SessionTransfer(eu.redis, eu.keys, new SnapshotStore(eu.redis, eu.keys, Number.MAX_SAFE_INTEGER));
    expect(await euTransfer.forwardOf('tenant-a', sessionId)).toBe(session.id);
    // The session that moved in gets a replica at its backup (us) right away, before any turn in eu.
    await us.waitFor('the moved-in session to reach its backup', async () => ((await sessionsOf(us).get('tenant-a', session.id))?.session.version === 2 ? true : undefined), 20_000);

    const next = await turn(sessionId, 'gamma'); // the old id: the edge follows the forwarding record
    expect(next.status).toBe(200);
    expect(next.headers.get('x-bamba-region')).toBe('eu');
    expect(next.headers.get('x-bamba-resume')).toBe('snapshot');
    const usage = ((await next.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage;
    expect(usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect((await sessionsOf(eu).get('tenant-a', session.id))?.session.version).toBe(3);
    // A move to a region that does not exist changes nothing.
    expect((await post(`/v1/sessions/${session.id}/move`, { region: 'mars' })).status).toBe(400);

    // Back home by its first id (which us itself forwards to eu), then away again by that same id.
    const back = await post(`/v1/sessions/${sessionId}/move`, { region: 'us' });
    expect(back.status, await back.clone().text()).toBe(200);
    const home = (await back.json()) as { id: string; turns: number };
    expect(home.id).toMatch(/^sess_us_/);
    expect(home.turns).toBe(3);
    const again = await post(`/v1/sessions/${sessionId}/move`, { region: 'eu' });
    expect(again.status, await again.clone().text()).toBe(200);
    const away = (await again.json()) as { id: string; turns: number };
    expect(away.id).toMatch(/^sess_eu_/);
    expect(away.turns).toBe(3);
    const last = await turn(sessionId, 'delta'); // still the first id
    expect(last.headers.get('x-bamba-region')).toBe('eu');
    expect((await sessionsOf(eu).get('tenant-a', away.id))?.session.version).toBe(4);

    // Three more round trips by the first id (six moves in all, more than forwards are followed
    // for one request): every move points the old ids at the newest, so the first id keeps working.
    let newest = away.id;
    for (const region of ['us', 'eu', 'us']) {
      const hop = await post(`/v1/sessions/${sessionId}/move`, { region });
      expect(hop.status, await hop.clone().text()).toBe(200);
      newest = ((await hop.json()) as { id: string }).id;
    }
    expect(newest).toMatch(/^sess_us_/);
    const usTransfer = new SessionTransfer(us.redis, us.keys, new SnapshotStore(us.redis, us.keys, Number.MAX_SAFE_INTEGER));
    expect(await usTransfer.forwardOf('tenant-a', sessionId)).toBe(newest); // one hop from the first id
    const after = await turn(sessionId, 'epsilon');
    expect(after.status).toBe(200);
    expect(after.headers.get('x-bamba-region')).toBe('us');
    expect((await sessionsOf(us).get('tenant-a', newest))?.session.version).toBe(5);
  });

  it('replication waits out a workers restart: the queued turn reaches the backup once workers run again', async () => {
    await us.stopWorkers('workers-0', 'SIGKILL');
    const sessionId = await newSession('us');
    expect((await turn(sessionId, 'while workers are down')).status).toBe(200);
    await new Promise((done) => setTimeout(done, 500));
    expect(await sessionsOf(eu).get('tenant-a', sessionId)).toBeNull(); // nobody sent it yet
    await us.startWorkers('workers-0');
    await eu.waitFor('the queued replica to arrive', async () => ((await sessionsOf(eu).get('tenant-a', sessionId))?.session.version === 1 ? true : undefined), 20_000);
    // Deleted at home: its replica goes too.
    expect((await fetch(`${edge.url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: AUTH })).status).toBe(200);
    await eu.waitFor('the replica to be dropped', async () => ((await sessionsOf(eu).get('tenant-a', sessionId)) === null ? true : undefined), 20_000);
  });

  it('lists the files of both regions as one list, and the official client pages through it', async () => {
    const made: string[] = [];
    for (const region of ['us', 'eu', 'us', 'eu']) {
      const form = new FormData();
      form.set('purpose', 'batch');
      form.set('file', new Blob([`{"custom_id":"${region}"}\n`]), `${region}.jsonl`);
      const response = await fetch(`${edge.url}/v1/files`, { method: 'POST', headers: { ...AUTH, 'x-bamba-prefer-region': region }, body: form });
      expect(response.headers.get('x-bamba-region')).toBe(region);
      made.push(((await response.json()) as { id: string }).id);
    }
    const client = new OpenAI({ baseURL: `${edge.url}/v1`, apiKey: EDGE_KEY, maxRetries: 0 });
    const whole = (await client.files.list()).data.map((file) => file.id);
    expect([...whole].sort()).toEqual([...made].sort());
    for (const order of ['desc', 'asc'] as const) {
      const paged: string[] = [];
      for await (const file of client.files.list({ limit: 1, order })) paged.push(file.id); // the client follows `after` across regions
      expect(paged).toEqual(order === 'desc' ? whole : [...whole].reverse());
    }
  });

  it('a client that disconnects at the edge cancels the job in the region', async () => {
    const controller = new AbortController();
    const response = await post('/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: 'talk for a long time' }], max_tokens: 3500, temperature: 0, stream: true }, { 'x-bamba-prefer-region': 'eu' }, controller.signal);
    expect(response.headers.get('x-bamba-region')).toBe('eu');
    const first = await readSse(response, 2);
    const requestId = JSON.parse(first[0]!).id as string;
    controller.abort();
    await eu.waitFor('the gpu-node to stop the generation', async () => ((await eu.nodeStatuses())[0]?.busySlots === 0 ? true : undefined), 30_000);
    const events = await eu.streamEvents(requestId);
    const generated = events.reduce((sum, event) => sum + (event.type === 'token-delta' ? event.tokens : 0), 0);
    expect(events.some((event) => event.type === 'generation-end')).toBe(false);
    expect(generated).toBeLessThan(3500);
  });

  it('a stream whose region gateway is SIGKILLed mid-way ends at the edge with a region_lost error event, not as if it had finished', async () => {
    // us's gateway as a process of its own on the same port, so that it can die outright.
    await us.gateway.close();
    const dying = await startGatewayProcess(us.gatewayEnv);
    us.gateway = dying.gateway;
    await us.waitFor('the edge to find us answering', async () => {
      const ready = (await (await fetch(`${edge.url}/readyz`)).json()) as { regions: Record<string, string> };
      return ready.regions.us === 'usable' ? true : undefined;
    }, 20_000);
    const response = await post('/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: 'talk until you are cut' }], max_tokens: 3500, temperature: 0, stream: true }, { 'x-bamba-prefer-region': 'us' });
    expect(response.headers.get('x-bamba-region')).toBe('us');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (text.split('\n\n').length < 3) text += decoder.decode((await reader.read()).value, { stream: true });
    process.kill(dying.pid, 'SIGKILL');
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
    const data = text.split('\n\n').filter((block) => block.startsWith('data: ')).map((block) => block.slice('data: '.length));
    expect(data).not.toContain('[DONE]');
    expect(JSON.parse(data.at(-1)!)).toEqual({ error: { message: expect.stringContaining("region 'us' stopped this stream before its end"), type: 'service_unavailable_error', param: null, code: 'region_lost' } });
  });
});
