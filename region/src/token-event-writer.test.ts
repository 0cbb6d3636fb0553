/**
 * The token-event writer against a real redis-server: order, coalescing (first delta at once,
 * later ones per interval), a TTL from the first write, and a failed write failing the run.
 */
import { decodeStreamEvent, ServiceUnavailableError } from '@bamba/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RegionRedis } from './connection.js';
import { regionKeys } from './keys.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';
import { TokenEventWriter } from './token-event-writer.js';

let server: TestRedis;
let redis: RegionRedis;
const keys = regionKeys('writer-test', 'local');

beforeAll(async () => {
  server = await startTestRedis('writer-test');
  redis = server.redis;
});
afterAll(async () => server?.stop());

const request = (requestId: string) => ({ requestId, relayGroup: 'g1', deadlineAtMs: Date.now() + 60_000 });
const events = async (requestId: string) => (await redis.xrange(keys.requestStream('g1', requestId), '-', '+')).map(([, fields]) => decodeStreamEvent(fields));
const until = async (check: () => Promise<boolean>) => { while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5)); };

describe('TokenEventWriter', () => {
  it('writes the start and the first delta at once, later deltas per interval, all in order', async () => {
    const writer = new TokenEventWriter(redis, keys, 'node-a', { flushIntervalMs: 60_000 });
    const run = writer.forRequest(request('req-order'), 1);
    run.start(5, 0, 'replay');
    run.delta('a', 1);
    await until(async () => (await events('req-order')).length === 2);
    run.delta('b', 1);
    run.delta('c', 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await events('req-order')).toHaveLength(2); // waiting for the interval (a minute here)
    const ttlWhileRunning = await redis.ttl(keys.requestStream('g1', 'req-order'));
    expect(ttlWhileRunning).toBeGreaterThan(60); // set by the first write: the deadline and then some
    await run.end({ finishReason: 'length', promptTokens: 5, completionTokens: 3, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 2 });
    const written = await events('req-order');
    expect(written.map((event) => event.type)).toEqual(['generation-start', 'token-delta', 'token-delta', 'generation-end']);
    expect(written[2]).toMatchObject({ text: 'bc', tokens: 2, attempt: 1 });
    expect(await redis.ttl(keys.requestStream('g1', 'req-order'))).toBeLessThanOrEqual(300);
  });

  it('fails the run (retryable) when a write fails, instead of leaving a gap', async () => {
    const broken = connectRedis(server.target, { role: 'writer-test-broken', mode: 'request' });
    await broken.ping();
    const writer = new TokenEventWriter(broken, keys, 'node-b', { flushIntervalMs: 5 });
    const run = writer.forRequest(request('req-broken'), 1);
    run.start(5, 0, 'replay');
    run.delta('a', 1);
    await writer.flush();
    broken.disconnect(); // every later write fails
    run.delta('b', 1);
    await writer.flush().catch(() => {});
    expect(() => run.delta('c', 1)).toThrow(ServiceUnavailableError);
    await expect(run.end({ finishReason: 'length', promptTokens: 5, completionTokens: 3, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 2 })).rejects.toMatchObject({ code: 'event_write_failed', retryable: true });
  });
});
