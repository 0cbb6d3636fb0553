/**
 * The reliability campaigns behind `npm run chaos` (and their quick versions in `npm test`):
 * gpu-nodes killed and stopped under traffic, Redis killed and restarted on its append-only
 * file, thousands of generated bad requests, hundreds of misbehaving SSE clients, and every
 * route tried with another tenant's ids. Each returns figures with their targets.
 */
import { randomBytes } from 'node:crypto';
import type { ChatTemplateMessage, Engine } from '@bamba/gpu-node';
import { SSE_END_COMMENT } from '@bamba/shared';
import fc from 'fast-check';
import { directGreedy, startDirectEngine } from '../support/direct-engine.js';
import { MODEL_ID, postJson, startTestStack, type TestStack } from '../support/stack.js';
import { chat, sessionClient, statelessClient, type Outcome } from './workload.js';

export interface Figure {
  metric: string;
  value: number | string;
  target: string;
  /** Whether the value meets the target (figures without a target are reported, not judged). */
  ok: boolean;
}

export interface CampaignResult {
  name: string;
  /** What was done, in a sentence. */
  setup: string;
  figures: Figure[];
  seconds: number;
}

const zero = (metric: string, value: number): Figure => ({ metric, value, target: '0', ok: value === 0 });
const info = (metric: string, value: number | string): Figure => ({ metric, value, target: '—', ok: true });
const percent = (part: number, whole: number) => (whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (low: number, high: number) => low + Math.random() * (high - low);

/** Where committed conversations and acknowledged answers disagree, and where answers differ from a replay. */
async function checkConversations(stack: TestStack, engine: Engine, outcomes: Outcome[], maxTokens: number) {
  const acknowledged = outcomes.filter((outcome) => outcome.text !== null);
  let lost = 0;
  let differentFromReplay = 0;
  let committedTurns = 0;
  const sessions = new Map<string, Outcome[]>();
  for (const outcome of acknowledged.filter((candidate) => candidate.kind === 'turn')) sessions.set(outcome.sessionId!, [...(sessions.get(outcome.sessionId!) ?? []), outcome]);
  for (const [sessionId, turns] of sessions) {
    const transcript = (await stack.redis.lrange(stack.keys.sessionTranscript(sessionId), 0, -1)).map((message) => JSON.parse(message) as ChatTemplateMessage);
    for (const turn of turns) {
      const at = transcript.findIndex((message, index) => message.role === 'user' && message.content === turn.content && transcript[index + 1]?.content === turn.text);
      if (at === -1) lost++;
    }
    for (let index = 0; index + 1 < transcript.length; index += 2) {
      committedTurns++;
      const answer = await directGreedy(engine, transcript.slice(0, index + 1), maxTokens);
      if (answer !== transcript[index + 1]!.content) differentFromReplay++;
    }
  }
  for (const outcome of acknowledged.filter((candidate) => candidate.kind === 'stateless')) {
    const texts = outcome.choiceTexts ?? [outcome.text];
    if (outcome.prompts) {
      // Several prompts: choice i is prompt i's replay (the raw prompt, as legacy completions take it).
      for (const [index, prompt] of outcome.prompts.entries()) if ((await directGreedy(engine, prompt, maxTokens)) !== texts[index]) differentFromReplay++;
      continue;
    }
    const replay = await directGreedy(engine, outcome.messages!, maxTokens);
    // Each answer of a request for several (choices of greedy decoding are all the replay's).
    for (const text of texts) if (replay !== text) differentFromReplay++;
  }
  let byRetry = 0;
  for (const outcome of acknowledged) {
    const attempts = outcome.requestId ? (await stack.streamEvents(outcome.requestId)).filter((event) => event.type === 'generation-start').length : 1;
    if (attempts > 1) byRetry++;
  }
  return { acknowledged: acknowledged.length, lost, differentFromReplay, committedTurns, byRetry, severalPrompts: acknowledged.filter((outcome) => outcome.prompts).length };
}

function tally(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes.filter((candidate) => candidate.text === null)) counts.set(outcome.errorCode ?? String(outcome.status), (counts.get(outcome.errorCode ?? String(outcome.status)) ?? 0) + 1);
  return [...counts].map(([code, count]) => `${code} ×${count}`).join(', ') || 'none';
}

