/**
 * Capacity answers: no gpu-node alive → 503; queue full → 429 with Retry-After; a request
 * past its deadline → 504. The stack keeps serving afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig, silentLogger, startGateway } from '@bamba/gateway';
import { MODEL_ID, postJson, startTestStack, type TestStack } from './support/stack.js';

const long = (content: string, stream = false) => ({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: 900, temperature: 0, stream });

describe('no gpu-node alive', () => {
  let stack: TestStack;
  beforeAll(async () => { stack = await startTestStack({ gpuNodes: 0 }); });
  afterAll(async () => stack?.stop());

  it('answers 503 and reports not ready', async () => {
    const response = await postJson(`${stack.url}/v1/chat/completions`, long('hi'));
    expect(response.status).toBe(503);
    expect(response.json.error).toMatchObject({ type: 'service_unavailable_error', code: 'no_gpu_node' });
    expect(response.headers.get('retry-after')).toBe('2');
    const session = await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID });
    expect(session.status).toBe(503);
    expect(session.headers.get('retry-after')).toBe('2');
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
  });

  it('serves once a gpu-node comes up', async () => {
    await stack.startNode('late-node');
    const response = await postJson(`${stack.url}/v1/chat/completions`, { ...long('hi'), max_tokens: 3 });
    expect(response.status).toBe(200);
  });
});

describe('a full queue and a passed deadline', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ nodeEnv: { BAMBA_SLOTS: '1', BAMBA_CONTEXT_SIZE: '4096' }, gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: '2' } });
  });
  afterAll(async () => stack?.stop());


  it('answers 429 with Retry-After once the queue holds its limit', async () => {
    // One long request holds the single slot (its stream stays open); two wait; a fourth is refused.
    const running = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...long('running', true), max_tokens: 4000 }) });
    const reader = running.body!.getReader();
    await reader.read();
    // A request's n choices are n jobs: three never fit in a queue of two (no use retrying: 400),
    // and none is queued.
    const never = await postJson(`${stack.url}/v1/chat/completions`, { ...long('three answers'), max_tokens: 3, n: 3 });
    expect(never.status).toBe(400);
    expect(never.json.error).toMatchObject({ type: 'invalid_request_error', param: 'n', message: expect.stringMatching(/BAMBA_QUEUE_MAX_WAITING/) });
    expect(await stack.queueDepth()).toBe(0);
    const waiting = [postJson(`${stack.url}/v1/chat/completions`, { ...long('waiting one'), max_tokens: 3 })];
    await stack.waitFor('one queued request', async () => ((await stack.queueDepth()) === 1 ? true : undefined));
    // Two more jobs do not fit beside it (one would): 429, and nothing is queued.
    const tooMany = await postJson(`${stack.url}/v1/chat/completions`, { ...long('two answers'), max_tokens: 3, n: 2 });
    expect(tooMany.status).toBe(429);
    expect(tooMany.json.error.message).toMatch(/2 choices asked for/);
    expect(await stack.queueDepth()).toBe(1);
    waiting.push(postJson(`${stack.url}/v1/chat/completions`, { ...long('waiting two'), max_tokens: 3 }));
    await stack.waitFor('two queued requests', async () => ((await stack.queueDepth()) === 2 ? true : undefined));
    const refused = await postJson(`${stack.url}/v1/chat/completions`, long('one too many'));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
    await reader.cancel(); // hang up: the running request is cancelled and the queue drains
    for (const result of await Promise.all(waiting)) expect(result.status).toBe(200);
  });

  it('answers 504 when the deadline passes before the request finishes, and stops the work', async () => {
    const impatient = await startGateway(parseGatewayConfig({ ...stack.gatewayEnv, PORT: '0', BAMBA_REQUEST_DEADLINE_MS: '300' }), { logger: silentLogger });
    const streamsBefore = new Set(await stack.streamKeys());
    try {
      // 2000 tokens take seconds on this model: far past a 300 ms deadline.
      const late = await postJson(`${impatient.url}/v1/chat/completions`, { ...long('too slow'), max_tokens: 2000 });
      expect(late.status).toBe(504);
      expect(late.json.error).toMatchObject({ type: 'timeout_error', code: 'deadline_exceeded' });
    } finally {
      await impatient.close();
    }
    await stack.waitFor('the abandoned job to stop', async () => ((await stack.nodeStatuses())[0]?.busySlots === 0 ? true : undefined));
    // The work stopped early (cancelled by the gateway, or stopped by the node at the deadline):
    // it never finished, and far fewer than the 2000 tokens were generated.
    const [stream] = (await stack.streamKeys()).filter((key) => !streamsBefore.has(key));
    const events = await stack.streamEvents(stream!.split(':stream:')[1]!);
    expect(events.some((event) => event.type === 'generation-start')).toBe(true);
    expect(events.some((event) => event.type === 'generation-end')).toBe(false);
    expect(events.reduce((sum, event) => sum + (event.type === 'token-delta' ? event.tokens : 0), 0)).toBeLessThan(1000);
    const after = await postJson(`${stack.url}/v1/chat/completions`, { ...long('after'), max_tokens: 3 });
    expect(after.status).toBe(200);
  });
});
