// The edge's routing, on Node with fake regions (the fakes are the point: each records what
// reached it and checks the signature the way a region does). workerd runs the same app in
// gateway/edge-test/, and tests/multi-region.test.ts runs it in front of real regions.
import { EDGE_HEADER, MOVED_TO_HEADER, parseRegionMap, REGION_HEADER, SSE_END_COMMENT, verifyEdgeRequest } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { appConfigFrom, appEnvShape } from '../config.js';
import { createEdgeApp } from './edge-app.js';
import { RegionHealth } from './region-health.js';
import { RegionHops } from './region-hop.js';
import { z } from 'zod';

const SECRET = 'a-test-secret-that-is-long-enough-000';
const map = parseRegionMap(JSON.stringify([
  { name: 'us', url: 'http://us.test', continent: 'NA' },
  { name: 'eu', url: 'http://eu.test', continent: 'EU' },
]));
const SESSION_US = `sess_us_${'a'.repeat(32)}`;
const SESSION_EU = `sess_eu_${'b'.repeat(32)}`;

interface Seen { region: string; method: string; path: string; tenant: string; failover: boolean; body: string }
type RegionBehaviour = (seen: Seen) => Response | 'unreachable';

/** `hung`: regions that take connections but never answer (until the caller gives up). */
function edge(behaviour: Partial<Record<string, RegionBehaviour>>, hung: ReadonlySet<string> = new Set(), nowMs = () => Date.now()) {
  const seen: Seen[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const region = url.hostname.split('.')[0]!;
    if (hung.has(region)) {
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    }
    const headers = new Headers(init?.headers);
    if (url.pathname === '/readyz') return new Response('{}', { status: 200 });
    const claims = await verifyEdgeRequest(SECRET, (name) => headers.get(name), init?.method ?? 'GET', `${url.pathname}${url.search}`, Date.now());
    if ('refused' in claims) return new Response('bad signature', { status: 401 });
    const body = init?.body === undefined || init.body === null ? '' : typeof init.body === 'string' ? init.body : new TextDecoder().decode(init.body as ArrayBuffer);
    const entry = { region, method: init?.method ?? 'GET', path: `${url.pathname}${url.search}`, tenant: claims.tenant, failover: claims.failover, body };
    seen.push(entry);
    const answer = behaviour[region]?.(entry) ?? Response.json({ ok: true });
    if (answer === 'unreachable') throw new TypeError('fetch failed');
    return answer;
  }) as typeof fetch;
  const config = { ...appConfigFrom(z.object(appEnvShape).parse({ BAMBA_API_KEYS: 'key-a:tenant-a' })), edgeSecret: SECRET, regions: map };
  const hops = new RegionHops(map, SECRET, () => Date.now(), fetchImpl);
  const health = new RegionHealth(map, (region) => hops.ready(region, 500), nowMs);
  const app = createEdgeApp({ config, health, hops });
  const call = (path: string, init: RequestInit & { json?: unknown } = {}) => app.request(path, {
    ...init,
    headers: { authorization: 'Bearer key-a', ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string> | undefined) },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json), method: init.method ?? 'POST' } : {}),
  });
  return { call, seen };
}