/**
 * gpu-nodes SIGKILLed (or SIGTERMed) at random points while clients run session turns and
 * stateless requests, two nodes serving (one slot each, so every answer can be compared with a
 * replay token for token: batched decode steps round differently from lone ones).
 */
export async function nodeFaults(signal: 'SIGKILL' | 'SIGTERM', faults: number): Promise<CampaignResult> {
  const started = Date.now();
  const maxTokens = 24;
  const stack = await startTestStack({
    gpuNodes: 2,
    nodeEnv: { BAMBA_SLOTS: '1', BAMBA_CONTEXT_SIZE: '2048', BAMBA_DRAIN_TIMEOUT_MS: '1000' },
    gatewayEnv: { BAMBA_JOB_ATTEMPTS: '8', BAMBA_REQUEST_DEADLINE_MS: '60000', BAMBA_QUEUE_MAX_WAITING: '1000' },
  });
  const engine = await startDirectEngine({ slots: 1, contextSize: 2048 });
  try {
    const outcomes: Outcome[] = [];
    let stopping = false;
    const options = { maxTokens, clientTimeoutMs: 90_000, turnsPerSession: 12 };
    const clients = [
      ...Array.from({ length: 3 }, (_, index) => sessionClient(stack, index, () => stopping, outcomes, options)),
      statelessClient(stack, 0, () => stopping, outcomes, options),
    ];
    let drained = 0;
    for (let fault = 0; fault < faults; fault++) {
      await sleep(between(200, 1200));
      const statuses = await stack.nodeStatuses();
      const target = statuses.find((status) => status.busySlots > 0 && stack.nodes.has(status.nodeId)) ?? statuses.find((status) => stack.nodes.has(status.nodeId));
      if (!target) continue;
      if (signal === 'SIGKILL') {
        stack.nodes.get(target.nodeId)!.kill('SIGKILL');
        stack.nodes.delete(target.nodeId);
      } else {
        await stack.stopNode(target.nodeId);
        if (target.busySlots > 0) drained++;
      }
      await stack.startNode(`${target.nodeId.split('-r')[0]}-r${fault}`);
    }
    await sleep(2000);
    stopping = true;
    await Promise.all(clients);
    const checked = await checkConversations(stack, engine, outcomes, maxTokens);
    const hung = outcomes.filter((outcome) => outcome.hung).length;
    return {
      name: signal === 'SIGKILL' ? 'gpu-node SIGKILL' : 'gpu-node SIGTERM',
      setup: `${faults} ${signal}s of a gpu-node (the busy one when there is one) at random points 0.2–1.2 s apart, a new node started after each; two nodes with one slot each; 3 clients running session turns (12 per session, every other one streaming) and 1 client sending stateless requests (every third for n = 2 answers, every fifth a legacy completion of 2 prompts, each answer checked against the replay); ${maxTokens} greedy tokens each.`,
      figures: [
        info('requests sent', outcomes.length),
        info('answered', checked.acknowledged),
        zero('committed turns lost (answered turns missing from their transcript)', checked.lost),
        zero('answers different from a stateless replay of their history', checked.differentFromReplay),
        info('committed session turns checked against a replay', checked.committedTurns),
        info('answered legacy completions of 2 prompts (each choice checked against its prompt\'s replay)', checked.severalPrompts),
        zero('clients left hanging', hung),
        zero('requests failed inside a gpu-node (engine_error, job_failed)', outcomes.filter((outcome) => ['engine_error', 'job_failed'].includes(outcome.errorCode ?? '')).length),
        info('answered requests completed by a retry', percent(checked.byRetry, checked.acknowledged)),
        info('errors the clients got', tally(outcomes)),
        ...(signal === 'SIGTERM' ? [info('stops that caught running work (drained or handed back)', drained)] : []),
      ],
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await engine.close();
    await stack.stop();
  }
}

/** Redis SIGKILLed under traffic and started again on its append-only file. */
export async function redisCrash(): Promise<CampaignResult> {
  const started = Date.now();
  const maxTokens = 24;
  const stack = await startTestStack({
    gpuNodes: 1,
    redisAppendOnly: true,
    nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '2048' },
    gatewayEnv: { BAMBA_JOB_ATTEMPTS: '8', BAMBA_REQUEST_DEADLINE_MS: '60000' },
  });
  try {
    const before: Outcome[] = [];
    const during: Outcome[] = [];
    let stopping = false;
    const options = { maxTokens, clientTimeoutMs: 90_000, turnsPerSession: 20 };
    const outcomes: Outcome[] = [];
    const clients = Array.from({ length: 3 }, (_, index) => sessionClient(stack, index, () => stopping, outcomes, options));
    await sleep(3000);
    before.push(...outcomes.filter((outcome) => outcome.text !== null));
    const crashAtMs = Date.now();
    await stack.crashRedis();
    const restartedAtMs = Date.now();
    // Serving again: a fresh request succeeds without restarting any gateway or gpu-node.
    let recoveredAtMs = 0;
    for (let attempt = 0; attempt < 600 && recoveredAtMs === 0; attempt++) {
      const probe = await chat(stack, { messages: [{ role: 'user', content: 'are you back?' }] }, false, options);
      if (probe.text !== null) recoveredAtMs = Date.now();
      else await sleep(100);
    }
    await sleep(3000);
    stopping = true;
    await Promise.all(clients);
    during.push(...outcomes.filter((outcome) => outcome.text === null));
    // Turns answered before the crash must all be in their transcripts after it.
    let lost = 0;
    for (const turn of before.filter((outcome) => outcome.kind === 'turn')) {
      const transcript = (await stack.redis.lrange(stack.keys.sessionTranscript(turn.sessionId!), 0, -1)).map((message) => JSON.parse(message) as ChatTemplateMessage);
      if (!transcript.some((message, index) => message.content === turn.content && transcript[index + 1]?.content === turn.text)) lost++;
    }
    const hung = outcomes.filter((outcome) => outcome.hung).length;
    return {
      name: 'Redis SIGKILL and restart',
      setup: 'Redis (append-only file on) SIGKILLed after 3 s of traffic from 3 session clients, then started again on the same port and file; gateway and gpu-node keep running.',
      figures: [
        info('turns answered before the crash', before.length),
        zero('of those, missing from their transcript afterwards', lost),
        zero('clients left hanging', hung),
        zero('requests failed inside the gpu-node (engine_error, job_failed)', during.filter((outcome) => ['engine_error', 'job_failed'].includes(outcome.errorCode ?? '')).length),
        info('requests that ended with an error around the crash', `${during.length} (${tally(during)})`),
        info('from restart to serving again (s)', recoveredAtMs ? ((recoveredAtMs - restartedAtMs) / 1000).toFixed(1) : 'never'),
        { metric: 'the stack serves again without a restart', value: recoveredAtMs ? 'yes' : 'no', target: 'yes', ok: recoveredAtMs > 0 },
        info('crash to restart (s)', ((restartedAtMs - crashAtMs) / 1000).toFixed(1)),
      ],
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

/** Lone surrogates replaced: a URL must be encodable (bodies keep them, to test the JSON path). */
const wellFormed = (value: string) => value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

const ROUTES = ['/v1/chat/completions', '/v1/completions', '/v1/sessions', '/v1/models', '/healthz', '/readyz', '/metrics', '/v1/responses', '/', '/status', '/status.json', '/assets/playground.js', '/v1', '/v1/sessions/{id}', '/v1/sessions/{id}/fork'];
const CONTROL_TEXT = '<|end_of_text|><|start_of_role|>system<|end_of_role|>';

/** Generated bad requests across every route: nothing answers 500 or above, nothing crashes. */
export async function badRequests(count: number): Promise<CampaignResult> {
  const started = Date.now();
  const maxBodyBytes = 262_144;
  const stack = await startTestStack({ gatewayProcess: true, gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: '1000', BAMBA_MAX_BODY_BYTES: String(maxBodyBytes) } });
  try {
    const ownSession = ((await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID })).json.id as string);
    const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constant(CONTROL_TEXT), fc.string({ minLength: 1, maxLength: 3 }).map((piece) => piece.repeat(100_000)), fc.constantFrom('', ' ', '\u0000', '\uD800', '💥'.repeat(100)));
    const id = fc.oneof(fc.constant(ownSession), fc.constant(`sess_${randomBytes(16).toString('hex')}`), text.map((value) => encodeURIComponent(wellFormed(value.slice(0, 200)))), fc.constantFrom('x%3Atranscript', '..%2F..', '%00', 'sess_', `${ownSession}%3Alock`));
    const validChat = { model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 };
    const mutated = fc.record({ base: fc.constantFrom<Record<string, unknown>>(validChat, { model: MODEL_ID, prompt: 'hi', max_tokens: 2 }, { model: MODEL_ID, system: 'x' }, { ...validChat, session_id: ownSession }), field: fc.constantFrom('model', 'messages', 'prompt', 'max_tokens', 'temperature', 'top_p', 'stop', 'stream', 'n', 'seed', 'session_id', 'metadata', 'system', 'logprobs', 'tools'), value: fc.oneof(fc.jsonValue(), text) })
      .map(({ base, field, value }) => JSON.stringify({ ...base, [field]: value, max_tokens: typeof base.max_tokens === 'number' && field !== 'max_tokens' ? 2 : value }));
    const body = fc.oneof(fc.jsonValue().map((value) => JSON.stringify(value)), mutated, text, fc.constant('{"model": '), fc.constant(''));
    const header = {
      contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/json; charset=utf-8', 'multipart/form-data; boundary=x', ''),
      authorization: fc.oneof(fc.constant(undefined), fc.string().map((value) => value.replace(/[^\x20-\x7e]/g, '')), fc.constant('Bearer ')),
    };
    // Mostly the real routes with their own methods (so validation is what gets exercised), some
    // of anything at all.
    const request = fc.oneof(
      { weight: 4, arbitrary: fc.record({ method: fc.constant('POST'), path: fc.constantFrom('/v1/chat/completions', '/v1/completions', '/v1/sessions'), id, body, ...header }) },
      { weight: 2, arbitrary: fc.record({ method: fc.constantFrom('GET', 'DELETE', 'POST'), path: fc.constantFrom('/v1/sessions/{id}', '/v1/sessions/{id}/fork'), id, body, ...header }) },
      { weight: 1, arbitrary: fc.record({ method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'), path: fc.oneof(fc.constantFrom(...ROUTES), text.map((value) => `/v1/${encodeURIComponent(wellFormed(value.slice(0, 100)))}`)), id, body, ...header }) },
    );
    const samples = fc.sample(request, { numRuns: count, seed: 20261130 });
    let serverErrors = 0;
    let cutUploads = 0;
    let badShapes = 0;
    const statuses = new Map<number, number>();
    const examples: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < samples.length) {
        const sample = samples[next++]!;
        const path = sample.path.replace('{id}', sample.id);
        const headers: Record<string, string> = {};
        if (sample.contentType) headers['content-type'] = sample.contentType;
        if (sample.authorization !== undefined) headers.authorization = sample.authorization;
        let status = 0;
        let payload = '';
        try {
          const response = await fetch(`${stack.url}${path}`, { method: sample.method, headers, ...(['GET', 'HEAD'].includes(sample.method) ? {} : { body: sample.body }) });
          status = response.status;
          payload = await response.text();
        } catch (error) {
          const cause = String((error as { cause?: unknown }).cause);
          // A body over the limit whose client saw a broken connection instead of its 413: the
          // gateway reads such bodies to their end before answering (body-limit.ts), so none.
          if (Buffer.byteLength(sample.body) > maxBodyBytes && /EPIPE|ECONNRESET/.test(cause)) {
            cutUploads++;
            continue;
          }
          status = 599;
          payload = `${(error as Error).message}: ${cause}`;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) {
          serverErrors++;
          if (examples.length < 5) examples.push(`${sample.method} ${path.slice(0, 80)} (${sample.body.length} chars) → ${status} ${status === 599 ? payload.slice(0, 80) : ""}`);
        } else if (status >= 400 && sample.method !== 'HEAD') {
          let shaped = false;
          try {
            const error = (JSON.parse(payload) as { error?: Record<string, unknown> }).error;
            shaped = !!error && typeof error.message === 'string' && typeof error.type === 'string' && (error.param === null || typeof error.param === 'string') && (error.code === null || typeof error.code === 'string');
          } catch { /* not JSON */ }
          if (!shaped) {
            badShapes++;
            if (examples.length < 5) examples.push(`${sample.method} ${path.slice(0, 80)} → ${status} ${payload.slice(0, 80)}`);
          }
        }
      }
    }));
    const gatewayAlive = stack.gatewayPid !== null && (() => { try { process.kill(stack.gatewayPid!, 0); return true; } catch { return false; } })();
    const nodeAlive = [...stack.nodes.values()].every((child) => child.exitCode === null && child.signalCode === null);
    const healthy = (await fetch(`${stack.url}/readyz`)).status === 200 && (await postJson(`${stack.url}/v1/chat/completions`, validChat)).status === 200;
    return {
      name: 'generated bad requests',
      setup: `${count} requests generated with fast-check (seed 20261130) across every route and method: random JSON, valid requests with one field replaced by a random value, huge and odd strings, unicode, control-token text, odd ids and headers; 8 at a time.`,
      figures: [
        zero('answers of 500 or above', serverErrors),
        zero('errors not in OpenAI’s shape', badShapes),
        zero('crashed processes', (gatewayAlive ? 0 : 1) + (nodeAlive ? 0 : 1)),
        { metric: 'the stack healthy after (readyz 200, a good request 200)', value: healthy ? 'yes' : 'no', target: 'yes', ok: healthy },
        zero('bodies over the limit cut while still being sent (the client saw EPIPE or ECONNRESET, not the 413)', cutUploads),
        info('statuses', [...statuses].sort(([left], [right]) => left - right).map(([status, seen]) => `${status} ×${seen}`).join(', ')),
        ...(examples.length > 0 ? [info('first failures', examples.join('; '))] : []),
      ],
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

/** Many SSE clients at once, some reading slowly, some hanging up: only 429s, slots all freed, every stream with a TTL. */
export async function sseClients(count: number): Promise<CampaignResult> {
  const started = Date.now();
  const queueLimit = Math.floor(count / 2);
  const stack = await startTestStack({ gpuNodes: 2, nodeEnv: { BAMBA_SLOTS: '4' }, gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: String(queueLimit) } });
  try {
    let otherErrors = 0;
    let refused = 0;
    let completed = 0;
    let hungUp = 0;
    const examples: string[] = [];
    await Promise.all(Array.from({ length: count }, async (_, index) => {
      const behaviour = index % 4 === 0 ? 'slow' : index % 4 === 1 ? 'hang-up' : 'normal';
      const controller = new AbortController();
      const response = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST', signal: controller.signal, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: `sse client ${index}` }], max_tokens: 64, temperature: 0, stream: true }),
      }).catch(() => null);
      if (!response) { otherErrors++; return; }
      if (response.status === 429) { refused++; await response.text(); return; }
      if (response.status !== 200) { otherErrors++; if (examples.length < 5) examples.push(`${response.status} ${(await response.text()).slice(0, 100)}`); return; }
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let body = '';
      for (let chunk = 0; ; chunk++) {
        if (behaviour === 'hang-up' && chunk === 2) { controller.abort(); hungUp++; return; }
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) break;
        body += decoder.decode(value, { stream: true });
        if (behaviour === 'slow') await sleep(between(20, 120));
      }
      // Complete: [DONE] is the last event, then the gateway's end mark.
      if (body.includes('"error"') || !body.endsWith(`data: [DONE]\n\n${SSE_END_COMMENT}`)) {
        otherErrors++;
        if (examples.length < 5) examples.push(body.slice(-160));
      } else {
        completed++;
      }
    }));
    let busySlots = Number.POSITIVE_INFINITY;
    for (let attempt = 0; attempt < 600 && busySlots > 0; attempt++) {
      busySlots = (await stack.nodeStatuses()).reduce((sum, status) => sum + status.busySlots, 0);
      if (busySlots > 0) await sleep(100);
    }
    const keys = await stack.streamKeys();
    let withoutTtl = 0;
    for (const key of keys) if ((await stack.redis.ttl(key)) < 0) withoutTtl++;
    return {
      name: `${count} concurrent SSE clients`,
      setup: `${count} streaming requests at once (64 tokens) to two gpu-nodes with 4 slots each and a queue limit of ${queueLimit}: a quarter read slowly (20–120 ms per read), a quarter hang up after two reads, the rest read normally.`,
      figures: [
        zero('errors other than 429 beyond the queue limit', otherErrors),
        info('completed streams / 429s / hang-ups', `${completed} / ${refused} / ${hungUp}`),
        zero('slots still busy a minute after the clients are done', busySlots),
        zero('request streams without a TTL', withoutTtl),
        info('request streams in Redis afterwards (each expiring)', keys.length),
        ...(examples.length > 0 ? [info('first failures', examples.join('; '))] : []),
      ],
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

/** Every session route with another tenant's ids answers exactly like an unknown id. */
export async function tenantMatrix(): Promise<CampaignResult> {
  const started = Date.now();
  const stack = await startTestStack({ gatewayEnv: { BAMBA_API_KEYS: 'key-a:tenant-a,key-b:tenant-b' } });
  try {
    const as = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
    const owned = (await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID, system: 'private' }, as('key-a'))).json.id as string;
    await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: owned, messages: [{ role: 'user', content: 'secret' }], max_tokens: 4 }, as('key-a'));
    const forked = (await postJson(`${stack.url}/v1/sessions/${owned}/fork`, {}, as('key-a'))).json.id as string;
    const unknown = `sess_${randomBytes(16).toString('hex')}`;
    const routes: Array<[string, (id: string) => Promise<{ status: number; body: string }>]> = [
      ['GET /v1/sessions/{id}', async (id) => { const response = await fetch(`${stack.url}/v1/sessions/${id}`, { headers: as('key-b') }); return { status: response.status, body: await response.text() }; }],
      ['DELETE /v1/sessions/{id}', async (id) => { const response = await fetch(`${stack.url}/v1/sessions/${id}`, { method: 'DELETE', headers: as('key-b') }); return { status: response.status, body: await response.text() }; }],
      ['POST /v1/sessions/{id}/fork', async (id) => { const response = await postJson(`${stack.url}/v1/sessions/${id}/fork`, {}, as('key-b')); return { status: response.status, body: response.text }; }],
      ['POST /v1/chat/completions with session_id', async (id) => { const response = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: id, messages: [{ role: 'user', content: 'let me in' }], max_tokens: 4 }, as('key-b')); return { status: response.status, body: response.text }; }],
    ];
    let differing = 0;
    const examples: string[] = [];
    for (const [route, call] of routes) {
      for (const foreign of [owned, forked]) {
        const theirs = await call(foreign);
        const nobody = await call(unknown);
        // Same status, same error, same text once the id itself is taken out.
        if (theirs.status !== 404 || theirs.status !== nobody.status || theirs.body.split(foreign).join('ID') !== nobody.body.split(unknown).join('ID')) {
          differing++;
          examples.push(`${route}: ${theirs.status} vs ${nobody.status}`);
        }
      }
    }
    const untouched = (await fetch(`${stack.url}/v1/sessions/${owned}`, { headers: as('key-a') }).then((response) => response.json() as Promise<{ turns: number }>)).turns === 1;
    return {
      name: 'tenant matrix',
      setup: 'Tenant B calls every session route with tenant A’s session and fork ids, and with an unknown id of the same form.',
      figures: [
        zero('routes where another tenant’s id answers differently from an unknown id', differing),
        { metric: 'tenant A’s session unchanged', value: untouched ? 'yes' : 'no', target: 'yes', ok: untouched },
        ...(examples.length > 0 ? [info('differences', examples.join('; '))] : []),
      ],
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

/** Every campaign, at full size or quick. */
export async function runCampaigns(quick: boolean, progress: (message: string) => void = () => {}): Promise<CampaignResult[]> {
  const results: CampaignResult[] = [];
  const plan: Array<[string, () => Promise<CampaignResult>]> = [
    ['gpu-node SIGKILLs', () => nodeFaults('SIGKILL', quick ? 4 : 100)],
    ['gpu-node SIGTERMs', () => nodeFaults('SIGTERM', quick ? 2 : 20)],
    ['Redis crash', () => redisCrash()],
    ['bad requests', () => badRequests(quick ? 300 : 10_000)],
    ['SSE clients', () => sseClients(quick ? 24 : 200)],
    ['tenant matrix', () => tenantMatrix()],
  ];
  for (const [index, [name, run]] of plan.entries()) {
    progress(`[${index + 1}/${plan.length}] ${name}`);
    results.push(await run());
  }
  return results;
}
