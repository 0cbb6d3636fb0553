/**
 * The edges of the service: ids in URLs are validated like body ids, /metrics can want a
 * token, a gateway will not serve the network without API keys unless told to, Redis going away
 * is a 503 with Retry-After (and coming back is served without a restart), and request streams
 * always carry a TTL.
 */
import { spawnSync } from 'node:child_process';
import { parseGatewayConfig } from '@bamba/gateway';
import { startLocalRedis, type LocalRedis } from '@bamba/cli/local-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, startTestStack, type TestStack } from './support/stack.js';

describe('ids in URLs, /metrics, listening without keys', () => {
  let stack: TestStack;
  beforeAll(async () => { stack = await startTestStack({ gatewayEnv: { BAMBA_METRICS_TOKEN: 'scrape-me' } }); });
  afterAll(async () => stack?.stop());

  it('answers 404 (never 500) for session ids that are not ids, whatever they spell in Redis', async () => {
    for (const id of ['x%3Atranscript', 'sess_nope', '..%2F..%2Fetc', 'sess_0000000000000000000000000000000g', `sess_${'0'.repeat(32)}%3Alock`]) {
      const read = await fetch(`${stack.url}/v1/sessions/${id}`);
      expect(read.status, id).toBe(404);
      expect(((await read.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', code: 'session_not_found' });
      expect((await postJson(`${stack.url}/v1/sessions/${id}/fork`, {})).status, id).toBe(404);
      expect((await fetch(`${stack.url}/v1/sessions/${id}`, { method: 'DELETE' })).status, id).toBe(404);
    }
  });

  it('wants the metrics token when one is configured', async () => {
    expect((await fetch(`${stack.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${stack.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const scraped = await fetch(`${stack.url}/metrics`, { headers: { authorization: 'Bearer scrape-me' } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toMatch(/^bamba_requests_total\{/m);
  });

  it('refuses to listen beyond loopback without API keys unless BAMBA_ALLOW_NO_AUTH says so', () => {
    const base = { REDIS_URL: 'redis://127.0.0.1:1' };
    expect(() => parseGatewayConfig({ ...base, BAMBA_HOST: '0.0.0.0' })).toThrow(/BAMBA_API_KEYS/);
    expect(parseGatewayConfig({ ...base, BAMBA_HOST: '0.0.0.0', BAMBA_ALLOW_NO_AUTH: 'true' }).host).toBe('0.0.0.0');
    expect(parseGatewayConfig({ ...base, BAMBA_HOST: '0.0.0.0', BAMBA_API_KEYS: 'k:tenant' }).host).toBe('0.0.0.0');
    expect(parseGatewayConfig(base).host).toBe('127.0.0.1');
  });

  it('gives every request stream a TTL from its first write, finished or cancelled', async () => {
    const done = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: 'user', content: 'ttl' }], max_tokens: 4, temperature: 0 });
    expect(done.status).toBe(200);
    const controller = new AbortController();
    const cancelled = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, signal: controller.signal, body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'cut me off' }], max_tokens: 900, temperature: 0, stream: true }) });
    await cancelled.body!.getReader().read();
    controller.abort();
    await stack.waitFor('the cancelled run to stop', async () => ((await stack.nodeStatuses())[0]?.busySlots === 0 ? true : undefined));
    const keys = await stack.streamKeys();
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const key of keys) expect(await stack.redis.ttl(key), key).toBeGreaterThan(0);
  });
});

describe('the region’s Redis goes away and comes back', () => {
  let stack: TestStack;
  let restarted: LocalRedis | null = null;
  beforeAll(async () => { stack = await startTestStack(); });
  afterAll(async () => {
    await stack?.stop();
    await restarted?.stop();
  });

  it('answers 503 with Retry-After while Redis is down, and serves again once it is back, without a restart', async () => {
    const port = Number(new URL(stack.redisEnv.REDIS_URL!).port);
    const dataDir = (await stack.redis.config('GET', 'dir') as string[])[1]!;
    spawnSync('redis-cli', ['-p', String(port), 'SHUTDOWN', 'NOSAVE']);
    const down = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: 'user', content: 'anyone?' }], max_tokens: 4 });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBeTruthy();
    expect(down.json.error).toMatchObject({ type: 'service_unavailable_error', code: 'redis_unavailable' });
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);

    restarted = await startLocalRedis({ dataDir, appendOnly: false, port });
    const served = await stack.waitFor('the stack to serve again', async () => {
      const response = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: 'user', content: 'back?' }], max_tokens: 4, temperature: 0 });
      return response.status === 200 ? response : undefined;
    }, 30_000);
    expect(served.json.usage.completion_tokens).toBe(4);
  });
});