const chat = (extra: object = {}) => ({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('edge routing', () => {
  it('refuses bad keys and bad bodies without calling any region', async () => {
    const { call, seen } = edge({});
    expect((await call('/v1/models', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const bad = await call('/v1/chat/completions', { json: { model: 'tiny', messages: 'no' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    expect((await call('/v1/chat/completions', { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await call('/v1/sessions/x/move', { json: { region: 'mars' } })).status).toBe(400);
    expect((await call(`/v1/sessions/sess_ap_${'c'.repeat(32)}`)).status).toBe(404);
    // A client's own edge headers are never passed on: the edge signs for the key's tenant.
    expect((await call('/v1/models', { headers: { [EDGE_HEADER.tenant]: 'someone-else' } })).status).toBe(401);
    expect(seen).toEqual([]);
  });

  it('sends new work to the preferred or nearest region, signed for the tenant, and says which answered', async () => {
    const { call, seen } = edge({});
    const preferred = await call('/v1/chat/completions', { json: chat(), headers: { 'x-bamba-prefer-region': 'eu' } });
    expect(preferred.headers.get(REGION_HEADER)).toBe('eu');
    const plain = await call('/v1/sessions', { json: { model: 'tiny' } });
    expect(plain.headers.get(REGION_HEADER)).toBe('us'); // no location known: map order
    expect(seen.map(({ region, tenant, failover }) => ({ region, tenant, failover }))).toEqual([
      { region: 'eu', tenant: 'tenant-a', failover: false },
      { region: 'us', tenant: 'tenant-a', failover: false },
    ]);
    expect(JSON.parse(seen[0]!.body)).toEqual(chat());
  });

  it('sends a stateful id home, and a session turn to the backup when home cannot be reached', async () => {
    const { call, seen } = edge({ us: () => 'unreachable' });
    const turn = await call('/v1/chat/completions', { json: chat({ session_id: SESSION_US }) });
    expect(turn.status).toBe(200);
    expect(turn.headers.get(REGION_HEADER)).toBe('eu');
    expect(seen.map(({ region, failover }) => ({ region, failover }))).toEqual([{ region: 'us', failover: false }, { region: 'eu', failover: true }]);
    // The breaker is open now: the next turn goes to the backup at once.
    await call('/v1/chat/completions', { json: chat({ session_id: SESSION_US }) });
    expect(seen.slice(2).map(({ region, failover }) => ({ region, failover }))).toEqual([{ region: 'eu', failover: true }]);
    // What a replica cannot do (delete, fork) is refused while home is down.
    const deleted = await call(`/v1/sessions/${SESSION_US}`, { method: 'DELETE' });
    expect(deleted.status).toBe(503);
    expect(((await deleted.json()) as { error: { code: string } }).error.code).toBe('region_unavailable');
  });

  it('tries new work once elsewhere when a region answers 503, and follows a moved session', async () => {
    const { call, seen } = edge({
      us: (request) => (request.path.startsWith('/v1/chat') && !request.body.includes('session_id') ? Response.json({ error: { message: 'busy' } }, { status: 503 }) : Response.json({ error: { code: 'session_moved' } }, { status: 409, headers: { [MOVED_TO_HEADER]: SESSION_EU } })),
    });
    const retried = await call('/v1/chat/completions', { json: chat() });
    expect(retried.headers.get(REGION_HEADER)).toBe('eu');
    const followed = await call('/v1/chat/completions', { json: chat({ session_id: SESSION_US }) });
    expect(followed.status).toBe(200);
    expect(followed.headers.get(REGION_HEADER)).toBe('eu');
    expect(JSON.parse(seen.at(-1)!.body).session_id).toBe(SESSION_EU);
    const read = await call(`/v1/sessions/${SESSION_US}`);
    expect(read.headers.get(REGION_HEADER)).toBe('eu');
    expect(seen.at(-1)!.path).toBe(`/v1/sessions/${SESSION_EU}`);
    // The same id percent-encoded by the client is followed too.
    const encoded = await call(`/v1/sessions/${SESSION_US.replaceAll('_', '%5F')}`);
    expect(encoded.headers.get(REGION_HEADER)).toBe('eu');
    expect(seen.at(-1)!.path).toBe(`/v1/sessions/${SESSION_EU}`);
  });

  it('tries stateless generation elsewhere when a region cannot be reached, but never what stores something', async () => {
    const { call, seen } = edge({ us: () => 'unreachable' });
    const chatted = await call('/v1/chat/completions', { json: chat() });
    expect(chatted.headers.get(REGION_HEADER)).toBe('eu');
    const { call: callAgain, seen: seenAgain } = edge({ us: () => 'unreachable' });
    const created = await callAgain('/v1/sessions', { json: { model: 'tiny' } });
    expect(created.status).toBe(503); // us may have made it before failing: not made twice
    expect(seenAgain.map((entry) => entry.region)).toEqual(['us']);
    expect(seen.map((entry) => entry.region)).toEqual(['us', 'eu']);
  });

  it('sends a session to its backup once home stops answering /readyz (hung, not refusing), and leaves a hung region out of the models', async () => {
    const models = { eu: (entry: Seen) => (entry.path === '/v1/models' ? Response.json({ object: 'list', data: [{ id: 'tiny' }] }) : Response.json({ ok: true })) };
    const { call, seen } = edge(models, new Set(['us']));
    const ready = await call('/readyz'); // reads every region's readiness: us gives no answer in time
    expect(((await ready.json()) as { regions: Record<string, string> }).regions.us).toBe('open');
    const read = await call(`/v1/sessions/${SESSION_US}`);
    expect(read.status).toBe(200);
    expect(read.headers.get(REGION_HEADER)).toBe('eu');
    expect(seen.map(({ region, failover }) => ({ region, failover }))).toEqual([{ region: 'eu', failover: true }]);
    const listed = await call('/v1/models'); // us is skipped while its breaker is open; eu answers
    expect(((await listed.json()) as { data: Array<{ id: string }> }).data.map((model) => model.id)).toEqual(['tiny']);
  });

  it('sends nothing that only home can do (delete, fork, a move to it) to a home a hung /readyz marked: 503 at once', async () => {
    const { call, seen } = edge({}, new Set(['us']));
    await call('/readyz'); // us gives no answer in time: open
    const deleted = await call(`/v1/sessions/${SESSION_US}`, { method: 'DELETE' });
    expect(deleted.status).toBe(503);
    expect(((await deleted.json()) as { error: { code: string } }).error.code).toBe('region_unavailable');
    expect((await call(`/v1/sessions/${SESSION_US}/fork`, { json: {} })).status).toBe(503);
    expect((await call(`/v1/sessions/${SESSION_EU}/move`, { json: { region: 'us' } })).status).toBe(503);
    expect((await call('/v1/batches/batch_us_0123456789abcdef0123456789abcdef')).status).toBe(503);
    expect(seen).toEqual([]);
  });

  it('still asks a home that only refused a connection once, for what only it can serve', async () => {
    let down = true;
    const { call, seen } = edge({ us: () => (down ? 'unreachable' : Response.json({ ok: true })) });
    expect((await call('/v1/batches/batch_us_0123456789abcdef0123456789abcdef')).status).toBe(503); // refused: the breaker opens
    down = false;
    expect((await call('/v1/batches/batch_us_0123456789abcdef0123456789abcdef')).status).toBe(200); // asked again, and it answers
    expect(seen.map((entry) => entry.region)).toEqual(['us', 'us']);
  });

  it('never sends new work to a region whose breaker a hung /readyz opened, even when the usable region refuses it', async () => {
    const { call, seen } = edge({ eu: () => Response.json({ error: { message: 'busy', type: 'rate_limit_error', param: null, code: 'queue_full' } }, { status: 429 }) }, new Set(['us']));
    await call('/readyz'); // us gives no answer in time: open
    const refused = await call('/v1/chat/completions', { json: chat(), headers: { 'x-bamba-prefer-region': 'us' } }); // would hang for ever at us
    expect(refused.status).toBe(429);
    expect(seen.map((entry) => entry.region)).toEqual(['eu']);
  });

  it('waits for new readings after a quiet spell, so a region that hung meanwhile gets nothing', async () => {
    let now = Date.now();
    const hung = new Set<string>();
    const { call, seen } = edge({}, hung, () => now);
    const preferUs = { 'x-bamba-prefer-region': 'us' };
    // A new isolate's first request: it waits for the first readings (us is ready), then goes there.
    expect((await call('/v1/chat/completions', { json: chat(), headers: preferUs })).headers.get(REGION_HEADER)).toBe('us');
    hung.add('us');
    now += 60_000; // quiet: nobody read us while it hung
    const answer = await call('/v1/chat/completions', { json: chat(), headers: preferUs }); // would wait for ever at us
    expect(answer.headers.get(REGION_HEADER)).toBe('eu');
    expect(seen.map((entry) => entry.region)).toEqual(['us', 'eu']);
  });

  it('takes a 502 from in front of a region as the region being down', async () => {
    const { call } = edge({ us: () => new Response('bad gateway', { status: 502 }) });
    const turn = await call('/v1/chat/completions', { json: chat({ session_id: SESSION_US }) });
    expect(turn.headers.get(REGION_HEADER)).toBe('eu');
  });

  it('lists the models of every reachable region once', async () => {
    const models = (names: string[]) => () => Response.json({ object: 'list', data: names.map((id) => ({ id, object: 'model' })) });
    const { call } = edge({ us: models(['tiny', 'small']), eu: models(['tiny']) });
    const list = (await (await call('/v1/models')).json()) as { data: Array<{ id: string }> };
    expect(list.data.map((model) => model.id).sort()).toEqual(['small', 'tiny']);
    expect(await (await call('/v1/models/small')).json()).toEqual({ id: 'small', object: 'model' });
    const missing = await call('/v1/models/large');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
  });

  it('lists batches from every region as one list, and pages on from an id of either region', async () => {
    const BATCH_US = `batch_us_${'1'.repeat(32)}`;
    const BATCH_EU = `batch_eu_${'2'.repeat(32)}`;
    const batch = (id: string, created: number) => ({ id, object: 'batch', created_at: created });
    const region = (items: ReturnType<typeof batch>[]) => (request: Seen) => {
      const url = new URL(request.path, 'http://region');
      const single = items.find((item) => url.pathname === `/v1/batches/${item.id}`);
      if (single) return Response.json(single);
      const before = Number(url.searchParams.get('created_before') ?? Infinity);
      const after = url.searchParams.get('after');
      const from = after ? items.findIndex((item) => item.id === after) + 1 : 0;
      const data = items.slice(from).filter((item) => item.created_at < before);
      return Response.json({ object: 'list', data, has_more: false });
    };
    const { call, seen } = edge({ us: region([batch(BATCH_US, 200)]), eu: region([batch(BATCH_EU, 300)]) });
    const all = (await (await call('/v1/batches?limit=1')).json()) as { data: Array<{ id: string }>; has_more: boolean; last_id: string };
    expect(all).toMatchObject({ data: [{ id: BATCH_EU }], has_more: true, last_id: BATCH_EU });
    const next = (await (await call(`/v1/batches?limit=1&after=${BATCH_EU}`)).json()) as { data: Array<{ id: string }>; has_more: boolean };
    expect(next).toMatchObject({ data: [{ id: BATCH_US }], has_more: false });
    // The cursor's own region continued after it; the other was asked by time (newest first, us's items of the cursor's second come after eu's).
    expect(seen.slice(-3).map(({ region, path }) => `${region} ${path}`).sort()).toEqual([
      `eu /v1/batches/${BATCH_EU}`,
      `eu /v1/batches?limit=1&after=${BATCH_EU}`,
      'us /v1/batches?limit=1&created_before=301',
    ]);
    // The client's own window is kept and narrowed by the cursor's (the tighter bound wins).
    await call(`/v1/batches?limit=1&created_before=250&after=${BATCH_EU}`);
    await call(`/v1/batches?limit=1&created_before=400&created_after=100&after=${BATCH_EU}`);
    expect(seen.filter(({ path }) => path.startsWith('/v1/batches?')).slice(-4).map(({ region, path }) => `${region} ${path}`).sort()).toEqual([
      `eu /v1/batches?limit=1&created_before=250&after=${BATCH_EU}`,
      `eu /v1/batches?limit=1&created_before=400&created_after=100&after=${BATCH_EU}`,
      'us /v1/batches?limit=1&created_before=250',
      'us /v1/batches?limit=1&created_before=301&created_after=100',
    ]);
    // A region that cannot answer makes the merged list a 503 (a page without its part would skip
    // its items for good); that region's own list is still there for the asking.
    const down = edge({ us: () => 'unreachable', eu: region([batch(BATCH_EU, 300)]) });
    const refused = await down.call('/v1/batches');
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'region_unavailable', message: expect.stringContaining('region us') });
    const alone = await down.call('/v1/batches', { headers: { 'x-bamba-prefer-region': 'eu' } });
    expect(alone.headers.get(REGION_HEADER)).toBe('eu');
    expect(((await alone.json()) as { data: Array<{ id: string }> }).data.map((item) => item.id)).toEqual([BATCH_EU]);
    // An id no region here made starts no page; a bad window is refused at the edge.
    expect(((await (await call(`/v1/batches?after=batch_ap_${'3'.repeat(32)}`)).json()) as { data: unknown[] }).data).toEqual([]);
    expect((await call('/v1/batches?created_before=yesterday')).status).toBe(400);
  });

  it('streams a region answer through as it comes', async () => {
    let push: (text: string) => void = () => {};
    let close: () => void = () => {};
    const body = new ReadableStream<Uint8Array>({ start(controller) { push = (text) => controller.enqueue(new TextEncoder().encode(text)); close = () => controller.close(); } });
    const { call } = edge({ us: () => new Response(body, { headers: { 'content-type': 'text/event-stream' } }) });
    const response = await call('/v1/chat/completions', { json: chat({ stream: true }) });
    const reader = response.body!.getReader();
    push('data: one\n\n');
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: one\n\n'); // before the region finished
    push('data: [DONE]\n\n');
    push(SSE_END_COMMENT); // the region ended it on purpose
    close();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: [DONE]\n\n');
    expect(new TextDecoder().decode((await reader.read()).value)).toBe(SSE_END_COMMENT);
    expect((await reader.read()).done).toBe(true); // nothing added
  });

  it('ends a region stream that stops without its end mark (the region gateway died) with a region_lost error event in the route\'s shape', async () => {
    const cutAfter = (text: string, how: 'end' | 'error') => () => {
      let sent = false;
      return new Response(new ReadableStream<Uint8Array>({
        pull(controller) {
          if (!sent) {
            sent = true;
            controller.enqueue(new TextEncoder().encode(text));
          } else if (how === 'end') controller.close();
          else controller.error(new Error('connection reset'));
        },
      }), { headers: { 'content-type': 'text/event-stream' } });
    };
    const events = async (response: Response) => (await response.text()).split('\n\n').filter(Boolean);
    for (const how of ['end', 'error'] as const) {
      const chatCut = await edge({ us: cutAfter('data: {"choices":[]}\n\n', how) }).call('/v1/chat/completions', { json: chat({ stream: true }) });
      const chatEvents = await events(chatCut);
      expect(chatEvents).toHaveLength(2);
      expect(JSON.parse(chatEvents[1]!.slice('data: '.length))).toEqual({ error: { message: expect.stringContaining("region 'us' stopped this stream before its end"), type: 'service_unavailable_error', param: null, code: 'region_lost' } });
      const responseCut = await edge({ us: cutAfter('event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\nevent: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4}\n\n', how) })
        .call('/v1/responses', { json: { model: 'tiny', input: 'hi', stream: true } });
      const last = (await events(responseCut)).at(-1)!.split('\n');
      expect(last[0]).toBe('event: error');
      expect(JSON.parse(last[1]!.slice('data: '.length))).toMatchObject({ type: 'error', code: 'region_lost', param: null, sequence_number: 5 });
      // A resumed stream cut before its first event: numbered after where it resumed.
      const resumedCut = await edge({ us: cutAfter(': resumed\n\n', how) }).call(`/v1/responses/resp_us_${'d'.repeat(32)}?stream=true&starting_after=7`);
      expect((await events(resumedCut)).at(-1)).toContain('"sequence_number":8');
    }
    // A stream that reached its final event is complete without the end mark (a region from before
    // it, or a gateway that died right after): nothing is added.
    for (const [path, finalEvent] of [['/v1/chat/completions', 'data: [DONE]\n\n'], ['/v1/chat/completions', 'data: {"error":{"message":"x","type":"server_error","param":null,"code":"node_failed"}}\n\n'], ['/v1/responses', 'event: response.completed\ndata: {"type":"response.completed","sequence_number":9}\n\n']] as const) {
      const complete = await edge({ us: cutAfter(`data: {"choices":[]}\n\n${finalEvent}`, 'end') }).call(path, { json: path === '/v1/responses' ? { model: 'tiny', input: 'hi', stream: true } : chat({ stream: true }) });
      expect(await complete.text()).toBe(`data: {"choices":[]}\n\n${finalEvent}`);
    }
  });
});
